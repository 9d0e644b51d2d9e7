//! Writes the libtorch folder found by torch-sys into the binary's run path, so
//! `target/release/pretext` starts without LD_LIBRARY_PATH on the machine that built it
//! (LD_LIBRARY_PATH still wins, e.g. for a CUDA libtorch on another machine).

fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}

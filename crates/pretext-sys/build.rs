//! Compiles shim/torch_ext.cpp against the libtorch that torch-sys found: its headers sit in
//! `<lib>/../include` (the pip wheel and the standalone libtorch zip both lay them out so),
//! with the same C++ standard and `_GLIBCXX_USE_CXX11_ABI` as tch's own C++ (torch-sys's
//! default, 1, which every libtorch 2.x wheel uses; `LIBTORCH_CXX11_ABI` overrides it).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=shim/torch_ext.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys reports the libtorch library folder (DEP_TCH_LIBTORCH_LIB)"),
    );
    let include = lib.join("..").join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("shim/torch_ext.cpp")
        .compile("pretext_torch_ext");
}

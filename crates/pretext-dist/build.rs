//! Compiles the c10d shim (shim/c10d.cpp, and shim/nccl.cpp with the `nccl` feature) against
//! the libtorch that torch-sys found, the way pretext-sys compiles its own: headers in
//! `<lib>/../include`, C++17, the same `_GLIBCXX_USE_CXX11_ABI` as tch's C++ (1, which every
//! libtorch 2.x wheel uses; `LIBTORCH_CXX11_ABI` overrides it).
//!
//! The wheel ships the c10d headers but not gloo's, which `ProcessGroupGloo.hpp` includes:
//! they are vendored in `vendor/gloo/include` (see `vendor/gloo/README.md`).
//!
//! With `nccl`, `ProcessGroupNCCL.hpp` also needs the CUDA runtime and NCCL headers. They are
//! looked for in `PRETEXT_CUDA_INCLUDE` (a `:`-separated list), `$CUDA_HOME/include`, the
//! `nvidia/*/include` folders of the pip packages beside the torch wheel (`nvidia-cuda-runtime`,
//! `nvidia-nccl-cu13`, and `nvidia-cuda-crt` and `nvidia-cuda-cccl`, which the wheel does not
//! pull in), and `/usr/local/cuda/include`.

use std::path::{Path, PathBuf};

fn main() {
    for path in [
        "shim/c10d.cpp",
        "shim/backends.h",
        "shim/nccl.cpp",
        "vendor/gloo/include",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    for variable in ["LIBTORCH_CXX11_ABI", "PRETEXT_CUDA_INCLUDE", "CUDA_HOME"] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys reports the libtorch library folder (DEP_TCH_LIBTORCH_LIB)"),
    );
    let include = lib.join("..").join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let nccl = std::env::var_os("CARGO_FEATURE_NCCL").is_some();

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include("vendor/gloo/include")
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        // The wheel was built with Gloo (its Caffe2Targets.cmake exports the define); the c10d
        // headers hide ProcessGroupGloo without it.
        .define("USE_C10D_GLOO", None)
        .file("shim/c10d.cpp");
    if nccl {
        build
            .define("PRETEXT_DIST_NCCL", None)
            .define("USE_C10D_NCCL", None);
        for dir in cuda_include_dirs(&lib) {
            build.include(dir);
        }
        build.file("shim/nccl.cpp");
    }
    build.compile("pretext_dist_shim");

    if nccl {
        // The shim calls into ProcessGroupNCCL (libtorch_cuda) and c10::cuda (libc10_cuda);
        // torch-sys links libtorch_cuda too, but only because it exists.
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
}

/// Folders that may hold `cuda_runtime_api.h` and `nccl.h`, the existing ones, first found first.
fn cuda_include_dirs(libtorch_lib: &Path) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(list) = std::env::var("PRETEXT_CUDA_INCLUDE") {
        candidates.extend(std::env::split_paths(&list));
    }
    if let Ok(home) = std::env::var("CUDA_HOME") {
        candidates.push(Path::new(&home).join("include"));
    }
    // <site-packages>/torch/lib -> <site-packages>/nvidia/<package>/include
    let nvidia = libtorch_lib.join("..").join("..").join("nvidia");
    if let Ok(entries) = std::fs::read_dir(&nvidia) {
        let mut packages: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("include")))
            .collect();
        packages.sort();
        candidates.extend(packages);
    }
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    candidates.retain(|dir| dir.is_dir());
    // What the torch 2.11 wheel's own dependencies lack: the CUDA runtime headers include
    // crt/host_config.h and (cuda_fp16.h) nv/target, which only the separate nvidia-cuda-crt
    // and nvidia-cuda-cccl packages ship.
    let packages = [
        ("cuda_runtime_api.h", "nvidia-cuda-runtime"),
        ("crt/host_config.h", "nvidia-cuda-crt"),
        ("nv/target", "nvidia-cuda-cccl"),
        ("nccl.h", "nvidia-nccl-cu13"),
    ];
    for (header, package) in packages {
        if !candidates.iter().any(|dir| dir.join(header).is_file()) {
            println!(
                "cargo:warning=pretext-dist (nccl): no {header} in {candidates:?}: pip install \
                 {package} (matching the wheel's CUDA) beside torch, or set PRETEXT_CUDA_INCLUDE \
                 to the folder that has it"
            );
        }
    }
    candidates
}

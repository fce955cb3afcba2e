//! Embeds the BPF object built by `cargo xtask build`.
//!
//! Cargo cannot build the BPF crate itself here: it needs another rustc
//! (Debian's, with a prebuilt `core` for bpfel-unknown-none) and its own
//! workspace so that features never unify. xtask builds it and passes its path
//! in `LB_BPF_OBJECT` (the constant of the same name in xtask's library).
//! Without it an empty stub is embedded, and `lbctl` says how to build.
use std::{env, fs, path::PathBuf};

const LB_BPF_OBJECT: &str = "LB_BPF_OBJECT";

fn main() {
    println!("cargo::rerun-if-env-changed={LB_BPF_OBJECT}");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("lb-ebpf.o");
    match env::var_os(LB_BPF_OBJECT) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo::rerun-if-changed={}", path.display());
            fs::copy(&path, &out).unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
        }
        None => fs::write(&out, b"").expect("writing the stub object"),
    }
}

//! Embeds the BPF objects built by `cargo xtask build`.
//!
//! Cargo cannot build the BPF crate itself here: it needs another rustc
//! (Debian's, with a prebuilt `core` for bpfel-unknown-none) and its own
//! workspace so that features never unify. xtask builds it and passes its path
//! in `LB_BPF_OBJECT` (the constant of the same name in xtask's library); the
//! decapsulator's object (`lbctl decap`) is `lb-decap.o` next to it (xtask's
//! `DECAP_OBJECT`). Without them empty stubs are embedded, and `lbctl` says
//! how to build.
use std::{env, fs, path::PathBuf};

const LB_BPF_OBJECT: &str = "LB_BPF_OBJECT";
const DECAP_OBJECT_NAME: &str = "lb-decap.o";

fn main() {
    println!("cargo::rerun-if-env-changed={LB_BPF_OBJECT}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let out = out_dir.join("lb-ebpf.o");
    let decap_out = out_dir.join(DECAP_OBJECT_NAME);
    match env::var_os(LB_BPF_OBJECT) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo::rerun-if-changed={}", path.display());
            fs::copy(&path, &out).unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
            let decap = path.with_file_name(DECAP_OBJECT_NAME);
            println!("cargo::rerun-if-changed={}", decap.display());
            // An older build directory may not have it yet: a stub, and
            // `lbctl decap` names `cargo xtask build`.
            if decap.exists() {
                fs::copy(&decap, &decap_out)
                    .unwrap_or_else(|e| panic!("copying {}: {e}", decap.display()));
            } else {
                fs::write(&decap_out, b"").expect("writing the stub object");
            }
        }
        None => {
            fs::write(&out, b"").expect("writing the stub object");
            fs::write(&decap_out, b"").expect("writing the stub object");
        }
    }
}

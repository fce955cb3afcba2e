//! Shared names and the pure logic of `cargo xtask`.
//!
//! xtask is the single source of build logic (aya's approach; docs/DEVELOPING.md):
//! it builds the BPF object with Debian's rustc and hands its path to `lb-user`'s
//! build script through [`BPF_OBJECT_ENV`].
//!
//! `lb-user/build.rs` mirrors [`BPF_OBJECT_ENV`] *by value* (it does not depend on
//! this crate, to keep clap and friends out of its build graph). If you rename
//! anything here, rename it there too. The contract with build.rs is:
//! - `LB_BPF_OBJECT` holds an absolute path to the BPF ELF object;
//! - build.rs embeds that file (`aya::include_bytes_aligned!`) and declares
//!   `cargo:rerun-if-env-changed=LB_BPF_OBJECT` and `cargo:rerun-if-changed=<path>`;
//! - without the variable it embeds an empty stub, and `lbctl` fails at start with a
//!   message naming `cargo xtask build`.
//!
//! xtask only rewrites [`BPF_OBJECT`] when its bytes change, so an unchanged BPF
//! program does not relink `lbctl`.
//!
//! All relative paths below are relative to the workspace root.

pub mod artifact;
pub mod debian;
pub mod diag;
pub mod elf;
pub mod lockfile;

/// Env var through which `lb-user/build.rs` receives the absolute path of the BPF object.
pub const BPF_OBJECT_ENV: &str = "LB_BPF_OBJECT";
/// Env var through which tests and the demo receive the absolute path of `lbctl`.
pub const LBCTL_ENV: &str = "LBCTL";

/// The BPF crate: its own cargo workspace with its own lockfile (Pattern 1).
pub const BPF_CRATE_DIR: &str = "lb-ebpf";
pub const BPF_MANIFEST: &str = "lb-ebpf/Cargo.toml";
pub const BPF_LOCKFILE: &str = "lb-ebpf/Cargo.lock";
/// Present when lb-ebpf has pure logic that can be unit-tested on the host.
pub const BPF_LIB_SOURCE: &str = "lb-ebpf/src/lib.rs";
/// Name of lb-ebpf's `[[bin]]`: the BPF program itself.
pub const BPF_BIN_NAME: &str = "lb-ebpf";
/// Name of lb-ebpf's second `[[bin]]`: the real servers' decapsulator
/// (`lbctl decap`), built in the same cargo run.
pub const DECAP_BIN_NAME: &str = "lb-decap";
/// Lockfile of the host workspace (lb-common, lb-user, xtask, tests).
pub const HOST_LOCKFILE: &str = "Cargo.lock";

pub const BPF_TARGET: &str = "bpfel-unknown-none";
/// Target dir of the BPF build (kept apart from the host build: another rustc).
pub const BPF_TARGET_DIR: &str = "target/bpf";
/// Target dir for lb-ebpf's host unit tests and host clippy (rustup's rustc).
pub const BPF_HOST_TARGET_DIR: &str = "target/bpf-host";
/// Target dir for clippy on the BPF binary (Debian's rustc and clippy-driver).
pub const BPF_CLIPPY_TARGET_DIR: &str = "target/bpf-clippy";
/// Where xtask copies the finished BPF object; `LB_BPF_OBJECT` points here.
pub const BPF_OBJECT: &str = "target/bpf/lb-ebpf.o";
/// Where xtask copies the decapsulator's object: next to [`BPF_OBJECT`],
/// where `lb-user/build.rs` looks for it (by this file name).
pub const DECAP_OBJECT: &str = "target/bpf/lb-decap.o";

/// The userspace package and its binary.
pub const USER_PACKAGE: &str = "lb-user";
pub const LBCTL_BIN_NAME: &str = "lbctl";
/// Where `cargo xtask build` leaves `lbctl` (unless CARGO_TARGET_DIR moves it; xtask
/// reads the real path from cargo's JSON messages).
pub const LBCTL: &str = "target/release/lbctl";

/// The tests package and its demo binary (`cargo xtask demo`).
pub const TESTS_PACKAGE: &str = "lb-tests";
pub const DEMO_BIN_NAME: &str = "lb-demo";
/// The benchmark binary of the tests package (`cargo xtask bench`).
pub const BENCH_BIN_NAME: &str = "lb-bench";

/// Debian's rustc (package rustc-web): it ships a prebuilt `core` for
/// bpfel-unknown-none, which rustup's toolchain here lacks (no rust-src, no build-std).
pub const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// Debian's clippy-driver (package rust-web-clippy), of the same release as
/// [`DEBIAN_RUSTC`]: it lints the BPF binary for bpfel-unknown-none.
pub const DEBIAN_CLIPPY_DRIVER: &str = "/usr/bin/clippy-driver";
/// The first two are needed for BTF (docs/DEVELOPING.md); cpu v3 gives the
/// 32-bit atomic exchanges the connection counts use (lb-ebpf's
/// `counts.rs`). Separated by 0x1f as CARGO_ENCODED_RUSTFLAGS requires.
pub const BPF_RUSTFLAGS: &str = "-Cdebuginfo=2\x1f-Clink-arg=--btf\x1f-Ctarget-cpu=v3";
/// bpf-linker's LLVM must match rustc's LLVM major (§8.1).
pub const BPF_LINKER_VERSION: &str = "0.13.0";
pub const LLVM_MAJOR: u32 = 22;
pub const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
pub const BPF_LINKER_FEATURE: &str = "llvm-22";

/// What `rustc -vV` says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustcInfo {
    pub release: String,
    pub host: String,
    /// `None` when the line is missing (should not happen with rustc ≥ 1.0).
    pub llvm_major: Option<u32>,
}

/// Parses the output of `rustc -vV`.
pub fn parse_rustc_vv(text: &str) -> Option<RustcInfo> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let llvm_major =
        field("LLVM version:").and_then(|v| v.split('.').next().and_then(|m| m.parse().ok()));
    Some(RustcInfo {
        release: field("release:")?,
        host: field("host:")?,
        llvm_major,
    })
}

/// Parses `bpf-linker --version` output (`bpf-linker 0.13.0`) into its version.
pub fn parse_bpf_linker_version(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("bpf-linker "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_agree() {
        assert!(LLVM_PREFIX.ends_with(&format!("-{LLVM_MAJOR}")));
        assert_eq!(BPF_LINKER_FEATURE, format!("llvm-{LLVM_MAJOR}"));
        assert!(BPF_OBJECT.starts_with(BPF_TARGET_DIR));
        assert_eq!(
            std::path::Path::new(DECAP_OBJECT).parent(),
            std::path::Path::new(BPF_OBJECT).parent()
        );
        for dir in [BPF_HOST_TARGET_DIR, BPF_CLIPPY_TARGET_DIR] {
            assert!(dir.starts_with("target/") && dir != BPF_TARGET_DIR);
        }
        assert_eq!(
            std::path::Path::new(DEBIAN_CLIPPY_DRIVER).parent(),
            std::path::Path::new(DEBIAN_RUSTC).parent()
        );
        assert!(BPF_MANIFEST.starts_with(BPF_CRATE_DIR));
        assert!(BPF_LOCKFILE.starts_with(BPF_CRATE_DIR));
        assert!(LBCTL.ends_with(LBCTL_BIN_NAME));
        assert_eq!(BPF_RUSTFLAGS.split('\x1f').count(), 3);
    }

    #[test]
    fn rustc_vv() {
        let text = "rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)\n\
                    binary: rustc\ncommit-hash: ac68faa20c58cbccd01ee7208bf3b6e93a7d7f96\n\
                    commit-date: 2026-05-25\nhost: x86_64-unknown-linux-gnu\n\
                    release: 1.96.0\nLLVM version: 22.1.8\n";
        let info = parse_rustc_vv(text).unwrap();
        assert_eq!(info.host, "x86_64-unknown-linux-gnu");
        assert_eq!(info.release, "1.96.0");
        assert_eq!(info.llvm_major, Some(22));
        assert_eq!(parse_rustc_vv("garbage"), None);
    }

    #[test]
    fn bpf_linker_version() {
        assert_eq!(
            parse_bpf_linker_version("bpf-linker 0.13.0\n"),
            Some("0.13.0")
        );
        assert_eq!(parse_bpf_linker_version("something else"), None);
    }
}

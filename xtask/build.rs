// Records the host triple xtask is built for, so xtask can build and test
// lb-ebpf's pure logic for that same target without asking rustc (`rustc` on PATH
// might be Debian's, which is for the BPF build only).
fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=XTASK_HOST_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}

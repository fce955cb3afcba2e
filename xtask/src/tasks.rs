//! build, test, demo, clippy: the steps behind each subcommand.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use xtask::{
    BENCH_BIN_NAME, BPF_BIN_NAME, BPF_HOST_TARGET_DIR, BPF_LIB_SOURCE, BPF_LOCKFILE, BPF_MANIFEST,
    BPF_OBJECT, BPF_OBJECT_ENV, BPF_RUSTFLAGS, BPF_TARGET, BPF_TARGET_DIR, DEBIAN_RUSTC,
    DECAP_BIN_NAME, DECAP_OBJECT, DEMO_BIN_NAME, HOST_LOCKFILE, LBCTL_BIN_NAME, LBCTL_ENV,
    TESTS_PACKAGE, USER_PACKAGE, artifact, elf, lockfile,
};

use crate::cmd::{self, step};
use crate::{deb, lint, setup};

/// The host triple xtask itself was built for (set by build.rs): the target of
/// lb-ebpf's host unit tests and host clippy.
pub(crate) const HOST_TARGET: &str = env!("XTASK_HOST_TARGET");

/// The workspace root (xtask lives in `<root>/xtask`).
pub fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// What `build` produced, both as absolute paths.
pub struct Built {
    pub object: PathBuf,
    pub lbctl: PathBuf,
}

impl Built {
    /// Sets the env vars through which builds and tests find the object and lbctl.
    fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env(BPF_OBJECT_ENV, &self.object)
            .env(LBCTL_ENV, &self.lbctl)
    }
}

/// Setup (if anything is missing), BPF object, then lbctl with the object embedded.
pub fn build(root: &Path, debug_bpf: bool) -> Result<Built> {
    setup::ensure(false)?;
    let object = build_bpf(root, debug_bpf)?;

    step(format!(
        "building lbctl ({USER_PACKAGE}, release) with the BPF object embedded"
    ));
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(root)
        .args(["build", "--release", "--package", USER_PACKAGE])
        .arg("--message-format=json-render-diagnostics")
        .env(BPF_OBJECT_ENV, &object);
    let messages = cmd::stdout(&mut cargo)?;
    let lbctl = artifact::find(&messages, LBCTL_BIN_NAME, "bin")?;
    step(format!("lbctl is {}", lbctl.display()));
    Ok(Built { object, lbctl })
}

/// Builds lb-ebpf with Debian's rustc for bpfel-unknown-none, checks the objects,
/// and copies them to [`BPF_OBJECT`] and [`DECAP_OBJECT`] (the decapsulator, which
/// `lb-user/build.rs` finds next to the first); returns the first path (absolute).
fn build_bpf(root: &Path, debug: bool) -> Result<PathBuf> {
    let manifest = root.join(BPF_MANIFEST);
    if !manifest.exists() {
        bail!(
            "{} does not exist: nothing to build the BPF object from",
            manifest.display()
        );
    }
    let profile = if debug { "dev profile" } else { "release" };
    step(format!(
        "building BPF objects ({BPF_BIN_NAME}, {DECAP_BIN_NAME}, {BPF_TARGET}, {profile})"
    ));

    let mut cargo = Command::new("cargo");
    cargo.current_dir(root).arg("build");
    if !debug {
        cargo.arg("--release");
    }
    if root.join(BPF_LOCKFILE).exists() {
        cargo.arg("--locked"); // the lockfile carries the aya pins (Pattern 1)
    }
    cargo
        .args([
            "--target",
            BPF_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(root.join(BPF_TARGET_DIR));
    cmd::clean_cargo_env(&mut cargo)
        .env("RUSTC", DEBIAN_RUSTC)
        // aya-ebpf uses asm_experimental_arch; Debian's stable rustc needs this for it.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", BPF_RUSTFLAGS);
    let messages = cmd::stdout(&mut cargo)?;
    let dest = install_object(root, &messages, BPF_BIN_NAME, BPF_OBJECT)?;
    install_object(root, &messages, DECAP_BIN_NAME, DECAP_OBJECT)?;
    Ok(dest)
}

/// Checks the object cargo built for the bin `name` and copies it to `rel`
/// (under the root); returns that path (absolute).
fn install_object(root: &Path, messages: &str, name: &str, rel: &str) -> Result<PathBuf> {
    let built = artifact::find(messages, name, "bin")?;
    let bytes = fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    elf::check_bpf_object(&bytes)
        .with_context(|| format!("{} is not a usable BPF object", built.display()))?;

    let dest = root.join(rel);
    // Rewrite only on change: build.rs reruns on the file's mtime, and an unchanged
    // program should not relink lbctl.
    if fs::read(&dest).ok().as_deref() != Some(&bytes[..]) {
        let tmp = dest.with_extension("o.tmp");
        fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &dest).with_context(|| format!("renaming to {}", dest.display()))?;
    }
    step(format!(
        "BPF object is {} ({} bytes)",
        dest.display(),
        bytes.len()
    ));
    Ok(dest)
}

/// Both lockfiles must carry the pinned aya-family pairs (Pattern 1, §8.1). A
/// lockfile that does not exist yet is skipped.
pub fn check_lockfiles(root: &Path) -> Result<()> {
    step("checking the aya-family pins in both lockfiles");
    let read = |rel: &str| -> Result<Option<lockfile::Locked>> {
        let path = root.join(rel);
        if !path.exists() {
            eprintln!("    {rel} does not exist yet; not checked");
            return Ok(None);
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        lockfile::parse(&text)
            .map(Some)
            .with_context(|| format!("parsing {}", path.display()))
    };
    let host = read(HOST_LOCKFILE)?;
    let bpf = read(BPF_LOCKFILE)?;
    let mut problems = Vec::new();
    if let Some(host) = &host {
        problems.extend(lockfile::check_pins(
            HOST_LOCKFILE,
            host,
            lockfile::HOST_PINS,
        ));
    }
    if let Some(bpf) = &bpf {
        problems.extend(lockfile::check_pins(BPF_LOCKFILE, bpf, lockfile::BPF_PINS));
    }
    if let (Some(host), Some(bpf)) = (&host, &bpf) {
        problems.extend(lockfile::check_shared(host, bpf, lockfile::SHARED));
    }
    if !problems.is_empty() {
        bail!(
            "the aya-family versions in the lockfiles do not match the pinned pairs \
             (docs/DEVELOPING.md):\n  - {}",
            problems.join("\n  - ")
        );
    }
    Ok(())
}

fn warn_if_not_root() {
    if cmd::is_root() {
        return;
    }
    let ci = if std::env::var_os("CI").is_some() {
        "CI is set, so those tests will FAIL instead of skipping."
    } else {
        "Under CI (CI set) they fail instead."
    };
    eprintln!(
        "\n!!! ====================================================================\n\
         !!! WARNING: not running as root.\n\
         !!! Tests that need network namespaces or BPF (CAP_BPF, CAP_NET_ADMIN)\n\
         !!! will be SKIPPED. {ci}\n\
         !!! Run `cargo xtask test` as root for the full suite.\n\
         !!! ====================================================================\n"
    );
}

/// `cargo xtask test`: build, the Debian package, pins, rustfmt and clippy,
/// lb-ebpf host unit tests, workspace tests, the quick benchmark.
pub fn test(root: &Path, extra: &[OsString]) -> Result<()> {
    let built = build(root, false)?;
    // The package's test installs it (tests/tests/package.rs).
    let deb = deb::build(root, &built)?;
    check_lockfiles(root)?;
    lint::run(root)?;
    warn_if_not_root();

    if root.join(BPF_LIB_SOURCE).exists() {
        step(format!(
            "host unit tests of lb-ebpf's pure logic ({HOST_TARGET})"
        ));
        let mut cargo = bpf_crate_on_host(root, "test");
        cargo.arg("--lib");
        cmd::run(&mut cargo)?;
    } else {
        step(format!(
            "no {BPF_LIB_SOURCE} yet: skipping lb-ebpf host unit tests"
        ));
    }

    step("workspace tests (release, with the BPF object and lbctl from the build)");
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(root)
        .args(["test", "--workspace", "--release"])
        .args(extra)
        .env(xtask::debian::DEB_ENV, &deb);
    cmd::run(built.apply(&mut cargo))?;

    // The benchmark's reduced form, so that it cannot rot: every case runs and
    // takes its path; no timing is asserted. (Without root it skips loudly, and
    // fails under CI, like the tests.)
    run_bench(root, &built, true)?;

    step("all tests passed");
    Ok(())
}

/// `cargo <subcommand>` on lb-ebpf for the host target with rustup's toolchain
/// (not Debian's rustc), in its own target dir.
pub(crate) fn bpf_crate_on_host(root: &Path, subcommand: &str) -> Command {
    let mut cargo = Command::new("cargo");
    cargo.current_dir(root).arg(subcommand);
    if root.join(BPF_LOCKFILE).exists() {
        cargo.arg("--locked");
    }
    cargo
        .arg("--manifest-path")
        .arg(root.join(BPF_MANIFEST))
        .args(["--target", HOST_TARGET])
        .arg("--target-dir")
        .arg(root.join(BPF_HOST_TARGET_DIR));
    cmd::clean_cargo_env(&mut cargo);
    cargo
}

/// `cargo xtask demo`: build, then the demo binary with the object and lbctl.
pub fn demo(root: &Path, extra: &[OsString]) -> Result<()> {
    let built = build(root, false)?;
    // Every binary of the package: the demo runs lb-testsrv from next to itself.
    step(format!(
        "building the demo and its test server ({TESTS_PACKAGE})"
    ));
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(root)
        .args(["build", "--release", "--package", TESTS_PACKAGE, "--bins"]);
    cmd::run(built.apply(&mut cargo))?;
    // On Ctrl-C the demo cleans up (namespaces, pins) before it exits: wait for
    // it instead of dying first. A caught signal is reset to the default in
    // the children at exec, so cargo and the demo still see Ctrl-C. (Raw libc:
    // std has no signal API and nix's `signal`/`sigaction` are unsafe too.)
    extern "C" fn wait_for_child(_sig: libc::c_int) {}
    // SAFETY: installs a handler that does nothing (async-signal-safe).
    unsafe {
        libc::signal(
            libc::SIGINT,
            wait_for_child as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    step(format!(
        "running the demo ({TESTS_PACKAGE}/{DEMO_BIN_NAME})"
    ));
    let mut cargo = Command::new("cargo");
    cargo.current_dir(root).args([
        "run",
        "--release",
        "--package",
        TESTS_PACKAGE,
        "--bin",
        DEMO_BIN_NAME,
    ]);
    if !extra.is_empty() {
        cargo.arg("--").args(extra);
    }
    cmd::run(built.apply(&mut cargo))
}

/// `cargo xtask clippy`: rustfmt and clippy (`-D warnings`) on the host
/// workspace, lb-ebpf's lib on the host, and lb-ebpf's BPF binary with
/// Debian's clippy (see `lint.rs`). Needs the tools `setup` installs.
pub fn clippy(root: &Path) -> Result<()> {
    setup::ensure(false)?;
    lint::run(root)
}

/// `cargo xtask bench [--quick]`: build, then lb-tests' lb-bench binary with
/// the object and lbctl. Results go to target/bench/ (`latest.*`, or
/// `quick.*` for the reduced form).
pub fn bench(root: &Path, quick: bool) -> Result<()> {
    let built = build(root, false)?;
    run_bench(root, &built, quick)
}

fn run_bench(root: &Path, built: &Built, quick: bool) -> Result<()> {
    step(format!(
        "benchmarks{} ({TESTS_PACKAGE}/{BENCH_BIN_NAME})",
        if quick { ", quick form" } else { "" }
    ));
    // The daemon's case serves its real servers with lb-testsrv.
    let mut srv = Command::new("cargo");
    srv.current_dir(root).args([
        "build",
        "--release",
        "--package",
        TESTS_PACKAGE,
        "--bin",
        "lb-testsrv",
    ]);
    cmd::run(built.apply(&mut srv))?;
    let mut cargo = Command::new("cargo");
    cargo.current_dir(root).args([
        "run",
        "--release",
        "--package",
        TESTS_PACKAGE,
        "--bin",
        BENCH_BIN_NAME,
    ]);
    if quick {
        cargo.args(["--", "--quick"]);
    }
    cmd::run(built.apply(&mut cargo))
}

//! `cargo xtask clippy` (and the lint step of `cargo xtask test`): rustfmt and
//! clippy with `-D warnings` over everything we build, each check on its own:
//!
//! - `cargo fmt --check` for the host workspace and for lb-ebpf;
//! - clippy on the host workspace, all targets;
//! - clippy on lb-ebpf's lib for the host (rustup's toolchain);
//! - clippy on lb-ebpf's BPF binary for bpfel-unknown-none, with Debian's
//!   clippy-driver (rust-web-clippy), which pairs with the rustc-web that
//!   builds the object: the code the verifier gets is the code linted.
//!
//! Every check runs even when an earlier one fails, and each cargo run goes on
//! past a crate that fails (`--keep-going`); the end names each check that
//! failed and the crates it failed on. Never host and BPF crates in one
//! cargo run: `lb-common/user` would unify into the BPF crate (see
//! docs/DEVELOPING.md).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use xtask::{
    BPF_CLIPPY_TARGET_DIR, BPF_LIB_SOURCE, BPF_LOCKFILE, BPF_MANIFEST, BPF_RUSTFLAGS, BPF_TARGET,
    DEBIAN_CLIPPY_DRIVER, DEBIAN_RUSTC, diag,
};

use crate::cmd::{self, step};
use crate::tasks::{HOST_TARGET, bpf_crate_on_host};

/// How clippy-driver receives its own arguments when it runs as cargo's
/// `RUSTC_WORKSPACE_WRAPPER` (what `cargo clippy` sets up): `CLIPPY_ARGS`,
/// each argument followed by this separator.
const CLIPPY_ARGS_SEPARATOR: &str = "__CLIPPY_HACKERY__";

/// One check: what it covers (named when it fails) and how to run it.
struct Check {
    what: String,
    cmd: Command,
    kind: Kind,
}

enum Kind {
    /// `cargo fmt --check`: its stdout lists the files.
    Fmt,
    /// A cargo run with `--message-format=json`: its messages name the crates.
    Cargo,
}

/// Runs every check; fails naming those that failed and their crates.
pub fn run(root: &Path) -> Result<()> {
    let mut failed = Vec::new();
    for mut check in checks(root)? {
        step(&check.what);
        let culprits = match check.kind {
            Kind::Fmt => run_fmt(root, &mut check.cmd)?,
            Kind::Cargo => run_cargo(&mut check.cmd)?,
        };
        if let Some(culprits) = culprits {
            eprintln!("    FAILED: {}", check.what);
            failed.push((check.what, culprits));
        }
    }
    if failed.is_empty() {
        step("rustfmt and clippy clean");
        return Ok(());
    }
    let mut text = String::new();
    for (what, culprits) in &failed {
        text.push_str(&format!("\n  - {what}"));
        for c in culprits {
            text.push_str(&format!("\n      {c}"));
        }
    }
    bail!(
        "{} of the lint checks failed (fix them, or `#[expect(lint, reason = \"…\")]`):{text}",
        failed.len()
    )
}

fn checks(root: &Path) -> Result<Vec<Check>> {
    let mut checks = Vec::new();

    let mut fmt = Command::new("cargo");
    fmt.current_dir(root).args(["fmt", "--all", "--check"]);
    checks.push(Check {
        what: "rustfmt: host workspace".into(),
        cmd: fmt,
        kind: Kind::Fmt,
    });
    let bpf_manifest = root.join(BPF_MANIFEST);
    if bpf_manifest.exists() {
        let mut fmt = Command::new("cargo");
        fmt.current_dir(root)
            .args(["fmt", "--check", "--manifest-path"])
            .arg(&bpf_manifest);
        checks.push(Check {
            what: "rustfmt: lb-ebpf".into(),
            cmd: fmt,
            kind: Kind::Fmt,
        });
    }

    let mut clippy = Command::new("cargo");
    clippy
        .current_dir(root)
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--release",
            "--keep-going",
        ])
        .arg("--message-format=json")
        .args(["--", "-D", "warnings"]);
    checks.push(Check {
        what: "clippy: host workspace, all targets".into(),
        cmd: clippy,
        kind: Kind::Cargo,
    });

    if !root.join(BPF_LIB_SOURCE).exists() {
        step(format!(
            "no {BPF_LIB_SOURCE} yet: skipping clippy of lb-ebpf"
        ));
        return Ok(checks);
    }
    // Only --lib: the bin is no_std/no_main and is not meant for the host.
    let mut clippy = bpf_crate_on_host(root, "clippy");
    clippy
        .args(["--lib", "--keep-going", "--message-format=json"])
        .args(["--", "-D", "warnings"]);
    checks.push(Check {
        what: format!("clippy: lb-ebpf lib on the host target ({HOST_TARGET})"),
        cmd: clippy,
        kind: Kind::Cargo,
    });

    if !Path::new(DEBIAN_CLIPPY_DRIVER).exists() {
        bail!(
            "{DEBIAN_CLIPPY_DRIVER} is missing: run `cargo xtask setup` (it installs \
             rust-web-clippy, the clippy of {DEBIAN_RUSTC})"
        );
    }
    checks.push(Check {
        what: format!("clippy: lb-ebpf bins for {BPF_TARGET} ({DEBIAN_CLIPPY_DRIVER})"),
        cmd: bpf_clippy(root),
        kind: Kind::Cargo,
    });
    Ok(checks)
}

/// `cargo clippy` for the BPF binary, spelled out: `cargo check` with
/// Debian's rustc, Debian's clippy-driver wrapped around it for lb-ebpf
/// itself (a workspace member; its dependencies are not linted, as with
/// `cargo clippy`), the flags and target of the object's build, and its own
/// target dir. rustup's `cargo clippy` would run rustup's clippy-driver,
/// which has no `core` for bpfel-unknown-none.
fn bpf_clippy(root: &Path) -> Command {
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(root)
        .args(["check", "--release", "--keep-going"]);
    if root.join(BPF_LOCKFILE).exists() {
        cargo.arg("--locked");
    }
    cargo
        // Both objects: the load balancer and the decapsulator.
        .args(["--target", BPF_TARGET, "--bins"])
        .arg("--message-format=json")
        .arg("--manifest-path")
        .arg(root.join(BPF_MANIFEST))
        .arg("--target-dir")
        .arg(root.join(BPF_CLIPPY_TARGET_DIR));
    let clippy_args: String = ["-D", "warnings"]
        .iter()
        .map(|a| format!("{a}{CLIPPY_ARGS_SEPARATOR}"))
        .collect();
    cmd::clean_cargo_env(&mut cargo)
        .env("RUSTC", DEBIAN_RUSTC)
        .env("RUSTC_WORKSPACE_WRAPPER", DEBIAN_CLIPPY_DRIVER)
        .env("CLIPPY_ARGS", clippy_args)
        // As for the build: aya-ebpf uses asm_experimental_arch.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", BPF_RUSTFLAGS);
    cargo
}

/// Runs `cargo fmt --check`, showing its diff; `Some(files)` when it failed.
fn run_fmt(root: &Path, fmt: &mut Command) -> Result<Option<Vec<String>>> {
    let line = cmd::show(fmt);
    eprintln!("    $ {line}");
    let out = fmt
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start: {line}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprint!("{text}");
    if out.status.success() {
        return Ok(None);
    }
    let mut files = diag::unformatted_files(&text, root);
    if files.is_empty() {
        files.push(format!("{line} exited with {}", out.status));
    } else {
        for f in &mut files {
            *f = format!("not formatted: {f}");
        }
    }
    Ok(Some(files))
}

/// Runs a cargo command with `--message-format=json`, showing its
/// diagnostics as they come; `Some(crates)` when it failed.
fn run_cargo(cargo: &mut Command) -> Result<Option<Vec<String>>> {
    let line = cmd::show(cargo);
    eprintln!("    $ {line}");
    let mut child = cargo
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start: {line}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut messages = String::new();
    for l in BufReader::new(stdout).lines() {
        let l = l.with_context(|| format!("reading the output of: {line}"))?;
        if let Some(r) = diag::rendered(&l) {
            eprint!("{r}");
        }
        messages.push_str(&l);
        messages.push('\n');
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for: {line}"))?;
    let culprits = diag::failing_targets(&messages);
    if status.success() && culprits.is_empty() {
        return Ok(None);
    }
    if culprits.is_empty() {
        // Failed before any crate was linted (manifest, lockfile, a
        // dependency that does not build): cargo said why above.
        return Ok(Some(vec![format!("cargo exited with {status}")]));
    }
    Ok(Some(culprits))
}

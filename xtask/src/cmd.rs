//! Running commands: every command is shown before it runs, and a failure names it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// A progress line: `==> building BPF object`.
pub fn step(msg: impl std::fmt::Display) {
    eprintln!("==> {msg}");
}

/// Quotes one word for display the way a shell would need it.
fn quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%^".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else if s.chars().any(|c| c.is_control()) {
        let escaped: String = s
            .chars()
            .map(|c| match c {
                '\'' | '\\' => format!("\\{c}"),
                c if c.is_control() => format!("\\x{:02x}", c as u32),
                c => c.to_string(),
            })
            .collect();
        format!("$'{escaped}'")
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command as a shell line: the env vars it sets, the program, the args.
pub fn show(cmd: &Command) -> String {
    let mut words: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), quote(v?))))
        .collect();
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    if let Some(dir) = cmd.get_current_dir() {
        format!("(cd {} && {})", quote(dir.as_os_str()), words.join(" "))
    } else {
        words.join(" ")
    }
}

fn announce(cmd: &Command) -> String {
    let line = show(cmd);
    eprintln!("    $ {line}");
    line
}

/// Runs `cmd` with inherited stdio; fails if it cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = announce(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start: {line}"))?;
    if !status.success() {
        bail!("command failed ({status}): {line}");
    }
    Ok(())
}

/// Like [`run`], but captures stdout (stderr still goes to the terminal).
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let line = announce(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start: {line}"))?;
    if !out.status.success() {
        bail!("command failed ({}): {line}", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("output is not UTF-8: {line}"))
}

/// Runs a quiet probe (`tool --version`): its stdout when it ran and succeeded.
pub fn probe(program: impl AsRef<OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Looks a program up on PATH and in the sbin dirs (root tools live there, and a
/// non-root PATH often lacks them).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(Into::into),
        )
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Env vars that would leak compiler choice, flags, wrappers, target dir or
/// profile settings from the outer `cargo` (or the user's shell) into a nested
/// build with its own rustc and profiles.
const LEAKY_VARS: &[&str] = &[
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_BOOTSTRAP",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_RUSTDOCFLAGS",
];
/// Prefixes of the same kind: per-target flags/linkers and profile overrides.
const LEAKY_PREFIXES: &[&str] = &["CARGO_TARGET_", "CARGO_PROFILE_"];

fn is_leaky(name: &str) -> bool {
    LEAKY_VARS.contains(&name) || LEAKY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Removes [`LEAKY_VARS`] and [`LEAKY_PREFIXES`] from `cmd`'s environment; set what
/// the nested build needs afterwards.
pub fn clean_cargo_env(cmd: &mut Command) -> &mut Command {
    for var in LEAKY_VARS {
        cmd.env_remove(var);
    }
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str().filter(|n| is_leaky(n)) {
            cmd.env_remove(name);
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_env_and_quotes() {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "--target-dir", "/x y"])
            .env("CARGO_ENCODED_RUSTFLAGS", "-Ca\x1f-Cb")
            .env_remove("RUSTFLAGS");
        assert_eq!(
            show(&cmd),
            "CARGO_ENCODED_RUSTFLAGS=$'-Ca\\x1f-Cb' cargo build --target-dir '/x y'"
        );
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
    }

    #[test]
    fn clean_env_removes_leaks_only() {
        let mut cmd = Command::new("true");
        clean_cargo_env(&mut cmd);
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for v in [
            "RUSTC",
            "RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "RUSTC_WRAPPER",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            assert!(removed.iter().any(|r| r == v), "{v} not removed");
        }
        assert!(is_leaky("CARGO_PROFILE_RELEASE_DEBUG"));
        assert!(is_leaky("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER"));
        assert!(!is_leaky("CARGO_HOME"));
        assert!(!is_leaky("RUSTUP_TOOLCHAIN"));
        assert!(!is_leaky("PATH"));
    }
}

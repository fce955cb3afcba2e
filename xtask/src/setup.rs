//! `cargo xtask setup`: installs what the build and the tests need, when missing.
//!
//! rustup's toolchain here has no rust-src, so `-Z build-std` is out. Debian's
//! rustc-web ships a prebuilt `core` for bpfel-unknown-none instead, and bpf-linker
//! is built against the same LLVM major as that rustc (docs/DEVELOPING.md).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use xtask::{
    BPF_LINKER_FEATURE, BPF_LINKER_VERSION, DEBIAN_CLIPPY_DRIVER, DEBIAN_RUSTC, LLVM_MAJOR,
    LLVM_PREFIX, parse_bpf_linker_version, parse_rustc_vv,
};

use crate::cmd::{self, step};

/// One Debian package and how to tell, cheaply and without dpkg, that what we
/// need from it is there.
struct Need {
    package: &'static str,
    why: &'static str,
    present: fn() -> bool,
    /// Whether apt also installs the package's Recommends (`--no-install-recommends`
    /// when false).
    recommends: bool,
}

fn has_bpf_core() -> bool {
    std::fs::read_dir("/usr/lib/rustlib/bpfel-unknown-none/lib").is_ok_and(|dir| {
        dir.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libcore-") && name.ends_with(".rlib")
        })
    })
}

/// Needed for every build and test run.
const NEEDS: &[Need] = &[
    Need {
        package: "rustc-web",
        why: "Debian's rustc at /usr/bin/rustc, which builds the BPF crate",
        present: || Path::new(DEBIAN_RUSTC).exists(),
        recommends: true,
    },
    Need {
        package: "libstd-rust-web-dev-bpf",
        why: "prebuilt core for bpfel-unknown-none",
        present: has_bpf_core,
        recommends: true,
    },
    Need {
        package: "rust-web-clippy",
        why: "Debian's clippy-driver, which lints the BPF binary as rustc-web builds it",
        present: || Path::new(DEBIAN_CLIPPY_DRIVER).exists(),
        recommends: true,
    },
    Need {
        package: "iproute2",
        why: "`ip` for the test namespaces and veth pairs",
        present: || cmd::which("ip").is_some(),
        recommends: true,
    },
    Need {
        package: "ethtool",
        why: "`ethtool`, used by the namespace tests on veths",
        present: || cmd::which("ethtool").is_some(),
        recommends: true,
    },
    Need {
        package: "util-linux",
        why: "`nsenter` to run commands inside test namespaces",
        present: || cmd::which("nsenter").is_some(),
        recommends: true,
    },
    Need {
        package: "systemd",
        why: "`systemd-analyze verify`, `systemd-sysusers`, `systemd-tmpfiles`: the privileges suite checks the shipped units",
        present: || cmd::which("systemd-analyze").is_some(),
        recommends: true,
    },
    Need {
        package: "bpftool",
        why: "`bpftool` to inspect programs and maps when debugging",
        present: || cmd::which("bpftool").is_some(),
        recommends: true,
    },
    // Debian's ldirectord, run unmodified against lbctl by tests/tests/ldirectord_e2e.rs.
    // Without Recommends: they are rsyslog (a syslog daemon the package would start on the
    // machine) and logrotate; the tests run ldirectord `supervised`, logging to stdout.
    Need {
        package: "ldirectord",
        why: "Debian's ldirectord, which the ldirectord suite runs with lbctl as its ipvsadm",
        present: || Path::new("/usr/sbin/ldirectord").exists(),
        recommends: false,
    },
    Need {
        package: "ipvsadm",
        why: "ldirectord's dependency; the ldirectord suite binds lbctl over it in a mount namespace",
        present: || cmd::which("ipvsadm").is_some(),
        recommends: false,
    },
    // ldirectord's http/https checks of an IPv6 real server `require` Net::INET6Glue
    // (not among the package's Depends): without it the check process dies.
    Need {
        package: "libnet-inet6glue-perl",
        why: "Net::INET6Glue, which ldirectord's HTTP checks need for IPv6 real servers (the ldirectord suite's IPv6 virtual)",
        present: || Path::new("/usr/share/perl5/Net/INET6Glue/INET_is_INET6.pm").exists(),
        recommends: false,
    },
];

/// Needed only to build bpf-linker (the package names carry [`LLVM_MAJOR`]).
const LINKER_NEEDS: &[Need] = &[
    Need {
        package: "llvm-22-dev",
        why: "LLVM 22 to build bpf-linker against",
        present: || Path::new(LLVM_PREFIX).join("bin/llvm-config").exists(),
        recommends: true,
    },
    Need {
        package: "libpolly-22-dev",
        why: "LLVM 22's Polly, which llvm-config lists for static linking",
        present: || Path::new(LLVM_PREFIX).join("lib/libPolly.a").exists(),
        recommends: true,
    },
];

fn installed_bpf_linker() -> Option<String> {
    let out = cmd::probe("bpf-linker", &["--version"])?;
    parse_bpf_linker_version(&out).map(str::to_owned)
}

fn bpf_linker_install_line() -> String {
    format!(
        "LLVM_PREFIX={LLVM_PREFIX} cargo install bpf-linker --version {BPF_LINKER_VERSION} \
         --locked --force --no-default-features --features {BPF_LINKER_FEATURE}"
    )
}

/// Makes sure everything is installed. `verbose` (the `setup` command) reports
/// every check; otherwise (before a build) it prints only when it has work to do.
pub fn ensure(verbose: bool) -> Result<()> {
    if verbose {
        step("checking what the build and tests need");
    }
    let linker = installed_bpf_linker();
    let linker_ok = linker.as_deref() == Some(BPF_LINKER_VERSION);
    let mut missing = Vec::new();
    let needs = NEEDS
        .iter()
        .chain(LINKER_NEEDS.iter().filter(|_| !linker_ok));
    for need in needs {
        let present = (need.present)();
        if verbose {
            let state = if present { "ok" } else { "missing" };
            eprintln!("    {state:<8} {:<24} {}", need.package, need.why);
        }
        if !present {
            missing.push(need);
        }
    }
    if verbose || !linker_ok {
        let state = if linker_ok { "ok" } else { "missing" };
        let found = match &linker {
            Some(v) if !linker_ok => format!(" (found {v})"),
            None => " (not on PATH)".to_owned(),
            Some(_) => String::new(),
        };
        eprintln!(
            "    {state:<8} {:<24} bpf-linker {BPF_LINKER_VERSION} (cargo install){found}",
            "bpf-linker"
        );
    }

    if missing.is_empty() && linker_ok {
        check_toolchain()?;
        if verbose {
            step("everything is installed; nothing to do");
        }
        return Ok(());
    }
    if !verbose {
        step("installing missing build tools (as `cargo xtask setup` would)");
    }
    if !missing.is_empty() {
        install_packages(&missing, linker_ok)?;
    }
    if !linker_ok {
        install_bpf_linker()?;
    }
    check_toolchain()?;
    step("setup done");
    Ok(())
}

fn by_hand(missing: &[&Need], linker_ok: bool) -> String {
    let mut text = String::new();
    for n in missing {
        text.push_str(&format!("\n  - {:<24} {}", n.package, n.why));
    }
    if !linker_ok {
        text.push_str(&format!(
            "\n  - bpf-linker {BPF_LINKER_VERSION}, built against LLVM {LLVM_MAJOR} (the same LLVM major as \
             {DEBIAN_RUSTC}), after the LLVM packages:\n        {}",
            bpf_linker_install_line()
        ));
    }
    text
}

/// ` && sudo apt-get install -y …` for the packages with their Recommends, then for those
/// without.
fn apt_install_lines(missing: &[&Need]) -> String {
    let mut text = String::new();
    for (recommends, flag) in [(true, ""), (false, " --no-install-recommends")] {
        let batch: Vec<&str> = missing
            .iter()
            .filter(|n| n.recommends == recommends)
            .map(|n| n.package)
            .collect();
        if !batch.is_empty() {
            text.push_str(&format!(
                " && sudo apt-get install -y{flag} {}",
                batch.join(" ")
            ));
        }
    }
    text
}

fn install_packages(missing: &[&Need], linker_ok: bool) -> Result<()> {
    let names: Vec<&str> = missing.iter().map(|n| n.package).collect();
    if cmd::which("apt-get").is_none() {
        bail!(
            "this is not a Debian-like system (no apt-get), so setup cannot install what is missing. \
             Install these by hand (Debian package names; {DEBIAN_RUSTC} must be a rustc with a prebuilt \
             core for bpfel-unknown-none and LLVM {LLVM_MAJOR}):{}",
            by_hand(missing, linker_ok)
        );
    }
    if !cmd::is_root() {
        bail!(
            "installing packages needs root. Run `sudo apt-get update{}`, \
             then `cargo xtask setup` again (or run it as root). Missing:{}",
            apt_install_lines(missing),
            by_hand(missing, linker_ok)
        );
    }
    step(format!("installing Debian packages: {}", names.join(" ")));
    cmd::run(Command::new("apt-get").arg("update"))?;
    for recommends in [true, false] {
        let batch: Vec<&str> = missing
            .iter()
            .filter(|n| n.recommends == recommends)
            .map(|n| n.package)
            .collect();
        if batch.is_empty() {
            continue;
        }
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y"]);
        if !recommends {
            apt.arg("--no-install-recommends");
        }
        cmd::run(apt.args(&batch).env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let still: Vec<&str> = missing
        .iter()
        .filter(|n| !(n.present)())
        .map(|n| n.package)
        .collect();
    if !still.is_empty() {
        bail!(
            "apt-get install succeeded but these still look missing (their programs are not on PATH \
             nor in /usr/sbin, /sbin, /usr/bin, /bin): {}",
            still.join(" ")
        );
    }
    Ok(())
}

fn install_bpf_linker() -> Result<()> {
    step(format!(
        "installing bpf-linker {BPF_LINKER_VERSION} against LLVM {LLVM_MAJOR} (about a minute)"
    ));
    let mut cmd = Command::new("cargo");
    cmd.args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
        .args(["--locked", "--force", "--no-default-features"])
        .args(["--features", BPF_LINKER_FEATURE]);
    // Built by rustup's toolchain, with no flags or wrappers from outside.
    cmd::clean_cargo_env(&mut cmd).env("LLVM_PREFIX", LLVM_PREFIX);
    cmd::run(&mut cmd)?;
    match installed_bpf_linker() {
        Some(v) if v == BPF_LINKER_VERSION => Ok(()),
        Some(v) => bail!(
            "installed bpf-linker {BPF_LINKER_VERSION}, but `bpf-linker --version` on PATH reports {v}: \
             another bpf-linker comes first on PATH"
        ),
        None => bail!(
            "installed bpf-linker, but it is not on PATH: add cargo's bin dir (usually ~/.cargo/bin) to PATH"
        ),
    }
}

/// The one fact that packages cannot tell: rustc and bpf-linker agree on LLVM.
fn check_toolchain() -> Result<()> {
    let out = cmd::probe(DEBIAN_RUSTC, &["-vV"])
        .with_context(|| format!("`{DEBIAN_RUSTC} -vV` failed"))?;
    let info = parse_rustc_vv(&out)
        .with_context(|| format!("cannot read `{DEBIAN_RUSTC} -vV` output:\n{out}"))?;
    if info.llvm_major != Some(LLVM_MAJOR) {
        bail!(
            "{DEBIAN_RUSTC} {} uses LLVM {}, but bpf-linker is built for LLVM {LLVM_MAJOR}: a mismatch \
             fails to link or, worse, links with broken BTF (docs/DEVELOPING.md). Update LLVM_MAJOR and the \
             package names in xtask together with the rustc-web package",
            info.release,
            info.llvm_major.map_or("?".to_owned(), |m| m.to_string())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_package_names_follow_llvm_major() {
        for need in LINKER_NEEDS {
            assert!(
                need.package.contains(&format!("-{LLVM_MAJOR}-")),
                "{}",
                need.package
            );
        }
    }

    #[test]
    fn ldirectord_comes_without_its_recommends() {
        let missing: Vec<&Need> = NEEDS.iter().collect();
        let lines = apt_install_lines(&missing);
        assert!(
            lines.contains("--no-install-recommends ldirectord ipvsadm libnet-inet6glue-perl"),
            "{lines}"
        );
        assert!(lines.contains("install -y rustc-web"), "{lines}");
    }

    #[test]
    fn by_hand_lists_everything() {
        let missing: Vec<&Need> = NEEDS.iter().collect();
        let text = by_hand(&missing, false);
        for n in NEEDS {
            assert!(text.contains(n.package));
        }
        assert!(text.contains("cargo install bpf-linker --version 0.13.0"));
        assert!(text.contains("--features llvm-22"));
    }
}

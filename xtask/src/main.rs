//! `cargo xtask`: setup, build, run, test, demo, clippy, bench, fuzz, deb.
//!
//! Every step prints a `==> ` progress line and the command it runs; a failure
//! exits non-zero and names the failing command.

mod cmd;
mod deb;
mod lint;
mod setup;
mod tasks;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, test and run the XDP load balancer"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args)]
struct BuildOpts {
    /// Build the BPF object with lb-ebpf's dev profile instead of release.
    #[arg(long)]
    debug_bpf: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what is missing: Debian's rustc-web with the BPF core, LLVM, bpf-linker,
    /// and the tools the tests use (idempotent; needs root to install packages).
    Setup,
    /// Build the BPF object, then lbctl (target/release/lbctl) with the object embedded.
    Build(BuildOpts),
    /// Build, then run lbctl with ARGS: `cargo xtask run -- ARGS…`.
    Run {
        #[command(flatten)]
        build: BuildOpts,
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Build, check the aya pins, rustfmt and clippy (as `clippy`), run lb-ebpf's
    /// host unit tests and the workspace tests; extra ARGS go to `cargo test`:
    /// `cargo xtask test -- FILTER -- --nocapture`.
    Test {
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Build, then run the demo (lb-tests' lb-demo binary); ARGS go to the demo.
    Demo {
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// rustfmt --check on both workspaces, and clippy (-D warnings) on the host
    /// workspace, lb-ebpf's lib on the host and lb-ebpf's BPF binary (Debian's
    /// clippy); names every check and crate that failed. `test` runs it too.
    Clippy,
    /// Build, then run the benchmarks (needs root): per-packet cost through
    /// BPF_PROG_TEST_RUN against a trivial XDP_TX program, control-plane costs,
    /// real TCP through the LB. Writes target/bench/latest.{json,png}.
    Bench {
        /// A few seconds, every case checked, no timing asserted (run by `test`).
        #[arg(long)]
        quick: bool,
    },
    /// Build, then fuzz the XDP program through BPF_PROG_TEST_RUN (needs root):
    /// generated and mutated frames, every result checked against a model of LVS
    /// (lb-tests' lb-fuzz binary). `test` runs a quick 10,000-frame run.
    Fuzz {
        /// Frames to run.
        #[arg(long, default_value_t = 1_000_000)]
        frames: u64,
        /// Seed of the frame generator (default: from the clock, printed); a seed
        /// reproduces a run.
        #[arg(long)]
        seed: Option<u64>,
        /// More lb-fuzz options: `-- --check-every 1`, `-- --flood --conns 1048576`.
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Build, then the Debian package lbctl (target/deb/lbctl_VERSION_ARCH.deb):
    /// lbctl, its man page, completions and systemd units; it diverts
    /// /usr/sbin/ipvsadm to lbctl while installed.
    Deb,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let root = tasks::root();
    match cli.command {
        Cmd::Setup => setup::ensure(true),
        Cmd::Build(opts) => tasks::build(&root, opts.debug_bpf).map(drop),
        Cmd::Run { build, args } => {
            let built = tasks::build(&root, build.debug_bpf)?;
            let mut lbctl = Command::new(&built.lbctl);
            lbctl.args(&args);
            cmd::step("running lbctl");
            eprintln!("    $ {}", cmd::show(&lbctl));
            let err = lbctl.exec(); // only returns on failure
            Err(err).with_context(|| format!("could not exec {}", built.lbctl.display()))
        }
        Cmd::Test { args } => tasks::test(&root, &args),
        Cmd::Demo { args } => tasks::demo(&root, &args),
        Cmd::Clippy => tasks::clippy(&root),
        Cmd::Bench { quick } => tasks::bench(&root, quick),
        Cmd::Fuzz { frames, seed, args } => fuzz(&root, frames, seed, &args),
        Cmd::Deb => {
            let built = tasks::build(&root, false)?;
            deb::build(&root, &built).map(drop)
        }
    }
}

/// `cargo xtask fuzz`: build, then lb-fuzz with the object and lbctl.
fn fuzz(root: &std::path::Path, frames: u64, seed: Option<u64>, extra: &[OsString]) -> Result<()> {
    let built = tasks::build(root, false)?;
    cmd::step(format!("fuzzing ({}/lb-fuzz)", xtask::TESTS_PACKAGE));
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(root)
        .args(["run", "--release", "--package", xtask::TESTS_PACKAGE])
        .args(["--bin", "lb-fuzz", "--", "--frames"])
        .arg(frames.to_string());
    if let Some(seed) = seed {
        cargo.arg("--seed").arg(seed.to_string());
    }
    cargo
        .args(extra)
        .env(xtask::BPF_OBJECT_ENV, &built.object)
        .env(xtask::LBCTL_ENV, &built.lbctl);
    cmd::run(&mut cargo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn trailing_args_are_passed_through() {
        let cli =
            Cli::try_parse_from(["xtask", "test", "--", "conn", "--", "--nocapture"]).unwrap();
        let Cmd::Test { args } = cli.command else {
            panic!("not test")
        };
        assert_eq!(args, ["conn", "--", "--nocapture"]);
        let cli = Cli::try_parse_from(["xtask", "run", "--debug-bpf", "--", "list", "-n"]).unwrap();
        let Cmd::Run { build, args } = cli.command else {
            panic!("not run")
        };
        assert!(build.debug_bpf);
        assert_eq!(args, ["list", "-n"]);
    }

    #[test]
    fn fuzz_defaults_to_a_million_frames() {
        let cli = Cli::try_parse_from(["xtask", "fuzz"]).unwrap();
        let Cmd::Fuzz { frames, seed, args } = cli.command else {
            panic!("not fuzz")
        };
        assert_eq!((frames, seed, args.len()), (1_000_000, None, 0));
        let cli = Cli::try_parse_from([
            "xtask",
            "fuzz",
            "--frames",
            "10",
            "--seed",
            "7",
            "--",
            "--check-every",
            "1",
        ])
        .unwrap();
        let Cmd::Fuzz { frames, seed, args } = cli.command else {
            panic!("not fuzz")
        };
        assert_eq!((frames, seed), (10, Some(7)));
        assert_eq!(args, ["--check-every", "1"]);
    }
}

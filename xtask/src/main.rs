//! `cargo xtask`: setup, build, run, test, demo, clippy, bench.
//!
//! Every step prints a `==> ` progress line and the command it runs; a failure
//! exits non-zero and names the failing command.

mod cmd;
mod setup;
mod tasks;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
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
    /// Build, check the aya pins, run lb-ebpf's host unit tests and the workspace
    /// tests; extra ARGS go to `cargo test`: `cargo xtask test -- FILTER -- --nocapture`.
    Test {
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Build, then run the demo (lb-tests' lb-demo binary); ARGS go to the demo.
    Demo {
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Clippy (-D warnings) on the host workspace and, separately, on lb-ebpf's lib.
    Clippy,
    /// Benchmarks through BPF_PROG_TEST_RUN (not implemented yet).
    Bench {
        /// A short run, for CI.
        #[arg(long)]
        quick: bool,
    },
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
        Cmd::Bench { quick: _ } => bail!("bench: not implemented yet"),
    }
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
}

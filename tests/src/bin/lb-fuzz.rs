//! `lb-fuzz`: the frame fuzzer (`cargo xtask fuzz`).
//!
//! ```text
//! lb-fuzz [--frames N] [--seed S] [--check-every K] [--control-every C] [--max-violations V]
//! lb-fuzz --flood [--conns N] [--syns N] [--established N] [--gap N[,N...]] [--handshakes] [--seed S]
//! ```
//!
//! Loads the XDP program on a private pin directory in a private lab
//! namespace, configures the fuzzer's services and runs N generated frames
//! (default 1,000,000) through it with `BPF_PROG_TEST_RUN`, checking every
//! result (see `lb_tests::fuzz`). The seed (default: from the clock, printed)
//! reproduces a run. Outcome counters are compared with the model every K
//! frames (default 1000; 1 names the exact frame of a miscount); a
//! control-plane change happens every C frames (default 1000). Exits 1 on any
//! violation, printing the frame as hex and as a test case to paste. Needs
//! root (CAP_BPF, CAP_NET_ADMIN).
//!
//! `--flood` measures table exhaustion instead: a connection table of
//! `--conns` entries (default 65536), `--syns` SYNs from random sources
//! (default 4x the table), while `--established` connections (default 64)
//! each send a packet every `--gap` flood SYNs (one run per gap given).
//! Prints how many established packets still reached their real server and
//! how many found their entry evicted. `--handshakes` makes every flood flow
//! send an ACK after its SYN (a flood of real clients rather than of SYNs).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lb_tests::fuzz::{self, FuzzConfig};

const USAGE: &str = "usage: lb-fuzz [--frames N] [--seed S] [--check-every K] \
                     [--control-every C] [--max-violations V]\n       \
                     lb-fuzz --flood [--conns N] [--syns N] [--established N] [--gap N[,N...]] \
                     [--handshakes] [--seed S]";

fn flood_main(args: &[String]) -> Result<()> {
    let mut conns = 65_536u32;
    let mut syns = None;
    let mut established = 64usize;
    let mut gaps = vec![1_000u64, 16_384, 65_536];
    let mut seed = 1u64;
    let handshakes = args.iter().any(|a| a == "--handshakes");
    let mut it = args
        .iter()
        .filter(|a| *a != "--flood" && *a != "--handshakes");
    while let Some(name) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{name} needs a value\n{USAGE}"))?
            .replace('_', "");
        let num = |v: &str| -> Result<u64> {
            v.parse()
                .with_context(|| format!("{name} {v}: not a number\n{USAGE}"))
        };
        match name.as_str() {
            "--conns" => conns = u32::try_from(num(&value)?)?,
            "--syns" => syns = Some(num(&value)?),
            "--established" => established = num(&value)? as usize,
            "--gap" => gaps = value.split(',').map(num).collect::<Result<_>>()?,
            "--seed" => seed = num(&value)?,
            // `cargo xtask fuzz` always passes it; a flood has its own size.
            "--frames" => {}
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    for gap in gaps {
        let cfg = fuzz::FloodConfig {
            seed,
            conns,
            syns: syns.unwrap_or(4 * u64::from(conns)),
            established,
            gap,
            handshakes,
        };
        let r = fuzz::flood(&cfg)?;
        println!("{}", r.render());
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<FuzzConfig> {
    let mut cfg = FuzzConfig {
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        frames: 1_000_000,
        check_every: 1000,
        control_every: 1000,
        max_violations: 10,
        progress_every: 100_000,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        if name == "-h" || name == "--help" {
            bail!("{USAGE}");
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))?
                .clone(),
        };
        let n: u64 = value
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name} {value}: not a number\n{USAGE}"))?;
        match name {
            "--frames" => cfg.frames = n,
            "--seed" => cfg.seed = n,
            "--check-every" => cfg.check_every = n.max(1),
            "--control-every" => cfg.control_every = n,
            "--max-violations" => cfg.max_violations = n.max(1) as usize,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--flood") {
        if !lb_tests::require_root("lb-fuzz --flood") {
            return ExitCode::from(2);
        }
        return match flood_main(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lb-fuzz: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lb-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    if !lb_tests::require_root("lb-fuzz") {
        return ExitCode::from(2);
    }
    eprintln!(
        "lb-fuzz: seed {} (replay with --seed {}), {} frames",
        cfg.seed, cfg.seed, cfg.frames
    );
    match fuzz::run_in_lab(&cfg) {
        Ok(report) => {
            print!("{}", report.render());
            if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("lb-fuzz: {e:#}");
            ExitCode::from(1)
        }
    }
}

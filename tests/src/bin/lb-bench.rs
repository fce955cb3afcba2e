//! `lb-bench [--quick]`: the benchmarks of issue 6, run by `cargo xtask
//! bench`. Prints a table, writes `target/bench/latest.json` and
//! `target/bench/latest.png`.
//!
//! 1. Per packet, through `BPF_PROG_TEST_RUN` on one pinned CPU: the
//!    `lb_baseline` MAC swap (the limit), traffic to no service, an
//!    established flow, a SYN under a persistence template, new flows
//!    scheduled by wrr over 16 reals, and the established flow with the
//!    connection and template tables 90% full.
//! 2. Control plane: invalidating a quiescent real's templates among 1,000
//!    and 1,000,000, `lbctl -e -w` to the first packet under the new weight,
//!    `lbctl -L -n` over 1,000 services of 16 reals, memory per entry;
//!    `lbctl -L -c -n` and `-L -n` over 1,000,000 connection entries, and
//!    `-S -n` and `-L -n` over thousands of services of 16 reals made
//!    through `Table` (`--services N`), with each lbctl's peak RSS.
//! 3. Real TCP through the LB, through the `lb_fwd_baseline` program in the
//!    same topology, and straight to the real server.
//!
//! `--quick` (run by `cargo xtask test`) does all of it in a few seconds
//! with few frames and small tables: every case must take its path and
//! return its verdict; timings are printed, never asserted. It writes
//! `quick.json`/`quick.png` instead of `latest.*`.

#[path = "../bench/mod.rs"]
mod bench;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, bail};
use bench::{
    control::{self, ControlOpts},
    packet::{self, PacketOpts},
    plane::{Lab, OBJECT_OVERRIDE_ENV},
    report::{self, Report},
    traffic::{self, TrafficOpts},
};
use lb_user::Sizes;

fn usage() -> &'static str {
    "usage: lb-bench [--quick] [--only packet|control|traffic] [--services N]\n\
     \n\
     Benchmarks of the XDP load balancer (needs root).\n\
     --quick  a few seconds: checks that every case runs and takes its path, for CI;\n\
     \x20        writes target/bench/quick.* instead of target/bench/latest.*\n\
     --only   run one section and print it; writes no file\n\
     --services N  services of 16 reals in the control plane's listing at scale\n\
     \x20        (default 10000; 50 with --quick)\n\
     LB_BENCH_OBJECT=PATH times the programs of another build of the BPF object."
}

/// What to run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    All,
    Packet,
    Control,
    Traffic,
}

/// Services of 16 reals in the listing-at-scale case (the target:
/// `-S -n` and `-L -n` of 10,000 services x 16 reals under a second).
const SCALE_SERVICES: usize = 10_000;

fn parse_args(args: &[String]) -> Result<(bool, Only, Option<usize>), String> {
    let mut quick = false;
    let mut only = Only::All;
    let mut services = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => {
                only = match it.next().map(String::as_str) {
                    Some("packet") => Only::Packet,
                    Some("control") => Only::Control,
                    Some("traffic") => Only::Traffic,
                    Some(other) => return Err(format!("unknown section `{other}`")),
                    None => return Err("--only needs a section".into()),
                }
            }
            "--services" => {
                services = match it.next().map(|n| n.parse::<usize>()) {
                    Some(Ok(n)) if n > 0 => Some(n),
                    _ => return Err("--services needs a positive number".into()),
                }
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((quick, only, services))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let (quick, only, services) = match parse_args(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("lb-bench: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    if !lb_tests::require_root("lb-bench") {
        return ExitCode::SUCCESS;
    }
    match run(quick, only, services) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// CPU model, frequency, count, memory and kernel, for the report.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} ({} MHz), {cpus} CPUs, {mem_gib:.0} GiB, Linux {}",
        field("model name"),
        field("cpu MHz"),
        kernel.trim()
    )
}

/// Table sizes of the quick form (fast to create).
const SMALL: Sizes = Sizes {
    conns: 16384,
    templates: 16384,
    ..Sizes::DEFAULT
};

fn run(quick: bool, only: Only, services: Option<usize>) -> Result<()> {
    let started = std::time::Instant::now();
    let lbctl = lb_tests::lb::lbctl_path()?;
    match std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|s| s.trim().to_string())
        .as_deref()
    {
        Ok("0") => {}
        Ok(v) => eprintln!(
            "!!! kernel.bpf_stats_enabled = {v}: every run costs ~70 ns more; the ratios still hold"
        ),
        Err(_) => {}
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The last CPU; the others keep the rest of the system.
    let cpu = cpus - 1;
    let (popts, copts, topts) = if quick {
        (
            PacketOpts {
                frames: 200,
                rounds: 1,
                sizes: SMALL,
                full_sizes: Sizes {
                    conns: 16384,
                    templates: 16384,
                    ..Sizes::DEFAULT
                },
                cpu,
            },
            ControlOpts {
                templates: (1000, 10_000),
                services: 10,
                list_sizes: SMALL,
                reps: 2,
                lbctl,
                scale_conns: 20_000,
                scale_services: services.unwrap_or(50),
                scale_reps: 1,
            },
            TrafficOpts {
                secs: 0.3,
                rounds: 1,
                cps_clients: 2,
            },
        )
    } else {
        (
            PacketOpts {
                frames: 100_000,
                rounds: 5,
                // The production defaults, nearly empty.
                sizes: Sizes::default(),
                full_sizes: Sizes::default(),
                cpu,
            },
            ControlOpts {
                templates: (1000, 1_000_000),
                services: 1000,
                list_sizes: Sizes::default(),
                reps: 11,
                lbctl,
                scale_conns: 1_000_000,
                scale_services: services.unwrap_or(SCALE_SERVICES),
                scale_reps: 3,
            },
            TrafficOpts {
                secs: 2.0,
                rounds: 5,
                cps_clients: 4,
            },
        )
    };
    let object = match std::env::var_os(OBJECT_OVERRIDE_ENV) {
        Some(p) => format!("{} (from {OBJECT_OVERRIDE_ENV})", p.to_string_lossy()),
        None => "the object embedded at build time".to_string(),
    };
    let want = |o: Only| only == Only::All || only == o;
    let lab = Lab::new()?;
    let packet = if want(Only::Packet) {
        eprintln!(
            "==> per packet ({} frames x {} rounds; programs of {object})",
            popts.frames, popts.rounds
        );
        Some(lab.run(cpu, || packet::run(&popts))?)
    } else {
        None
    };
    let control = if want(Only::Control) {
        eprintln!("==> control plane");
        Some(lab.run(cpu, || control::run(&copts))?)
    } else {
        None
    };
    drop(lab);
    let traffic = if want(Only::Traffic) {
        eprintln!(
            "==> real traffic ({} s runs x {} rounds)",
            topts.secs, topts.rounds
        );
        let t = traffic::run(&topts)?;
        if quick && t.paths.iter().any(|(_, p)| p.failed != 0) {
            bail!("short connections failed: {:?}", t.paths);
        }
        Some(t)
    } else {
        None
    };
    let r = Report {
        machine: machine(),
        object,
        packet: packet.as_ref(),
        control: control.as_ref(),
        traffic: traffic.as_ref(),
    };
    println!("{}", report::table(&r));
    if only == Only::All {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
        let dir = dir.canonicalize().unwrap_or(dir);
        report::write(&r, &dir, if quick { "quick" } else { "latest" })
            .context("writing the results")?;
    }
    eprintln!("==> done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

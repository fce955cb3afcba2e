//! Control plane at scale: the real `lbctl` listing a million connection
//! entries (`-L -c -n` and `-L -n`, which counts ActiveConn/InActConn from
//! them), and saving and listing thousands of services of 16 reals (`-S -n`,
//! `-L -n`). Each is timed (wall clock, from spawn to exit, reading its
//! output through a pipe), its CPU time taken from `wait4`, and its peak
//! resident memory read from `/proc/PID/status` (`VmHWM`) each time it
//! writes. The output is checked: every entry, every
//! service and every real must be listed.
//!
//! Services are made only through `Table::add_service`/`add_real` (what
//! `lbctl -A`/`-a` and `-R` do), so the case holds whatever the maps' layout.

use std::{
    io::Read,
    net::Ipv4Addr,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail, ensure};
use lb_common::{Conn, ConnKey};
use lb_user::{
    Sizes,
    model::{Proto, Sched, ServiceId, ServiceSpec},
};

use super::{
    batch,
    packet::{REALS, VIP, fill, provision, real},
    plane::Plane,
    stats::median,
};

/// One timed `lbctl` run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    /// Wall time, spawn to exit.
    pub ms: f64,
    /// CPU time of the process, user and system (steadier than the wall
    /// time on a shared machine).
    pub user_ms: f64,
    pub sys_ms: f64,
    /// Peak resident memory.
    pub rss_kib: u64,
}

/// Median times and largest peak RSS over repetitions.
fn summary(runs: &[Run]) -> Run {
    let m = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<f64>>());
    Run {
        ms: m(|r| r.ms),
        user_ms: m(|r| r.user_ms),
        sys_ms: m(|r| r.sys_ms),
        rss_kib: runs.iter().map(|r| r.rss_kib).max().unwrap_or(0),
    }
}

/// Runs `lbctl ARGS` on the pin directory `dir`; returns the run and its
/// output (whole if `keep`, else only its line count, so that a listing of
/// a million rows is not held here either).
fn timed(bin: &Path, dir: &Path, args: &[&str], keep: bool) -> Result<(Run, usize, String)> {
    timed_in(bin, dir, args, keep, None)
}

/// As [`timed`], with `input` written to lbctl's standard input.
fn timed_in(
    bin: &Path,
    dir: &Path,
    args: &[&str],
    keep: bool,
    input: Option<String>,
) -> Result<(Run, usize, String)> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .env("LB_PIN_PATH", dir)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running lbctl")?;
    let writer = match (input, child.stdin.take()) {
        (Some(text), Some(mut stdin)) => Some(std::thread::spawn(move || {
            use std::io::Write as _;
            stdin.write_all(text.as_bytes())
        })),
        _ => None,
    };
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take().context("stdout")?;
    // The peak so far, sampled while lbctl runs (a run that prints nothing,
    // as `-R`, is sampled too); a reaped process has none.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak_rss_kib(pid).unwrap_or(0).max(peak);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak
        })
    };
    let (mut lines, mut kept) = (0usize, Vec::new());
    let mut buf = vec![0u8; 1 << 16];
    let mut rss_kib = 0;
    loop {
        let n = stdout.read(&mut buf)?;
        // The peak so far, while lbctl writes (it exits when done).
        rss_kib = rss_kib.max(peak_rss_kib(pid).unwrap_or(0));
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
    }
    if let Some(w) = writer {
        w.join()
            .map_err(|_| anyhow::anyhow!("stdin writer panicked"))?
            .context("writing lbctl's input")?;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not reaped yet (std's `Child` is not
    // waited on afterwards).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    rss_kib = rss_kib.max(sampler.join().unwrap_or(0));
    if reaped != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "lbctl {} failed (wait status {status:#x}): {err}",
            args.join(" ")
        );
    }
    ensure!(rss_kib > 0, "no VmHWM of lbctl {} was read", args.join(" "));
    let tv_ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    Ok((
        Run {
            ms,
            user_ms: tv_ms(ru.ru_utime),
            sys_ms: tv_ms(ru.ru_stime),
            rss_kib,
        },
        lines,
        String::from_utf8_lossy(&kept).into_owned(),
    ))
}

/// The process's peak resident memory (`VmHWM`), KiB. (`wait4`'s
/// `ru_maxrss` would not do: it keeps the high-water mark of the memory the
/// child started from, this benchmark's own, across `exec`.)
fn peak_rss_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[derive(Clone, Debug, Default)]
pub struct ConnsReport {
    /// Entries in CONNS.
    pub entries: usize,
    /// Seconds to fill them (batch updates).
    pub fill_s: f64,
    /// `lbctl -L -c -n`.
    pub list_c: Run,
    /// `lbctl -L -n` over the same table (counting ActiveConn).
    pub list_n: Run,
}

/// `lbctl -L -c -n` and `-L -n` with `entries` live connection entries of
/// one service of 16 reals (CONNS sized twice that, so the LRU evicts none).
pub fn conns(bin: &Path, entries: usize, reps: usize) -> Result<ConnsReport> {
    let mut plane = Plane::new(Sizes {
        conns: (2 * entries).next_power_of_two().max(1 << 14) as u32,
        templates: 1 << 14,
        ..Sizes::DEFAULT
    })?;
    provision(&mut plane)?;
    let fill_s = fill(&mut plane, entries, 0, 1000)?;
    let have = batch::count::<ConnKey, Conn>(plane.conns_fd()?)?;
    ensure!(
        have == entries,
        "{have} entries in CONNS after filling {entries}"
    );
    plane.release_table();
    let dir = plane.pin_dir().to_path_buf();
    let (mut c, mut n) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (run, lines, _) = timed(bin, &dir, &["-L", "-c", "-n"], false)?;
        ensure!(
            lines == entries + 2,
            "lbctl -L -c -n printed {lines} lines for {entries} entries"
        );
        c.push(run);
        let (run, _, out) = timed(bin, &dir, &["-L", "-n"], true)?;
        // Every entry is ESTABLISHED: ActiveConn (column 5) sums to all.
        let active: usize = out
            .lines()
            .filter(|l| l.starts_with("  ->"))
            .filter_map(|l| l.split_whitespace().nth(4)?.parse::<usize>().ok())
            .sum();
        ensure!(
            active == entries,
            "lbctl -L -n counted {active} active connections of {entries}"
        );
        n.push(run);
    }
    Ok(ConnsReport {
        entries,
        fill_s,
        list_c: summary(&c),
        list_n: summary(&n),
    })
}

#[derive(Clone, Debug, Default)]
pub struct ServicesReport {
    /// Services of 16 reals.
    pub services: usize,
    /// Seconds to make them through `Table` (as `lbctl -R` would).
    pub provision_s: f64,
    /// `lbctl -S -n`.
    pub save: Run,
    /// `lbctl -L -n`.
    pub list: Run,
    /// Lines of the saved rules (`-S -n`: one per service and real).
    pub restore_lines: usize,
    /// `lbctl -R` of those rules into empty tables.
    pub restore: Run,
}

/// `lbctl -S -n` and `-L -n` over `services` services of 16 reals each,
/// made through `Table` on tables of `sizes`.
pub fn services(bin: &Path, services: usize, sizes: Sizes, reps: usize) -> Result<ServicesReport> {
    const BASE: u16 = 10000;
    ensure!(
        services <= usize::from(u16::MAX - BASE),
        "at most {} services (one port each)",
        u16::MAX - BASE
    );
    let mut plane = Plane::new(sizes)?;
    let t = plane.table()?;
    let start = Instant::now();
    for k in 0..services {
        let id = ServiceId {
            proto: Proto::Tcp,
            addr: VIP.into(),
            port: BASE + k as u16,
        };
        t.add_service(&ServiceSpec {
            id,
            sched: Sched::Wrr,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST.into(),
            one_packet: false,
        })
        .with_context(|| format!("adding service {k}"))?;
        for i in 0..REALS {
            t.add_real(&id, &real(i, id.port, 1 + i as u32 % 4))
                .with_context(|| format!("adding real {i} of service {k}"))?;
        }
    }
    let provision_s = start.elapsed().as_secs_f64();
    plane.release_table();
    let dir = plane.pin_dir().to_path_buf();
    let (mut save, mut list) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (run, lines, _) = timed(bin, &dir, &["-S", "-n"], false)?;
        ensure!(
            lines == services * (REALS + 1),
            "lbctl -S -n printed {lines} lines for {services} services of {REALS} reals"
        );
        save.push(run);
        let (run, _, out) = timed(bin, &dir, &["-L", "-n"], true)?;
        let listed = (
            out.lines().filter(|l| l.starts_with("TCP ")).count(),
            out.lines().filter(|l| l.contains(" Route ")).count(),
        );
        ensure!(
            listed == (services, REALS * services),
            "lbctl -L -n listed {listed:?} services and reals, expected {services} and {}",
            REALS * services
        );
        list.push(run);
    }
    // The saved rules restored into empty tables of the same sizes: the
    // same rules come back.
    let (_, restore_lines, rules) = timed(bin, &dir, &["-S", "-n"], true)?;
    let mut restore = Vec::new();
    for _ in 0..reps.min(3) {
        let mut empty = Plane::new(sizes)?;
        empty.release_table();
        let edir = empty.pin_dir().to_path_buf();
        let (run, _, _) = timed_in(bin, &edir, &["-R"], false, Some(rules.clone()))?;
        let (_, _, again) = timed(bin, &edir, &["-S", "-n"], true)?;
        ensure!(again == rules, "lbctl -R did not restore what -S saved");
        restore.push(run);
    }
    Ok(ServicesReport {
        services,
        provision_s,
        save: summary(&save),
        list: summary(&list),
        restore_lines,
        restore: summary(&restore),
    })
}

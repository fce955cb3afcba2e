//! End to end: what `lbctl` does with input that never ends or is not text
//! (README, "Health checking" and "Differences from IPVS"), and with output
//! nobody reads. A configuration
//! that is a device or a FIFO is refused before it is read, a byte that is
//! not UTF-8 is accepted in a comment and refused with `FILE:LINE` in a
//! value, a huge bad line gives a short message, and `lbctl -R` reads a
//! bounded line. The daemon keeps its configuration, and stays responsive,
//! when the file is replaced by such input while it runs. A listing whose
//! reader is gone ends by SIGPIPE, silently, as ipvsadm's does.

use std::{
    os::unix::fs::FileTypeExt as _,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    BpfPinDir,
    lb::{LbTopology, lbctl_path, wait_for},
    netns::Scratch,
    require_root,
};

/// A bound for "at once": a refusal takes milliseconds; the rest is a busy
/// 2-CPU machine. Without the fix, these inputs never finish.
const QUICK: Duration = Duration::from_secs(10);

fn mkfifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .with_context(|| format!("mkfifo {}", path.display()))
}

/// Waits for `child` at most `limit`; kills it and fails if it is still
/// running then.
fn output_within(mut child: Child, limit: Duration, what: &str) -> Result<Output> {
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

/// `lbctl ARGS` with `stdin`, on a pin directory that does not exist (these
/// inputs are refused before any table is opened).
fn lbctl(scratch: &Scratch, args: &[&str], stdin: Stdio) -> Result<Output> {
    let child = Command::new(lbctl_path()?)
        .args(args)
        .env("LB_PIN_PATH", scratch.0.join("no-pins"))
        .env("LB_RUN_DIR", scratch.0.join("run"))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning lbctl")?;
    output_within(child, QUICK, &format!("lbctl {}", args.join(" ")))
}

/// Runs `lbctl ARGS`, which must fail with a short stderr containing every
/// one of `wanted`.
fn refused(scratch: &Scratch, args: &[&str], stdin: Stdio, wanted: &[&str]) -> Result<()> {
    let o = lbctl(scratch, args, stdin)?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(!o.status.success(), "lbctl {args:?} accepted: {err}");
    ensure!(err.len() < 1000, "{} bytes of error: {err:.300}", err.len());
    for w in wanted {
        ensure!(err.contains(w), "lbctl {args:?}: wanted {w:?} in {err}");
    }
    ensure!(
        !scratch.0.join("no-pins").exists(),
        "lbctl {args:?} made the pin directory"
    );
    Ok(())
}

#[test]
fn endless_and_binary_input_is_refused_at_once_with_its_place() -> Result<()> {
    if !require_root("endless_and_binary_input_is_refused_at_once_with_its_place") {
        return Ok(());
    }
    let s = Scratch::new("input")?;
    let run = |conf: &Path, wanted: &[&str]| -> Result<()> {
        let conf = conf.to_str().context("path")?;
        refused(&s, &["daemon", "--foreground", conf], Stdio::null(), wanted)
    };
    // A configuration that never ends, and one that never starts.
    run(
        Path::new("/dev/zero"),
        &["/dev/zero: cannot read the configuration: not a regular file (a character device)"],
    )?;
    let fifo = s.0.join("fifo.cf");
    mkfifo(&fifo)?;
    run(&fifo, &["not a regular file (a FIFO)"])?;
    // Latin-1 in a value: the line and the column.
    let conf = s.0.join("latin1.cf");
    std::fs::write(
        &conf,
        b"# caf\xe9\nvirtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\trequest=\"/caf\xe9\"\n",
    )?;
    run(
        &conf,
        &[&format!(
            "{}:4: byte 0xE9 at column 15 is not UTF-8",
            conf.display()
        )],
    )?;
    // A 1 MB bad line: a short message that still says where and what.
    let conf = s.0.join("huge.cf");
    std::fs::write(&conf, format!("checkinterval=1\n{}\n", "x".repeat(1 << 20)))?;
    run(
        &conf,
        &[
            &format!("{}:2: Unknown command \"xxxx", conf.display()),
            "bytes]",
        ],
    )?;

    // lbctl -R: a line that never ends, and a byte that is not UTF-8.
    refused(
        &s,
        &["-R"],
        Stdio::from(std::fs::File::open("/dev/zero")?),
        &["lbctl: line 1: longer than 4096 bytes"],
    )?;
    let rules = s.0.join("rules");
    std::fs::write(
        &rules,
        b"-A -t 203.0.113.10:80 -s rr # \xe9 is fine here\n-a -t 203.0.113.10:80 -r 198.51.100.\xe9\n",
    )?;
    refused(
        &s,
        &["-R"],
        Stdio::from(std::fs::File::open(&rules)?),
        &["lbctl: line 2: byte 0xE9 at column 37 is not UTF-8"],
    )?;
    Ok(())
}

/// `lbctl -L -n`'s real servers and weights.
fn weights(lb: &LbTopology) -> Result<Vec<(String, u32)>> {
    Ok(lb
        .lbctl_ok(&["-L", "-n"])?
        .lines()
        .filter(|l| l.starts_with("  ->"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(1)?.to_string(), f.get(3)?.parse().ok()?))
        })
        .collect())
}

#[test]
fn daemon_takes_latin1_comments_and_survives_bad_files_on_reload() -> Result<()> {
    if !require_root("daemon_takes_latin1_comments_and_survives_bad_files_on_reload") {
        return Ok(());
    }
    let s = Scratch::new("input")?;
    let lb = LbTopology::new(1)?;
    let vip = lb.topo.vip;
    let rs = lb.topo.backends[0].addr;
    let log = s.0.join("daemon.log");
    let conf_path = s.0.join("ldirectord.cf");
    let conf = |weight: u32, extra: &[u8]| -> Vec<u8> {
        let mut c = format!(
            "# Latin-1 comments, as ldirectord accepts: caf\u{0}\n\
             checkinterval=1\nautoreload=yes\nlogfile=\"{}\"\n\
             virtual={vip}:80\n\t# \u{0}\n\treal={rs}:80 gate {weight} # \u{0}\n\tchecktype=on\n",
            log.display()
        )
        .into_bytes();
        // Each NUL placeholder becomes the Latin-1 byte 0xE9.
        for b in &mut c {
            if *b == 0 {
                *b = 0xe9;
            }
        }
        c.extend_from_slice(extra);
        c
    };
    // Replaces the file the way editors do (a new file renamed over it).
    let replace = |bytes: &[u8]| -> Result<()> {
        let tmp = s.0.join("new.cf");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &conf_path)?;
        Ok(())
    };
    replace(&conf(2, b""))?;
    let stderr = std::fs::File::create(s.0.join("stderr"))?;
    let child = lb
        .topo
        .lb
        .ns
        .nsenter_cmd(lbctl_path()?)
        .args(["daemon", "--foreground"])
        .arg(&conf_path)
        .env("LB_PIN_PATH", lb.pins.path())
        .env("LB_RUN_DIR", s.0.join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()?;
    struct Guard(Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut d = Guard(child);
    let text = |d: &mut Guard| -> Result<String> {
        if let Some(st) = d.0.try_wait()? {
            bail!(
                "the daemon exited ({st}): {}{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                std::fs::read_to_string(s.0.join("stderr")).unwrap_or_default()
            );
        }
        Ok(std::fs::read_to_string(&log).unwrap_or_default())
    };
    let limit = Duration::from_secs(8);
    let real = format!("{rs}:80");
    wait_for("the real server with weight 2", limit, || {
        Ok((weights(&lb)? == [(real.clone(), 2)]).then_some(()))
    })
    .with_context(|| text(&mut d).unwrap_or_default())?;

    // A byte that is not UTF-8 in a value: reported with its line, once;
    // the old configuration stays.
    replace(&conf(3, b"\treceive=\"caf\xe9\"\n"))?;
    let bad = format!(
        "{}:9: byte 0xE9 at column 14 is not UTF-8",
        conf_path.display()
    );
    wait_for("the bad line in the log", limit, || {
        Ok(text(&mut d)?.contains(&bad).then_some(()))
    })
    .with_context(|| text(&mut d).unwrap_or_default())?;
    ensure!(text(&mut d)?.contains("keeping the old configuration"));
    ensure!(weights(&lb)? == [(real.clone(), 2)]);

    // The file replaced by a FIFO: refused, not waited on.
    let fifo = s.0.join("fifo");
    mkfifo(&fifo)?;
    std::fs::rename(&fifo, &conf_path)?;
    ensure!(std::fs::metadata(&conf_path)?.file_type().is_fifo());
    wait_for("the FIFO in the log", limit, || {
        Ok(text(&mut d)?
            .contains("not a regular file (a FIFO)")
            .then_some(()))
    })
    .with_context(|| text(&mut d).unwrap_or_default())?;

    // Still responsive: a good file is applied.
    replace(&conf(4, b""))?;
    wait_for("the real server with weight 4", limit, || {
        Ok((weights(&lb)? == [(real.clone(), 4)]).then_some(()))
    })
    .with_context(|| text(&mut d).unwrap_or_default())?;
    let log_text = text(&mut d)?;
    ensure!(
        log_text.matches(&bad).count() == 1,
        "reported more than once:\n{log_text}"
    );
    Ok(())
}

#[test]
fn a_listing_whose_reader_is_gone_ends_by_sigpipe_silently() -> Result<()> {
    use std::os::unix::process::ExitStatusExt as _;
    if !require_root("a_listing_whose_reader_is_gone_ends_by_sigpipe_silently") {
        return Ok(());
    }
    let pins = BpfPinDir::new()?;
    // A pipe whose read end is closed before lbctl writes its first line.
    let (read, write) = nix::unistd::pipe()?;
    drop(read);
    let child = Command::new(lbctl_path()?)
        .args(["-L", "-c", "-n"])
        .env("LB_PIN_PATH", pins.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .spawn()?;
    let o = output_within(child, QUICK, "lbctl -L -c -n")?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        o.status.signal() == Some(libc::SIGPIPE) && err.is_empty(),
        "lbctl -L -c -n into a closed pipe: {} {err}",
        o.status
    );
    Ok(())
}

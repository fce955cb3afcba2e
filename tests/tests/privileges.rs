//! Privileges: who may see and change the tables, the daemon's state and its
//! log (README, "Operating it safely", "Privileges").
//!
//! `lbctl` needs capabilities, not euid 0: CAP_BPF and CAP_NET_ADMIN for
//! everything, CAP_PERFMON to attach (the verifier's rule for packet pointer
//! arithmetic), CAP_SYS_ADMIN only to mount bpffs. The tests run lbctl as
//! `nobody` with exactly the capabilities the shipped daemon unit gives, and
//! as root bounded as the shipped attach unit bounds it (`contrib/systemd/`,
//! read from the unit files), on a bpffs of their own laid out as the
//! shipped tmpfiles.d snippet lays out `/sys/fs/bpf`.

use std::{
    collections::BTreeMap,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use lb_tests::{
    Netns,
    lb::{lbctl_path, real_mac, wait_for},
    netns::{Scratch, format_mac, next_id, run_checked},
    require_root,
};

/// `nobody`, who owns the test's pin directory as `lbctl` owns
/// `/sys/fs/bpf/lb` in the shipped setup.
const NOBODY: u32 = 65534;
const VIP: &str = "203.0.113.10";

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("contrib")
        .join("systemd")
}

/// The `[section]` → key → values of a unit file (a key may repeat).
fn parse_unit(text: &str) -> Result<BTreeMap<(String, String), Vec<String>>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!("line {}: not key=value: {line}", n + 1);
        };
        ensure!(!section.is_empty(), "line {}: key outside a section", n + 1);
        out.entry((section.clone(), k.trim().to_string()))
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(out)
}

fn unit(name: &str) -> Result<BTreeMap<(String, String), Vec<String>>> {
    let path = contrib().join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_unit(&text).with_context(|| path.display().to_string())
}

fn key<'a>(u: &'a BTreeMap<(String, String), Vec<String>>, section: &str, k: &str) -> &'a str {
    u.get(&(section.to_string(), k.to_string()))
        .and_then(|v| v.last())
        .map_or("", String::as_str)
}

/// The capabilities a unit's `key` lists, sorted.
fn caps_of(name: &str, k: &str) -> Result<Vec<String>> {
    let u = unit(name)?;
    let mut caps: Vec<String> = key(&u, "Service", k)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    caps.sort();
    Ok(caps)
}

/// The unit's `AmbientCapabilities=` (what its user gets).
fn unit_caps(name: &str) -> Result<Vec<String>> {
    caps_of(name, "AmbientCapabilities")
}

/// The unit's `CapabilityBoundingSet=` (what its root process keeps).
fn bounding_caps(name: &str) -> Result<Vec<String>> {
    caps_of(name, "CapabilityBoundingSet")
}

fn setpriv_caps(caps: &[&str]) -> String {
    caps.iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `cmd` as nobody with the capabilities `caps` (`CAP_BPF` …) in its
/// inheritable, ambient (and so effective) sets, and no groups.
fn as_nobody(ns: &Netns, caps: &[&str], program: &Path) -> Command {
    let mut c = ns.nsenter_cmd("setpriv");
    c.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups");
    if !caps.is_empty() {
        let list = setpriv_caps(caps);
        c.arg(format!("--inh-caps={list}"))
            .arg(format!("--ambient-caps={list}"));
    }
    c.arg("--").arg(program);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `cmd` as root with only `caps` in its bounding set, as a unit's
/// `CapabilityBoundingSet=` leaves it.
fn as_bounded_root(ns: &Netns, caps: &[&str], program: &Path) -> Command {
    let mut c = ns.nsenter_cmd("setpriv");
    c.arg(format!("--bounding-set=-all,{}", setpriv_caps(caps)))
        .arg("--")
        .arg(program);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> Result<u32> {
    Ok(std::fs::metadata(p)
        .with_context(|| p.display().to_string())?
        .permissions()
        .mode()
        & 0o7777)
}

/// A bpffs of the test's own on `/tmp/lbt-bpffs-<pid>-<n>`, laid out as
/// `contrib/systemd/lbctl.tmpfiles` lays out `/sys/fs/bpf`: the root 0711,
/// `lb` 0700 owned by the service user (nobody here). Unmounted and removed
/// on drop. (`/sys/fs/bpf` itself is left alone: its mode is the host's.)
struct UserBpffs {
    mnt: PathBuf,
}

impl UserBpffs {
    fn new() -> Result<UserBpffs> {
        let mnt =
            std::env::temp_dir().join(format!("lbt-bpffs-{}-{}", std::process::id(), next_id()));
        std::fs::create_dir(&mnt)?;
        std::fs::set_permissions(&mnt, std::fs::Permissions::from_mode(0o711))?;
        let guard = UserBpffs { mnt };
        run_checked(
            Command::new("mount")
                .args(["-t", "bpf", "bpf"])
                .arg(&guard.mnt),
        )?;
        std::fs::set_permissions(&guard.mnt, std::fs::Permissions::from_mode(0o711))?;
        let lb = guard.pins();
        std::fs::create_dir(&lb)?;
        std::os::unix::fs::chown(&lb, Some(NOBODY), Some(NOBODY))?;
        std::fs::set_permissions(&lb, std::fs::Permissions::from_mode(0o700))?;
        Ok(guard)
    }

    /// The service user's pin directory.
    fn pins(&self) -> PathBuf {
        self.mnt.join("lb")
    }
}

impl Drop for UserBpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        if let Err(e) = std::fs::remove_dir(&self.mnt) {
            eprintln!("cannot remove {}: {e}", self.mnt.display());
        }
    }
}

/// A namespace with `eth0` on 198.51.100.0/24 and a permanent neighbour
/// entry for 198.51.100.11, so lbctl resolves the real server offline.
fn lab(role: &str) -> Result<Netns> {
    let ns = Netns::new(role)?;
    ns.ip_batch(&format!(
        "link add eth0 type veth peer name eth1\naddr add 198.51.100.2/24 dev eth0\n\
         link set eth1 up\nlink set eth0 up\n\
         neigh replace 198.51.100.11 lladdr {} dev eth0 nud permanent\n",
        format_mac(&real_mac(11))
    ))?;
    Ok(ns)
}

fn root_lbctl(ns: &Netns, pins: &Path, args: &[&str]) -> Result<Output> {
    Ok(ns
        .nsenter_cmd(lbctl_path()?)
        .args(args)
        .env("LB_PIN_PATH", pins)
        .stdin(Stdio::null())
        .output()?)
}

fn root_ok(ns: &Netns, pins: &Path, args: &[&str]) -> Result<String> {
    let o = root_lbctl(ns, pins, args)?;
    ensure!(o.status.success(), "lbctl {args:?} as root: {}", text(&o));
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The shipped units pass `systemd-analyze verify` without a warning, give
/// exactly the capabilities lbctl checks for (never CAP_SYS_ADMIN), and the
/// sysusers.d and tmpfiles.d snippets make the user and the pin directory
/// they expect (applied to a scratch root, as `--root=` does).
#[test]
fn shipped_systemd_units_verify_and_give_the_capabilities_lbctl_checks() -> Result<()> {
    if !require_root("shipped_systemd_units_verify_and_give_the_capabilities_lbctl_checks") {
        return Ok(());
    }
    let needed: Vec<String> = lb_user::pins::NEEDED_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    let d = unit("lbctl-daemon.service")?;
    let s = |k: &str| key(&d, "Service", k).to_string();
    assert_eq!(s("User"), "lbctl");
    assert_eq!(s("Group"), "lbctl");
    assert_eq!(unit_caps("lbctl-daemon.service")?, needed);
    assert_eq!(bounding_caps("lbctl-daemon.service")?, needed);
    assert_eq!(s("NoNewPrivileges"), "yes");
    assert!(
        s("ExecStart").ends_with(" daemon --foreground /etc/ha.d/ldirectord.cf"),
        "{}",
        s("ExecStart")
    );
    assert_eq!(s("ExecReload"), "/bin/kill -HUP $MAINPID");
    // lbctl's default LB_RUN_DIR, private as the daemon makes it.
    assert_eq!(s("RuntimeDirectory"), "lbctl");
    assert_eq!(s("RuntimeDirectoryMode"), "0700");
    // The attach unit: root (the clock calibration reads a root-only file)
    // bounded to what attaching into the user's directory needs.
    let a = unit("lbctl-attach@.service")?;
    assert_eq!(key(&a, "Service", "User"), "");
    let mut want = needed.clone();
    want.extend(["CAP_PERFMON", "CAP_DAC_OVERRIDE", "CAP_CHOWN"].map(String::from));
    want.sort();
    assert_eq!(bounding_caps("lbctl-attach@.service")?, want);
    assert_eq!(
        key(&a, "Service", "ExecStart"),
        "/usr/local/sbin/lbctl attach %i"
    );
    for f in ["lbctl-daemon.service", "lbctl-attach@.service"] {
        let t = std::fs::read_to_string(contrib().join(f))?;
        assert!(
            !t.lines()
                .any(|l| !l.starts_with('#') && l.contains("CAP_SYS_ADMIN")),
            "{f}"
        );
    }

    let scratch = Scratch::new("priv-units")?;
    let lbctl = lbctl_path()?;
    if have("systemd-analyze") {
        // ExecStart= must name an executable that exists.
        for (from, to) in [
            ("lbctl-daemon.service", "lbctl-daemon.service"),
            ("lbctl-attach@.service", "lbctl-attach@eth0.service"),
        ] {
            let t = std::fs::read_to_string(contrib().join(from))?
                .replace("/usr/local/sbin/lbctl", &lbctl.display().to_string());
            std::fs::write(scratch.0.join(to), t)?;
        }
        let o = Command::new("systemd-analyze")
            .args([
                "verify",
                "lbctl-daemon.service",
                "lbctl-attach@eth0.service",
            ])
            .current_dir(&scratch.0)
            .output()?;
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{}", text(&o));
        assert!(!err.contains("lbctl"), "systemd-analyze warns: {err}");
    }

    // sysusers.d and tmpfiles.d: their lines, then applied to a scratch root.
    let lines = |f: &str| -> Result<Vec<String>> {
        Ok(std::fs::read_to_string(contrib().join(f))?
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect())
    };
    assert_eq!(
        lines("lbctl.tmpfiles")?,
        [
            "z /sys/fs/bpf 0711 root root -",
            "d /sys/fs/bpf/lb 0700 lbctl lbctl -"
        ]
    );
    let users = lines("lbctl.sysusers")?;
    assert!(
        users.len() == 1 && users[0].starts_with("u lbctl - "),
        "{users:?}"
    );
    if !have("systemd-sysusers") || !have("systemd-tmpfiles") {
        return Ok(());
    }
    let root = scratch.0.join("root");
    for (from, dir) in [
        ("lbctl.sysusers", "etc/sysusers.d"),
        ("lbctl.tmpfiles", "etc/tmpfiles.d"),
    ] {
        std::fs::create_dir_all(root.join(dir))?;
        std::fs::copy(contrib().join(from), root.join(dir).join("lbctl.conf"))?;
    }
    std::fs::create_dir_all(root.join("sys/fs/bpf"))?;
    std::fs::set_permissions(
        root.join("sys/fs/bpf"),
        std::fs::Permissions::from_mode(0o700),
    )?;
    run_checked(Command::new("systemd-sysusers").arg(format!("--root={}", root.display())))?;
    run_checked(
        Command::new("systemd-tmpfiles")
            .arg(format!("--root={}", root.display()))
            .arg("--create"),
    )?;
    let passwd = std::fs::read_to_string(root.join("etc/passwd"))?;
    let uid: u32 = passwd
        .lines()
        .find_map(|l| l.strip_prefix("lbctl:x:"))
        .and_then(|l| l.split(':').next())
        .context("no lbctl user")?
        .parse()?;
    assert_eq!(mode(&root.join("sys/fs/bpf"))?, 0o711);
    let lb = root.join("sys/fs/bpf/lb");
    assert_eq!(mode(&lb)?, 0o700);
    assert_eq!(std::fs::metadata(&lb)?.uid(), uid);
    Ok(())
}

/// Whether `tool` runs; a test without it checks less and says so (and
/// fails under CI, whose machine has it).
fn have(tool: &str) -> bool {
    if Command::new(tool).arg("--version").output().is_ok() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must have {tool}");
    eprintln!("{tool} not found: the checks that need it are skipped");
    false
}

/// lbctl as a user with the units' capabilities works on the pin directory
/// that user owns, also on pins root made there (they are given to the
/// directory's owner); with a capability missing it refuses, naming exactly
/// what is missing, and changes nothing.
#[test]
fn capabilities_not_root_run_lbctl_and_a_missing_one_is_named() -> Result<()> {
    if !require_root("capabilities_not_root_run_lbctl_and_a_missing_one_is_named") {
        return Ok(());
    }
    let daemon_caps = unit_caps("lbctl-daemon.service")?;
    let attach_unit = bounding_caps("lbctl-attach@.service")?;
    let daemon_caps: Vec<&str> = daemon_caps.iter().map(String::as_str).collect();
    let attach_unit: Vec<&str> = attach_unit.iter().map(String::as_str).collect();
    let mut attach_caps = daemon_caps.clone();
    attach_caps.push("CAP_PERFMON");
    let lbctl = lbctl_path()?;
    let ns = lab("caps")?;
    let fs = UserBpffs::new()?;
    let pins = fs.pins();
    let user = |caps: &[&str], args: &[&str]| -> Result<Output> {
        Ok(as_nobody(&ns, caps, &lbctl)
            .args(args)
            .env("LB_PIN_PATH", &pins)
            .output()?)
    };

    // Root attaches, bounded as lbctl-attach@.service bounds it: the tables
    // are made (the clock calibrated) and go to the directory's owner.
    let o = as_bounded_root(&ns, &attach_unit, &lbctl)
        .args(["attach", "eth0"])
        .env("LB_PIN_PATH", &pins)
        .output()?;
    assert!(o.status.success(), "{}", text(&o));
    let settings = lb_user::Pins::open(&pins, None)?.settings()?;
    assert_ne!(settings.clock_ns_per_jiffy, 0, "the clock is calibrated");
    let mut n = 0;
    for e in std::fs::read_dir(&pins)? {
        let m = e?.metadata()?;
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o777),
            (NOBODY, NOBODY, 0o600)
        );
        n += 1;
    }
    assert!(n >= 10, "{n} pins");

    // With the daemon's capabilities: every table command.
    for a in [
        &["-A", "-t", "203.0.113.10:80", "-s", "rr"][..],
        &["-a", "-t", "203.0.113.10:80", "-r", "198.51.100.11", "-g"],
        &["--set", "900", "120", "300"],
        &["sysctl", "expire_nodest_conn=1"],
        &["-Z"],
    ] {
        let o = user(&daemon_caps, a)?;
        assert!(o.status.success(), "lbctl {a:?}: {}", text(&o));
    }
    let o = user(&daemon_caps, &["-L", "-n"])?;
    assert!(o.status.success(), "{}", text(&o));
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        list.contains(&format!("TCP  {VIP}:80 rr")) && list.contains("198.51.100.11:80"),
        "{list}"
    );
    assert_eq!(list, root_ok(&ns, &pins, &["-L", "-n"])?);
    for a in [&["counters"][..], &["-L", "-c", "-n"], &["-S", "-n"]] {
        let o = user(&daemon_caps, a)?;
        assert!(o.status.success(), "lbctl {a:?}: {}", text(&o));
    }
    let before = root_ok(&ns, &pins, &["-S", "-n"])?;
    let link = |ns: &Netns| -> Result<String> {
        Ok(String::from_utf8_lossy(&ns.ip(&["-d", "link", "show", "eth0"])?.stdout).into_owned())
    };
    let prog = link(&ns)?;
    assert!(prog.contains("lb_xdp"), "{prog}");

    // Attaching loads the program: CAP_PERFMON as well, named alone.
    let o = user(&daemon_caps, &["attach", "eth0"])?;
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        err.contains("lacks CAP_PERFMON (") && err.contains("lbctl attach needs"),
        "{err}"
    );
    assert_eq!(link(&ns)?, prog, "the program was not replaced");

    // One capability missing: named, and nothing else.
    for (caps, missing) in [
        (&["CAP_BPF"][..], &["CAP_NET_ADMIN"][..]),
        (&["CAP_NET_ADMIN"][..], &["CAP_BPF"][..]),
        (&[][..], &["CAP_BPF", "CAP_NET_ADMIN"][..]),
    ] {
        for a in [
            &["-A", "-t", "203.0.113.10:443", "-s", "rr"][..],
            &["-d", "-t", "203.0.113.10:80", "-r", "198.51.100.11"],
            &["-C"],
            &["-L", "-n"],
            &["detach", "eth0"],
            &["attach", "eth0", "--reset"],
            &["daemon-status"],
        ] {
            let o = user(caps, a)?;
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(
                o.status.code(),
                Some(1),
                "lbctl {a:?} with {caps:?}: {}",
                text(&o)
            );
            assert!(
                o.stdout.is_empty(),
                "lbctl {a:?} with {caps:?}: {}",
                text(&o)
            );
            assert!(
                err.starts_with("lbctl: permission denied: this process lacks ")
                    && err.contains("run it as root"),
                "lbctl {a:?} with {caps:?}: {err}"
            );
            // Exactly what is missing: CAP_PERFMON too for attach.
            let mut want: Vec<&str> = missing.to_vec();
            if a[0] == "attach" {
                want.push("CAP_PERFMON");
            }
            let last = want.pop().unwrap_or_default();
            let named = if want.is_empty() {
                last.to_string()
            } else {
                format!("{} and {last}", want.join(", "))
            };
            assert!(
                err.contains(&format!("lacks {named} (")),
                "lbctl {a:?} with {caps:?}: {err}"
            );
        }
    }
    assert_eq!(
        root_ok(&ns, &pins, &["-S", "-n"])?,
        before,
        "nothing changed"
    );
    assert_eq!(link(&ns)?, prog, "still attached");
    // What touches no table works for anyone.
    for a in [
        &["--help"][..],
        &["--version"],
        &["completions", "bash"],
        &["manpage"],
    ] {
        let o = user(&[], a)?;
        assert!(
            o.status.success() && !o.stdout.is_empty(),
            "lbctl {a:?}: {}",
            text(&o)
        );
    }

    // With CAP_PERFMON too: an upgrade in place, and the new link pin is
    // the user's too.
    let o = user(&attach_caps, &["attach", "eth0"])?;
    assert!(o.status.success(), "{}", text(&o));
    let m = std::fs::metadata(pins.join("link_eth0"))?;
    assert_eq!((m.uid(), m.mode() & 0o777), (NOBODY, 0o600));
    assert_eq!(root_ok(&ns, &pins, &["-S", "-n"])?, before);

    // Tables another user owns stay theirs, capabilities or not.
    let roots = fs.mnt.join("root-lb");
    root_ok(&ns, &roots, &["-A", "-t", "203.0.113.10:80", "-s", "rr"])?;
    let root_before = root_ok(&ns, &roots, &["-S", "-n"])?;
    let o = as_nobody(&ns, &attach_caps, &lbctl)
        .args(["-A", "-t", "203.0.113.10:443", "-s", "rr"])
        .env("LB_PIN_PATH", &roots)
        .output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        err.contains(&format!(
            "permission denied on the pin directory {}",
            roots.display()
        )) && err.contains("owned by uid 0"),
        "{err}"
    );
    assert_eq!(root_ok(&ns, &roots, &["-S", "-n"])?, root_before);

    let o = user(&daemon_caps, &["detach", "eth0"])?;
    assert!(o.status.success(), "{}", text(&o));
    assert!(!link(&ns)?.contains("lb_xdp"));
    Ok(())
}

/// A running `lbctl daemon --foreground CONF`, killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CONF: &str = "checkinterval=1\nchecktimeout=1\nlogfile=\"@LOG@\"\n\
                    virtual=203.0.113.10:80\n\treal=198.51.100.11:80 gate\n\tchecktype=on\n\
                    \tscheduler=rr\n";

/// The status file in `run` once the daemon has written it.
fn wait_status(d: &mut Daemon, run: &Path, log: &Path) -> Result<PathBuf> {
    wait_for("the daemon's status file", Duration::from_secs(20), || {
        if let Some(st) = d.0.try_wait()? {
            bail!(
                "the daemon exited ({st}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        Ok(std::fs::read_dir(run)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json")))
    })
}

/// The daemon's state file and log say what the tables say, so they are as
/// private: a local user can read neither (also when an older version left
/// them readable), and `lbctl daemon-status` needs what `-L` needs; root
/// sees everything.
#[test]
fn daemon_state_and_log_are_private_and_daemon_status_needs_privileges() -> Result<()> {
    if !require_root("daemon_state_and_log_are_private_and_daemon_status_needs_privileges") {
        return Ok(());
    }
    let lbctl = lbctl_path()?;
    let ns = lab("dstat")?;
    let fs = UserBpffs::new()?;
    let pins = fs.pins();
    let scratch = Scratch::new("priv-dstat")?;
    let run = scratch.0.join("run");
    let log = scratch.0.join("ld.log");
    let conf = scratch.0.join("ldirectord.cf");
    std::fs::write(&conf, CONF.replace("@LOG@", &log.display().to_string()))?;
    // As an older lbctl left them: a readable run directory and log.
    std::fs::create_dir_all(&run)?;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(&log, "[old] line\n")?;
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644))?;

    let mut d = Daemon(
        ns.nsenter_cmd(&lbctl)
            .args(["daemon", "--foreground", "--metrics", "127.0.0.1:9469"])
            .arg(&conf)
            .env("LB_PIN_PATH", &pins)
            .env("LB_RUN_DIR", &run)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let status = wait_status(&mut d, &run, &log)?;
    assert_eq!(mode(&run)?, 0o700);
    assert_eq!(mode(&status)?, 0o600);
    assert_eq!(mode(&log)?, 0o640, "others lost their access");
    assert_eq!(std::fs::metadata(&log)?.gid(), 0);

    // nobody, no capabilities: nothing to read, daemon-status refused.
    for p in [&status, &log] {
        let o = as_nobody(&ns, &[], Path::new("cat")).arg(p).output()?;
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("Permission denied"),
            "cat {}: {}",
            p.display(),
            text(&o)
        );
    }
    let o = as_nobody(&ns, &[], Path::new("ls")).arg(&run).output()?;
    assert!(!o.status.success(), "ls {}: {}", run.display(), text(&o));
    let o = as_nobody(&ns, &[], &lbctl)
        .arg("daemon-status")
        .env("LB_PIN_PATH", &pins)
        .env("LB_RUN_DIR", &run)
        .output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert!(
        err.contains("permission denied: this process lacks CAP_BPF and CAP_NET_ADMIN"),
        "{err}"
    );
    // Nor can they start a daemon of their own: refused before anything
    // (its run directory, which they could make in /tmp) is made.
    let theirs = Scratch(std::env::temp_dir().join(format!(
        "lbt-priv-theirs-{}-{}",
        std::process::id(),
        next_id()
    )));
    let theirs = &theirs.0;
    let o = as_nobody(&ns, &[], &lbctl)
        .args(["daemon", "--foreground"])
        .arg(&conf)
        .env("LB_PIN_PATH", &pins)
        .env("LB_RUN_DIR", theirs)
        .output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains("permission denied: this process lacks CAP_BPF and CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(!theirs.exists());

    // The metrics endpoint, though, answers anyone who connects (README
    // says so): per real server its weight and health.
    let metrics = wait_for("metrics as nobody", Duration::from_secs(10), || {
        let o = as_nobody(&ns, &[], Path::new("bash"))
            .arg("-c")
            .arg(
                "exec 3<>/dev/tcp/127.0.0.1/9469 && \
                 printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3",
            )
            .output()?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        Ok(out.contains("lbctl_real_weight{").then_some(out))
    })?;
    assert!(
        metrics.lines().any(|l| l.starts_with("lbctl_real_up{")
            && l.contains("198.51.100.11")
            && l.ends_with(" 1")),
        "{metrics}"
    );

    // Root sees the daemon.
    let o = ns
        .nsenter_cmd(&lbctl)
        .arg("daemon-status")
        .env("LB_PIN_PATH", &pins)
        .env("LB_RUN_DIR", &run)
        .output()?;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        out.contains("is running with pid") && out.contains("198.51.100.11:80"),
        "{out}"
    );
    Ok(())
}

/// The shipped daemon unit's setup, without systemd: the daemon as the
/// service user with only the unit's capabilities (its run and log
/// directories the user's, as `RuntimeDirectory=` and `LogsDirectory=`
/// make them) keeps the table, writes its status, says once that the XDP
/// program's messages need CAP_SYS_ADMIN, and that user's `daemon-status`
/// shows it.
#[test]
fn the_daemon_runs_as_a_user_with_the_units_capabilities() -> Result<()> {
    if !require_root("the_daemon_runs_as_a_user_with_the_units_capabilities") {
        return Ok(());
    }
    let caps = unit_caps("lbctl-daemon.service")?;
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
    let lbctl = lbctl_path()?;
    let ns = lab("duser")?;
    let fs = UserBpffs::new()?;
    let pins = fs.pins();
    root_ok(&ns, &pins, &["attach", "eth0"])?;
    let scratch = Scratch::new("priv-duser")?;
    let (run, logs) = (scratch.0.join("run"), scratch.0.join("log"));
    for d in [&run, &logs] {
        std::fs::create_dir_all(d)?;
        std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
    }
    let log = logs.join("ldirectord.log");
    let conf = scratch.0.join("ldirectord.cf");
    std::fs::write(&conf, CONF.replace("@LOG@", &log.display().to_string()))?;

    let mut cmd = as_nobody(&ns, &caps, &lbctl);
    cmd.args(["daemon", "--foreground"])
        .arg(&conf)
        .env("LB_PIN_PATH", &pins)
        .env("LB_RUN_DIR", &run)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut d = Daemon(cmd.spawn()?);
    let status = wait_status(&mut d, &run, &log)?;
    let m = std::fs::metadata(&status)?;
    assert_eq!((m.uid(), m.mode() & 0o777), (NOBODY, 0o600));
    let m = std::fs::metadata(&log)?;
    assert_eq!((m.uid(), m.mode() & 0o777), (NOBODY, 0o600));
    let list = wait_for("the daemon's service", Duration::from_secs(20), || {
        let l = root_ok(&ns, &pins, &["-L", "-n"])?;
        Ok(l.contains("198.51.100.11:80").then_some(l))
    })?;
    assert!(list.contains(&format!("TCP  {VIP}:80 rr")), "{list}");
    let o = as_nobody(&ns, &caps, &lbctl)
        .arg("daemon-status")
        .env("LB_PIN_PATH", &pins)
        .env("LB_RUN_DIR", &run)
        .output()?;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        out.contains("is running with pid") && out.contains("198.51.100.11:80"),
        "{out}"
    );
    let said = std::fs::read_to_string(&log)?;
    assert_eq!(
        said.matches("messages are not forwarded to this log: reading them needs CAP_SYS_ADMIN")
            .count(),
        1,
        "{said}"
    );
    drop(d);
    root_ok(&ns, &pins, &["detach", "eth0"])?;
    Ok(())
}

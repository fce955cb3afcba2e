//! What `lbctl daemon-status` shows: the daemon writes a status file (JSON)
//! after every round of changes, and the status command, another process,
//! reads it, as ldirectord's `status` reads its pid file.
//!
//! The files live in `$LB_RUN_DIR` (default `/run/lbctl`), one per
//! (pin directory, configuration file) pair, next to a lock file that the
//! running daemon holds (a second daemon for the same pair is refused).
//!
//! They say what the tables say (every service, real server, weight and
//! health state), so they are as private as the tables: the directory is
//! 0700 and every file 0600, owned by the daemon's user, and a looser mode
//! found on an existing directory or file is tightened when the daemon opens
//! it. `lbctl daemon-status` needs what `lbctl -L` needs.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::Write,
    net::IpAddr,
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

/// Default directory of status and lock files.
pub const DEFAULT_RUN_DIR: &str = "/run/lbctl";
/// The environment variable overriding it.
pub const RUN_DIR_ENV: &str = "LB_RUN_DIR";

/// The status directory in force.
pub fn run_dir() -> PathBuf {
    std::env::var_os(RUN_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}

/// A path as one file name component: `/` becomes `-`, anything but
/// `[A-Za-z0-9._]` becomes `%XX`.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::new();
    for b in s.trim_start_matches('/').bytes() {
        match b {
            b'/' => out.push('-'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Prefix of the status files of daemons working on `pin_dir`.
fn prefix(pin_dir: &Path) -> String {
    format!("daemon@{}@", escape(pin_dir))
}

/// The status file of the daemon running `config` on `pin_dir` (both
/// absolute).
pub fn status_path(dir: &Path, pin_dir: &Path, config: &Path) -> PathBuf {
    dir.join(format!("{}{}.json", prefix(pin_dir), escape(config)))
}

/// The status files present for `pin_dir`.
pub fn status_files(dir: &Path, pin_dir: &Path) -> Vec<PathBuf> {
    let p = prefix(pin_dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&p) && n.ends_with(".json"))
        })
        .collect();
    out.sort();
    out
}

/// Makes `dir` (and its parents) with mode 0700, or takes the group's and
/// others' access away from an existing one. A directory that is not the
/// daemon's own (another user's, or a sticky one such as `/tmp` given as
/// `LB_RUN_DIR`) is left as it is: the files in it are 0600 anyway.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let m = std::fs::metadata(dir)?;
    let mode = m.permissions().mode();
    let mine = m.uid() == nix::unistd::geteuid().as_raw();
    if mine && mode & 0o1000 == 0 && mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Opens (creating) `path` for writing with mode 0600, tightening the mode
/// of an existing file to 0600.
fn private_file(path: &Path, opts: &mut OpenOptions) -> std::io::Result<File> {
    let f = opts.mode(0o600).open(path)?;
    if f.metadata()?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// The daemon's instance lock: held while it runs.
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock next to `status` or says which daemon holds it.
    pub fn take(status: &Path) -> Result<InstanceLock, String> {
        let path = status.with_extension("lock");
        if let Some(dir) = path.parent() {
            private_dir(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let mut f = private_file(
            &path,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true),
        )
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(format!(
                    "another lbctl daemon (pid {}) is already running this configuration on this pin directory",
                    pid.trim()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("locking {}: {e}", path.display()));
            }
        }
        let _ = f.set_len(0);
        let _ = writeln!(f, "{}", std::process::id());
        Ok(InstanceLock { _file: f, path })
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The last check of a real server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// Seconds since the epoch.
    pub at: u64,
    pub ok: bool,
    pub detail: String,
}

/// One real server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealStatus {
    pub addr: IpAddr,
    pub port: u16,
    pub check_port: u16,
    pub configured_weight: u32,
    /// In the table (`None`: not in the service).
    pub weight: Option<u32>,
    pub up: bool,
    /// Consecutive failed checks / how many take it down.
    pub failures: u32,
    pub failurecount: u32,
    pub last_check: Option<CheckStatus>,
}

/// The fallback server of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackStatus {
    pub addr: IpAddr,
    pub port: u16,
    /// In the table (it is while no real server is up).
    pub weight: Option<u32>,
}

/// One virtual service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// "TCP" or "UDP".
    pub proto: String,
    pub addr: IpAddr,
    pub port: u16,
    pub scheduler: String,
    pub persistent: Option<u32>,
    pub checktype: String,
    pub service: String,
    /// Whether the service is in the table.
    pub present: bool,
    pub quiescent: bool,
    pub reals: Vec<RealStatus>,
    pub fallback: Option<FallbackStatus>,
}

/// The whole status file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub config: PathBuf,
    pub pin_dir: PathBuf,
    pub started: u64,
    pub updated: u64,
    pub services: Vec<ServiceStatus>,
}

/// Seconds since the epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes `status` to `path` atomically (a temporary file, mode 0600,
/// renamed).
pub fn write(path: &Path, status: &Status) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(status).map_err(std::io::Error::other)?;
    private_file(
        &tmp,
        OpenOptions::new().create(true).truncate(true).write(true),
    )?
    .write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path)
}

pub fn read(path: &Path) -> Result<Status, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a status file: {e}", path.display()))
}

/// Whether process `pid` exists.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A service's address as the status and the metrics name it: `ADDR:PORT`
/// (an IPv6 ADDR in brackets, as ipvsadm prints it), and for an IPv6
/// fwmark service (`virtual6=MARK`) `MARK IPv6` (ipvsadm's `FWM  1 IPv6`).
/// An IPv4 fwmark service keeps its `0.0.0.MARK:0`.
pub fn service_text(proto: &str, addr: IpAddr, port: u16) -> String {
    if proto == crate::model::Proto::Fwm.name() && addr.is_ipv6() {
        format!("{} IPv6", crate::addr::fwmark_of(addr))
    } else {
        crate::addr::addr_port(addr, port)
    }
}

fn ago(now: u64, t: u64) -> String {
    format!("{}s ago", now.saturating_sub(t))
}

/// The text `lbctl daemon-status` prints for one daemon; `running` says
/// whether its process still exists.
pub fn format(s: &Status, running: bool, now: u64) -> String {
    let mut out = String::new();
    if running {
        out.push_str(&format!(
            "lbctl daemon for {} is running with pid {} (pin directory {}, updated {})\n",
            s.config.display(),
            s.pid,
            s.pin_dir.display(),
            ago(now, s.updated)
        ));
    } else {
        out.push_str(&format!(
            "lbctl daemon for {} is not running: stale status of pid {} (updated {})\n",
            s.config.display(),
            s.pid,
            ago(now, s.updated)
        ));
    }
    for v in &s.services {
        let persist = v
            .persistent
            .map(|p| format!(" persistent {p}"))
            .unwrap_or_default();
        let present = if v.present {
            ""
        } else {
            "  [not in the table]"
        };
        out.push_str(&format!(
            "{:<4} {} {}{} checktype={} service={} quiescent={}{}\n",
            v.proto,
            service_text(&v.proto, v.addr, v.port),
            v.scheduler,
            persist,
            v.checktype,
            v.service,
            if v.quiescent { "yes" } else { "no" },
            present
        ));
        for r in &v.reals {
            let weight = match r.weight {
                Some(w) => format!("weight {w}/{}", r.configured_weight),
                None => format!("absent (weight {})", r.configured_weight),
            };
            let fails = if r.failures > 0 {
                format!(" failures {}/{}", r.failures, r.failurecount)
            } else {
                String::new()
            };
            let last = match &r.last_check {
                Some(c) => format!(
                    "last check {}: {} ({})",
                    ago(now, c.at),
                    if c.ok { "ok" } else { "failed" },
                    c.detail
                ),
                None => "not checked yet".to_string(),
            };
            out.push_str(&format!(
                "  -> {:<21} {:<4} {}{}  {}\n",
                crate::addr::addr_port(r.addr, r.port),
                if r.up { "up" } else { "down" },
                weight,
                fails,
                last
            ));
        }
        if let Some(f) = &v.fallback {
            out.push_str(&format!(
                "  -> {:<21} fallback {}\n",
                crate::addr::addr_port(f.addr, f.port),
                match f.weight {
                    Some(w) => format!("in use (weight {w})"),
                    None => "not in use".to_string(),
                }
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            pid: 42,
            config: "/etc/ha.d/ldirectord.cf".into(),
            pin_dir: "/sys/fs/bpf/lb".into(),
            started: 1000,
            updated: 1090,
            services: vec![ServiceStatus {
                proto: "TCP".into(),
                addr: "203.0.113.10".parse().unwrap(),
                port: 80,
                scheduler: "wrr".into(),
                persistent: Some(300),
                checktype: "negotiate".into(),
                service: "http".into(),
                present: true,
                quiescent: true,
                reals: vec![
                    RealStatus {
                        addr: "198.51.100.11".parse().unwrap(),
                        port: 80,
                        check_port: 80,
                        configured_weight: 2,
                        weight: Some(2),
                        up: true,
                        failures: 0,
                        failurecount: 2,
                        last_check: Some(CheckStatus {
                            at: 1099,
                            ok: true,
                            detail: "HTTP/1.0 200 OK".into(),
                        }),
                    },
                    RealStatus {
                        addr: "198.51.100.12".parse().unwrap(),
                        port: 80,
                        check_port: 8080,
                        configured_weight: 1,
                        weight: Some(0),
                        up: false,
                        failures: 2,
                        failurecount: 2,
                        last_check: Some(CheckStatus {
                            at: 1098,
                            ok: false,
                            detail: "connect to 198.51.100.12:8080: Connection refused".into(),
                        }),
                    },
                ],
                fallback: Some(FallbackStatus {
                    addr: "198.51.100.20".parse().unwrap(),
                    port: 80,
                    weight: None,
                }),
            }],
        }
    }

    #[test]
    fn status_text() {
        let text = format(&sample(), true, 1100);
        assert_eq!(
            text,
            "lbctl daemon for /etc/ha.d/ldirectord.cf is running with pid 42 (pin directory /sys/fs/bpf/lb, updated 10s ago)\n\
             TCP  203.0.113.10:80 wrr persistent 300 checktype=negotiate service=http quiescent=yes\n\
             \x20 -> 198.51.100.11:80      up   weight 2/2  last check 1s ago: ok (HTTP/1.0 200 OK)\n\
             \x20 -> 198.51.100.12:80      down weight 0/1 failures 2/2  last check 2s ago: failed (connect to 198.51.100.12:8080: Connection refused)\n\
             \x20 -> 198.51.100.20:80      fallback not in use\n"
        );
        assert!(format(&sample(), false, 1100).contains("is not running: stale status of pid 42"));
    }

    /// IPv6 addresses in brackets, as ipvsadm prints them; an IPv6 fwmark
    /// service as `MARK IPv6`.
    #[test]
    fn status_text_of_ipv6_services() {
        let mut s = sample();
        let v = &mut s.services[0];
        v.addr = "2001:db8::1".parse().unwrap();
        v.reals[0].addr = "2001:db8::11".parse().unwrap();
        v.reals.truncate(1);
        v.fallback.as_mut().unwrap().addr = "2001:db8::20".parse().unwrap();
        let mut fwm = v.clone();
        fwm.proto = "FWM".into();
        fwm.addr = crate::addr::fwmark_ip(7, true);
        fwm.port = 0;
        fwm.fallback = None;
        s.services.push(fwm);
        let text = format(&s, true, 1100);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "TCP  [2001:db8::1]:80 wrr persistent 300 checktype=negotiate service=http quiescent=yes",
                "  -> [2001:db8::11]:80     up   weight 2/2  last check 1s ago: ok (HTTP/1.0 200 OK)",
                "  -> [2001:db8::20]:80     fallback not in use",
                "FWM  7 IPv6 wrr persistent 300 checktype=negotiate service=http quiescent=yes",
                "  -> [2001:db8::11]:80     up   weight 2/2  last check 1s ago: ok (HTTP/1.0 200 OK)",
            ]
        );
    }

    #[test]
    fn status_files_round_trip_and_are_found_by_pin_dir() {
        let dir = std::env::temp_dir().join(format!("lbctl-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = sample();
        let p = status_path(&dir, &s.pin_dir, &s.config);
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            "daemon@sys-fs-bpf-lb@etc-ha.d-ldirectord.cf.json"
        );
        write(&p, &s).unwrap();
        assert_eq!(read(&p).unwrap(), s);
        assert_eq!(status_files(&dir, &s.pin_dir), vec![p.clone()]);
        assert!(status_files(&dir, Path::new("/sys/fs/bpf/other")).is_empty());
        // One daemon per (pin directory, configuration).
        let lock = InstanceLock::take(&p).unwrap();
        let e = InstanceLock::take(&p).err().unwrap();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(lock);
        assert!(InstanceLock::take(&p).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// The files say what the tables say: 0700 and 0600, also when they
    /// were left looser by an older version.
    #[test]
    fn run_directory_and_status_files_are_private() {
        let base = std::env::temp_dir().join(format!("lbctl-private-{}", std::process::id()));
        let dir = base.join("run");
        let s = sample();
        let p = status_path(&dir, &s.pin_dir, &s.config);
        {
            let _lock = InstanceLock::take(&p).unwrap();
            write(&p, &s).unwrap();
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&p), 0o600);
            assert_eq!(mode(&p.with_extension("lock")), 0o600);
        }
        // An older daemon's modes are tightened.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(p.with_extension("lock"), "1\n").unwrap();
        std::fs::set_permissions(
            p.with_extension("lock"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(p.with_extension("json.tmp"), "").unwrap();
        std::fs::set_permissions(
            p.with_extension("json.tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        {
            let _lock = InstanceLock::take(&p).unwrap();
            write(&p, &s).unwrap();
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&p), 0o600);
            assert_eq!(mode(&p.with_extension("lock")), 0o600);
        }
        // A sticky shared directory is not the daemon's to change.
        let shared = base.join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777);
        std::fs::remove_dir_all(&base).unwrap();
    }
}

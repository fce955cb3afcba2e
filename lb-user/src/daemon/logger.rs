//! Where the daemon's log lines go, as ldirectord's `ld_log` sends them:
//! standard error, a file named by `logfile="/path"` (opened for each line,
//! so log rotation needs no signal), or syslog when `logfile=` names a
//! facility (`logfile="local0"`).
//!
//! The log names every real server and its state, so a file is as private
//! as the tables: created 0600, and an existing file loses any access for
//! others and the group's write (a group read an administrator gave, 0640
//! `root:adm` for instance, is kept).
//!
//! Syslog is what ldirectord's `Sys::Syslog` writes: `openlog("ldirectord",
//! "pid", FACILITY)` over the local Unix socket (`setlogsock("unix")`), so
//! each line is an RFC 3164 datagram `<PRI>Mmm dd hh:mm:ss
//! ldirectord[PID]: MESSAGE` to `/dev/log`, at priority `info` (the XDP
//! program's aya-log lines at their own level: `err`, `warning`, `info`,
//! `debug`). The timestamp is UTC (the `syslog` crate's); syslog daemons
//! stamp the receipt time themselves. The identity is `ldirectord` so that
//! filters written for ldirectord keep working. When `/dev/log` cannot be
//! reached the line goes to standard error and the next line tries again.

use std::{
    io::Write as _,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use syslog::{Facility, Formatter3164, LoggerBackend};

use super::{config::LogTarget, status};

/// The identity of syslog lines, ldirectord's.
pub const SYSLOG_IDENT: &str = "ldirectord";

/// A line's priority (syslog severity; files and standard error do not
/// show it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

enum Sink {
    Stderr,
    File(PathBuf),
    Syslog {
        facility: Facility,
        /// `None` until connected, and again after a failed send.
        conn: Option<syslog::Logger<LoggerBackend, Formatter3164>>,
    },
}

/// The daemon's log. Clones share the destination, so a reload that
/// changes `logfile=` moves every writer (the XDP log readers too).
#[derive(Clone)]
pub struct Logger {
    sink: Arc<Mutex<Sink>>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Logger")
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of `t`.
pub fn timestamp(t: SystemTime) -> String {
    let secs = status::unix(t) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn sink(target: Option<&LogTarget>) -> Sink {
    match target {
        None => Sink::Stderr,
        Some(LogTarget::File(p)) => Sink::File(p.clone()),
        Some(LogTarget::Syslog(name)) => Sink::Syslog {
            // The parser accepted only names the crate knows.
            facility: name.parse().unwrap_or(Facility::LOG_DAEMON),
            conn: None,
        },
    }
}

/// `Sys::Syslog`'s local form: no hostname, `ldirectord[PID]`.
fn formatter(facility: Facility, pid: u32) -> Formatter3164 {
    Formatter3164 {
        facility,
        hostname: None,
        process: SYSLOG_IDENT.into(),
        pid,
    }
}

fn connect(facility: Facility) -> Option<syslog::Logger<LoggerBackend, Formatter3164>> {
    syslog::unix(formatter(facility, std::process::id())).ok()
}

/// Opens the log file for appending: a new one with mode 0600; an existing
/// one loses others' access and the group's write. A file of another user's
/// that the daemon may write but not chmod is written all the same.
fn open_private(p: &Path) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(p)?;
    let mode = f.metadata()?.permissions().mode();
    if mode & 0o027 != 0 {
        let _ = f.set_permissions(std::fs::Permissions::from_mode(mode & 0o740));
    }
    Ok(f)
}

fn stderr_line(msg: &str) {
    let line = format!("[{}] {msg}\n", timestamp(SystemTime::now()));
    let _ = std::io::stderr().write_all(line.as_bytes());
}

impl Logger {
    pub fn new(target: Option<&LogTarget>) -> Logger {
        Logger {
            sink: Arc::new(Mutex::new(sink(target))),
        }
    }

    /// Sends the following lines (of this logger and its clones) to
    /// `target`.
    pub fn retarget(&self, target: Option<&LogTarget>) {
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = sink(target);
    }

    /// One line at priority `info`, ldirectord's.
    pub fn log(&self, msg: &str) {
        self.log_at(Level::Info, msg);
    }

    /// One line: with the time for a file or standard error, as one syslog
    /// message otherwise.
    pub fn log_at(&self, level: Level, msg: &str) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *sink {
            Sink::Stderr => stderr_line(msg),
            Sink::File(p) => {
                let line = format!("[{}] {msg}\n", timestamp(SystemTime::now()));
                let ok = open_private(p)
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .is_ok();
                if !ok {
                    stderr_line(msg);
                }
            }
            Sink::Syslog { facility, conn } => {
                if conn.is_none() {
                    *conn = connect(*facility);
                }
                let sent = conn.as_mut().is_some_and(|c| {
                    match level {
                        Level::Error => c.err(msg),
                        Level::Warning => c.warning(msg),
                        Level::Info => c.info(msg),
                        Level::Debug => c.debug(msg),
                    }
                    .is_ok()
                });
                if !sent {
                    // A restarted syslog daemon: connect again next time.
                    *conn = None;
                    stderr_line(msg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{os::unix::net::UnixDatagram, time::Duration};

    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = |s: u64| timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "1970-01-01 00:00:00");
        assert_eq!(t(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(t(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(t(4_107_542_399), "2100-02-28 23:59:59");
    }

    #[test]
    fn files_get_one_stamped_line_each() {
        let dir = std::env::temp_dir().join(format!("lbctl-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ld.log");
        let _ = std::fs::remove_file(&path);
        let log = Logger::new(Some(&LogTarget::File(path.clone())));
        log.log("one");
        log.clone().log_at(Level::Error, "two");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with('[') && lines[0].ends_with("] one"),
            "{text}"
        );
        assert!(lines[1].ends_with("] two"), "{text}");
    }

    /// The log is as private as the tables: new files 0600; an existing
    /// file loses others' access and the group's write, keeps a group read.
    #[test]
    fn log_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lbctl-log-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let new = dir.join("new.log");
        let _ = std::fs::remove_file(&new);
        Logger::new(Some(&LogTarget::File(new.clone()))).log("one");
        let old = dir.join("old.log");
        std::fs::write(&old, "x\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o666)).unwrap();
        Logger::new(Some(&LogTarget::File(old.clone()))).log("two");
        let adm = dir.join("adm.log");
        std::fs::write(&adm, "x\n").unwrap();
        std::fs::set_permissions(&adm, std::fs::Permissions::from_mode(0o640)).unwrap();
        Logger::new(Some(&LogTarget::File(adm.clone()))).log("three");
        let got = (mode(&new), mode(&old), mode(&adm));
        let text = std::fs::read_to_string(&old).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, (0o600, 0o640, 0o640));
        assert!(text.ends_with("] two\n"), "{text}");
    }

    /// The datagram a syslog daemon receives, through a socket of the
    /// test's own (the `/dev/log` path itself is covered by the e2e test,
    /// which runs the daemon in a mount namespace).
    #[test]
    fn syslog_lines_are_rfc3164_as_sys_syslog_writes_them() {
        let dir = std::env::temp_dir().join(format!("lbctl-syslog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut conn = syslog::unix_custom(formatter(Facility::LOG_LOCAL0, 42), &path).unwrap();
        conn.info("Real server up").unwrap();
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        // local0 (16) * 8 + info (6) = 134.
        assert!(got.starts_with("<134>"), "{got}");
        assert!(got.ends_with(" ldirectord[42]: Real server up"), "{got}");
    }
}

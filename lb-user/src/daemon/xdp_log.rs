//! Messages of the XDP program (aya-log) into the daemon's log.
//!
//! The program logs rare events only (a real server's next hop learned from
//! the kernel, or not known; per-packet outcomes are counters, see `lbctl
//! counters`). The daemon finds the programs through the pinned links of
//! the pin directory, attaches an aya-log reader to each (again after an
//! upgrade replaced a program), and drains them on every tick.
//!
//! Finding a program by id (`BPF_PROG_GET_FD_BY_ID`) is the kernel's
//! CAP_SYS_ADMIN; a daemon running with CAP_BPF and CAP_NET_ADMIN only
//! (`contrib/systemd/`) says once that the program's messages are not
//! forwarded, and does everything else.

use std::{collections::BTreeMap, path::Path};

use aya::programs::links::{FdLink, PinnedLink};
use aya_log::EbpfLogger;

use super::logger::{Level, Logger};
use crate::{attach, pins};

/// What finding a program by id needs.
const NEEDED: [caps::Capability; 1] = [caps::Capability::CAP_SYS_ADMIN];

/// Forwards aya-log records to the daemon's log, one line each, at the
/// record's level (its syslog priority when logging to syslog).
struct Forward(Logger);

impl log::Log for Forward {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        };
        self.0.log_at(
            level,
            &format!(
                "xdp {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            ),
        );
    }
    fn flush(&self) {}
}

/// The aya-log readers of the programs attached under a pin directory.
pub struct ProgramLogs {
    log: Logger,
    /// By program id.
    readers: BTreeMap<u32, EbpfLogger<Forward>>,
    /// Whether the missing CAP_SYS_ADMIN was logged.
    said_no_reader: bool,
}

impl ProgramLogs {
    pub fn new(log: Logger) -> ProgramLogs {
        ProgramLogs {
            log,
            readers: BTreeMap::new(),
            said_no_reader: false,
        }
    }

    /// The ids of the programs held by the pinned links in `dir`.
    fn attached_programs(dir: &Path) -> Vec<u32> {
        attach::attached(dir)
            .iter()
            .filter_map(|iface| PinnedLink::from_pin(attach::link_pin(dir, iface)).ok())
            .filter_map(|pinned| FdLink::from(pinned).info().ok())
            .map(|info| info.program_id())
            .collect()
    }

    /// Follows the programs attached now: readers for new ones, none for
    /// replaced ones. Programs without log support (the pass-through
    /// program) are skipped.
    pub fn refresh(&mut self, dir: &Path) {
        let ids = Self::attached_programs(dir);
        self.readers.retain(|id, _| ids.contains(id));
        for id in ids {
            if self.readers.contains_key(&id) {
                continue;
            }
            match EbpfLogger::init_from_id_with_logger(id, Forward(self.log.clone())) {
                Ok(r) => {
                    self.readers.insert(id, r);
                }
                Err(_) if !self.said_no_reader && !pins::missing_caps(&NEEDED).is_empty() => {
                    self.said_no_reader = true;
                    self.log.log_at(
                        Level::Warning,
                        "the XDP program's messages are not forwarded to this log: \
                         reading them needs CAP_SYS_ADMIN",
                    );
                }
                Err(_) => {}
            }
        }
    }

    /// Writes every pending message to the log.
    pub fn drain(&mut self) {
        for r in self.readers.values_mut() {
            r.flush();
        }
    }
}

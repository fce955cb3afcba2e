//! Running the checks: one task per real server, each check bounded by its
//! timeout and all of them by a number of check slots, so that a thousand
//! virtual services of sixteen reals neither exhaust the daemon's file
//! descriptors nor wait behind anything else (the metrics endpoint, the
//! table).
//!
//! - At most [`check_slots`] checks are in flight at once (one socket each);
//!   a check waits for a slot before its timeout starts, so waiting never
//!   counts against the real server. Slots are handed out in order.
//! - A check that cannot be made for a reason of the director's own
//!   ([`Outcome::local`]: out of descriptors, buffers or local ports, or a
//!   check task that failed inside the daemon) is not the real server's
//!   failure: it is counted (`lbctl_check_local_errors_total`), logged (at
//!   most one line per [`LOCAL_LOG_EVERY`]) and retried after
//!   [`LOCAL_RETRY`]; the real server keeps its health meanwhile.
//! - A check that waits longer than its interval for a slot is never
//!   skipped: it runs late, and that is counted
//!   (`lbctl_checks_late_total`) and logged (at most one line per
//!   [`LOCAL_LOG_EVERY`]).
//! - At start the daemon raises its soft limit of open files to the hard
//!   limit ([`raise_nofile_limit`]), as many servers do.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::{sync::Semaphore, task::JoinHandle, time::MissedTickBehavior};

use super::{
    Logger,
    check::{Job, NEGOTIATE_NEXT},
    health::Outcome,
};

/// The most checks in flight at once, however many descriptors there are.
pub const MAX_CHECK_SLOTS: usize = 4096;
/// Descriptors kept for everything but checks (the pinned maps, the
/// metrics endpoint, netlink, the log, the status file).
pub const RESERVED_FDS: u64 = 256;
/// How soon a check that could not be made is tried again (or the check
/// interval, when shorter).
pub const LOCAL_RETRY: Duration = Duration::from_secs(1);
/// At most one log line about local errors per this long.
pub const LOCAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Counters of the checks, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct CheckCounters {
    /// Checks made (including those that could not be made).
    pub checks: AtomicU64,
    /// Checks that could not be made for a local reason.
    pub local_errors: AtomicU64,
    /// Checks that waited longer than their interval for a slot (more
    /// checks in flight than slots).
    pub late: AtomicU64,
}

/// The soft limit of open files raised to the hard limit: `(old, new)`
/// soft limits (equal when nothing could be raised).
pub fn raise_nofile_limit() -> Result<(u64, u64), nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok((soft, hard));
    }
    Ok((soft, soft))
}

/// How many checks may be in flight with `nofile` open files allowed: half
/// of what is left after [`RESERVED_FDS`], at least 8, at most
/// [`MAX_CHECK_SLOTS`].
pub fn check_slots(nofile: u64) -> usize {
    let free = nofile.saturating_sub(RESERVED_FDS) / 2;
    usize::try_from(free)
        .unwrap_or(MAX_CHECK_SLOTS)
        .clamp(8, MAX_CHECK_SLOTS)
}

/// What makes two checks the same: everything the check sends and judges
/// (the check settings, the address and port checked, a per-real request
/// and receive, the maintenance file names) and the interval. Virtual
/// services that check a real server in the same way share one check.
pub fn check_key(job: &Job, interval: Duration) -> String {
    let r = &job.real;
    format!(
        "{:?}|{}|{}|{}|{:?}|{:?}|{:?}|{interval:?}",
        job.check,
        r.id.addr,
        r.check_port,
        r.port_given,
        r.request,
        r.receive.as_ref().map(|x| &x.source),
        job.maintenancedir,
    )
}

/// Local errors seen since the last log line about them.
#[derive(Debug, Default)]
struct LocalLog {
    last: Option<Instant>,
    unlogged: u64,
}

/// Runs the check tasks.
#[derive(Clone, Debug)]
pub struct Runner {
    slots: Arc<Semaphore>,
    pub counters: Arc<CheckCounters>,
    slot_count: usize,
    log: Logger,
    local_log: Arc<Mutex<LocalLog>>,
    late_log: Arc<Mutex<LocalLog>>,
}

impl Runner {
    pub fn new(slots: usize, log: Logger) -> Runner {
        Runner {
            slots: Arc::new(Semaphore::new(slots)),
            counters: Arc::new(CheckCounters::default()),
            slot_count: slots,
            log,
            local_log: Arc::new(Mutex::new(LocalLog::default())),
            late_log: Arc::new(Mutex::new(LocalLog::default())),
        }
    }

    /// How many checks may be in flight at once.
    pub fn slots(&self) -> usize {
        self.slot_count
    }

    /// Counts one check; a local error is counted and logged too, and
    /// `None` comes back (the check is to be retried, the real server's
    /// health left alone). `what` names the real server and its service.
    pub fn settle(&self, what: &str, outcome: Outcome) -> Option<Outcome> {
        self.counters.checks.fetch_add(1, Ordering::Relaxed);
        if !outcome.local {
            return Some(outcome);
        }
        self.counters.local_errors.fetch_add(1, Ordering::Relaxed);
        let mut l = self.local_log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if l.last
            .is_some_and(|t| now.duration_since(t) < LOCAL_LOG_EVERY)
        {
            l.unlogged += 1;
            return None;
        }
        let more = match std::mem::take(&mut l.unlogged) {
            0 => String::new(),
            n => format!(" ({n} more since the last such line)"),
        };
        l.last = Some(now);
        drop(l);
        self.log.log(&format!(
            "Error: check of real server {what} could not be made: {}; a local error, not \
             counted against the real server; retrying{more}",
            outcome.detail
        ));
        None
    }

    /// Starts checking `job` every `interval` (the first check at once);
    /// `report` gets every outcome that says something about the real
    /// server and returns `false` to stop.
    pub fn spawn(
        &self,
        job: Job,
        what: String,
        interval: Duration,
        mut report: impl FnMut(Outcome) -> bool + Send + 'static,
    ) -> JoinHandle<()> {
        let runner = self.clone();
        let job = Arc::new(job);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut connects = NEGOTIATE_NEXT;
            loop {
                tick.tick().await;
                let mut first = true;
                let outcome = loop {
                    let o = runner
                        .check_once(&job, &mut connects, &what, first, interval)
                        .await;
                    first = false;
                    match runner.settle(&what, o) {
                        Some(o) => break o,
                        None => tokio::time::sleep(LOCAL_RETRY.min(interval)).await,
                    }
                };
                if !report(outcome) {
                    break;
                }
            }
        })
    }

    /// Counts and logs (at most one line per [`LOCAL_LOG_EVERY`]) a check
    /// that waited `behind`, longer than its interval, for a slot: checks
    /// are never skipped, but they fall behind, and that must be seen.
    fn late(&self, what: &str, behind: Duration) {
        self.counters.late.fetch_add(1, Ordering::Relaxed);
        let mut l = self.late_log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if l.last
            .is_some_and(|t| now.duration_since(t) < LOCAL_LOG_EVERY)
        {
            l.unlogged += 1;
            return;
        }
        let more = match std::mem::take(&mut l.unlogged) {
            0 => String::new(),
            n => format!(" ({n} more since the last such line)"),
        };
        l.last = Some(now);
        drop(l);
        self.log.log(&format!(
            "Warning: checks are falling behind: the check of real server {what} waited {:.1}s, \
             more than its interval, for one of the {} check slots (all busy){more}",
            behind.as_secs_f64(),
            self.slot_count
        ));
    }

    /// One check in a slot, on a task of its own (so that an idle real
    /// server's task stays small, and a check that panics is a local error
    /// instead of the end of its real server's checks).
    /// A `first` try (not a retry) that waited longer than `interval` for
    /// its slot is late.
    async fn check_once(
        &self,
        job: &Arc<Job>,
        connects: &mut u32,
        what: &str,
        first: bool,
        interval: Duration,
    ) -> Outcome {
        let asked = Instant::now();
        let Ok(_slot) = self.slots.acquire().await else {
            return Outcome::local("no check slots (the daemon is stopping)");
        };
        let waited = asked.elapsed();
        if first && waited > interval {
            self.late(what, waited);
        }
        let job = job.clone();
        let mut c = *connects;
        let run = tokio::spawn(async move {
            let o = job.run(&mut c).await;
            (o, c)
        });
        match run.await {
            Ok((o, c)) => {
                *connects = c;
                o
            }
            Err(e) => Outcome::local(format!("the check failed inside the daemon: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_services_checking_a_real_alike_share_one_check() {
        let cfg = crate::daemon::config::parse(
            std::path::Path::new("t.cf"),
            "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\treal=198.51.100.12 gate\n\
             \tchecktype=connect\n\
             virtual=203.0.113.11:80\n\treal=198.51.100.11 gate\n\tchecktype=connect\n\
             virtual=203.0.113.12:80\n\treal=198.51.100.11 gate\n\tchecktype=connect\n\
             \tcheckport=81\n\
             virtual=203.0.113.13:80\n\treal=198.51.100.11 gate\n\tchecktype=connect\n\
             \tchecktimeout=2\n",
            &crate::resolve::Resolver::new(),
        )
        .unwrap();
        let key = |v: usize, r: usize| {
            let v = &cfg.virtuals[v];
            let job = Job {
                check: v.check.clone(),
                real: v.reals[r].clone(),
                maintenancedir: None,
            };
            check_key(&job, v.checkinterval)
        };
        assert_eq!(key(0, 0), key(1, 0));
        assert_ne!(key(0, 0), key(0, 1), "another real");
        assert_ne!(key(0, 0), key(2, 0), "another check port");
        assert_ne!(key(0, 0), key(3, 0), "another timeout");
    }

    #[tokio::test]
    async fn checks_waiting_for_a_slot_past_their_interval_are_counted_late() {
        let r = Runner::new(1, Logger::new(None));
        let interval = Duration::from_millis(50);
        let job = Arc::new(Job {
            check: crate::daemon::config::Check {
                kind: crate::daemon::config::CheckType::On,
                service: crate::daemon::config::CheckService::None,
                httpmethod: "GET".into(),
                request: "/".into(),
                receive: None,
                virtualhost: None,
                checktimeout: interval,
                negotiatetimeout: interval,
            },
            real: crate::daemon::config::Real {
                line: 1,
                id: crate::model::RealId {
                    addr: std::net::Ipv4Addr::new(198, 51, 100, 11).into(),
                    port: 80,
                },
                fwd: crate::model::Fwd::Route,
                port_given: 80,
                weight: 1,
                thresholds: crate::model::Thresholds::NONE,
                check_port: 80,
                request: None,
                receive: None,
            },
            maintenancedir: None,
        });
        let mut c = 0;
        // A free slot: not late.
        let o = r.check_once(&job, &mut c, "a", true, interval).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(r.counters.late.load(Ordering::Relaxed), 0);
        // The only slot held for four intervals by another check.
        let slot = r.slots.clone().acquire_owned().await.unwrap();
        let hold = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(slot);
        });
        let o = r.check_once(&job, &mut c, "b", true, interval).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(r.counters.late.load(Ordering::Relaxed), 1);
        hold.await.unwrap();
    }

    #[test]
    fn slots_follow_the_file_limit() {
        assert_eq!(check_slots(1024), 384);
        assert_eq!(check_slots(256), 8);
        assert_eq!(check_slots(0), 8);
        assert_eq!(check_slots(524_288), MAX_CHECK_SLOTS);
        assert_eq!(check_slots(u64::MAX), MAX_CHECK_SLOTS);
    }

    #[test]
    fn local_errors_are_counted_logged_once_and_not_reported() {
        let r = Runner::new(4, Logger::new(None));
        let what = "198.51.100.11:80 (203.0.113.10:80)";
        let emfile = || Outcome::local("connect to 198.51.100.11:80: Too many open files");
        assert_eq!(r.settle(what, emfile()), None);
        assert_eq!(r.settle(what, emfile()), None);
        let refused = Outcome::failed("connect to 198.51.100.11:80: Connection refused");
        assert_eq!(r.settle(what, refused.clone()), Some(refused));
        assert_eq!(r.settle(what, Outcome::ok("up")), Some(Outcome::ok("up")));
        assert_eq!(r.counters.checks.load(Ordering::Relaxed), 4);
        assert_eq!(r.counters.local_errors.load(Ordering::Relaxed), 2);
        // The second local error fell within the log interval: not logged yet.
        assert_eq!(r.local_log.lock().unwrap().unlogged, 1);
    }

    #[test]
    fn the_soft_file_limit_is_raised_to_the_hard_one() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let (old, new) = raise_nofile_limit().unwrap();
        assert!(old <= new && new == hard, "{old} {new} {hard}");
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, hard);
    }
}

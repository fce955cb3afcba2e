//! The health of one real server, as ldirectord tracks it (`_service_up`,
//! `_service_down`): `failurecount` consecutive failed checks take an up
//! server down ("soft failures" before that), one successful check brings a
//! down server back; a down server's failures are not counted further.

use std::time::SystemTime;

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// What happened, for the log and `daemon-status` ("HTTP/1.0 200 OK",
    /// "connection refused", ...).
    pub detail: String,
    /// Down at once, whatever `failurecount` says (a maintenance file).
    pub force: bool,
    /// The check could not be made for a reason of the director's own (no
    /// file descriptor, no buffer, no local port, the daemon's own fault):
    /// it says nothing about the real server, which keeps its health; the
    /// check is counted, logged and retried (`daemon::runner`).
    pub local: bool,
}

impl Outcome {
    pub fn ok(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            detail: detail.into(),
            force: false,
            local: false,
        }
    }
    pub fn failed(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            detail: detail.into(),
            force: false,
            local: false,
        }
    }
    /// A check that could not be made for a local reason (see
    /// [`Outcome::local`]).
    pub fn local(detail: impl Into<String>) -> Outcome {
        Outcome {
            local: true,
            ..Outcome::failed(detail)
        }
    }
}

/// The last check of a real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastCheck {
    pub at: SystemTime,
    pub outcome: Outcome,
}

/// What a check result changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Nothing to do.
    None,
    /// A failure of an up server, `n` of `of` (still up).
    SoftFailure { n: u32, of: u32 },
    /// A success after soft failures: the count starts again.
    ResetSoftFailures,
    /// The server is now down.
    Down,
    /// The server is now up.
    Up,
}

/// Health of one real server of one virtual service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    /// Consecutive failed checks while up.
    pub failures: u32,
    pub last: Option<LastCheck>,
}

impl Health {
    pub fn new(up: bool) -> Health {
        Health {
            up,
            failures: 0,
            last: None,
        }
    }

    /// Records a check result at `at`.
    /// A check that could not be made (`outcome.local`) changes nothing.
    pub fn record(&mut self, outcome: Outcome, failurecount: u32, at: SystemTime) -> Transition {
        if outcome.local {
            return Transition::None;
        }
        let t = if outcome.ok {
            let had = self.failures;
            self.failures = 0;
            if !self.up {
                self.up = true;
                Transition::Up
            } else if had > 0 {
                Transition::ResetSoftFailures
            } else {
                Transition::None
            }
        } else if !self.up {
            Transition::None
        } else {
            self.failures += 1;
            if !outcome.force && self.failures < failurecount.max(1) {
                Transition::SoftFailure {
                    n: self.failures,
                    of: failurecount,
                }
            } else {
                self.up = false;
                Transition::Down
            }
        };
        self.last = Some(LastCheck { at, outcome });
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH
    }

    #[test]
    fn failurecount_consecutive_failures_take_it_down() {
        let mut h = Health::new(true);
        let fail = || Outcome::failed("connection refused");
        assert_eq!(
            h.record(fail(), 3, now()),
            Transition::SoftFailure { n: 1, of: 3 }
        );
        assert_eq!(
            h.record(fail(), 3, now()),
            Transition::SoftFailure { n: 2, of: 3 }
        );
        assert!(h.up);
        assert_eq!(h.record(fail(), 3, now()), Transition::Down);
        assert!(!h.up);
        // Down: further failures change nothing.
        assert_eq!(h.record(fail(), 3, now()), Transition::None);
        assert_eq!(h.failures, 3);
        // One success brings it back and clears the count.
        assert_eq!(h.record(Outcome::ok("200 OK"), 3, now()), Transition::Up);
        assert_eq!((h.up, h.failures), (true, 0));
        assert_eq!(
            h.last.as_ref().map(|l| l.outcome.detail.as_str()),
            Some("200 OK")
        );
    }

    #[test]
    fn a_success_resets_soft_failures() {
        let mut h = Health::new(true);
        h.record(Outcome::failed("x"), 2, now());
        assert_eq!(
            h.record(Outcome::ok("y"), 2, now()),
            Transition::ResetSoftFailures
        );
        assert_eq!(
            h.record(Outcome::failed("x"), 2, now()),
            Transition::SoftFailure { n: 1, of: 2 }
        );
        assert_eq!(
            h.record(Outcome::ok("y"), 2, now()),
            Transition::ResetSoftFailures
        );
        assert_eq!(h.record(Outcome::ok("y"), 2, now()), Transition::None);
    }

    #[test]
    fn failurecount_one_and_forced_failures_are_immediate() {
        let mut h = Health::new(true);
        assert_eq!(h.record(Outcome::failed("x"), 1, now()), Transition::Down);
        let mut h = Health::new(true);
        let forced = Outcome {
            force: true,
            ..Outcome::failed("Server in maintenance")
        };
        assert_eq!(h.record(forced, 5, now()), Transition::Down);
        // A down server that passes comes up at once.
        let mut h = Health::new(false);
        assert_eq!(h.record(Outcome::ok("y"), 5, now()), Transition::Up);
    }

    #[test]
    fn a_check_that_could_not_be_made_is_no_failure_of_the_real() {
        let mut h = Health::new(true);
        let emfile = Outcome::local("connect to 198.51.100.11:80: Too many open files");
        for _ in 0..5 {
            assert_eq!(h.record(emfile.clone(), 1, now()), Transition::None);
        }
        assert_eq!(h, Health::new(true));
        let mut h = Health::new(false);
        assert_eq!(h.record(emfile, 1, now()), Transition::None);
        assert_eq!(h, Health::new(false));
    }
}

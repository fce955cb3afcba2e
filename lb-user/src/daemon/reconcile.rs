//! From the configuration and the health of the real servers to `Table`
//! operations, applying only what differs from the table.
//!
//! The rules are ldirectord's (`ld_start`, `_restore_service`,
//! `_remove_service`, `fallback_on`/`fallback_off`, `ld_stop`):
//! - an up real server has its configured weight (`-a`, or `-e` when it is
//!   there with another weight: "Restored");
//! - a down real server gets weight 0 with `quiescent=yes` (`-e -w 0`:
//!   "Quiescent"), or is removed with `quiescent=no` (`-d`: "Deleted"); a
//!   down server missing from the table is added with weight 0 when the
//!   daemon (re)starts or reloads, and later only with `readdquiescent=yes`
//!   (so that an administrator's `-d` sticks, as with ldirectord);
//! - the fallback server is in the service with weight 1 exactly while no
//!   real server is up, and is deleted (never quiesced) otherwise;
//! - on start and reload the services are created or edited to match, real
//!   servers the configuration does not name are purged from them, and the
//!   services of a previous configuration that the new one drops are
//!   deleted; on stop, services with `cleanstop=yes` are deleted.
//!
//! Nothing else is touched: `Table` operations on one service or real server
//! leave the flows and templates of the others alone, so a reload that
//! changes one real server leaves everything else as it was.

use std::collections::BTreeMap;

use super::{config::Config, health::Health};
use crate::{
    addr::addr_port,
    error::Error,
    model::{Fwd, Proto, RealId, RealSpec, ServiceId, ServiceSpec, Thresholds},
    table::Table,
};

/// A service as the table has it: its settings, its real servers' weights
/// and the thresholds of those that have some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActualService {
    pub spec: ServiceSpec,
    pub reals: BTreeMap<RealId, u32>,
    /// `-x`/`-y` of the reals that have them (the others have none).
    pub thresholds: BTreeMap<RealId, Thresholds>,
    /// The method of the reals that are not `-g` (the others are).
    pub fwds: BTreeMap<RealId, Fwd>,
}

/// The services in the table.
pub type Actual = BTreeMap<ServiceId, ActualService>;

/// Reads the services and their real servers' weights from the table (the
/// service and dest maps only: no scan of the connection table).
pub fn read_actual(t: &Table) -> Result<Actual, Error> {
    Ok(t.configured()?
        .into_iter()
        .map(|(spec, reals)| {
            (
                spec.id,
                ActualService {
                    spec,
                    reals: reals.iter().map(|r| (r.id, r.weight)).collect(),
                    thresholds: reals
                        .iter()
                        .filter(|r| r.thresholds != Thresholds::NONE)
                        .map(|r| (r.id, r.thresholds))
                        .collect(),
                    fwds: reals
                        .iter()
                        .filter(|r| r.fwd != Fwd::Route)
                        .map(|r| (r.id, r.fwd))
                        .collect(),
                },
            )
        })
        .collect())
}

/// One table operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DeleteService(ServiceId),
    AddReal(ServiceId, RealSpec),
    EditReal(ServiceId, RealSpec),
    DeleteReal(ServiceId, RealId),
}

/// An operation and its log line (ldirectord's wording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub log: String,
}

/// Why a plan is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Daemon start or configuration reload: services made to match, unnamed
    /// real servers purged, dropped services (`removed`) deleted. `tag` is
    /// "start" or "reload" for the log.
    Full {
        removed: Vec<ServiceId>,
        tag: &'static str,
    },
    /// After health changes: real servers only.
    Health,
}

/// ldirectord's name of a service in logs: `ADDR:PORT` (an IPv6 ADDR in
/// brackets; UDP ones with a `/udp` suffix), `fwmark N` (`fwmark N IPv6`
/// for `virtual6=N`).
pub fn service_label(id: &ServiceId) -> String {
    match id.proto {
        Proto::Tcp => addr_port(id.addr, id.port),
        Proto::Udp => format!("{}/udp", addr_port(id.addr, id.port)),
        Proto::Fwm if id.is_v6() => format!("fwmark {} IPv6", id.mark().unwrap_or(0)),
        Proto::Fwm => format!("fwmark {}", id.mark().unwrap_or(0)),
    }
}

fn real_label(r: &RealId) -> String {
    addr_port(r.addr, r.port)
}

/// What the table should hold for one real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Weight(u32),
    /// Weight 0 if present; added with weight 0 when missing and `readd`.
    Quiescent {
        readd: bool,
    },
    Absent,
}

/// Whether a virtual service has a real server up.
pub fn any_up(cfg: &Config, id: &ServiceId, health: &HealthMap) -> bool {
    cfg.virtual_by_id(id).is_some_and(|v| {
        v.reals
            .iter()
            .any(|r| health.get(&(*id, r.id)).is_some_and(|h| h.up))
    })
}

/// Health of every real server, by (service, real).
pub type HealthMap = BTreeMap<(ServiceId, RealId), Health>;

/// The operations that bring `actual` to what `cfg` and `health` ask for.
pub fn plan(cfg: &Config, health: &HealthMap, actual: &Actual, mode: &Mode) -> Vec<Step> {
    let mut steps = Vec::new();
    let full = matches!(mode, Mode::Full { .. });
    for v in &cfg.virtuals {
        let id = v.id();
        let vl = service_label(&id);
        let empty = ActualService {
            spec: v.spec,
            reals: BTreeMap::new(),
            thresholds: BTreeMap::new(),
            fwds: BTreeMap::new(),
        };
        let have = match actual.get(&id) {
            Some(a) => {
                if full && a.spec != v.spec {
                    steps.push(Step {
                        op: Op::EditService(v.spec),
                        log: format!("Changed virtual server: {vl}"),
                    });
                }
                a
            }
            None if full => {
                steps.push(Step {
                    op: Op::AddService(v.spec),
                    log: format!("Added virtual server: {vl}"),
                });
                &empty
            }
            // Gone from the table since the last start or reload (someone
            // deleted it): left alone until the next reload, as ldirectord.
            None => continue,
        };
        // (real, its method, its thresholds when up, what it should be,
        // fallback)
        let mut wants: Vec<(RealId, Fwd, Thresholds, Want, bool)> = Vec::new();
        for r in &v.reals {
            let up = health.get(&(id, r.id)).is_some_and(|h| h.up);
            let want = if up {
                Want::Weight(r.weight)
            } else if v.quiescent {
                Want::Quiescent {
                    readd: full || cfg.readdquiescent,
                }
            } else {
                Want::Absent
            };
            wants.push((r.id, r.fwd, r.thresholds, want, false));
        }
        if let Some(fb) = v.fallback {
            let want = if any_up(cfg, &id, health) {
                Want::Absent
            } else {
                Want::Weight(1)
            };
            wants.push((fb, v.fallback_fwd, Thresholds::NONE, want, true));
        }
        for (rid, fwd, up_thresholds, want, fallback) in &wants {
            let kind = if *fallback { "fallback" } else { "real" };
            let rl = real_label(rid);
            let cur = have.reals.get(rid).copied();
            let cur_thresholds = have
                .thresholds
                .get(rid)
                .copied()
                .unwrap_or(Thresholds::NONE);
            // ldirectord compares the method by its switch
            // (`get_forward_flag`): a GUE or GRE real set by hand is `-i`
            // as its `ipip`, and keeps its settings until an edit (which
            // sends plain `-i`, as ldirectord's ipvsadm does).
            let cur_fwd = have.fwds.get(rid).copied().unwrap_or(Fwd::Route);
            let same_fwd = cur_fwd.switch() == fwd.switch();
            // ldirectord's `_restore_service` passes `-x U -y L` (its `l:`
            // and `u:`); `_remove_service` quiesces and re-adds with `-w 0`
            // alone, which clears them.
            let spec = |weight, thresholds| RealSpec {
                id: *rid,
                fwd: *fwd,
                weight,
                thresholds,
            };
            match (*want, cur) {
                (Want::Weight(w), None) => steps.push(Step {
                    op: Op::AddReal(id, spec(w, *up_thresholds)),
                    log: format!("Added {kind} server: {rl} ({vl}) (Weight set to {w})"),
                }),
                (Want::Weight(w), Some(c))
                    if c != w || cur_thresholds != *up_thresholds || !same_fwd =>
                {
                    steps.push(Step {
                        op: Op::EditReal(id, spec(w, *up_thresholds)),
                        log: format!("Restored {kind} server: {rl} ({vl}) (Weight set to {w})"),
                    })
                }
                (Want::Quiescent { .. }, Some(c)) if c != 0 || !same_fwd => steps.push(Step {
                    op: Op::EditReal(id, spec(0, Thresholds::NONE)),
                    log: format!("Quiescent {kind} server: {rl} ({vl}) (Weight set to 0)"),
                }),
                (Want::Quiescent { readd: true }, None) => steps.push(Step {
                    op: Op::AddReal(id, spec(0, Thresholds::NONE)),
                    log: format!(
                        "Added quiescent {kind} server: {rl} ({vl}) (Weight set to 0 until a check succeeds)"
                    ),
                }),
                (Want::Absent, Some(_)) => steps.push(Step {
                    op: Op::DeleteReal(id, *rid),
                    log: format!("Deleted {kind} server: {rl} ({vl})"),
                }),
                _ => {}
            }
        }
        if let Mode::Full { tag, .. } = mode {
            for rid in have.reals.keys() {
                if !wants.iter().any(|w| w.0 == *rid) {
                    steps.push(Step {
                        op: Op::DeleteReal(id, *rid),
                        log: format!("Purged real server ({tag}): {} ({vl})", real_label(rid)),
                    });
                }
            }
        }
    }
    if let Mode::Full { removed, tag } = mode {
        for id in removed {
            if actual.contains_key(id) && cfg.virtual_by_id(id).is_none() {
                steps.push(Step {
                    op: Op::DeleteService(*id),
                    log: format!("Purged virtual server ({tag}): {}", service_label(id)),
                });
            }
        }
    }
    steps
}

/// The services to delete when the daemon stops (`cleanstop=yes`).
pub fn plan_stop(cfg: &Config, actual: &Actual) -> Vec<Step> {
    cfg.virtuals
        .iter()
        .filter(|v| v.cleanstop && actual.contains_key(&v.id()))
        .map(|v| Step {
            op: Op::DeleteService(v.id()),
            log: format!("Purged virtual server (stop): {}", service_label(&v.id())),
        })
        .collect()
}

/// Applies `steps` in order. Returns the log line of each step done and
/// the first error (the steps after it are not tried).
pub fn apply(t: &mut Table, steps: &[Step]) -> (Vec<String>, Option<(String, Error)>) {
    let mut done = Vec::new();
    for s in steps {
        let r = match &s.op {
            Op::AddService(spec) => t.add_service(spec),
            Op::EditService(spec) => t.edit_service(spec),
            Op::DeleteService(id) => t.delete_service(id),
            Op::AddReal(id, r) => t.add_real(id, r),
            Op::EditReal(id, r) => t.edit_real(id, r),
            Op::DeleteReal(id, r) => t.delete_real(id, r),
        };
        match r {
            Ok(()) => done.push(s.log.clone()),
            Err(e) => return (done, Some((s.log.clone(), e))),
        }
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::{config, health::Outcome};
    use crate::resolve::Resolver;
    use std::net::Ipv4Addr;
    use std::path::Path;
    use std::time::SystemTime;

    const CONF: &str = "\
checkinterval=1
virtual=203.0.113.10:80
\treal=198.51.100.11:80 gate 2
\treal=198.51.100.12:80 gate 3
\tfallback=198.51.100.20:80
\tchecktype=connect
";

    fn cfg(text: &str) -> Config {
        config::parse(Path::new("t.cf"), text, &Resolver::new()).unwrap()
    }

    fn sid() -> ServiceId {
        ServiceId {
            proto: Proto::Tcp,
            addr: "203.0.113.10".parse().unwrap(),
            port: 80,
        }
    }

    fn rid(last: u8) -> RealId {
        RealId {
            addr: Ipv4Addr::new(198, 51, 100, last).into(),
            port: 80,
        }
    }

    fn health(ups: &[(u8, bool)]) -> HealthMap {
        ups.iter()
            .map(|(r, up)| ((sid(), rid(*r)), Health::new(*up)))
            .collect()
    }

    fn actual(c: &Config, reals: &[(u8, u32)]) -> Actual {
        let mut a = Actual::new();
        a.insert(
            sid(),
            ActualService {
                spec: c.virtuals[0].spec,
                reals: reals.iter().map(|(r, w)| (rid(*r), *w)).collect(),
                thresholds: BTreeMap::new(),
                fwds: BTreeMap::new(),
            },
        );
        a
    }

    fn full() -> Mode {
        Mode::Full {
            removed: vec![],
            tag: "start",
        }
    }

    fn logs(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.log.as_str()).collect()
    }

    #[test]
    fn start_creates_the_service_with_down_reals_quiesced_and_the_fallback() {
        let c = cfg(CONF);
        let steps = plan(
            &c,
            &health(&[(11, false), (12, false)]),
            &Actual::new(),
            &full(),
        );
        assert_eq!(
            logs(&steps),
            [
                "Added virtual server: 203.0.113.10:80",
                "Added quiescent real server: 198.51.100.11:80 (203.0.113.10:80) (Weight set to 0 until a check succeeds)",
                "Added quiescent real server: 198.51.100.12:80 (203.0.113.10:80) (Weight set to 0 until a check succeeds)",
                "Added fallback server: 198.51.100.20:80 (203.0.113.10:80) (Weight set to 1)",
            ]
        );
        assert_eq!(steps[0].op, Op::AddService(c.virtuals[0].spec));
    }

    #[test]
    fn nothing_to_do_when_the_table_matches() {
        let c = cfg(CONF);
        let a = actual(&c, &[(11, 2), (12, 3)]);
        let h = health(&[(11, true), (12, true)]);
        assert!(plan(&c, &h, &a, &full()).is_empty());
        assert!(plan(&c, &h, &a, &Mode::Health).is_empty());
    }

    #[test]
    fn down_real_is_quiesced_and_restored() {
        let c = cfg(CONF);
        let a = actual(&c, &[(11, 2), (12, 3)]);
        let steps = plan(&c, &health(&[(11, true), (12, false)]), &a, &Mode::Health);
        assert_eq!(
            logs(&steps),
            ["Quiescent real server: 198.51.100.12:80 (203.0.113.10:80) (Weight set to 0)"]
        );
        assert_eq!(
            steps[0].op,
            Op::EditReal(
                sid(),
                RealSpec {
                    id: rid(12),
                    fwd: Fwd::Route,
                    weight: 0,
                    thresholds: Thresholds::NONE,
                }
            )
        );
        let a = actual(&c, &[(11, 2), (12, 0)]);
        let steps = plan(&c, &health(&[(11, true), (12, true)]), &a, &Mode::Health);
        assert_eq!(
            logs(&steps),
            ["Restored real server: 198.51.100.12:80 (203.0.113.10:80) (Weight set to 3)"]
        );
    }

    /// ldirectord's `_restore_service` passes `-x U -y L` and compares them
    /// with `-L -n --thresholds`; `_remove_service` quiesces with `-w 0`
    /// alone, which clears them.
    #[test]
    fn thresholds_follow_ldirectord() {
        let c = cfg(&CONF.replace(
            "198.51.100.12:80 gate 3",
            "198.51.100.12:80 gate 3 l:10 u:100",
        ));
        let want = Thresholds {
            upper: 100,
            lower: 10,
        };
        let spec = |weight, thresholds| RealSpec {
            id: rid(12),
            fwd: Fwd::Route,
            weight,
            thresholds,
        };
        // Up and missing: added with them.
        let a = actual(&c, &[(11, 2)]);
        let steps = plan(&c, &health(&[(11, true), (12, true)]), &a, &Mode::Health);
        assert_eq!(steps[0].op, Op::AddReal(sid(), spec(3, want)));
        // Up with the right weight but other thresholds: restored.
        let a = actual(&c, &[(11, 2), (12, 3)]);
        let steps = plan(&c, &health(&[(11, true), (12, true)]), &a, &Mode::Health);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].op, Op::EditReal(sid(), spec(3, want)));
        assert_eq!(
            steps[0].log,
            "Restored real server: 198.51.100.12:80 (203.0.113.10:80) (Weight set to 3)"
        );
        // As configured: nothing to do.
        let mut a = actual(&c, &[(11, 2), (12, 3)]);
        a.get_mut(&sid()).unwrap().thresholds.insert(rid(12), want);
        assert!(plan(&c, &health(&[(11, true), (12, true)]), &a, &Mode::Health).is_empty());
        // Down: quiesced with -w 0 alone.
        let steps = plan(&c, &health(&[(11, true), (12, false)]), &a, &Mode::Health);
        assert_eq!(steps[0].op, Op::EditReal(sid(), spec(0, Thresholds::NONE)));
    }

    #[test]
    fn quiescent_no_deletes_and_adds_back() {
        let c = cfg(&CONF.replace("checktype=connect", "checktype=connect\n\tquiescent=no"));
        let a = actual(&c, &[(11, 2), (12, 3)]);
        let steps = plan(&c, &health(&[(11, true), (12, false)]), &a, &Mode::Health);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].op, Op::DeleteReal(sid(), rid(12)));
        assert_eq!(
            steps[0].log,
            "Deleted real server: 198.51.100.12:80 (203.0.113.10:80)"
        );
        let a = actual(&c, &[(11, 2)]);
        let steps = plan(&c, &health(&[(11, true), (12, true)]), &a, &Mode::Health);
        assert_eq!(
            steps[0].op,
            Op::AddReal(
                sid(),
                RealSpec {
                    id: rid(12),
                    fwd: Fwd::Route,
                    weight: 3,
                    thresholds: Thresholds::NONE,
                }
            )
        );
    }

    #[test]
    fn fallback_in_when_all_down_and_out_when_one_is_back() {
        let c = cfg(CONF);
        let a = actual(&c, &[(11, 2), (12, 0)]);
        let steps = plan(&c, &health(&[(11, false), (12, false)]), &a, &Mode::Health);
        assert_eq!(
            logs(&steps),
            [
                "Quiescent real server: 198.51.100.11:80 (203.0.113.10:80) (Weight set to 0)",
                "Added fallback server: 198.51.100.20:80 (203.0.113.10:80) (Weight set to 1)",
            ]
        );
        let a = actual(&c, &[(11, 0), (12, 0), (20, 1)]);
        let steps = plan(&c, &health(&[(11, false), (12, true)]), &a, &Mode::Health);
        assert_eq!(
            logs(&steps),
            [
                "Restored real server: 198.51.100.12:80 (203.0.113.10:80) (Weight set to 3)",
                "Deleted fallback server: 198.51.100.20:80 (203.0.113.10:80)",
            ]
        );
    }

    #[test]
    fn readdquiescent_decides_whether_a_removed_down_real_comes_back() {
        let c = cfg(CONF);
        // An administrator removed .12 while it is down.
        let a = actual(&c, &[(11, 2)]);
        let h = health(&[(11, true), (12, false)]);
        assert!(plan(&c, &h, &a, &Mode::Health).is_empty());
        let c2 = cfg(&format!("readdquiescent=yes\n{CONF}"));
        let steps = plan(&c2, &h, &a, &Mode::Health);
        assert_eq!(
            steps[0].op,
            Op::AddReal(
                sid(),
                RealSpec {
                    id: rid(12),
                    fwd: Fwd::Route,
                    weight: 0,
                    thresholds: Thresholds::NONE,
                }
            )
        );
        // A reload puts it back (quiesced), as ldirectord's ld_start.
        assert_eq!(plan(&c, &h, &a, &full()).len(), 1);
    }

    #[test]
    fn reload_changes_only_what_differs() {
        let c = cfg(CONF);
        let mut a = actual(&c, &[(11, 2), (12, 3), (13, 1)]);
        // Another service in the table, not ours: untouched.
        let other = ServiceId { port: 443, ..sid() };
        a.insert(
            other,
            ActualService {
                spec: ServiceSpec {
                    id: other,
                    ..c.virtuals[0].spec
                },
                reals: BTreeMap::new(),
                thresholds: BTreeMap::new(),
                fwds: BTreeMap::new(),
            },
        );
        let c2 = cfg(&CONF.replace("198.51.100.12:80 gate 3", "198.51.100.12:80 gate 5"));
        let h = health(&[(11, true), (12, true)]);
        let steps = plan(
            &c2,
            &h,
            &a,
            &Mode::Full {
                removed: vec![sid()],
                tag: "reload",
            },
        );
        assert_eq!(
            logs(&steps),
            [
                "Restored real server: 198.51.100.12:80 (203.0.113.10:80) (Weight set to 5)",
                "Purged real server (reload): 198.51.100.13:80 (203.0.113.10:80)",
            ]
        );
        // A changed scheduler edits the service; a dropped service is purged.
        let c3 = cfg(&CONF.replace("checktype=connect", "checktype=connect\n\tscheduler=rr"));
        let steps = plan(&c3, &h, &actual(&c, &[(11, 2), (12, 3)]), &full());
        assert_eq!(logs(&steps), ["Changed virtual server: 203.0.113.10:80"]);
        let c4 = cfg("virtual=203.0.113.10:8080\n\treal=198.51.100.11 gate\n");
        let steps = plan(
            &c4,
            &HealthMap::new(),
            &a,
            &Mode::Full {
                removed: vec![sid()],
                tag: "reload",
            },
        );
        assert_eq!(steps.last().unwrap().op, Op::DeleteService(sid()));
        assert_eq!(
            steps.last().unwrap().log,
            "Purged virtual server (reload): 203.0.113.10:80"
        );
        assert!(!steps.iter().any(|s| s.op == Op::DeleteService(other)));
    }

    #[test]
    fn a_service_deleted_behind_the_daemons_back_is_left_alone_until_reload() {
        let c = cfg(CONF);
        let h = health(&[(11, true), (12, false)]);
        assert!(plan(&c, &h, &Actual::new(), &Mode::Health).is_empty());
    }

    #[test]
    fn stop_removes_cleanstop_services_only() {
        let c = cfg(&format!(
            "{CONF}virtual=203.0.113.11:80\n\treal=198.51.100.11 gate\n\tcleanstop=no\n"
        ));
        let mut a = actual(&c, &[]);
        let second = c.virtuals[1].id();
        a.insert(
            second,
            ActualService {
                spec: c.virtuals[1].spec,
                reals: BTreeMap::new(),
                thresholds: BTreeMap::new(),
                fwds: BTreeMap::new(),
            },
        );
        let steps = plan_stop(&c, &a);
        assert_eq!(
            logs(&steps),
            ["Purged virtual server (stop): 203.0.113.10:80"]
        );
    }

    #[test]
    fn health_records_drive_the_plan() {
        let c = cfg(CONF);
        let mut h = health(&[(11, true), (12, true)]);
        let e = h.get_mut(&(sid(), rid(11))).unwrap();
        e.record(
            Outcome::failed("refused"),
            c.virtuals[0].failurecount,
            SystemTime::now(),
        );
        let a = actual(&c, &[(11, 2), (12, 3)]);
        assert_eq!(
            plan(&c, &h, &a, &Mode::Health)[0].op,
            Op::EditReal(
                sid(),
                RealSpec {
                    id: rid(11),
                    fwd: Fwd::Route,
                    weight: 0,
                    thresholds: Thresholds::NONE,
                }
            )
        );
    }

    /// `masq` and `ipip` reals go in with their method (and a masq real
    /// with its own port); a real whose method in the table is another is
    /// edited, as ldirectord compares `get_forward_flag`s; a GUE real set by
    /// hand is `-i` as `ipip` is, and is left alone.
    #[test]
    fn methods_are_applied_and_compared_by_switch() {
        use crate::model::{TunCsum, TunType, Tunnel};
        let c = cfg(
            "virtual=203.0.113.10:80\n\treal=198.51.100.11:8080 masq 2\n\
                     \treal=198.51.100.12 ipip 3\n\tchecktype=connect\n",
        );
        let masq = RealId {
            port: 8080,
            ..rid(11)
        };
        let h: HealthMap = [(masq, true), (rid(12), true)]
            .into_iter()
            .map(|(r, up)| ((sid(), r), Health::new(up)))
            .collect();
        let steps = plan(&c, &h, &Actual::new(), &full());
        let ops: Vec<&Op> = steps.iter().map(|s| &s.op).collect();
        let real = |id, fwd, weight| RealSpec {
            id,
            fwd,
            weight,
            thresholds: Thresholds::NONE,
        };
        let ipip = Fwd::Tunnel(Tunnel::IPIP);
        assert_eq!(
            ops[1..],
            [
                &Op::AddReal(sid(), real(masq, Fwd::Masq, 2)),
                &Op::AddReal(sid(), real(rid(12), ipip, 3)),
            ]
        );
        assert_eq!(
            logs(&steps)[1],
            "Added real server: 198.51.100.11:8080 (203.0.113.10:80) (Weight set to 2)"
        );
        // In the table with the right weights but as -g: restored as -m/-i.
        let mut a = Actual::new();
        let have = |fwds: &[(RealId, Fwd)]| ActualService {
            spec: c.virtuals[0].spec,
            reals: [(masq, 2), (rid(12), 3)].into_iter().collect(),
            thresholds: BTreeMap::new(),
            fwds: fwds.iter().copied().collect(),
        };
        a.insert(sid(), have(&[]));
        let steps = plan(&c, &h, &a, &Mode::Health);
        let ops: Vec<&Op> = steps.iter().map(|s| &s.op).collect();
        assert_eq!(
            ops,
            [
                &Op::EditReal(sid(), real(masq, Fwd::Masq, 2)),
                &Op::EditReal(sid(), real(rid(12), ipip, 3)),
            ]
        );
        // The same methods: nothing; a GUE real counts as ipip.
        let gue = Fwd::Tunnel(Tunnel {
            kind: TunType::Gue,
            port: 6080,
            csum: TunCsum::Csum,
        });
        a.insert(sid(), have(&[(masq, Fwd::Masq), (rid(12), gue)]));
        assert!(plan(&c, &h, &a, &Mode::Health).is_empty());
        // Quiesced (weight 0) but as another method: edited.
        let down: HealthMap = [(masq, false), (rid(12), true)]
            .into_iter()
            .map(|(r, up)| ((sid(), r), Health::new(up)))
            .collect();
        let mut q = have(&[(rid(12), ipip)]);
        q.reals.insert(masq, 0);
        a.insert(sid(), q);
        let steps = plan(&c, &down, &a, &Mode::Health);
        let ops: Vec<&Op> = steps.iter().map(|s| &s.op).collect();
        assert_eq!(ops, [&Op::EditReal(sid(), real(masq, Fwd::Masq, 0))]);
        assert_eq!(
            logs(&steps),
            ["Quiescent real server: 198.51.100.11:8080 (203.0.113.10:80) (Weight set to 0)"]
        );
    }
}

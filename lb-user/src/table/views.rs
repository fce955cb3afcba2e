//! The reads `-L`, `--stats` and `--rate` print: every service with its
//! real servers, their weights, counters and connection gauges.

use std::time::Duration;

use aya::maps::PerCpuValues;
use lb_common::{MAP_DEST_STATS, MAP_SVC_STATS, ServiceStats};

use super::{Table, spec_of};
use crate::{
    clock::monotonic_ns,
    error::Error,
    model::{Fwd, Rates, RealId, RealSpec, RealView, ServiceView, Stats, Thresholds},
    pins::map_err,
};

fn sum(values: &PerCpuValues<ServiceStats>) -> ServiceStats {
    values
        .iter()
        .fold(ServiceStats::default(), |a, v| ServiceStats {
            conns: a.conns + v.conns,
            inpkts: a.inpkts + v.inpkts,
            inbytes: a.inbytes + v.inbytes,
            outpkts: a.outpkts + v.outpkts,
            outbytes: a.outbytes + v.outbytes,
        })
}

fn to_stats(s: ServiceStats) -> Stats {
    Stats {
        conns: s.conns,
        inpkts: s.inpkts,
        inbytes: s.inbytes,
        outpkts: s.outpkts,
        outbytes: s.outbytes,
    }
}

impl Table {
    /// Services and their reals as the listings show them; `rates` are
    /// measured over `rate_window` when given.
    pub fn views(&self, rate_window: Option<Duration>) -> Result<Vec<ServiceView>, Error> {
        let first = self.snapshot()?;
        let Some(window) = rate_window else {
            return Ok(first);
        };
        std::thread::sleep(window);
        let mut second = self.snapshot()?;
        let secs = window.as_secs_f64().max(1e-3);
        let rate = |a: &Stats, b: &Stats| Rates {
            cps: ((b.conns.saturating_sub(a.conns)) as f64 / secs).round() as u64,
            inpps: ((b.inpkts.saturating_sub(a.inpkts)) as f64 / secs).round() as u64,
            outpps: 0,
            inbps: ((b.inbytes.saturating_sub(a.inbytes)) as f64 / secs).round() as u64,
            outbps: 0,
        };
        for s2 in &mut second {
            if let Some(s1) = first.iter().find(|s| s.spec.id == s2.spec.id) {
                s2.rates = rate(&s1.stats, &s2.stats);
                for r2 in &mut s2.reals {
                    if let Some(r1) = s1.reals.iter().find(|r| r.spec.id == r2.spec.id) {
                        r2.rates = rate(&r1.stats, &r2.stats);
                    }
                }
            }
        }
        Ok(second)
    }

    fn snapshot(&self) -> Result<Vec<ServiceView>, Error> {
        let now = monotonic_ns();
        let settings = self.pins.settings()?;
        let dests = self.dest_table()?;
        // Gauges from the tables: (active, inactive, persist) per dest slot.
        let gauges = self.conn_gauges(&dests, now)?;
        let _ = settings;
        let mut out = Vec::new();
        for (id, (_, svc)) in self.services()? {
            let stats = sum(&self
                .pins
                .svc_stats
                .get(&svc.id, 0)
                .map_err(map_err(MAP_SVC_STATS))?);
            let mut reals = Vec::new();
            for sd in &self.read_list(&svc)? {
                let Some(d) = dests.get(sd.dest as usize) else {
                    continue;
                };
                let ds = sum(&self
                    .pins
                    .dest_stats
                    .get(&sd.dest, 0)
                    .map_err(map_err(MAP_DEST_STATS))?);
                let g = gauges.get(&sd.dest).copied().unwrap_or_default();
                reals.push(RealView {
                    spec: RealSpec {
                        id: RealId {
                            addr: crate::addr::from_addr(&d.addr),
                            port: u16::from_be_bytes(d.port),
                        },
                        fwd: Fwd::of_dest(d),
                        weight: sd.weight,
                        thresholds: Thresholds {
                            upper: d.u_threshold,
                            lower: d.l_threshold,
                        },
                    },
                    active_conns: g.0,
                    inactive_conns: g.1,
                    persist_conns: g.2,
                    stats: to_stats(ds),
                    rates: Rates::default(),
                });
            }
            out.push(ServiceView {
                spec: spec_of(&id, &svc),
                stats: to_stats(stats),
                rates: Rates::default(),
                reals,
            });
        }
        Ok(out)
    }
}

//! `lbctl whereis`: which real server a new connection from a client would
//! get now, and why, with no state changed.
//!
//! The answer is computed by the packet path's own rules: a persistent
//! service's template is checked with lb-common's `template_usable` (the
//! predicate lb-ebpf's `template.rs` applies, `ip_vs_check_template`), and
//! otherwise the packet path's scheduler code (lb-ebpf's `schedulers/`,
//! compiled here as `sched_table::packet_path`) runs over the pinned maps
//! through [`PinnedNodes`], on a copy of each CPU's scheduler state (`SCHED`
//! is per CPU). Schedulers that keep no state (sh, mh, the counting ones)
//! give every CPU the same answer; rr and wrr give each CPU's next in
//! rotation, since the CPU that takes the client's SYN decides.

use std::net::IpAddr;

use lb_common::{
    DestConns, MAP_SCHED, MAP_SERVICES, MAP_TEMPLATES, MhTable, NS_PER_SEC, SCHED_MH, SCHED_RR,
    SCHED_SH, SCHED_WRR, SVC_F_PERSISTENT, SVC_F_PORT0, SVC_F_SCHED_MASK, SVC_F_SCHED_PORT,
    Service, ServiceDest, ShTable, TemplateKey, addr_masked, template_usable,
};

use crate::{
    addr::{addr_port, from_addr, to_addr},
    clock::monotonic_ns,
    error::Error,
    model::{RealId, Sched, SchedFlags, ServiceId},
    pins::{Pins, map_err},
    sched_table::packet_path::{Client, Nodes, pick},
    table::{Table, service_key},
};

/// What happened to the client's persistence template, when the service is
/// persistent and the scheduler decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateState {
    /// The client has none.
    None,
    /// It expired.
    Expired,
    /// Its real was removed, replaced, quiesced with
    /// `expire_quiescent_template`, or its templates invalidated.
    Invalid,
}

impl TemplateState {
    pub fn name(self) -> &'static str {
        match self {
            TemplateState::None => "none",
            TemplateState::Expired => "expired",
            TemplateState::Invalid => "invalid",
        }
    }
}

/// Why the real was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The client's template, which expires in this many seconds (unless
    /// new connections renew it).
    Template { expires: u64 },
    /// The service's scheduler; for a persistent service, what became of
    /// the template.
    Scheduler {
        sched: Sched,
        template: Option<TemplateState>,
    },
}

/// One answer: on `cpu` (every CPU when `None`), a new connection goes to
/// `real` (`None`: no real may take it, the client gets ICMP port
/// unreachable), because of `why`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub cpu: Option<usize>,
    pub real: Option<RealId>,
    pub why: Why,
}

/// Why `whereis` cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum WhereisError {
    #[error("{sched} hashes the client's port ({sched}-port): give the client as ADDRESS:PORT")]
    PortNeeded { sched: &'static str },
    #[error(
        "client {client} is not of the service's family: no packet of it can reach an {family} service"
    )]
    OtherFamily {
        client: IpAddr,
        family: &'static str,
    },
    #[error(transparent)]
    Table(#[from] Error),
}

/// The schedulers' view of the pinned maps (the packet path reads the same
/// maps through lb-ebpf's `MapNodes`): the service's block of `SVC_DESTS`,
/// `DESTS`' ranks, `DEST_CONNS` with the overload resolved against the
/// dest's upper threshold, and the service's sh or mh table, read once.
pub struct PinnedNodes<'a> {
    pins: &'a Pins,
    sh: Option<ShTable>,
    mh: Option<Box<MhTable>>,
}

impl<'a> PinnedNodes<'a> {
    /// The nodes of `svc` (its hash table read now, if it has one).
    pub fn new(pins: &'a Pins, svc: &Service) -> PinnedNodes<'a> {
        let sh = (svc.sched == SCHED_SH)
            .then(|| pins.sh_tables.get(&svc.table, 0).ok())
            .flatten();
        let mh = (svc.sched == SCHED_MH)
            .then(|| pins.mh_tables.get(&svc.table, 0).ok().map(Box::new))
            .flatten();
        PinnedNodes { pins, sh, mh }
    }
}

impl Nodes for PinnedNodes<'_> {
    fn node(&self, svc: &Service, i: u32) -> Option<ServiceDest> {
        self.pins.svc_dests.get(&svc.list.wrapping_add(i), 0).ok()
    }

    fn dest_rank(&self, dest: u32) -> Option<u32> {
        self.pins.dests.get(&dest, 0).ok().map(|d| d.rank)
    }

    fn sh_table(&self, _svc: &Service) -> Option<&ShTable> {
        self.sh.as_ref()
    }

    fn mh_table(&self, _svc: &Service) -> Option<&MhTable> {
        self.mh.as_deref()
    }

    fn conns(&self, dest: u32) -> Option<DestConns> {
        let c = self.pins.dest_conns.get(&dest, 0).ok()?;
        Some(c.resolved(|| self.pins.dests.get(&dest, 0).map_or(0, |d| d.u_threshold)))
    }

    /// twos' draws: whereis shows one possible pick (the one both draws
    /// landing at the list's head would make); the program draws anew for
    /// each connection.
    fn random(&self) -> u32 {
        0
    }
}

/// Whether the scheduler turns with each pick (rr, wrr): its answer is
/// "next in rotation", per CPU.
fn rotates(sched: u32) -> bool {
    matches!(sched, SCHED_RR | SCHED_WRR)
}

impl Table {
    /// Where a new connection of `client` (and its source `port`, when
    /// given) to service `sid` would go now, per CPU when the CPUs differ.
    /// Reads the maps only.
    pub fn whereis(
        &self,
        sid: &ServiceId,
        client: IpAddr,
        port: Option<u16>,
    ) -> Result<Vec<Placement>, WhereisError> {
        if client.is_ipv6() != sid.is_v6() {
            let family = if sid.is_v6() { "IPv6" } else { "IPv4" };
            return Err(WhereisError::OtherFamily { client, family });
        }
        let pins = &self.pins;
        let svc = match pins.services.get(&service_key(sid), 0) {
            Ok(s) => s,
            Err(aya::maps::MapError::KeyNotFound) => return Err(Error::NoService(*sid).into()),
            Err(e) => return Err(map_err(MAP_SERVICES)(e).into()),
        };
        let sched = Sched::of(svc.sched, SchedFlags(svc.flags & SVC_F_SCHED_MASK));
        let hashes_port =
            matches!(svc.sched, SCHED_SH | SCHED_MH) && svc.flags & SVC_F_SCHED_PORT != 0;
        if hashes_port && port.is_none() {
            return Err(WhereisError::PortNeeded {
                sched: sched.name(),
            });
        }
        let settings = pins.settings()?;
        let now = monotonic_ns();
        let real_of = |dest: u32| -> Result<RealId, Error> {
            let d = pins
                .dests
                .get(&dest, 0)
                .map_err(map_err(lb_common::MAP_DESTS))?;
            Ok(RealId {
                addr: from_addr(&d.addr),
                port: u16::from_be_bytes(d.port),
            })
        };

        // A persistent service: the client's template first (§2, §3.2).
        let mut template = None;
        if svc.flags & SVC_F_PERSISTENT != 0 {
            let key = TemplateKey {
                caddr: addr_masked(&to_addr(client), &svc.netmask),
                vaddr: to_addr(sid.addr),
                vport: if svc.flags & SVC_F_PORT0 != 0 {
                    [0, 0]
                } else {
                    sid.port.to_be_bytes()
                },
                proto: sid.proto.number(),
                _pad: 0,
            };
            template = Some(match pins.templates.get(&key, 0) {
                Ok(t) => {
                    let d = pins.dests.get(&t.dest, 0).ok();
                    match d {
                        Some(d)
                            if template_usable(&t, &d, settings.expire_quiescent_template, now) =>
                        {
                            return Ok(vec![Placement {
                                cpu: None,
                                real: Some(real_of(t.dest)?),
                                why: Why::Template {
                                    expires: t.expires.saturating_sub(now) / NS_PER_SEC,
                                },
                            }]);
                        }
                        _ if now >= t.expires => TemplateState::Expired,
                        _ => TemplateState::Invalid,
                    }
                }
                Err(aya::maps::MapError::KeyNotFound) => TemplateState::None,
                Err(e) => return Err(map_err(MAP_TEMPLATES)(e).into()),
            });
        }

        // The scheduler, on a copy of each CPU's state.
        let nodes = PinnedNodes::new(pins, &svc);
        let states = pins.sched.get(&svc.id, 0).map_err(map_err(MAP_SCHED))?;
        let who = Client {
            addr: to_addr(client),
            port: port.unwrap_or(0).to_be_bytes(),
        };
        let why = Why::Scheduler { sched, template };
        let mut out = Vec::new();
        for (cpu, st) in states.iter().enumerate() {
            let mut st = *st;
            let real = match pick(&svc, &mut st, &nodes, &who) {
                Some(p) => Some(real_of(p.dest)?),
                None => None,
            };
            out.push(Placement {
                cpu: Some(cpu),
                real,
                why,
            });
        }
        let same = out.windows(2).all(|w| w[0].real == w[1].real);
        if same && !rotates(svc.sched) {
            out.truncate(1);
            if let Some(p) = out.first_mut() {
                p.cpu = None;
            }
        }
        Ok(out)
    }
}

/// `lbctl whereis`'s output: one line per answer, `key=value` words
/// separated by spaces, in this order: `cpu=N` (only when the answer is
/// per CPU), `real=ADDRESS:PORT` (or `real=none`), `by=template` with
/// `expires=SECONDS`, or `by=SCHEDULER` (`next=yes` for rr and wrr, whose
/// answer is the next in rotation; `random=yes` for twos, whose two draws
/// are made anew for each connection: the real shown is the one draws at
/// the head of the list would give) with `template=none|expired|invalid`
/// for a persistent service.
pub fn format(placements: &[Placement]) -> String {
    let mut out = String::new();
    for p in placements {
        let mut words = Vec::new();
        if let Some(cpu) = p.cpu {
            words.push(format!("cpu={cpu}"));
        }
        words.push(match p.real {
            Some(r) => format!("real={}", addr_port(r.addr, r.port)),
            None => "real=none".to_owned(),
        });
        match p.why {
            Why::Template { expires } => {
                words.push("by=template".to_owned());
                words.push(format!("expires={expires}"));
            }
            Why::Scheduler { sched, template } => {
                words.push(format!("by={}", sched.name()));
                if matches!(sched, Sched::Rr | Sched::Wrr) {
                    words.push("next=yes".to_owned());
                }
                if sched == Sched::Twos {
                    words.push("random=yes".to_owned());
                }
                if let Some(t) = template {
                    words.push(format!("template={}", t.name()));
                }
            }
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(last: u8) -> Option<RealId> {
        Some(RealId {
            addr: std::net::Ipv4Addr::new(198, 51, 100, last).into(),
            port: 80,
        })
    }

    #[test]
    fn one_line_per_answer_in_key_value_words() {
        let out = format(&[Placement {
            cpu: None,
            real: real(11),
            why: Why::Template { expires: 287 },
        }]);
        assert_eq!(out, "real=198.51.100.11:80 by=template expires=287\n");
        let out = format(&[Placement {
            cpu: None,
            real: real(12),
            why: Why::Scheduler {
                sched: Sched::Sh(SchedFlags::NONE),
                template: None,
            },
        }]);
        assert_eq!(out, "real=198.51.100.12:80 by=sh\n");
        let rr = |cpu, real| Placement {
            cpu: Some(cpu),
            real,
            why: Why::Scheduler {
                sched: Sched::Wrr,
                template: Some(TemplateState::Expired),
            },
        };
        assert_eq!(
            format(&[rr(0, real(11)), rr(1, None)]),
            "cpu=0 real=198.51.100.11:80 by=wrr next=yes template=expired\n\
             cpu=1 real=none by=wrr next=yes template=expired\n"
        );
    }
}

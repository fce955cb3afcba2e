//! The independent model of what the program must do: a reference classifier written from
//! the parsing policy (not from the program), and a model of LVS semantics (services, reals,
//! connection entries with the INPUT-ONLY TCP state machine, persistence templates, the
//! sysctls) that tracks what the program must have done.

use std::collections::HashMap;

use lb_common::{
    CONN_S_CLOSE, CONN_S_ESTABLISHED, CONN_S_FIN_WAIT, CONN_S_NONE, CONN_S_SYN_RECV,
    CONN_S_TIME_WAIT, CONN_S_UDP, ConnKey, REASON_DROP_NODEST, REASON_FWD_CONN, REASON_FWD_ICMP,
    REASON_FWD_NEW, REASON_FWD_TEMPLATE, REASON_PASS_BAD_IP, REASON_PASS_EXT_HEADERS,
    REASON_PASS_FRAGMENT, REASON_PASS_NO_CONN, REASON_PASS_NO_SERVICE, REASON_PASS_NOT_FOR_US,
    REASON_PASS_NOT_IP, REASON_PASS_NOT_L4, REASON_PASS_TRUNCATED, REASON_PASS_VLAN, TemplateKey,
    addr_v4,
};
use lb_user::model::Sched;

use super::config::SERVICES;
use crate::frame::tcp_flags;

/// What the checker needs of a frame the program must act on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pkt {
    pub(super) ihl: usize,
    pub(super) proto: u8,
    pub(super) saddr: [u8; 4],
    pub(super) daddr: [u8; 4],
    pub(super) sport: u16,
    pub(super) dport: u16,
    pub(super) flags: u8,
    pub(super) seq: u32,
    pub(super) ack: u32,
    /// TCP payload length (per the IP total length).
    pub(super) payload: u32,
    /// An ICMP error quoting a TCP/UDP packet: the fields above are the
    /// quoted flow turned around (from the client's side).
    pub(super) icmp: bool,
}

impl Pkt {
    pub(super) fn tcp(&self) -> bool {
        self.proto == 6
    }
    pub(super) fn key(&self) -> ConnKey {
        ConnKey {
            caddr: addr_v4(self.saddr),
            vaddr: addr_v4(self.daddr),
            cport: self.sport.to_be_bytes(),
            vport: self.dport.to_be_bytes(),
            proto: self.proto,
            _pad: [0; 3],
        }
    }
}

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The policy (lb-ebpf's parse stage doc): the program acts only on untagged
/// IPv4 frames whose header is consistent (version 4, IHL ≥ 5, IHL ≤ total
/// length ≤ the frame), that are not fragments, and that carry a complete
/// TCP (data offset ≥ 5, within the total length) or UDP (≥ 8 bytes) header.
/// Everything else passes to the kernel, counted under the first rule it
/// breaks. The IP header checksum is not part of the policy (the real
/// server's kernel checks it, as it would without a load balancer).
pub(super) fn classify(f: &[u8]) -> Result<Pkt, u32> {
    let Some(ethertype) = be16(f, 12) else {
        return Err(REASON_PASS_NOT_IP);
    };
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        return Err(REASON_PASS_VLAN);
    }
    if ethertype != 0x0800 && ethertype != 0x86dd {
        return Err(REASON_PASS_NOT_IP);
    }
    // Group-addressed frames are not for the director (PACKET_HOST only).
    // (The lab registers no interface MAC, so any unicast MAC is ours.)
    if f[0] & 1 != 0 {
        return Err(REASON_PASS_NOT_FOR_US);
    }
    if ethertype == 0x86dd {
        return Err(ipv6_outcome(f));
    }
    let ip = &f[14..];
    if ip.len() < 20 {
        return Err(REASON_PASS_TRUNCATED);
    }
    let version = ip[0] >> 4;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let tot_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if version != 4 || ihl < 20 || tot_len < ihl || tot_len > ip.len() {
        return Err(REASON_PASS_BAD_IP);
    }
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return Err(REASON_PASS_FRAGMENT);
    }
    let proto = ip[9];
    let saddr = [ip[12], ip[13], ip[14], ip[15]];
    // Martian sources: 0/8, 127/8, and everything from 224/4 up.
    if saddr[0] == 0 || saddr[0] == 127 || saddr[0] >= 224 {
        return Err(REASON_PASS_BAD_IP);
    }
    let daddr = [ip[16], ip[17], ip[18], ip[19]];
    let l4_len = tot_len - ihl;
    let l4 = &ip[ihl..];
    match proto {
        6 => {
            if l4.len() < 20 {
                return Err(REASON_PASS_TRUNCATED);
            }
            let doff = usize::from(l4[12] >> 4) * 4;
            if doff < 20 || doff > l4_len {
                return Err(REASON_PASS_TRUNCATED);
            }
            Ok(Pkt {
                ihl,
                proto,
                saddr,
                daddr,
                sport: u16::from_be_bytes([l4[0], l4[1]]),
                dport: u16::from_be_bytes([l4[2], l4[3]]),
                flags: l4[13],
                seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                ack: u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]),
                payload: (l4_len - doff) as u32,
                icmp: false,
            })
        }
        17 => {
            if l4.len() < 8 || l4_len < 8 {
                return Err(REASON_PASS_TRUNCATED);
            }
            Ok(Pkt {
                ihl,
                proto,
                saddr,
                daddr,
                sport: u16::from_be_bytes([l4[0], l4[1]]),
                dport: u16::from_be_bytes([l4[2], l4[3]]),
                flags: 0,
                seq: 0,
                ack: 0,
                payload: 0,
                icmp: false,
            })
        }
        1 => icmp_error(ip, ihl).ok_or(REASON_PASS_NOT_L4),
        _ => Err(REASON_PASS_NOT_L4),
    }
}

/// What the program does with an IPv6 frame (lb-ebpf's parse stage doc):
/// the fuzzer's services and flows are all IPv4, so a packet it parses is
/// for no service (`pass_no_service`), and an ICMPv6 error, about a flow
/// or not, finds no conn (`pass_not_tcp_udp`); else the first rule of the
/// IPv6 policy it breaks.
fn ipv6_outcome(f: &[u8]) -> u32 {
    const ETH: usize = 14;
    const IPV6: usize = 40;
    let Some(ip) = f.get(ETH..ETH + IPV6) else {
        return REASON_PASS_TRUNCATED;
    };
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if ip[0] >> 4 != 6 || payload == 0 || IPV6 + payload > f.len() - ETH {
        return REASON_PASS_BAD_IP;
    }
    let (src, dst) = (&ip[8..24], &ip[24..40]);
    let mapped = |a: &[u8]| a[..10] == [0; 10] && a[10..12] == [0xff, 0xff];
    let unspecified_or_loopback = src[..15] == [0; 15] && src[15] <= 1;
    if src[0] == 0xff || unspecified_or_loopback || mapped(src) || mapped(dst) {
        return REASON_PASS_BAD_IP;
    }
    let (proto, l4) = match ext_headers(f, ip[6], ETH + IPV6) {
        Ok(p) => p,
        Err(reason) => return reason,
    };
    let end = ETH + IPV6 + payload;
    if l4 > end {
        return REASON_PASS_TRUNCATED;
    }
    let l4_len = end - l4;
    match proto {
        6 => match f.get(l4..l4 + 20) {
            Some(tcp) => {
                let doff = usize::from(tcp[12] >> 4) * 4;
                if doff < 20 || doff > l4_len {
                    REASON_PASS_TRUNCATED
                } else {
                    REASON_PASS_NO_SERVICE
                }
            }
            None => REASON_PASS_TRUNCATED,
        },
        17 if f.len() >= l4 + 8 && l4_len >= 8 => REASON_PASS_NO_SERVICE,
        17 => REASON_PASS_TRUNCATED,
        _ => REASON_PASS_NOT_L4,
    }
}

/// lb-ebpf's walk of IPv6 extension headers (hop-by-hop, routing,
/// destination options; at most 4) from `next` at frame offset `off`: the
/// transport protocol and its offset, or why the frame is passed.
fn ext_headers(f: &[u8], mut next: u8, mut off: usize) -> Result<(u8, usize), u32> {
    const MAX_EXT_HEADERS: usize = 4;
    const FRAGMENT: u8 = 44;
    let walked = |n: u8| matches!(n, 0 | 43 | 60);
    for _ in 0..MAX_EXT_HEADERS {
        if next == FRAGMENT {
            return Err(REASON_PASS_FRAGMENT);
        }
        if !walked(next) {
            return Ok((next, off));
        }
        let h = f.get(off..off + 2).ok_or(REASON_PASS_TRUNCATED)?;
        next = h[0];
        off += (usize::from(h[1]) + 1) * 8;
    }
    if next == FRAGMENT {
        return Err(REASON_PASS_FRAGMENT);
    }
    if walked(next) {
        return Err(REASON_PASS_EXT_HEADERS);
    }
    Ok((next, off))
}

/// An ICMP error (types 3, 11, 12) quoting a TCP or UDP packet, as the
/// flow it is about, seen from the client. Bounds are the frame's (the
/// quote may be cut short by the ICMP sender).
pub(super) fn icmp_error(ip: &[u8], ihl: usize) -> Option<Pkt> {
    let icmp = ip.get(ihl..)?;
    if icmp.len() < 8 || ![3, 11, 12].contains(&icmp[0]) {
        return None;
    }
    let inner = &icmp[8..];
    if inner.len() < 20 {
        return None;
    }
    let iihl = usize::from(inner[0] & 0x0f) * 4;
    let proto = inner[9];
    if inner[0] >> 4 != 4 || iihl < 20 || (proto != 6 && proto != 17) {
        return None;
    }
    let ports = inner.get(iihl..iihl + 4)?;
    Some(Pkt {
        ihl,
        proto,
        saddr: [inner[16], inner[17], inner[18], inner[19]],
        daddr: [inner[12], inner[13], inner[14], inner[15]],
        sport: u16::from_be_bytes([ports[2], ports[3]]),
        dport: u16::from_be_bytes([ports[0], ports[1]]),
        flags: 0,
        seq: 0,
        ack: 0,
        payload: 0,
        icmp: true,
    })
}

/// The INPUT-ONLY TCP state machine of a direct-routing director
/// (docs/SEMANTICS.md §6.2), for the states a client's packets can reach. Flags
/// rank RST > SYN > FIN > ACK; none of them closes the entry.
pub(super) fn next_state(cur: u8, flags: u8) -> u8 {
    use tcp_flags::{ACK, FIN, RST, SYN};
    const NO: u8 = CONN_S_NONE;
    const ES: u8 = CONN_S_ESTABLISHED;
    const SR: u8 = CONN_S_SYN_RECV;
    const FW: u8 = CONN_S_FIN_WAIT;
    const TW: u8 = CONN_S_TIME_WAIT;
    const CL: u8 = CONN_S_CLOSE;
    // Columns: SYN, FIN, ACK, RST.
    let row: [u8; 4] = match cur {
        NO => [SR, CL, CL, CL],
        ES => [ES, FW, ES, CL],
        SR => [SR, TW, ES, SR],
        FW => [SR, FW, FW, CL],
        TW => [SR, TW, TW, CL],
        CL => [SR, CL, CL, CL],
        // Unreachable from NONE with client packets only.
        _ => return u8::MAX,
    };
    if flags & RST != 0 {
        row[3]
    } else if flags & SYN != 0 {
        row[0]
    } else if flags & FIN != 0 {
        row[1]
    } else if flags & ACK != 0 {
        row[2]
    } else {
        CL
    }
}

#[derive(Clone, Debug)]
pub(super) struct RealM {
    pub(super) last: u8,
    pub(super) weight: u32,
    /// In the service's list (not removed with `-d`).
    pub(super) available: bool,
    /// Bumped when the real's entries and templates are flushed (`-d` with
    /// `expire_nodest_conn=1`): what was bound before is gone for good.
    pub(super) incarnation: u32,
    /// Bumped when its templates are expired at once (quiescing with
    /// `expire_quiescent_template=1`).
    pub(super) tmpl_epoch: u32,
}

#[derive(Clone, Debug)]
pub(super) struct SvcM {
    pub(super) def: usize,
    pub(super) proto: u8,
    pub(super) vip: [u8; 4],
    pub(super) port: u16,
    pub(super) sched: Sched,
    pub(super) persistent: bool,
    pub(super) netmask: [u8; 4],
    pub(super) reals: Vec<RealM>,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct FlowM {
    pub(super) svc: usize,
    pub(super) real: usize,
    pub(super) incarnation: u32,
    pub(super) state: u8,
    pub(super) controlled: bool,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct TmplM {
    pub(super) real: usize,
    pub(super) incarnation: u32,
    pub(super) epoch: u32,
}

/// What the program must do with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// Unchanged, `XDP_PASS`, under this reason.
    Pass(u32),
    /// Forwarded (only the MACs changed) to one of `reals` (indices in the
    /// service), under `reason`.
    Forward {
        svc: usize,
        reason: u32,
        reals: Vec<usize>,
    },
    /// An ICMP port unreachable to the client, or dropped by the ICMP rate
    /// limit.
    Unreachable,
    /// A TCP RST to the client.
    Reset,
    /// Dropped under this reason.
    Drop(u32),
}

/// The model's plan for one frame: the expectation, and what it does to the
/// connection entry of the frame's flow.
pub(super) struct Plan {
    pub(super) expect: Expect,
    /// The flow's existing entry is gone (expired now) whatever happens.
    pub(super) remove: bool,
}

#[derive(Default)]
pub(super) struct Model {
    pub(super) svcs: Vec<SvcM>,
    pub(super) flows: HashMap<ConnKey, FlowM>,
    pub(super) templates: HashMap<TemplateKey, TmplM>,
    pub(super) expire_nodest_conn: bool,
    pub(super) expire_quiescent_template: bool,
    pub(super) conn_reuse_mode: u32,
    /// Control-plane changes so far.
    pub(super) control_count: u64,
}

impl Model {
    pub(super) fn new() -> Model {
        let svcs = SERVICES
            .iter()
            .enumerate()
            .map(|(i, d)| SvcM {
                def: i,
                proto: d.proto.number(),
                vip: d.vip.octets(),
                port: d.port,
                sched: d.sched,
                persistent: d.persistent,
                netmask: d.netmask.octets(),
                reals: d
                    .reals
                    .iter()
                    .map(|&(last, weight)| RealM {
                        last,
                        weight,
                        available: true,
                        incarnation: 0,
                        tmpl_epoch: 0,
                    })
                    .collect(),
            })
            .collect();
        Model {
            svcs,
            conn_reuse_mode: 1,
            ..Model::default()
        }
    }

    /// LVS service lookup (§0): exact (protocol, VIP, port), then the VIP's
    /// port-0 service.
    pub(super) fn lookup(&self, p: &Pkt) -> Option<usize> {
        let find = |port: u16| {
            self.svcs
                .iter()
                .position(|s| s.proto == p.proto && s.vip == p.daddr && s.port == port)
        };
        find(p.dport).or_else(|| find(0))
    }

    /// The template key (§2.1): masked client, VIP, service port (0 for a
    /// port-0 service), protocol.
    pub(super) fn template_key(&self, svc: usize, p: &Pkt) -> TemplateKey {
        let s = &self.svcs[svc];
        let mut caddr = p.saddr;
        for (b, m) in caddr.iter_mut().zip(s.netmask) {
            *b &= m;
        }
        TemplateKey {
            caddr: addr_v4(caddr),
            vaddr: addr_v4(p.daddr),
            vport: if s.port == 0 {
                [0, 0]
            } else {
                p.dport.to_be_bytes()
            },
            proto: p.proto,
            _pad: 0,
        }
    }

    /// `ip_vs_check_template` (§3.2): the template's real if it may be used.
    pub(super) fn valid_template(&self, svc: usize, t: &TmplM) -> Option<usize> {
        let r = &self.svcs[svc].reals[t.real];
        let ok = r.available
            && r.incarnation == t.incarnation
            && r.tmpl_epoch == t.epoch
            && !(self.expire_quiescent_template && r.weight == 0);
        ok.then_some(t.real)
    }

    /// What the program must do with a frame: the service it is for (none
    /// for frames it leaves alone and for ICMP errors), the packet as
    /// classified, and the plan.
    pub(super) fn expect_for(&self, frame: &[u8]) -> (Option<usize>, Option<Pkt>, Plan) {
        let pass = |reason| Plan {
            expect: Expect::Pass(reason),
            remove: false,
        };
        match classify(frame) {
            Err(reason) => (None, None, pass(reason)),
            Ok(p) if p.icmp => (None, Some(p), self.icmp_plan(&p)),
            Ok(p) => match self.lookup(&p) {
                Some(s) => (Some(s), Some(p), self.plan(s, &p)),
                None => (None, Some(p), pass(REASON_PASS_NO_SERVICE)),
            },
        }
    }

    /// An ICMP error goes to the real server of the flow it is about, if
    /// that flow has a live entry whose real may take packets; else to the
    /// kernel. It changes nothing.
    pub(super) fn icmp_plan(&self, p: &Pkt) -> Plan {
        let expect = match self.flows.get(&p.key()) {
            Some(f) => {
                let r = &self.svcs[f.svc].reals[f.real];
                if r.incarnation == f.incarnation && r.available {
                    Expect::Forward {
                        svc: f.svc,
                        reason: REASON_FWD_ICMP,
                        reals: vec![f.real],
                    }
                } else {
                    Expect::Pass(REASON_PASS_NOT_L4)
                }
            }
            None => Expect::Pass(REASON_PASS_NOT_L4),
        };
        Plan {
            expect,
            remove: false,
        }
    }

    pub(super) fn plan(&self, svc: usize, p: &Pkt) -> Plan {
        let tcp = p.tcp();
        let syn_only = p.flags & (tcp_flags::SYN | tcp_flags::RST) == tcp_flags::SYN;
        // IPVS schedules a TCP SYN (without RST) and any UDP datagram.
        let schedulable = !tcp || syn_only;
        let mut remove = false;
        if let Some(f) = self.flows.get(&p.key()) {
            let r = &self.svcs[f.svc].reals[f.real];
            let bound = r.incarnation == f.incarnation;
            let available = bound && r.available;
            let mut gone = false;
            if tcp && schedulable {
                // Port reuse (§4.4).
                let quiescent = self.expire_nodest_conn && available && r.weight == 0;
                let closing = f.state == CONN_S_TIME_WAIT
                    || f.state == CONN_S_CLOSE
                    || (self.conn_reuse_mode & 2 != 0 && f.state == CONN_S_FIN_WAIT);
                let reuse = self.conn_reuse_mode != 0 && !f.controlled && closing;
                gone = quiescent || reuse;
            }
            if !gone {
                if available {
                    return Plan {
                        expect: Expect::Forward {
                            svc: f.svc,
                            reason: REASON_FWD_CONN,
                            reals: vec![f.real],
                        },
                        remove: false,
                    };
                }
                // Removed real (§4.2, §4.3); a flushed entry is gone whatever
                // the sysctl says now.
                if !self.expire_nodest_conn && bound {
                    return Plan {
                        expect: Expect::Drop(REASON_DROP_NODEST),
                        remove: false,
                    };
                }
                if tcp && !schedulable {
                    return Plan {
                        expect: Expect::Reset,
                        remove: true,
                    };
                }
            }
            remove = true;
        }
        if !schedulable {
            // A TCP segment of no known flow goes to the local stack.
            return Plan {
                expect: Expect::Pass(REASON_PASS_NO_CONN),
                remove,
            };
        }
        let s = &self.svcs[svc];
        if s.persistent
            && let Some(real) = self
                .templates
                .get(&self.template_key(svc, p))
                .and_then(|t| self.valid_template(svc, t))
        {
            return Plan {
                expect: Expect::Forward {
                    svc,
                    reason: REASON_FWD_TEMPLATE,
                    reals: vec![real],
                },
                remove,
            };
        }
        let may: Vec<usize> = (0..s.reals.len())
            .filter(|&i| s.reals[i].available && s.reals[i].weight > 0)
            .collect();
        if may.is_empty() {
            return Plan {
                expect: Expect::Unreachable,
                remove,
            };
        }
        Plan {
            expect: Expect::Forward {
                svc,
                reason: REASON_FWD_NEW,
                reals: may,
            },
            remove,
        }
    }

    /// Records what the program did (already checked against the plan).
    pub(super) fn commit(&mut self, svc: usize, p: &Pkt, plan: &Plan, chosen: Option<usize>) {
        let key = p.key();
        if plan.remove {
            self.flows.remove(&key);
        }
        let Expect::Forward {
            svc: fsvc, reason, ..
        } = plan.expect
        else {
            return;
        };
        let Some(real) = chosen else { return };
        if reason == REASON_FWD_CONN {
            if p.tcp()
                && let Some(f) = self.flows.get_mut(&key)
            {
                f.state = next_state(f.state, p.flags);
            }
            return;
        }
        let s = &self.svcs[fsvc];
        let r = &s.reals[real];
        let flow = FlowM {
            svc: fsvc,
            real,
            incarnation: r.incarnation,
            state: if p.tcp() {
                next_state(CONN_S_NONE, p.flags)
            } else {
                CONN_S_UDP
            },
            controlled: s.persistent,
        };
        if reason == REASON_FWD_NEW && s.persistent {
            let t = TmplM {
                real,
                incarnation: r.incarnation,
                epoch: r.tmpl_epoch,
            };
            let tkey = self.template_key(svc, p);
            self.templates.insert(tkey, t);
        }
        self.flows.insert(key, flow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        frame::{self, Frame},
        fuzz::config::VIP_A,
    };
    use std::net::Ipv4Addr;

    #[test]
    fn classifier_follows_the_policy() {
        let good = Frame::tcp(Ipv4Addr::new(192, 0, 2, 1), VIP_A)
            .ports(1024, 80)
            .syn()
            .build();
        let p = classify(&good).expect("acts on a valid syn");
        assert_eq!((p.sport, p.dport, p.flags), (1024, 80, tcp_flags::SYN));
        let mut f = good.clone();
        f.truncate(13);
        assert_eq!(classify(&f).unwrap_err(), REASON_PASS_NOT_IP);
        let mut f = good.clone();
        f.truncate(14 + 20 + 19);
        assert_eq!(classify(&f).unwrap_err(), REASON_PASS_BAD_IP);
        frame::mutate::set_total_len(&mut f, 39);
        assert_eq!(classify(&f).unwrap_err(), REASON_PASS_TRUNCATED);
        let tagged = Frame::tcp(Ipv4Addr::new(192, 0, 2, 1), VIP_A)
            .vlan(3)
            .build();
        assert_eq!(classify(&tagged).unwrap_err(), REASON_PASS_VLAN);
        let frag = Frame::tcp(Ipv4Addr::new(192, 0, 2, 1), VIP_A)
            .frag(8, false)
            .build();
        assert_eq!(classify(&frag).unwrap_err(), REASON_PASS_FRAGMENT);
    }

    /// The fuzzer's services are IPv4: an IPv6 packet the program parses is
    /// for no service; a broken one is passed for its first broken rule.
    #[test]
    fn ipv6_frames_are_for_no_service_or_broken() {
        let (c, v) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        );
        let udp = Frame::ipv6_udp(c, v).build();
        assert_eq!(classify(&udp).unwrap_err(), REASON_PASS_NO_SERVICE);
        let syn = Frame::ipv6_tcp(c, v).syn().build();
        assert_eq!(classify(&syn).unwrap_err(), REASON_PASS_NO_SERVICE);
        let mut cut = syn.clone();
        cut.truncate(14 + 39);
        assert_eq!(classify(&cut).unwrap_err(), REASON_PASS_TRUNCATED);
        let mut short = syn.clone();
        short.truncate(syn.len() - 1);
        assert_eq!(classify(&short).unwrap_err(), REASON_PASS_BAD_IP);
        let mapped = Frame::ipv6_udp(c, "::ffff:203.0.113.10".parse().unwrap()).build();
        assert_eq!(classify(&mapped).unwrap_err(), REASON_PASS_BAD_IP);
        let echo = Frame::icmpv6(c, v, 128, 0).build();
        assert_eq!(classify(&echo).unwrap_err(), REASON_PASS_NOT_L4);
    }

    #[test]
    fn state_machine_matches_the_spec_rows() {
        use tcp_flags::{ACK, FIN, RST, SYN};
        let s = next_state(CONN_S_NONE, SYN);
        assert_eq!(s, CONN_S_SYN_RECV);
        assert_eq!(next_state(s, ACK), CONN_S_ESTABLISHED);
        assert_eq!(next_state(CONN_S_ESTABLISHED, FIN | ACK), CONN_S_FIN_WAIT);
        assert_eq!(next_state(CONN_S_SYN_RECV, FIN), CONN_S_TIME_WAIT);
        assert_eq!(next_state(CONN_S_SYN_RECV, RST), CONN_S_SYN_RECV);
        assert_eq!(next_state(CONN_S_ESTABLISHED, 0), CONN_S_CLOSE);
    }
}

//! The independent model of what the program must do: a reference classifier written from
//! the parsing policy (not from the program), and a model of LVS semantics (services, reals,
//! connection entries with the INPUT-ONLY TCP state machine, persistence templates, the
//! sysctls) that tracks what the program must have done.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use lb_common::{
    CONN_S_CLOSE, CONN_S_ESTABLISHED, CONN_S_FIN_WAIT, CONN_S_NONE, CONN_S_SYN_RECV,
    CONN_S_TIME_WAIT, CONN_S_UDP, ConnKey, REASON_DROP_NODEST, REASON_FWD_CONN, REASON_FWD_ICMP,
    REASON_FWD_NEW, REASON_FWD_TEMPLATE, REASON_PASS_BAD_IP, REASON_PASS_EXT_HEADERS,
    REASON_PASS_FRAGMENT, REASON_PASS_NO_CONN, REASON_PASS_NO_SERVICE, REASON_PASS_NOT_FOR_US,
    REASON_PASS_NOT_IP, REASON_PASS_NOT_L4, REASON_PASS_TRUNCATED, REASON_PASS_VLAN, TemplateKey,
};
use lb_user::{addr::to_addr, model::Sched};

use super::config::SERVICES;
use crate::frame::tcp_flags;

/// What the checker needs of a frame the program must act on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pkt {
    /// Bytes from the IP header to the transport header (IPv4 header
    /// length, or 40 + IPv6 extension headers): what an ICMP error quotes
    /// besides 8 bytes.
    pub(super) ihl: usize,
    pub(super) proto: u8,
    pub(super) saddr: IpAddr,
    pub(super) daddr: IpAddr,
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
            caddr: to_addr(self.saddr),
            vaddr: to_addr(self.daddr),
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
        return classify_v6(f);
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
    let saddr = IpAddr::from(saddr);
    let daddr = IpAddr::from([ip[16], ip[17], ip[18], ip[19]]);
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

/// The IPv6 policy (lb-ebpf's parse stage doc): a payload length that fits
/// the frame (not 0: no jumbograms), no unspecified, loopback, multicast or
/// IPv4-mapped source, no IPv4-mapped destination, at most 4 hop-by-hop,
/// routing or destination options headers (more: `pass_ext_headers`), no
/// fragment header, then TCP or UDP as for IPv4 within the payload length,
/// or an ICMPv6 error (type < 128) quoting a TCP/UDP packet.
fn classify_v6(f: &[u8]) -> Result<Pkt, u32> {
    const ETH: usize = 14;
    const IPV6: usize = 40;
    let Some(ip) = f.get(ETH..ETH + IPV6) else {
        return Err(REASON_PASS_TRUNCATED);
    };
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if ip[0] >> 4 != 6 || payload == 0 || IPV6 + payload > f.len() - ETH {
        return Err(REASON_PASS_BAD_IP);
    }
    let (src, dst) = (&ip[8..24], &ip[24..40]);
    let mapped = |a: &[u8]| a[..10] == [0; 10] && a[10..12] == [0xff, 0xff];
    let unspecified_or_loopback = src[..15] == [0; 15] && src[15] <= 1;
    if src[0] == 0xff || unspecified_or_loopback || mapped(src) || mapped(dst) {
        return Err(REASON_PASS_BAD_IP);
    }
    let v6 = |a: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).expect("16 bytes")));
    let (proto, l4) = ext_headers(f, ip[6], ETH + IPV6, false)?;
    let end = ETH + IPV6 + payload;
    if l4 > end {
        return Err(REASON_PASS_TRUNCATED);
    }
    let l4_len = end - l4;
    let ihl = l4 - ETH;
    match proto {
        6 => {
            let tcp = f.get(l4..l4 + 20).ok_or(REASON_PASS_TRUNCATED)?;
            let doff = usize::from(tcp[12] >> 4) * 4;
            if doff < 20 || doff > l4_len {
                return Err(REASON_PASS_TRUNCATED);
            }
            Ok(Pkt {
                ihl,
                proto,
                saddr: v6(src),
                daddr: v6(dst),
                sport: u16::from_be_bytes([tcp[0], tcp[1]]),
                dport: u16::from_be_bytes([tcp[2], tcp[3]]),
                flags: tcp[13],
                seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
                ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
                payload: (l4_len - doff) as u32,
                icmp: false,
            })
        }
        17 => {
            let udp = f.get(l4..l4 + 8).ok_or(REASON_PASS_TRUNCATED)?;
            if l4_len < 8 {
                return Err(REASON_PASS_TRUNCATED);
            }
            Ok(Pkt {
                ihl,
                proto,
                saddr: v6(src),
                daddr: v6(dst),
                sport: u16::from_be_bytes([udp[0], udp[1]]),
                dport: u16::from_be_bytes([udp[2], udp[3]]),
                flags: 0,
                seq: 0,
                ack: 0,
                payload: 0,
                icmp: false,
            })
        }
        58 => icmpv6_error(f, l4, ihl).ok_or(REASON_PASS_NOT_L4),
        _ => Err(REASON_PASS_NOT_L4),
    }
}

/// An ICMPv6 error (any type below 128, as `ip_vs_in_icmp_v6`) quoting an
/// IPv6 TCP or UDP packet, its extension headers walked as the outer ones,
/// as the flow it is about, seen from the client. Bounds are the frame's.
fn icmpv6_error(f: &[u8], l4: usize, ihl: usize) -> Option<Pkt> {
    let icmp = f.get(l4..l4 + 8)?;
    if icmp[0] >= 128 {
        return None;
    }
    let inner = f.get(l4 + 8..l4 + 48)?;
    if inner[0] >> 4 != 6 {
        return None;
    }
    let (proto, at) = ext_headers(f, inner[6], l4 + 48, true).ok()?;
    if proto != 6 && proto != 17 {
        return None;
    }
    let ports = f.get(at..at + 4)?;
    // A quote with an IPv4-mapped address is no flow's (the maps' IPv4 form).
    let mapped = |a: &[u8]| a[..10] == [0; 10] && a[10..12] == [0xff, 0xff];
    if mapped(&inner[8..24]) || mapped(&inner[24..40]) {
        return None;
    }
    let v6 = |a: &[u8]| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).expect("16 bytes")));
    Some(Pkt {
        ihl,
        proto,
        saddr: v6(&inner[24..40]),
        daddr: v6(&inner[8..24]),
        sport: u16::from_be_bytes([ports[2], ports[3]]),
        dport: u16::from_be_bytes([ports[0], ports[1]]),
        flags: 0,
        seq: 0,
        ack: 0,
        payload: 0,
        icmp: true,
    })
}

/// lb-ebpf's walk of IPv6 extension headers (hop-by-hop, routing,
/// destination options; at most 4) from `next` at frame offset `off`: the
/// transport protocol and its offset, or why the frame is passed. A
/// hop-by-hop header anywhere but first is malformed; in a quoted packet
/// (`quoted`) a first fragment's header is walked over, a later fragment's
/// is not.
fn ext_headers(f: &[u8], mut next: u8, mut off: usize, quoted: bool) -> Result<(u8, usize), u32> {
    const MAX_EXT_HEADERS: usize = 4;
    const HOP: u8 = 0;
    const FRAGMENT: u8 = 44;
    let walked = |n: u8| matches!(n, 0 | 43 | 60);
    for i in 0..MAX_EXT_HEADERS {
        if next == HOP && i != 0 {
            return Err(REASON_PASS_BAD_IP);
        }
        if next == FRAGMENT {
            if !quoted {
                return Err(REASON_PASS_FRAGMENT);
            }
            let h = f.get(off..off + 4).ok_or(REASON_PASS_TRUNCATED)?;
            if u16::from_be_bytes([h[2], h[3]]) & !7 != 0 {
                return Err(REASON_PASS_FRAGMENT);
            }
            next = h[0];
            off += 8;
            continue;
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

/// An ICMP error of the types IPVS relays (3, 4, 11: `ip_vs_in_icmp`)
/// quoting the first fragment of a TCP or UDP packet, as the flow it is
/// about, seen from the client. Bounds are the frame's (the quote may be
/// cut short by the ICMP sender).
pub(super) fn icmp_error(ip: &[u8], ihl: usize) -> Option<Pkt> {
    let icmp = ip.get(ihl..)?;
    if icmp.len() < 8 || ![3, 4, 11].contains(&icmp[0]) {
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
    // A later fragment has no ports.
    if u16::from_be_bytes([inner[6], inner[7]]) & 0x1fff != 0 {
        return None;
    }
    let ports = inner.get(iihl..iihl + 4)?;
    Some(Pkt {
        ihl,
        proto,
        saddr: IpAddr::from([inner[16], inner[17], inner[18], inner[19]]),
        daddr: IpAddr::from([inner[12], inner[13], inner[14], inner[15]]),
        sport: u16::from_be_bytes([ports[2], ports[3]]),
        dport: u16::from_be_bytes([ports[0], ports[1]]),
        flags: 0,
        seq: 0,
        ack: 0,
        payload: 0,
        icmp: true,
    })
}

/// `addr & mask`, both of one family (`-M`: the client's network).
pub(super) fn masked(addr: IpAddr, mask: IpAddr) -> IpAddr {
    match (addr, mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => Ipv4Addr::from(u32::from(a) & u32::from(m)).into(),
        (IpAddr::V6(a), IpAddr::V6(m)) => Ipv6Addr::from(u128::from(a) & u128::from(m)).into(),
        _ => panic!("a {addr} client of a service of the other family"),
    }
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
    pub(super) vip: IpAddr,
    pub(super) port: u16,
    pub(super) sched: Sched,
    pub(super) persistent: bool,
    pub(super) netmask: IpAddr,
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
                vip: d.vip,
                port: d.port,
                sched: d.sched,
                persistent: d.persistent,
                netmask: d.netmask,
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
        TemplateKey {
            caddr: to_addr(masked(p.saddr, s.netmask)),
            vaddr: to_addr(p.daddr),
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

    /// An IPv6 packet the program parses is for its service or for none;
    /// a broken one is passed for its first broken rule.
    #[test]
    fn ipv6_frames_follow_the_ipv6_policy() {
        use crate::fuzz::config::{NOT_VIP6, VIP6_A};
        let c: Ipv6Addr = "2001:db8:1:1::1".parse().unwrap();
        let model = Model::new();
        let udp = Frame::ipv6_udp(c, NOT_VIP6).build();
        let (svc, _, plan) = model.expect_for(&udp);
        assert_eq!(
            (svc, plan.expect),
            (None, Expect::Pass(REASON_PASS_NO_SERVICE))
        );
        let syn = Frame::ipv6_tcp(c, VIP6_A).ports(1024, 443).syn().build();
        let p = classify(&syn).expect("acts on a valid syn");
        assert_eq!((p.ihl, p.dport, p.saddr), (40, 443, IpAddr::V6(c)));
        let s = model.lookup(&p).expect("the IPv6 service");
        assert_eq!(model.svcs[s].vip, IpAddr::V6(VIP6_A));
        // -M 64: the template key is the client's /64.
        let k = model.template_key(s, &p);
        assert_eq!(k.caddr, to_addr("2001:db8:1:1::".parse().unwrap()));
        let ext = Frame::ipv6_tcp(c, VIP6_A)
            .ipv6_ext(0, 0)
            .ipv6_ext(60, 1)
            .build();
        assert_eq!(classify(&ext).unwrap().ihl, 40 + 8 + 16);
        let mut five = Frame::ipv6_tcp(c, VIP6_A);
        for _ in 0..5 {
            five = five.ipv6_ext(60, 0);
        }
        assert_eq!(
            classify(&five.build()).unwrap_err(),
            REASON_PASS_EXT_HEADERS
        );
        let frag = Frame::ipv6_tcp(c, VIP6_A).ipv6_fragment(0, true).build();
        assert_eq!(classify(&frag).unwrap_err(), REASON_PASS_FRAGMENT);
        let mut cut = syn.clone();
        cut.truncate(14 + 39);
        assert_eq!(classify(&cut).unwrap_err(), REASON_PASS_TRUNCATED);
        let mut short = syn.clone();
        short.truncate(syn.len() - 1);
        assert_eq!(classify(&short).unwrap_err(), REASON_PASS_BAD_IP);
        let mapped = Frame::ipv6_udp(c, "::ffff:203.0.113.10".parse().unwrap()).build();
        assert_eq!(classify(&mapped).unwrap_err(), REASON_PASS_BAD_IP);
        let echo = Frame::icmpv6(c, VIP6_A, 128, 0).build();
        assert_eq!(classify(&echo).unwrap_err(), REASON_PASS_NOT_L4);
        // A Packet Too Big quoting the VIP's reply: the flow, turned around.
        let reply = Frame::ipv6_tcp(VIP6_A, c).ports(443, 1024).build();
        let ptb = Frame::icmpv6("2001:db8:ff::1".parse().unwrap(), VIP6_A, 2, 0)
            .payload(&reply[14..])
            .build();
        let q = classify(&ptb).expect("an error about a flow");
        assert!(q.icmp);
        assert_eq!(q.key(), p.key());
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

//! A frame fuzzer for the XDP program, run through `BPF_PROG_TEST_RUN`.
//!
//! It generates frames — valid ones for every service, protocol and connection
//! state, then mutated: truncated at every header boundary, bits flipped in
//! every header field, wrong lengths, IP options, fragments, VLAN tags, IPv6
//! extension headers, TCP flag combinations — runs each through the loaded
//! program, and checks invariants on every result:
//!
//! - a frame that matches no service, or that the program must not act on
//!   (malformed, tagged, fragmented, not TCP/UDP over IPv4), leaves unchanged
//!   with `XDP_PASS`;
//! - a forwarded frame goes to a real server of its service that may take it
//!   (weight > 0 and in the service for a new flow, the template's real for a
//!   client with a valid persistence template, the flow's own real for an
//!   existing flow), with only the MAC addresses changed;
//! - every frame the program builds (ICMP port unreachable, TCP RST) has valid
//!   lengths and checksums, checked by the independent parser
//!   ([`crate::frame::parse`]), and the fields LVS prescribes;
//! - every packet is counted under exactly the reason its outcome implies.
//!
//! The checker is independent of the program's code: a reference classifier
//! written from the parsing policy, and a model of LVS semantics (services,
//! reals with weights and availability, connection entries with the
//! INPUT-ONLY TCP state machine of LVS-SEMANTICS §6.2, persistence templates,
//! `expire_nodest_conn`, `expire_quiescent_template`, `conn_reuse_mode`)
//! that tracks what the program must have done. Control-plane changes
//! (weights, removing and re-adding reals, sysctls) happen during the run,
//! through the same `Table` that lbctl uses.
//!
//! Runs are deterministic for a seed: the generator is a SplitMix64 PRNG, the
//! thread is pinned to one CPU (per-CPU scheduler state), and every state
//! timeout is raised so that nothing expires during a run (expiry is covered
//! by the dataplane fixtures).
//!
//! [`flood`] measures table exhaustion the same way: a connection table of a
//! chosen size, a flood of new flows several times its size, and established
//! connections that keep sending; it reports how many of their packets still
//! found their entry.

use std::{
    collections::{HashMap, VecDeque},
    fmt::Write as _,
    net::{Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lb_common::{
    CONN_S_CLOSE, CONN_S_ESTABLISHED, CONN_S_FIN_WAIT, CONN_S_NONE, CONN_S_SYN_RECV,
    CONN_S_TIME_WAIT, CONN_S_UDP, ConnKey, REASON_COUNT, REASON_DROP_NODEST,
    REASON_DROP_REPLY_RATE, REASON_FWD_CONN, REASON_FWD_ICMP, REASON_FWD_NEW, REASON_FWD_TEMPLATE,
    REASON_NAMES, REASON_PASS_BAD_IP, REASON_PASS_FRAGMENT, REASON_PASS_NO_CONN,
    REASON_PASS_NO_SERVICE, REASON_PASS_NOT_FOR_US, REASON_PASS_NOT_IPV4, REASON_PASS_NOT_L4,
    REASON_PASS_TRUNCATED, REASON_PASS_VLAN, REASON_TX_ICMP_UNREACH, REASON_TX_RST_NODEST,
    TemplateKey,
};
use lb_user::model::{Fwd, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec};

use crate::{
    frame::{self, Frame, tcp_flags},
    lb::{Dataplane, RunResult, XDP_DROP, XDP_PASS, XDP_TX, in_lab, real_mac},
};

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence for the same seed on every
/// machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn upto(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.upto(items.len())]
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

// ---------------------------------------------------------------------------
// The configuration under test
// ---------------------------------------------------------------------------

/// VIP of most services.
pub const VIP_A: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// VIP of the port-0 ("all ports") services, with one exact-port service.
pub const VIP_B: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
/// An address with no service at all.
pub const NOT_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 30);
/// Persistence timeout of the persistent services: longer than any run.
const PERSIST_SECS: u32 = 86_400;
/// Every connection state timeout during a run: nothing expires mid-run.
const STATE_TIMEOUT_SECS: u32 = 86_400;
/// The model (and the tables) are flushed beyond this many entries, far
/// below the tables' size, so that LRU eviction never removes an entry the
/// model still expects.
const FLOW_LIMIT: usize = 6000;

/// One service of the fuzzer's configuration.
struct SvcDef {
    proto: Proto,
    vip: Ipv4Addr,
    port: u16,
    sched: Sched,
    persistent: bool,
    netmask: Ipv4Addr,
    /// (last byte of 198.51.100.x, weight); the real's port is the service's.
    reals: &'static [(u8, u32)],
}

const fn svc(
    proto: Proto,
    vip: Ipv4Addr,
    port: u16,
    sched: Sched,
    persistent: bool,
    netmask: Ipv4Addr,
    reals: &'static [(u8, u32)],
) -> SvcDef {
    SvcDef {
        proto,
        vip,
        port,
        sched,
        persistent,
        netmask,
        reals,
    }
}

const HOST: Ipv4Addr = Ipv4Addr::BROADCAST;
const NET24: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
const NET16: Ipv4Addr = Ipv4Addr::new(255, 255, 0, 0);

/// Every kind of service: wrr and rr, TCP and UDP, persistent with /32, /24
/// and /16 masks, port-0 services next to an exact one on the same VIP, a
/// service without reals and one whose only real is quiescent. Each real
/// address belongs to one service only, so a frame sent to the wrong
/// service's real is caught by its MAC.
const SERVICES: &[SvcDef] = &[
    svc(
        Proto::Tcp,
        VIP_A,
        80,
        Sched::Wrr,
        false,
        HOST,
        &[(11, 3), (12, 1), (13, 0)],
    ),
    svc(
        Proto::Tcp,
        VIP_A,
        443,
        Sched::Rr,
        true,
        NET24,
        &[(14, 1), (15, 2)],
    ),
    svc(
        Proto::Udp,
        VIP_A,
        53,
        Sched::Rr,
        false,
        HOST,
        &[(16, 1), (17, 1)],
    ),
    svc(Proto::Tcp, VIP_A, 8080, Sched::Wrr, false, HOST, &[]),
    svc(Proto::Udp, VIP_A, 5353, Sched::Rr, false, HOST, &[(18, 0)]),
    svc(
        Proto::Tcp,
        VIP_B,
        0,
        Sched::Rr,
        true,
        HOST,
        &[(19, 1), (20, 1)],
    ),
    svc(
        Proto::Udp,
        VIP_B,
        0,
        Sched::Wrr,
        true,
        NET16,
        &[(21, 1), (22, 2)],
    ),
    svc(
        Proto::Tcp,
        VIP_B,
        80,
        Sched::Rr,
        false,
        HOST,
        &[(23, 1), (24, 1)],
    ),
];

/// Destination ports the generator aims at: every service port, neighbours
/// of them, and a few others.
const PORTS: &[u16] = &[80, 443, 53, 8080, 5353, 81, 22, 8443, 0, 65535];

fn service_id(d: &SvcDef) -> ServiceId {
    ServiceId {
        proto: d.proto,
        addr: d.vip,
        port: d.port,
    }
}

fn real_spec(d: &SvcDef, last: u8, weight: u32) -> RealSpec {
    RealSpec {
        id: RealId {
            addr: Ipv4Addr::new(198, 51, 100, last),
            port: d.port,
        },
        fwd: Fwd::Route,
        weight,
    }
}

/// Provisions the fuzzer's services on `dp` (through `Table`, as lbctl does)
/// and raises every state timeout so that nothing expires during a run.
pub fn configure(dp: &mut Dataplane) -> Result<()> {
    for d in SERVICES {
        dp.table
            .add_service(&ServiceSpec {
                id: service_id(d),
                sched: d.sched,
                persistent: d.persistent.then_some(PERSIST_SECS),
                netmask: d.netmask,
            })
            .with_context(|| format!("adding {:?}", service_id(d)))?;
        for &(last, w) in d.reals {
            dp.table.add_real(&service_id(d), &real_spec(d, last, w))?;
        }
    }
    let mut s = dp.table.pins.settings()?;
    s.timeouts = [STATE_TIMEOUT_SECS; lb_common::CONN_S_COUNT];
    dp.table.pins.set_settings(&s)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Reference classifier (written from the parsing policy, not the program)
// ---------------------------------------------------------------------------

/// What the checker needs of a frame the program must act on.
#[derive(Clone, Copy, Debug)]
struct Pkt {
    ihl: usize,
    proto: u8,
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    /// TCP payload length (per the IP total length).
    payload: u32,
    /// An ICMP error quoting a TCP/UDP packet: the fields above are the
    /// quoted flow turned around (from the client's side).
    icmp: bool,
}

impl Pkt {
    fn tcp(&self) -> bool {
        self.proto == 6
    }
    fn key(&self) -> ConnKey {
        ConnKey {
            caddr: self.saddr,
            vaddr: self.daddr,
            cport: self.sport.to_be_bytes(),
            vport: self.dport.to_be_bytes(),
            proto: self.proto,
            _pad: [0; 3],
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The policy (lb-ebpf's parse stage doc): the program acts only on untagged
/// IPv4 frames whose header is consistent (version 4, IHL ≥ 5, IHL ≤ total
/// length ≤ the frame), that are not fragments, and that carry a complete
/// TCP (data offset ≥ 5, within the total length) or UDP (≥ 8 bytes) header.
/// Everything else passes to the kernel, counted under the first rule it
/// breaks. The IP header checksum is not part of the policy (the real
/// server's kernel checks it, as it would without a load balancer).
fn classify(f: &[u8]) -> Result<Pkt, u32> {
    let Some(ethertype) = be16(f, 12) else {
        return Err(REASON_PASS_NOT_IPV4);
    };
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        return Err(REASON_PASS_VLAN);
    }
    if ethertype != 0x0800 {
        return Err(REASON_PASS_NOT_IPV4);
    }
    // Group-addressed frames are not for the director (PACKET_HOST only).
    // (The lab registers no interface MAC, so any unicast MAC is ours.)
    if f[0] & 1 != 0 {
        return Err(REASON_PASS_NOT_FOR_US);
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

/// An ICMP error (types 3, 11, 12) quoting a TCP or UDP packet, as the
/// flow it is about, seen from the client. Bounds are the frame's (the
/// quote may be cut short by the ICMP sender).
fn icmp_error(ip: &[u8], ihl: usize) -> Option<Pkt> {
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

// ---------------------------------------------------------------------------
// The LVS model
// ---------------------------------------------------------------------------

/// The INPUT-ONLY TCP state machine of a direct-routing director
/// (LVS-SEMANTICS §6.2), for the states a client's packets can reach. Flags
/// rank RST > SYN > FIN > ACK; none of them closes the entry.
fn next_state(cur: u8, flags: u8) -> u8 {
    use tcp_flags::{ACK, FIN, RST, SYN};
    const NO: u8 = CONN_S_NONE;
    const ES: u8 = CONN_S_ESTABLISHED;
    const SR: u8 = CONN_S_SYN_RECV;
    const FW: u8 = CONN_S_FIN_WAIT;
    const TW: u8 = CONN_S_TIME_WAIT;
    const CL: u8 = CONN_S_CLOSE;
    // Columns: SYN, FIN, ACK, RST.
    let row: [u8; 4] = match cur {
        NO => [SR, CL, ES, CL],
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
struct RealM {
    last: u8,
    weight: u32,
    /// In the service's list (not removed with `-d`).
    available: bool,
    /// Bumped when the real's entries and templates are flushed (`-d` with
    /// `expire_nodest_conn=1`): what was bound before is gone for good.
    incarnation: u32,
    /// Bumped when its templates are expired at once (quiescing with
    /// `expire_quiescent_template=1`).
    tmpl_epoch: u32,
}

#[derive(Clone, Debug)]
struct SvcM {
    def: usize,
    proto: u8,
    vip: [u8; 4],
    port: u16,
    sched: Sched,
    persistent: bool,
    netmask: [u8; 4],
    reals: Vec<RealM>,
}

#[derive(Clone, Copy, Debug)]
struct FlowM {
    svc: usize,
    real: usize,
    incarnation: u32,
    state: u8,
    controlled: bool,
}

#[derive(Clone, Copy, Debug)]
struct TmplM {
    real: usize,
    incarnation: u32,
    epoch: u32,
}

/// What the program must do with a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
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
struct Plan {
    expect: Expect,
    /// The flow's existing entry is gone (expired now) whatever happens.
    remove: bool,
}

#[derive(Default)]
struct Model {
    svcs: Vec<SvcM>,
    flows: HashMap<ConnKey, FlowM>,
    templates: HashMap<TemplateKey, TmplM>,
    expire_nodest_conn: bool,
    expire_quiescent_template: bool,
    conn_reuse_mode: u32,
    /// Control-plane changes so far.
    control_count: u64,
}

impl Model {
    fn new() -> Model {
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
    fn lookup(&self, p: &Pkt) -> Option<usize> {
        let find = |port: u16| {
            self.svcs
                .iter()
                .position(|s| s.proto == p.proto && s.vip == p.daddr && s.port == port)
        };
        find(p.dport).or_else(|| find(0))
    }

    /// The template key (§2.1): masked client, VIP, service port (0 for a
    /// port-0 service), protocol.
    fn template_key(&self, svc: usize, p: &Pkt) -> TemplateKey {
        let s = &self.svcs[svc];
        let mut caddr = p.saddr;
        for (b, m) in caddr.iter_mut().zip(s.netmask) {
            *b &= m;
        }
        TemplateKey {
            caddr,
            vaddr: p.daddr,
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
    fn valid_template(&self, svc: usize, t: &TmplM) -> Option<usize> {
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
    fn expect_for(&self, frame: &[u8]) -> (Option<usize>, Option<Pkt>, Plan) {
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
    fn icmp_plan(&self, p: &Pkt) -> Plan {
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

    fn plan(&self, svc: usize, p: &Pkt) -> Plan {
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
    fn commit(&mut self, svc: usize, p: &Pkt, plan: &Plan, chosen: Option<usize>) {
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

// ---------------------------------------------------------------------------
// Frame generation
// ---------------------------------------------------------------------------

const LB_MAC: [u8; 6] = frame::DOC_DST_MAC;
const CLIENT_MAC: [u8; 6] = frame::DOC_SRC_MAC;

/// A flow the generator keeps sending on.
#[derive(Clone, Copy, Debug)]
struct FlowSpec {
    tcp: bool,
    client: Ipv4Addr,
    cport: u16,
    vip: Ipv4Addr,
    vport: u16,
}

struct Gen {
    rng: Rng,
    /// Recently used flows: most packets continue one of them, so that flows
    /// go through their states.
    recent: VecDeque<FlowSpec>,
}

/// The frame and how it was made (for reports).
struct Generated {
    frame: Vec<u8>,
    how: String,
}

fn client_addr(rng: &mut Rng) -> Ipv4Addr {
    if rng.chance(3, 4) {
        Ipv4Addr::new(192, 0, 2, 1 + rng.below(40) as u8)
    } else {
        Ipv4Addr::new(198, 51, 100, 150 + rng.below(21) as u8)
    }
}

fn tcp_flag_mix(rng: &mut Rng) -> u8 {
    use tcp_flags::{ACK, FIN, PSH, RST, SYN};
    match rng.below(20) {
        0..=4 => SYN,
        5..=9 => ACK,
        10..=11 => PSH | ACK,
        12..=13 => FIN | ACK,
        14 => FIN,
        15 => RST,
        16 => RST | ACK,
        17 => SYN | ACK,
        _ => rng.byte(),
    }
}

/// Payload sizes: mostly empty or small, some up to an Ethernet MTU, a few
/// up to what `BPF_PROG_TEST_RUN` takes in one page (jumbo frames).
fn payload(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(50) {
        0..=19 => 0,
        20..=44 => rng.upto(64),
        45..=48 => rng.upto(1400),
        _ => rng.upto(3200),
    };
    rng.bytes(n)
}

fn ip_options(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => vec![1, 1, 1, 0],
        // Record route with room for one address.
        1 => vec![7, 7, 4, 0, 0, 0, 0, 0],
        2 => {
            let n = 4 * (1 + rng.upto(10));
            rng.bytes(n)
        }
        _ => vec![1; 4 * (1 + rng.upto(10))],
    }
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            recent: VecDeque::new(),
        }
    }

    fn new_flow(&mut self) -> FlowSpec {
        let r = &mut self.rng;
        let d = &SERVICES[r.upto(SERVICES.len())];
        let vport = if d.port == 0 {
            let any = 1 + r.below(65535) as u16;
            r.pick(&[22, 80, 443, 8443, 3306, any])
        } else {
            d.port
        };
        FlowSpec {
            tcp: d.proto == Proto::Tcp,
            client: client_addr(r),
            cport: 1024 + r.below(48) as u16,
            vip: d.vip,
            vport,
        }
    }

    /// A frame of a flow of some service: TCP with a flag mix that walks
    /// every state, or a UDP datagram.
    fn service_frame(&mut self) -> Generated {
        let flow = if !self.recent.is_empty() && self.rng.chance(7, 10) {
            let i = self.rng.upto(self.recent.len());
            self.recent[i]
        } else {
            let f = self.new_flow();
            if self.recent.len() >= 256 {
                self.recent.pop_front();
            }
            self.recent.push_back(f);
            f
        };
        let r = &mut self.rng;
        let mut f = if flow.tcp {
            let mut f = Frame::tcp(flow.client, flow.vip)
                .flags(tcp_flag_mix(r))
                .seq(r.next_u64() as u32)
                .ack_seq(r.next_u64() as u32);
            if r.chance(1, 5) {
                f = f.tcp_options(&[2, 4, 5, 0xb4, 1, 1, 4, 2]);
            }
            f
        } else {
            Frame::udp(flow.client, flow.vip)
        };
        f = f
            .ports(flow.cport, flow.vport)
            .payload(&payload(r))
            .ident(r.next_u64() as u16)
            .ttl(1 + r.byte() / 2);
        if r.chance(1, 8) {
            f = f.ip_options(&ip_options(r));
        }
        if r.chance(1, 10) {
            f = f.df(false);
        }
        let (src, dst) = if r.chance(1, 10) {
            (random_mac(r), random_mac(r))
        } else {
            (CLIENT_MAC, LB_MAC)
        };
        let mut frame = f.src_mac(src).dst_mac(dst).build();
        if r.chance(1, 20) {
            // Ethernet padding after the IP packet.
            let n = 1 + r.upto(40);
            frame.extend(r.bytes(n));
        }
        Generated {
            frame,
            how: format!(
                "{} {}:{} -> {}:{}",
                if flow.tcp { "tcp" } else { "udp" },
                flow.client,
                flow.cport,
                flow.vip,
                flow.vport
            ),
        }
    }

    /// A well-formed frame the program must pass: no service for it, or not
    /// TCP/UDP over untagged IPv4.
    fn other_frame(&mut self) -> Generated {
        let r = &mut self.rng;
        let c = client_addr(r);
        let vip = r.pick(&[VIP_A, VIP_B, NOT_VIP]);
        let port = r.pick(PORTS);
        let v6 = |r: &mut Rng| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + r.below(100) as u16);
        let (frame, how) = match r.below(9) {
            0 => (
                Frame::tcp(c, vip)
                    .ports(1024 + r.below(64) as u16, port)
                    .flags(tcp_flag_mix(r))
                    .build(),
                "tcp to any address/port",
            ),
            1 => (
                Frame::udp(c, vip)
                    .ports(1024 + r.below(64) as u16, port)
                    .payload(&payload(r))
                    .build(),
                "udp to any address/port",
            ),
            2 => (
                Frame::icmp(c, vip, 8, 0)
                    .icmp_rest([0, 1, 0, 1])
                    .payload(&payload(r))
                    .build(),
                "icmp echo",
            ),
            3 => {
                // An ICMP error about a flow to a service.
                let orig = Frame::tcp(vip, c).ports(80, 1024).syn().build();
                let quote = frame::quote_ipv4(&orig, 8).unwrap_or_default();
                (
                    Frame::icmp(c, vip, 3, r.pick(&[3, 4]))
                        .payload(&quote)
                        .build(),
                    "icmp error",
                )
            }
            4 => (
                Frame::ip(c, vip, r.pick(&[0, 47, 50, 132, 255]))
                    .payload(&payload(r))
                    .build(),
                "other ip protocol",
            ),
            5 => (
                {
                    let f = Frame::ipv6_tcp(v6(r), "2001:db8::10".parse().expect("address"))
                        .ports(40000, 80)
                        .syn()
                        .build();
                    ipv6_with_extensions(r, f)
                },
                "ipv6 tcp with extension headers",
            ),
            6 => (
                Frame::ipv6_udp(v6(r), "2001:db8::10".parse().expect("address"))
                    .ports(40000, 53)
                    .build(),
                "ipv6 udp",
            ),
            7 => (Frame::arp(c, vip).build(), "arp"),
            _ => (
                Frame::tcp(c, vip)
                    .ports(1024, 80)
                    .syn()
                    .vlan(r.below(4096) as u16)
                    .build(),
                "802.1Q tagged syn",
            ),
        };
        Generated {
            frame,
            how: how.to_string(),
        }
    }

    fn next(&mut self) -> Generated {
        let mut g = match self.rng.below(20) {
            0..=8 => self.service_frame(),
            9..=10 => self.other_frame(),
            // Mutated frames: mostly of services.
            n => {
                let mut g = if n <= 17 {
                    self.service_frame()
                } else {
                    self.other_frame()
                };
                let k = 1 + self.rng.upto(3);
                for _ in 0..k {
                    let what = mutate(&mut self.rng, &mut g.frame);
                    g.how.push_str(", ");
                    g.how.push_str(&what);
                }
                g
            }
        };
        // test_run refuses frames shorter than an Ethernet header.
        if g.frame.len() < 14 {
            g.frame.resize(14, 0);
            g.how.push_str(", padded to 14");
        }
        g
    }
}

fn random_mac(r: &mut Rng) -> [u8; 6] {
    let mut m = [0u8; 6];
    for b in &mut m {
        *b = r.byte();
    }
    m
}

/// Inserts one to three IPv6 extension headers (hop-by-hop, routing,
/// fragment, destination options) in front of the L4 header.
fn ipv6_with_extensions(r: &mut Rng, mut f: Vec<u8>) -> Vec<u8> {
    let n = 1 + r.upto(3);
    for _ in 0..n {
        let next = f[14 + 6];
        let ty = r.pick(&[0u8, 43, 44, 60]);
        let ext = match ty {
            44 => vec![next, 0, 0, r.pick(&[0, 1, 8]), 1, 2, 3, 4],
            43 => vec![next, 0, 4, 0, 0, 0, 0, 0],
            _ => vec![next, 0, 1, 4, 0, 0, 0, 0],
        };
        f.splice(54..54, ext);
        f[14 + 6] = ty;
        let len = u16::from_be_bytes([f[18], f[19]]) + 8;
        f[18..20].copy_from_slice(&len.to_be_bytes());
    }
    f
}

/// Applies one random mutation; returns its description.
fn mutate(r: &mut Rng, f: &mut Vec<u8>) -> String {
    let l3 = frame::mutate::l3_offset(f).unwrap_or(14).min(f.len());
    let ihl = f
        .get(l3)
        .map_or(20, |b| (usize::from(b & 0x0f) * 4).max(20));
    let l4 = l3 + ihl;
    let proto = f.get(l3 + 9).copied().unwrap_or(0);
    let fix = |f: &mut Vec<u8>| frame::mutate::fix_ip_checksum(f);
    match r.below(16) {
        0 => {
            // Truncated at a header boundary (or one byte off), with the IP
            // total length left as is or made to agree.
            let doff = f.get(l4 + 12).map_or(20, |b| usize::from(b >> 4) * 4);
            let cuts = [
                14,
                15,
                l3 + 1,
                l3 + 10,
                l3 + 19,
                l3 + 20,
                l4 - 1,
                l4,
                l4 + 1,
                l4 + 4,
                l4 + 7,
                l4 + 8,
                l4 + 13,
                l4 + 19,
                l4 + 20,
                l4 + doff - 1,
                l4 + doff,
                f.len().saturating_sub(1),
            ];
            let at = r.pick(&cuts).min(f.len());
            f.truncate(at);
            let agree = r.chance(1, 2) && at >= l3 + 4;
            if agree {
                frame::mutate::set_total_len(f, (at - l3) as u16);
                fix(f);
            }
            format!(
                "truncated to {at}{}",
                if agree { " (length fixed)" } else { "" }
            )
        }
        1 | 2 => {
            // A bit flipped in a header byte (Ethernet, IP, L4).
            let end = (l4 + 20).min(f.len());
            let at = r.upto(end.max(1));
            let bit = r.below(8);
            if let Some(b) = f.get_mut(at) {
                *b ^= 1 << bit;
            }
            let fixed = r.chance(1, 2);
            if fixed {
                fix(f);
            }
            format!(
                "bit {bit} of byte {at} flipped{}",
                if fixed { " (ip checksum fixed)" } else { "" }
            )
        }
        3 => {
            let actual = f.len().saturating_sub(l3);
            let any = r.upto(0x10000);
            let v = r.pick(&[
                0,
                1,
                19,
                20,
                ihl.saturating_sub(1),
                ihl,
                ihl + 7,
                ihl + 8,
                ihl + 19,
                ihl + 20,
                actual.saturating_sub(1),
                actual + 1,
                actual + 100,
                0xffff,
                any,
            ]) as u16;
            frame::mutate::set_total_len(f, v);
            if r.chance(1, 2) {
                fix(f);
            }
            format!("total length {v}")
        }
        4 => {
            let v = r.below(16) as u8;
            frame::mutate::set_ihl(f, v);
            if r.chance(1, 2) {
                fix(f);
            }
            format!("ihl {v}")
        }
        5 => {
            let v = r.below(16) as u8;
            if proto == 6
                && let Some(b) = f.get_mut(l4 + 12)
            {
                *b = (*b & 0x0f) | (v << 4);
            }
            format!("tcp data offset {v}")
        }
        6 => {
            let any = r.below(0x10000) as u16;
            let v = r.pick(&[0u16, 1, 7, 8, 9, 0xffff, any]);
            if proto == 17
                && let Some(b) = f.get_mut(l4 + 4..l4 + 6)
            {
                b.copy_from_slice(&v.to_be_bytes());
            }
            format!("udp length {v}")
        }
        7 => {
            // IP options inserted after the existing ones, IHL and total
            // length kept consistent.
            let words = 1 + r.upto(10);
            if ihl + 4 * words > 60 || f.len() < l4 {
                return "ip options (no room)".into();
            }
            let opts = if r.chance(1, 2) {
                vec![1u8; 4 * words]
            } else {
                r.bytes(4 * words)
            };
            f.splice(l4..l4, opts);
            frame::mutate::set_ihl(f, ((ihl + 4 * words) / 4) as u8);
            if let Some(t) = be16(f, l3 + 2) {
                frame::mutate::set_total_len(f, t.wrapping_add(4 * words as u16));
            }
            fix(f);
            format!("{} bytes of ip options", 4 * words)
        }
        8 => {
            let any = r.below(0x10000) as u16;
            let v = r.pick(&[
                0x2000u16, 0x0001, 0x00b9, 0x2010, 0x4000, 0x8000, 0x1fff, any,
            ]);
            if let Some(b) = f.get_mut(l3 + 6..l3 + 8) {
                b.copy_from_slice(&v.to_be_bytes());
            }
            if r.chance(3, 4) {
                fix(f);
            }
            format!("fragment field {v:#06x}")
        }
        9 => {
            let tag: Vec<u8> = match r.below(3) {
                0 => vec![0x81, 0x00, 0x00, r.byte()],
                1 => vec![0x88, 0xa8, 0x00, r.byte()],
                _ => vec![0x88, 0xa8, 0x00, 1, 0x81, 0x00, 0x00, 2],
            };
            let at = 12.min(f.len());
            let n = tag.len();
            f.splice(at..at, tag);
            format!("{} bytes of vlan tags", n)
        }
        10 => {
            let any = r.below(0x10000) as u16;
            let v = r.pick(&[0x86ddu16, 0x0806, 0x88cc, 0x8847, 0x0800, any]);
            if let Some(b) = f.get_mut(12..14) {
                b.copy_from_slice(&v.to_be_bytes());
            }
            format!("ethertype {v:#06x}")
        }
        11 => {
            let any = r.byte();
            let v = r.pick(&[0u8, 1, 6, 17, 47, 132, 255, any]);
            if let Some(b) = f.get_mut(l3 + 9) {
                *b = v;
            }
            fix(f);
            format!("ip protocol {v}")
        }
        12 => {
            let n = 1 + r.upto(64);
            f.extend(r.bytes(n));
            format!("{n} trailing bytes")
        }
        13 => {
            let v = r.below(16) as u8;
            frame::mutate::set_version(f, v);
            fix(f);
            format!("ip version {v}")
        }
        14 => {
            let v = r.byte();
            if proto == 6
                && let Some(b) = f.get_mut(l4 + 13)
            {
                *b = v;
            }
            format!("tcp flags {v:#04x}")
        }
        _ => {
            // Aimed at a service: another destination address and port.
            let vip = r.pick(&[VIP_A, VIP_B]);
            let port = r.pick(PORTS);
            if let Some(b) = f.get_mut(l3 + 16..l3 + 20) {
                b.copy_from_slice(&vip.octets());
            }
            if let Some(b) = f.get_mut(l4 + 2..l4 + 4) {
                b.copy_from_slice(&port.to_be_bytes());
            }
            fix(f);
            format!("retargeted to {vip}:{port}")
        }
    }
}

// ---------------------------------------------------------------------------
// Checking one result
// ---------------------------------------------------------------------------

fn ip_of(f: &[u8]) -> Ipv4Addr {
    let ip = &f[14..];
    Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])
}

/// Checks the program's result against the expectation; on success returns
/// the reason the packet must have been counted under and the real it went
/// to (index in the service), if forwarded.
fn check(
    model: &Model,
    input: &[u8],
    pkt: Option<&Pkt>,
    expect: &Expect,
    r: &RunResult,
) -> Result<(u32, Option<usize>), String> {
    let action = |a: u32| match a {
        XDP_DROP => "XDP_DROP".to_string(),
        XDP_PASS => "XDP_PASS".to_string(),
        XDP_TX => "XDP_TX".to_string(),
        other => format!("action {other}"),
    };
    match expect {
        Expect::Pass(reason) => {
            if r.action != XDP_PASS {
                return Err(format!("expected XDP_PASS, got {}", action(r.action)));
            }
            if r.frame != input {
                return Err("XDP_PASS with a modified frame".into());
            }
            Ok((*reason, None))
        }
        Expect::Drop(reason) => {
            if r.action != XDP_DROP {
                return Err(format!("expected XDP_DROP, got {}", action(r.action)));
            }
            Ok((*reason, None))
        }
        Expect::Forward { svc, reason, reals } => {
            if r.action != XDP_TX {
                return Err(format!(
                    "expected forwarding ({}), got {}",
                    REASON_NAMES[*reason as usize],
                    action(r.action)
                ));
            }
            if r.frame.len() != input.len() {
                return Err(format!(
                    "forwarded frame has {} bytes, the input {}",
                    r.frame.len(),
                    input.len()
                ));
            }
            if r.frame[12..] != input[12..] {
                let at = (12..input.len())
                    .find(|&i| r.frame[i] != input[i])
                    .unwrap_or(12);
                return Err(format!(
                    "forwarded frame changed beyond the MACs (byte {at})"
                ));
            }
            if r.frame[6..12] != input[0..6] {
                return Err("source MAC is not ours (the frame's old destination)".into());
            }
            let s = &model.svcs[*svc];
            let Some(i) = s
                .reals
                .iter()
                .position(|x| r.frame[0..6] == real_mac(x.last))
            else {
                return Err(format!(
                    "forwarded to MAC {} which is no real of service #{svc}",
                    crate::netns::format_mac(&r.frame[0..6].try_into().expect("6 bytes"))
                ));
            };
            if !reals.contains(&i) {
                let names: Vec<String> = reals
                    .iter()
                    .map(|&j| format!("198.51.100.{}", s.reals[j].last))
                    .collect();
                return Err(format!(
                    "{} to 198.51.100.{}, which may not take it (allowed: {})",
                    REASON_NAMES[*reason as usize],
                    s.reals[i].last,
                    names.join(", ")
                ));
            }
            Ok((*reason, Some(i)))
        }
        Expect::Unreachable => {
            if r.action == XDP_DROP {
                return Ok((REASON_DROP_REPLY_RATE, None));
            }
            if r.action != XDP_TX {
                return Err(format!(
                    "expected an ICMP port unreachable, got {}",
                    action(r.action)
                ));
            }
            let p = pkt.ok_or("no packet")?;
            let parsed =
                frame::parse(&r.frame).map_err(|e| format!("ICMP reply does not parse: {e}"))?;
            if parsed.dst_mac != input[6..12] || parsed.src_mac != input[0..6] {
                return Err("ICMP reply MACs are not the input's, swapped".into());
            }
            let ip = parsed.ipv4().ok_or("ICMP reply is not IPv4")?;
            if (ip.src, ip.dst, ip.protocol) != (ip_of_dst(input), ip_of(input), 1) {
                return Err(format!(
                    "ICMP reply {} -> {} proto {}, expected VIP -> client, ICMP",
                    ip.src, ip.dst, ip.protocol
                ));
            }
            if ip.ttl == 0 || usize::from(ip.total_len) != 20 + 8 + p.ihl + 8 {
                return Err(format!("ICMP reply ttl {} length {}", ip.ttl, ip.total_len));
            }
            let icmp = parsed.icmp().ok_or("no ICMP message")?;
            if (icmp.ty, icmp.code) != (3, 3) {
                return Err(format!("ICMP type {} code {}", icmp.ty, icmp.code));
            }
            if icmp.payload != input[14..14 + p.ihl + 8] {
                return Err("ICMP reply does not quote the IP header and 8 bytes".into());
            }
            Ok((REASON_TX_ICMP_UNREACH, None))
        }
        Expect::Reset => {
            if r.action != XDP_TX {
                return Err(format!("expected a TCP RST, got {}", action(r.action)));
            }
            let p = pkt.ok_or("no packet")?;
            let parsed = frame::parse(&r.frame).map_err(|e| format!("RST does not parse: {e}"))?;
            if parsed.dst_mac != input[6..12] || parsed.src_mac != input[0..6] {
                return Err("RST MACs are not the input's, swapped".into());
            }
            let ip = parsed.ipv4().ok_or("RST is not IPv4")?;
            if (ip.src, ip.dst, ip.protocol, ip.total_len)
                != (ip_of_dst(input), ip_of(input), 6, 40)
                || ip.ttl == 0
            {
                return Err(format!(
                    "RST {} -> {} proto {} length {} ttl {}",
                    ip.src, ip.dst, ip.protocol, ip.total_len, ip.ttl
                ));
            }
            let t = parsed.tcp().ok_or("no TCP segment")?;
            if (t.sport, t.dport) != (p.dport, p.sport) || !t.is_rst() || !t.payload.is_empty() {
                return Err(format!(
                    "RST ports {}->{} flags {:#04x}",
                    t.sport, t.dport, t.flags
                ));
            }
            // RFC 793 / tcp_v4_send_reset: to an ACK, seq = its ack; else
            // RST|ACK acknowledging everything the segment occupied.
            let ok = if p.flags & tcp_flags::ACK != 0 {
                t.seq == p.ack && !t.is_ack()
            } else {
                let len = p.payload
                    + u32::from(p.flags & tcp_flags::SYN != 0)
                    + u32::from(p.flags & tcp_flags::FIN != 0);
                t.seq == 0 && t.is_ack() && t.ack == p.seq.wrapping_add(len)
            };
            if !ok {
                return Err(format!(
                    "RST seq {} ack {} flags {:#04x} for a segment seq {} ack {} flags {:#04x}",
                    t.seq, t.ack, t.flags, p.seq, p.ack, p.flags
                ));
            }
            Ok((REASON_TX_RST_NODEST, None))
        }
    }
}

fn ip_of_dst(f: &[u8]) -> Ipv4Addr {
    let ip = &f[14..];
    Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])
}

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

/// How to fuzz.
#[derive(Clone, Debug)]
pub struct FuzzConfig {
    pub seed: u64,
    pub frames: u64,
    /// Compare the outcome counters with the model every this many frames
    /// (1: every frame, which names the exact frame of a miscount).
    pub check_every: u64,
    /// A control-plane change (weight, removal, re-add, sysctl) every this
    /// many frames; 0 for none.
    pub control_every: u64,
    /// Stop after this many violations.
    pub max_violations: usize,
    /// Print progress every this many frames (0: never).
    pub progress_every: u64,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        FuzzConfig {
            seed: 1,
            frames: 10_000,
            check_every: 1,
            control_every: 200,
            max_violations: 10,
            progress_every: 0,
        }
    }
}

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Index of the frame in the run (0-based).
    pub index: u64,
    pub what: String,
    pub how: String,
    pub input: Vec<u8>,
    pub action: u32,
    pub output: Vec<u8>,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub frames: u64,
    /// Packets per outcome reason, as the program counted them.
    pub reasons: Vec<u64>,
    pub control_events: u64,
    pub flushes: u64,
    pub violations: Vec<Violation>,
    pub elapsed: Duration,
    /// Time spent in `test_run` alone.
    pub in_test_run: Duration,
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses [`hex`] output.
pub fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    s.chunks(2)
        .filter_map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

impl Violation {
    /// The violation with the frame as hex and as test cases to paste.
    pub fn render(&self, seed: u64) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "VIOLATION at frame #{} (seed {seed}): {}",
            self.index, self.what
        );
        let _ = writeln!(s, "  generated as: {}", self.how);
        let _ = writeln!(
            s,
            "  input  ({} bytes): {}",
            self.input.len(),
            hex(&self.input)
        );
        let _ = writeln!(
            s,
            "  output (action {}, {} bytes): {}",
            self.action,
            self.output.len(),
            hex(&self.output)
        );
        let _ = writeln!(
            s,
            "  replay: cargo xtask fuzz --seed {seed} --frames {} --check-every 1",
            self.index + 1
        );
        let name = format!("fuzz_seed_{seed}_frame_{}", self.index);
        let _ = writeln!(s, "  test case (tests/tests/robustness.rs):");
        let _ = writeln!(
            s,
            "    #[test]\n    fn {name}() -> Result<()> {{\n        \
             if !require_root(\"{name}\") {{\n            return Ok(());\n        }}\n        \
             // The frame alone, on a fresh load balancer with the fuzzer's services:\n        \
             fuzz::check_one(&fuzz::unhex(\"{}\"))?;\n        \
             // The run up to it (the outcome may depend on earlier frames):\n        \
             let r = fuzz::run_in_lab(&FuzzConfig {{ seed: {seed}, frames: {}, check_every: 1, ..FuzzConfig::default() }})?;\n        \
             assert!(r.violations.is_empty(), \"{{}}\", r.render());\n        \
             Ok(())\n    }}",
            hex(&self.input),
            self.index + 1
        );
        s
    }
}

impl Report {
    /// A summary: frames, throughput, outcomes, violations.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "fuzz: seed {}, {} frames in {:.2} s ({:.0} frames/s; {:.2} µs per test_run), \
             {} control-plane changes, {} table flushes, {} violation(s)",
            self.seed,
            self.frames,
            secs,
            self.frames as f64 / secs,
            self.in_test_run.as_secs_f64() * 1e6 / (self.frames.max(1) as f64),
            self.control_events,
            self.flushes,
            self.violations.len()
        );
        for (i, n) in self.reasons.iter().enumerate() {
            if *n > 0 {
                let _ = writeln!(s, "  {:<18} {n}", REASON_NAMES[i]);
            }
        }
        for v in &self.violations {
            s.push_str(&v.render(self.seed));
        }
        s
    }
}

fn read_counters(dp: &Dataplane) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::with_capacity(REASON_COUNT as usize);
    for i in 0..REASON_COUNT {
        let v = dp.table.pins.stats.get(&i, 0)?;
        out.push(
            v.iter()
                .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes)),
        );
    }
    Ok(out)
}

/// Removes every connection entry and template (model and tables), keeping
/// the configuration.
fn flush(dp: &mut Dataplane, model: &mut Model) -> Result<()> {
    let keys: Vec<ConnKey> = dp.table.pins.conns.keys().collect::<Result<_, _>>()?;
    for k in keys {
        let _ = dp.table.pins.conns.remove(&k);
    }
    let keys: Vec<TemplateKey> = dp.table.pins.templates.keys().collect::<Result<_, _>>()?;
    for k in keys {
        let _ = dp.table.pins.templates.remove(&k);
    }
    model.flows.clear();
    model.templates.clear();
    Ok(())
}

/// Kinds of control-plane change, in the order they come: 0..=2 weight
/// (or re-add if removed), 3 removal (or re-add), 4/5 `expire_nodest_conn`,
/// 6 `expire_quiescent_template`, 7 `conn_reuse_mode`, 8 `-E` with the
/// other scheduler, 9 `-E` turning persistence off or on (for a port-0
/// service, which must stay persistent: another netmask).
const CONTROL_CYCLE: [u64; 12] = [3, 0, 4, 3, 1, 7, 3, 8, 2, 5, 6, 9];

/// One control-plane change, applied to the tables and the model alike;
/// returns what it did.
fn control(dp: &mut Dataplane, model: &mut Model, r: &mut Rng) -> Result<String> {
    let with_reals: Vec<usize> = (0..model.svcs.len())
        .filter(|&i| !model.svcs[i].reals.is_empty())
        .collect();
    let si = r.pick(&with_reals);
    let def = &SERVICES[model.svcs[si].def];
    let id = service_id(def);
    let ri = r.upto(model.svcs[si].reals.len());
    let real = model.svcs[si].reals[ri].clone();
    // A fixed cycle of kinds, so that even a short run has each several
    // times: weights, removals (with and without flushing), re-adds,
    // sysctls.
    let kind = CONTROL_CYCLE[(model.control_count % CONTROL_CYCLE.len() as u64) as usize];
    model.control_count += 1;
    match kind {
        0..=2 if real.available => {
            let w = r.pick(&[0, 0, 1, 2, 3]);
            dp.table.edit_real(&id, &real_spec(def, real.last, w))?;
            let m = &mut model.svcs[si].reals[ri];
            if w == 0 && m.weight != 0 && model.expire_quiescent_template {
                m.tmpl_epoch += 1;
            }
            m.weight = w;
            Ok(format!("-e {id:?} 198.51.100.{} -w {w}", real.last))
        }
        3 if real.available => {
            dp.table.delete_real(
                &id,
                &RealId {
                    addr: Ipv4Addr::new(198, 51, 100, real.last),
                    port: def.port,
                },
            )?;
            let m = &mut model.svcs[si].reals[ri];
            m.available = false;
            if model.expire_nodest_conn {
                m.incarnation += 1;
            }
            Ok(format!("-d {id:?} 198.51.100.{}", real.last))
        }
        0..=3 => {
            let w = r.pick(&[0, 1, 1, 2]);
            dp.table.add_real(&id, &real_spec(def, real.last, w))?;
            let m = &mut model.svcs[si].reals[ri];
            m.available = true;
            m.weight = w;
            Ok(format!("-a {id:?} 198.51.100.{} -w {w}", real.last))
        }
        8 | 9 => {
            // `-E` re-sends every setting (ipvsadm does): flip one of them.
            let m = &mut model.svcs[si];
            if kind == 8 {
                m.sched = if m.sched == Sched::Rr {
                    Sched::Wrr
                } else {
                    Sched::Rr
                };
            } else if m.port != 0 {
                m.persistent = !m.persistent;
            } else {
                m.netmask = if m.netmask == HOST.octets() {
                    def.netmask.octets()
                } else {
                    HOST.octets()
                };
            }
            let spec = ServiceSpec {
                id,
                sched: m.sched,
                persistent: m.persistent.then_some(PERSIST_SECS),
                netmask: Ipv4Addr::from(m.netmask),
            };
            dp.table.edit_service(&spec)?;
            Ok(format!(
                "-E {id:?} -s {} {} -M {}",
                spec.sched.name(),
                spec.persistent
                    .map_or("(not persistent)".into(), |p| format!("-p {p}")),
                spec.netmask
            ))
        }
        4 | 5 => {
            model.expire_nodest_conn = !model.expire_nodest_conn;
            let v = u32::from(model.expire_nodest_conn);
            dp.table.set_sysctl("expire_nodest_conn", v)?;
            Ok(format!("expire_nodest_conn={v}"))
        }
        6 => {
            model.expire_quiescent_template = !model.expire_quiescent_template;
            let v = u32::from(model.expire_quiescent_template);
            dp.table.set_sysctl("expire_quiescent_template", v)?;
            Ok(format!("expire_quiescent_template={v}"))
        }
        _ => {
            let v = r.below(4) as u32;
            model.conn_reuse_mode = v;
            dp.table.set_sysctl("conn_reuse_mode", v)?;
            Ok(format!("conn_reuse_mode={v}"))
        }
    }
}

/// Fuzzes the program loaded in `dp`, which must be freshly made and
/// configured with [`configure`], on a thread pinned to one CPU (see
/// [`run_in_lab`]).
pub fn run(dp: &mut Dataplane, cfg: &FuzzConfig) -> Result<Report> {
    let mut model = Model::new();
    let mut generator = Gen::new(cfg.seed);
    // Control-plane choices have their own stream, so that changing how often
    // they happen does not change the frames.
    let mut ctl_rng = Rng::new(cfg.seed ^ 0xc0a7_7201);
    let mut report = Report {
        seed: cfg.seed,
        ..Report::default()
    };
    let mut expected = vec![(0u64, 0u64); REASON_COUNT as usize];
    let mut last = read_counters(dp)?;
    let base = last.clone();
    let mut window_start = 0u64;
    let start = Instant::now();
    let mut recent_changes: VecDeque<String> = VecDeque::new();
    let check_every = cfg.check_every.max(1);

    for n in 0..cfg.frames {
        if cfg.control_every > 0 && n > 0 && n % cfg.control_every == 0 {
            let what = control(dp, &mut model, &mut ctl_rng)?;
            report.control_events += 1;
            if recent_changes.len() >= 8 {
                recent_changes.pop_front();
            }
            recent_changes.push_back(format!("before #{n}: {what}"));
        }
        if model.flows.len() > FLOW_LIMIT || model.templates.len() > FLOW_LIMIT {
            flush(dp, &mut model)?;
            report.flushes += 1;
        }
        let g = generator.next();
        let (svc, pkt, plan) = model.expect_for(&g.frame);
        let t0 = Instant::now();
        let r = dp.run(&g.frame)?;
        report.in_test_run += t0.elapsed();
        report.frames += 1;
        let outcome = check(&model, &g.frame, pkt.as_ref(), &plan.expect, &r);
        let mut violated = None;
        match outcome {
            Ok((reason, chosen)) => {
                expected[reason as usize].0 += 1;
                expected[reason as usize].1 += g.frame.len() as u64;
                if let (Some(s), Some(p)) = (svc, pkt.as_ref()) {
                    model.commit(s, p, &plan, chosen);
                }
            }
            Err(what) => {
                violated = Some(format!(
                    "{what}; expected {:?}; recent control-plane changes: [{}]",
                    plan.expect,
                    recent_changes
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        let at_checkpoint = (n + 1) % check_every == 0 || n + 1 == cfg.frames;
        if violated.is_some() || at_checkpoint {
            let now = read_counters(dp)?;
            if violated.is_none() {
                let moved: Vec<(u64, u64)> = now
                    .iter()
                    .zip(&last)
                    .map(|(a, b)| (a.0 - b.0, a.1 - b.1))
                    .collect();
                if moved != expected {
                    let show = |v: &[(u64, u64)]| {
                        v.iter()
                            .enumerate()
                            .filter(|(_, c)| c.0 > 0)
                            .map(|(i, c)| format!("{}={}/{}B", REASON_NAMES[i], c.0, c.1))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    violated = Some(format!(
                        "outcome counters over frames #{window_start}..=#{n} moved [{}], \
                         the outcomes imply [{}]",
                        show(&moved),
                        show(&expected)
                    ));
                }
            }
            last = now;
            expected.iter_mut().for_each(|e| *e = (0, 0));
            window_start = n + 1;
        }
        if let Some(what) = violated {
            report.violations.push(Violation {
                index: n,
                what,
                how: g.how,
                input: g.frame,
                action: r.action,
                output: r.frame,
            });
            if report.violations.len() >= cfg.max_violations {
                break;
            }
            // Start afresh so that one miss does not cascade.
            flush(dp, &mut model)?;
            last = read_counters(dp)?;
            expected.iter_mut().for_each(|e| *e = (0, 0));
            window_start = n + 1;
        }
        if cfg.progress_every > 0 && (n + 1) % cfg.progress_every == 0 {
            eprintln!(
                "fuzz: {} frames, {:.1} s, {} violation(s)",
                n + 1,
                start.elapsed().as_secs_f64(),
                report.violations.len()
            );
        }
    }
    report.elapsed = start.elapsed();
    let end = read_counters(dp)?;
    report.reasons = end.iter().zip(&base).map(|(a, b)| a.0 - b.0).collect();
    Ok(report)
}

/// A fresh load balancer in a private lab namespace, configured with the
/// fuzzer's services, fuzzed with `cfg`.
pub fn run_in_lab(cfg: &FuzzConfig) -> Result<Report> {
    let cfg = cfg.clone();
    in_lab(move || {
        let mut dp = Dataplane::new()?;
        dp.set_ingress("lab0")?;
        configure(&mut dp)?;
        run(&mut dp, &cfg)
    })
}

/// Runs one frame on a fresh load balancer with the fuzzer's services and
/// checks it like the fuzzer does (for regression tests of a violation).
pub fn check_one(input: &[u8]) -> Result<()> {
    let input = input.to_vec();
    in_lab(move || {
        let mut dp = Dataplane::new()?;
        dp.set_ingress("lab0")?;
        configure(&mut dp)?;
        let mut model = Model::new();
        let (svc, pkt, plan) = model.expect_for(&input);
        let before = read_counters(&dp)?;
        let r = dp.run(&input)?;
        let after = read_counters(&dp)?;
        let (reason, chosen) = check(&model, &input, pkt.as_ref(), &plan.expect, &r)
            .map_err(|e| anyhow::anyhow!("{e}; expected {:?}", plan.expect))?;
        let moved: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a.0 - b.0).collect();
        let mut want = vec![0; REASON_COUNT as usize];
        want[reason as usize] = 1;
        anyhow::ensure!(
            moved == want,
            "counted under {:?}, expected {}",
            moved,
            REASON_NAMES[reason as usize]
        );
        if let (Some(s), Some(p)) = (svc, pkt.as_ref()) {
            model.commit(s, p, &plan, chosen);
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Flood: new flows from random sources while established flows keep sending
// ---------------------------------------------------------------------------

/// The program with connection and template tables of a chosen size, on a
/// private pin directory (the fixtures' `Dataplane` has small fixed tables).
/// Use inside [`in_lab`], like `Dataplane`.
pub struct Rig {
    pub table: lb_user::Table,
    ebpf: aya::Ebpf,
    _pins: crate::BpfPinDir,
    ingress: u32,
}

impl Rig {
    pub fn new(sizes: lb_user::Sizes) -> Result<Rig> {
        let pins = crate::BpfPinDir::new()?;
        let table = lb_user::Table::new(lb_user::Pins::open(pins.path(), Some(sizes))?);
        let mut ebpf = lb_user::pins::load_maps(pins.path(), sizes)?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut(lb_common::PROGRAM_NAME)
            .context("program missing from the object")?
            .try_into()?;
        prog.load().context("loading the program")?;
        let ingress = lb_user::neigh::ifindex("lab0").context("no lab0: run inside in_lab")?;
        Ok(Rig {
            table,
            ebpf,
            _pins: pins,
            ingress,
        })
    }

    /// Runs the program once on `frame` (arriving on lab0).
    pub fn run(&self, frame: &[u8]) -> Result<RunResult> {
        use aya::programs::{TestRun, TestRunOptions, Xdp};
        let prog: &Xdp = self
            .ebpf
            .program(lb_common::PROGRAM_NAME)
            .context("program")?
            .try_into()?;
        let mut md = [0u8; 24];
        md[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        md[12..16].copy_from_slice(&self.ingress.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 512];
        let r = prog.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&md[..]),
            ..TestRunOptions::default()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok(RunResult {
            action: r.return_value,
            frame: out,
        })
    }

    /// Packets per outcome reason, summed over CPUs.
    pub fn reasons(&self) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(REASON_COUNT as usize);
        for i in 0..REASON_COUNT {
            out.push(
                self.table
                    .pins
                    .stats
                    .get(&i, 0)?
                    .iter()
                    .map(|c| c.packets)
                    .sum(),
            );
        }
        Ok(out)
    }
}

/// A flood of SYNs from random sources against `established` clients that
/// keep their connections busy.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    pub seed: u64,
    /// Size of the connection (and template) table.
    pub conns: u32,
    /// SYNs of the flood, each from a new source address and port (distinct,
    /// in a scrambled order; at most 2^25).
    pub syns: u64,
    /// Established connections that keep sending during the flood.
    pub established: usize,
    /// Flood SYNs between two packets of one established connection.
    pub gap: u64,
    /// Each flood flow also sends an ACK after its SYN (completed handshakes,
    /// as a flood of real clients would; their entries are then "recently
    /// used" too). Without it, a SYN flood: entries never used again.
    pub handshakes: bool,
}

/// What the flood did.
#[derive(Clone, Debug, Default)]
pub struct FloodReport {
    pub cfg: Option<FloodConfig>,
    /// Flood SYNs forwarded as new flows / dropped because no entry could be
    /// made / anything else.
    pub flood_forwarded: u64,
    pub flood_table_full: u64,
    pub flood_other: u64,
    /// Packets of the established connections, and how they fared: to their
    /// own real server / passed to the host stack because their entry was
    /// evicted (IPVS would have it still; the client sees a reset) / anything
    /// else.
    pub est_packets: u64,
    pub est_kept: u64,
    pub est_evicted: u64,
    pub est_other: u64,
    /// Entries in the connection table afterwards.
    pub entries_after: usize,
    /// Packets per outcome reason over the whole flood.
    pub reasons: Vec<u64>,
    pub elapsed: Duration,
    /// Mean time of one `test_run` over the flood (kernel and syscall).
    pub ns_per_packet: f64,
}

impl FloodReport {
    pub fn render(&self) -> String {
        let Some(c) = &self.cfg else {
            return String::new();
        };
        format!(
            "flood: table {} entries, {} {} from distinct sources ({:.1}x the table), \
             {} established connections each sending every {} flood SYNs: \
             flood forwarded {} / table-full drops {} / other {}; \
             established packets {}: kept {} / evicted {} ({:.4}%) / other {}; \
             {} entries after; {:.2} s, {:.0} ns per packet",
            c.conns,
            c.syns,
            if c.handshakes {
                "handshakes (SYN, ACK)"
            } else {
                "SYNs"
            },
            c.syns as f64 / f64::from(c.conns),
            c.established,
            c.gap,
            self.flood_forwarded,
            self.flood_table_full,
            self.flood_other,
            self.est_packets,
            self.est_kept,
            self.est_evicted,
            100.0 * self.est_evicted as f64 / (self.est_packets.max(1) as f64),
            self.est_other,
            self.entries_after,
            self.elapsed.as_secs_f64(),
            self.ns_per_packet
        )
    }
}

/// The flood's service: TCP VIP_A:80, wrr over two reals.
fn flood_setup(rig: &mut Rig) -> Result<()> {
    let id = ServiceId {
        proto: Proto::Tcp,
        addr: VIP_A,
        port: 80,
    };
    rig.table.add_service(&ServiceSpec {
        id,
        sched: Sched::Wrr,
        persistent: None,
        netmask: HOST,
    })?;
    for last in [11, 12] {
        rig.table.add_real(
            &id,
            &RealSpec {
                id: RealId {
                    addr: Ipv4Addr::new(198, 51, 100, last),
                    port: 80,
                },
                fwd: Fwd::Route,
                weight: 1,
            },
        )?;
    }
    Ok(())
}

/// Which real (last address byte) a forwarded frame went to.
fn routed_to(r: &RunResult) -> Option<u8> {
    (r.action == XDP_TX && r.frame.get(0..5) == Some(&real_mac(0)[0..5])).then(|| r.frame[5])
}

/// Runs a flood (see [`FloodConfig`]) on a fresh program in the lab.
pub fn flood(cfg: &FloodConfig) -> Result<FloodReport> {
    let cfg = cfg.clone();
    in_lab(move || {
        let mut rig = Rig::new(lb_user::Sizes {
            conns: cfg.conns,
            templates: cfg.conns,
        })?;
        flood_setup(&mut rig)?;
        flood_on(&rig, &cfg)
    })
}

fn flood_on(rig: &Rig, cfg: &FloodConfig) -> Result<FloodReport> {
    use tcp_flags::{ACK, SYN};
    let mut rng = Rng::new(cfg.seed);
    let est = |i: usize, flags: u8| {
        Frame::tcp(Ipv4Addr::new(192, 0, 2, 200 + (i % 50) as u8), VIP_A)
            .ports(50_000 + i as u16, 80)
            .flags(flags)
            .build()
    };
    // Establish: SYN, then ACK.
    let mut owner = Vec::with_capacity(cfg.established);
    for i in 0..cfg.established {
        let real = routed_to(&rig.run(&est(i, SYN))?).context("establishing: SYN not forwarded")?;
        rig.run(&est(i, ACK))?;
        owner.push(real);
    }
    let before = rig.reasons()?;
    let mut rep = FloodReport {
        cfg: Some(cfg.clone()),
        ..FloodReport::default()
    };
    // One established packet every `step` flood SYNs, round robin.
    let step = (cfg.gap / cfg.established.max(1) as u64).max(1);
    let nets = [[192u8, 0, 2], [198, 51, 100], [203, 0, 113]];
    let start = Instant::now();
    let mut next_est = 0usize;
    let mut runs = 0u64;
    // Every flood flow is new: distinct (source, port) pairs in a scrambled
    // order (a bijection on 2^25 indices: 768 addresses x 43,691 ports).
    let salt = rng.next_u64();
    for n in 0..cfg.syns {
        let idx = (n.wrapping_mul(0x9e37_79b1).wrapping_add(salt)) & ((1 << 25) - 1);
        let net = nets[(idx % 3) as usize];
        let src = Ipv4Addr::new(net[0], net[1], net[2], ((idx / 3) % 256) as u8);
        let syn = Frame::tcp(src, VIP_A)
            .ports(1024 + (idx / 768) as u16, 80)
            .syn()
            .build();
        let r = rig.run(&syn)?;
        runs += 1;
        match (r.action, routed_to(&r)) {
            (_, Some(_)) => rep.flood_forwarded += 1,
            (XDP_DROP, None) => rep.flood_table_full += 1,
            _ => rep.flood_other += 1,
        }
        if cfg.handshakes {
            let mut ack = syn;
            // Same flow, flags SYN -> ACK: byte 47 is the TCP flags (no
            // options), and the TCP checksum is not looked at.
            ack[47] = ACK;
            rig.run(&ack)?;
            runs += 1;
        }
        if cfg.established > 0 && n % step == 0 {
            let i = next_est;
            next_est = (next_est + 1) % cfg.established;
            let r = rig.run(&est(i, ACK))?;
            runs += 1;
            rep.est_packets += 1;
            match routed_to(&r) {
                Some(real) if real == owner[i] => rep.est_kept += 1,
                _ if r.action == XDP_PASS => {
                    rep.est_evicted += 1;
                    // The client reconnects (its stack got a reset).
                    let real = routed_to(&rig.run(&est(i, SYN))?)
                        .context("re-establishing: SYN not forwarded")?;
                    rig.run(&est(i, ACK))?;
                    runs += 2;
                    owner[i] = real;
                }
                _ => rep.est_other += 1,
            }
        }
    }
    rep.elapsed = start.elapsed();
    rep.ns_per_packet = rep.elapsed.as_nanos() as f64 / runs.max(1) as f64;
    let after = rig.reasons()?;
    rep.reasons = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    rep.entries_after = rig.table.conn_entries()?.len();
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[a.upto(10)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }

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
        assert_eq!(classify(&f).unwrap_err(), REASON_PASS_NOT_IPV4);
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

    #[test]
    fn generator_is_deterministic_and_never_panics() {
        let mut a = Gen::new(42);
        let mut b = Gen::new(42);
        for _ in 0..20_000 {
            let (x, y) = (a.next(), b.next());
            assert_eq!(x.frame, y.frame);
            assert!(x.frame.len() >= 14);
            let _ = classify(&x.frame);
        }
    }

    /// The checker rejects what the program must never do (so a clean run
    /// means something).
    #[test]
    fn checker_catches_wrong_outcomes() {
        let model = Model::new();
        let input = Frame::tcp(Ipv4Addr::new(192, 0, 2, 1), VIP_A)
            .ports(1024, 80)
            .syn()
            .build();
        let p = classify(&input).unwrap();
        let svc = model.lookup(&p).unwrap();
        let plan = model.plan(svc, &p);
        let routed = |i: u8| {
            let mut out = input.clone();
            out[0..6].copy_from_slice(&real_mac(i));
            out[6..12].copy_from_slice(&input[0..6]);
            out
        };
        let res = |action, frame| RunResult { action, frame };
        // A correct forward to a real with weight > 0 passes...
        assert!(
            check(
                &model,
                &input,
                Some(&p),
                &plan.expect,
                &res(XDP_TX, routed(11))
            )
            .is_ok()
        );
        // ...but not to the quiescent real, another service's real, with a
        // changed IP byte, or as a pass.
        for bad in [
            res(XDP_TX, routed(13)),
            res(XDP_TX, routed(14)),
            res(XDP_TX, {
                let mut f = routed(11);
                f[22] ^= 1;
                f
            }),
            res(XDP_PASS, input.clone()),
            res(XDP_DROP, input.clone()),
        ] {
            assert!(check(&model, &input, Some(&p), &plan.expect, &bad).is_err());
        }
        // A pass must leave the frame as it was.
        let mut changed = input.clone();
        changed[0] ^= 1;
        let pass = Expect::Pass(REASON_PASS_NO_SERVICE);
        assert!(check(&model, &input, None, &pass, &res(XDP_PASS, input.clone())).is_ok());
        assert!(check(&model, &input, None, &pass, &res(XDP_PASS, changed)).is_err());
        // A reply that does not parse (here: the input echoed) is caught.
        assert!(
            check(
                &model,
                &input,
                Some(&p),
                &Expect::Unreachable,
                &res(XDP_TX, input.clone())
            )
            .is_err()
        );
        assert!(
            check(
                &model,
                &input,
                Some(&p),
                &Expect::Reset,
                &res(XDP_TX, input.clone())
            )
            .is_err()
        );
    }

    #[test]
    fn hex_round_trip() {
        let b = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&b)), b);
    }
}

//! The controller's model of LVS objects, in LVS words. `cli` parses ipvsadm
//! arguments into these types, `format` prints listings from them, and `table`
//! projects them onto the pinned maps.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::addr::{fwmark_ip, fwmark_of};

/// Transport protocol of a virtual service, or `Fwm` for a fwmark service
/// (`-f MARK`), which has none: it takes TCP and UDP packets of its mark.
/// A fwmark template (protocol 0, the kernel's `IPPROTO_IP`) reads back as
/// `Fwm` too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Fwm,
}

impl Proto {
    /// The IP protocol number (0 for `Fwm`, as the maps key it).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => lb_common::IPPROTO_TCP,
            Proto::Udp => lb_common::IPPROTO_UDP,
            Proto::Fwm => 0,
        }
    }
    /// As ipvsadm prints it in service lines ("TCP", "UDP", "FWM").
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Fwm => "FWM",
        }
    }
    /// As `-L -c` prints it: a fwmark template's protocol is "IP".
    pub fn conn_name(self) -> &'static str {
        match self {
            Proto::Fwm => "IP",
            p => p.name(),
        }
    }
    pub fn from_number(n: u8) -> Option<Proto> {
        match n {
            lb_common::IPPROTO_TCP => Some(Proto::Tcp),
            lb_common::IPPROTO_UDP => Some(Proto::Udp),
            0 => Some(Proto::Fwm),
            _ => None,
        }
    }
}

/// Identity of a virtual service: `-t|-u addr:port`, or `-f MARK [-6]`
/// (protocol `Fwm`, port 0, and as the address the mark of one family:
/// `addr::fwmark_ip`, IPv4 `0.0.0.MARK` or IPv6 with the mark in its first
/// 32 bits, mirroring lb-common's `fwmark_addr`, the key the maps use).
/// Ordered like ipvsadm's sorted listing (`ipvs_cmp_services`: services
/// without a mark first, then by mark; then family, IPv4 first; protocol;
/// address; port), without its int wrap (`format` has that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceId {
    pub proto: Proto,
    pub addr: IpAddr,
    pub port: u16,
}

impl ServiceId {
    /// The IPv4 fwmark service `-f mark`.
    pub fn fwmark(mark: u32) -> ServiceId {
        ServiceId::fwmark_of_family(mark, false)
    }
    /// The fwmark service `-f mark`, or `-f mark -6` when `v6`.
    pub fn fwmark_of_family(mark: u32, v6: bool) -> ServiceId {
        ServiceId {
            proto: Proto::Fwm,
            addr: fwmark_ip(mark, v6),
            port: 0,
        }
    }
    /// The mark of a fwmark service, else `None`.
    pub fn mark(&self) -> Option<u32> {
        (self.proto == Proto::Fwm).then(|| fwmark_of(self.addr))
    }
    /// Whether the service is of family IPv6 (an IPv6 address, or `-6`).
    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

impl Ord for ServiceId {
    fn cmp(&self, other: &ServiceId) -> Ordering {
        let key = |s: &ServiceId| {
            (
                s.mark().unwrap_or(0),
                s.is_v6(),
                s.proto.number(),
                s.addr,
                s.port,
            )
        };
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for ServiceId {
    fn partial_cmp(&self, other: &ServiceId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The IPVS schedulers that lbctl knows of but does not implement yet.
pub const UNSUPPORTED_SCHEDULERS: [&str; 0] = [];

/// The implemented schedulers' names, for messages.
pub fn supported_names() -> String {
    ALL_SCHEDULERS
        .iter()
        .filter(|n| !UNSUPPORTED_SCHEDULERS.contains(n))
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every scheduler of the kernel, by its `-s` name.
pub const ALL_SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

/// ipvsadm's scheduler when `-A` gives none (`DEF_SCHED`).
pub const DEFAULT_SCHEDULER: Sched = Sched::Wlc;

/// IPVS's scheduler flags (`-b`, `IP_VS_SVC_F_SCHED1..3`) as lb-common's
/// `SVC_F_SCHED*` bits. sh and mh read the first as fallback and the second
/// as port; ipvsadm names them after the scheduler (`sh-fallback`,
/// `mh-port`, ...) and the bits are the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedFlags(pub u32);

impl SchedFlags {
    pub const FALLBACK: SchedFlags = SchedFlags(lb_common::SVC_F_SCHED_FALLBACK);
    pub const PORT: SchedFlags = SchedFlags(lb_common::SVC_F_SCHED_PORT);
    pub const NONE: SchedFlags = SchedFlags(0);

    pub fn fallback(self) -> bool {
        self.0 & lb_common::SVC_F_SCHED_FALLBACK != 0
    }
    pub fn port(self) -> bool {
        self.0 & lb_common::SVC_F_SCHED_PORT != 0
    }
    /// Any of the three bits set (ipvsadm then prints ` (...)` / ` -b ...`).
    pub fn any(self) -> bool {
        self.0 & lb_common::SVC_F_SCHED_MASK != 0
    }
}

/// A word of `-b` (ldirectord's `schedflags=`) that ipvsadm refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadSchedFlag {
    #[error("invalid scheduler flag `{0}'")]
    Invalid(String),
    #[error("incompatible scheduler flag `{0}'")]
    Incompatible(String),
}

/// Why `Sched::with_flags` refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchedFlagsError {
    #[error(transparent)]
    Bad(BadSchedFlag),
    #[error("scheduler flags of schedulers other than sh and mh are not supported yet")]
    Unsupported,
}

/// ipvsadm 1.31's `parse_sched_flags`: the comma-separated words of `-b`
/// (empty words skipped, as `strtok` does) against the scheduler named by
/// `-s` (`sched`; ipvsadm's default `wlc` when none): `flag-1`..`flag-3`
/// for any scheduler, `sh-fallback`/`sh-port` only with `sh`,
/// `mh-fallback`/`mh-port` only with `mh`. The first bad word is the error.
pub fn parse_sched_flags(sched: &str, arg: &str) -> Result<SchedFlags, BadSchedFlag> {
    use lb_common::{SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3};
    let mut bits = 0;
    let mut words = arg.split(',').filter(|w| !w.is_empty()).peekable();
    if words.peek().is_none() {
        // ipvsadm's strtok finds no word and it crashes; refuse instead.
        return Err(BadSchedFlag::Invalid(String::new()));
    }
    for flag in words {
        let (bit, only) = match flag {
            "flag-1" => (SVC_F_SCHED1, None),
            "flag-2" => (SVC_F_SCHED2, None),
            "flag-3" => (SVC_F_SCHED3, None),
            "sh-fallback" => (SVC_F_SCHED1, Some("sh")),
            "sh-port" => (SVC_F_SCHED2, Some("sh")),
            "mh-fallback" => (SVC_F_SCHED1, Some("mh")),
            "mh-port" => (SVC_F_SCHED2, Some("mh")),
            _ => return Err(BadSchedFlag::Invalid(flag.to_owned())),
        };
        if only.is_some_and(|s| s != sched) {
            return Err(BadSchedFlag::Incompatible(flag.to_owned()));
        }
        bits |= bit;
    }
    Ok(SchedFlags(bits))
}

/// Scheduler (`-s`), with its flags for sh and mh (`-b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sched {
    Rr,
    Wrr,
    Sh(SchedFlags),
    Mh(SchedFlags),
    Lc,
    Wlc,
    Sed,
    Nq,
    Fo,
    Ovf,
    Dh,
    Lblc,
    Lblcr,
    Twos,
}

impl Sched {
    pub fn name(self) -> &'static str {
        match self {
            Sched::Rr => "rr",
            Sched::Wrr => "wrr",
            Sched::Sh(_) => "sh",
            Sched::Mh(_) => "mh",
            Sched::Lc => "lc",
            Sched::Wlc => "wlc",
            Sched::Sed => "sed",
            Sched::Nq => "nq",
            Sched::Fo => "fo",
            Sched::Ovf => "ovf",
            Sched::Dh => "dh",
            Sched::Lblc => "lblc",
            Sched::Lblcr => "lblcr",
            Sched::Twos => "twos",
        }
    }

    /// Every scheduler of the kernel by its `-s` name (with no flags),
    /// implemented or not.
    pub fn from_name(name: &str) -> Option<Sched> {
        Some(match name {
            "rr" => Sched::Rr,
            "wrr" => Sched::Wrr,
            "sh" => Sched::Sh(SchedFlags::NONE),
            "mh" => Sched::Mh(SchedFlags::NONE),
            "lc" => Sched::Lc,
            "wlc" => Sched::Wlc,
            "sed" => Sched::Sed,
            "nq" => Sched::Nq,
            "fo" => Sched::Fo,
            "ovf" => Sched::Ovf,
            "dh" => Sched::Dh,
            "lblc" => Sched::Lblc,
            "lblcr" => Sched::Lblcr,
            "twos" => Sched::Twos,
            _ => return None,
        })
    }

    /// Whether lbctl implements this scheduler (else `-s` refuses it as
    /// not supported yet).
    pub fn implemented(self) -> bool {
        !UNSUPPORTED_SCHEDULERS.contains(&self.name())
    }

    /// ldirectord's `scheduler=` (its check: lowercase letters), or the
    /// message for a scheduler lbctl does not implement.
    pub fn from_ldirectord(value: &str) -> Result<Sched, String> {
        match Sched::from_name(value) {
            Some(s) if s.implemented() => return Ok(s),
            Some(_) => {
                return Err(format!(
                    "scheduler {value} is not supported yet (supported: {})",
                    supported_names()
                ));
            }
            None => {}
        }
        match value {
            s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase()) => Err(format!(
                "scheduler {s}: no such scheduler (supported: {})",
                supported_names()
            )),
            _ => Err("invalid scheduler, should be only lowercase letters (a-z)".into()),
        }
    }

    /// This scheduler with the flags of `-b arg` (ldirectord's
    /// `schedflags=`), checked as ipvsadm checks them against its name.
    pub fn with_flags(self, arg: &str) -> Result<Sched, SchedFlagsError> {
        let flags = parse_sched_flags(self.name(), arg).map_err(SchedFlagsError::Bad)?;
        match self {
            Sched::Sh(_) => Ok(Sched::Sh(flags)),
            Sched::Mh(_) => Ok(Sched::Mh(flags)),
            s if !flags.any() => Ok(s),
            _ => Err(SchedFlagsError::Unsupported),
        }
    }

    /// lb-common's `SCHED_*` for this scheduler.
    pub fn id(self) -> u32 {
        match self {
            Sched::Rr => lb_common::SCHED_RR,
            Sched::Wrr => lb_common::SCHED_WRR,
            Sched::Sh(_) => lb_common::SCHED_SH,
            Sched::Mh(_) => lb_common::SCHED_MH,
            Sched::Lc => lb_common::SCHED_LC,
            Sched::Wlc => lb_common::SCHED_WLC,
            Sched::Sed => lb_common::SCHED_SED,
            Sched::Nq => lb_common::SCHED_NQ,
            Sched::Fo => lb_common::SCHED_FO,
            Sched::Ovf => lb_common::SCHED_OVF,
            Sched::Dh => lb_common::SCHED_DH,
            Sched::Lblc => lb_common::SCHED_LBLC,
            Sched::Lblcr => lb_common::SCHED_LBLCR,
            Sched::Twos => lb_common::SCHED_TWOS,
        }
    }

    /// The scheduler of `Service::sched` (wrr for an unknown one) with the
    /// flags of `Service::flags`.
    pub fn of(id: u32, flags: SchedFlags) -> Sched {
        match id {
            lb_common::SCHED_RR => Sched::Rr,
            lb_common::SCHED_SH => Sched::Sh(flags),
            lb_common::SCHED_MH => Sched::Mh(flags),
            lb_common::SCHED_LC => Sched::Lc,
            lb_common::SCHED_WLC => Sched::Wlc,
            lb_common::SCHED_SED => Sched::Sed,
            lb_common::SCHED_NQ => Sched::Nq,
            lb_common::SCHED_FO => Sched::Fo,
            lb_common::SCHED_OVF => Sched::Ovf,
            lb_common::SCHED_DH => Sched::Dh,
            lb_common::SCHED_LBLC => Sched::Lblc,
            lb_common::SCHED_LBLCR => Sched::Lblcr,
            lb_common::SCHED_TWOS => Sched::Twos,
            _ => Sched::Wrr,
        }
    }

    /// The scheduler flags (none for rr and wrr).
    pub fn flags(self) -> SchedFlags {
        match self {
            Sched::Sh(f) | Sched::Mh(f) => f,
            _ => SchedFlags::NONE,
        }
    }

    /// The flags as ipvsadm 1.31's `print_sched_flags` writes them: sh and
    /// mh name the first two bits after themselves and leave the third out
    /// (so `sh` with only `flag-3` prints an empty list, as ipvsadm does).
    pub fn flag_names(self) -> String {
        let f = self.flags();
        let mut names = Vec::new();
        let prefix = self.name();
        if f.fallback() {
            names.push(format!("{prefix}-fallback"));
        }
        if f.port() {
            names.push(format!("{prefix}-port"));
        }
        names.join(",")
    }
}

/// Everything `-A`/`-E` sets on a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub id: ServiceId,
    pub sched: Sched,
    /// `-p [timeout]`: persistence timeout in seconds.
    pub persistent: Option<u32>,
    /// `-M netmask`: an IPv4 mask, or for an IPv6 service the mask of its
    /// prefix length as an IPv6 address; all ones of the service's family
    /// (`addr::full_netmask`) when not given.
    pub netmask: IpAddr,
    /// `-o`: one-packet scheduling (UDP only).
    pub one_packet: bool,
}

/// Forwarding method of a real server (`-g`, `-i`, `-m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fwd {
    /// `-g`: direct routing.
    Route,
    /// `-i`: tunnelling, with its `--tun-*` settings.
    Tunnel(Tunnel),
    /// `-m`: masquerading (NAT).
    Masq,
}

/// A tunnelling real server's `--tun-type`, `--tun-port` and checksum
/// option (ipvsadm sends all three with every `-a`/`-e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunType,
    /// `--tun-port` (GUE only; 0 otherwise).
    pub port: u16,
    pub csum: TunCsum,
}

impl Tunnel {
    /// `-i` alone: IPIP.
    pub const IPIP: Tunnel = Tunnel {
        kind: TunType::Ipip,
        port: 0,
        csum: TunCsum::NoCsum,
    };
}

/// `--tun-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunType {
    Ipip,
    Gue,
    Gre,
}

/// `--tun-nocsum` (the default), `--tun-csum`, `--tun-remcsum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunCsum {
    NoCsum,
    Csum,
    RemCsum,
}

impl Fwd {
    /// As the `Forward` column prints it.
    pub fn name(self) -> &'static str {
        match self {
            Fwd::Route => "Route",
            Fwd::Tunnel(_) => "Tunnel",
            Fwd::Masq => "Masq",
        }
    }
    /// As `--save` prints it.
    pub fn switch(self) -> &'static str {
        match self {
            Fwd::Route => "-g",
            Fwd::Tunnel(_) => "-i",
            Fwd::Masq => "-m",
        }
    }
    /// Its words in a `Dest`: `fwd`, `tun_type`, `tun_flags`, `tun_port`.
    pub fn to_dest(self, d: &mut lb_common::Dest) {
        let (fwd, t) = match self {
            Fwd::Route => (lb_common::FWD_ROUTE, None),
            Fwd::Tunnel(t) => (lb_common::FWD_TUNNEL, Some(t)),
            Fwd::Masq => (lb_common::FWD_MASQ, None),
        };
        d.fwd = fwd;
        d.tun_type = match t.map(|t| t.kind) {
            Some(TunType::Gue) => lb_common::TUN_TYPE_GUE,
            Some(TunType::Gre) => lb_common::TUN_TYPE_GRE,
            _ => lb_common::TUN_TYPE_IPIP,
        };
        d.tun_flags = match t.map(|t| t.csum) {
            Some(TunCsum::Csum) => lb_common::TUN_F_CSUM,
            Some(TunCsum::RemCsum) => lb_common::TUN_F_REMCSUM,
            _ => lb_common::TUN_F_NOCSUM,
        };
        d.tun_port = t.map_or(0, |t| t.port).to_be_bytes();
    }
    /// Read back from a `Dest` (`to_dest`'s inverse).
    pub fn of_dest(d: &lb_common::Dest) -> Fwd {
        match d.fwd {
            lb_common::FWD_TUNNEL => Fwd::Tunnel(Tunnel {
                kind: match d.tun_type {
                    lb_common::TUN_TYPE_GUE => TunType::Gue,
                    lb_common::TUN_TYPE_GRE => TunType::Gre,
                    _ => TunType::Ipip,
                },
                port: u16::from_be_bytes(d.tun_port),
                csum: match d.tun_flags {
                    lb_common::TUN_F_CSUM => TunCsum::Csum,
                    lb_common::TUN_F_REMCSUM => TunCsum::RemCsum,
                    _ => TunCsum::NoCsum,
                },
            }),
            lb_common::FWD_MASQ => Fwd::Masq,
            _ => Fwd::Route,
        }
    }
}

/// Identity of a real server within a service: `-r addr[:port]`. Ordered
/// by family (IPv4 first), address, port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealId {
    pub addr: IpAddr,
    pub port: u16,
}

/// A real server's connection thresholds (`-x`/`--u-threshold`,
/// `-y`/`--l-threshold`; docs/SEMANTICS.md §5.8): 0 is "none", IPVS's
/// default. With an upper threshold the real takes no new connections once
/// its connections (active + inactive) reach it, until they fall below the
/// lower one (¾ of the upper when the lower is 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Thresholds {
    /// `-x`: 0..=[`MAX_THRESHOLD`].
    pub upper: u32,
    /// `-y`: 0..=[`MAX_THRESHOLD`], at most `upper` (the kernel refuses a
    /// lower threshold above the upper one).
    pub lower: u32,
}

impl Thresholds {
    /// No thresholds: what `-a`/`-e` without `-x`/`-y` sends (ipvsadm sends
    /// 0 for an omitted one, so `-e` without them clears them).
    pub const NONE: Thresholds = Thresholds { upper: 0, lower: 0 };

    /// Whether the kernel would take them (`ip_vs_add_dest`,
    /// `ip_vs_edit_dest`: a lower threshold above the upper one is ERANGE).
    pub fn valid(self) -> bool {
        self.lower <= self.upper && self.upper <= MAX_THRESHOLD && self.lower <= MAX_THRESHOLD
    }
}

/// Largest `-x`/`-y` (ipvsadm parses them with `string_to_number(optarg, 0,
/// INT_MAX)`).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// Everything `-a`/`-e` sets on a real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealSpec {
    pub id: RealId,
    pub fwd: Fwd,
    /// 0..=[`lb_common::MAX_WEIGHT`]; 0 = quiescent.
    pub weight: u32,
    /// `-x`/`-y`.
    pub thresholds: Thresholds,
}

/// Traffic counters as ipvsadm shows them (`--stats`). DR sees no replies, so
/// `outpkts`/`outbytes` stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// Rates as ipvsadm shows them (`--rate`), per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// One real server as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealView {
    pub spec: RealSpec,
    pub active_conns: u64,
    pub inactive_conns: u64,
    /// Templates bound to this real (PersistConn).
    pub persist_conns: u64,
    pub stats: Stats,
    pub rates: Rates,
}

/// One virtual service as a listing shows it; `reals` in list order (newest
/// first, as the kernel keeps them); the formatter sorts unless `--nosort`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub spec: ServiceSpec,
    pub stats: Stats,
    pub rates: Rates,
    pub reals: Vec<RealView>,
}

/// One row of `-L -c`: a connection entry or a persistence template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnView {
    /// "TCP", "UDP" (templates of TCP/UDP services too).
    pub proto: Proto,
    /// Remaining time in seconds (shown as MM:SS).
    pub expire_secs: u64,
    /// "ESTABLISHED", "UDP", "NONE", "ASSURED", ...
    pub state: &'static str,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
}

/// Flow timeouts as `--set tcp tcpfin udp` and `-L --timeout` show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ServiceId`'s order is ipvsadm's (`ipvs_cmp_services`): services
    /// without a mark first; at equal mark IPv4 before IPv6; then protocol,
    /// address, port. `-f 1` and `-f 1 -6` are distinct services.
    #[test]
    fn service_ids_order_as_ipvsadm_lists_them() {
        let id = |proto, addr: &str, port| ServiceId {
            proto,
            addr: addr.parse().unwrap(),
            port,
        };
        let want = vec![
            id(Proto::Tcp, "10.0.0.1", 80),
            id(Proto::Udp, "10.0.0.1", 53),
            id(Proto::Tcp, "2001:db8::1", 80),
            id(Proto::Udp, "2001:db8::1", 53),
            ServiceId::fwmark(1),
            ServiceId::fwmark_of_family(1, true),
            ServiceId::fwmark(2),
        ];
        let mut got = want.clone();
        got.reverse();
        got.sort();
        assert_eq!(got, want);
        assert_ne!(ServiceId::fwmark(1), ServiceId::fwmark_of_family(1, true));
        assert_eq!(ServiceId::fwmark_of_family(1, true).mark(), Some(1));
        assert!(ServiceId::fwmark_of_family(1, true).is_v6());
        assert!(!ServiceId::fwmark(u32::MAX).is_v6());
        assert_eq!(ServiceId::fwmark(u32::MAX).mark(), Some(u32::MAX));
    }
}

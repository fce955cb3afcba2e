//! Types shared by the XDP program (`lb-ebpf`) and the controller (`lb-user`).
//!
//! One source of truth for every map key and value. All types are `#[repr(C)]`,
//! have explicit padding and derive `bytemuck::Pod`, which refuses hidden padding
//! at compile time. No enums, `bool`s or `Option`s: every bit pattern is valid.
//!
//! Byte order: addresses and ports are in **network order** (`[u8; N]`), every
//! other integer is in host order. Every address is an [`Addr`] of 16 bytes:
//! IPv6, or IPv4 as its IPv4-mapped IPv6 address, so one packet path and one
//! set of maps serve both families (docs/SEMANTICS.md "IPv6"). Times are CLOCK_MONOTONIC nanoseconds: the
//! packet path reads them from jiffies with the controller's calibration
//! (`Settings::clock_ns_per_jiffy`), so they are exact to within one tick.
//!
//! Types and constants only: the few `const fn`s here are computations both
//! sides must do identically (each says so); the scheduler tables are built by
//! the controller (lb-user's `sched_table`) and read by the packet path
//! (lb-ebpf's `schedulers`).
//!
//! LVS words: *service* (virtual service), *dest* (a real server of one service),
//! *conn* (connection entry), *template* (persistence template), *quiescent*
//! (weight 0).
#![no_std]

use bytemuck::{Pod, Zeroable};

mod fwmark;
pub use fwmark::*;

pub mod decap;

/// Bumped whenever a map type below changes size or meaning. The controller
/// refuses pinned maps of another layout (see `lb-user`'s pin check).
pub const LAYOUT_VERSION: u32 = 13;

// ---------------------------------------------------------------------------
// Map names (at most 15 characters: the kernel keeps no more) and sizes.
// ---------------------------------------------------------------------------

pub const MAP_SERVICES: &str = "SERVICES";
pub const MAP_DESTS: &str = "DESTS";
pub const MAP_CONNS: &str = "CONNS";
pub const MAP_TEMPLATES: &str = "TEMPLATES";
pub const MAP_SCHED: &str = "SCHED";
pub const MAP_SETTINGS: &str = "SETTINGS";
pub const MAP_STATS: &str = "STATS";
pub const MAP_SVC_STATS: &str = "SVC_STATS";
pub const MAP_DEST_STATS: &str = "DEST_STATS";
pub const MAP_REPLY_RATE: &str = "REPLY_RATE";
pub const MAP_IFACES: &str = "IFACES";
pub const MAP_VIPS: &str = "VIPS";
pub const MAP_SVC_DESTS: &str = "SVC_DESTS";
pub const MAP_SH_TABLES: &str = "SH_TABLES";
pub const MAP_MH_TABLES: &str = "MH_TABLES";
pub const MAP_DEST_CONNS: &str = "DEST_CONNS";
pub const MAP_LBLC: &str = "LBLC";
pub const MAP_SWEEPER: &str = "SWEEPER";
pub const MAP_FWMARK: &str = "FWMARK";
pub const MAP_NAT_REPLIES: &str = "NAT_REPLIES";
pub const MAP_MASQ_REALS: &str = "MASQ_REALS";
/// Every map the program uses, in a fixed order (pinning, checks, listings).
pub const MAP_NAMES: [&str; 21] = [
    MAP_SERVICES,
    MAP_DESTS,
    MAP_SVC_DESTS,
    MAP_SH_TABLES,
    MAP_MH_TABLES,
    MAP_CONNS,
    MAP_TEMPLATES,
    MAP_SCHED,
    MAP_SETTINGS,
    MAP_STATS,
    MAP_SVC_STATS,
    MAP_DEST_STATS,
    MAP_DEST_CONNS,
    MAP_LBLC,
    MAP_SWEEPER,
    MAP_REPLY_RATE,
    MAP_IFACES,
    MAP_VIPS,
    MAP_FWMARK,
    MAP_NAT_REPLIES,
    MAP_MASQ_REALS,
];
/// Name of the XDP program in the object.
pub const PROGRAM_NAME: &str = "lb_xdp";
/// The program `lbctl attach` runs once to arm the sweeper's timer.
pub const SWEEP_ARM_PROGRAM: &str = "lb_sweep_arm";

/// Default number of virtual services (entries of `SERVICES`, indices of
/// `SCHED`, `SVC_STATS`); `lbctl attach --services` changes it.
pub const DEFAULT_SERVICES: u32 = 16384;
/// Default number of real-server slots of all services together (indices of
/// `DESTS`, `DEST_STATS`), removed ones kept for their connections (the LVS
/// "trash") included; `lbctl attach --reals` changes it.
pub const DEFAULT_REALS: u32 = 262_144;
/// Bounds of `--services` and `--reals` (the kernel preallocates every
/// entry; these keep a typo from asking for terabytes).
pub const MAX_SERVICES_LIMIT: u32 = 1 << 20;
pub const MAX_REALS_LIMIT: u32 = 1 << 22;
/// Real servers of one service. IPVS has no limit; here a service's dest
/// list is a block of `SVC_DESTS` and its weight tree is `SVC_TREE_DEPTH`
/// levels deep, the bound of the packet path's loops.
pub const MAX_SERVICE_DESTS: usize = 1 << SVC_TREE_DEPTH;
pub const SVC_TREE_DEPTH: usize = 16;
/// Entries of `SVC_DESTS` per real-server slot: a service of n reals takes a
/// block of `2 * next_power_of_two(n)` entries (at most 4n), and a change
/// writes a new block before the old one is freed (§5 of
/// docs/ARCHITECTURE.md), so twice that covers every service at once.
pub const SVC_DESTS_PER_REAL: u32 = 8;
/// Largest weight of a real server (IPVS keeps weights in an `int`; ipvsadm
/// accepts 0..=65535 for `-w`). 0 makes the real quiescent.
pub const MAX_WEIGHT: u32 = 65535;
/// ipvsadm's `MAX_TIMEOUT`: 31 days in seconds, the upper bound of a
/// persistence timeout (`-p`, ldirectord's `persistent`) and of `--set`.
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// Default size of the connection table (a preallocated hash: a full table
/// refuses new flows, it never evicts); `lbctl attach --conns` changes it.
pub const DEFAULT_CONNS: u32 = 1 << 20;
/// Default size of the template table (LRU); `lbctl attach --templates` changes it.
pub const DEFAULT_TEMPLATES: u32 = 1 << 20;

// ---------------------------------------------------------------------------
// Protocols and address families.
// ---------------------------------------------------------------------------

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

// ---------------------------------------------------------------------------
// Addresses of both families
// ---------------------------------------------------------------------------

/// An address as the maps hold it: an IPv6 address, or an IPv4 address
/// `a.b.c.d` as its IPv4-mapped IPv6 address `::ffff:a.b.c.d` (which never
/// appears on the wire: the packet path passes IPv6 packets that carry
/// one). Four 32-bit words, each holding its four bytes of the address in
/// network order as they lie in memory (the kernel's `in6_u.u6_addr32`):
/// aligned, so the packet path copies and compares it a word at a time.
/// The family of a key is the family of its addresses.
pub type Addr = [u32; 4];

/// The third word of an IPv4-mapped address (bytes `00 00 ff ff`).
const V4_MAPPED_WORD: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);

/// The `Addr` of an IPv4 address (its bytes in network order).
#[inline(always)]
pub const fn addr_v4(a: [u8; 4]) -> Addr {
    [0, 0, V4_MAPPED_WORD, u32::from_ne_bytes(a)]
}

/// Whether an `Addr` holds an IPv4 address.
#[inline(always)]
pub const fn addr_is_v4(a: &Addr) -> bool {
    a[0] == 0 && a[1] == 0 && a[2] == V4_MAPPED_WORD
}

/// The last four bytes of an `Addr`: the IPv4 address when it holds one.
#[inline(always)]
pub const fn addr_low32(a: &Addr) -> [u8; 4] {
    a[3].to_ne_bytes()
}

/// The `Addr` of the 16 bytes of an address in network order.
pub const fn addr_from_octets(b: [u8; 16]) -> Addr {
    [
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
    ]
}

/// The 16 bytes, network order, of an `Addr`.
pub const fn addr_octets(a: &Addr) -> [u8; 16] {
    let (w0, w1, w2, w3) = (
        a[0].to_ne_bytes(),
        a[1].to_ne_bytes(),
        a[2].to_ne_bytes(),
        a[3].to_ne_bytes(),
    );
    [
        w0[0], w0[1], w0[2], w0[3], w1[0], w1[1], w1[2], w1[3], w2[0], w2[1], w2[2], w2[3], w3[0],
        w3[1], w3[2], w3[3],
    ]
}

/// The 32 bits IPVS's hashes take of an address (sh, mh, dh, lblc, lblcr
/// and the VIP filter): `ntohl` of the IPv4 address, or of the XOR of the
/// four 32-bit words of an IPv6 address (the kernel's `addr_fold`).
#[inline(always)]
pub const fn addr_fold(a: &Addr) -> u32 {
    if addr_is_v4(a) {
        return u32::from_be(a[3]);
    }
    u32::from_be(a[0] ^ a[1] ^ a[2] ^ a[3])
}

/// `a & mask`, word by word.
#[inline(always)]
pub const fn addr_masked(a: &Addr, mask: &Addr) -> Addr {
    [
        a[0] & mask[0],
        a[1] & mask[1],
        a[2] & mask[2],
        a[3] & mask[3],
    ]
}

/// The persistence netmask of `-M`: an IPv4 mask as `::ffff:m.m.m.m`
/// (ANDed with an IPv4-mapped address it keeps the mapping), an IPv6
/// prefix length `plen` as the mask of its first `plen` bits.
pub const fn netmask_v6(plen: u8) -> Addr {
    let mut m = [0u32; 4];
    let mut i = 0;
    while i < 4 {
        let bits = plen as i32 - 32 * i as i32;
        let host = if bits >= 32 {
            u32::MAX
        } else if bits <= 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        m[i] = host.to_be();
        i += 1;
    }
    m
}

// ---------------------------------------------------------------------------
// SERVICES: HashMap<ServiceKey, Service>
// ---------------------------------------------------------------------------

/// Key of `SERVICES`: one virtual service (protocol, VIP, port). Port 0 is an
/// "all ports" service (persistent only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct ServiceKey {
    pub addr: Addr,
    pub port: [u8; 2],
    pub proto: u8,
    pub _pad: u8,
}
const _: () = assert!(size_of::<ServiceKey>() == 20);

/// Service flag: persistent (`-p`).
pub const SVC_F_PERSISTENT: u32 = 1 << 0;
/// Service flag: a port-0 ("all ports") service; its templates use port 0.
pub const SVC_F_PORT0: u32 = 1 << 1;

/// Scheduler: round robin.
pub const SCHED_RR: u32 = 0;
/// Scheduler: weighted round robin.
pub const SCHED_WRR: u32 = 1;
/// Scheduler: source hashing (`ip_vs_sh.c`).
pub const SCHED_SH: u32 = 2;
/// Scheduler: Maglev hashing (`ip_vs_mh.c`).
pub const SCHED_MH: u32 = 3;
/// Scheduler: least connection (`ip_vs_lc.c`).
pub const SCHED_LC: u32 = 4;
/// Scheduler: weighted least connection (`ip_vs_wlc.c`), ipvsadm's default.
pub const SCHED_WLC: u32 = 5;
/// Scheduler: shortest expected delay (`ip_vs_sed.c`).
pub const SCHED_SED: u32 = 6;
/// Scheduler: never queue (`ip_vs_nq.c`).
pub const SCHED_NQ: u32 = 7;
/// Scheduler: weighted failover (`ip_vs_fo.c`).
pub const SCHED_FO: u32 = 8;
/// Scheduler: weighted overflow (`ip_vs_ovf.c`).
pub const SCHED_OVF: u32 = 9;
/// Scheduler: destination hashing (`ip_vs_dh.c`).
pub const SCHED_DH: u32 = 10;
/// Scheduler: locality-based least connection (`ip_vs_lblc.c`).
pub const SCHED_LBLC: u32 = 11;
/// Scheduler: locality-based least connection with replication
/// (`ip_vs_lblcr.c`).
pub const SCHED_LBLCR: u32 = 12;
/// Scheduler: weighted random twos choice (`ip_vs_twos.c`).
pub const SCHED_TWOS: u32 = 13;

/// Service flags: IPVS's three scheduler flags (`IP_VS_SVC_F_SCHED1..3`,
/// ipvsadm's `-b`), kept as given. sh and mh read the first as "fallback"
/// (`sh-fallback`, `mh-fallback`) and the second as "hash the source port
/// too" (`sh-port`, `mh-port`); other schedulers ignore them.
pub const SVC_F_SCHED1: u32 = 1 << 2;
pub const SVC_F_SCHED2: u32 = 1 << 3;
pub const SVC_F_SCHED3: u32 = 1 << 4;
/// Service flag: one-packet scheduling (`-o`, `IP_VS_SVC_F_ONEPACKET`):
/// each UDP datagram is scheduled on its own and no conn entry is kept.
pub const SVC_F_ONEPACKET: u32 = 1 << 5;
/// All three scheduler flags.
pub const SVC_F_SCHED_MASK: u32 = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3;
/// sh and mh: an unavailable real makes the lookup probe other buckets.
pub const SVC_F_SCHED_FALLBACK: u32 = SVC_F_SCHED1;
/// sh and mh: the source port is hashed with the source address.
pub const SVC_F_SCHED_PORT: u32 = SVC_F_SCHED2;

/// One entry of `SVC_DESTS`: in a service's block, a real server of its dest
/// list (a leaf of its weight tree) or an inner node of that tree.
///
/// A service whose list holds `n` dests owns the block
/// `[Service::list, Service::list + 2 * cap)` with `cap =
/// n.next_power_of_two()` (at least 1). Entry `cap + pos` is the dest at
/// position `pos` of the list, in LVS order (most recently added first);
/// entries `cap + n ..` are empty (weight 0). Entry `i` in `1..cap` is an
/// inner node whose `weight` is the largest weight below it (entries `2i`
/// and `2i + 1`) and whose `dest` is `NO_DEST`; entry 0 is unused. So "the
/// first dest at or after position p with weight >= w" (what rr and wrr
/// look for) takes at most `2 * SVC_TREE_DEPTH` reads, whatever the number
/// of reals, with no loop over them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ServiceDest {
    /// Index in `DESTS` (`NO_DEST` for an inner node or an empty leaf).
    pub dest: u32,
    /// Current weight (0 = quiescent, never picked for a new flow); for an
    /// inner node, the largest weight below it.
    pub weight: u32,
}
const _: () = assert!(size_of::<ServiceDest>() == 8);

/// "No dest" in `SVC_DESTS` and in the schedulers' cursors.
pub const NO_DEST: u32 = u32::MAX;

/// Value of `SERVICES`. Replaced whole by the controller on every change
/// (and its list block written before, as a new block), so the datapath
/// never sees a half-updated list.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Service {
    /// Index in `SCHED` and `SVC_STATS`.
    pub id: u32,
    /// `SVC_F_*`.
    pub flags: u32,
    /// `SCHED_*`.
    pub sched: u32,
    /// Persistence timeout in seconds (meaningful with `SVC_F_PERSISTENT`).
    pub timeout: u32,
    /// Persistence netmask, network order: the client's address ANDed with
    /// it keys its templates (`netmask_v6` for an IPv6 service).
    pub netmask: Addr,
    /// Unique per service creation (and scheduler change): a per-CPU
    /// scheduler state of another epoch starts afresh.
    pub epoch: u32,
    /// Bumped on every change of the dest list or a weight.
    pub generation: u32,
    /// Number of dests in the list.
    pub ndests: u32,
    /// First entry of the service's block in `SVC_DESTS` (see `ServiceDest`).
    pub list: u32,
    /// Leaves of the block: a power of two `>= ndests` (at least 1).
    pub cap: u32,
    /// wrr: gcd of the positive weights (1 if none).
    pub di: u32,
    /// wrr: max weight − (di − 1); 0 when no dest may be picked.
    pub mw: u32,
    /// wrr: the `cw` a CPU that has scheduled nothing yet starts with (the
    /// kernel's `cw` replayed over every change since the service was made).
    pub cw_seed: u32,
    /// sh, mh: the key of the service's table in `SH_TABLES` or `MH_TABLES`
    /// (`2 * id` or `2 * id + 1`: each change writes the other one, then
    /// this value).
    pub table: u32,
    /// The mark of a fwmark service (its templates are keyed by it), else 0.
    pub fwmark: u32,
}
const _: () = assert!(size_of::<Service>() == 72);

// ---------------------------------------------------------------------------
// DESTS: Array<Dest>
// ---------------------------------------------------------------------------

/// Dest flag: the slot belongs to a (service, real) pair.
pub const DEST_F_IN_USE: u32 = 1 << 0;
/// Dest flag: the dest is in its service (cleared by `-d`; the slot is kept, as
/// the kernel keeps a removed dest in its trash, so that a re-add resumes flows).
pub const DEST_F_AVAILABLE: u32 = 1 << 1;
/// Dest flag: `mac`/`smac`/`ifindex` hold a resolved next hop.
pub const DEST_F_RESOLVED: u32 = 1 << 2;
/// Dest flag (set by the program): it logged that the next hop is unknown.
pub const DEST_F_WARNED: u32 = 1 << 3;

/// Forwarding method: direct routing (`-g`, "Route").
pub const FWD_ROUTE: u8 = 0;
/// Forwarding method: tunnelling (`-i`, "Tunnel"): the packet is
/// encapsulated towards the real server (`Dest::tun_type`).
pub const FWD_TUNNEL: u8 = 1;
/// Forwarding method: masquerading (`-m`, "Masq"): the destination is
/// rewritten to the real server's address and port, its replies come back
/// through the director and are rewritten to come from the VIP.
pub const FWD_MASQ: u8 = 2;

/// `Dest::tun_type` (ipvsadm's `--tun-type`, the kernel's
/// `IP_VS_CONN_F_TUNNEL_TYPE_*`): IPIP (IPv4-in-IPv4, IPv6-in-IPv6, and the
/// mixed pairs), the default.
pub const TUN_TYPE_IPIP: u8 = 0;
/// GUE: outer UDP to `Dest::tun_port`, a 4-byte GUE header.
pub const TUN_TYPE_GUE: u8 = 1;
/// GRE: a 4-byte GRE header (8 with `--tun-csum`).
pub const TUN_TYPE_GRE: u8 = 2;
/// `Dest::tun_flags` (the kernel's `IP_VS_TUNNEL_ENCAP_FLAG_*`, an index:
/// ipvsadm prints `-c`, `+c`, `r+c`): no outer checksum (the default).
pub const TUN_F_NOCSUM: u8 = 0;
/// `--tun-csum`: an outer UDP (GUE) or GRE checksum.
pub const TUN_F_CSUM: u8 = 1;
/// `--tun-remcsum` (GUE only): on forwarded packets the same as `TUN_F_CSUM`
/// on the wire (docs/SEMANTICS.md).
pub const TUN_F_REMCSUM: u8 = 2;

/// Value of `DESTS`: one real server of one service.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Dest {
    pub addr: Addr,
    pub port: [u8; 2],
    /// `FWD_*`.
    pub fwd: u8,
    pub _pad0: u8,
    /// The service this dest belongs to.
    pub svc: ServiceKey,
    /// `DEST_F_*`.
    pub flags: u32,
    pub weight: u32,
    /// Bumped when the slot is given to another real, or when the dest's flows
    /// are flushed (`-d` with `expire_nodest_conn=1`). Conns and templates carry
    /// the generation they were bound to; another one means "no such dest".
    pub generation: u32,
    /// Templates carry the epoch they were made in; bumping it invalidates all
    /// templates of this dest at once, whatever their number.
    pub tmpl_epoch: u32,
    /// Egress interface; 0 = the interface the packet came in on (`XDP_TX`).
    pub ifindex: u32,
    /// Place of the dest in its service's list counted from the tail (0 =
    /// the oldest; its position is `ndests - 1 - rank`): the rr cursor
    /// follows its dest by it. Adding a dest (at the head) changes no rank.
    /// Meaningless for a removed dest.
    pub rank: u32,
    /// Next-hop MAC address of the real server.
    pub mac: [u8; 6],
    /// Source MAC for frames redirected out of `ifindex` (unused with `XDP_TX`).
    pub smac: [u8; 6],
    /// The last weight that was not 0 (0 for a dest added with weight 0),
    /// as the kernel's `last_weight`: what mh fills its table from.
    pub last_weight: u32,
    /// Upper connection threshold (`-x`, 0 = none): the dest is overloaded
    /// once its conns (active + inactive) reach it (docs/SEMANTICS.md §5.8).
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`, 0 = ¾ of the upper).
    pub l_threshold: u32,
    /// `FWD_TUNNEL`: the outer source address, the director's address on
    /// the route to the real server (of the real's family). Else zero.
    pub saddr: Addr,
    /// The MTU of the route to the real server (0: unknown, no check): the
    /// limit of `-i` (less the encapsulation) and `-m` packets.
    pub mtu: u32,
    /// `FWD_TUNNEL`: `TUN_TYPE_*`.
    pub tun_type: u8,
    /// `FWD_TUNNEL`: `TUN_F_*` (GUE and GRE).
    pub tun_flags: u8,
    /// `FWD_TUNNEL` + `TUN_TYPE_GUE`: the outer UDP destination port,
    /// network order.
    pub tun_port: [u8; 2],
}
const _: () = assert!(size_of::<Dest>() == 112);

// ---------------------------------------------------------------------------
// DEST_CONNS: Array<DestConns>, indexed like DESTS
// ---------------------------------------------------------------------------

/// Value of `DEST_CONNS`: the live connection counts of a `DESTS` slot, as
/// IPVS's `activeconns`/`inactconns` and its OVERLOAD flag. Written only by
/// the program (the packet path and the expiry sweeper), with atomic adds on
/// a conn's creation, its active⇄inactive transitions and its removal, so
/// they equal the conns of the slot that exist in `CONNS`
/// (docs/SEMANTICS.md §6.4). Read by the counting schedulers and `-L`.
/// The controller writes an entry only when the tables are made or rebuilt.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DestConns {
    /// Conns in an active state (ActiveConn; `conn_state_is_active`).
    pub active: u32,
    /// Conns in another state (InActConn; UDP conns always).
    pub inactive: u32,
    /// The upper threshold under which the dest became overloaded (its
    /// conns reached `Dest::u_threshold`), 0 while it is not; cleared when
    /// its conns fall below the lower threshold. Read through
    /// [`dest_overloaded`], which also honours an `-e` that removed or
    /// raised the threshold since.
    pub overloaded: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<DestConns>() == 16);

/// Whether a dest is overloaded now, from `DestConns::overloaded` (the upper
/// threshold it was set under) and the dest's current `u_threshold`: as the
/// kernel's `__ip_vs_update_dest`, removing the upper threshold or raising
/// it clears the overload at once.
pub const fn dest_overloaded(set_under: u32, u_threshold: u32) -> bool {
    set_under != 0 && u_threshold != 0 && u_threshold <= set_under
}

impl DestConns {
    /// These counts with `overloaded` resolved to 1 (overloaded now, by
    /// [`dest_overloaded`]) or 0, what the schedulers read. `upper` gives
    /// the dest's current upper threshold; it is read only when the dest
    /// was overloaded (rarely), by the packet path and `lbctl whereis`
    /// alike.
    #[inline(always)]
    pub fn resolved(mut self, upper: impl FnOnce() -> u32) -> DestConns {
        if self.overloaded != 0 {
            self.overloaded = dest_overloaded(self.overloaded, upper()) as u32;
        }
        self
    }

    /// `ip_vs_dest_conn_overhead`: active × 256 + inactive, what lc, wlc,
    /// lblc, lblcr and twos compare. Counts are read while other CPUs add
    /// to them, so a transiently negative count (a removal seen before its
    /// creation) reads as 0.
    pub const fn overhead(&self) -> u32 {
        (self.active_now() << 8).wrapping_add(self.inactive_now())
    }
    /// ActiveConn, never negative.
    pub const fn active_now(&self) -> u32 {
        if (self.active as i32) < 0 {
            0
        } else {
            self.active
        }
    }
    /// InActConn, never negative.
    pub const fn inactive_now(&self) -> u32 {
        if (self.inactive as i32) < 0 {
            0
        } else {
            self.inactive
        }
    }
}

// ---------------------------------------------------------------------------
// CONNS: LruHashMap<ConnKey, Conn>
// ---------------------------------------------------------------------------

/// Key of `CONNS`: the flow as the client sent it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ConnKey {
    pub caddr: Addr,
    pub vaddr: Addr,
    pub cport: [u8; 2],
    pub vport: [u8; 2],
    pub proto: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(size_of::<ConnKey>() == 40);

// ---------------------------------------------------------------------------
// NAT_REPLIES: HashMap<NatKey, NatReply>
// ---------------------------------------------------------------------------

/// Key of `NAT_REPLIES`: a masqueraded (`-m`) flow as its real server's
/// replies carry it, RIP:rport -> CIP:cport (IPVS's `ip_vs_conn_out_get`
/// matches the same tuple; the VIP is not part of it). Laid out as
/// [`ConnKey`] with source and destination in its places, so a parsed
/// packet's key is the reply key of the packet (docs/SEMANTICS.md §19).
/// The value is a [`NatReply`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct NatKey {
    /// The real server's address (the reply's source).
    pub raddr: Addr,
    /// The client's address (the reply's destination).
    pub caddr: Addr,
    pub rport: [u8; 2],
    pub cport: [u8; 2],
    pub proto: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(size_of::<NatKey>() == size_of::<ConnKey>());

/// Value of `NAT_REPLIES`: the conn's key in `CONNS` and the way its
/// request came in, learned from the request that made the conn, so that
/// the replies go back the same way without a route look-up
/// (docs/SEMANTICS.md §19).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NatReply {
    pub conn: ConnKey,
    /// The interface the request came in on; 0 = nothing learned (the
    /// reply is routed by the kernel's FIB).
    pub ifindex: u32,
    /// The request's Ethernet source: the client's previous hop, the
    /// reply's destination MAC.
    pub hop_mac: [u8; 6],
    /// The request's Ethernet destination: our MAC on that interface, the
    /// reply's source MAC.
    pub our_mac: [u8; 6],
}
const _: () = assert!(size_of::<NatReply>() == 56);

/// Key of `MASQ_REALS`: a `-m` real server as its replies come from it
/// (address, port, the service's protocol; 0 for a fwmark service's,
/// which serves both). The value is how many `-m` dests have it (IPVS's
/// `ip_vs_has_real_service`, for `nat_icmp_send`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct RealKey {
    pub addr: Addr,
    pub port: [u8; 2],
    pub proto: u8,
    pub _pad: u8,
}
const _: () = assert!(size_of::<RealKey>() == 20);

/// Conn flag: created under a persistence template.
pub const CONN_F_CONTROLLED: u8 = 1 << 0;
/// Conn flag: a controlled TCP conn counted in its template's `open` (until
/// it reaches a closing state).
pub const CONN_F_OPEN: u8 = 1 << 1;
/// Conn flag: made for a port-0 service (its template key has port 0).
pub const CONN_F_PORT0: u8 = 1 << 2;
/// Conn flag: made for a fwmark service (its template key is the mark's).
pub const CONN_F_FWMARK: u8 = 1 << 3;

/// Connection states, numbered as in the kernel (`IP_VS_TCP_S_*`), plus UDP.
pub const CONN_S_NONE: u8 = 0;
pub const CONN_S_ESTABLISHED: u8 = 1;
pub const CONN_S_SYN_SENT: u8 = 2;
pub const CONN_S_SYN_RECV: u8 = 3;
pub const CONN_S_FIN_WAIT: u8 = 4;
pub const CONN_S_TIME_WAIT: u8 = 5;
pub const CONN_S_CLOSE: u8 = 6;
pub const CONN_S_CLOSE_WAIT: u8 = 7;
pub const CONN_S_LAST_ACK: u8 = 8;
pub const CONN_S_LISTEN: u8 = 9;
pub const CONN_S_SYNACK: u8 = 10;
pub const CONN_S_UDP: u8 = 11;
pub const CONN_S_COUNT: usize = 12;
/// Names as `ipvsadm -L -c` prints them.
pub const CONN_STATE_NAMES: [&str; CONN_S_COUNT] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
    "UDP",
];
/// IPVS default timeouts in seconds, by state (§6.1).
pub const DEFAULT_TIMEOUTS: [u32; CONN_S_COUNT] =
    [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300];

/// Whether a TCP state is one of the closing states (the connection is on its
/// way out: FIN or RST seen). Part of the meaning of `CONN_S_*`.
pub const fn conn_state_is_closing(state: u8) -> bool {
    matches!(
        state,
        CONN_S_FIN_WAIT | CONN_S_TIME_WAIT | CONN_S_CLOSE | CONN_S_CLOSE_WAIT | CONN_S_LAST_ACK
    )
}

/// Whether a state counts as an active connection (ActiveConn) or not
/// (InActConn). Part of the meaning of `CONN_S_*`.
pub const fn conn_state_is_active(state: u8) -> bool {
    matches!(
        state,
        CONN_S_ESTABLISHED | CONN_S_SYN_SENT | CONN_S_SYN_RECV | CONN_S_SYNACK
    )
}

/// Value of `CONNS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Conn {
    /// When the last packet refreshed the entry.
    pub last_seen: u64,
    /// The expiry this conn last pushed into its template (0: none yet).
    pub tmpl_pushed: u64,
    /// Index in `DESTS`.
    pub dest: u32,
    /// `DESTS[dest].generation` when the conn was bound.
    pub dest_gen: u32,
    /// Timeout of the current state in seconds, fixed at the last refresh
    /// (so `--set` applies from each entry's next packet, as in IPVS).
    pub timeout: u32,
    /// `Service::id` of the service the conn was scheduled for (counters).
    pub svc: u32,
    /// `CONN_S_*`.
    pub state: u8,
    /// `CONN_F_*`.
    pub flags: u8,
    /// `FWD_*`: the forwarding method, bound when the conn is made (as
    /// IPVS's `ip_vs_bind_xmit`): editing a dest's method changes only new
    /// conns; a tunnel's details are read from the dest at each packet.
    pub fwd: u8,
    pub _pad: u8,
    /// Which `DEST_CONNS` count of `dest` holds this conn (`COUNTED_*`).
    /// Changed only by atomic exchanges, so that of two CPUs moving or
    /// removing the same conn at once exactly one moves its count.
    pub counted: u32,
}
const _: () = assert!(size_of::<Conn>() == 40);

/// `Conn::counted`: the conn is in no count (being removed, or a
/// one-packet entry that never is).
pub const COUNTED_NONE: u32 = 0;
/// `Conn::counted`: the conn is in its dest's `DestConns::active`.
pub const COUNTED_ACTIVE: u32 = 1;
/// `Conn::counted`: the conn is in its dest's `DestConns::inactive`.
pub const COUNTED_INACTIVE: u32 = 2;

/// The count a conn in `state` belongs to (IPVS's `IP_VS_CONN_F_INACTIVE`
/// and `tcp_state_active`; a UDP conn is always inactive).
pub const fn counted_for(state: u8) -> u32 {
    if conn_state_is_active(state) {
        COUNTED_ACTIVE
    } else {
        COUNTED_INACTIVE
    }
}

// ---------------------------------------------------------------------------
// SWEEPER: Array<(bpf_timer, SweepStats), 1>
// ---------------------------------------------------------------------------

/// How often the sweeper walks `CONNS` (a BPF timer, armed by `lbctl
/// attach`): an expired conn leaves the table, and its dest's count, at most
/// this long after its expiry, while a sweep takes less than
/// 1/`SWEEP_DUTY` of it.
pub const SWEEP_INTERVAL_NS: u64 = NS_PER_SEC;
/// A sweep costs about 100 ns per entry (a walk of the whole table, memory
/// bound), in the timer's softirq on one CPU. When the last one took longer
/// than 1/`SWEEP_DUTY` of `SWEEP_INTERVAL_NS`, the next one waits
/// `SWEEP_DUTY` times as long as it took, so sweeping never uses more than
/// 2% of a CPU: about 200,000 live entries are swept every second, 1,000,000
/// about every 5 s.
pub const SWEEP_DUTY: u64 = 50;

/// The wait before the next sweep after one that took `took_ns`.
pub const fn sweep_interval(took_ns: u64) -> u64 {
    // No `saturating_mul`: BPF has no 128-bit multiply.
    let stretched = if took_ns > u64::MAX / SWEEP_DUTY {
        u64::MAX
    } else {
        took_ns * SWEEP_DUTY
    };
    if stretched > SWEEP_INTERVAL_NS {
        stretched
    } else {
        SWEEP_INTERVAL_NS
    }
}

/// The sweeper's own counters, after the kernel's 16-byte `struct
/// bpf_timer` in the value of `SWEEPER` (the program declares the value
/// with the timer; the controller reads it as [`SweeperValue`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SweepStats {
    /// Sweeps run since the timer was armed.
    pub runs: u64,
    /// Conns the sweeper removed (expired, or of a flushed dest).
    pub expired: u64,
    /// Entries the last sweep visited.
    pub visited: u64,
    /// How long the last sweep took, in ns.
    pub took_ns: u64,
    /// The wait before the next sweep (`sweep_interval`), in ns.
    pub interval_ns: u64,
    /// Set by the packet path when a new flow found `CONNS` full; the next
    /// sweep clears it and also removes stale half-open entries.
    pub full: u64,
    /// Half-open entries removed because the table was full (the kernel's
    /// `drop_entry` victims: SYN_RECV, idle for `HALF_OPEN_GRACE_NS`).
    pub half_open_dropped: u64,
}

/// The value of `SWEEPER` as the controller sees it: the timer's bytes
/// (opaque; the kernel never shows them) and the stats.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SweeperValue {
    pub timer: [u64; 2],
    pub stats: SweepStats,
}
const _: () = assert!(size_of::<SweeperValue>() == 72);

/// When the table was found full, a sweep also removes the SYN_RECV entries
/// idle for this long: handshakes a client left unfinished (a SYN flood's),
/// as IPVS's `drop_entry` drops them under memory pressure. A real client
/// completes its handshake within a round trip.
pub const HALF_OPEN_GRACE_NS: u64 = NS_PER_SEC;

impl Conn {
    /// Absolute expiry time in ns: the meaning of `last_seen` + `timeout`,
    /// for the packet path and the listings alike.
    pub const fn expires(&self) -> u64 {
        self.last_seen
            .wrapping_add(self.timeout as u64 * NS_PER_SEC)
    }
}

// ---------------------------------------------------------------------------
// TEMPLATES: LruHashMap<TemplateKey, Template>
// ---------------------------------------------------------------------------

/// Key of `TEMPLATES`: (protocol, client address & netmask, VIP, service port
/// or 0 for a port-0 service). The client port is always 0 (§2.1). A fwmark
/// service's templates have protocol 0, the mark as `vaddr` and port 0
/// (docs/SEMANTICS.md §16).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct TemplateKey {
    pub caddr: Addr,
    pub vaddr: Addr,
    pub vport: [u8; 2],
    pub proto: u8,
    pub _pad: u8,
}
const _: () = assert!(size_of::<TemplateKey>() == 36);

/// Template state `NONE` (just made) and `ASSURED` (a controlled TCP conn
/// reached ESTABLISHED).
pub const TMPL_S_NONE: u8 = 0;
pub const TMPL_S_ASSURED: u8 = 1;

/// Value of `TEMPLATES`.
///
/// Lifetime (docs/SEMANTICS.md §2.4): the kernel expires a template at its
/// `deadline` (last refresh + timeout) unless connections it controls are
/// still alive, and then checks again every 60 s. Here every controlled conn
/// pushes `expires` to the first such check after its own expiry, and the
/// last open TCP conn to close sets it back to what its closing state needs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Template {
    /// Absolute expiry in ns (deadline, postponed for live conns).
    pub expires: u64,
    /// Last refresh by a new conn + `timeout`.
    pub deadline: u64,
    pub dest: u32,
    pub dest_gen: u32,
    /// `DESTS[dest].tmpl_epoch` when made; another value means invalidated.
    pub epoch: u32,
    /// The service's persistence timeout when the template was made (§2.3).
    pub timeout: u32,
    /// Controlled TCP conns not yet in a closing state (`CONN_F_OPEN`).
    pub open: u32,
    /// `TMPL_S_*`.
    pub state: u8,
    /// `TMPL_F_*`.
    pub flags: u8,
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<Template>() == 40);

/// An invalidated template (docs/SEMANTICS.md §3.2): a new connection of its
/// client found it unusable, so, as the kernel's `ip_vs_check_template`
/// rehashes it with ports 65535, it was moved to the key with `vport`
/// [`TMPL_INVALID_PORT`] and flagged. It is never used again and stays,
/// listed with ports 65535, until it expires.
pub const TMPL_F_INVALID: u8 = 1;

/// The port an invalidated template is listed with and keyed by (the
/// kernel's `htons(0xffff)`).
pub const TMPL_INVALID_PORT: u16 = 0xffff;

/// `ip_vs_check_template`: whether a template may still take a new
/// connection of its client at `now`, given the `DESTS` entry at
/// `Template::dest` and the `expire_quiescent_template` sysctl
/// (docs/SEMANTICS.md §2.4, §3.2): not expired; its dest still in its
/// service (not removed), the same real it was made for (generation) and
/// not invalidated since (template epoch); and not quiescent when
/// `expire_quiescent_template` is set. An overloaded dest is no reason: the
/// kernel sends a persistent client to it anyway. The one rule of the
/// packet path (lb-ebpf's `template.rs`) and of `lbctl whereis`.
pub const fn template_usable(
    t: &Template,
    d: &Dest,
    expire_quiescent_template: u32,
    now: u64,
) -> bool {
    now < t.expires
        && t.flags & TMPL_F_INVALID == 0
        && template_dest_valid(t, d, expire_quiescent_template)
}

/// The part of `ip_vs_check_template` that looks at the dest: false when a
/// new connection finding the (live) template would invalidate it
/// ([`TMPL_F_INVALID`]).
pub const fn template_dest_valid(t: &Template, d: &Dest, expire_quiescent_template: u32) -> bool {
    let usable = DEST_F_IN_USE | DEST_F_AVAILABLE;
    d.flags & usable == usable
        && d.generation == t.dest_gen
        && d.tmpl_epoch == t.epoch
        && !(expire_quiescent_template != 0 && d.weight == 0)
}

/// The kernel re-checks an expired template that still controls conns every
/// this often.
pub const TEMPLATE_LINGER_NS: u64 = 60_000_000_000;
/// A conn pushes its expiry into its template at most once per this interval
/// (so the established path rarely touches the template map).
pub const TEMPLATE_PUSH_SLACK_NS: u64 = 10_000_000_000;
/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// When the kernel would remove a template with this `deadline` whose last
/// controlled conn expires at `conn_expires`: at the deadline if the conn is
/// gone by then, else at the first 60 s re-check after the conn's expiry.
/// The meaning of `Template::expires` (written by the packet path).
pub const fn template_expiry(deadline: u64, conn_expires: u64) -> u64 {
    if conn_expires <= deadline {
        return deadline;
    }
    let late = conn_expires - deadline;
    let checks = late.div_ceil(TEMPLATE_LINGER_NS);
    deadline + checks * TEMPLATE_LINGER_NS
}

// ---------------------------------------------------------------------------
// SH_TABLES, MH_TABLES: HashMap<u32, ShTable | MhTable>, BPF_F_NO_PREALLOC
// ---------------------------------------------------------------------------

/// Buckets of an sh table (`CONFIG_IP_VS_SH_TAB_BITS` = 8).
pub const SH_TAB_BITS: u32 = 8;
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
/// Slots of an mh table: the kernel's default prime
/// (`CONFIG_IP_VS_MH_TAB_INDEX` = 12).
pub const MH_TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` (`CONFIG_IP_VS_MH_TAB_INDEX / 2`): weights are
/// shifted down to this many bits.
pub const MH_TAB_BITS: u32 = 6;
/// The kernel's fixed hsiphash keys of mh (`generate_hash_secret`): both
/// key words are the same.
pub const MH_HASH1_KEY: u64 = 2_654_435_761;
pub const MH_HASH2_KEY: u64 = 2_654_446_892;
/// Slots `mh-fallback` probes after the client's own: up to `MH_TAB_SIZE`,
/// as the kernel (one probe a `bpf_loop` step, docs/SEMANTICS.md §5.6).
pub const MH_FALLBACK_PROBES: u32 = MH_TAB_SIZE as u32;
/// An empty bucket or slot (no dest).
pub const NO_POS: u16 = u16::MAX;
/// Tables per service in `SH_TABLES` / `MH_TABLES` (the current one and
/// the one before it, which a packet may still be reading).
pub const TABLES_PER_SERVICE: u32 = 2;

/// Value of `SH_TABLES`: the 256 buckets of an sh service; each is a
/// position in the service's dest list (`NO_POS` when empty).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ShTable {
    pub pos: [u16; SH_TAB_SIZE],
}
const _: () = assert!(size_of::<ShTable>() == 512);

/// Value of `MH_TABLES`: the 4,093 slots of an mh service's lookup table,
/// positions in its dest list (`NO_POS` when empty), and padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct MhTable {
    pub pos: [u16; MH_TAB_SIZE],
    pub _pad: u16,
}
const _: () = assert!(size_of::<MhTable>() == 8188);

/// The kernel's `hash_32` (`include/linux/hash.h`): multiply by
/// `GOLDEN_RATIO_32`, keep the top `bits`. Both sides: the controller's
/// tests, the packet path's sh.
pub const fn hash_32(v: u32, bits: u32) -> u32 {
    v.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// What sh and mh hash for an address and port: `ntohs(port) +
/// ntohl(addr_fold)` (`addr_fold`), plus an offset (the fallback's probe
/// number).
pub const fn hash_input(addr: &Addr, port: [u8; 2], offset: u32) -> u32 {
    offset
        .wrapping_add(u16::from_be_bytes(port) as u32)
        .wrapping_add(addr_fold(addr))
}

/// sh's bucket (`ip_vs_sh_hashkey`): `(offset + hash_32(v, 8)) & 255`.
pub const fn sh_bucket(v: u32, offset: u32) -> u32 {
    offset.wrapping_add(hash_32(v, SH_TAB_BITS)) & (SH_TAB_SIZE as u32 - 1)
}

const fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// The kernel's `hsiphash` of the four in-memory bytes of `v` on a 64-bit
/// little-endian kernel (`lib/siphash.c`: SipHash-1-3 with 64-bit words;
/// both key words `key`), what mh hashes with. Both sides: the controller
/// builds mh tables with it, the packet path looks clients up with it.
#[inline(always)]
pub const fn hsiphash_u32(v: u32, key: u64) -> u32 {
    let mut s = [
        0x736f_6d65_7073_6575 ^ key,
        0x646f_7261_6e64_6f6d ^ key,
        0x6c79_6765_6e65_7261 ^ key,
        0x7465_6462_7974_6573 ^ key,
    ];
    let b = (4u64 << 56) | v as u64;
    s[3] ^= b;
    sipround(&mut s);
    s[0] ^= b;
    s[2] ^= 0xff;
    sipround(&mut s);
    sipround(&mut s);
    sipround(&mut s);
    ((s[0] ^ s[1]) ^ (s[2] ^ s[3])) as u32
}

/// mh's slot for a hash input (`ip_vs_mh_hashkey(..., hash1, ...) % M`).
#[inline(always)]
pub const fn mh_slot(v: u32) -> u32 {
    hsiphash_u32(v, MH_HASH1_KEY) % MH_TAB_SIZE as u32
}

// ---------------------------------------------------------------------------
// LBLC: LruHashMap<LblcKey, LblcEntry>, the lblc and lblcr tables
// ---------------------------------------------------------------------------

/// Key of `LBLC`: a destination address of a service (`ip_vs_lblc_entry`'s
/// and `ip_vs_lblcr_entry`'s `addr`, in the service's table). For a service
/// looked up by (VIP, port, protocol) the packet's destination is the VIP,
/// so such a service has one entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct LblcKey {
    /// `Service::id`.
    pub svc: u32,
    /// The destination address, network order.
    pub addr: Addr,
}
const _: () = assert!(size_of::<LblcKey>() == 20);

/// A dest of an lblc or lblcr entry: its `DESTS` slot and the slot's
/// `generation` when it was recorded (another generation: the slot went to
/// another real, as if the kernel's dest had been freed from its trash).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SetDest {
    pub dest: u32,
    pub generation: u32,
}
const _: () = assert!(size_of::<SetDest>() == 8);

/// Dests an lblcr entry's set holds at most (the kernel's set has no
/// bound); a dest added to a full set takes the place of the one added
/// longest ago (docs/SEMANTICS.md §5.16).
pub const LBLCR_SET_MAX: usize = 8;

/// The kernel's default `lblc_expiration` and `lblcr_expiration` (24 h): an
/// entry unused for that long is gone; an lblcr set unchanged for that long
/// loses its most loaded dest.
pub const LBLC_EXPIRATION_NS: u64 = 24 * 60 * 60 * NS_PER_SEC;

/// Value of `LBLC`: an lblc entry (the dest last picked for the address,
/// `set[0]`, `size` 1) or an lblcr entry (a set of dests, newest first).
/// Written only by the program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LblcEntry {
    /// When a new flow last looked the entry up (`lastuse`), ns.
    pub lastuse: u64,
    /// lblcr: when the set last changed (`set.lastmod`), ns.
    pub lastmod: u64,
    /// `Service::epoch` the entry was made under: an entry of another
    /// epoch (the service was deleted, or its scheduler changed) is absent.
    pub epoch: u32,
    /// Dests in `set` (at most `LBLCR_SET_MAX`).
    pub size: u32,
    pub set: [SetDest; LBLCR_SET_MAX],
}
const _: () = assert!(size_of::<LblcEntry>() == 88);

// ---------------------------------------------------------------------------
// SCHED: PerCpuArray<SchedState> indexed by service id
// ---------------------------------------------------------------------------

/// Per-CPU scheduler state of one service: each CPU runs the kernel's rr/wrr
/// state machine on its own, so one CPU sees IPVS's exact order and all CPUs
/// together stay weight-proportional.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SchedState {
    /// `Service::epoch` this state belongs to.
    pub epoch: u32,
    /// `Service::generation` this state last saw.
    pub generation: u32,
    /// wrr: position of the last pick in the dest list (`SCHED_HEAD` = list head).
    pub cl: u32,
    /// wrr: current weight, as the kernel's `cw`.
    pub cw: u32,
    /// rr: the `DESTS` slot of the last pick (`NO_DEST` = none yet).
    pub rr_dest: u32,
    pub _pad: u32,
}
pub const SCHED_HEAD: u32 = u32::MAX;

/// The kernel's wrr adjustment of `cw` after a dest list change
/// (`ip_vs_wrr_dest_changed`). Both sides must compute it identically: the
/// controller for `Service::cw_seed`, the packet path for a CPU's state.
pub const fn wrr_adjust_cw(cw: u32, di: u32, mw: u32) -> u32 {
    if cw > mw || cw == 0 {
        mw
    } else if di > 1 {
        (cw / di) * di + 1
    } else {
        cw
    }
}

// ---------------------------------------------------------------------------
// SETTINGS: Array<Settings, 1>
// ---------------------------------------------------------------------------

/// Runtime knobs: the LVS sysctls and timeouts. One entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Settings {
    pub expire_nodest_conn: u32,
    pub expire_quiescent_template: u32,
    pub conn_reuse_mode: u32,
    /// Non-zero when some port-0 service exists (enables the second lookup).
    pub has_port0: u32,
    /// Timeout in seconds per `CONN_S_*`.
    pub timeouts: [u32; CONN_S_COUNT],
    /// Controller-only counter for `Service::epoch`.
    pub next_epoch: u32,
    /// `LAYOUT_VERSION` of whoever created the maps.
    pub layout: u32,
    /// Controller-only: `DESTS` slots at or above this index have never been
    /// used (slots are given out lowest first), so the controller reads
    /// only the slots below it.
    pub dests_used: u32,
    /// `FWMARK_F_*`: whether the service lookup classifies (fwmark rules
    /// and fwmark services exist), and whether the VIP filter may miss a
    /// classified destination.
    pub fwmark: u32,
    /// The packet path's clock: `jiffies * clock_ns_per_jiffy + clock_offset`
    /// is CLOCK_MONOTONIC in ns, to within one tick (the jiffies read is
    /// inlined by the verifier; a clock helper call costs ~40 ns). Measured
    /// by the controller when it makes the maps; 0 = use the kernel's
    /// coarse monotonic clock instead.
    pub clock_ns_per_jiffy: u64,
    pub clock_offset: u64,
    /// `net.ipv4.vs.pmtu_disc` (default 1): with 0, IPv4 packets too big
    /// for a tunnel are sent fragmented instead of answered (docs/SEMANTICS.md).
    pub pmtu_disc: u32,
    /// `net.ipv4.vs.nat_icmp_send` (default 0): a reply from a masqueraded
    /// real server that matches no conn gets ICMP port unreachable.
    pub nat_icmp_send: u32,
    /// Non-zero when some `-m` dest exists: only then does the packet path
    /// look up the replies of masqueraded flows.
    pub has_masq: u32,
    pub _pad: u32,
}

impl Settings {
    /// The kernel's defaults. `layout` is set so that an all-zero entry (maps
    /// just created) can be told apart from an initialised one.
    pub const DEFAULT: Settings = Settings {
        expire_nodest_conn: 0,
        expire_quiescent_template: 0,
        conn_reuse_mode: 1,
        has_port0: 0,
        timeouts: DEFAULT_TIMEOUTS,
        next_epoch: 1,
        layout: LAYOUT_VERSION,
        dests_used: 0,
        fwmark: 0,
        clock_ns_per_jiffy: 0,
        clock_offset: 0,
        pmtu_disc: 1,
        nat_icmp_send: 0,
        has_masq: 0,
        _pad: 0,
    };
}

// ---------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------

/// Per-service and per-dest counters (`SVC_STATS`, `DEST_STATS`, per CPU).
/// Only masquerading sees replies: `outpkts`/`outbytes` stay 0 for direct
/// routing and tunnelling, as in IPVS.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ServiceStats {
    pub conns: u64,
    pub inpkts: u64,
    pub inbytes: u64,
    pub outpkts: u64,
    pub outbytes: u64,
}

/// One outcome counter (`STATS`, per CPU, indexed by `REASON_*`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

/// Why the program did what it did with a packet. Every outcome has one.
pub const REASON_PASS_NOT_IP: u32 = 0;
pub const REASON_PASS_VLAN: u32 = 1;
pub const REASON_PASS_FRAGMENT: u32 = 2;
pub const REASON_PASS_NOT_L4: u32 = 3;
pub const REASON_PASS_NO_SERVICE: u32 = 4;
pub const REASON_PASS_NO_CONN: u32 = 5;
pub const REASON_FWD_CONN: u32 = 6;
pub const REASON_FWD_NEW: u32 = 7;
pub const REASON_FWD_TEMPLATE: u32 = 8;
pub const REASON_TX_ICMP_UNREACH: u32 = 9;
pub const REASON_TX_RST_NODEST: u32 = 10;
pub const REASON_DROP_NODEST: u32 = 11;
pub const REASON_PASS_BAD_IP: u32 = 12;
pub const REASON_PASS_TRUNCATED: u32 = 13;
pub const REASON_DROP_NO_NEIGH: u32 = 14;
pub const REASON_DROP_CONN_TABLE: u32 = 15;
pub const REASON_DROP_INTERNAL: u32 = 16;
/// An ICMP error that the rate limit held back (as the kernel's `icmp_send`).
pub const REASON_DROP_REPLY_RATE: u32 = 17;
/// A frame not addressed to the director (group address, or another
/// host's MAC seen in promiscuous mode): IPVS only handles PACKET_HOST.
pub const REASON_PASS_NOT_FOR_US: u32 = 18;
/// An ICMP error about a balanced flow (e.g. "fragmentation needed" for the
/// real server's replies), forwarded to the flow's real server as IPVS's
/// `ip_vs_in_icmp` does, so path MTU discovery works through the director.
pub const REASON_FWD_ICMP: u32 = 19;
/// A new flow whose conn entry another CPU made in the same instant (the
/// insert found the key taken): dropped, the client's retransmission finds
/// the entry.
pub const REASON_DROP_CONN_RACE: u32 = 20;
/// A UDP datagram of a one-packet (`-o`) service: scheduled on its own and
/// forwarded with no conn entry kept.
pub const REASON_FWD_ONE_PACKET: u32 = 21;
/// An IPv6 packet with more extension headers before its transport header
/// than the program walks (lb-ebpf's `MAX_EXT_HEADERS`): passed.
pub const REASON_PASS_EXT_HEADERS: u32 = 22;
/// A packet for a `-i`/`-m` real server too big for the route once
/// encapsulated (or rewritten), with DF or IPv6: answered with ICMP
/// "fragmentation needed" / ICMPv6 "packet too big" from the VIP.
pub const REASON_TX_ICMP_TOO_BIG: u32 = 23;
/// A packet for a `-i`/`-m` real server whose TTL / hop limit would reach
/// 0: answered with ICMP time exceeded, as IPVS's `decrement_ttl`.
pub const REASON_TX_ICMP_TIME_EXCEEDED: u32 = 24;
/// A real server's reply to a masqueraded flow, rewritten to come from
/// the VIP and forwarded to the client.
pub const REASON_FWD_NAT_REPLY: u32 = 25;
/// An ICMP error from the real servers' side about a masqueraded flow,
/// translated and forwarded to the client.
pub const REASON_FWD_NAT_ICMP: u32 = 26;
/// A packet for a `-i`/`-m` real server dropped because the route's MTU
/// leaves less than the minimum (68, IPv6 1280) once encapsulated, as IPVS.
pub const REASON_DROP_MTU: u32 = 27;
pub const REASON_COUNT: u32 = 28;
/// Names for listings and logs.
pub const REASON_NAMES: [&str; REASON_COUNT as usize] = [
    "pass_not_ip",
    "pass_vlan",
    "pass_fragment",
    "pass_not_tcp_udp",
    "pass_no_service",
    "pass_no_conn",
    "fwd_conn",
    "fwd_new",
    "fwd_template",
    "tx_icmp_unreach",
    "tx_rst_nodest",
    "drop_nodest",
    "pass_bad_ip",
    "pass_truncated",
    "drop_no_neigh",
    "drop_conn_table",
    "drop_internal",
    "drop_reply_rate",
    "pass_not_for_us",
    "fwd_icmp",
    "drop_conn_race",
    "fwd_one_packet",
    "pass_ext_headers",
    "tx_icmp_too_big",
    "tx_icmp_time_exceeded",
    "fwd_nat_reply",
    "fwd_nat_icmp",
    "drop_mtu",
];

/// Words of `VIPS`: a 65,536-bit filter of the addresses of all services.
pub const VIP_FILTER_WORDS: u32 = 1024;

/// The `VIPS` bit of an address (Fibonacci hashing to 16 bits). A clear bit
/// means "no service has this address": such packets are passed with one
/// array read. A set bit may be a collision; the full lookups decide. Both
/// sides must compute it identically: the controller sets the bits, the
/// packet path tests them.
pub const fn vip_bit(addr: &Addr) -> u32 {
    addr_fold(addr).wrapping_mul(0x9e37_79b1) >> 16
}

/// Slots of `IFACES`, indexed by `ifindex % MAX_IFACES`.
pub const MAX_IFACES: u32 = 256;

/// Value of `IFACES`: the MAC address of an interface the program is
/// attached to, so frames addressed to another host are left alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Iface {
    /// 0: slot unused.
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// ICMP errors sent per second and CPU at most (the kernel's
/// `net.ipv4.icmp_msgs_per_sec` default), with a burst of `REPLY_BURST`.
pub const REPLY_RATE_PER_SEC: u64 = 1000;
pub const REPLY_BURST: u64 = 50;

/// Per-CPU token bucket for the ICMP errors the program builds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ReplyRate {
    /// Tokens, in units of 1/`REPLY_RATE_PER_SEC` s (i.e. replies).
    pub tokens: u64,
    /// When the bucket was last refilled.
    pub last: u64,
}

#[cfg(feature = "user")]
mod user {
    use super::*;
    // Sound: bytemuck::Pod above proves these have no padding and accept any
    // bit pattern.
    unsafe impl aya::Pod for ServiceKey {}
    unsafe impl aya::Pod for Service {}
    unsafe impl aya::Pod for ServiceDest {}
    unsafe impl aya::Pod for ShTable {}
    unsafe impl aya::Pod for MhTable {}
    unsafe impl aya::Pod for Dest {}
    unsafe impl aya::Pod for NatKey {}
    unsafe impl aya::Pod for NatReply {}
    unsafe impl aya::Pod for RealKey {}
    unsafe impl aya::Pod for DestConns {}
    unsafe impl aya::Pod for LblcKey {}
    unsafe impl aya::Pod for LblcEntry {}
    unsafe impl aya::Pod for SweeperValue {}
    unsafe impl aya::Pod for ConnKey {}
    unsafe impl aya::Pod for Conn {}
    unsafe impl aya::Pod for TemplateKey {}
    unsafe impl aya::Pod for Template {}
    unsafe impl aya::Pod for SchedState {}
    unsafe impl aya::Pod for Settings {}
    unsafe impl aya::Pod for ServiceStats {}
    unsafe impl aya::Pod for Counters {}
    unsafe impl aya::Pod for ReplyRate {}
    unsafe impl aya::Pod for Iface {}
    unsafe impl aya::Pod for FwmarkKey {}
    unsafe impl aya::Pod for FwmarkRules {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_names_fit_the_kernel() {
        for n in MAP_NAMES {
            assert!(n.len() <= 15, "{n}");
        }
    }

    #[test]
    fn template_expiry_follows_the_kernels_60s_rechecks() {
        let s = NS_PER_SEC;
        // Conn gone before the deadline: the deadline.
        assert_eq!(template_expiry(100 * s, 50 * s), 100 * s);
        // Conn alive at the deadline: the first re-check after it ends.
        assert_eq!(template_expiry(100 * s, 101 * s), 160 * s);
        assert_eq!(template_expiry(100 * s, 160 * s), 160 * s);
        assert_eq!(template_expiry(100 * s, 161 * s), 220 * s);
    }

    #[test]
    fn template_usable_is_ip_vs_check_template() {
        let d = Dest {
            flags: DEST_F_IN_USE | DEST_F_AVAILABLE,
            weight: 1,
            generation: 4,
            tmpl_epoch: 7,
            u_threshold: 1,
            ..Dest::default()
        };
        let t = Template {
            expires: 100,
            dest_gen: 4,
            epoch: 7,
            ..Template::default()
        };
        assert!(template_usable(&t, &d, 0, 99));
        // Expired.
        assert!(!template_usable(&t, &d, 0, 100));
        // Removed (-d), or a slot never or no longer in use.
        for flags in [DEST_F_IN_USE, DEST_F_AVAILABLE, 0] {
            assert!(!template_usable(&t, &Dest { flags, ..d }, 0, 0));
        }
        // Another real in the slot; templates invalidated.
        assert!(!template_usable(&t, &Dest { generation: 5, ..d }, 0, 0));
        assert!(!template_usable(&t, &Dest { tmpl_epoch: 8, ..d }, 0, 0));
        // Quiescent: usable unless expire_quiescent_template.
        let quiescent = Dest { weight: 0, ..d };
        assert!(template_usable(&t, &quiescent, 0, 0));
        assert!(!template_usable(&t, &quiescent, 1, 0));
        assert!(!template_dest_valid(&t, &quiescent, 1));
        // Invalidated already: never used again, whatever its dest.
        let parked = Template {
            flags: TMPL_F_INVALID,
            ..t
        };
        assert!(template_dest_valid(&parked, &d, 0));
        assert!(!template_usable(&parked, &d, 0, 0));
    }

    #[test]
    fn sweeps_use_at_most_two_percent_of_a_cpu() {
        let ms = 1_000_000;
        assert_eq!(sweep_interval(0), NS_PER_SEC);
        assert_eq!(sweep_interval(20 * ms), NS_PER_SEC);
        assert_eq!(sweep_interval(21 * ms), 1_050 * ms);
        assert_eq!(sweep_interval(95 * ms), 4_750 * ms);
        assert_eq!(sweep_interval(u64::MAX), u64::MAX);
    }

    #[test]
    fn addresses_of_both_families() {
        let v4 = addr_v4([192, 0, 2, 1]);
        assert!(addr_is_v4(&v4));
        assert_eq!(addr_low32(&v4), [192, 0, 2, 1]);
        assert_eq!(addr_fold(&v4), 0xc000_0201);
        let mut b = [0u8; 16];
        b[10] = 0xff;
        b[11] = 0xff;
        b[12..].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(addr_from_octets(b), v4);
        assert_eq!(addr_octets(&v4), b);
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[15] = 1;
        let v6 = addr_from_octets(b);
        assert!(!addr_is_v4(&v6));
        // The kernel's fold: the XOR of the four words.
        assert_eq!(addr_fold(&v6), 0x2001_0db8 ^ 1);
        assert_eq!(netmask_v6(0), [0; 4]);
        assert_eq!(netmask_v6(128), [u32::MAX; 4]);
        let m = addr_octets(&netmask_v6(65));
        assert_eq!(m[..8], [0xff; 8]);
        assert_eq!(m[8], 0x80);
        assert_eq!(m[9..], [0; 7]);
        let v4_mask = addr_v4([255, 255, 255, 0]);
        assert_eq!(addr_masked(&v4, &v4_mask), addr_v4([192, 0, 2, 0]));
    }

    #[test]
    fn wrr_adjust_matches_kernel_rule() {
        assert_eq!(wrr_adjust_cw(0, 4, 1), 1);
        assert_eq!(wrr_adjust_cw(1, 1, 4), 1);
        assert_eq!(wrr_adjust_cw(5, 1, 4), 4);
        assert_eq!(wrr_adjust_cw(3, 2, 5), 3);
        assert_eq!(wrr_adjust_cw(4, 2, 5), 5);
    }
}

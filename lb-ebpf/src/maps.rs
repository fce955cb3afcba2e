//! The maps, named in LVS words. Pinned by the controller under
//! `$LB_PIN_PATH/<NAME>`; their key and value types are defined once, in
//! lb-common. The sizes here are the defaults: the controller sets every
//! variable size at load time (`CONNS`, `TEMPLATES`, and the service- and
//! real-sized maps from `lbctl attach --services/--reals`).
//!
//! A static's name is its map's name in the object, and must be lb-common's
//! `MAP_*` for it (`#[btf_map]` takes no constant): the controller takes
//! every map from the object by those names, so a mismatch fails every load.

use crate::sweep::Sweeper;
use aya_ebpf::bindings::BPF_F_NO_PREALLOC;
use aya_ebpf::{
    btf_maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray},
    macros::btf_map,
};
use lb_common::{
    Conn, ConnKey, Counters, DEFAULT_CONNS, DEFAULT_REALS, DEFAULT_SERVICES, DEFAULT_TEMPLATES,
    Dest, DestConns, FwmarkKey, FwmarkRules, Iface, LblcEntry, LblcKey, MAX_FWMARK_PREFIXES,
    MAX_IFACES, MhTable, NatKey, NatReply, REASON_COUNT, RealKey, ReplyRate, SVC_DESTS_PER_REAL,
    SchedState, Service, ServiceDest, ServiceKey, ServiceStats, Settings, ShTable,
    TABLES_PER_SERVICE, Template, TemplateKey, VIP_FILTER_WORDS,
};

#[btf_map]
pub static SERVICES: HashMap<ServiceKey, Service, { DEFAULT_SERVICES as usize }> = HashMap::new();

#[btf_map]
pub static DESTS: Array<Dest, { DEFAULT_REALS as usize }> = Array::new();

/// The dest lists and weight trees of all services, a block each
/// (`ServiceDest` says how a block is laid out).
#[btf_map]
pub static SVC_DESTS: Array<ServiceDest, { (DEFAULT_REALS * SVC_DESTS_PER_REAL) as usize }> =
    Array::new();

/// The sh services' bucket tables, keyed by `Service::table`. Not
/// preallocated: memory follows the sh services configured.
#[btf_map]
pub static SH_TABLES: HashMap<
    u32,
    ShTable,
    { (DEFAULT_SERVICES * TABLES_PER_SERVICE) as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

/// The mh services' lookup tables, keyed by `Service::table`. Not
/// preallocated: memory follows the mh services configured.
#[btf_map]
pub static MH_TABLES: HashMap<
    u32,
    MhTable,
    { (DEFAULT_SERVICES * TABLES_PER_SERVICE) as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

/// The connection table: preallocated, never evicting. Entries leave it by
/// expiry (the sweeper, `sweep.rs`) or the packet path's rules, each time
/// through `counts::remove`, so `DEST_CONNS` stays equal to its entries; a
/// full table refuses new flows (docs/SEMANTICS.md §6.4).
#[btf_map]
pub static CONNS: HashMap<ConnKey, Conn, { DEFAULT_CONNS as usize }> = HashMap::new();

/// The replies of masqueraded (`-m`) conns: the reply's tuple (RIP:rport
/// -> CIP:cport) -> the conn's key and its request's way in (`nat.rs`). Made with the conn
/// (`new_flow.rs`), removed with it (`counts::remove`); the sweeper removes
/// any entry left without its conn. Not preallocated: memory follows the
/// masqueraded conns (none without `-m` real servers). Sized as `CONNS`.
#[btf_map]
pub static NAT_REPLIES: HashMap<
    NatKey,
    NatReply,
    { DEFAULT_CONNS as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

/// The `-m` real servers (address, port, protocol; 0 for a fwmark
/// service's) -> how many dests: whether a reply that matches no conn comes
/// from one (`nat_icmp_send`, `nat.rs`). Written by `Table` only.
#[btf_map]
pub static MASQ_REALS: HashMap<
    RealKey,
    u32,
    { DEFAULT_REALS as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

/// The sweeper's timer and counters (`sweep.rs`).
#[btf_map]
pub static SWEEPER: Array<Sweeper, 1> = Array::new();

#[btf_map]
pub static TEMPLATES: LruHashMap<TemplateKey, Template, { DEFAULT_TEMPLATES as usize }> =
    LruHashMap::new();

#[btf_map]
pub static SCHED: PerCpuArray<SchedState, { DEFAULT_SERVICES as usize }> = PerCpuArray::new();

#[btf_map]
pub static SETTINGS: Array<Settings, 1> = Array::new();

#[btf_map]
pub static STATS: PerCpuArray<Counters, { REASON_COUNT as usize }> = PerCpuArray::new();

#[btf_map]
pub static SVC_STATS: PerCpuArray<ServiceStats, { DEFAULT_SERVICES as usize }> = PerCpuArray::new();

#[btf_map]
pub static DEST_STATS: PerCpuArray<ServiceStats, { DEFAULT_REALS as usize }> = PerCpuArray::new();

/// The live connection counts of each `DESTS` slot (`DestConns`).
#[btf_map]
pub static DEST_CONNS: Array<DestConns, { DEFAULT_REALS as usize }> = Array::new();

/// The lblc and lblcr tables of all services (`LblcEntry`), keyed by
/// service and destination address; written by the packet path only.
/// Least recently used entries make room (those of deleted services, whose
/// epoch no longer matches, first).
#[btf_map]
pub static LBLC: LruHashMap<LblcKey, LblcEntry, { DEFAULT_SERVICES as usize }> = LruHashMap::new();

#[btf_map]
pub static REPLY_RATE: PerCpuArray<ReplyRate, 1> = PerCpuArray::new();

#[btf_map]
pub static IFACES: Array<Iface, { MAX_IFACES as usize }> = Array::new();

#[btf_map]
pub static VIPS: Array<u64, { VIP_FILTER_WORDS as usize }> = Array::new();

/// The fwmark classifier (`classify.rs`): (protocol, destination prefix) →
/// the rules of that prefix and of the shorter ones covering it, most
/// specific first (lb-common's `FwmarkRules`). Written by `Table` only.
#[btf_map]
pub static FWMARK: LpmTrie<FwmarkKey, FwmarkRules, { MAX_FWMARK_PREFIXES as usize }> =
    LpmTrie::new();

/// The packet being handled (`parse::Packet`), one per CPU. Its 16-byte
/// addresses and the stages' keys do not all fit the BPF stack (512 bytes
/// for the whole call chain), so the parse stage writes it here and every
/// later stage reads it by reference. Not pinned: scratch space, each load
/// of the program has its own.
#[btf_map]
pub static PACKET: PerCpuArray<crate::parse::Packet, 1> = PerCpuArray::new();

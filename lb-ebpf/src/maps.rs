//! The maps, named in LVS words. Pinned by the controller under
//! `$LB_PIN_PATH/<NAME>`; their key and value types are defined once, in
//! lb-common. Sizes of `CONNS` and `TEMPLATES` are overridden at load time.
//!
//! A static's name is its map's name in the object, and must be lb-common's
//! `MAP_*` for it (`#[btf_map]` takes no constant): the controller takes
//! every map from the object by those names, so a mismatch fails every load.

use aya_ebpf::{
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    macros::btf_map,
};
use lb_common::{
    Conn, ConnKey, Counters, DEFAULT_CONNS, DEFAULT_TEMPLATES, Dest, Iface, MAX_DESTS, MAX_IFACES,
    MAX_SERVICES, REASON_COUNT, ReplyRate, SchedState, Service, ServiceKey, ServiceStats, Settings,
    Template, TemplateKey, VIP_FILTER_WORDS,
};

#[btf_map]
pub static SERVICES: HashMap<ServiceKey, Service, { MAX_SERVICES as usize }> = HashMap::new();

#[btf_map]
pub static DESTS: Array<Dest, { MAX_DESTS as usize }> = Array::new();

#[btf_map]
pub static CONNS: LruHashMap<ConnKey, Conn, { DEFAULT_CONNS as usize }> = LruHashMap::new();

#[btf_map]
pub static TEMPLATES: LruHashMap<TemplateKey, Template, { DEFAULT_TEMPLATES as usize }> =
    LruHashMap::new();

#[btf_map]
pub static SCHED: PerCpuArray<SchedState, { MAX_SERVICES as usize }> = PerCpuArray::new();

#[btf_map]
pub static SETTINGS: Array<Settings, 1> = Array::new();

#[btf_map]
pub static STATS: PerCpuArray<Counters, { REASON_COUNT as usize }> = PerCpuArray::new();

#[btf_map]
pub static SVC_STATS: PerCpuArray<ServiceStats, { MAX_SERVICES as usize }> = PerCpuArray::new();

#[btf_map]
pub static DEST_STATS: PerCpuArray<ServiceStats, { MAX_DESTS as usize }> = PerCpuArray::new();

#[btf_map]
pub static REPLY_RATE: PerCpuArray<ReplyRate, 1> = PerCpuArray::new();

#[btf_map]
pub static IFACES: Array<Iface, { MAX_IFACES as usize }> = Array::new();

#[btf_map]
pub static VIPS: Array<u64, { VIP_FILTER_WORDS as usize }> = Array::new();

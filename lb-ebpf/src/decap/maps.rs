//! The decapsulator's maps, pinned by lbctl under `$LB_PIN_PATH/decap/`;
//! their types are lb-common's `decap` module. A static's name is its map's
//! name (`MAP_DECAP_*`).

use aya_ebpf::{
    btf_maps::{HashMap, LpmTrie, PerCpuArray},
    macros::btf_map,
};
use lb_common::{
    Counters,
    decap::{
        DECAP_REASON_COUNT, DecapIface, DecapPrefix, DecapVipKey, MAX_DECAP_IFACES,
        MAX_DECAP_LOCAL, MAX_DECAP_VIPS,
    },
};

/// The settings of each interface the program is attached to, by ifindex.
#[btf_map]
pub static DECAP_IFACES: HashMap<u32, DecapIface, { MAX_DECAP_IFACES as usize }> = HashMap::new();

/// The host's local addresses and prefixes (its local routing table), as
/// lbctl read them when it last attached the program.
#[btf_map]
pub static DECAP_LOCAL: LpmTrie<DecapPrefix, u32, { MAX_DECAP_LOCAL as usize }> = LpmTrie::new();

/// The `--vip` addresses of each interface attached with `--vip`.
#[btf_map]
pub static DECAP_VIPS: HashMap<DecapVipKey, u32, { MAX_DECAP_VIPS as usize }> = HashMap::new();

/// Every outcome under its `DECAP_REASON_*`.
#[btf_map]
pub static DECAP_STATS: PerCpuArray<Counters, { DECAP_REASON_COUNT as usize }> = PerCpuArray::new();

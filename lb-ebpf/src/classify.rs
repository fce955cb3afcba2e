//! The fwmark classifier: the mark that lbctl's rules give a packet's
//! (protocol, destination address, destination port), standing in for the
//! `skb->mark` that iptables mangle rules give IPVS (docs/SEMANTICS.md
//! "fwmark services"). One longest-prefix lookup in `FWMARK`, then a
//! bounded scan of that prefix's port ranges, most specific first.
//!
//! The service lookup (`lookup.rs`) classifies a new flow first, as
//! `ip_vs_service_find` looks at the mark first. A packet that the VIP
//! filter turns away goes on unclassified when some rule covers (or
//! covered, while a fwmark service exists) more addresses than the filter
//! holds (`FWMARK_F_WIDE`): the connection table comes first, as in
//! `ip_vs_in`, so a conn whose rule is gone keeps flowing, and the service
//! lookup classifies the rest.
//!
//! The lookup is the global BPF function `lb_classify`, verified once on
//! its own: its mark is then an unknown number to each caller, so the
//! verifier does not walk the rest of the packet path once per rule.

use aya_ebpf::btf_maps::lpm_trie::Key;
use lb_common::{
    FWMARK_F_WIDE, FWMARK_KEY_FIXED_BITS, FwmarkKey, REASON_PASS_NO_SERVICE, fwmark_match,
};

use crate::{Verdict, maps::FWMARK, parse::Packet, settings::settings};

/// The packet's mark by the classifier's rules, or 0 (no rule matches).
#[inline(always)]
pub fn mark(pkt: &Packet) -> u32 {
    let w = &pkt.key.vaddr;
    lb_classify(
        ((pkt.key.proto as u32) << 16) | u16::from_be_bytes(pkt.key.vport) as u32,
        w[0],
        w[1],
        w[2],
        w[3],
    )
}

/// The mark of (protocol << 16 | destination port in host order,
/// destination address as its four `Addr` words: the arguments of a global
/// function are scalars), or 0.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn lb_classify(proto_port: u32, a0: u32, a1: u32, a2: u32, a3: u32) -> u32 {
    let dport = proto_port & 0xffff;
    let key = Key::new(
        FWMARK_KEY_FIXED_BITS + 128,
        FwmarkKey {
            proto: (proto_port >> 16) as u8,
            _pad: [0; 3],
            addr: [a0, a1, a2, a3],
        },
    );
    match FWMARK.get(&key) {
        Some(rules) => fwmark_match(rules, dport as u16),
        None => 0,
    }
}

/// A packet the VIP filter turned away: `Err(pass_no_service)` unless some
/// rule is (or was) wider than the filter; then it goes on to the
/// connection table and the service lookup, which classifies it.
#[inline(always)]
pub fn beyond_filter() -> Result<(), Verdict> {
    let wide = match settings() {
        Some(cfg) => cfg.fwmark & FWMARK_F_WIDE != 0,
        None => false,
    };
    if wide {
        Ok(())
    } else {
        Err(Verdict::Pass(REASON_PASS_NO_SERVICE))
    }
}

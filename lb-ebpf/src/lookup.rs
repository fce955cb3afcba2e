//! Virtual service lookup, in `ip_vs_service_find`'s order: the fwmark
//! service of the packet's mark (`classify.rs`) when fwmark rules and
//! services exist, then exact (protocol, VIP, port), then the VIP's port-0
//! ("all ports") service when one exists (docs/SEMANTICS.md §0, "fwmark
//! services"). A bit filter of the VIPs lets traffic to other addresses
//! pass at the cost of one array read.

use lb_common::{FWMARK_F_CLASSIFY, Service, ServiceKey, Settings, fwmark_service_key};

use lb_common::{VIP_FILTER_WORDS, vip_bit};

use crate::{
    Verdict, classify,
    maps::{SERVICES, VIPS},
    parse::Packet,
};

/// Could the destination be a VIP? One array read; `false` is certain
/// unless a fwmark rule is wider than the filter (`classify::beyond_filter`).
#[inline(always)]
pub fn maybe_vip(pkt: &Packet) -> bool {
    let bit = vip_bit(&pkt.key.vaddr);
    match VIPS.get((bit / 64) % VIP_FILTER_WORDS) {
        Some(w) => *w & (1u64 << (bit % 64)) != 0,
        None => true,
    }
}

/// The VIP filter stage: on when the destination may be a VIP or a rule
/// is wider than the filter, else `pass_no_service`.
#[inline(always)]
pub fn vip_filter(pkt: &Packet) -> Result<(), Verdict> {
    if maybe_vip(pkt) {
        return Ok(());
    }
    classify::beyond_filter()
}

/// The packet's service (a fwmark service has its mark in `fwmark`).
#[inline(always)]
pub fn service(pkt: &Packet, cfg: &Settings) -> Option<&'static Service> {
    if cfg.fwmark & FWMARK_F_CLASSIFY != 0 {
        let mark = classify::mark(pkt);
        if mark != 0
            && let Some(svc) = SERVICES.get_ptr(fwmark_service_key(mark, pkt.v6))
        {
            // SAFETY: as below.
            return Some(unsafe { &*svc });
        }
    }
    let mut key = ServiceKey {
        addr: pkt.key.vaddr,
        port: pkt.key.vport,
        proto: pkt.key.proto,
        _pad: 0,
    };
    if let Some(svc) = SERVICES.get_ptr(key) {
        // SAFETY: SERVICES entries are replaced whole, never modified in place;
        // the pointer stays valid for this program run (RCU).
        return Some(unsafe { &*svc });
    }
    if cfg.has_port0 == 0 {
        return None;
    }
    key.port = [0, 0];
    SERVICES.get_ptr(key).map(|svc| unsafe { &*svc })
}

//! Virtual service lookup: exact (protocol, VIP, port), then the VIP's port-0
//! ("all ports") service when one exists (docs/SEMANTICS.md §0). A bit filter of
//! the VIPs lets traffic to other addresses pass at the cost of one array
//! read.

use lb_common::{Service, ServiceKey};

use lb_common::{VIP_FILTER_WORDS, vip_bit};

use crate::{
    maps::{SERVICES, VIPS},
    parse::Packet,
    settings::settings,
};

/// Could the destination be a VIP? One array read; `false` is certain.
#[inline(always)]
pub fn maybe_vip(pkt: &Packet) -> bool {
    let bit = vip_bit(pkt.daddr);
    match VIPS.get((bit / 64) % VIP_FILTER_WORDS) {
        Some(w) => *w & (1u64 << (bit % 64)) != 0,
        None => true,
    }
}

#[inline(always)]
pub fn service(pkt: &Packet) -> Option<&'static Service> {
    let mut key = ServiceKey {
        addr: pkt.daddr,
        port: pkt.dport,
        proto: pkt.proto,
        _pad: 0,
    };
    if let Some(svc) = SERVICES.get_ptr(key) {
        // SAFETY: SERVICES entries are replaced whole, never modified in place;
        // the pointer stays valid for this program run (RCU).
        return Some(unsafe { &*svc });
    }
    if settings()?.has_port0 == 0 {
        return None;
    }
    key.port = [0, 0];
    SERVICES.get_ptr(key).map(|svc| unsafe { &*svc })
}

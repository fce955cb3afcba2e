//! Virtual service lookup: exact (protocol, VIP, port), then the VIP's port-0
//! ("all ports") service when one exists (LVS-SEMANTICS §0).

use lb_common::{Service, ServiceKey};

use crate::{maps::SERVICES, parse::Packet, stats::settings};

#[inline(always)]
pub fn service(pkt: &Packet) -> Option<&'static Service> {
    let mut key = ServiceKey {
        addr: pkt.daddr,
        port: pkt.dport,
        proto: pkt.proto,
        _pad: 0,
    };
    if let Some(svc) = SERVICES.get_ptr(&key) {
        // SAFETY: SERVICES entries are replaced whole, never modified in place;
        // the pointer stays valid for this program run (RCU).
        return Some(unsafe { &*svc });
    }
    if settings()?.has_port0 == 0 {
        return None;
    }
    key.port = [0, 0];
    SERVICES.get_ptr(&key).map(|svc| unsafe { &*svc })
}

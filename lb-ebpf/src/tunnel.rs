//! Tunnelling (`-i`, docs/SEMANTICS.md): the packet is encapsulated (IPIP,
//! GUE or GRE, outer IPv4 or IPv6 by the real server's family) and sent
//! towards the next hop of the route to the real server, as IPVS's
//! `ip_vs_tunnel_xmit`.

use aya_ebpf::programs::XdpContext;
use lb_common::{Dest, REASON_DROP_INTERNAL};

use crate::{Verdict, parse::Packet};

/// Encapsulates `pkt` towards the real server `dest`.
#[inline(always)]
pub fn xmit(_ctx: &XdpContext, _pkt: &Packet, _dest: *mut Dest, _reason: u32) -> Verdict {
    Verdict::Drop(REASON_DROP_INTERNAL)
}

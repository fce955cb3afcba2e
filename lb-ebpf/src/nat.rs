//! Masquerading (`-m`, docs/SEMANTICS.md): requests get the real server's
//! address and port as their destination (`ip_vs_nat_xmit`); the real
//! servers' replies, routed back through the director, are found by their
//! tuple and rewritten to come from the VIP (`ip_vs_out`).

use aya_ebpf::programs::XdpContext;
use lb_common::{Dest, REASON_DROP_INTERNAL};

use crate::{Verdict, parse::Packet};

/// Rewrites a request of a masqueraded flow to its real server and sends it.
#[inline(always)]
pub fn request(_ctx: &XdpContext, _pkt: &Packet, _dest: *mut Dest, _reason: u32) -> Verdict {
    Verdict::Drop(REASON_DROP_INTERNAL)
}

//! The tunnel header after the outer IP header: none for IPIP (4, 41),
//! UDP and GUE to the interface's GUE port, or GRE (lb_ebpf's `decap`
//! rules say which GUE and GRE headers we take), and what it carries.

use aya_ebpf::programs::XdpContext;
use lb_common::decap::{
    DECAP_REASON_GRE_V4, DECAP_REASON_GRE_V6, DECAP_REASON_GUE_V4, DECAP_REASON_GUE_V6,
    DECAP_REASON_IPIP_V4, DECAP_REASON_IPIP_V6, DECAP_REASON_PASS_BAD_OUTER,
    DECAP_REASON_PASS_GRE_UNSUPPORTED, DECAP_REASON_PASS_GUE_UNSUPPORTED,
    DECAP_REASON_PASS_NOT_CONFIGURED, DECAP_REASON_PASS_NOT_TUNNEL, DecapIface,
};
use lb_ebpf::decap::{IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, gre, gue};

use crate::{
    Verdict,
    maps::DECAP_IFACES,
    outer::{L2, Outer},
    ptr_at,
};

/// The tunnel header: the bytes to strip after the outer IP header, the
/// inner family, the counter of a decapsulation, and the interface's
/// settings.
pub struct Tunnel {
    pub len: usize,
    /// The bytes the outer datagram carries after the tunnel header: the
    /// room for the inner packet (GUE: the UDP length less the UDP and GUE
    /// headers; otherwise the outer payload less the tunnel header).
    pub room: usize,
    pub v6: bool,
    pub reason: u32,
    pub iface: DecapIface,
}

#[inline(always)]
pub fn header(ctx: &XdpContext, l2: &L2, o: &Outer) -> Result<Tunnel, Verdict> {
    let ifindex = ctx.ingress_ifindex() as u32;
    // Sound: a copy of the value, read at once.
    let Some(iface) = (unsafe { DECAP_IFACES.get(ifindex) }).copied() else {
        return Err(Verdict::Pass(DECAP_REASON_PASS_NOT_CONFIGURED));
    };
    let off = l2.len + o.hdr_len;
    let bad = Verdict::Pass(DECAP_REASON_PASS_BAD_OUTER);
    let (len, carried, v6, v4_reason, v6_reason) = match o.proto {
        IPPROTO_IPIP => (
            0,
            o.payload,
            false,
            DECAP_REASON_IPIP_V4,
            DECAP_REASON_IPIP_V6,
        ),
        IPPROTO_IPV6 => (
            0,
            o.payload,
            true,
            DECAP_REASON_IPIP_V4,
            DECAP_REASON_IPIP_V6,
        ),
        IPPROTO_UDP => {
            let Some(u) = ptr_at::<[u8; 8]>(ctx, off) else {
                return Err(bad);
            };
            // Sound: bounds-checked just above.
            let u = unsafe { *u };
            if [u[2], u[3]] != iface.gue_port {
                return Err(Verdict::Pass(DECAP_REASON_PASS_NOT_TUNNEL));
            }
            // The UDP layer's length checks (`udp_rcv`).
            let ulen = u16::from_be_bytes([u[4], u[5]]) as usize;
            if ulen < 8 + 4 || ulen > o.payload {
                return Err(bad);
            }
            let Some(g) = ptr_at::<[u8; 4]>(ctx, off + 8) else {
                return Err(bad);
            };
            let g = unsafe { *g };
            let Some(inner) = gue(g[0], g[1], u16::from_be_bytes([g[2], g[3]])) else {
                return Err(Verdict::Pass(DECAP_REASON_PASS_GUE_UNSUPPORTED));
            };
            (
                8 + inner.skip as usize,
                ulen,
                inner.v6,
                DECAP_REASON_GUE_V4,
                DECAP_REASON_GUE_V6,
            )
        }
        IPPROTO_GRE => {
            let Some(g) = ptr_at::<[u8; 4]>(ctx, off) else {
                return Err(bad);
            };
            let g = unsafe { *g };
            let Some(inner) = gre(
                u16::from_be_bytes([g[0], g[1]]),
                u16::from_be_bytes([g[2], g[3]]),
            ) else {
                return Err(Verdict::Pass(DECAP_REASON_PASS_GRE_UNSUPPORTED));
            };
            (
                inner.skip as usize,
                o.payload,
                inner.v6,
                DECAP_REASON_GRE_V4,
                DECAP_REASON_GRE_V6,
            )
        }
        _ => return Err(Verdict::Pass(DECAP_REASON_PASS_NOT_TUNNEL)),
    };
    if len > carried {
        return Err(bad);
    }
    Ok(Tunnel {
        len,
        room: carried - len,
        v6,
        reason: if o.v6 { v6_reason } else { v4_reason },
        iface,
    })
}

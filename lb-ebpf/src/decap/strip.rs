//! The inner packet: its header (of the family the tunnel says), its
//! destination (a local address, or one of the interface's `--vip`s), the
//! ECN rule (`INET_ECN_decapsulate`), then the outer headers stripped: the
//! link-layer header moved up to just before the inner packet with the
//! inner EtherType (Katran's `decap_v4`/`decap_v6`), and the packet passed
//! to the stack. Nothing of the inner packet changes but a CE mark.

use aya_ebpf::{
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use lb_common::{
    addr_from_octets, addr_v4,
    decap::{
        DECAP_F_VIPS, DECAP_FAMILY_V4, DECAP_FAMILY_V6, DECAP_REASON_DROP_ECN,
        DECAP_REASON_DROP_INTERNAL, DECAP_REASON_PASS_BAD_INNER, DECAP_REASON_PASS_INNER_NOT_LOCAL,
        DecapVipKey,
    },
};
use lb_ebpf::decap::{ETH_P_IP, ETH_P_IPV6, Ecn, ecn_decapsulate, ipv4_set_ce};

use crate::{
    Verdict,
    maps::DECAP_VIPS,
    outer::{L2, Outer, is_local, martian_dst_v4, martian_dst_v6},
    ptr_at,
    tunnel::Tunnel,
};

#[inline(always)]
pub fn inner(ctx: &XdpContext, l2: &L2, o: &Outer, t: &Tunnel) -> Verdict {
    let bad = Verdict::Pass(DECAP_REASON_PASS_BAD_INNER);
    let strip = o.hdr_len + t.len;
    let off = l2.len + strip;
    // The inner header, within what the outer datagram carries; its own
    // length (`tot_len`, or 40 + `payload_len`) must fit in it too.
    let (daddr, ecn, inner_len, martian) = if t.v6 {
        if 40 > t.room {
            return bad;
        }
        let Some(h) = ptr_at::<[u8; 40]>(ctx, off) else {
            return bad;
        };
        // Sound: bounds-checked just above.
        let h = unsafe { &*h };
        if h[0] >> 4 != 6 {
            return bad;
        }
        let mut d = [0u8; 16];
        d.copy_from_slice(&h[24..40]);
        let len = 40 + u16::from_be_bytes([h[4], h[5]]) as usize;
        (
            addr_from_octets(d),
            (h[1] >> 4) & 3,
            len,
            martian_dst_v6(&d),
        )
    } else {
        if 20 > t.room {
            return bad;
        }
        let Some(h) = ptr_at::<[u8; 20]>(ctx, off) else {
            return bad;
        };
        // Sound: bounds-checked just above.
        let h = unsafe { &*h };
        let ihl = (h[0] & 0x0f) as usize * 4;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        if h[0] >> 4 != 4 || ihl < 20 || len < ihl {
            return bad;
        }
        let d = [h[16], h[17], h[18], h[19]];
        (addr_v4(d), h[1] & 3, len, martian_dst_v4(d))
    };
    // Reaching past the outer datagram: left to the kernel (which drops
    // it). So is an inner IPv6 payload length of 0 (a jumbogram's).
    if inner_len > t.room || (t.v6 && inner_len == 40) {
        return bad;
    }
    let wanted = if martian {
        false
    } else if t.iface.flags & DECAP_F_VIPS != 0 {
        let key = DecapVipKey {
            ifindex: ctx.ingress_ifindex() as u32,
            family: if t.v6 {
                DECAP_FAMILY_V6
            } else {
                DECAP_FAMILY_V4
            },
            addr: daddr,
        };
        DECAP_VIPS.get_ptr(key).is_some()
    } else {
        is_local(daddr, t.v6)
    };
    if !wanted {
        return Verdict::Pass(DECAP_REASON_PASS_INNER_NOT_LOCAL);
    }
    let ecn = ecn_decapsulate(o.ecn, ecn);
    if ecn == Ecn::Drop {
        return Verdict::Drop(DECAP_REASON_DROP_ECN);
    }

    // The link-layer header as it is (MACs, and the VLAN tag if any).
    let Some(macs) = ptr_at::<[u8; 12]>(ctx, 0) else {
        return bad;
    };
    let macs = unsafe { *macs };
    let tag = if l2.len == 18 {
        let Some(tag) = ptr_at::<[u8; 4]>(ctx, 12) else {
            return bad;
        };
        unsafe { *tag }
    } else {
        [0; 4]
    };
    // Whatever follows the inner packet (the rest of the outer datagram,
    // Ethernet padding) is cut off, as `ip_rcv`/`ipv6_rcv` trim the
    // decapsulated packet to its own length (`pskb_trim_rcsum`).
    let frame = ctx.data_end() - ctx.data();
    let keep = off + inner_len;
    if frame > keep {
        let cut = (frame - keep) as i32;
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, -cut) } != 0 {
            return Verdict::Drop(DECAP_REASON_DROP_INTERNAL);
        }
    }
    // Shrinking the head cannot fail here (the frame keeps its inner
    // packet); if it did, nothing was changed.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, strip as i32) } != 0 {
        return Verdict::Drop(DECAP_REASON_DROP_INTERNAL);
    }
    let proto = if t.v6 { ETH_P_IPV6 } else { ETH_P_IP };
    // Pointers derived again after the adjustment.
    let Some(eth) = ptr_at::<[u8; 12]>(ctx, 0) else {
        return Verdict::Drop(DECAP_REASON_DROP_INTERNAL);
    };
    unsafe { *eth = macs };
    if l2.len == 18 {
        let Some(p) = ptr_at::<[u8; 6]>(ctx, 12) else {
            return Verdict::Drop(DECAP_REASON_DROP_INTERNAL);
        };
        let e = proto.to_be_bytes();
        unsafe { *p = [tag[0], tag[1], tag[2], tag[3], e[0], e[1]] };
    } else {
        let Some(p) = ptr_at::<[u8; 2]>(ctx, 12) else {
            return Verdict::Drop(DECAP_REASON_DROP_INTERNAL);
        };
        unsafe { *p = proto.to_be_bytes() };
    }
    if ecn == Ecn::SetCe {
        set_ce(ctx, l2.len, t.v6);
    }
    Verdict::Pass(t.reason)
}

/// Marks the inner packet at `off` CE (`IP_ECN_set_ce`, `IP6_ECN_set_ce`).
#[inline(always)]
fn set_ce(ctx: &XdpContext, off: usize, v6: bool) {
    if v6 {
        // The traffic class's ECN bits are bits 4 and 5 of the second byte.
        if let Some(b) = ptr_at::<[u8; 2]>(ctx, off) {
            unsafe { (*b)[1] |= 0x30 };
        }
    } else if let Some(h) = ptr_at::<[u8; 12]>(ctx, off) {
        unsafe {
            let check = u16::from_be_bytes([(*h)[10], (*h)[11]]);
            let (tos, check) = ipv4_set_ce((*h)[0], (*h)[1], check);
            (*h)[1] = tos;
            let c = check.to_be_bytes();
            (*h)[10] = c[0];
            (*h)[11] = c[1];
        }
    }
}

//! The inner packet: its header (of the family the tunnel says), its
//! destination (a local address, or one of the interface's `--vip`s), the
//! ECN rule (`INET_ECN_decapsulate`), then the outer headers stripped: the
//! link-layer header moved up to just before the inner packet with the
//! inner EtherType (Katran's `decap_v4`/`decap_v6`), and the packet passed
//! to the stack. Nothing of the inner packet changes but a CE mark.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{
    addr_from_octets, addr_v4,
    decap::{
        DECAP_F_VIPS, DECAP_REASON_DROP_ECN, DECAP_REASON_DROP_INTERNAL,
        DECAP_REASON_PASS_BAD_INNER, DECAP_REASON_PASS_INNER_NOT_LOCAL, DecapVipKey,
    },
};
use lb_ebpf::decap::{ETH_P_IP, ETH_P_IPV6, Ecn, ecn_decapsulate, ipv4_set_ce};

use crate::{
    Verdict,
    maps::DECAP_VIPS,
    outer::{L2, Outer, is_local},
    ptr_at,
    tunnel::Tunnel,
};

#[inline(always)]
pub fn inner(ctx: &XdpContext, l2: &L2, o: &Outer, t: &Tunnel) -> Verdict {
    let bad = Verdict::Pass(DECAP_REASON_PASS_BAD_INNER);
    let strip = o.hdr_len + t.len;
    let off = l2.len + strip;
    // The inner header, within what the outer header carries.
    let (daddr, ecn) = if t.v6 {
        if t.len + 40 > o.payload {
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
        (addr_from_octets(d), (h[1] >> 4) & 3)
    } else {
        if t.len + 20 > o.payload {
            return bad;
        }
        let Some(h) = ptr_at::<[u8; 20]>(ctx, off) else {
            return bad;
        };
        // Sound: bounds-checked just above.
        let h = unsafe { &*h };
        if h[0] >> 4 != 4 || h[0] & 0x0f < 5 {
            return bad;
        }
        (addr_v4([h[16], h[17], h[18], h[19]]), h[1] & 3)
    };
    let wanted = if t.iface.flags & DECAP_F_VIPS != 0 {
        let key = DecapVipKey {
            ifindex: ctx.ingress_ifindex() as u32,
            addr: daddr,
        };
        DECAP_VIPS.get_ptr(key).is_some()
    } else {
        is_local(daddr)
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

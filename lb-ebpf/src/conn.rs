//! Connection entries: look up the flow, apply IPVS's rules for an existing
//! entry (expiry, port reuse, removed real server), track TCP state and
//! forward; flows without a usable entry go to `new_flow`.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    CONN_F_CONTROLLED, CONN_S_CLOSE, CONN_S_ESTABLISHED, CONN_S_FIN_WAIT, CONN_S_TIME_WAIT,
    CONN_S_UDP, Conn, ConnKey, DEST_F_AVAILABLE, DEST_F_IN_USE, FWD_MASQ, REASON_DROP_INTERNAL,
    REASON_DROP_NODEST, REASON_FWD_CONN, REASON_FWD_ICMP, REASON_PASS_NO_CONN,
    REASON_PASS_NO_SERVICE, REASON_PASS_NOT_L4, Settings,
};
use lb_ebpf::tcp_state::{Dir, TCP_RST, TCP_SYN, next_state_in};

use crate::{
    Verdict, clock, counts, forward, lookup,
    maps::{CONNS, DESTS},
    new_flow,
    parse::Packet,
    reply,
    settings::{settings, timeout},
    stats, template,
};

/// The outcome for an existing entry: done with the packet, or the entry is
/// gone (expired, or expired now) and the packet is handled as if there had
/// been none.
enum Existing {
    Done(Verdict),
    Gone,
}

#[inline(always)]
pub fn handle(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    let Some(cfg) = settings() else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    let now = clock::now(cfg);
    let key = &pkt.key;
    // IPVS schedules only a TCP SYN (without RST), and any UDP datagram.
    let schedulable = !pkt.is_tcp() || pkt.tcp_flags & (TCP_SYN | TCP_RST) == TCP_SYN;

    // Like IPVS, the connection table first: an existing flow needs no
    // service lookup.
    if let Some(c) = CONNS.get_ptr_mut(key) {
        match existing(ctx, pkt, cfg, key, c, now, schedulable) {
            Existing::Done(v) => return v,
            Existing::Gone => {}
        }
    }
    let Some(svc) = lookup::service(pkt, cfg) else {
        return Verdict::Pass(REASON_PASS_NO_SERVICE);
    };
    if !schedulable {
        // A TCP segment of no known flow: IPVS hands it to the local stack.
        return Verdict::Pass(REASON_PASS_NO_CONN);
    }
    new_flow::schedule(ctx, pkt, svc, cfg, now)
}

/// An ICMP error about a flow in the table goes to the flow's real server,
/// unchanged but for the MACs (IPVS `ip_vs_in_icmp`): a "fragmentation
/// needed" about the real server's replies must reach it, or path MTU
/// discovery breaks. It changes nothing in the entry. Any other ICMP error
/// is the kernel's.
#[inline(never)]
pub fn icmp_error(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    let other = Verdict::Pass(REASON_PASS_NOT_L4);
    if lookup::vip_filter(pkt).is_err() {
        return other;
    }
    let key = &pkt.key;
    let Some(c) = CONNS.get_ptr(key) else {
        return other;
    };
    let Some(cfg) = settings() else {
        return other;
    };
    let now = clock::now(cfg);
    let (dest_id, dest_gen, expires, svc_id) =
        unsafe { ((*c).dest, (*c).dest_gen, (*c).expires(), (*c).svc) };
    if now >= expires {
        return other;
    }
    let Some(dest) = DESTS.get_ptr_mut(dest_id) else {
        return other;
    };
    let usable = DEST_F_IN_USE | DEST_F_AVAILABLE;
    if unsafe { (*dest).generation } != dest_gen || unsafe { (*dest).flags } & usable != usable {
        return other;
    }
    stats::traffic(svc_id, dest_id, pkt.tot_len as u64, false);
    forward::xmit(
        ctx,
        pkt,
        unsafe { (*c).fwd },
        dest,
        dest_id,
        REASON_FWD_ICMP,
    )
}

#[inline(always)]
fn existing(
    ctx: &XdpContext,
    pkt: &Packet,
    cfg: &Settings,
    key: &ConnKey,
    c: *mut Conn,
    now: u64,
    schedulable: bool,
) -> Existing {
    let (dest_id, dest_gen, state, flags, expires, svc_id, fwd) = unsafe {
        (
            (*c).dest,
            (*c).dest_gen,
            (*c).state,
            (*c).flags,
            (*c).expires(),
            (*c).svc,
            (*c).fwd,
        )
    };
    if now >= expires {
        // The entry's timer has run out: in IPVS it would be gone. The
        // sweeper has not come by yet; it goes now.
        counts::remove(key, c);
        return Existing::Gone;
    }
    let Some(dest) = DESTS.get_ptr_mut(dest_id) else {
        counts::remove(key, c);
        return Existing::Gone;
    };
    let (dflags, dgen, weight) = unsafe { ((*dest).flags, (*dest).generation, (*dest).weight) };
    // Still the same real server (not flushed, slot not reused)?
    let bound = dgen == dest_gen && dflags & DEST_F_IN_USE != 0;
    let available = bound && dflags & DEST_F_AVAILABLE != 0;

    // A SYN on an existing entry: port reuse (docs/SEMANTICS.md §4.4).
    if pkt.is_tcp() && schedulable {
        let quiescent_reuse = cfg.expire_nodest_conn != 0 && available && weight == 0;
        let closing = state == CONN_S_TIME_WAIT
            || state == CONN_S_CLOSE
            // FIN_WAIT only for the kernel's NOOUTPUT conns (not -m).
            || (cfg.conn_reuse_mode & 2 != 0 && state == CONN_S_FIN_WAIT && fwd != FWD_MASQ);
        let reuse = cfg.conn_reuse_mode != 0 && flags & CONN_F_CONTROLLED == 0 && closing;
        if quiescent_reuse || reuse {
            counts::remove(key, c);
            return Existing::Gone;
        }
    }

    if !available {
        // The real server was removed (§4.2, §4.3). A flushed entry (another
        // generation) is gone whatever the sysctl says now.
        if cfg.expire_nodest_conn != 0 || !bound {
            counts::remove(key, c);
            if pkt.is_tcp() && !schedulable {
                return Existing::Done(reply::tcp_reset(ctx, pkt));
            }
            return Existing::Gone;
        }
        // Dropped silently, and not refreshed: the flow resumes if the real
        // server is added back before the entry expires.
        return Existing::Done(Verdict::Drop(REASON_DROP_NODEST));
    }

    // A masqueraded conn sees both sides: the INPUT table (§19).
    let dir = if fwd == FWD_MASQ {
        Dir::Input
    } else {
        Dir::InputOnly
    };
    let new_state = if pkt.is_tcp() {
        next_state_in(dir, state, pkt.tcp_flags)
    } else {
        CONN_S_UDP
    };
    unsafe {
        (*c).state = new_state;
        (*c).last_seen = now;
        (*c).timeout = timeout(cfg, new_state);
    }
    if new_state != state {
        counts::state_changed(c, new_state);
    }
    if flags & CONN_F_CONTROLLED != 0 {
        let assured = new_state == CONN_S_ESTABLISHED && state != CONN_S_ESTABLISHED;
        template::keep(pkt, c, assured);
    }
    stats::traffic(svc_id, dest_id, pkt.tot_len as u64, false);
    Existing::Done(forward::xmit(ctx, pkt, fwd, dest, dest_id, REASON_FWD_CONN))
}

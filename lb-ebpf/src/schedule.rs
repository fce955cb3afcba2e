//! New flows: through the client's persistence template when the service is
//! persistent and the template is valid (LVS-SEMANTICS §2, §3.2), otherwise
//! through the scheduler; no real server available → ICMP port unreachable.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    CONN_F_CONTROLLED, CONN_F_OPEN, CONN_F_PORT0, CONN_S_NONE, CONN_S_UDP, Conn, ConnKey,
    DEST_F_AVAILABLE, DEST_F_IN_USE, Dest, NS_PER_SEC, REASON_DROP_CONN_TABLE,
    REASON_DROP_INTERNAL, REASON_FWD_NEW, REASON_FWD_TEMPLATE, SVC_F_PERSISTENT, SVC_F_PORT0,
    Service, ServiceKey, Settings, TEMPLATE_PUSH_SLACK_NS, TMPL_S_ASSURED, TMPL_S_NONE, Template,
    TemplateKey, conn_state_is_closing, template_expiry,
};
use lb_ebpf::{sched, tcp_state::next_state};

use crate::{
    Verdict, forward,
    maps::{CONNS, DESTS, SCHED, SERVICES, TEMPLATES},
    parse::Packet,
    reply,
    stats::{self, timeout},
};

/// The template key of a packet (§2.1): masked client address, VIP, service
/// port (0 for a port-0 service), protocol.
#[inline(always)]
fn template_key(pkt: &Packet, netmask: &[u8; 4], port0: bool) -> TemplateKey {
    let mut caddr = pkt.saddr;
    for (b, m) in caddr.iter_mut().zip(netmask.iter()) {
        *b &= *m;
    }
    TemplateKey {
        caddr,
        vaddr: pkt.daddr,
        vport: if port0 { [0, 0] } else { pkt.dport },
        proto: pkt.proto,
        _pad: 0,
    }
}

/// `ip_vs_check_template`: the template's dest if it may still be used.
#[inline(always)]
fn template_dest(t: *const Template, cfg: &Settings, now: u64) -> Option<*mut Dest> {
    let (expires, dest_id, dest_gen, epoch) =
        unsafe { ((*t).expires, (*t).dest, (*t).dest_gen, (*t).epoch) };
    if now >= expires {
        return None;
    }
    let dest = DESTS.get_ptr_mut(dest_id)?;
    let (flags, gen_, tmpl_epoch, weight) = unsafe {
        (
            (*dest).flags,
            (*dest).generation,
            (*dest).tmpl_epoch,
            (*dest).weight,
        )
    };
    let usable = DEST_F_IN_USE | DEST_F_AVAILABLE;
    if flags & usable != usable || gen_ != dest_gen || tmpl_epoch != epoch {
        return None;
    }
    if cfg.expire_quiescent_template != 0 && weight == 0 {
        return None;
    }
    Some(dest)
}

#[inline(always)]
pub fn new_flow(
    ctx: &XdpContext,
    pkt: &Packet,
    svc: &Service,
    cfg: &Settings,
    key: &ConnKey,
    now: u64,
) -> Verdict {
    let persistent = svc.flags & SVC_F_PERSISTENT != 0;
    let state = if pkt.is_tcp() {
        next_state(CONN_S_NONE, pkt.tcp_flags)
    } else {
        CONN_S_UDP
    };
    let conn_timeout = timeout(cfg, state);
    let conn_expires = now + conn_timeout as u64 * NS_PER_SEC;
    // TCP conns count as open in their template until they close.
    let open = pkt.is_tcp() && !conn_state_is_closing(state);

    let mut reason = REASON_FWD_NEW;
    let mut chosen: Option<(u32, *mut Dest)> = None;
    let port0 = svc.flags & SVC_F_PORT0 != 0;
    let tkey = template_key(pkt, &svc.netmask, port0);
    if persistent {
        if let Some(t) = TEMPLATES.get_ptr_mut(&tkey) {
            if let Some(dest) = template_dest(t, cfg, now) {
                // Refresh: a new flow re-arms the template (§2.4).
                unsafe {
                    let deadline = now + (*t).timeout as u64 * NS_PER_SEC;
                    if deadline > (*t).deadline {
                        (*t).deadline = deadline;
                    }
                    let exp = template_expiry((*t).deadline, conn_expires);
                    if exp > (*t).expires {
                        (*t).expires = exp;
                    }
                    (*t).open += open as u32;
                    chosen = Some(((*t).dest, dest));
                }
                reason = REASON_FWD_TEMPLATE;
            }
        }
    }
    let (dest_id, dest) = match chosen {
        Some(c) => c,
        None => {
            let Some(st) = SCHED.get_ptr_mut(svc.id) else {
                return Verdict::Drop(REASON_DROP_INTERNAL);
            };
            let Some(pos) = sched::pick(svc, unsafe { &mut *st }) else {
                return reply::port_unreachable(ctx, pkt);
            };
            let Some(sd) = svc.dests.get(pos) else {
                return Verdict::Drop(REASON_DROP_INTERNAL);
            };
            let dest_id = sd.dest;
            let Some(dest) = DESTS.get_ptr_mut(dest_id) else {
                return Verdict::Drop(REASON_DROP_INTERNAL);
            };
            if persistent {
                let deadline = now + svc.timeout as u64 * NS_PER_SEC;
                let t = Template {
                    expires: template_expiry(deadline, conn_expires),
                    deadline,
                    dest: dest_id,
                    dest_gen: unsafe { (*dest).generation },
                    epoch: unsafe { (*dest).tmpl_epoch },
                    timeout: svc.timeout,
                    open: open as u32,
                    state: TMPL_S_NONE,
                    _pad: [0; 3],
                };
                // A full LRU evicts an old template; failure only loses
                // persistence for this client, the flow still goes on.
                let _ = TEMPLATES.insert(&tkey, &t, 0);
            }
            (dest_id, dest)
        }
    };

    let mut flags = 0;
    if port0 {
        flags |= CONN_F_PORT0;
    }
    if persistent {
        flags |= CONN_F_CONTROLLED;
        if open {
            flags |= CONN_F_OPEN;
        }
    }
    let conn = Conn {
        last_seen: now,
        tmpl_pushed: if persistent {
            conn_expires + TEMPLATE_PUSH_SLACK_NS
        } else {
            0
        },
        dest: dest_id,
        dest_gen: unsafe { (*dest).generation },
        timeout: conn_timeout,
        svc: svc.id,
        state,
        flags,
        _pad: [0; 6],
    };
    if CONNS.insert(key, &conn, 0).is_err() {
        return Verdict::Drop(REASON_DROP_CONN_TABLE);
    }
    stats::traffic(svc.id, dest_id, pkt.tot_len as u64, true);
    forward::direct_route(ctx, dest, dest_id, reason)
}

/// Keeps the template of a controlled conn alive while the conn lives, as
/// the kernel postpones a template's expiry while it controls conns (§2.4),
/// and marks it ASSURED when the conn reaches ESTABLISHED (§2.5). When the
/// last open TCP conn of the template closes, the template's expiry is set
/// back to what the closing conn needs, so a template does not outlive its
/// connections' real lifetimes by the ESTABLISHED timeout. Touches the
/// template map on state changes and at most once per
/// `TEMPLATE_PUSH_SLACK_NS` otherwise.
#[inline(always)]
pub fn keep_template(pkt: &Packet, c: *mut Conn, assured: bool) {
    let (expires, pushed, dest, dest_gen, flags, state) = unsafe {
        (
            (*c).expires(),
            (*c).tmpl_pushed,
            (*c).dest,
            (*c).dest_gen,
            (*c).flags,
            (*c).state,
        )
    };
    let closes = flags & CONN_F_OPEN != 0 && conn_state_is_closing(state);
    if expires <= pushed && !assured && !closes {
        return;
    }
    // A closing conn pushes its exact expiry (and then on each packet, of
    // which it has few); an open one a little more, to push less often.
    let target = if conn_state_is_closing(state) {
        expires
    } else {
        expires + TEMPLATE_PUSH_SLACK_NS
    };
    unsafe {
        (*c).tmpl_pushed = target;
        if closes {
            (*c).flags = flags & !CONN_F_OPEN;
        }
    }
    // The service's netmask gives the template key; a service deleted since
    // has no templates to keep.
    let port0 = flags & CONN_F_PORT0 != 0;
    let skey = ServiceKey {
        addr: pkt.daddr,
        port: if port0 { [0, 0] } else { pkt.dport },
        proto: pkt.proto,
        _pad: 0,
    };
    let Some(svc) = SERVICES.get_ptr(&skey) else {
        return;
    };
    let tkey = template_key(pkt, unsafe { &(*svc).netmask }, port0);
    if let Some(t) = TEMPLATES.get_ptr_mut(&tkey) {
        unsafe {
            // Only the conn's own template: a new template made after this
            // one was invalidated belongs to other conns.
            if (*t).dest != dest || (*t).dest_gen != dest_gen {
                return;
            }
            let exp = template_expiry((*t).deadline, target);
            if closes {
                let open = (*t).open;
                (*t).open = open.saturating_sub(1);
                if open <= 1 {
                    // The last open conn: the template now lives as long
                    // as this closing conn needs (and its deadline).
                    (*t).expires = exp;
                } else if exp > (*t).expires {
                    (*t).expires = exp;
                }
            } else if exp > (*t).expires {
                (*t).expires = exp;
            }
            if assured {
                (*t).state = TMPL_S_ASSURED;
            }
        }
    }
}

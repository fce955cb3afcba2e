//! Persistence templates (docs/SEMANTICS.md §2, §3.2): the key of a client's
//! template, the rules by which a template may still be used
//! (`ip_vs_check_template`), and the upkeep of a template from the conns it
//! controls.

use lb_common::{
    Addr, CONN_F_FWMARK, CONN_F_OPEN, CONN_F_PORT0, Conn, Dest, NS_PER_SEC, ServiceKey, Settings,
    TEMPLATE_PUSH_SLACK_NS, TMPL_F_INVALID, TMPL_INVALID_PORT, TMPL_S_ASSURED, TMPL_S_NONE,
    Template, TemplateKey, addr_masked, conn_state_is_closing, fwmark_addr, fwmark_service_key,
    template_dest_valid, template_expiry, template_usable,
};

use crate::{
    classify,
    maps::{DESTS, SERVICES, TEMPLATES},
    parse::Packet,
};

/// The template key of a packet (§2.1): masked client address, VIP, service
/// port (0 for a port-0 service), protocol; for a fwmark service (`mark`,
/// its `Service::fwmark`, non-zero) protocol 0 ("IP"), the mark as the
/// address and port 0, so TCP and UDP flows of every port of the mark share
/// it (`ip_vs_sched_persist` with `svc->fwmark`).
#[inline(always)]
pub fn key(pkt: &Packet, netmask: &Addr, port0: bool, mark: u32) -> TemplateKey {
    let caddr = addr_masked(&pkt.key.caddr, netmask);
    if mark != 0 {
        return TemplateKey {
            caddr,
            vaddr: fwmark_addr(mark, pkt.v6),
            vport: [0, 0],
            proto: 0,
            _pad: 0,
        };
    }
    TemplateKey {
        caddr,
        vaddr: pkt.key.vaddr,
        vport: if port0 { [0, 0] } else { pkt.key.vport },
        proto: pkt.key.proto,
        _pad: 0,
    }
}

/// `ip_vs_check_template`: the template's dest if it may still be used
/// (lb-common's `template_usable`, the rule `lbctl whereis` applies too).
#[inline(always)]
fn check(t: *const Template, cfg: &Settings, now: u64) -> Option<*mut Dest> {
    let dest = DESTS.get_ptr_mut(unsafe { (*t).dest })?;
    // Sound: both point into map values, which outlive the packet.
    let usable = unsafe { template_usable(&*t, &*dest, cfg.expire_quiescent_template, now) };
    usable.then_some(dest)
}

/// Before a new template replaces the one at `tkey` (which [`reuse`]
/// refused): when that one is live and its dest the reason, it is
/// invalidated as the kernel's `ip_vs_check_template` does, kept at the key
/// with vport 65535 and flagged, where `-L -c` lists it with ports 65535
/// until it expires. An expired one (the kernel's timer would have removed
/// it) or one invalidated already is left to be replaced. A subprogram, so
/// that the paths that make a template stay one for the verifier.
#[inline(never)]
fn invalidate(tkey: &TemplateKey, expire_quiescent_template: u32, now: u64) {
    let Some(t) = TEMPLATES.get_ptr(tkey) else {
        return;
    };
    // Sound: `t` points into a map value, which outlives the packet.
    let mut parked = unsafe { *t };
    if now >= parked.expires || parked.flags & TMPL_F_INVALID != 0 {
        return;
    }
    let Some(dest) = DESTS.get_ptr(parked.dest) else {
        return;
    };
    if unsafe { template_dest_valid(&parked, &*dest, expire_quiescent_template) } {
        return;
    }
    parked.flags |= TMPL_F_INVALID;
    let key = TemplateKey {
        vport: TMPL_INVALID_PORT.to_be_bytes(),
        ..*tkey
    };
    // A live template of a service of port 65535 holds that key: it stays,
    // and only the listing of the invalidated one is lost.
    if let Some(there) = TEMPLATES.get_ptr(key) {
        let (expires, flags) = unsafe { ((*there).expires, (*there).flags) };
        if now < expires && flags & TMPL_F_INVALID == 0 {
            return;
        }
    }
    // Failure loses only the listing of the old template.
    let _ = TEMPLATES.insert(key, parked, 0);
}

/// A new flow of a persistent service: the dest of the client's template
/// (`DESTS` index and pointer) when there is one that may still be used; the
/// new flow re-arms it (§2.4) and, when `open`, counts in its open conns.
#[inline(always)]
pub fn reuse(
    tkey: &TemplateKey,
    cfg: &Settings,
    now: u64,
    conn_expires: u64,
    open: bool,
) -> Option<(u32, *mut Dest)> {
    let t = TEMPLATES.get_ptr_mut(tkey)?;
    let dest = check(t, cfg, now)?;
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
        Some(((*t).dest, dest))
    }
}

/// A new template for the client: its flows go to `dest_id` for `timeout`
/// seconds after the last new flow (and while its conns live). The one it
/// replaces, refused by [`reuse`], is invalidated first.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "inlined: the values of the caller"
)]
pub fn create(
    tkey: &TemplateKey,
    dest_id: u32,
    dest: *const Dest,
    timeout: u32,
    cfg: &Settings,
    now: u64,
    conn_expires: u64,
    open: bool,
) {
    invalidate(tkey, cfg.expire_quiescent_template, now);
    let deadline = now + timeout as u64 * NS_PER_SEC;
    let t = Template {
        expires: template_expiry(deadline, conn_expires),
        deadline,
        dest: dest_id,
        dest_gen: unsafe { (*dest).generation },
        epoch: unsafe { (*dest).tmpl_epoch },
        timeout,
        open: open as u32,
        state: TMPL_S_NONE,
        flags: 0,
        _pad: [0; 2],
    };
    // A full LRU evicts an old template; failure only loses persistence for
    // this client, the flow still goes on.
    let _ = TEMPLATES.insert(tkey, t, 0);
}

/// Keeps the template of a controlled conn alive while the conn lives, as
/// the kernel postpones a template's expiry while it controls conns (§2.4),
/// and marks it ASSURED when the conn reaches ESTABLISHED (§2.5). When the
/// last open TCP conn of the template closes, the template's expiry is set
/// back to what the closing conn needs, so a template does not outlive its
/// connections' real lifetimes by the ESTABLISHED timeout. Touches the
/// template map on state changes and at most once per
/// `TEMPLATE_PUSH_SLACK_NS` otherwise.
#[inline(never)]
pub fn keep(pkt: &Packet, c: *mut Conn, assured: bool) {
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
    // has no templates to keep. A fwmark service's conn finds it by its
    // packet's mark again (a rule changed since: the template is left to
    // expire).
    let port0 = flags & CONN_F_PORT0 != 0;
    let mark = if flags & CONN_F_FWMARK != 0 {
        classify::mark(pkt)
    } else {
        0
    };
    let skey = if mark != 0 {
        fwmark_service_key(mark, pkt.v6)
    } else {
        ServiceKey {
            addr: pkt.key.vaddr,
            port: if port0 { [0, 0] } else { pkt.key.vport },
            proto: pkt.key.proto,
            _pad: 0,
        }
    };
    let Some(svc) = SERVICES.get_ptr(skey) else {
        return;
    };
    let tkey = unsafe { key(pkt, &(*svc).netmask, port0, (*svc).fwmark) };
    if let Some(t) = TEMPLATES.get_ptr_mut(tkey) {
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

//! A new connection (`ip_vs_schedule`, `ip_vs_sched_persist`): through the
//! client's persistence template when the service is persistent and the
//! template may still be used (docs/SEMANTICS.md §2, §3.2), otherwise through
//! the service's scheduler (a persistent service then makes a template); no
//! real server available → ICMP port unreachable. The conn entry is made and
//! the packet forwarded.

use aya_ebpf::{bindings::BPF_NOEXIST, programs::XdpContext};
use lb_common::{
    CONN_F_CONTROLLED, CONN_F_FWMARK, CONN_F_OPEN, CONN_F_PORT0, CONN_S_NONE, CONN_S_UDP,
    COUNTED_INACTIVE, Conn, ConnKey, DestConns, MhTable, NO_DEST, NS_PER_SEC,
    REASON_DROP_CONN_RACE, REASON_DROP_CONN_TABLE, REASON_DROP_INTERNAL, REASON_FWD_NEW,
    REASON_FWD_ONE_PACKET, REASON_FWD_TEMPLATE, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_PORT0,
    Service, ServiceDest, Settings, ShTable, TEMPLATE_PUSH_SLACK_NS, conn_state_is_closing,
    counted_for,
};
use lb_ebpf::{
    schedulers::{self, Client, Nodes},
    tcp_state::next_state,
};

use crate::{
    Verdict, counts, forward,
    maps::{CONNS, DEST_CONNS, DESTS, MH_TABLES, SCHED, SH_TABLES, SVC_DESTS},
    parse::Packet,
    reply,
    settings::timeout,
    stats, sweep, template,
};

/// `-EEXIST`: `BPF_NOEXIST` found the key taken.
const EEXIST: i32 = 17;

/// Schedules the flow of `pkt` to a real server of `svc`, makes its conn
/// entry and forwards the packet.
#[inline(always)]
pub fn schedule(
    ctx: &XdpContext,
    pkt: &Packet,
    svc: &Service,
    cfg: &Settings,
    now: u64,
) -> Verdict {
    let chosen = choose(pkt, svc, cfg, now);
    if chosen == NO_CHOICE {
        return reply::port_unreachable(ctx, pkt);
    }
    let (dest_id, reason) = ((chosen >> 32) as u32, chosen as u32);
    if dest_id == NO_DEST {
        return Verdict::Drop(reason);
    }
    let Some(dest) = DESTS.get_ptr_mut(dest_id) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    let reason = if svc.flags & SVC_F_ONEPACKET != 0 && !pkt.is_tcp() {
        // One-packet scheduling (`-o`, §2.7): the datagram's entry is made
        // and freed at once in IPVS, so it passes through the counts (and
        // may leave the dest overloaded) but nothing is kept.
        counts::bind(dest_id, COUNTED_INACTIVE);
        counts::unbind(dest_id, COUNTED_INACTIVE);
        REASON_FWD_ONE_PACKET
    } else {
        let mut refused = new_conn(pkt, svc, cfg, dest_id, now);
        if refused == 0 && unsafe { (*dest).fwd } == lb_common::FWD_MASQ {
            // Its replies are found by their own tuple (nat.rs). Here, not
            // in `new_conn`: the context would be its sixth argument.
            refused = crate::nat::track(ctx, pkt, dest_id);
        }
        if refused != 0 {
            return Verdict::Drop(refused);
        }
        reason
    };
    stats::traffic(svc.id, dest_id, pkt.tot_len as u64, true);
    let fwd = unsafe { (*dest).fwd };
    forward::xmit(ctx, pkt, fwd, dest, dest_id, reason)
}

/// [`choose`]: no real server can take the flow.
const NO_CHOICE: u64 = u64::MAX;
/// [`choose`]: an internal failure (no dest, the reason `drop_internal`).
const CHOICE_FAILED: u64 = ((NO_DEST as u64) << 32) | REASON_DROP_INTERNAL as u64;

/// What a new conn of `pkt` starts as: its state, its timeout in seconds,
/// when it expires, and whether it counts as open in its template (TCP
/// conns do until they close).
#[inline(always)]
fn first_state(pkt: &Packet, cfg: &Settings, now: u64) -> (u8, u32, u64, bool) {
    let state = if pkt.is_tcp() {
        next_state(CONN_S_NONE, pkt.tcp_flags)
    } else {
        CONN_S_UDP
    };
    let conn_timeout = timeout(cfg, state);
    let conn_expires = now + conn_timeout as u64 * NS_PER_SEC;
    let open = pkt.is_tcp() && !conn_state_is_closing(state);
    (state, conn_timeout, conn_expires, open)
}

/// The flow's dest: the client's template if it may be used, else the
/// scheduler's pick (and a persistent service makes the client's
/// template). Packed as `dest << 32 | reason`, or [`NO_CHOICE`], or
/// [`CHOICE_FAILED`]. The template's work is two subprograms: the template
/// key (16-byte addresses) would not fit the program's frame beside the
/// scheduler's chain (the BPF stack is 512 bytes for the whole chain of
/// calls).
#[inline(always)]
fn choose(pkt: &Packet, svc: &Service, cfg: &Settings, now: u64) -> u64 {
    let persistent = svc.flags & SVC_F_PERSISTENT != 0;
    if persistent {
        let dest_id = by_template(pkt, svc, cfg, now);
        if dest_id != NO_DEST {
            return ((dest_id as u64) << 32) | REASON_FWD_TEMPLATE as u64;
        }
    }
    let Some(st) = SCHED.get_ptr_mut(svc.id) else {
        return CHOICE_FAILED;
    };
    let client = Client {
        addr: pkt.key.caddr,
        port: pkt.key.cport,
    };
    let nodes = MapNodes {
        daddr: pkt.key.vaddr,
    };
    let Some(p) = schedulers::pick(svc, unsafe { &mut *st }, &nodes, &client) else {
        return NO_CHOICE;
    };
    if persistent {
        make_template(pkt, svc, cfg, p.dest, now);
    }
    ((p.dest as u64) << 32) | REASON_FWD_NEW as u64
}

/// The dest of the client's template when it may be used, else `NO_DEST`.
#[inline(never)]
fn by_template(pkt: &Packet, svc: &Service, cfg: &Settings, now: u64) -> u32 {
    let (_, _, conn_expires, open) = first_state(pkt, cfg, now);
    let port0 = svc.flags & SVC_F_PORT0 != 0;
    let tkey = template::key(pkt, &svc.netmask, port0, svc.fwmark);
    match template::reuse(&tkey, cfg, now, conn_expires, open) {
        Some((dest_id, _)) => dest_id,
        None => NO_DEST,
    }
}

/// Makes the client's template, pointing to `dest_id`.
#[inline(never)]
fn make_template(pkt: &Packet, svc: &Service, cfg: &Settings, dest_id: u32, now: u64) {
    let Some(dest) = DESTS.get_ptr_mut(dest_id) else {
        return;
    };
    let (_, _, conn_expires, open) = first_state(pkt, cfg, now);
    let port0 = svc.flags & SVC_F_PORT0 != 0;
    let tkey = template::key(pkt, &svc.netmask, port0, svc.fwmark);
    template::create(
        &tkey,
        dest_id,
        dest,
        svc.timeout,
        cfg,
        now,
        conn_expires,
        open,
    );
}

/// Makes the conn entry of `pkt`'s flow to `dest_id` and counts it: 0, or
/// the reason to drop the packet. A subprogram, as [`choose`].
#[inline(never)]
fn new_conn(pkt: &Packet, svc: &Service, cfg: &Settings, dest_id: u32, now: u64) -> u32 {
    let Some(dest) = DESTS.get_ptr(dest_id) else {
        return REASON_DROP_INTERNAL;
    };
    let (state, conn_timeout, conn_expires, open) = first_state(pkt, cfg, now);
    let conn = entry(
        svc,
        dest_id,
        dest,
        state,
        now,
        conn_timeout,
        conn_expires,
        open,
    );
    insert(&pkt.key, &conn)
}

/// The new conn entry of a flow of `svc` to `dest_id` in `state`.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "inlined: the values of the caller"
)]
fn entry(
    svc: &Service,
    dest_id: u32,
    dest: *const lb_common::Dest,
    state: u8,
    now: u64,
    conn_timeout: u32,
    conn_expires: u64,
    open: bool,
) -> Conn {
    let persistent = svc.flags & SVC_F_PERSISTENT != 0;
    let port0 = svc.flags & SVC_F_PORT0 != 0;
    let mut flags = 0;
    if port0 {
        flags |= CONN_F_PORT0;
    }
    if svc.fwmark != 0 {
        flags |= CONN_F_FWMARK;
    }
    if persistent {
        flags |= CONN_F_CONTROLLED;
        if open {
            flags |= CONN_F_OPEN;
        }
    }
    Conn {
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
        fwd: unsafe { (*dest).fwd },
        _pad: 0,
        counted: counted_for(state),
    }
}

/// Puts the new entry in the table and its dest's count: 0, or the reason
/// to drop the packet. Only a new key: an entry still in the table (expired
/// ones were removed by `conn`) must not be overwritten, or its count would
/// stay.
#[inline(always)]
fn insert(key: &ConnKey, conn: &Conn) -> u32 {
    match CONNS.insert(key, conn, BPF_NOEXIST as u64) {
        Ok(()) => {
            counts::bind(conn.dest, conn.counted);
            0
        }
        Err(e) if e == -EEXIST => REASON_DROP_CONN_RACE,
        // Full: as IPVS when it cannot allocate an entry, the new flow is
        // dropped; no entry is evicted, but the next sweep removes stale
        // half-open ones (§6.4).
        Err(_) => {
            sweep::table_full();
            REASON_DROP_CONN_TABLE
        }
    }
}

/// The schedulers' view of the maps: a service's block of `SVC_DESTS`, the
/// place in its list `DESTS` records for a dest, its sh, mh or dh table, a
/// dest's counts, the lblc/lblcr entries; scans of the list run in
/// `bpf_loop`. `daddr` is the packet's destination address, which dh, lblc
/// and lblcr hash (for a fwmark service it is not the address of the
/// service's key: docs/SEMANTICS.md §16); the scans and the counting
/// schedulers never ask for it.
struct MapNodes {
    daddr: lb_common::Addr,
}

/// What a `bpf_loop` of the schedulers carries: the service and the loop's
/// state (both the caller's).
struct LoopCtx<'a, S> {
    svc: &'a Service,
    steps: &'a mut S,
}

/// One iteration of a schedulers' loop (0 goes on, 1 stops).
#[inline(never)]
extern "C" fn loop_step<S: schedulers::scan::Steps>(i: u32, ctx: *mut core::ffi::c_void) -> i64 {
    // Sound: `ctx` is the `LoopCtx<S>` that `MapNodes::run` handed to
    // `bpf_loop`, alive for the whole loop.
    let ctx = unsafe { &mut *(ctx as *mut LoopCtx<S>) };
    if ctx.steps.step(&MapNodes { daddr: [0; 4] }, ctx.svc, i) {
        0
    } else {
        1
    }
}

/// dh's, lblc's and lblcr's pick ([`schedulers::pick_local`]) as a global
/// BPF function: the verifier checks it once, on its own, whatever the
/// paths of `schedule` that reach it (a static subprogram is checked again
/// for each). Its arguments are a pointer the verifier takes as possibly
/// null and the packet's destination address (its four `Addr` words); the
/// pick comes back packed (`u64::MAX`: none).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn lb_pick_local(svc: *const Service, a0: u32, a1: u32, a2: u32, a3: u32) -> u64 {
    let nodes = MapNodes {
        daddr: [a0, a1, a2, a3],
    };
    // Sound: the caller passes a reference to a live `Service`.
    match unsafe { svc.as_ref() } {
        Some(svc) => schedulers::pick_local(svc, &nodes),
        None => u64::MAX,
    }
}

/// The counting schedulers' pick ([`schedulers::pick_counted`]) as a
/// global BPF function, as [`lb_pick_local`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn lb_pick_counted(svc: *const Service) -> u64 {
    // Sound: the caller passes a reference to a live `Service`.
    match unsafe { svc.as_ref() } {
        Some(svc) => schedulers::pick_counted(svc, &MapNodes { daddr: [0; 4] }),
        None => u64::MAX,
    }
}

impl Nodes for MapNodes {
    #[inline(always)]
    fn node(&self, svc: &Service, i: u32) -> Option<ServiceDest> {
        SVC_DESTS.get(svc.list.wrapping_add(i)).copied()
    }

    #[inline(always)]
    fn dest_rank(&self, dest: u32) -> Option<u32> {
        DESTS.get(dest).map(|d| d.rank)
    }

    #[inline(always)]
    fn sh_table(&self, svc: &Service) -> Option<&ShTable> {
        // Sound: the controller replaces a table whole (a new element) and
        // never writes through the one a packet may be reading.
        unsafe { SH_TABLES.get(svc.table) }
    }

    #[inline(always)]
    fn mh_table(&self, svc: &Service) -> Option<&MhTable> {
        unsafe { MH_TABLES.get(svc.table) }
    }

    #[inline(always)]
    fn conns(&self, dest: u32) -> Option<DestConns> {
        let c = DEST_CONNS.get(dest).copied()?;
        Some(c.resolved(|| DESTS.get(dest).map_or(0, |d| d.u_threshold)))
    }

    #[inline(always)]
    fn run<S: schedulers::scan::Steps>(&self, svc: &Service, n: u32, steps: &mut S) {
        use aya_ebpf::helpers::generated::bpf_loop;
        use core::ffi::c_void;
        let mut ctx = LoopCtx { svc, steps };
        // Sound: the callback takes (u32, *mut c_void) as bpf_loop calls it,
        // and `ctx` outlives the call. A failed call (n over bpf_loop's
        // 1 << 23, never here) leaves the state as it was: no pick.
        unsafe {
            bpf_loop(
                n,
                loop_step::<S> as *const () as *mut c_void,
                &mut ctx as *mut LoopCtx<S> as *mut c_void,
                0,
            );
        }
    }

    #[inline(always)]
    fn pick_counted(&self, svc: &Service) -> u64 {
        lb_pick_counted(svc)
    }

    #[inline(always)]
    fn pick_local(&self, svc: &Service) -> u64 {
        let w = &self.daddr;
        lb_pick_local(svc, w[0], w[1], w[2], w[3])
    }

    /// The packet's own destination: the VIP for a service looked up by
    /// (VIP, port, protocol), any address of its rules for a fwmark
    /// service (`ip_vs_dh_schedule` hashes `iph->daddr`).
    #[inline(always)]
    fn daddr(&self, svc: &Service) -> Option<lb_common::Addr> {
        (svc.ndests != 0).then_some(self.daddr)
    }

    #[inline(always)]
    fn random(&self) -> u32 {
        // Sound: a helper without arguments.
        unsafe { aya_ebpf::helpers::generated::bpf_get_prandom_u32() }
    }

    // dh, lblc and lblcr (paths spelt out, so that the file's imports stay
    // the rest of the file's).

    #[inline(always)]
    fn dest_state(&self, dest: u32) -> Option<schedulers::DestState> {
        let d = DESTS.get(dest)?;
        Some(schedulers::DestState {
            generation: d.generation,
            weight: d.weight,
            available: d.flags & lb_common::DEST_F_AVAILABLE != 0,
            rank: d.rank,
            vip: d.svc.addr,
        })
    }

    #[inline(always)]
    fn now(&self) -> u64 {
        match crate::maps::SETTINGS.get(0) {
            Some(cfg) => crate::clock::now(cfg),
            None => 0,
        }
    }

    #[inline(always)]
    fn lblc_entry(&self, key: &lb_common::LblcKey) -> Option<&mut lb_common::LblcEntry> {
        // Sound: a map value, alive while the program runs; other CPUs may
        // write it at the same time (each field stays a valid value).
        crate::maps::LBLC
            .get_ptr_mut(key)
            .map(|e| unsafe { &mut *e })
    }

    /// Builds the entry in a frame of its own (88 bytes off the caller's
    /// stack).
    #[inline(never)]
    fn lblc_new(&self, key: &lb_common::LblcKey, epoch: u32, d: lb_common::SetDest, now: u64) {
        let mut e = lb_common::LblcEntry {
            lastuse: now,
            lastmod: now,
            epoch,
            size: 1,
            ..Default::default()
        };
        e.set[0] = d;
        let _ = crate::maps::LBLC.insert(key, e, 0);
    }
}

//! The schedulers: which real server takes a new flow, as IPVS's scheduler
//! modules decide it (`ip_vs_rr.c`, `ip_vs_wrr.c`, `ip_vs_lc.c`,
//! `ip_vs_wlc.c`, `ip_vs_sed.c`, `ip_vs_nq.c`, `ip_vs_fo.c`, `ip_vs_ovf.c`,
//! `ip_vs_twos.c`, `ip_vs_sh.c`, `ip_vs_mh.c`, `ip_vs_dh.c`, `ip_vs_lblc.c`,
//! `ip_vs_lblcr.c`; docs/SEMANTICS.md §5).
//! Pure logic over the service's dest list and weight tree, reached through
//! [`Nodes`]: each CPU runs the kernel's state machine on its own state
//! (`SchedState`) over the service's dest list, which the controller keeps
//! in LVS order (most recently added first).
//!
//! rr and wrr both ask "the first dest at or after position p whose weight
//! is at least w" ([`first_at_least`]). The controller keeps, beside the
//! list, a max-tree of the weights (lb-common's `ServiceDest` documents the
//! block; lb-user's `sched_table` builds it), so the answer takes at most
//! `2 * SVC_TREE_DEPTH` reads whatever the number of reals, and the
//! verifier sees two short bounded loops. Only when the dest found is
//! overloaded do they fall back to scans of the list (`overload.rs`).
//!
//! lc, wlc, sed, nq, fo, ovf and twos look at every dest, as the kernel's
//! loops do: a [`scan::Scan`] over the list with each dest's live counts
//! ([`Nodes::conns`]), run by [`Nodes::scan`] (`bpf_loop` in the program).
//!
//! sh and mh look the client up in the service's hash table (`ShTable`,
//! `MhTable` in lb-common, built by lb-user's `hash_sched`), whose entries
//! are positions in the same dest list; the fallback flags probe further
//! entries (`sh.rs` in a bounded loop, `mh.rs` in a [`Nodes::run`] loop).
//! Nothing here can panic.
//!
//! dh looks the packet's destination address up in a table of sh's layout
//! (`dh.rs`). lblc and lblcr keep, per destination address, the dest
//! (lblc) or set of dests (lblcr) they last picked, in the program's `LBLC`
//! map (lb-common's `LblcEntry`), and fall back to wlc's pick over the
//! whole list (`lblc.rs`, `lblcr.rs`, `locality.rs`).
//!
//! One file per scheduler; [`pick`] dispatches on `Service::sched`. This
//! module refers to nothing outside itself but lb-common, so that lb-user's
//! tests can run it over the blocks the controller builds.

mod dh;
mod fo;
mod lblc;
mod lblcr;
mod lc;
mod locality;
mod mh;
mod nq;
mod overload;
mod ovf;
mod rr;
pub mod scan;
mod sed;
mod sh;
mod twos;
pub mod wlc;
mod wrr;

use scan::{Scan, Steps};

use lb_common::{
    DestConns, LblcEntry, LblcKey, MhTable, NO_DEST, NO_POS, SCHED_DH, SCHED_FO, SCHED_HEAD,
    SCHED_LBLC, SCHED_LBLCR, SCHED_LC, SCHED_MH, SCHED_NQ, SCHED_OVF, SCHED_RR, SCHED_SED,
    SCHED_SH, SCHED_TWOS, SCHED_WLC, SCHED_WRR, SVC_F_SCHED_PORT, SVC_TREE_DEPTH, SchedState,
    Service, ServiceDest, SetDest, ShTable, wrr_adjust_cw,
};

/// A service's block of `SVC_DESTS`, as the scheduler reads it: the packet
/// path reads the map, the host tests a slice.
pub trait Nodes {
    /// Entry `i` of the service's block (`ServiceDest` says what each is).
    fn node(&self, svc: &Service, i: u32) -> Option<ServiceDest>;
    /// The `rank` `DESTS` records for `dest` (its place in its service's
    /// list counted from the tail).
    fn dest_rank(&self, dest: u32) -> Option<u32>;
    /// The sh or dh table of the service (key `Service::table`).
    fn sh_table(&self, svc: &Service) -> Option<&ShTable>;
    /// The mh table of the service (key `Service::table`).
    fn mh_table(&self, svc: &Service) -> Option<&MhTable>;
    /// The live connection counts of `dest` (`DEST_CONNS`), with
    /// `overloaded` resolved to 1 (overloaded now, `dest_overloaded`) or 0.
    fn conns(&self, dest: u32) -> Option<DestConns>;
    /// Runs `steps` for i = 0..n until a step stops it (`scan.rs`). The
    /// program runs it with `bpf_loop`; this default is the host's loop.
    #[inline(always)]
    fn run<S: Steps>(&self, svc: &Service, n: u32, steps: &mut S)
    where
        Self: Sized,
    {
        scan::run_steps(self, svc, n, steps)
    }
    /// Runs `scan` over the service's list from position `from` to its end
    /// or until a step stops it (`scan.rs`), as one [`Nodes::run`].
    #[inline(always)]
    fn scan<S: Scan>(&self, svc: &Service, from: u32, scan: &mut S)
    where
        Self: Sized,
    {
        let n = scan::scan_len(svc, from);
        if n > 0 {
            self.run(svc, n, &mut scan::ListWalk { from, scan });
        }
    }
    /// The counting schedulers' pick, packed ([`pick_counted`]); the program
    /// runs it as a global BPF function, as [`Nodes::pick_local`].
    #[inline(always)]
    fn pick_counted(&self, svc: &Service) -> u64
    where
        Self: Sized,
    {
        pick_counted(svc, self)
    }
    /// dh's, lblc's and lblcr's pick, packed ([`pick_local`]). The program
    /// runs it as a global BPF function, which the verifier checks once on
    /// its own rather than once per path of the caller that reaches it.
    #[inline(always)]
    fn pick_local(&self, svc: &Service) -> u64
    where
        Self: Sized,
    {
        pick_local(svc, self)
    }
    /// A uniformly random 32-bit number (twos' draws): the program's
    /// `bpf_get_prandom_u32`; host tests inject their own.
    fn random(&self) -> u32;

    // The methods below have defaults meaning "nothing there", for the
    // host tests of the schedulers that do not read them; the program's
    // `Nodes` implements every one.

    /// What dh, lblc and lblcr read of a `DESTS` slot.
    fn dest_state(&self, _dest: u32) -> Option<DestState> {
        None
    }
    /// Now, in the packet path's clock (ns).
    fn now(&self) -> u64 {
        0
    }
    /// The lblc/lblcr entry of `key` (`LBLC`), read and changed in place
    /// (two CPUs changing one entry at once may lose one change; the
    /// kernel serialises them with a lock, docs/SEMANTICS.md §5.15).
    fn lblc_entry(&self, _key: &LblcKey) -> Option<&mut LblcEntry> {
        None
    }
    /// Makes the entry of `key`, or replaces it: made under `epoch`, used
    /// and changed `now`, its set `{d}`. A full table keeps its entries
    /// (the pick is used all the same, as the kernel's when it cannot
    /// allocate an entry).
    fn lblc_new(&self, _key: &LblcKey, _epoch: u32, _d: SetDest, _now: u64) {}
    /// The packet's destination address, which for a service looked up by
    /// (VIP, port, protocol) is its VIP, as every dest of the service
    /// records it (`Dest::svc`); `None` for a service with no dests.
    fn daddr(&self, svc: &Service) -> Option<lb_common::Addr> {
        if svc.ndests == 0 {
            return None;
        }
        let head = self.node(svc, svc.cap)?;
        Some(self.dest_state(head.dest)?.vip)
    }
}

/// What dh, lblc and lblcr read of a `DESTS` slot: lblc and lblcr remember
/// dests across changes of the list, so they check that a remembered slot
/// still holds the same real (`generation`) and is still in the list
/// (`available`, `rank`), and read its weight as the kernel reads a dest in
/// its trash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestState {
    /// `Dest::generation`.
    pub generation: u32,
    /// `Dest::weight`.
    pub weight: u32,
    /// `DEST_F_AVAILABLE` is set.
    pub available: bool,
    /// `Dest::rank`.
    pub rank: u32,
    /// The address of the dest's service (`Dest::svc`).
    pub vip: lb_common::Addr,
}

/// What sh and mh hash: the client's address and source port, in network
/// order, as the packet carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub addr: lb_common::Addr,
    pub port: [u8; 2],
}

impl Client {
    /// The port sh and mh hash: the client's with the `sh-port`/`mh-port`
    /// flag, else 0.
    #[inline(always)]
    fn hashed_port(&self, svc: &Service) -> [u8; 2] {
        if svc.flags & SVC_F_SCHED_PORT != 0 {
            self.port
        } else {
            [0; 2]
        }
    }
}

/// What a hash bucket or slot holds, for sh and mh.
enum Entry {
    /// No dest: the lookup ends ("no dest", or the fallback stops).
    Empty,
    /// A dest that may take the flow (weight > 0).
    Available(Pick),
    /// A dest that may not (weight 0, or overloaded).
    Unavailable,
}

/// `v`, with whatever the compiler knows of its range forgotten: the
/// verifier tracks no bounds through a modulo, so an index computed with
/// one must be checked again where the verifier sees it.
#[inline(always)]
fn opaque(v: u32) -> u32 {
    // Sound: a read of a local.
    unsafe { core::ptr::read_volatile(&v) }
}

/// The entry of a hash table holding list position `pos`.
#[inline(always)]
fn entry<N: Nodes>(svc: &Service, nodes: &N, pos: u16) -> Entry {
    if pos == NO_POS || pos as u32 >= svc.ndests {
        return Entry::Empty;
    }
    let pos = pos as u32;
    match nodes.node(svc, svc.cap.wrapping_add(pos)) {
        Some(n) if n.dest != NO_DEST && n.weight > 0 && !overloaded(nodes, n.dest) => {
            Entry::Available(Pick { pos, dest: n.dest })
        }
        Some(n) if n.dest != NO_DEST => Entry::Unavailable,
        _ => Entry::Empty,
    }
}

/// Whether `dest` is overloaded (its connections reached its upper
/// threshold): every scheduler skips it, as the kernel's skip
/// `IP_VS_DEST_F_OVERLOAD`.
#[inline(always)]
pub fn overloaded<N: Nodes>(nodes: &N, dest: u32) -> bool {
    match nodes.conns(dest) {
        Some(c) => c.overloaded != 0,
        None => false,
    }
}

/// A pick: the position in the list and the `DESTS` slot there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    pub pos: u32,
    pub dest: u32,
}

/// Picks a dest for a new flow, or `None` when no dest may take new flows
/// (none, all quiescent, or an unknown scheduler).
#[inline(always)]
pub fn pick<N: Nodes>(
    svc: &Service,
    st: &mut SchedState,
    nodes: &N,
    client: &Client,
) -> Option<Pick> {
    match svc.sched {
        SCHED_RR | SCHED_WRR => {
            sync_state(svc, st);
            let mut packed = if svc.sched == SCHED_RR {
                rr::pick(svc, st, nodes)
            } else {
                wrr::pick(svc, st, nodes)
            };
            if packed == OVERLOADED {
                packed = overload::pick(svc, st, nodes);
            }
            unpack(packed)
        }
        SCHED_SH => sh::pick(svc, nodes, client),
        SCHED_MH => mh::pick(svc, nodes, client),
        SCHED_WLC | SCHED_LC | SCHED_SED | SCHED_NQ | SCHED_FO | SCHED_OVF | SCHED_TWOS => {
            unpack(nodes.pick_counted(svc))
        }
        SCHED_DH | SCHED_LBLC | SCHED_LBLCR => unpack(nodes.pick_local(svc)),
        _ => None,
    }
}

/// The schedulers that pick by the live counts, as one BPF subprogram: the
/// rest of the program is verified once after it whatever the scheduler,
/// and their scan states live in its stack frame, not the program's.
#[inline(never)]
pub fn pick_counted<N: Nodes>(svc: &Service, nodes: &N) -> u64 {
    pack(match svc.sched {
        SCHED_WLC => wlc::pick(svc, nodes),
        SCHED_LC => lc::pick(svc, nodes),
        SCHED_SED => sed::pick(svc, nodes),
        SCHED_NQ => nq::pick(svc, nodes),
        SCHED_FO => fo::pick(svc, nodes),
        SCHED_OVF => ovf::pick(svc, nodes),
        SCHED_TWOS => twos::pick(svc, nodes),
        _ => None,
    })
}

/// dh, lblc and lblcr, as one BPF subprogram returning a packed pick, as
/// `pick_counted`: the rest of the program is then verified once after
/// them too. (Not inside `pick_counted`: lblc's and lblcr's own calls
/// would stack one frame too many.)
#[inline(never)]
pub fn pick_local<N: Nodes>(svc: &Service, nodes: &N) -> u64 {
    match svc.sched {
        SCHED_DH => pack(dh::pick(svc, nodes)),
        SCHED_LBLC => lblc::pick(svc, nodes),
        SCHED_LBLCR => lblcr::pick(svc, nodes),
        _ => pack(None),
    }
}

/// What rr's and wrr's searches of the weight tree give besides a
/// [`pack`]ed pick: an overloaded dest in the way, which leaves the pick to
/// the scans of `overload.rs`. (A value, not an enum holding an
/// `Option<Pick>`: copying the payload of a `None` reads registers the
/// verifier knows were never written.)
const OVERLOADED: u64 = u64::MAX - 1;

/// A pick in one register, `pos << 32 | dest` (`u64::MAX`: none): what a
/// BPF subprogram returns (a struct would come back through a pointer to
/// the caller's stack, which the verifier refuses).
#[inline(always)]
fn pack(p: Option<Pick>) -> u64 {
    match p {
        Some(p) => ((p.pos as u64) << 32) | p.dest as u64,
        None => u64::MAX,
    }
}

#[inline(always)]
fn unpack(v: u64) -> Option<Pick> {
    if v == u64::MAX {
        return None;
    }
    Some(Pick {
        pos: (v >> 32) as u32,
        dest: v as u32,
    })
}

/// Brings a CPU's state up to date with the service: a state of another
/// epoch (new service, or this CPU never scheduled for it) starts as the
/// kernel's state would be with no picks made; a state of an older
/// generation gets the kernel's `dest_changed` adjustment, applied once for
/// all changes since this CPU's last pick.
#[inline(always)]
fn sync_state(svc: &Service, st: &mut SchedState) {
    let cw = if st.epoch != svc.epoch {
        st.epoch = svc.epoch;
        st.rr_dest = NO_DEST;
        svc.cw_seed
    } else if st.generation != svc.generation {
        wrr_adjust_cw(st.cw, svc.di, svc.mw)
    } else {
        return;
    };
    st.generation = svc.generation;
    st.cl = SCHED_HEAD;
    st.cw = cw;
}

/// The weight at entry `i` of the block (0 when unreadable).
#[inline(always)]
fn weight<N: Nodes>(nodes: &N, svc: &Service, i: u32) -> u32 {
    match nodes.node(svc, i) {
        Some(n) => n.weight,
        None => 0,
    }
}

/// The first position `>= pos` of the list whose dest has weight `>= w`
/// (`w >= 1`), with its dest; `None` if there is none. Climbs from the
/// leaf of `pos` to the first right sibling whose subtree holds such a
/// weight, then descends to its leftmost such leaf. Not inlined: rr and wrr
/// call it twice each, and one copy keeps the program small.
#[inline(never)]
pub fn first_at_least<N: Nodes>(svc: &Service, nodes: &N, pos: u32, w: u32) -> Option<Pick> {
    let cap = svc.cap;
    if pos >= svc.ndests || pos >= cap || w == 0 {
        return None;
    }
    let mut i = cap + pos;
    if weight(nodes, svc, i) < w {
        let mut found = false;
        for _ in 0..SVC_TREE_DEPTH {
            if i <= 1 {
                break;
            }
            if i & 1 == 0 && weight(nodes, svc, i + 1) >= w {
                i += 1;
                found = true;
                break;
            }
            i >>= 1;
        }
        if !found {
            return None;
        }
        for _ in 0..SVC_TREE_DEPTH {
            if i >= cap {
                break;
            }
            i *= 2;
            if weight(nodes, svc, i) < w {
                i += 1;
            }
        }
    }
    if i < cap {
        return None;
    }
    let pos = i - cap;
    let n = nodes.node(svc, i)?;
    if pos >= svc.ndests || n.dest == NO_DEST || n.weight < w {
        return None;
    }
    Some(Pick { pos, dest: n.dest })
}

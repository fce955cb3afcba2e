//! The live connection counts of each dest (`DEST_CONNS`, docs/SEMANTICS.md
//! §6.4): what a conn's creation, its moves between active and inactive
//! states and its removal do to its dest's ActiveConn, InActConn and
//! OVERLOAD, as IPVS's `ip_vs_bind_dest`, `set_tcp_state` and
//! `ip_vs_unbind_dest` do.
//!
//! Every change is one atomic add on the shared entry (never per packet:
//! only on those three events). A conn's `counted` says which count holds
//! it and changes only by atomic exchange, so when two CPUs move or remove
//! the same conn at once exactly one of them moves its count, and the counts
//! stay equal to the conns in the table.

use core::intrinsics::{
    AtomicOrdering::Relaxed, atomic_cxchg, atomic_xadd, atomic_xchg, atomic_xsub,
};

use lb_common::{
    COUNTED_ACTIVE, COUNTED_INACTIVE, COUNTED_NONE, Conn, ConnKey, DestConns, counted_for,
};

use crate::maps::{CONNS, DEST_CONNS, DESTS};

/// The count `which` (`COUNTED_ACTIVE` or `COUNTED_INACTIVE`) of `dc`.
/// The BPF target has no `AtomicU32` (rustc offers it no atomic
/// read-modify-write), so the counts use the atomic intrinsics, which LLVM
/// lowers to BPF's atomic instructions.
#[inline(always)]
fn count(dc: *mut DestConns, which: u32) -> *mut u32 {
    unsafe {
        if which == COUNTED_ACTIVE {
            &raw mut (*dc).active
        } else {
            &raw mut (*dc).inactive
        }
    }
}

/// Adds 1 to the count at `p`.
#[inline(always)]
fn inc(p: *mut u32) {
    // Sound: `p` points into an array map's value, which lives as long as
    // the map; the program changes it only with atomics.
    unsafe { atomic_xadd::<u32, u32, { Relaxed }>(p, 1) };
}

/// Takes 1 from the count at `p`.
#[inline(always)]
fn dec(p: *mut u32) {
    unsafe { atomic_xsub::<u32, u32, { Relaxed }>(p, 1) };
}

/// Conns of a dest, both counts (`ip_vs_dest_totalconns`).
#[inline(always)]
fn total(dc: *const DestConns) -> u32 {
    let c = unsafe { *dc };
    c.active_now().wrapping_add(c.inactive_now())
}

/// A conn entry was just made for `dest` in the count `counted`
/// (`ip_vs_bind_dest`): counted, and the dest becomes overloaded when its
/// conns reach its upper threshold.
#[inline(never)]
pub fn bind(dest: u32, counted: u32) {
    let Some(dc) = DEST_CONNS.get_ptr_mut(dest) else {
        return;
    };
    inc(count(dc, counted));
    let upper = match DESTS.get(dest) {
        Some(d) => d.u_threshold,
        None => 0,
    };
    if upper != 0 && total(dc) >= upper {
        unsafe { (*dc).overloaded = upper };
    }
}

/// The count a conn leaves (`ip_vs_unbind_dest`), and the overload cleared
/// when its conns fall below the lower threshold (or below ¾ of the upper
/// when there is no lower one, or at once when there is none).
#[inline(never)]
pub fn unbind(dest: u32, counted: u32) {
    let Some(dc) = DEST_CONNS.get_ptr_mut(dest) else {
        return;
    };
    dec(count(dc, counted));
    if unsafe { (*dc).overloaded } == 0 {
        return;
    }
    let (upper, lower) = match DESTS.get(dest) {
        Some(d) => (d.u_threshold, d.l_threshold),
        None => (0, 0),
    };
    let n = total(dc) as u64;
    let clear = if lower != 0 {
        n < lower as u64
    } else if upper != 0 {
        n * 4 < upper as u64 * 3
    } else {
        true
    };
    if clear {
        unsafe { (*dc).overloaded = 0 };
    }
}

/// The conn `c` entered `state`: its count follows when the state is of
/// the other kind (`set_tcp_state`'s `IP_VS_CONN_F_INACTIVE` moves).
///
/// The kernel changes a conn's state and its count under the conn's lock.
/// Here two CPUs may change one conn at once (a masqueraded conn's client
/// packets and replies arrive on different queues), so the count follows
/// the state as stored, read again after each move: whichever CPU wrote the
/// state last, the count ends up matching it.
#[inline(never)]
pub fn state_changed(c: *mut Conn, state: u8) {
    let dest = unsafe { (*c).dest };
    let mut state = state;
    // Each round moves the count at most once; a round that finds the count
    // already right ends. Two CPUs cannot keep each other going for long.
    for _ in 0..4 {
        let now = counted_for(state);
        let was = unsafe { core::ptr::read_volatile(&raw const (*c).counted) };
        if was == now || was == COUNTED_NONE {
            return;
        }
        // Sound: `c` points into the conn's map value.
        let (_, moved) = unsafe {
            atomic_cxchg::<u32, { Relaxed }, { Relaxed }>(&raw mut (*c).counted, was, now)
        };
        if moved && let Some(dc) = DEST_CONNS.get_ptr_mut(dest) {
            inc(count(dc, now));
            dec(count(dc, was));
        }
        state = unsafe { core::ptr::read_volatile(&raw const (*c).state) };
    }
}

/// Removes the conn `c` of `key` from the table and from its dest's count,
/// and a masqueraded conn's reply entry (`nat::forget`).
/// Whoever takes the count first (the packet path or the sweeper) moves it.
#[inline(never)]
pub fn remove(key: &ConnKey, c: *mut Conn) {
    let dest = unsafe { (*c).dest };
    let was = unsafe { atomic_xchg::<u32, { Relaxed }>(&raw mut (*c).counted, COUNTED_NONE) };
    crate::nat::forget(key, c);
    let _ = CONNS.remove(key);
    if was == COUNTED_ACTIVE || was == COUNTED_INACTIVE {
        unbind(dest, was);
    }
}

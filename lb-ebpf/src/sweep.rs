//! The sweeper: a BPF timer that walks `CONNS` every `SWEEP_INTERVAL_NS` (or
//! less often when the table is so large that a sweep would take more than
//! 2% of a CPU: `sweep_interval`) and removes the conns that IPVS's per-conn
//! timers would have expired, so that the table and its dests' counts
//! (`counts.rs`) follow expiry with nothing running in user space
//! (docs/SEMANTICS.md §6.4).
//!
//! When a new flow found the table full, the next sweep also removes the
//! half-open entries idle for `HALF_OPEN_GRACE_NS` (the kernel's `drop_entry`
//! victims), so a SYN flood fills the table for at most about a second.
//!
//! `lbctl attach` arms it by running `lb_sweep_arm` once (`BPF_PROG_TEST_RUN`):
//! the timer then keeps itself going, and holds the program it calls. A
//! later attach (an upgrade) arms it again, which hands the timer to the new
//! program's callback.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::bpf_timer,
    helpers::generated::{
        bpf_for_each_map_elem, bpf_ktime_get_ns, bpf_timer_init, bpf_timer_set_callback,
        bpf_timer_start,
    },
};
use lb_common::{
    CONN_S_SYN_RECV, Conn, ConnKey, DEST_F_AVAILABLE, DEST_F_IN_USE, HALF_OPEN_GRACE_NS,
    SWEEP_INTERVAL_NS, SweepStats, SweeperValue, sweep_interval,
};

use crate::{
    clock, counts,
    maps::{CONNS, DESTS, NAT_REPLIES, SWEEPER},
    settings::settings,
};

/// The value of `SWEEPER`: the kernel's timer, then the sweeper's counters.
/// Read by the controller as lb-common's `SweeperValue`.
#[repr(C)]
pub struct Sweeper {
    pub timer: bpf_timer,
    pub stats: SweepStats,
}
const _: () = assert!(size_of::<Sweeper>() == size_of::<SweeperValue>());

/// CLOCK_MONOTONIC for `bpf_timer_init`.
const CLOCK_MONOTONIC: u64 = 1;

/// What one sweep knows and counts.
#[repr(C)]
struct Sweep {
    now: u64,
    /// Non-zero when the table was found full since the last sweep.
    full: u64,
    visited: u64,
    expired: u64,
    half_open: u64,
}

/// Whether a conn is gone as IPVS sees it: its timer ran out, or it was
/// flushed (another generation of its dest slot) and the slot now serves a
/// dest again, whose counts it must not inflate. A flushed conn of a slot
/// still in the trash stays until it expires or its next packet, which the
/// packet path answers (§4.3).
#[inline(always)]
fn gone(c: *const Conn, now: u64) -> bool {
    let (expires, dest, dest_gen) = unsafe { ((*c).expires(), (*c).dest, (*c).dest_gen) };
    if now >= expires {
        return true;
    }
    match DESTS.get(dest) {
        Some(d) => {
            let trashed = d.flags & (DEST_F_IN_USE | DEST_F_AVAILABLE) == DEST_F_IN_USE;
            d.generation != dest_gen && !trashed
        }
        None => true,
    }
}

/// `bpf_for_each_map_elem`'s callback: one conn.
#[inline(never)]
extern "C" fn visit(_map: *mut c_void, key: *mut ConnKey, c: *mut Conn, ctx: *mut Sweep) -> i64 {
    let sweep = unsafe { &mut *ctx };
    sweep.visited += 1;
    let gone = gone(c, sweep.now);
    let stale_half_open = sweep.full != 0
        && unsafe { (*c).state } == CONN_S_SYN_RECV
        && sweep.now >= unsafe { (*c).last_seen } + HALF_OPEN_GRACE_NS;
    if gone || stale_half_open {
        // The helper takes the key from the map's own memory; a copy on the
        // stack keeps the delete independent of the element it removes.
        let k = unsafe { *key };
        counts::remove(&k, c);
        if gone {
            sweep.expired += 1;
        } else {
            sweep.half_open += 1;
        }
    }
    0
}

/// A new flow found the table full: the next sweep relieves it (`visit`).
#[inline(always)]
pub fn table_full() {
    if let Some(s) = SWEEPER.get_ptr_mut(0) {
        unsafe { (*s).stats.full = 1 };
    }
}

/// The timer's callback: one sweep, then the next one armed.
#[inline(never)]
extern "C" fn run(_map: *mut c_void, _key: *mut u32, s: *mut Sweeper) -> i32 {
    let Some(cfg) = settings() else {
        return 0;
    };
    let start = unsafe { bpf_ktime_get_ns() };
    let full = unsafe { (*s).stats.full };
    unsafe { (*s).stats.full = 0 };
    let mut sweep = Sweep {
        now: clock::now(cfg),
        full,
        visited: 0,
        expired: 0,
        half_open: 0,
    };
    unsafe {
        bpf_for_each_map_elem(
            &CONNS as *const _ as *mut c_void,
            visit as *mut c_void,
            &mut sweep as *mut Sweep as *mut c_void,
            0,
        );
        if cfg.has_masq != 0 {
            // Reply entries whose conn left without them (nat.rs).
            bpf_for_each_map_elem(
                &NAT_REPLIES as *const _ as *mut c_void,
                crate::nat::sweep_visit as *mut c_void,
                core::ptr::null_mut(),
                0,
            );
        }
        let st = &mut (*s).stats;
        st.runs += 1;
        st.expired += sweep.expired;
        st.half_open_dropped += sweep.half_open;
        st.visited = sweep.visited;
        st.took_ns = bpf_ktime_get_ns().wrapping_sub(start);
        st.interval_ns = sweep_interval(st.took_ns);
        bpf_timer_start(&mut (*s).timer, st.interval_ns, 0);
    }
    0
}

/// Arms the sweeper with this program's callback: 0 on success, else the
/// helper's error. An already initialised timer (a previous attach) is
/// handed to this callback.
#[inline(always)]
pub fn arm() -> i64 {
    let Some(s) = SWEEPER.get_ptr_mut(0) else {
        return -1;
    };
    unsafe {
        let t = &raw mut (*s).timer;
        // -EBUSY: initialised by an earlier attach; it is reused.
        let r = bpf_timer_init(t, &SWEEPER as *const _ as *mut c_void, CLOCK_MONOTONIC);
        if r != 0 && r != -16 {
            return r;
        }
        let r = bpf_timer_set_callback(t, run as *mut c_void);
        if r != 0 {
            return r;
        }
        bpf_timer_start(t, SWEEP_INTERVAL_NS, 0)
    }
}

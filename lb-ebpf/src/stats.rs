//! Counters: every outcome under its reason (`STATS`), and the ipvsadm
//! counters per service and per real server (`SVC_STATS`, `DEST_STATS`).
//! All per CPU, so no atomics on the packet path.

use lb_common::Settings;

use crate::maps::{DEST_STATS, SETTINGS, STATS, SVC_STATS};

#[inline(always)]
pub fn count(reason: u32, bytes: u64) {
    if let Some(c) = STATS.get_ptr_mut(reason) {
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

/// A packet forwarded to a real server; `new_conn` when it opened a conn.
/// Bytes are the IP length, as IPVS counts them.
#[inline(always)]
pub fn traffic(svc_id: u32, dest: u32, ip_bytes: u64, new_conn: bool) {
    if let Some(s) = SVC_STATS.get_ptr_mut(svc_id) {
        unsafe {
            (*s).inpkts += 1;
            (*s).inbytes += ip_bytes;
            (*s).conns += new_conn as u64;
        }
    }
    if let Some(s) = DEST_STATS.get_ptr_mut(dest) {
        unsafe {
            (*s).inpkts += 1;
            (*s).inbytes += ip_bytes;
            (*s).conns += new_conn as u64;
        }
    }
}

/// The runtime settings (LVS sysctls and timeouts).
#[inline(always)]
pub fn settings() -> Option<&'static Settings> {
    SETTINGS.get_ptr(0).map(|p| unsafe { &*p })
}

/// Now, in CLOCK_MONOTONIC ns to within one tick: from jiffies (one load,
/// inlined by the verifier) with the controller's calibration, else from the
/// coarse clock helper.
#[inline(always)]
pub fn now(cfg: &Settings) -> u64 {
    if cfg.clock_ns_per_jiffy != 0 {
        let j = unsafe { aya_ebpf::helpers::bpf_jiffies64() };
        j.wrapping_mul(cfg.clock_ns_per_jiffy)
            .wrapping_add(cfg.clock_offset)
    } else {
        unsafe { aya_ebpf::helpers::bpf_ktime_get_coarse_ns() }
    }
}

/// Timeout in seconds for a conn state.
#[inline(always)]
pub fn timeout(cfg: &Settings, state: u8) -> u32 {
    match cfg.timeouts.get(state as usize) {
        Some(t) => *t,
        None => 0,
    }
}

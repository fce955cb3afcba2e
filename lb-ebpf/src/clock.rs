//! The packet path's clock: jiffies, converted to CLOCK_MONOTONIC with the
//! calibration lbctl measures when it makes the maps
//! (`Settings::clock_ns_per_jiffy`, `Settings::clock_offset`).

use lb_common::Settings;

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

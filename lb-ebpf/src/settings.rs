//! The runtime settings (`SETTINGS`): the LVS sysctls and the timeouts per
//! connection state, written by the controller (`lbctl --set`, sysctls).

use lb_common::Settings;

use crate::maps::SETTINGS;

/// The runtime settings (LVS sysctls and timeouts).
#[inline(always)]
pub fn settings() -> Option<&'static Settings> {
    SETTINGS.get_ptr(0).map(|p| unsafe { &*p })
}

/// Timeout in seconds for a conn state.
#[inline(always)]
pub fn timeout(cfg: &Settings, state: u8) -> u32 {
    match cfg.timeouts.get(state as usize) {
        Some(t) => *t,
        None => 0,
    }
}

//! Calibration of the packet path's clock.
//!
//! The XDP program reads time as `jiffies` (one load, which the verifier
//! inlines; a clock helper call costs ~40 ns per packet here) and converts it
//! with two numbers measured here when the maps are made: nanoseconds per
//! jiffy (1e9 / HZ) and the offset to CLOCK_MONOTONIC. Both come from
//! `/proc/timer_list` (root), which prints the monotonic time and the
//! jiffies counter together. The result is CLOCK_MONOTONIC to within one
//! tick (4 ms at HZ=250), plenty for timeouts counted in seconds.

use std::time::Duration;

use lb_common::NS_PER_SEC;

/// Now in CLOCK_MONOTONIC ns: the time base of every time in the maps (the
/// packet path's calibrated jiffies, see above), for comparing entries'
/// expiry with now and for entries written from userspace.
pub fn monotonic_ns() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    // CLOCK_MONOTONIC always exists.
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    ts.tv_sec() as u64 * NS_PER_SEC + ts.tv_nsec() as u64
}

/// The kernel's possible HZ values.
const HZ: [u64; 4] = [100, 250, 300, 1000];

/// (monotonic ns, jiffies) from one reading of `/proc/timer_list`.
fn sample() -> Option<(u64, u64)> {
    parse_timer_list(&std::fs::read_to_string("/proc/timer_list").ok()?)
}

/// Parses `now at N nsecs` and the first `jiffies: J` line.
pub fn parse_timer_list(text: &str) -> Option<(u64, u64)> {
    let now = text.lines().find_map(|l| {
        l.strip_prefix("now at ")?
            .strip_suffix(" nsecs")?
            .parse()
            .ok()
    })?;
    let jiffies = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("jiffies: ")?.trim().parse().ok())?;
    Some((now, jiffies))
}

/// The HZ that best explains `dj` jiffies in `dt_ns` nanoseconds.
pub fn nearest_hz(dj: u64, dt_ns: u64) -> Option<u64> {
    if dt_ns == 0 {
        return None;
    }
    let measured = dj as f64 * 1e9 / dt_ns as f64;
    HZ.iter()
        .copied()
        .min_by(|a, b| {
            let da = (*a as f64 - measured).abs();
            let db = (*b as f64 - measured).abs();
            da.total_cmp(&db)
        })
        .filter(|hz| (*hz as f64 - measured).abs() < *hz as f64 * 0.1)
}

/// (ns per jiffy, offset) such that `jiffies * ns + offset` is
/// CLOCK_MONOTONIC in ns, or `None` when the kernel does not tell (the
/// program then uses its coarse clock helper). Takes about 100 ms.
pub fn calibrate() -> Option<(u64, u64)> {
    let (t1, j1) = sample()?;
    std::thread::sleep(Duration::from_millis(100));
    let (t2, j2) = sample()?;
    let hz = nearest_hz(j2.checked_sub(j1)?, t2.checked_sub(t1)?)?;
    let tick = NS_PER_SEC / hz;
    Some((tick, t2.wrapping_sub(j2.wrapping_mul(tick))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timer_list() {
        let text = "Timer List Version: v0.10\nHRTIMER_MAX_CLOCK_BASES: 8\nnow at 7868013153978 nsecs\n\
                    \ncpu: 0\n  .last_jiffies   : 4296783567\njiffies: 4296859238\n";
        assert_eq!(
            parse_timer_list(text),
            Some((7_868_013_153_978, 4_296_859_238))
        );
        assert_eq!(parse_timer_list("now at 5 nsecs\n"), None);
    }

    #[test]
    fn recognises_hz() {
        assert_eq!(nearest_hz(25, 100_000_000), Some(250));
        assert_eq!(nearest_hz(26, 100_000_000), Some(250));
        assert_eq!(nearest_hz(30, 100_000_000), Some(300));
        assert_eq!(nearest_hz(10, 100_000_000), Some(100));
        assert_eq!(nearest_hz(100, 100_000_000), Some(1000));
        assert_eq!(nearest_hz(60, 100_000_000), None);
        assert_eq!(nearest_hz(5, 0), None);
    }

    #[test]
    fn calibration_matches_the_monotonic_clock() {
        // Needs root for /proc/timer_list; elsewhere there is nothing to check.
        let Some((tick, offset)) = calibrate() else {
            return;
        };
        let (t, j) = sample().expect("sample");
        let est = j.wrapping_mul(tick).wrapping_add(offset);
        let diff = est.abs_diff(t);
        assert!(diff <= 2 * tick, "off by {diff} ns");
    }
}

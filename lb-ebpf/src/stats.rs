//! Counters: every outcome under its reason (`STATS`), and the ipvsadm
//! counters per service and per real server (`SVC_STATS`, `DEST_STATS`).
//! All per CPU, so no atomics on the packet path.

use crate::maps::{DEST_STATS, STATS, SVC_STATS};

/// One packet of `bytes` (the frame length) under `reason` (`REASON_*`).
#[inline(always)]
pub fn count(reason: u32, bytes: u64) {
    if let Some(c) = STATS.get_ptr_mut(reason) {
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

/// A real server's reply (or an ICMP error about its flow) translated for
/// the client (`ip_vs_out_stats`); bytes are the IP length.
#[inline(always)]
pub fn traffic_out(svc_id: u32, dest: u32, ip_bytes: u64) {
    if let Some(s) = SVC_STATS.get_ptr_mut(svc_id) {
        unsafe {
            (*s).outpkts += 1;
            (*s).outbytes += ip_bytes;
        }
    }
    if let Some(s) = DEST_STATS.get_ptr_mut(dest) {
        unsafe {
            (*s).outpkts += 1;
            (*s).outbytes += ip_bytes;
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

//! `cargo xtask bench` (issue 6): per-packet cost against a trivial XDP_TX
//! program, control-plane cost at a million entries, real TCP throughput.
//! Used by the `lb-bench` binary only.

pub mod batch;
pub mod control;
pub mod daemon;
pub mod packet;
pub mod packet6;
pub mod packet_nat;
pub mod plane;
pub mod report;
pub mod scale;
pub mod stats;
pub mod traffic;

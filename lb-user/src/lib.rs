//! lbctl's library: the ipvsadm-compatible command line (`cli`), listings
//! (`format`, reading the connection tables through `conns`), the LVS model
//! (`model`), and its projection onto the pinned BPF maps (`pins`, `table`),
//! attaching the XDP program (`attach`) and next-hop resolution (`neigh`),
//! the ldirectord-compatible health-checking daemon (`daemon`), bounded
//! reading of what users hand in (`input`), and lbctl's own tools beyond
//! IPVS: `drain` (quiesce a real and wait for its connections to end) and
//! `whereis` (where a client's next connection goes, and why).

pub mod addr;
pub mod attach;
pub mod batch;
pub mod cli;
pub mod clock;
pub mod conns;
pub mod daemon;
pub mod decap;
pub mod dest_slots;
pub mod drain;
pub mod error;
pub mod format;
pub mod fwmark;
pub mod hash_sched;
pub mod input;
pub mod list_pool;
#[cfg(test)]
mod locality_tests;
pub mod model;
pub mod neigh;
pub mod pins;
pub mod resolve;
pub mod sched_table;
pub mod svc_index;
pub mod table;
pub mod whereis;

pub use error::Error;
pub use pins::{BPF_OBJECT, Pins, Sizes, pin_dir};
pub use table::Table;

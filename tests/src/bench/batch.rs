//! Batch map operations for the benchmark: lb-user's (`lb_user::batch`), so
//! that filling a connection table to 90% of a million entries does not cost
//! one `bpf()` call per entry.

use std::{io, os::fd::BorrowedFd};

pub use lb_user::batch::{delete, update};

/// Number of entries in a map, read in batches.
pub fn count<K: aya::Pod, V: aya::Pod>(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(lb_user::batch::lookup_fd::<K, V>(fd)?.len())
}

//! Batch map operations (`BPF_MAP_UPDATE_BATCH`, `BPF_MAP_DELETE_BATCH`,
//! `BPF_MAP_LOOKUP_BATCH`, Linux 5.6+) on a map's file descriptor. aya 0.14
//! has none, and filling a connection table to 90% of a million entries one
//! `bpf()` call per entry is what the benchmark must not spend its time on.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

use bytemuck::Pod;

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
/// Entries per system call.
const CHUNK: usize = 8192;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn bpf(cmd: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Inserts or replaces every `(keys[i], values[i])`.
pub fn update<K: Pod, V: Pod>(fd: BorrowedFd<'_>, keys: &[K], values: &[V]) -> io::Result<()> {
    assert_eq!(keys.len(), values.len(), "one value per key");
    for (k, v) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
        let mut attr = BatchAttr {
            keys: k.as_ptr() as u64,
            values: v.as_ptr() as u64,
            count: k.len() as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        bpf(BPF_MAP_UPDATE_BATCH, &mut attr)?;
        if attr.count as usize != k.len() {
            return Err(io::Error::other(format!(
                "batch update stopped after {} of {} entries",
                attr.count,
                k.len()
            )));
        }
    }
    Ok(())
}

/// Deletes every key of `keys` that is in the map; returns how many were.
pub fn delete<K: Pod>(fd: BorrowedFd<'_>, keys: &[K]) -> io::Result<usize> {
    let mut deleted = 0;
    let mut rest = keys;
    while !rest.is_empty() {
        let n = rest.len().min(CHUNK);
        let mut attr = BatchAttr {
            keys: rest.as_ptr() as u64,
            count: n as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        match bpf(BPF_MAP_DELETE_BATCH, &mut attr) {
            Ok(()) => {
                deleted += n;
                rest = &rest[n..];
            }
            // The key at `count` is not in the map (evicted by the LRU):
            // skip it and go on.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let done = attr.count as usize;
                deleted += done;
                rest = &rest[(done + 1).min(rest.len())..];
            }
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Number of entries in a hash map, read in batches.
pub fn count<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut total = 0;
    let mut chunk = CHUNK;
    let mut token_in = [0u8; 8];
    let mut token_out = [0u8; 8];
    let mut first = true;
    loop {
        let mut keys = vec![K::zeroed(); chunk];
        let mut values = vec![V::zeroed(); chunk];
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                token_in.as_mut_ptr() as u64
            },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        match bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) {
            Ok(()) => {}
            // The last batch: `count` entries were still copied.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Ok(total + attr.count as usize);
            }
            // A bucket holds more entries than fit: ask for more at once.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && chunk < 1 << 20 => {
                chunk *= 4;
                continue;
            }
            Err(e) => return Err(e),
        }
        total += attr.count as usize;
        token_in = token_out;
        first = false;
    }
}

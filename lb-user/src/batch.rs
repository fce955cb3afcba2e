//! Reading a whole hash map in batches (`BPF_MAP_LOOKUP_BATCH`, Linux 5.6+):
//! the kernel walks the table and copies thousands of entries per system
//! call, instead of two calls per entry with aya's iterator (aya 0.14 has no
//! batch operations). `-L` counts ActiveConn/InActConn from the connection
//! table, which may hold millions of entries.

use std::os::fd::{AsFd, AsRawFd};

use aya::{
    Pod,
    maps::{IterableMap, MapError},
};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// Entries asked for per call.
const CHUNK: usize = 8192;

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

/// Every (key, value) of the map; falls back to aya's iterator where the
/// kernel has no batch lookup for the map.
pub fn entries<K: Pod, V: Pod, M: IterableMap<K, V>>(
    map: &M,
    iter: impl FnOnce() -> Vec<(K, V)>,
) -> Result<Vec<(K, V)>, MapError> {
    match lookup_batch::<K, V>(map.map().fd().as_fd().as_raw_fd()) {
        Ok(v) => Ok(v),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(524) /* ENOTSUPP */) => {
            Ok(iter())
        }
        Err(io_error) => Err(MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_lookup_batch",
            io_error,
        })),
    }
}

fn lookup_batch<K: Pod, V: Pod>(fd: i32) -> std::io::Result<Vec<(K, V)>> {
    let mut out = Vec::new();
    let mut chunk = CHUNK;
    let mut token_in = [0u8; 8];
    let mut token_out = [0u8; 8];
    let mut first = true;
    loop {
        let mut keys = vec![0u8; chunk * size_of::<K>()];
        let mut values = vec![0u8; chunk * size_of::<V>()];
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token_in.as_mut_ptr() as u64 },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd as u32,
            ..Default::default()
        };
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                size_of::<BatchAttr>() as u32,
            )
        };
        let err = (rc < 0).then(std::io::Error::last_os_error);
        match err.as_ref().and_then(|e| e.raw_os_error()) {
            // A bucket holds more entries than fit: ask for more at once.
            Some(libc::ENOSPC) if chunk < 1 << 20 => {
                chunk *= 4;
                continue;
            }
            None | Some(libc::ENOENT) => {}
            _ => return Err(err.unwrap_or_else(|| std::io::Error::other("batch"))),
        }
        let n = attr.count as usize;
        for i in 0..n {
            let k: K = unsafe { std::ptr::read_unaligned(keys.as_ptr().add(i * size_of::<K>()).cast()) };
            let v: V = unsafe { std::ptr::read_unaligned(values.as_ptr().add(i * size_of::<V>()).cast()) };
            out.push((k, v));
        }
        if err.is_some() {
            // ENOENT: the walk is complete.
            return Ok(out);
        }
        token_in = token_out;
        first = false;
    }
}

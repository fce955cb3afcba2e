//! Batch map operations (`BPF_MAP_LOOKUP_BATCH`, `BPF_MAP_UPDATE_BATCH`,
//! `BPF_MAP_DELETE_BATCH`, Linux 5.6+) on a map's file descriptor: the
//! kernel walks or fills the table thousands of entries per system call,
//! instead of one or two calls per entry with aya's API (aya 0.14 has no
//! batch operations). `-L` counts ActiveConn/InActConn from the connection
//! table, which may hold millions of entries; the benchmarks fill it.

use std::{
    io,
    ops::ControlFlow,
    os::fd::{AsFd, AsRawFd, BorrowedFd},
};

use aya::{
    Pod,
    maps::{IterableMap, MapError},
};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
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
    match lookup_fd::<K, V>(map.map().fd().as_fd()) {
        Ok(v) => Ok(v),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL) | Some(524) /* ENOTSUPP */
            ) =>
        {
            Ok(iter())
        }
        Err(io_error) => Err(syscall_error("bpf_map_lookup_batch", io_error)),
    }
}

/// Calls `f` on every (key, value) of the map, in the kernel's order, one
/// batch of [`CHUNK`] entries read at a time, until `f` breaks: memory is
/// bounded by one batch whatever the size of the map. Falls back to aya's
/// iterator (`iter`, also one entry at a time) where the kernel has no
/// batch lookup for the map.
pub fn for_each<K: Pod, V: Pod, M: IterableMap<K, V>, I: Iterator<Item = (K, V)>>(
    map: &M,
    iter: impl FnOnce() -> I,
    mut f: impl FnMut(&K, &V) -> ControlFlow<()>,
) -> Result<(), MapError> {
    let mut delivered = false;
    match walk_fd::<K, V>(map.map().fd().as_fd(), |k, v| {
        delivered = true;
        f(k, v)
    }) {
        Ok(()) => Ok(()),
        Err(e)
            if !delivered
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL) | Some(524) /* ENOTSUPP */
                ) =>
        {
            for (k, v) in iter() {
                if f(&k, &v).is_break() {
                    break;
                }
            }
            Ok(())
        }
        Err(io_error) => Err(syscall_error("bpf_map_lookup_batch", io_error)),
    }
}

/// A failed batch call as aya reports a failed map call, so that callers
/// name the map the same way (`pins::map_err`) whichever API failed.
pub fn syscall_error(call: &'static str, io_error: io::Error) -> MapError {
    MapError::SyscallError(aya::sys::SyscallError { call, io_error })
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
    if keys.len() != values.len() {
        return Err(io::Error::other("one value per key"));
    }
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
            // The key at `count` is not in the map (e.g. evicted by the
            // LRU): skip it and go on.
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

/// Every entry of the map behind `fd` (hash maps and arrays).
pub fn lookup_fd<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> io::Result<Vec<(K, V)>> {
    let mut out = Vec::new();
    walk_fd::<K, V>(fd, |k, v| {
        out.push((*k, *v));
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Calls `f` on every entry of the map behind `fd` (hash maps and arrays),
/// a batch at a time, until `f` breaks; the two buffers of one batch are
/// all it holds.
pub fn walk_fd<K: Pod, V: Pod>(
    fd: BorrowedFd<'_>,
    mut f: impl FnMut(&K, &V) -> ControlFlow<()>,
) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    let mut chunk = CHUNK;
    let mut token_in = [0u8; 8];
    let mut token_out = [0u8; 8];
    let mut first = true;
    let mut keys = vec![0u8; chunk * size_of::<K>()];
    let mut values = vec![0u8; chunk * size_of::<V>()];
    loop {
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
            map_fd: fd as u32,
            ..Default::default()
        };
        let err = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr).err();
        match err.as_ref().and_then(|e| e.raw_os_error()) {
            // A bucket holds more entries than fit: ask for more at once.
            Some(libc::ENOSPC) if chunk < 1 << 20 => {
                chunk *= 4;
                keys.resize(chunk * size_of::<K>(), 0);
                values.resize(chunk * size_of::<V>(), 0);
                continue;
            }
            None | Some(libc::ENOENT) => {}
            _ => return Err(err.unwrap_or_else(|| io::Error::other("batch"))),
        }
        let n = (attr.count as usize).min(chunk);
        for i in 0..n {
            let k: K =
                unsafe { std::ptr::read_unaligned(keys.as_ptr().add(i * size_of::<K>()).cast()) };
            let v: V =
                unsafe { std::ptr::read_unaligned(values.as_ptr().add(i * size_of::<V>()).cast()) };
            if f(&k, &v).is_break() {
                return Ok(());
            }
        }
        if err.is_some() {
            // ENOENT: the walk is complete.
            return Ok(());
        }
        token_in = token_out;
        first = false;
    }
}

/// Entries `start .. start + count` of the array behind `fd`, in one or a
/// few system calls (the walk resumes after the key it is given).
pub fn array_range<V: Pod>(fd: BorrowedFd<'_>, start: u32, count: u32) -> io::Result<Vec<V>> {
    let mut out: Vec<V> = Vec::with_capacity(count as usize);
    let mut prev: u32 = start.wrapping_sub(1);
    while out.len() < count as usize {
        let want = (count as usize - out.len()).min(CHUNK);
        let mut keys = vec![0u32; want];
        let mut values = vec![0u8; want * size_of::<V>()];
        let mut next = [0u8; 4];
        let mut prev_bytes = prev.to_ne_bytes();
        let mut attr = BatchAttr {
            in_batch: if out.is_empty() && start == 0 {
                0
            } else {
                prev_bytes.as_mut_ptr() as u64
            },
            out_batch: next.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: want as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        let err = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr).err();
        if let Some(e) = err
            && e.raw_os_error() != Some(libc::ENOENT)
        {
            return Err(e);
        }
        let n = attr.count as usize;
        for i in 0..n {
            out.push(unsafe {
                std::ptr::read_unaligned(values.as_ptr().add(i * size_of::<V>()).cast())
            });
        }
        if n == 0 {
            return Err(io::Error::other(format!(
                "array ends before entry {}",
                start as usize + out.len()
            )));
        }
        prev = keys[n - 1];
    }
    Ok(out)
}

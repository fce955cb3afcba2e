//! A sanity check of the built BPF object: a 64-bit little-endian ELF for
//! EM_BPF that carries a `.BTF` section. A build without BTF "succeeds" but the
//! object's BTF maps cannot be loaded (docs/DEVELOPING.md), so catch it here, with a
//! message, rather than in a test's loader error.

use anyhow::{Context, Result, bail, ensure};

pub const EM_BPF: u16 = 247;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?)).ok()
}

/// Returns the section names of a little-endian ELF64 object for EM_BPF.
pub fn bpf_section_names(b: &[u8]) -> Result<Vec<String>> {
    ensure!(!b.is_empty(), "the object is empty");
    ensure!(b.starts_with(b"\x7fELF"), "not an ELF file");
    ensure!(b.get(4) == Some(&2), "not a 64-bit ELF");
    ensure!(b.get(5) == Some(&1), "not a little-endian ELF");
    let machine = u16_at(b, 0x12).context("truncated ELF header")?;
    ensure!(
        machine == EM_BPF,
        "ELF machine is {machine}, not EM_BPF ({EM_BPF})"
    );

    let bad = || "truncated or malformed section headers";
    let shoff = u64_at(b, 0x28).context(bad())?;
    let shentsize = usize::from(u16_at(b, 0x3a).context(bad())?);
    let shnum = usize::from(u16_at(b, 0x3c).context(bad())?);
    let shstrndx = usize::from(u16_at(b, 0x3e).context(bad())?);
    ensure!(shentsize >= 0x28, bad());
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let strtab = header(shstrndx).context(bad())?;
    let str_off = u64_at(b, strtab + 0x18).context(bad())?;
    let str_size = u64_at(b, strtab + 0x20).context(bad())?;
    let strings = str_off
        .checked_add(str_size)
        .and_then(|end| b.get(str_off..end))
        .context(bad())?;

    let mut names = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let h = header(i).context(bad())?;
        let name_off = u32_at(b, h).context(bad())? as usize;
        let Some(rest) = strings.get(name_off..) else {
            bail!(bad())
        };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        names.push(String::from_utf8_lossy(&rest[..end]).into_owned());
    }
    Ok(names)
}

/// Fails unless `b` is a BPF ELF object with BTF.
pub fn check_bpf_object(b: &[u8]) -> Result<Vec<String>> {
    let names = bpf_section_names(b)?;
    ensure!(
        names.iter().any(|n| n == ".BTF"),
        "the object has no .BTF section (built without -Cdebuginfo=2 and -Clink-arg=--btf?); sections: {}",
        names.join(" ")
    );
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE object with the given section names (section 0 is the
    /// null section, the last one is .shstrtab).
    fn elf(machine: u16, sections: &[&str]) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut name_offs = vec![0u32];
        for s in sections.iter().chain([&".shstrtab"]) {
            name_offs.push(strtab.len() as u32);
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
        }
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        let str_off = b.len();
        b.extend_from_slice(&strtab);
        let shoff = b.len();
        let shnum = name_offs.len();
        b[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&(shnum as u16).to_le_bytes());
        b[0x3e..0x40].copy_from_slice(&((shnum - 1) as u16).to_le_bytes());
        for (i, off) in name_offs.iter().enumerate() {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&off.to_le_bytes());
            if i == shnum - 1 {
                h[0x18..0x20].copy_from_slice(&(str_off as u64).to_le_bytes());
                h[0x20..0x28].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
            }
            b.extend_from_slice(&h);
        }
        b
    }

    #[test]
    fn reads_section_names() {
        let b = elf(EM_BPF, &["xdp", "maps", ".BTF", ".BTF.ext"]);
        let names = check_bpf_object(&b).unwrap();
        assert_eq!(names, ["", "xdp", "maps", ".BTF", ".BTF.ext", ".shstrtab"]);
    }

    #[test]
    fn rejects_objects_without_btf() {
        let err = check_bpf_object(&elf(EM_BPF, &["xdp", ".BTF.ext"])).unwrap_err();
        assert!(err.to_string().contains("no .BTF section"), "{err}");
    }

    #[test]
    fn rejects_non_bpf_and_garbage() {
        assert!(
            check_bpf_object(&elf(62, &[".BTF"]))
                .unwrap_err()
                .to_string()
                .contains("EM_BPF")
        );
        assert!(check_bpf_object(b"").is_err());
        assert!(check_bpf_object(b"#!/bin/sh\n").is_err());
        let mut truncated = elf(EM_BPF, &[".BTF"]);
        truncated.truncate(100);
        assert!(check_bpf_object(&truncated).is_err());
    }
}

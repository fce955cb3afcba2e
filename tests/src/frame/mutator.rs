//! Raw mutations for malformed-frame cases (the builder of malformed frames): each changes
//! one field of a frame the builder made. None of them fixes checksums unless it says so;
//! all are no-ops on frames too short to hold the field.

use super::{ETH_P_8021AD, ETH_P_8021Q, checksum};

/// Offset of the L3 header (after the Ethernet header and up to two VLAN tags), or None
/// if the frame is too short.
pub fn l3_offset(frame: &[u8]) -> Option<usize> {
    let mut off = 12;
    for _ in 0..3 {
        let ty = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
        if ty == ETH_P_8021Q || ty == ETH_P_8021AD {
            off += 4;
        } else {
            return Some(off + 2);
        }
    }
    None
}

fn l3(frame: &mut [u8]) -> Option<&mut [u8]> {
    let off = l3_offset(frame)?;
    frame.get_mut(off..)
}

/// Sets the IPv4 IHL (in 32-bit words, low nibble of the first byte).
pub fn set_ihl(frame: &mut [u8], ihl: u8) {
    if let Some(b) = l3(frame).and_then(|h| h.first_mut()) {
        *b = (*b & 0xf0) | (ihl & 0x0f);
    }
}

/// Sets the IP version nibble.
pub fn set_version(frame: &mut [u8], version: u8) {
    if let Some(b) = l3(frame).and_then(|h| h.first_mut()) {
        *b = (*b & 0x0f) | (version << 4);
    }
}

/// Sets the IPv4 total length.
pub fn set_total_len(frame: &mut [u8], len: u16) {
    if let Some(f) = l3(frame).and_then(|h| h.get_mut(2..4)) {
        f.copy_from_slice(&len.to_be_bytes());
    }
}

/// Sets the IPv4 header checksum.
pub fn set_ip_checksum(frame: &mut [u8], sum: u16) {
    if let Some(f) = l3(frame).and_then(|h| h.get_mut(10..12)) {
        f.copy_from_slice(&sum.to_be_bytes());
    }
}

/// Recomputes the IPv4 header checksum over the header length given by the IHL (after
/// changing header fields on purpose while keeping the checksum right).
pub fn fix_ip_checksum(frame: &mut [u8]) {
    let Some(h) = l3(frame) else { return };
    let Some(&first) = h.first() else { return };
    let hlen = usize::from(first & 0x0f) * 4;
    if hlen < 20 || h.len() < hlen {
        return;
    }
    h[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum(&[&h[..hlen]]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Flips the bits of the TCP/UDP/ICMP checksum of an IPv4 frame (making it wrong).
pub fn corrupt_l4_checksum(frame: &mut [u8]) {
    let Some(h) = l3(frame) else { return };
    let (Some(&first), Some(&proto)) = (h.first(), h.get(9)) else {
        return;
    };
    let hlen = usize::from(first & 0x0f) * 4;
    let at = match proto {
        super::IPPROTO_TCP => 16,
        super::IPPROTO_UDP => 6,
        super::IPPROTO_ICMP => 2,
        _ => return,
    };
    if let Some(f) = h.get_mut(hlen + at..hlen + at + 2) {
        f[0] ^= 0xff;
        f[1] ^= 0xff;
    }
}

/// Cuts the frame to `len` bytes.
pub fn truncate(frame: &mut Vec<u8>, len: usize) {
    frame.truncate(len);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::frame::Frame;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

    #[test]
    fn mutations_respect_vlan_tags() {
        let mut f = Frame::tcp(CLIENT, VIP).vlan(7).build();
        assert_eq!(l3_offset(&f), Some(18));
        set_ihl(&mut f, 4);
        assert_eq!(f[18], 0x44);
        assert_eq!(l3_offset(&[0u8; 5]), None);
        // Mutations on short frames do nothing instead of panicking.
        let mut short = vec![0u8; 13];
        set_total_len(&mut short, 1);
        fix_ip_checksum(&mut short);
        corrupt_l4_checksum(&mut short);
        assert_eq!(short, vec![0u8; 13]);
    }
}

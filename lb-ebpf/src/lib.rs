//! Pure logic of the XDP program: no packet or map access, so it is unit-tested
//! on the host (`cargo test --manifest-path lb-ebpf/Cargo.toml --lib`) and used
//! unchanged by the BPF binary (`main.rs`): the schedulers, the TCP state
//! table, checksum arithmetic.
#![cfg_attr(not(test), no_std)]

pub mod decap;
pub mod schedulers;
pub mod tcp_state;

/// Header arithmetic of tunnelling (docs/SEMANTICS.md §18), shared with
/// the tests' expectations.
pub mod encap {
    /// The lowest and highest+1 GUE UDP source port: Linux's default
    /// `net.ipv4.ip_local_port_range` (32768 60999), which
    /// `udp_flow_src_port` maps a flow's hash into.
    pub const GUE_PORT_MIN: u32 = 32768;
    pub const GUE_PORT_MAX: u32 = 60999;

    /// A flow's 32-bit hash from the words of its 5-tuple (addresses,
    /// ports and protocol as they are in memory): each word mixed in with
    /// the murmur3 step, then murmur3's finaliser. Stable per flow; not
    /// the kernel's (which is seeded at random per boot).
    #[inline(always)]
    pub fn flow_hash(words: &[u32]) -> u32 {
        let mut h: u32 = 0x6c62_7463;
        for w in words {
            let mut k = w.wrapping_mul(0xcc9e_2d51);
            k = k.rotate_left(15).wrapping_mul(0x1b87_3593);
            h ^= k;
            h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        }
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }

    /// The GUE source port of a flow's hash, by `udp_flow_src_port`'s
    /// formula: `hash ^= hash << 16`, then scaled into
    /// [`GUE_PORT_MIN`, `GUE_PORT_MAX`).
    #[inline(always)]
    pub fn gue_source_port(hash: u32) -> u16 {
        let h = hash ^ (hash << 16);
        (((h as u64 * (GUE_PORT_MAX - GUE_PORT_MIN) as u64) >> 32) as u32 + GUE_PORT_MIN) as u16
    }

    /// The outer TOS / traffic class of an inner one
    /// (`INET_ECN_encapsulate(inner, inner)`): copied, except that
    /// congestion experienced (CE, 3) becomes ECT(0) (2).
    #[inline(always)]
    pub fn ecn_encapsulate(inner: u8) -> u8 {
        if inner & 3 == 3 { inner & !1 } else { inner }
    }

    /// The IPv4 header checksum once the TTL is one less
    /// (`ip_decrease_ttl`: `check += htons(0x0100)` with the end-around
    /// carry), from and to its wire bytes.
    #[inline(always)]
    pub fn checksum_after_ttl_decrement(check: [u8; 2]) -> [u8; 2] {
        let c = u16::from_be_bytes(check) as u32 + 0x0100;
        let c = c + (c >= 0xffff) as u32;
        (c as u16).to_be_bytes()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::csum;

        #[test]
        fn gue_ports_stay_in_the_kernels_range() {
            for h in [0, 1, 0xffff, 0x1_0000, 0xdead_beef, u32::MAX, 0x8000_0000] {
                let p = u32::from(gue_source_port(h));
                assert!((GUE_PORT_MIN..GUE_PORT_MAX).contains(&p), "{h:#x} -> {p}");
            }
            assert_eq!(gue_source_port(0), 32768);
            assert_ne!(flow_hash(&[1, 2, 3]), flow_hash(&[1, 2, 4]));
            assert_eq!(flow_hash(&[1, 2, 3]), flow_hash(&[1, 2, 3]));
        }

        #[test]
        fn ce_becomes_ect0_and_the_rest_is_copied() {
            assert_eq!(ecn_encapsulate(0xb8), 0xb8);
            assert_eq!(ecn_encapsulate(0xb9), 0xb9);
            assert_eq!(ecn_encapsulate(0xba), 0xba);
            assert_eq!(ecn_encapsulate(0xbb), 0xba);
            assert_eq!(ecn_encapsulate(0x03), 0x02);
        }

        #[test]
        fn the_decremented_ttl_keeps_the_checksum_valid() {
            let mut hdr = [
                0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xac, 0x10,
                0x0a, 0x63, 0xac, 0x10, 0x0a, 0x0c,
            ];
            for ttl in [64u8, 2, 255, 0x01 + 1] {
                hdr[8] = ttl;
                hdr[10] = 0;
                hdr[11] = 0;
                let c = csum::fold(csum::add_bytes(0, &hdr)).to_be_bytes();
                let after = checksum_after_ttl_decrement(c);
                hdr[8] = ttl - 1;
                hdr[10..12].copy_from_slice(&after);
                assert_eq!(csum::fold(csum::add_bytes(0, &hdr)), 0, "ttl {ttl}");
            }
        }
    }
}

/// Internet checksum arithmetic (RFC 1071), shared by the reply builders.
pub mod csum {
    /// Folds a 32-bit one's-complement sum into 16 bits and complements it.
    #[inline(always)]
    pub fn fold(mut sum: u32) -> u16 {
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        !(sum as u16)
    }

    /// Adds the big-endian 16-bit words of `bytes` (an odd tail byte is padded
    /// with zero) to `sum`.
    #[inline(always)]
    pub fn add_bytes(mut sum: u32, bytes: &[u8]) -> u32 {
        let mut i = 0;
        while i + 1 < bytes.len() {
            sum += u16::from_be_bytes([bytes[i], bytes[i + 1]]) as u32;
            i += 2;
        }
        if i < bytes.len() {
            sum += (bytes[i] as u32) << 8;
        }
        sum
    }

    /// Incremental update (RFC 1624, `HC' = ~(~HC + ~m + m')`) as IPVS's
    /// `ip_vs_check_diff4/16/2` and the kernel's `csum_replace*` do it: the
    /// changes are summed into a `Diff` 32-bit word at a time, then applied
    /// to the old checksum with [`Diff::apply`]. Words are read from the
    /// packet in the machine's byte order and the checksum likewise: one's
    /// complement sums do not depend on byte order (RFC 1071).
    #[derive(Clone, Copy, Default)]
    pub struct Diff(u64);

    impl Diff {
        /// A 32-bit word that changes from `old` to `new`.
        #[inline(always)]
        pub fn word(self, old: u32, new: u32) -> Diff {
            Diff(self.0 + (!old) as u64 + new as u64)
        }

        /// Four words (an address as the maps hold it).
        #[inline(always)]
        pub fn words(self, old: &[u32; 4], new: &[u32; 4]) -> Diff {
            self.word(old[0], new[0])
                .word(old[1], new[1])
                .word(old[2], new[2])
                .word(old[3], new[3])
        }

        /// A partial sum of changes computed elsewhere (the kernel's
        /// `bpf_csum_diff`: the sum of the new words and the complements
        /// of the old ones).
        #[inline(always)]
        pub fn sum(self, partial: u32) -> Diff {
            Diff(self.0 + partial as u64)
        }

        /// An IPv6 address that changes from the bytes `old` (read in
        /// place, in the packet) to `new`.
        #[inline(always)]
        pub fn octets(self, old: &[u8; 16], new: &[u32; 4]) -> Diff {
            let w = |i: usize| u32::from_ne_bytes([old[i], old[i + 1], old[i + 2], old[i + 3]]);
            self.word(w(0), new[0])
                .word(w(4), new[1])
                .word(w(8), new[2])
                .word(w(12), new[3])
        }

        /// A 16-bit field that changes from `old` to `new`.
        #[inline(always)]
        pub fn half(self, old: u16, new: u16) -> Diff {
            Diff(self.0 + (!old) as u64 + new as u64)
        }

        /// The checksum `check` (read in the machine's byte order) after
        /// the changes.
        #[inline(always)]
        pub fn apply(self, check: u16) -> u16 {
            let mut s = self.0 + (!check) as u64;
            s = (s & 0xffff_ffff) + (s >> 32);
            s = (s & 0xffff_ffff) + (s >> 32);
            let mut t = (s & 0xffff) + (s >> 16);
            t = (t & 0xffff) + (t >> 16);
            t = (t & 0xffff) + (t >> 16);
            !(t as u16)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The checksum of `bytes` as a receiver computes it.
        fn full(bytes: &[u8]) -> u16 {
            fold(add_bytes(0, bytes))
        }

        #[test]
        fn incremental_update_equals_a_full_recompute() {
            // An IPv4 header whose destination and TTL change.
            let mut hdr = [
                0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xac, 0x10,
                0x0a, 0x63, 0xac, 0x10, 0x0a, 0x0c,
            ];
            let c = full(&hdr).to_be_bytes();
            hdr[10..12].copy_from_slice(&c);
            let old_dst = u32::from_ne_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
            let old_ttl = u16::from_ne_bytes([hdr[8], hdr[9]]);
            let new_dst_b = [192, 0, 2, 77];
            hdr[16..20].copy_from_slice(&new_dst_b);
            hdr[8] -= 1;
            let new_dst = u32::from_ne_bytes(new_dst_b);
            let new_ttl = u16::from_ne_bytes([hdr[8], hdr[9]]);
            let check = u16::from_ne_bytes([hdr[10], hdr[11]]);
            let upd = Diff::default()
                .word(old_dst, new_dst)
                .half(old_ttl, new_ttl)
                .apply(check);
            hdr[10..12].copy_from_slice(&upd.to_ne_bytes());
            let mut zeroed = hdr;
            zeroed[10] = 0;
            zeroed[11] = 0;
            assert_eq!(full(&zeroed).to_be_bytes(), [hdr[10], hdr[11]]);
            // And the whole header sums to zero (a receiver's check).
            assert_eq!(fold(add_bytes(0, &hdr)), 0);
        }

        #[test]
        fn incremental_update_over_many_values() {
            // A pseudo-random walk: any 12-byte "header" with a checksum,
            // two words and a half changed, equals its recomputed sum.
            let mut x: u32 = 0x1234_5678;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x
            };
            for _ in 0..10_000 {
                let mut b = [0u8; 12];
                for w in b.chunks_mut(4) {
                    w.copy_from_slice(&next().to_ne_bytes());
                }
                b[10] = 0;
                b[11] = 0;
                let c = full(&b).to_be_bytes();
                b[10..12].copy_from_slice(&c);
                let (o0, o1) = (
                    u32::from_ne_bytes(b[0..4].try_into().unwrap()),
                    u32::from_ne_bytes(b[4..8].try_into().unwrap()),
                );
                let o2 = u16::from_ne_bytes([b[8], b[9]]);
                let (n0, n1, n2) = (next(), next(), next() as u16);
                b[0..4].copy_from_slice(&n0.to_ne_bytes());
                b[4..8].copy_from_slice(&n1.to_ne_bytes());
                b[8..10].copy_from_slice(&n2.to_ne_bytes());
                let check = u16::from_ne_bytes([b[10], b[11]]);
                let upd = Diff::default()
                    .word(o0, n0)
                    .word(o1, n1)
                    .half(o2, n2)
                    .apply(check);
                b[10..12].copy_from_slice(&upd.to_ne_bytes());
                assert_eq!(fold(add_bytes(0, &b)), 0, "{b:?}");
            }
        }

        #[test]
        fn ip_header_checksum_of_a_known_header() {
            // RFC 1071 style example: a real IPv4 header with checksum 0xb1e6.
            let hdr = [
                0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xac, 0x10,
                0x0a, 0x63, 0xac, 0x10, 0x0a, 0x0c,
            ];
            assert_eq!(fold(add_bytes(0, &hdr)), 0xb1e6);
        }
    }
}

//! Pure logic of the XDP program: no packet or map access, so it is unit-tested
//! on the host (`cargo test --manifest-path lb-ebpf/Cargo.toml --lib`) and used
//! unchanged by the BPF binary (`main.rs`): the schedulers, the TCP state
//! table, checksum arithmetic.
#![cfg_attr(not(test), no_std)]

pub mod decap;
pub mod schedulers;
pub mod tcp_state;

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

    #[cfg(test)]
    mod tests {
        use super::*;

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

//! Next-hop resolution for direct routing: the real server's MAC address and
//! the interface it is reached on, from the kernel's neighbour table.
//!
//! When the kernel has no entry yet, one datagram to the real server's
//! discard port (9/udp) makes it resolve one (ARP), as any first packet
//! would. If it still cannot, the XDP program asks the kernel again
//! (`bpf_fib_lookup`) on the real server's next new flow.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::{Duration, Instant},
};

/// A resolved next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub mac: [u8; 6],
    pub ifindex: u32,
    /// MAC of the interface, used as source for redirected frames.
    pub smac: [u8; 6],
}

/// Parses `/proc/net/arp` text for a complete entry of `addr`: (MAC, device).
pub fn parse_proc_arp(text: &str, addr: Ipv4Addr) -> Option<([u8; 6], String)> {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[0].parse::<Ipv4Addr>().ok()? != addr {
            continue;
        }
        let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
        const ATF_COM: u32 = 0x02;
        if flags & ATF_COM == 0 {
            continue;
        }
        let mac = parse_mac(f[3])?;
        if mac == [0; 6] {
            continue;
        }
        return Some((mac, f[5].to_string()));
    }
    None
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn lookup(addr: Ipv4Addr) -> Option<NextHop> {
    // thread-self: the neighbour table of this thread's network namespace
    // (a thread may have entered another one with setns).
    let text = std::fs::read_to_string("/proc/thread-self/net/arp").ok()?;
    let (mac, dev) = parse_proc_arp(&text, addr)?;
    let ifindex = ifindex(&dev)?;
    Some(NextHop {
        mac,
        ifindex,
        smac: if_mac(&dev).unwrap_or([0; 6]),
    })
}

/// Resolves `addr`, prompting the kernel to ARP for it if needed; waits at
/// most `wait`.
pub fn resolve(addr: Ipv4Addr, wait: Duration) -> Option<NextHop> {
    if let Some(h) = lookup(addr) {
        return Some(h);
    }
    if let Ok(sock) = UdpSocket::bind("0.0.0.0:0") {
        let _ = sock.send_to(b"", SocketAddrV4::new(addr, 9));
    }
    let start = Instant::now();
    while start.elapsed() < wait {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(h) = lookup(addr) {
            return Some(h);
        }
    }
    None
}

pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// The MAC address of an interface of the current network namespace.
pub fn if_mac(name: &str) -> Option<[u8; 6]> {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return None;
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s as libc::c_char;
    }
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) };
    unsafe { libc::close(fd) };
    if rc != 0 {
        return None;
    }
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_entries_only() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                    198.51.100.11    0x1         0x2         aa:bb:cc:dd:ee:01     *        eth0\n\
                    198.51.100.12    0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            parse_proc_arp(text, "198.51.100.11".parse().unwrap()),
            Some(([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01], "eth0".into()))
        );
        assert_eq!(parse_proc_arp(text, "198.51.100.12".parse().unwrap()), None);
        assert_eq!(parse_proc_arp(text, "198.51.100.13".parse().unwrap()), None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee"), None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff:00"), None);
    }
}

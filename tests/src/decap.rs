//! The decapsulator under test (`lbctl decap`, lb-ebpf's `src/decap/`):
//! its program loaded (not attached) through `BPF_PROG_TEST_RUN` on a
//! private pin folder, set up through lb-user's `decap` module as `lbctl
//! decap attach` sets it up, with the host's local addresses replaced by a
//! fixed list; and encapsulated frames as IPVS's `ip_vs_tunnel_xmit` sends
//! them (IPIP, GUE, GRE), built around an inner frame.

use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use aya::{Ebpf, TestRun, TestRunOptions, programs::Xdp};
use lb_common::decap::{DECAP_PIN_SUBDIR, DECAP_PROGRAM_NAME, DECAP_REASON_COUNT};
use lb_user::decap::{DecapPins, DecapSettings};

use crate::{frame::Frame, lb::RunResult, netns::BpfPinDir};

/// The real server's own address (the outer destination), IPv4 and IPv6.
pub const RIP4: &str = "198.51.100.20";
pub const RIP6: &str = "2001:db8:0:1::20";
/// The director (the outer source).
pub const DIRECTOR4: &str = "198.51.100.1";
pub const DIRECTOR6: &str = "2001:db8:0:1::1";
/// A VIP on the real server's lo.
pub const VIP4: &str = "203.0.113.10";
pub const VIP6: &str = "2001:db8:0:2::10";
/// Another local address (on lo) that is not the VIP.
pub const OTHER4: &str = "203.0.113.11";
pub const OTHER6: &str = "2001:db8:0:2::11";
/// Inside a local range (`ip route add local 203.0.113.128/25 dev lo`).
pub const RANGE4: &str = "203.0.113.200";
/// The client.
pub const CLIENT4: &str = "192.0.2.1";
pub const CLIENT6: &str = "2001:db8:0:3::1";
/// Not this host's.
pub const ELSEWHERE4: &str = "198.51.100.99";
pub const ELSEWHERE6: &str = "2001:db8:0:1::99";

/// The fixture host's local prefixes.
pub fn local_prefixes() -> Vec<(IpAddr, u8)> {
    let a = |s: &str| s.parse::<IpAddr>().expect("address");
    vec![
        (a(RIP4), 32),
        (a(VIP4), 32),
        (a(OTHER4), 32),
        (a("203.0.113.128"), 25),
        (a("127.0.0.0"), 8),
        (a(RIP6), 128),
        (a(VIP6), 128),
        (a(OTHER6), 128),
        (a("::1"), 128),
    ]
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// The decapsulator loaded on a private pin folder, configured for the
/// interface the frames arrive on (`lo`).
pub struct Decap {
    ebpf: Ebpf,
    pub pins: DecapPins,
    pub ifindex: u32,
    _dir: BpfPinDir,
}

impl Decap {
    /// Settings as `lbctl decap attach lo [--vip ...] [--gue-port N]` gives.
    pub fn new(settings: &DecapSettings) -> Result<Decap> {
        let mut d = Decap::unconfigured()?;
        d.pins.set_iface(d.ifindex, settings)?;
        Ok(d)
    }

    /// No settings for the interface.
    pub fn unconfigured() -> Result<Decap> {
        if lb_user::decap::DECAP_OBJECT.is_empty() {
            bail!("the tests were built without the BPF objects: run them with `cargo xtask test`");
        }
        let dir = BpfPinDir::new()?;
        let sub = dir.join(DECAP_PIN_SUBDIR);
        let mut pins = DecapPins::open(&sub)?;
        pins.set_local(&local_prefixes())?;
        let mut ebpf = lb_user::decap::load(&sub)?;
        let prog: &mut Xdp = ebpf
            .program_mut(DECAP_PROGRAM_NAME)
            .context("lb_decap missing from the object")?
            .try_into()?;
        prog.load().context("loading lb_decap")?;
        let ifindex = lb_user::neigh::ifindex("lo").context("no lo")?;
        Ok(Decap {
            ebpf,
            pins,
            ifindex,
            _dir: dir,
        })
    }

    /// Runs the program once on `frame`, arriving on `lo`.
    pub fn run(&self, frame: &[u8]) -> Result<RunResult> {
        self.run_on(self.ifindex, frame)
    }

    /// Runs the program once on `frame`, arriving on `ifindex` (of the
    /// calling thread's namespace).
    pub fn run_on(&self, ifindex: u32, frame: &[u8]) -> Result<RunResult> {
        let prog: &Xdp = self
            .ebpf
            .program(DECAP_PROGRAM_NAME)
            .context("lb_decap")?
            .try_into()?;
        let mut md = [0u8; 24];
        md[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        md[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 256];
        let r = prog.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&md),
            ..TestRunOptions::default()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok(RunResult {
            action: r.return_value,
            frame: out,
        })
    }

    /// Packets under each `DECAP_REASON_*`.
    pub fn counters(&self) -> Result<Vec<u64>> {
        Ok(self.pins.counters()?.iter().map(|(_, p, _)| *p).collect())
    }

    /// Runs `frame`; the result and how each counter moved.
    pub fn run_counted(&self, frame: &[u8]) -> Result<(RunResult, Vec<u64>)> {
        let before = self.counters()?;
        let r = self.run(frame)?;
        let after = self.counters()?;
        Ok((r, after.iter().zip(&before).map(|(a, b)| a - b).collect()))
    }
}

/// One packet counted under `reason`.
pub fn only(reason: u32) -> Vec<u64> {
    let mut v = vec![0; DECAP_REASON_COUNT as usize];
    v[reason as usize] = 1;
    v
}

/// The tunnel kinds of IPVS (`--tun-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tun {
    Ipip,
    /// GUE to this port.
    Gue(u16),
    /// GRE, with the checksum (`--tun-csum`) or not.
    Gre {
        csum: bool,
    },
}

/// `IPPROTO_IPIP` or `IPPROTO_IPV6` for an inner frame.
fn inner_proto(inner: &[u8]) -> u8 {
    if inner[12..14] == [0x86, 0xdd] { 41 } else { 4 }
}

/// The IP packet of an Ethernet frame (no VLAN tag).
pub fn ip_packet(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// GRE's header for `inner`, as `gre_build_header` writes it.
pub fn gre_header(inner_ip: &[u8], v6: bool, csum: bool) -> Vec<u8> {
    let proto: u16 = if v6 { 0x86dd } else { 0x0800 };
    let mut h = vec![if csum { 0x80 } else { 0 }, 0];
    h.extend_from_slice(&proto.to_be_bytes());
    if csum {
        h.extend_from_slice(&[0, 0, 0, 0]);
        let c = crate::frame::checksum(&[&h, inner_ip]);
        h[4..6].copy_from_slice(&c.to_be_bytes());
    }
    h
}

/// `inner` (an Ethernet frame) as the director sends it to `rip` from
/// `director` (same family) through `tun`, with the outer TOS / traffic
/// class `outer_tos`; the MACs are the inner frame's defaults.
pub fn encapsulate(
    inner: &[u8],
    director: IpAddr,
    rip: IpAddr,
    tun: Tun,
    outer_tos: u8,
) -> Vec<u8> {
    let inner_ip = ip_packet(inner);
    let proto = inner_proto(inner);
    let f = match tun {
        Tun::Ipip => Frame::ip_any(director, rip, proto).payload(inner_ip),
        Tun::Gue(port) => {
            let mut p = vec![0, proto, 0, 0];
            p.extend_from_slice(inner_ip);
            Frame::udp_ip(director, rip).ports(40001, port).payload(&p)
        }
        Tun::Gre { csum } => {
            let mut p = gre_header(inner_ip, proto == 41, csum);
            p.extend_from_slice(inner_ip);
            Frame::ip_any(director, rip, 47).payload(&p)
        }
    };
    f.tos(outer_tos).build()
}

/// A UDP datagram from the client to `dst` (IPv4 or IPv6), as an Ethernet
/// frame.
pub fn inner_udp(dst: IpAddr, tos: u8) -> Frame {
    let client = if dst.is_ipv4() {
        ip(CLIENT4)
    } else {
        ip(CLIENT6)
    };
    Frame::udp_ip(client, dst)
        .ports(33000, 9000)
        .payload(b"through the tunnel")
        .tos(tos)
}

/// A raw packet socket that sends whole Ethernet frames out of `ifindex`
/// (of the namespace it is made in; it stays there when used from
/// another thread).
pub struct FrameSender {
    fd: std::os::fd::OwnedFd,
    ifindex: u32,
}

impl FrameSender {
    /// Made in the calling thread's namespace.
    pub fn new(ifindex: u32) -> Result<FrameSender> {
        use std::os::fd::FromRawFd;
        // SAFETY: a plain socket(2) call; the descriptor is owned at once.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(FrameSender { fd, ifindex })
    }

    pub fn send(&self, frame: &[u8]) -> Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_ifindex = self.ifindex as i32;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the buffer and the address are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n != frame.len() as isize {
            bail!("sending a frame: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// `frame` with its MACs replaced.
pub fn with_macs(frame: &[u8], dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

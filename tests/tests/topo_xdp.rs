//! Self-check of the topology with a real XDP data path (needs root), independent of the
//! project's own program: a 15-instruction, hand-assembled XDP program does what a direct-
//! routing director does (frames for the VIP get the real server's MAC as destination and
//! the LB's as source, then `XDP_TX`), attached with raw `bpf(2)` calls. An `XDP_PASS`
//! program on the LB veth's peer makes the veth accept `XDP_TX` frames.
//!
//! This proves the topology carries the end-to-end tests once the real program is attached:
//! the client's frames reach the LB, leave again rewritten, reach the real server, and the
//! real server answers the client directly from the VIP.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::Path;

use lb_tests::client::{self, DEFAULT_TIMEOUT, HoldConn, Outcome};
use lb_tests::netns::Netns;
use lb_tests::require_root;
use lb_tests::topo::DrTopology;

const TESTSRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_PASS: i32 = 2;
const XDP_TX: i32 = 3;

/// One eBPF instruction: opcode, dst/src registers, offset, immediate.
fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = op;
    b[1] = dst | (src << 4);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

fn bpf(cmd: libc::c_long, attr: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a live buffer of the given size laid out as `union bpf_attr` for
    // `cmd` (unused tail bytes zero); every pointer inside it refers to live buffers.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), attr.len()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn load_xdp(insns: &[[u8; 8]]) -> OwnedFd {
    let code: Vec<u8> = insns.concat();
    let license = b"GPL\0";
    let mut log = vec![0u8; 1 << 16];
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_XDP.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(code.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[24..28].copy_from_slice(&1u32.to_ne_bytes()); // log_level
    attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
    attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
    attr[68..72].copy_from_slice(&BPF_XDP.to_ne_bytes()); // expected_attach_type
    bpf(BPF_PROG_LOAD, &attr).unwrap_or_else(|e| {
        panic!(
            "BPF_PROG_LOAD: {e}\n{}",
            String::from_utf8_lossy(&log).trim_end_matches('\0')
        )
    })
}

/// `return XDP_PASS`.
fn pass_prog() -> OwnedFd {
    load_xdp(&[insn(0xb7, 0, 0, 0, XDP_PASS), insn(0x95, 0, 0, 0, 0)])
}

/// IPv4 frames to `vip`: destination MAC := `real`, source MAC := `lb`, `XDP_TX`.
/// Anything else: `XDP_PASS`.
fn dr_prog(vip: Ipv4Addr, real: [u8; 6], lb: [u8; 6]) -> OwnedFd {
    let w = |b: [u8; 4]| i32::from_le_bytes(b);
    let h = |b: [u8; 2]| i32::from(i16::from_le_bytes(b));
    load_xdp(&[
        insn(0x61, 2, 1, 0, 0),               // r2 = ctx->data
        insn(0x61, 3, 1, 4, 0),               // r3 = ctx->data_end
        insn(0xbf, 4, 2, 0, 0),               // r4 = r2
        insn(0x07, 4, 0, 0, 34),              // r4 += eth + ipv4 header
        insn(0x2d, 4, 3, 8, 0),               // if r4 > r3 goto pass
        insn(0x61, 5, 2, 30, 0),              // r5 = ip->daddr
        insn(0x56, 5, 0, 6, w(vip.octets())), // if (u32)r5 != vip goto pass
        insn(0x62, 2, 0, 0, w([real[0], real[1], real[2], real[3]])),
        insn(0x6a, 2, 0, 4, h([real[4], real[5]])), // eth->h_dest = real
        insn(0x6a, 2, 0, 6, h([lb[0], lb[1]])),
        insn(0x62, 2, 0, 8, w([lb[2], lb[3], lb[4], lb[5]])), // eth->h_source = lb
        insn(0xb7, 0, 0, 0, XDP_TX),
        insn(0x95, 0, 0, 0, 0),
        insn(0xb7, 0, 0, 0, XDP_PASS), // pass:
        insn(0x95, 0, 0, 0, 0),
    ])
}

/// Attaches `prog` to `ifname` inside `ns` with a BPF link (detached when the fd closes).
fn attach(ns: &Netns, ifname: &str, prog: &OwnedFd) -> OwnedFd {
    let ifname = CString::new(ifname).unwrap();
    ns.run_in(|| {
        // Resolved in this thread's (the namespace's) netns.
        let ifindex = nix::net::if_::if_nametoindex(ifname.as_c_str())
            .unwrap_or_else(|e| panic!("{ifname:?}: {e}"));
        let mut attr = [0u8; 64];
        attr[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        attr[8..12].copy_from_slice(&BPF_XDP.to_ne_bytes());
        bpf(BPF_LINK_CREATE, &attr).expect("BPF_LINK_CREATE")
    })
    .unwrap()
}

#[test]
fn dr_through_handwritten_xdp() {
    if !require_root("dr_through_handwritten_xdp") {
        return;
    }
    let mut t = DrTopology::new(2).unwrap();
    t.start_servers(Path::new(TESTSRV), 80, false).unwrap();
    t.start_servers(Path::new(TESTSRV), 53, true).unwrap();
    let rs2 = &t.backends[1];
    let prog = dr_prog(t.vip, rs2.mac, t.lb.mac);
    let pass = pass_prog();
    let _peer = attach(&t.switch, t.lb_peer(), &pass);
    let lb_link = attach(&t.lb.ns, t.lb_ifname(), &prog);

    let counts = client::http_get_many(&t.client.ns, t.vip_sock(80), 3, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(
        counts,
        std::collections::HashMap::from([("rs2".to_owned(), 3)])
    );
    let udp = client::udp_ask(&t.client.ns, t.vip_sock(53), b"?", DEFAULT_TIMEOUT).unwrap();
    assert_eq!(udp, Outcome::Answered("rs2".into()));
    let mut hold = HoldConn::open(&t.client.ns, t.vip_sock(80), DEFAULT_TIMEOUT).unwrap();
    assert_eq!(hold.backend(), "rs2");
    assert_eq!(hold.ask(DEFAULT_TIMEOUT), Outcome::Answered("rs2".into()));

    // Detaching the program: the LB's stack does not hold the VIP, so the connection hangs.
    drop(lb_link);
    assert_eq!(
        hold.ask(std::time::Duration::from_millis(300)),
        Outcome::TimedOut
    );
}

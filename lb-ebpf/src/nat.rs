//! Masquerading (`-m`, docs/SEMANTICS.md §19).
//!
//! - Requests (`request`, IPVS's `ip_vs_nat_xmit`): the destination becomes
//!   the real server's address and port, the checksums are updated
//!   incrementally, the TTL / hop limit decremented, the route MTU checked;
//!   the source stays the client's.
//! - Replies (`reply`, IPVS's `ip_vs_out` + `handle_response`): the real
//!   servers route their replies through the director; a reply is found in
//!   `NAT_REPLIES` by its tuple (RIP:rport -> CIP:cport), its source becomes
//!   VIP:vport, the conn follows the OUTPUT table of the TCP states, and it
//!   is forwarded to the client by the kernel's FIB (`bpf_fib_lookup`), or
//!   passed to the kernel, which forwards it, when the FIB has no neighbour.
//! - ICMP errors about a masqueraded flow are translated both ways
//!   (`ip_vs_nat_icmp`): from the client's side to the real server
//!   (`request`), from the real server's side to the client (`reply`).

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{
        BPF_ANY, BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_SUCCESS,
        bpf_fib_lookup as FibParams,
    },
    helpers::{bpf_check_mtu, bpf_csum_diff, bpf_fib_lookup, bpf_redirect},
    programs::XdpContext,
};
use lb_common::{
    CONN_F_CONTROLLED, CONN_S_ESTABLISHED, CONN_S_UDP, Conn, ConnKey, DEST_F_AVAILABLE,
    DEST_F_IN_USE, Dest, FWD_MASQ, IPPROTO_TCP, IPPROTO_UDP, NatKey, NatReply,
    REASON_DROP_CONN_TABLE, REASON_DROP_INTERNAL, REASON_DROP_REPLY_RATE, REASON_FWD_NAT_ICMP,
    REASON_FWD_NAT_REPLY, REASON_PASS_NOT_L4, RealKey, Settings,
};
use lb_ebpf::{
    csum::Diff,
    tcp_state::{Dir, TCP_RST, next_state_in},
};

use crate::{
    Verdict, clock, counts, forward,
    maps::{CONNS, DESTS, MASQ_REALS, NAT_REPLIES},
    parse::{ETH_LEN, EthHdr, Ipv4Hdr, Ipv6Hdr, Packet, TcpHdr, UdpHdr, ptr_at, ptr_at_mut},
    reply,
    settings::timeout,
    stats, sweep, template,
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// IPv4 "don't fragment", in the first byte of `frag_off`.
const IP_DF: u8 = 0x40;
/// The largest `Packet::l3_len` (IPv6 with `MAX_EXT_HEADERS` of the
/// largest size is less): a bound the verifier can see.
const L3_MASK: usize = 0x3fff;
/// Offsets of the ICMP checksum and of the ports in the quoted transport
/// header.
const ICMP_CHECK: usize = 2;

// ---------------------------------------------------------------------------
// Rewriting helpers
// ---------------------------------------------------------------------------

/// The 16-bit word at `p` in the machine's byte order (checksum arithmetic).
#[inline(always)]
fn ne16(b: [u8; 2]) -> u16 {
    u16::from_ne_bytes(b)
}

/// The checksum field of the TCP or UDP header at `l4` after `diff`
/// (addresses of the pseudo-header and ports). A UDP checksum of 0 (none,
/// IPv4) stays 0; a computed 0 is sent as 0xffff (`CSUM_MANGLED_0`).
#[inline(always)]
fn l4_checksum(ctx: &XdpContext, proto: u8, l4: usize, diff: Diff) -> Option<()> {
    if proto == IPPROTO_TCP {
        let tcp: *mut TcpHdr = ptr_at_mut(ctx, l4)?;
        unsafe { (*tcp).check = diff.apply(ne16((*tcp).check)).to_ne_bytes() };
    } else {
        let udp: *mut UdpHdr = ptr_at_mut(ctx, l4)?;
        let old = unsafe { ne16((*udp).check) };
        if old != 0 {
            let mut c = diff.apply(old);
            if c == 0 {
                c = 0xffff;
            }
            unsafe { (*udp).check = c.to_ne_bytes() };
        }
    }
    Some(())
}

/// Writes `a` over the 16 address bytes at `dst`, a word at a time (no
/// copy on the stack).
#[inline(always)]
fn put_addr(dst: *mut [u8; 16], a: &lb_common::Addr) {
    let w = dst as *mut [[u8; 4]; 4];
    unsafe {
        (*w)[0] = a[0].to_ne_bytes();
        (*w)[1] = a[1].to_ne_bytes();
        (*w)[2] = a[2].to_ne_bytes();
        (*w)[3] = a[3].to_ne_bytes();
    }
}

/// The port pair of the TCP or UDP header at `l4` (both start with it).
#[inline(always)]
fn ports(ctx: &XdpContext, l4: usize) -> Option<*mut [[u8; 2]; 2]> {
    ptr_at_mut::<[[u8; 2]; 2]>(ctx, l4)
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// Rewrites a request of a masqueraded flow to its real server and sends it
/// (`ip_vs_nat_xmit`, `ip_vs_nat_xmit_v6`); an ICMP error from the client's
/// side about the flow is translated (`ip_vs_nat_icmp`, out -> in).
#[inline(always)]
pub fn request(ctx: &XdpContext, pkt: &Packet, dest: *mut Dest, reason: u32) -> Verdict {
    match rewrite(ctx, pkt, dest) {
        0 => forward::direct_route(ctx, dest, 0, reason),
        packed => reply::unpack(packed),
    }
}

/// The rewrite of [`request`]: 0 when the packet is ready to go, else the
/// verdict that ends it, packed (`reply::pack`; never 0: no such verdict
/// is XDP_ABORTED). A function of its own, so that its stack frame is not
/// added to every caller's (the verifier's 512-byte limit on a call chain:
/// an ICMP error about a flow goes through `conn::icmp_error`, then either
/// this or `forward::resolve`, or the tunnel's encapsulation).
#[inline(never)]
fn rewrite(ctx: &XdpContext, pkt: &Packet, dest: *mut Dest) -> u64 {
    let r = if pkt.icmp_error {
        icmp_to_real(ctx, pkt, dest)
    } else if pkt.v6 {
        request_v6(ctx, pkt, dest)
    } else {
        request_v4(ctx, pkt, dest)
    };
    match r {
        Ok(()) => 0,
        Err(v) => reply::pack(v),
    }
}

/// The real server's port for this flow: the dest's, or the packet's for a
/// port-0 dest (a fwmark service's, as the kernel's `cp->dport`).
#[inline(always)]
fn real_port(dest: *const Dest, vport: [u8; 2]) -> [u8; 2] {
    let p = unsafe { (*dest).port };
    if p == [0, 0] { vport } else { p }
}

#[inline(always)]
fn request_v4(ctx: &XdpContext, pkt: &Packet, dest: *mut Dest) -> Result<(), Verdict> {
    let internal = Verdict::Drop(REASON_DROP_INTERNAL);
    let ip: *mut Ipv4Hdr = ptr_at_mut(ctx, ETH_LEN).ok_or(internal)?;
    let (ttl, proto, df) = unsafe { ((*ip).ttl, (*ip).proto, (*ip).frag_off[0] & IP_DF != 0) };
    if ttl <= 1 {
        return Err(reply::time_exceeded(ctx, pkt));
    }
    // The TTL first, as `decrement_ttl` before `ensure_mtu_is_adequate`:
    // a "fragmentation needed" quotes the packet with it lowered.
    let old_tp = ne16([ttl, proto]);
    let new_tp = ne16([ttl - 1, proto]);
    unsafe {
        (*ip).ttl = ttl - 1;
        let d = Diff::default().half(old_tp, new_tp);
        (*ip).check = d.apply(ne16((*ip).check)).to_ne_bytes();
    }
    let mtu = unsafe { (*dest).mtu };
    if mtu != 0 && pkt.tot_len > mtu && df {
        return Err(reply::too_big(ctx, pkt, mtu));
    }
    let (old_addr, new_addr) = (pkt.key.vaddr[3], unsafe { (*dest).addr[3] });
    let (old_port, new_port) = (pkt.key.vport, real_port(dest, pkt.key.vport));
    unsafe {
        (*ip).daddr = new_addr.to_ne_bytes();
        let d = Diff::default().word(old_addr, new_addr);
        (*ip).check = d.apply(ne16((*ip).check)).to_ne_bytes();
    }
    let l4 = ETH_LEN + (pkt.l3_len as usize & 0x3f);
    let p = ports(ctx, l4).ok_or(internal)?;
    unsafe { (*p)[1] = new_port };
    let diff = Diff::default()
        .word(old_addr, new_addr)
        .half(ne16(old_port), ne16(new_port));
    l4_checksum(ctx, proto, l4, diff).ok_or(internal)
}

#[inline(always)]
fn request_v6(ctx: &XdpContext, pkt: &Packet, dest: *mut Dest) -> Result<(), Verdict> {
    let internal = Verdict::Drop(REASON_DROP_INTERNAL);
    let ip: *mut Ipv6Hdr = ptr_at_mut(ctx, ETH_LEN).ok_or(internal)?;
    let hops = unsafe { (*ip).hop_limit };
    if hops <= 1 {
        return Err(reply::time_exceeded(ctx, pkt));
    }
    // The hop limit first (as IPv4's TTL above).
    unsafe { (*ip).hop_limit = hops - 1 };
    let mtu = unsafe { (*dest).mtu };
    if mtu != 0 && pkt.tot_len > mtu {
        return Err(reply::too_big(ctx, pkt, mtu));
    }
    let new_addr = unsafe { &(*dest).addr };
    let (old_port, new_port) = (pkt.key.vport, real_port(dest, pkt.key.vport));
    unsafe { put_addr(&raw mut (*ip).daddr, new_addr) };
    let l4 = ETH_LEN + (pkt.l3_len as usize & L3_MASK);
    let p = ports(ctx, l4).ok_or(internal)?;
    unsafe { (*p)[1] = new_port };
    let diff = Diff::default()
        .words(&pkt.key.vaddr, new_addr)
        .half(ne16(old_port), ne16(new_port));
    l4_checksum(ctx, pkt.key.proto, l4, diff).ok_or(internal)
}

/// An ICMP error from the client's side about a reply we sent (quoting
/// VIP:vport -> CIP:cport), for the real server (`ip_vs_nat_icmp`, out ->
/// in): the outer destination and the quoted source become the real
/// server's address, the quoted source port its port; the ICMP checksum
/// follows. The quoted TCP/UDP checksum is left as it was, as the kernel
/// leaves it. An error whose TTL would reach 0 is dropped: the kernel's
/// `decrement_ttl` refuses it and sends no error about an error.
#[inline(always)]
fn icmp_to_real(ctx: &XdpContext, pkt: &Packet, dest: *mut Dest) -> Result<(), Verdict> {
    let internal = Verdict::Drop(REASON_DROP_INTERNAL);
    let ttl = if pkt.v6 {
        let ip: *const Ipv6Hdr = ptr_at(ctx, ETH_LEN).ok_or(internal)?;
        unsafe { (*ip).hop_limit }
    } else {
        let ip: *const Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(internal)?;
        unsafe { (*ip).ttl }
    };
    if ttl <= 1 {
        return Err(Verdict::Drop(REASON_DROP_REPLY_RATE));
    }
    let raddr = unsafe { &(*dest).addr };
    let rport = real_port(dest, pkt.key.vport);
    let l4 = ETH_LEN + (pkt.l3_len as usize & L3_MASK);
    let diff = if pkt.v6 {
        let ip: *mut Ipv6Hdr = ptr_at_mut(ctx, ETH_LEN).ok_or(internal)?;
        let q: *mut Ipv6Hdr = ptr_at_mut(ctx, l4 + 8).ok_or(internal)?;
        icmp_to_real_v6(ip, q, raddr)
    } else {
        icmp_to_real_v4(ctx, l4, raddr[3])
    };
    let Some(diff) = diff else {
        return Err(Verdict::Pass(REASON_PASS_NOT_L4));
    };
    // The quoted source port.
    finish_icmp(ctx, pkt, l4, 0, rport, diff).ok_or(internal)
}

/// The ports of an ICMP error's quote (`which`: 0 the source, 1 the
/// destination port) and its ICMP checksum, after the address changes of
/// `diff`.
#[inline(always)]
fn finish_icmp(
    ctx: &XdpContext,
    pkt: &Packet,
    l4: usize,
    which: usize,
    port: [u8; 2],
    diff: Diff,
) -> Option<()> {
    let p = ports(ctx, pkt.quoted_l4 as usize & L3_MASK)?;
    let old = unsafe { (*p)[which & 1] };
    unsafe { (*p)[which & 1] = port };
    let diff = diff.half(ne16(old), ne16(port));
    let c: *mut [u8; 2] = ptr_at_mut(ctx, l4 + ICMP_CHECK)?;
    unsafe { *c = diff.apply(ne16(*c)).to_ne_bytes() };
    Some(())
}

/// IPv4 outer destination (and TTL) and quoted source: the real's address.
/// `None` when the TTL would run out (or the frame is short).
#[inline(always)]
fn icmp_to_real_v4(ctx: &XdpContext, l4: usize, raddr: u32) -> Option<Diff> {
    let ip: *mut Ipv4Hdr = ptr_at_mut(ctx, ETH_LEN)?;
    let q: *mut Ipv4Hdr = ptr_at_mut(ctx, l4 + 8)?;
    unsafe {
        let (ttl, proto) = ((*ip).ttl, (*ip).proto);
        if ttl <= 1 {
            return None;
        }
        let old_dst = u32::from_ne_bytes((*ip).daddr);
        (*ip).daddr = raddr.to_ne_bytes();
        (*ip).ttl = ttl - 1;
        let d = Diff::default()
            .word(old_dst, raddr)
            .half(ne16([ttl, proto]), ne16([ttl - 1, proto]));
        (*ip).check = d.apply(ne16((*ip).check)).to_ne_bytes();
        let old_qsrc = u32::from_ne_bytes((*q).saddr);
        let old_qcheck = ne16((*q).check);
        (*q).saddr = raddr.to_ne_bytes();
        let qcheck = Diff::default().word(old_qsrc, raddr).apply(old_qcheck);
        (*q).check = qcheck.to_ne_bytes();
        // ICMP has no pseudo-header: the quote's changes only.
        Some(
            Diff::default()
                .word(old_qsrc, raddr)
                .half(old_qcheck, qcheck),
        )
    }
}

/// IPv6 outer destination (and hop limit) and quoted source: the real's
/// address; the pseudo-header's destination changes too.
/// (Its own frame for the stack; it takes the headers, checked by the
/// caller, rather than the context, whose fields the compiler would pass
/// as 32-bit values the verifier no longer takes for packet pointers.)
#[inline(never)]
fn icmp_to_real_v6(ip: *mut Ipv6Hdr, q: *mut Ipv6Hdr, raddr: &lb_common::Addr) -> Option<Diff> {
    unsafe {
        let hops = (*ip).hop_limit;
        if hops <= 1 {
            return None;
        }
        let d = Diff::default()
            .sum(addr_diff(&raw mut (*ip).daddr, raddr))
            .sum(addr_diff(&raw mut (*q).saddr, raddr));
        put_addr(&raw mut (*ip).daddr, raddr);
        (*ip).hop_limit = hops - 1;
        put_addr(&raw mut (*q).saddr, raddr);
        Some(d)
    }
}

/// The checksum change of the 16 packet bytes at `old` becoming `new`, by
/// the kernel's `bpf_csum_diff` (summing unaligned packet bytes word by
/// word here would spill to the stack).
#[inline(always)]
fn addr_diff(old: *mut [u8; 16], new: &lb_common::Addr) -> u32 {
    let r = unsafe {
        bpf_csum_diff(
            old as *mut u32,
            16,
            new as *const lb_common::Addr as *mut u32,
            16,
            0,
        )
    };
    r as u32
}

// ---------------------------------------------------------------------------
// The reply map
// ---------------------------------------------------------------------------

/// The reply key of the conn `key` bound to `dest` (RIP:rport -> CIP:cport).
#[inline(always)]
fn reply_key(key: &ConnKey, dest: &Dest) -> NatKey {
    NatKey {
        raddr: dest.addr,
        caddr: key.caddr,
        rport: if dest.port == [0, 0] {
            key.vport
        } else {
            dest.port
        },
        cport: key.cport,
        proto: key.proto,
        _pad: [0; 3],
    }
}

/// Makes the reply entry of the masqueraded conn just made for `pkt` to
/// `dest_id`: 0, or the reason to drop the packet (the conn is removed
/// again when its reply entry cannot be made). The newest conn of a reply
/// tuple wins (docs/SEMANTICS.md §19). The entry keeps the way the request
/// came in (its interface and MACs, read before the request is rewritten):
/// the replies go back that way (`reply`).
#[inline(never)]
pub fn track(ctx: &XdpContext, pkt: &Packet, dest_id: u32) -> u32 {
    let Some(d) = DESTS.get(dest_id) else {
        return REASON_DROP_INTERNAL;
    };
    let key = &pkt.key;
    let nk = &reply_key(key, d);
    let mut v = NatReply {
        conn: *key,
        ..NatReply::default()
    };
    if let Some(eth) = ptr_at_mut::<EthHdr>(ctx, 0) {
        unsafe {
            v.ifindex = (*ctx.ctx).ingress_ifindex;
            v.hop_mac = (*eth).src;
            v.our_mac = (*eth).dst;
        }
    }
    let vr = &v;
    if NAT_REPLIES.insert(nk, vr, BPF_ANY as u64).is_ok() {
        return 0;
    }
    if let Some(c) = CONNS.get_ptr_mut(key) {
        counts::remove(key, c);
    }
    sweep::table_full();
    REASON_DROP_CONN_TABLE
}

/// Removes the reply entry of the conn `key` (`c`) if it is a masqueraded
/// one and the entry is still its own. Called by `counts::remove`, the one
/// place conns leave the table. An entry whose dest slot went to another
/// real server since is not found here; the sweeper removes it (`sweep_visit`).
#[inline(never)]
pub fn forget(key: &ConnKey, c: *const Conn) {
    let (fwd, dest) = unsafe { ((*c).fwd, (*c).dest) };
    if fwd != FWD_MASQ {
        return;
    }
    let Some(d) = DESTS.get(dest) else {
        return;
    };
    let nk = &reply_key(key, d);
    let mine = match NAT_REPLIES.get_ptr(nk) {
        Some(v) => unsafe { (*v).conn == *key },
        None => false,
    };
    if mine {
        let _ = NAT_REPLIES.remove(nk);
    }
}

/// `bpf_for_each_map_elem`'s callback over `NAT_REPLIES` (the sweeper):
/// removes an entry whose conn is gone or is no longer a masqueraded conn
/// of that real server.
#[inline(never)]
pub extern "C" fn sweep_visit(
    _map: *mut c_void,
    key: *mut NatKey,
    v: *mut NatReply,
    _ctx: *mut c_void,
) -> i64 {
    let ckr: &ConnKey = unsafe { &(*v).conn };
    let live = match unsafe { CONNS.get(ckr) } {
        Some(c) if c.fwd == FWD_MASQ => match DESTS.get(c.dest) {
            Some(d) => d.addr == unsafe { (*key).raddr },
            None => false,
        },
        _ => false,
    };
    if !live {
        // A copy: the delete must not read the element it removes.
        let k = unsafe { *key };
        let kr = &k;
        let _ = NAT_REPLIES.remove(kr);
    }
    0
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// A packet that is no conn's reply, with `nat_icmp_send=1`: when it comes
/// from a `-m` real server's address and port (and is not a TCP reset), an
/// ICMP port unreachable goes back to the real server instead of the reply
/// being forwarded untranslated (IPVS's `ip_vs_out`, `ip_vs_has_real_service`).
/// The ICMP comes from the packet's destination (the client's address);
/// the kernel's comes from the director's own address.
#[inline(never)]
pub fn unmatched(ctx: &XdpContext, pkt: &Packet) -> Option<Verdict> {
    if pkt.icmp_error || (pkt.is_tcp() && pkt.tcp_flags & TCP_RST != 0) {
        return None;
    }
    let mut k = RealKey {
        addr: pkt.key.caddr,
        port: pkt.key.cport,
        proto: pkt.key.proto,
        _pad: 0,
    };
    let kr = &k;
    if MASQ_REALS.get_ptr(kr).is_none() {
        // A fwmark service's real serves both protocols.
        k.proto = 0;
        let kr = &k;
        MASQ_REALS.get_ptr(kr)?;
    }
    Some(reply::port_unreachable(ctx, pkt))
}

/// A real server's reply to a masqueraded flow, or an ICMP error from its
/// side about a request: translated and forwarded (`Some`), or `None` when
/// the packet is no such reply (it goes on to the VIP filter).
#[inline(never)]
pub fn reply(ctx: &XdpContext, pkt: &mut Packet, cfg: &Settings) -> Option<Verdict> {
    // Sound: `NatKey` is laid out as `ConnKey`; the parsed key of a reply
    // (source, destination) is its reply key, and so is the one of an ICMP
    // error quoting a request (the quote turned around).
    let nk: *const NatKey = &raw const pkt.key as *const NatKey;
    let nkr: &NatKey = unsafe { &*nk };
    let entry = NAT_REPLIES.get_ptr(nkr)?;
    let ck: *const ConnKey = unsafe { &raw const (*entry).conn };
    let ckr: &ConnKey = unsafe { &*ck };
    let c = CONNS.get_ptr_mut(ckr)?;
    let now = clock::now(cfg);
    let (dest_id, dest_gen, expires, fwd, svc_id) =
        unsafe { ((*c).dest, (*c).dest_gen, (*c).expires(), (*c).fwd, (*c).svc) };
    if now >= expires || fwd != FWD_MASQ {
        return None;
    }
    let d = DESTS.get(dest_id)?;
    // Still this real server's conn (not flushed, the slot not given to
    // another real): the reply must come from it.
    let rport = unsafe { (*nk).rport };
    let port_ok = d.port == rport || (d.port == [0, 0] && unsafe { (*ck).vport } == rport);
    if d.generation != dest_gen
        || d.flags & DEST_F_IN_USE == 0
        || d.addr != unsafe { (*nk).raddr }
        || !port_ok
    {
        return None;
    }
    let counted = d.flags & DEST_F_AVAILABLE != 0;
    let reason = if pkt.icmp_error {
        REASON_FWD_NAT_ICMP
    } else {
        REASON_FWD_NAT_REPLY
    };
    let route = match learned_way(ctx, pkt, entry) {
        Some(r) => r,
        None => route_to_client(ctx, pkt, unsafe { &*ck }),
    };
    if route == Route::Untouched {
        // The kernel's forwarding answers it (TTL, too big), before IPVS
        // would have seen it.
        return Some(Verdict::Pass(reason));
    }
    // From here on the packet is the conn's: its key is the conn's.
    pkt.key = unsafe { *ck };
    if !pkt.icmp_error {
        refresh(pkt, cfg, c, now);
    }
    if counted {
        stats::traffic_out(svc_id, dest_id, pkt.tot_len as u64);
    }
    let dec = matches!(route, Route::Tx | Route::Redirect(_));
    let done = if pkt.icmp_error {
        icmp_to_client(ctx, pkt, dec)
    } else if pkt.v6 {
        reply_v6(ctx, pkt, rport, dec)
    } else {
        reply_v4(ctx, pkt, rport, dec)
    };
    if done.is_none() {
        return Some(Verdict::Drop(REASON_DROP_INTERNAL));
    }
    Some(match route {
        Route::Tx => Verdict::Tx(reason),
        Route::Redirect(ifindex) => {
            Verdict::Redirect(reason, unsafe { bpf_redirect(ifindex, 0) } as u32)
        }
        _ => Verdict::Pass(reason),
    })
}

/// The TCP state after the reply (the OUTPUT table) and the conn's
/// refresh, as the client's packets do in `conn.rs`.
#[inline(always)]
fn refresh(pkt: &Packet, cfg: &Settings, c: *mut Conn, now: u64) {
    let (state, flags) = unsafe { ((*c).state, (*c).flags) };
    let new_state = if pkt.key.proto == IPPROTO_UDP {
        CONN_S_UDP
    } else {
        next_state_in(Dir::Output, state, pkt.tcp_flags)
    };
    unsafe {
        (*c).state = new_state;
        (*c).last_seen = now;
        (*c).timeout = timeout(cfg, new_state);
    }
    if new_state != state {
        counts::state_changed(c, new_state);
    }
    if flags & CONN_F_CONTROLLED != 0 {
        let assured = new_state == CONN_S_ESTABLISHED && state != CONN_S_ESTABLISHED;
        template::keep(pkt, c, assured);
    }
}

/// How a reply goes on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Out of the interface it came in on, MACs from the FIB.
    Tx,
    /// Out of this interface, MACs from the FIB.
    Redirect(u32),
    /// Translated and passed to the kernel, which forwards it (no neighbour
    /// yet, an IPv4 packet to fragment, no route: the kernel decides).
    Kernel,
    /// Passed to the kernel untranslated: its TTL runs out, or it is too
    /// big for the route and may not be fragmented; the kernel's forwarding
    /// answers the real server, as it does before IPVS sees the packet.
    Untouched,
}

/// The way the conn's request came in, backwards (`NatReply`): out of
/// the request's interface, to its previous hop's MAC, from our MAC on that
/// interface (the request's destination MAC). No route look-up: the kernel
/// would route each reply by its table (docs/SEMANTICS.md §19). A TTL that
/// runs out leaves the reply to the kernel, as `route_to_client`. `None`
/// when nothing was learned, or the reply is larger than that interface's
/// MTU (`bpf_check_mtu`): the FIB decides then (`route_to_client`).
#[inline(never)]
fn learned_way(ctx: &XdpContext, pkt: &Packet, entry: *const NatReply) -> Option<Route> {
    let ifindex = unsafe { (*entry).ifindex };
    if ifindex == 0 {
        return None;
    }
    let eth = ptr_at_mut::<EthHdr>(ctx, 0)?;
    let last_hop = if pkt.v6 {
        let ip = ptr_at_mut::<Ipv6Hdr>(ctx, ETH_LEN)?;
        unsafe { (*ip).hop_limit <= 1 }
    } else {
        let ip = ptr_at_mut::<Ipv4Hdr>(ctx, ETH_LEN)?;
        unsafe { (*ip).ttl <= 1 }
    };
    if last_hop {
        return Some(Route::Untouched);
    }
    let mut mtu: u32 = 0;
    if unsafe { bpf_check_mtu(ctx.ctx as *mut _, ifindex, &mut mtu, 0, 0) } != 0 {
        return None;
    }
    unsafe {
        (*eth).dst = (*entry).hop_mac;
        (*eth).src = (*entry).our_mac;
    }
    Some(if ifindex == unsafe { (*ctx.ctx).ingress_ifindex } {
        Route::Tx
    } else {
        Route::Redirect(ifindex)
    })
}

/// Asks the kernel's FIB for the way to the client (source VIP), and sets
/// the MACs when it knows it.
#[inline(never)]
fn route_to_client(ctx: &XdpContext, pkt: &Packet, ck: &ConnKey) -> Route {
    let Some(eth) = ptr_at_mut::<EthHdr>(ctx, 0) else {
        return Route::Kernel;
    };
    let mut p: FibParams = unsafe { core::mem::zeroed() };
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
    p.ifindex = ingress;
    p.l4_protocol = pkt.key.proto;
    let mut df = true;
    if pkt.v6 {
        let Some(ip) = ptr_at_mut::<Ipv6Hdr>(ctx, ETH_LEN) else {
            return Route::Kernel;
        };
        if unsafe { (*ip).hop_limit } <= 1 {
            return Route::Untouched;
        }
        p.family = AF_INET6;
        p.__bindgen_anon_3.ipv6_src = ck.vaddr;
        p.__bindgen_anon_4.ipv6_dst = ck.caddr;
    } else {
        let Some(ip) = ptr_at_mut::<Ipv4Hdr>(ctx, ETH_LEN) else {
            return Route::Kernel;
        };
        let (ttl, tos, frag) = unsafe { ((*ip).ttl, (*ip).tos, (*ip).frag_off[0]) };
        if ttl <= 1 {
            return Route::Untouched;
        }
        df = frag & IP_DF != 0;
        p.family = AF_INET;
        p.__bindgen_anon_2.tos = tos;
        p.__bindgen_anon_3.ipv4_src = ck.vaddr[3];
        p.__bindgen_anon_4.ipv4_dst = ck.caddr[3];
    }
    if !pkt.icmp_error {
        p.__bindgen_anon_1.tot_len = pkt.tot_len as u16;
    }
    let rc = unsafe { bpf_fib_lookup(ctx.ctx as *mut _, &mut p, size_of::<FibParams>() as i32, 0) };
    if rc == BPF_FIB_LKUP_RET_FRAG_NEEDED as i64 {
        return if df { Route::Untouched } else { Route::Kernel };
    }
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 {
        return Route::Kernel;
    }
    unsafe {
        (*eth).dst = p.dmac;
        (*eth).src = p.smac;
    }
    if p.ifindex == ingress {
        Route::Tx
    } else {
        Route::Redirect(p.ifindex)
    }
}

/// The reply's source becomes VIP:vport (`tcp_snat_handler`,
/// `udp_snat_handler`, `handle_response`); its TTL is decremented when we
/// forward it (`dec`), as the kernel's `ip_forward` would.
#[inline(always)]
fn reply_v4(ctx: &XdpContext, pkt: &Packet, rport: [u8; 2], dec: bool) -> Option<()> {
    let ip: *mut Ipv4Hdr = ptr_at_mut(ctx, ETH_LEN)?;
    let (old_addr, new_addr) = (u32::from_ne_bytes(unsafe { (*ip).saddr }), pkt.key.vaddr[3]);
    let (ttl, proto) = unsafe { ((*ip).ttl, (*ip).proto) };
    let new_ttl = if dec { ttl - 1 } else { ttl };
    unsafe {
        (*ip).saddr = new_addr.to_ne_bytes();
        (*ip).ttl = new_ttl;
        let d = Diff::default()
            .word(old_addr, new_addr)
            .half(ne16([ttl, proto]), ne16([new_ttl, proto]));
        (*ip).check = d.apply(ne16((*ip).check)).to_ne_bytes();
    }
    let l4 = ETH_LEN + (pkt.l3_len as usize & 0x3f);
    let p = ports(ctx, l4)?;
    unsafe { (*p)[0] = pkt.key.vport };
    let diff = Diff::default()
        .word(old_addr, new_addr)
        .half(ne16(rport), ne16(pkt.key.vport));
    l4_checksum(ctx, proto, l4, diff)
}

#[inline(always)]
fn reply_v6(ctx: &XdpContext, pkt: &Packet, rport: [u8; 2], dec: bool) -> Option<()> {
    let ip: *mut Ipv6Hdr = ptr_at_mut(ctx, ETH_LEN)?;
    let diff = Diff::default()
        .sum(addr_diff(unsafe { &raw mut (*ip).saddr }, &pkt.key.vaddr))
        .half(ne16(rport), ne16(pkt.key.vport));
    unsafe {
        put_addr(&raw mut (*ip).saddr, &pkt.key.vaddr);
        if dec {
            (*ip).hop_limit -= 1;
        }
    }
    let l4 = ETH_LEN + (pkt.l3_len as usize & L3_MASK);
    let p = ports(ctx, l4)?;
    unsafe { (*p)[0] = pkt.key.vport };
    l4_checksum(ctx, pkt.key.proto, l4, diff)
}

/// An ICMP error from the real server's side about a request (quoting
/// CIP:cport -> RIP:rport), for the client (`ip_vs_nat_icmp`, in -> out):
/// the outer source becomes the VIP (even when a router sent it), the
/// quoted destination VIP:vport; the ICMP checksum follows. `pkt.key` is
/// the conn's.
#[inline(always)]
fn icmp_to_client(ctx: &XdpContext, pkt: &Packet, dec: bool) -> Option<()> {
    let l4 = ETH_LEN + (pkt.l3_len as usize & L3_MASK);
    let diff = if pkt.v6 {
        let ip: *mut Ipv6Hdr = ptr_at_mut(ctx, ETH_LEN)?;
        let q: *mut Ipv6Hdr = ptr_at_mut(ctx, l4 + 8)?;
        icmp_to_client_v6(ip, q, &pkt.key.vaddr, dec)?
    } else {
        icmp_to_client_v4(ctx, l4, pkt.key.vaddr[3], dec)?
    };
    // The quoted destination port.
    finish_icmp(ctx, pkt, l4, 1, pkt.key.vport, diff)
}

#[inline(always)]
fn icmp_to_client_v4(ctx: &XdpContext, l4: usize, vip: u32, dec: bool) -> Option<Diff> {
    let ip: *mut Ipv4Hdr = ptr_at_mut(ctx, ETH_LEN)?;
    let q: *mut Ipv4Hdr = ptr_at_mut(ctx, l4 + 8)?;
    unsafe {
        let (ttl, proto) = ((*ip).ttl, (*ip).proto);
        let new_ttl = if dec { ttl - 1 } else { ttl };
        let old_src = u32::from_ne_bytes((*ip).saddr);
        (*ip).saddr = vip.to_ne_bytes();
        (*ip).ttl = new_ttl;
        let d = Diff::default()
            .word(old_src, vip)
            .half(ne16([ttl, proto]), ne16([new_ttl, proto]));
        (*ip).check = d.apply(ne16((*ip).check)).to_ne_bytes();
        let old_qdst = u32::from_ne_bytes((*q).daddr);
        let old_qcheck = ne16((*q).check);
        (*q).daddr = vip.to_ne_bytes();
        let qcheck = Diff::default().word(old_qdst, vip).apply(old_qcheck);
        (*q).check = qcheck.to_ne_bytes();
        Some(Diff::default().word(old_qdst, vip).half(old_qcheck, qcheck))
    }
}

/// (Its own frame, as `icmp_to_real_v6`.)
#[inline(never)]
fn icmp_to_client_v6(
    ip: *mut Ipv6Hdr,
    q: *mut Ipv6Hdr,
    vip: &lb_common::Addr,
    dec: bool,
) -> Option<Diff> {
    unsafe {
        let d = Diff::default()
            .sum(addr_diff(&raw mut (*ip).saddr, vip))
            .sum(addr_diff(&raw mut (*q).daddr, vip));
        put_addr(&raw mut (*ip).saddr, vip);
        if dec {
            (*ip).hop_limit -= 1;
        }
        put_addr(&raw mut (*q).daddr, vip);
        Some(d)
    }
}

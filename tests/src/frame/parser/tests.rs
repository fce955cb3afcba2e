//! The parser's own tests: it decodes what the builder builds, field by field, and it
//! rejects what is wrong (checksums, lengths, versions, offsets), so a check can fail.

use super::*;
use crate::frame::{
    ARP_REPLY, ARP_REQUEST, BROADCAST_MAC, DOC_SRC_MAC, Frame, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY,
    ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, mutate, quote_ipv4,
};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

#[test]
fn parses_what_the_builder_builds_tcp() {
    let f = Frame::tcp(CLIENT, VIP)
        .src_mac([2, 0, 0, 0, 0, 1])
        .dst_mac([2, 0, 0, 0, 0, 2])
        .ports(12345, 443)
        .ack()
        .psh()
        .seq(7)
        .ack_seq(9)
        .window(1000)
        .ttl(17)
        .tos(0x10)
        .ident(0xbeef)
        .ip_options(&[0x94, 0x04, 0, 0]) // router alert
        .tcp_options(&[1, 1, 1]) // padded to 4
        .payload(b"hello")
        .build();
    let p = parse(&f).unwrap();
    assert_eq!(p.src_mac, [2, 0, 0, 0, 0, 1]);
    assert_eq!(p.dst_mac, [2, 0, 0, 0, 0, 2]);
    assert!(p.vlans.is_empty());
    let ip = p.ipv4().unwrap();
    assert_eq!(
        (ip.src, ip.dst, ip.ttl, ip.tos, ip.ident),
        (CLIENT, VIP, 17, 0x10, 0xbeef)
    );
    assert_eq!(ip.ihl, 6);
    assert_eq!(ip.options, vec![0x94, 4, 0, 0]);
    assert!(ip.df && !ip.mf && ip.frag_offset == 0);
    assert_eq!(usize::from(ip.total_len), f.len() - 14);
    let t = p.tcp().unwrap();
    assert_eq!(
        (t.sport, t.dport, t.seq, t.ack, t.window),
        (12345, 443, 7, 9, 1000)
    );
    assert!(t.is_ack() && t.is_psh() && !t.is_syn() && !t.is_rst() && !t.is_fin());
    assert_eq!(t.header_len, 24);
    assert_eq!(t.options, vec![1, 1, 1, 0]);
    assert_eq!(t.payload, b"hello");
}

#[test]
fn parses_udp_vlan_and_flags() {
    let f = Frame::udp(CLIENT, VIP)
        .ports(5353, 53)
        .vlan(42)
        .payload(b"q")
        .build();
    let p = parse(&f).unwrap();
    assert_eq!(p.vlans, vec![42]);
    assert_eq!(p.ethertype, ETH_P_IP);
    let u = p.udp().unwrap();
    assert_eq!((u.sport, u.dport, u.len), (5353, 53, 9));
    assert_eq!(u.payload, b"q");
    assert_ne!(u.checksum, 0);
    for (build, flag) in [
        (Frame::tcp(CLIENT, VIP).syn(), tcp_flags::SYN),
        (Frame::tcp(CLIENT, VIP).fin(), tcp_flags::FIN),
        (Frame::tcp(CLIENT, VIP).rst(), tcp_flags::RST),
        (Frame::tcp(CLIENT, VIP).flags(0xff), 0xff),
    ] {
        assert_eq!(parse(&build.build()).unwrap().tcp().unwrap().flags, flag);
    }
}

#[test]
fn parses_ipv6() {
    let src: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::1:10".parse().unwrap();
    let f = Frame::ipv6_tcp(src, dst).syn().ttl(5).payload(b"x").build();
    let p = parse(&f).unwrap();
    let ip = p.ipv6().unwrap();
    assert_eq!(
        (ip.src, ip.dst, ip.hop_limit, ip.next_header),
        (src, dst, 5, IPPROTO_TCP)
    );
    assert_eq!(usize::from(ip.payload_len), f.len() - 14 - 40);
    assert!(p.tcp().unwrap().is_syn());
    let u = Frame::ipv6_udp(src, dst).payload(b"abc").build();
    assert_eq!(parse(&u).unwrap().udp().unwrap().payload, b"abc");
    let i = Frame::icmpv6(src, dst, 128, 0).payload(b"ping").build();
    let p = parse(&i).unwrap();
    assert!(matches!(p.l4(), Some(L4::Icmpv6(m)) if m.ty == 128));
    let mut bad = i.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(parse(&bad).unwrap_err().contains("ICMP checksum"));
}

#[test]
fn parses_arp() {
    let req = Frame::arp(CLIENT, Ipv4Addr::new(198, 51, 100, 2)).build();
    let p = parse(&req).unwrap();
    assert_eq!(p.dst_mac, BROADCAST_MAC);
    let a = p.arp().unwrap();
    assert_eq!(
        (a.op, a.sender_ip, a.sender_mac),
        (ARP_REQUEST, CLIENT, DOC_SRC_MAC)
    );
    assert_eq!(a.target_mac, [0; 6]);
    let reply = Frame::arp(Ipv4Addr::new(198, 51, 100, 2), CLIENT)
        .arp_reply([2, 0, 0, 0, 0, 9])
        .build();
    let p = parse(&reply).unwrap();
    assert_eq!(p.dst_mac, [2, 0, 0, 0, 0, 9]);
    assert_eq!(p.arp().unwrap().op, ARP_REPLY);
    assert_eq!(p.arp().unwrap().target_mac, [2, 0, 0, 0, 0, 9]);
    // Padded to the Ethernet minimum: accepted.
    let mut padded = req.clone();
    padded.resize(60, 0);
    assert!(parse(&padded).is_ok());
}

#[test]
fn icmp_port_unreachable_quotes_original() {
    let original = Frame::udp(CLIENT, VIP)
        .ports(40001, 53)
        .payload(b"query")
        .build();
    let quote = quote_ipv4(&original, 8).unwrap();
    assert_eq!(quote.len(), 28);
    let reply = Frame::icmp(VIP, CLIENT, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
        .payload(&quote)
        .build();
    let p = parse(&reply).unwrap();
    let icmp = p.icmp().unwrap();
    assert_eq!((icmp.ty, icmp.code), (3, 3));
    assert_eq!(icmp.payload, quote);
    let q = icmp.quoted_ipv4().unwrap();
    assert_eq!((q.src, q.dst, q.protocol), (CLIENT, VIP, IPPROTO_UDP));
    assert_eq!((q.sport, q.dport, q.seq), (Some(40001), Some(53), None));
    assert!(q.header_checksum_ok);
    assert_eq!(usize::from(q.total_len), original.len() - 14);

    let syn = Frame::tcp(CLIENT, VIP).syn().seq(99).build();
    let frag_needed = Frame::icmp(VIP, CLIENT, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED)
        .icmp_rest([0, 0, 0x05, 0xdc])
        .payload(&quote_ipv4(&syn, 8).unwrap())
        .build();
    let p = parse(&frag_needed).unwrap();
    assert_eq!(p.icmp().unwrap().next_hop_mtu(), 1500);
    assert_eq!(p.icmp().unwrap().quoted_ipv4().unwrap().seq, Some(99));
    assert!(parse_quoted_ipv4(&quote[..27]).is_err());
}

#[test]
fn fragments_are_not_checked_beyond_ip() {
    let f = Frame::ip(CLIENT, VIP, IPPROTO_TCP)
        .frag(1480, false)
        .ident(7)
        .payload(&[0xaa; 16])
        .build();
    let p = parse(&f).unwrap();
    let ip = p.ipv4().unwrap();
    assert_eq!((ip.frag_offset, ip.mf, ip.df), (1480, false, false));
    assert_eq!(ip.l4, L4::Fragment(vec![0xaa; 16]));
    let first = Frame::tcp(CLIENT, VIP).frag(0, true).build();
    assert!(parse(&first).unwrap().ipv4().unwrap().mf);
}

#[test]
fn rejects_malformed_frames() {
    let good = Frame::tcp(CLIENT, VIP).syn().payload(b"data").build();
    assert!(parse(&good).is_ok());

    let mut f = good.clone();
    mutate::set_ip_checksum(&mut f, 0x1234);
    let e = parse(&f).unwrap_err();
    assert!(e.contains("IPv4 header checksum"), "{e}");

    let mut f = good.clone();
    mutate::corrupt_l4_checksum(&mut f);
    assert!(parse(&f).unwrap_err().contains("TCP checksum"));

    let mut f = good.clone();
    mutate::set_ihl(&mut f, 4);
    mutate::fix_ip_checksum(&mut f);
    assert!(parse(&f).unwrap_err().contains("IHL"));

    let mut f = good.clone();
    mutate::set_ihl(&mut f, 15);
    assert!(parse(&f).is_err());

    let mut f = good.clone();
    mutate::set_total_len(&mut f, 1000);
    mutate::fix_ip_checksum(&mut f);
    assert!(parse(&f).unwrap_err().contains("total length"));

    let mut f = good.clone();
    mutate::set_total_len(&mut f, 40);
    mutate::fix_ip_checksum(&mut f);
    assert!(parse(&f).unwrap_err().contains("trailing"));

    let mut f = good.clone();
    mutate::set_version(&mut f, 6);
    assert!(parse(&f).unwrap_err().contains("version"));

    let mut f = good.clone();
    mutate::truncate(&mut f, 30);
    assert!(parse(&f).is_err());
    assert!(parse(&good[..10]).is_err());

    let mut f = good.clone();
    f.push(0);
    assert!(parse(&f).unwrap_err().contains("trailing"));

    // Bad TCP data offset (4 words), checksum otherwise right.
    let mut f = Frame::tcp(CLIENT, VIP).build();
    f[14 + 20 + 12] = 4 << 4;
    assert!(parse(&f).unwrap_err().contains("data offset"));

    // UDP length disagreeing with the IP length.
    let mut f = Frame::udp(CLIENT, VIP).payload(b"abcd").build();
    f[14 + 20 + 5] = 11;
    assert!(parse(&f).unwrap_err().contains("UDP length"));
    let mut f = Frame::udp(CLIENT, VIP).payload(b"abcd").build();
    mutate::corrupt_l4_checksum(&mut f);
    assert!(parse(&f).unwrap_err().contains("UDP checksum"));
    // UDP checksum 0 (none) is legal over IPv4.
    let mut f = Frame::udp(CLIENT, VIP).payload(b"abcd").build();
    f[14 + 20 + 6] = 0;
    f[14 + 20 + 7] = 0;
    assert_eq!(parse(&f).unwrap().udp().unwrap().checksum, 0);

    let mut f = Frame::icmp(VIP, CLIENT, ICMP_ECHO_REPLY, 0)
        .icmp_rest([0, 1, 0, 2])
        .build();
    assert_eq!(parse(&f).unwrap().icmp().unwrap().rest, [0, 1, 0, 2]);
    mutate::corrupt_l4_checksum(&mut f);
    assert!(parse(&f).unwrap_err().contains("ICMP checksum"));
}

/// The frames the program builds, as the checker sees them: a port unreachable quoting a
/// SYN, and a RST|ACK answering it.
fn built_replies() -> (Vec<u8>, Vec<u8>) {
    let syn = Frame::tcp(CLIENT, VIP)
        .ports(40000, 80)
        .syn()
        .seq(7)
        .build();
    let unreach = Frame::icmp(VIP, CLIENT, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
        .payload(&quote_ipv4(&syn, 8).unwrap())
        .build();
    let rst = Frame::tcp(VIP, CLIENT)
        .ports(80, 40000)
        .rst()
        .ack()
        .ack_seq(8)
        .build();
    assert!(parse(&unreach).is_ok() && parse(&rst).is_ok());
    (unreach, rst)
}

/// A checksum that is off fails the check, whichever header it is in and whichever byte
/// changed: the stored field, or a covered byte with the field left as it was.
#[test]
fn rejects_a_wrong_checksum() {
    let (unreach, rst) = built_replies();
    let l4 = 14 + 20;
    for (frame, at, what) in [
        (&unreach, 14 + 11, "IPv4 header checksum"), // the field itself, off by one
        (&unreach, 14 + 8, "IPv4 header checksum"),  // the TTL under it
        (&unreach, l4 + 3, "ICMP checksum"),         // the field
        (&unreach, l4 + 8 + 12, "ICMP checksum"),    // a quoted address byte
        (&rst, l4 + 17, "TCP checksum"),             // the field
        (&rst, l4 + 4, "TCP checksum"),              // the sequence number
        (&rst, 14 + 12, "TCP checksum"),             // the source (pseudo-header)
    ] {
        let mut f = frame.clone();
        f[at] ^= 0x01;
        if at == 14 + 12 {
            // Keep the IPv4 header right: only the TCP pseudo-header is off.
            mutate::fix_ip_checksum(&mut f);
        }
        let e = parse(&f).expect_err(what);
        assert!(e.contains(what), "byte {at}: {e}");
    }
    // 0x0000 and 0xffff are the same one's complement number, nothing else is.
    let mut f = rst.clone();
    let stored = u16::from_be_bytes([f[l4 + 16], f[l4 + 17]]);
    f[l4 + 16..l4 + 18].copy_from_slice(&(!stored).to_be_bytes());
    assert!(parse(&f).unwrap_err().contains("TCP checksum"));
    assert!(same_sum(0, 0xffff) && same_sum(0xffff, 0) && same_sum(0x1234, 0x1234));
    assert!(!same_sum(0x1234, !0x1234) && !same_sum(0, 1) && !same_sum(0xfffe, 0xffff));
}

/// A length that disagrees with the bytes fails the check: the IPv4 total length (one
/// byte short or long of the frame), the frame cut or extended by one byte, the UDP
/// length, the IPv6 payload length.
#[test]
fn rejects_a_wrong_length() {
    let (unreach, rst) = built_replies();
    for frame in [&unreach, &rst] {
        let total = u16::from_be_bytes([frame[16], frame[17]]);
        for (len, what) in [(total - 1, "trailing"), (total + 1, "total length")] {
            let mut f = frame.clone();
            mutate::set_total_len(&mut f, len);
            mutate::fix_ip_checksum(&mut f);
            let e = parse(&f).expect_err(what);
            assert!(e.contains(what), "total length {len}: {e}");
        }
        let mut f = frame.clone();
        f.pop();
        assert!(parse(&f).unwrap_err().contains("total length"));
        let mut f = frame.clone();
        f.push(0);
        assert!(parse(&f).unwrap_err().contains("trailing"));
    }
    let mut f = Frame::udp(CLIENT, VIP).payload(b"abcd").build();
    f[14 + 20 + 5] -= 1;
    assert!(parse(&f).unwrap_err().contains("UDP length"));
    let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut f = Frame::ipv6_tcp(v6, v6).syn().build();
    f[14 + 5] += 1;
    assert!(parse(&f).unwrap_err().contains("IPv6 payload length"));
    // Padding up to the Ethernet minimum is not a wrong length.
    let mut f = rst.clone();
    f.resize(60, 0);
    assert!(parse(&f).is_ok());
}

/// The builder and etherparse's own packet builder make the same bytes, so the builder's
/// checksums and layout are right by an independent account too.
#[test]
fn builder_agrees_with_etherparse() {
    let (src_mac, dst_mac) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut theirs = Vec::new();
    etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 0x0102_0304, 64240)
        .syn()
        .ack(9)
        .write(&mut theirs, b"payload")
        .unwrap();
    let ours = Frame::tcp(CLIENT, VIP)
        .src_mac(src_mac)
        .dst_mac(dst_mac)
        .ports(40000, 80)
        .seq(0x0102_0304)
        .syn()
        .ack()
        .ack_seq(9)
        .payload(b"payload")
        .build();
    assert_eq!(ours, theirs);
    let mut theirs = Vec::new();
    etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .udp(5353, 53)
        .write(&mut theirs, b"q")
        .unwrap();
    let ours = Frame::udp(CLIENT, VIP)
        .src_mac(src_mac)
        .dst_mac(dst_mac)
        .ports(5353, 53)
        .payload(b"q")
        .build();
    assert_eq!(ours, theirs);
}

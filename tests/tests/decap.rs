//! The real servers' decapsulator (`lbctl decap`, docs/SEMANTICS.md §20):
//! its program fed the frames IPVS's `ip_vs_tunnel_xmit` sends (IPIP, GUE,
//! GRE, over IPv4 and IPv6, both inner families) through
//! BPF_PROG_TEST_RUN, with the verdict, the whole output frame and the
//! counters checked; then `lbctl decap` itself on a veth in a namespace,
//! with datagrams sent inside hand-built tunnel frames reaching a socket
//! bound on the VIP.

use std::net::IpAddr;

use anyhow::Result;
use lb_common::decap::*;
use lb_tests::decap::*;
use lb_tests::frame::Frame;
use lb_tests::lb::{XDP_DROP, XDP_PASS};
use lb_tests::require_root;
use lb_user::decap::DecapSettings;

const FAMILIES: [(bool, bool); 4] = [(false, false), (true, true), (true, false), (false, true)];

/// (outer v6, inner v6) -> (director, real server, VIP).
fn addrs(outer6: bool, inner6: bool) -> (IpAddr, IpAddr, IpAddr) {
    let (d, r) = if outer6 {
        (ip(DIRECTOR6), ip(RIP6))
    } else {
        (ip(DIRECTOR4), ip(RIP4))
    };
    (d, r, if inner6 { ip(VIP6) } else { ip(VIP4) })
}

fn decap_reason(tun: Tun, outer6: bool) -> u32 {
    match (tun, outer6) {
        (Tun::Ipip, false) => DECAP_REASON_IPIP_V4,
        (Tun::Ipip, true) => DECAP_REASON_IPIP_V6,
        (Tun::Gue(_), false) => DECAP_REASON_GUE_V4,
        (Tun::Gue(_), true) => DECAP_REASON_GUE_V6,
        (Tun::Gre { .. }, false) => DECAP_REASON_GRE_V4,
        (Tun::Gre { .. }, true) => DECAP_REASON_GRE_V6,
    }
}

/// Every family pair through `tun`: the output is the inner frame, byte
/// for byte (the MACs kept, the inner EtherType), passed to the stack.
fn strips_every_family_pair(d: &Decap, tun: Tun) -> Result<()> {
    for (outer6, inner6) in FAMILIES {
        let (director, rip, vip) = addrs(outer6, inner6);
        let inner = inner_udp(vip, 0).build();
        let frame = encapsulate(&inner, director, rip, tun, 0);
        let (r, moved) = d.run_counted(&frame)?;
        let what = format!("{tun:?} outer v6 {outer6} inner v6 {inner6}");
        assert_eq!(r.action, XDP_PASS, "{what}");
        assert_eq!(r.frame, inner, "{what}");
        assert_eq!(moved, only(decap_reason(tun, outer6)), "{what}");
    }
    Ok(())
}

/// The frame passes untouched under `reason`.
fn passes_untouched(d: &Decap, frame: &[u8], reason: u32, what: &str) -> Result<()> {
    let (r, moved) = d.run_counted(frame)?;
    assert_eq!(r.action, XDP_PASS, "{what}");
    assert_eq!(r.frame, frame, "{what}");
    assert_eq!(
        moved,
        only(reason),
        "{what}: counted under {:?}",
        moved
            .iter()
            .position(|m| *m == 1)
            .map(|i| DECAP_REASON_NAMES[i])
    );
    Ok(())
}

macro_rules! root_test {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() -> Result<()> {
            if !require_root(stringify!($name)) {
                return Ok(());
            }
            $body
        }
    };
}

root_test!(ipip_of_every_family_pair_is_stripped, {
    let d = Decap::new(&DecapSettings::default())?;
    strips_every_family_pair(&d, Tun::Ipip)
});

root_test!(gue_of_every_family_pair_is_stripped, {
    let d = Decap::new(&DecapSettings::default())?;
    strips_every_family_pair(&d, Tun::Gue(DEFAULT_GUE_PORT))
});

root_test!(
    gre_of_every_family_pair_is_stripped_with_or_without_checksum,
    {
        let d = Decap::new(&DecapSettings::default())?;
        strips_every_family_pair(&d, Tun::Gre { csum: false })?;
        strips_every_family_pair(&d, Tun::Gre { csum: true })
    }
);

root_test!(gue_is_taken_on_the_configured_port_only, {
    let d = Decap::new(&DecapSettings {
        vips: vec![],
        gue_port: 5555,
    })?;
    strips_every_family_pair(&d, Tun::Gue(5555))?;
    let inner = inner_udp(ip(VIP4), 0).build();
    let other = encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Gue(6080), 0);
    passes_untouched(&d, &other, DECAP_REASON_PASS_NOT_TUNNEL, "GUE to 6080")
});

root_test!(gue_version_1_carries_the_ip_packet_at_once, {
    let d = Decap::new(&DecapSettings::default())?;
    for vip in [ip(VIP4), ip(VIP6)] {
        let inner = inner_udp(vip, 0).build();
        let frame = Frame::udp_ip(ip(DIRECTOR4), ip(RIP4))
            .ports(40001, DEFAULT_GUE_PORT)
            .payload(ip_packet(&inner))
            .build();
        let (r, moved) = d.run_counted(&frame)?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &inner), "{vip}");
        assert_eq!(moved, only(DECAP_REASON_GUE_V4));
    }
    Ok(())
});

root_test!(vip_list_limits_the_inner_destination, {
    let d = Decap::new(&DecapSettings {
        vips: vec![ip(VIP4), ip(VIP6)],
        gue_port: DEFAULT_GUE_PORT,
    })?;
    strips_every_family_pair(&d, Tun::Ipip)?;
    // OTHER4/OTHER6 are local, but not VIPs.
    for (director, rip, other) in [
        (ip(DIRECTOR4), ip(RIP4), ip(OTHER4)),
        (ip(DIRECTOR6), ip(RIP6), ip(OTHER6)),
    ] {
        let frame = encapsulate(&inner_udp(other, 0).build(), director, rip, Tun::Ipip, 0);
        passes_untouched(&d, &frame, DECAP_REASON_PASS_INNER_NOT_LOCAL, "not a --vip")?;
    }
    // Without --vip, any local address (and a local range) is taken.
    let any = Decap::new(&DecapSettings::default())?;
    for dst in [ip(OTHER4), ip(RANGE4), ip(OTHER6)] {
        let (director, rip) = if dst.is_ipv4() {
            (ip(DIRECTOR4), ip(RIP4))
        } else {
            (ip(DIRECTOR6), ip(RIP6))
        };
        let inner = inner_udp(dst, 0).build();
        let r = any.run(&encapsulate(&inner, director, rip, Tun::Ipip, 0))?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &inner), "{dst}");
    }
    Ok(())
});

root_test!(settings_of_another_interface_pass_untouched, {
    let d = Decap::unconfigured()?;
    let inner = inner_udp(ip(VIP4), 0).build();
    let frame = encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Ipip, 0);
    passes_untouched(&d, &frame, DECAP_REASON_PASS_NOT_CONFIGURED, "no settings")
});

root_test!(packets_not_for_this_host_pass_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    for tun in [
        Tun::Ipip,
        Tun::Gue(DEFAULT_GUE_PORT),
        Tun::Gre { csum: false },
    ] {
        // The outer destination is another host's.
        let inner = inner_udp(ip(VIP4), 0).build();
        let f = encapsulate(&inner, ip(DIRECTOR4), ip(ELSEWHERE4), tun, 0);
        passes_untouched(&d, &f, DECAP_REASON_PASS_NOT_LOCAL, "outer v4")?;
        let inner6 = inner_udp(ip(VIP6), 0).build();
        let f = encapsulate(&inner6, ip(DIRECTOR6), ip(ELSEWHERE6), tun, 0);
        passes_untouched(&d, &f, DECAP_REASON_PASS_NOT_LOCAL, "outer v6")?;
        // The inner destination is another host's.
        let inner = inner_udp(ip("203.0.113.99"), 0).build();
        let f = encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), tun, 0);
        passes_untouched(&d, &f, DECAP_REASON_PASS_INNER_NOT_LOCAL, "inner v4")?;
        let inner6 = inner_udp(ip("2001:db8:0:2::99"), 0).build();
        let f = encapsulate(&inner6, ip(DIRECTOR6), ip(RIP6), tun, 0);
        passes_untouched(&d, &f, DECAP_REASON_PASS_INNER_NOT_LOCAL, "inner v6")?;
    }
    Ok(())
});

root_test!(ordinary_traffic_passes_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    let udp = inner_udp(ip(RIP4), 0).build();
    passes_untouched(&d, &udp, DECAP_REASON_PASS_NOT_TUNNEL, "UDP to 9000")?;
    let tcp = Frame::tcp_ip(ip(CLIENT6), ip(RIP6)).syn().build();
    passes_untouched(&d, &tcp, DECAP_REASON_PASS_NOT_TUNNEL, "TCP over IPv6")?;
    let arp = Frame::arp("198.51.100.1".parse()?, "198.51.100.20".parse()?).build();
    passes_untouched(&d, &arp, DECAP_REASON_PASS_NOT_IP, "ARP")
});

root_test!(outer_fragments_pass_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    let inner = inner_udp(ip(VIP4), 0).build();
    let payload = ip_packet(&inner);
    for (offset, more) in [(0, true), (8, false), (8, true)] {
        let f = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 4)
            .df(false)
            .frag(offset, more)
            .payload(payload)
            .build();
        passes_untouched(&d, &f, DECAP_REASON_PASS_FRAGMENT, "IPv4 fragment")?;
    }
    let f = Frame::ip_any(ip(DIRECTOR6), ip(RIP6), 4)
        .ipv6_fragment(0, true)
        .payload(payload)
        .build();
    passes_untouched(&d, &f, DECAP_REASON_PASS_FRAGMENT, "IPv6 fragment")?;
    let f = Frame::ip_any(ip(DIRECTOR6), ip(RIP6), 4)
        .ipv6_ext(60, 0)
        .payload(payload)
        .build();
    passes_untouched(
        &d,
        &f,
        DECAP_REASON_PASS_EXT_HEADERS,
        "IPv6 destination options",
    )
});

root_test!(bad_outer_headers_pass_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    let inner = inner_udp(ip(VIP4), 0).build();
    let good = encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Ipip, 0);
    // A wrong IPv4 header checksum: ip_rcv drops it, so do not take it.
    let mut f = good.clone();
    f[24] ^= 0x01;
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_OUTER, "header checksum")?;
    // Truncated: the outer total length says more than the frame holds.
    let f = &good[..good.len() - 1];
    passes_untouched(&d, f, DECAP_REASON_PASS_BAD_OUTER, "truncated")?;
    let f = &good[..14 + 19];
    passes_untouched(&d, f, DECAP_REASON_PASS_BAD_OUTER, "short header")?;
    // IHL below 5.
    let mut f = good.clone();
    f[14] = 0x44;
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_OUTER, "ihl 4")?;
    // Another version under the IPv4 EtherType.
    let mut f = good.clone();
    f[14] = 0x65;
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_OUTER, "version 6")?;
    // GUE with a UDP length longer than the packet.
    let gue = encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Gue(6080), 0);
    let mut f = gue.clone();
    f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&2000u16.to_be_bytes());
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_OUTER, "UDP length")?;
    // IPv4 options: left to the kernel (the director sends none).
    for opts in [
        &[1u8, 1, 1, 1][..],
        &[0x83, 7, 4, 0xc6, 0x33, 0x64, 0x01, 0],
    ] {
        let f = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 4)
            .ip_options(opts)
            .payload(ip_packet(&inner))
            .build();
        passes_untouched(&d, &f, DECAP_REASON_PASS_IP_OPTIONS, "options")?;
    }
    Ok(())
});

root_test!(families_never_match_each_other, {
    let d = Decap::new(&DecapSettings::default())?;
    // An IPv6 outer destination ::ffff:RIP4 is not RIP4.
    let mapped_rip = ip(&format!("::ffff:{RIP4}"));
    let inner = inner_udp(ip(VIP4), 0).build();
    let f = encapsulate(&inner, ip(DIRECTOR6), mapped_rip, Tun::Ipip, 0);
    passes_untouched(&d, &f, DECAP_REASON_PASS_NOT_LOCAL, "outer ::ffff:RIP4")?;
    // An inner IPv6 destination ::ffff:VIP4 is not VIP4, local or --vip.
    let mapped_vip = ip(&format!("::ffff:{VIP4}"));
    let inner6 = inner_udp(mapped_vip, 0).build();
    let f = encapsulate(&inner6, ip(DIRECTOR6), ip(RIP6), Tun::Ipip, 0);
    passes_untouched(
        &d,
        &f,
        DECAP_REASON_PASS_INNER_NOT_LOCAL,
        "inner ::ffff:VIP4",
    )?;
    let vips = Decap::new(&DecapSettings {
        vips: vec![ip(VIP4)],
        gue_port: DEFAULT_GUE_PORT,
    })?;
    passes_untouched(&vips, &f, DECAP_REASON_PASS_INNER_NOT_LOCAL, "--vip VIP4")?;
    // An IPv6 local route over everything (`ip -6 route add local ::/0
    // dev lo`, AnyIP) makes no IPv4 address local.
    let mut anyip = Decap::new(&DecapSettings::default())?;
    let mut local = local_prefixes();
    local.push((ip("::"), 0));
    anyip.pins.set_local(&local)?;
    let inner = inner_udp(ip(VIP4), 0).build();
    let f = encapsulate(&inner, ip(DIRECTOR4), ip(ELSEWHERE4), Tun::Ipip, 0);
    passes_untouched(&anyip, &f, DECAP_REASON_PASS_NOT_LOCAL, "outer v4, ::/0")?;
    let inner = inner_udp(ip("203.0.113.99"), 0).build();
    let f = encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Ipip, 0);
    passes_untouched(
        &anyip,
        &f,
        DECAP_REASON_PASS_INNER_NOT_LOCAL,
        "inner v4, ::/0",
    )?;
    // ... while every IPv6 address is.
    let inner6 = inner_udp(ip("2001:db8:0:2::99"), 0).build();
    let f = encapsulate(&inner6, ip(DIRECTOR6), ip(ELSEWHERE6), Tun::Ipip, 0);
    let r = anyip.run(&f)?;
    assert_eq!((r.action, &r.frame), (XDP_PASS, &inner6), "AnyIP v6");
    Ok(())
});

root_test!(martian_outer_packets_pass_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    let inner4 = inner_udp(ip(VIP4), 0).build();
    let inner6 = inner_udp(ip(VIP6), 0).build();
    // Loopback destinations are local, but never from a real interface.
    let f = encapsulate(&inner4, ip(DIRECTOR4), ip("127.0.0.1"), Tun::Ipip, 0);
    passes_untouched(&d, &f, DECAP_REASON_PASS_MARTIAN, "to 127.0.0.1")?;
    let f = encapsulate(&inner4, ip(DIRECTOR4), ip("127.1.2.3"), Tun::Ipip, 0);
    passes_untouched(&d, &f, DECAP_REASON_PASS_MARTIAN, "to 127.1.2.3")?;
    let f = encapsulate(&inner6, ip(DIRECTOR6), ip("::1"), Tun::Ipip, 0);
    passes_untouched(&d, &f, DECAP_REASON_PASS_MARTIAN, "to ::1")?;
    // Martian sources.
    for src in [
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "224.0.0.1",
        "239.1.2.3",
        "255.255.255.255",
    ] {
        let f = encapsulate(&inner4, ip(src), ip(RIP4), Tun::Ipip, 0);
        passes_untouched(&d, &f, DECAP_REASON_PASS_MARTIAN, src)?;
    }
    for src in ["::1", "::", "ff02::1", "ff0e::10"] {
        let f = encapsulate(&inner6, ip(src), ip(RIP6), Tun::Ipip, 0);
        passes_untouched(&d, &f, DECAP_REASON_PASS_MARTIAN, src)?;
    }
    // An inner loopback destination is not taken either.
    for (dst, director, rip) in [("127.0.0.1", DIRECTOR4, RIP4), ("::1", DIRECTOR6, RIP6)] {
        let inner = inner_udp(ip(dst), 0).build();
        let f = encapsulate(&inner, ip(director), ip(rip), Tun::Ipip, 0);
        passes_untouched(&d, &f, DECAP_REASON_PASS_INNER_NOT_LOCAL, dst)?;
    }
    Ok(())
});

/// `frame` with its outer IPv4 total length or IPv6 payload length
/// grown by `more` (the IPv4 header checksum recomputed).
fn outer_len_plus(frame: &[u8], more: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    let at = if f[14] >> 4 == 4 { 14 + 2 } else { 14 + 4 };
    let n = u16::from_be_bytes([f[at], f[at + 1]]) + more;
    f[at..at + 2].copy_from_slice(&n.to_be_bytes());
    if f[14] >> 4 == 4 {
        f[24..26].copy_from_slice(&[0, 0]);
        let c = lb_tests::frame::checksum(&[&f[14..34]]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }
    f
}

root_test!(the_inner_packet_is_bounded_by_the_outer_datagram, {
    let d = Decap::new(&DecapSettings::default())?;
    for (outer6, inner6) in FAMILIES {
        let (director, rip, vip) = addrs(outer6, inner6);
        let inner = inner_udp(vip, 0).build();
        let what = format!("outer v6 {outer6} inner v6 {inner6}");
        for tun in [
            Tun::Ipip,
            Tun::Gue(DEFAULT_GUE_PORT),
            Tun::Gre { csum: false },
        ] {
            let good = encapsulate(&inner, director, rip, tun, 0);
            // Ethernet padding after the outer packet: cut off.
            let mut padded = good.clone();
            padded.extend_from_slice(&[0; 9]);
            let (r, moved) = d.run_counted(&padded)?;
            assert_eq!(
                (r.action, &r.frame),
                (XDP_PASS, &inner),
                "{what} {tun:?} padded"
            );
            assert_eq!(moved, only(decap_reason(tun, outer6)), "{what}");
            // Bytes after the inner packet inside the outer one: cut off
            // (ip_rcv trims the decapsulated packet to its own length).
            let mut longer = outer_len_plus(&good, 7);
            longer.extend_from_slice(b"trailer");
            if let Tun::Gue(_) = tun {
                // The UDP length covers them too.
                let at = 14 + if outer6 { 40 } else { 20 } + 4;
                let n = u16::from_be_bytes([longer[at], longer[at + 1]]) + 7;
                longer[at..at + 2].copy_from_slice(&n.to_be_bytes());
            }
            let (r, moved) = d.run_counted(&longer)?;
            assert_eq!(
                (r.action, &r.frame),
                (XDP_PASS, &inner),
                "{what} {tun:?} trailer"
            );
            assert_eq!(moved, only(decap_reason(tun, outer6)), "{what}");
            // The inner packet says it is longer than what the outer one
            // carries: left to the kernel.
            let inner_ip = ip_packet(&inner);
            let cut = &inner_ip[..inner_ip.len() - 1];
            let f = match tun {
                Tun::Ipip => Frame::ip_any(director, rip, if inner6 { 41 } else { 4 })
                    .payload(cut)
                    .build(),
                Tun::Gue(port) => {
                    let mut p = vec![0, if inner6 { 41 } else { 4 }, 0, 0];
                    p.extend_from_slice(cut);
                    Frame::udp_ip(director, rip)
                        .ports(40001, port)
                        .payload(&p)
                        .build()
                }
                Tun::Gre { csum } => {
                    let mut p = gre_header(cut, inner6, csum);
                    p.extend_from_slice(cut);
                    Frame::ip_any(director, rip, 47).payload(&p).build()
                }
            };
            passes_untouched(
                &d,
                &f,
                DECAP_REASON_PASS_BAD_INNER,
                &format!("{what} {tun:?} cut"),
            )?;
        }
        // GUE: a UDP length shorter than the outer payload bounds the inner
        // packet; one byte short of it is too short.
        let good = encapsulate(&inner, director, rip, Tun::Gue(DEFAULT_GUE_PORT), 0);
        let at = 14 + if outer6 { 40 } else { 20 } + 4;
        let ulen = u16::from_be_bytes([good[at], good[at + 1]]);
        let mut f = outer_len_plus(&good, 5);
        f.extend_from_slice(&[0xee; 5]);
        let (r, _) = d.run_counted(&f)?;
        assert_eq!(
            (r.action, &r.frame),
            (XDP_PASS, &inner),
            "{what} UDP length"
        );
        f[at..at + 2].copy_from_slice(&(ulen - 1).to_be_bytes());
        passes_untouched(
            &d,
            &f,
            DECAP_REASON_PASS_BAD_INNER,
            &format!("{what} UDP short"),
        )?;
    }
    Ok(())
});

root_test!(bad_inner_headers_pass_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    let inner4 = inner_udp(ip(VIP4), 0).build();
    let inner6 = inner_udp(ip(VIP6), 0).build();
    // Protocol 4 (IPv4 inside) carrying an IPv6 packet, and 41 an IPv4 one.
    let f = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 4)
        .payload(ip_packet(&inner6))
        .build();
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_INNER, "4 with IPv6")?;
    let f = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 41)
        .payload(ip_packet(&inner4))
        .build();
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_INNER, "41 with IPv4")?;
    // An inner header cut short.
    let f = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 4)
        .payload(&ip_packet(&inner4)[..19])
        .build();
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_INNER, "short inner")
});

root_test!(gre_with_key_sequence_routing_or_version_passes_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    let inner = inner_udp(ip(VIP4), 0).build();
    for (flags, proto, what) in [
        (0x2000u16, 0x0800u16, "key"),
        (0x1000, 0x0800, "sequence"),
        (0x4000, 0x0800, "routing"),
        (0x0001, 0x0800, "version 1"),
        (0xa000, 0x0800, "checksum and key"),
        (0x0000, 0x6558, "Ethernet inside"),
    ] {
        let mut p = flags.to_be_bytes().to_vec();
        p.extend_from_slice(&proto.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(ip_packet(&inner));
        let f = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 47)
            .payload(&p)
            .build();
        passes_untouched(&d, &f, DECAP_REASON_PASS_GRE_UNSUPPORTED, what)?;
    }
    Ok(())
});

root_test!(gue_control_flags_and_other_versions_pass_untouched, {
    let d = Decap::new(&DecapSettings::default())?;
    let inner = inner_udp(ip(VIP4), 0).build();
    for (hdr, what) in [
        ([0x20u8, 4, 0, 0], "control message"),
        (
            [0x00, 4, 0x00, 0x01],
            "private flag (remote checksum offload)",
        ),
        ([0x00, 4, 0x80, 0x00], "another flag"),
        ([0x80, 4, 0, 0], "version 2"),
        ([0x00, 17, 0, 0], "UDP inside"),
    ] {
        let mut p = hdr.to_vec();
        p.extend_from_slice(ip_packet(&inner));
        let f = Frame::udp(DIRECTOR4.parse()?, RIP4.parse()?)
            .ports(40001, DEFAULT_GUE_PORT)
            .payload(&p)
            .build();
        passes_untouched(&d, &f, DECAP_REASON_PASS_GUE_UNSUPPORTED, what)?;
    }
    Ok(())
});

root_test!(ecn_is_decapsulated_as_the_kernel_does, {
    let d = Decap::new(&DecapSettings::default())?;
    for (outer6, inner6) in FAMILIES {
        let (director, rip, vip) = addrs(outer6, inner6);
        // DSCP AF41 (0x88) plus the ECN field.
        for (outer_ecn, inner_ecn, out_ecn) in [
            (3, 1, Some(3)),
            (3, 2, Some(3)),
            (3, 3, Some(3)),
            (3, 0, None),
            (2, 0, Some(0)),
            (1, 2, Some(2)),
            (0, 1, Some(1)),
        ] {
            let inner = inner_udp(vip, 0x88 | inner_ecn).build();
            let frame = encapsulate(&inner, director, rip, Tun::Ipip, outer_ecn);
            let (r, moved) = d.run_counted(&frame)?;
            let what = format!("outer v6 {outer6} inner v6 {inner6} ECN {outer_ecn}/{inner_ecn}");
            match out_ecn {
                None => {
                    assert_eq!(r.action, XDP_DROP, "{what}");
                    assert_eq!(moved, only(DECAP_REASON_DROP_ECN), "{what}");
                }
                Some(e) => {
                    // The inner frame as if sent with that ECN field (IPv4:
                    // its header checksum recomputed by the builder).
                    let want = inner_udp(vip, 0x88 | e).build();
                    assert_eq!((r.action, &r.frame), (XDP_PASS, &want), "{what}");
                }
            }
        }
    }
    Ok(())
});

root_test!(a_vlan_tag_is_kept, {
    let d = Decap::new(&DecapSettings::default())?;
    let inner = inner_udp(ip(VIP6), 0).vlan(42).build();
    let untagged = inner_udp(ip(VIP6), 0).build();
    let outer = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 41)
        .vlan(42)
        .payload(ip_packet(&untagged))
        .build();
    let (r, moved) = d.run_counted(&outer)?;
    assert_eq!((r.action, &r.frame), (XDP_PASS, &inner));
    assert_eq!(moved, only(DECAP_REASON_IPIP_V4));
    Ok(())
});

/// A real server's namespace (`rs`: VIPs on lo, its address on `dcr0`)
/// and the director's side of its link (`dir`, `dcd0`), no program yet.
struct Link {
    rs: lb_tests::Netns,
    dir: lb_tests::Netns,
    pins: lb_tests::BpfPinDir,
}

impl Link {
    fn new() -> Result<Link> {
        let rs = lb_tests::Netns::new("dcrs")?;
        let dir = lb_tests::Netns::new("dcdir")?;
        rs.ip_batch(&format!(
            "link add dcr0 type veth peer name dcd0 netns {dirns}\n\
             link set lo up\n\
             addr add {VIP4}/32 dev lo\n\
             addr add {VIP6}/128 dev lo\n\
             addr add {RIP4}/24 dev dcr0\n\
             addr add {RIP6}/64 dev dcr0 nodad\n\
             link set dcr0 up\n\
             route add default via {DIRECTOR4}\n\
             route add default via {DIRECTOR6}\n",
            dirns = dir.name()
        ))?;
        dir.ip_batch(&format!(
            "addr add {DIRECTOR4}/24 dev dcd0\n\
             addr add {DIRECTOR6}/64 dev dcd0 nodad\n\
             link set dcd0 up\n"
        ))?;
        Ok(Link {
            rs,
            dir,
            pins: lb_tests::BpfPinDir::new()?,
        })
    }

    /// `lbctl ARGS` in the real server's namespace.
    fn lbctl(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut cmd = self.rs.nsenter_cmd(lb_tests::lb::lbctl_path()?);
        cmd.args(args).env("LB_PIN_PATH", self.pins.path());
        Ok(cmd.output()?)
    }

    fn lbctl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.lbctl(args)?;
        anyhow::ensure!(
            out.status.success(),
            "lbctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }
}

/// The packets counted under `name` in `lbctl decap status`.
fn status_count(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// `lbctl decap attach dcr0 --mode MODE`, then datagrams in tunnel frames
/// of every kind and family pair from the director's side reach sockets
/// bound on the VIPs; a VIP added later is taken after the next attach.
fn tunnelled_datagrams_reach_the_vip(mode: &str) -> Result<()> {
    let link = Link::new()?;
    link.lbctl_ok(&["decap", "attach", "dcr0", "--mode", mode])?;
    let status = link.lbctl_ok(&["decap", "status"])?;
    assert!(
        status.contains(&format!(
            "dcr0: mode {mode} gue-port 6080 inner destination any local address"
        )),
        "{status}"
    );
    // Sockets bound on the VIPs, in the real server's namespace.
    let (s4, s6) = link.rs.run_in(|| -> Result<_> {
        let s4 = std::net::UdpSocket::bind((ip(VIP4), 9000))?;
        let s6 = std::net::UdpSocket::bind((ip(VIP6), 9000))?;
        Ok((s4, s6))
    })??;
    for s in [&s4, &s6] {
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    }
    let rs_mac = link.rs.mac("dcr0")?;
    let dir_mac = link.dir.mac("dcd0")?;
    let sender = link.dir.run_in(|| -> Result<FrameSender> {
        let ifindex = lb_user::neigh::ifindex("dcd0").expect("dcd0");
        FrameSender::new(ifindex)
    })??;
    let cases = [
        (Tun::Ipip, false, false),
        (Tun::Gue(DEFAULT_GUE_PORT), false, false),
        (Tun::Gre { csum: true }, false, false),
        (Tun::Gue(DEFAULT_GUE_PORT), true, true),
        (Tun::Ipip, true, false),
        (Tun::Gre { csum: false }, false, true),
    ];
    for (n, (tun, outer6, inner6)) in cases.into_iter().enumerate() {
        let (director, rip, vip) = addrs(outer6, inner6);
        let payload = format!("datagram {n} through {tun:?}");
        let client = if inner6 { ip(CLIENT6) } else { ip(CLIENT4) };
        let inner = Frame::udp_ip(client, vip)
            .ports(33000 + n as u16, 9000)
            .payload(payload.as_bytes())
            .build();
        let frame = encapsulate(&inner, director, rip, tun, 0);
        sender.send(&with_macs(&frame, rs_mac, dir_mac))?;
        let sock = if inner6 { &s6 } else { &s4 };
        let mut buf = [0u8; 256];
        let (len, from) = sock
            .recv_from(&mut buf)
            .map_err(|e| anyhow::anyhow!("{tun:?} outer v6 {outer6} inner v6 {inner6}: {e}"))?;
        assert_eq!(&buf[..len], payload.as_bytes());
        assert_eq!(from, std::net::SocketAddr::new(client, 33000 + n as u16));
    }
    let status = link.lbctl_ok(&["decap", "status"])?;
    for (name, want) in [
        ("decap_ipip_v4", 1),
        ("decap_ipip_v6", 1),
        ("decap_gue_v4", 1),
        ("decap_gue_v6", 1),
        ("decap_gre_v4", 2),
    ] {
        assert_eq!(status_count(&status, name), want, "{name} in\n{status}");
    }
    // A VIP added after the attach is not known until the next attach,
    // which reads the host's addresses again.
    const LATE: &str = "203.0.113.12";
    link.rs
        .ip(&["addr", "add", &format!("{LATE}/32"), "dev", "lo"])?;
    let late = link
        .rs
        .run_in(|| std::net::UdpSocket::bind((ip(LATE), 9000)))??;
    late.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let inner = Frame::udp_ip(ip(CLIENT4), ip(LATE))
        .ports(34000, 9000)
        .payload(b"late")
        .build();
    let frame = with_macs(
        &encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Ipip, 0),
        rs_mac,
        dir_mac,
    );
    sender.send(&frame)?;
    // The frame is handled by the veth's NAPI poll, after the send.
    lb_tests::lb::wait_for(
        "the late VIP's frame counted as pass_inner_not_local",
        std::time::Duration::from_secs(5),
        || {
            let status = link.lbctl_ok(&["decap", "status"])?;
            Ok((status_count(&status, "pass_inner_not_local") == 1).then_some(()))
        },
    )?;
    link.lbctl_ok(&["decap", "attach", "dcr0", "--mode", mode])?;
    sender.send(&frame)?;
    let mut buf = [0u8; 64];
    let (len, _) = late.recv_from(&mut buf)?;
    assert_eq!(&buf[..len], b"late");

    link.lbctl_ok(&["decap", "detach", "dcr0"])?;
    let status = link.lbctl_ok(&["decap", "status"])?;
    assert!(
        status.starts_with("The decapsulator is not attached"),
        "{status}"
    );
    Ok(())
}

root_test!(
    lbctl_decap_attach_delivers_tunnelled_datagrams_to_the_vip,
    { tunnelled_datagrams_reach_the_vip("native") }
);

root_test!(lbctl_decap_attach_generic_delivers_them_too, {
    tunnelled_datagrams_reach_the_vip("generic")
});

root_test!(lbctl_decap_refuses_bad_input_and_changes_nothing, {
    let link = Link::new()?;
    link.lbctl_ok(&[
        "decap",
        "attach",
        "dcr0",
        "--vip",
        VIP4,
        "--gue-port",
        "5555",
    ])?;
    // The settings, without the counters (the link's own traffic, IPv6
    // multicast listener reports, moves them).
    let settings = |status: String| -> String {
        status
            .split("Outcome")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let before = settings(link.lbctl_ok(&["decap", "status"])?);
    assert!(
        before.contains(&format!(
            "dcr0: mode native gue-port 5555 inner destination vip {VIP4}\n"
        )),
        "{before}"
    );
    for (args, message) in [
        (
            &["decap", "attach", "nosuch0"][..],
            "interface nosuch0 not found",
        ),
        (
            &["decap", "attach", "dcr0", "--vip", "203.0.113.300"],
            "not an IPv4 or IPv6 address",
        ),
        (
            &["decap", "attach", "dcr0", "--vip", "::ffff:203.0.113.10"],
            "not a unicast address",
        ),
        (
            &["decap", "attach", "dcr0", "--gue-port", "0"],
            "a port is 1 to 65535",
        ),
        (
            &["decap", "attach", "dcr0", "--gue-port", "65536"],
            "a port is 1 to 65535",
        ),
        (
            &["decap", "detach", "lo"],
            "the decapsulator is not attached to lo",
        ),
        (
            &["decap", "detach", "nosuch0"],
            "the decapsulator is not attached to nosuch0",
        ),
        (&["decap", "frobnicate"], "unrecognized subcommand"),
        // The link keeps the mode it was made with: another is refused.
        (
            &["decap", "attach", "dcr0", "--mode", "generic"],
            "the decapsulator is attached to dcr0 in native mode: detach it first",
        ),
    ] {
        let out = link.lbctl(args)?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(
            settings(link.lbctl_ok(&["decap", "status"])?),
            before,
            "{args:?} changed something"
        );
    }
    // Missing capabilities are named before anything is touched: none as
    // nobody; CAP_PERFMON (loading the program) as root bounded to
    // CAP_BPF and CAP_NET_ADMIN.
    let lbctl = lb_tests::lb::lbctl_path()?;
    for (setpriv, missing) in [
        (
            vec!["--reuid=65534", "--regid=65534", "--clear-groups"],
            "CAP_BPF",
        ),
        (vec!["--bounding-set=-all,+bpf,+net_admin"], "CAP_PERFMON"),
    ] {
        let out = link
            .rs
            .nsenter_cmd("setpriv")
            .args(&setpriv)
            .arg("--")
            .arg(&lbctl)
            .args(["decap", "attach", "dcr0"])
            .env("LB_PIN_PATH", link.pins.path())
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{setpriv:?} succeeded");
        assert!(err.contains(missing), "{setpriv:?}: {err}");
        assert_eq!(
            settings(link.lbctl_ok(&["decap", "status"])?),
            before,
            "{setpriv:?} changed something"
        );
    }
    // The folder is this namespace's: from another one it is refused.
    for args in [&["decap", "status"][..], &["decap", "attach", "dcd0"]] {
        let out = link
            .dir
            .nsenter_cmd(&lbctl)
            .args(args)
            .env("LB_PIN_PATH", link.pins.path())
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} from another namespace");
        assert!(
            err.contains("belong to another network namespace"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(settings(link.lbctl_ok(&["decap", "status"])?), before);
    // Attaching again replaces the settings (and re-reads the addresses).
    link.lbctl_ok(&["decap", "attach", "dcr0"])?;
    let after = link.lbctl_ok(&["decap", "status"])?;
    assert!(
        after.contains("dcr0: mode native gue-port 6080 inner destination any local address"),
        "{after}"
    );
    // A VIP that is not on the host is taken, with a warning.
    let out = link.lbctl(&["decap", "attach", "dcr0", "--vip", "203.0.113.77"])?;
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("203.0.113.77 is not an address of this host"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = link.lbctl_ok(&["decap", "attach", "--help"])?;
    assert!(
        help.contains("--gue-port") && help.contains("--vip"),
        "{help}"
    );
    Ok(())
});

root_test!(each_interface_has_its_own_settings, {
    lb_tests::lb::in_lab(|| -> Result<()> {
        // lo: the defaults; lab0: GUE on 5555 and one VIP.
        let mut d = Decap::new(&DecapSettings::default())?;
        let lab0 = lb_user::neigh::ifindex("lab0").expect("lab0");
        d.pins.set_iface(
            lab0,
            &DecapSettings {
                vips: vec![ip(VIP4)],
                gue_port: 5555,
            },
        )?;
        let to = |dst: &str, port: u16| {
            let inner = inner_udp(ip(dst), 0).build();
            (
                encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Gue(port), 0),
                inner,
            )
        };
        let (vip_5555, inner) = to(VIP4, 5555);
        let (vip_6080, _) = to(VIP4, 6080);
        let (other_5555, _) = to(OTHER4, 5555);
        assert_eq!(d.run_on(lab0, &vip_5555)?.frame, inner, "lab0, 5555");
        assert_eq!(d.run_on(lab0, &vip_6080)?.frame, vip_6080, "lab0, 6080");
        assert_eq!(
            d.run_on(lab0, &other_5555)?.frame,
            other_5555,
            "lab0, not its VIP"
        );
        assert_eq!(d.run_on(d.ifindex, &vip_5555)?.frame, vip_5555, "lo, 5555");
        assert_eq!(d.run_on(d.ifindex, &vip_6080)?.frame, inner, "lo, 6080");
        // Forgetting lab0 leaves lo's settings.
        d.pins.clear_iface(lab0)?;
        let (r, moved) = d.run_counted(&vip_6080)?;
        assert_eq!(r.frame, inner);
        assert_eq!(moved, only(DECAP_REASON_GUE_V4));
        let before = d.counters()?;
        assert_eq!(d.run_on(lab0, &vip_5555)?.frame, vip_5555);
        let after = d.counters()?;
        let moved: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        assert_eq!(moved, only(DECAP_REASON_PASS_NOT_CONFIGURED));
        Ok(())
    })
});

root_test!(a_failed_attach_changes_nothing, {
    use lb_user::attach::Mode;
    use lb_user::decap::DecapPins;
    let link = Link::new()?;
    // A bridge has no native XDP: attaching there in native mode
    // fails after the settings were checked.
    link.rs.ip(&["link", "add", "dcx0", "type", "bridge"])?;
    link.rs.ip(&["link", "set", "dcx0", "up"])?;
    let dir = link.pins.path().join(DECAP_PIN_SUBDIR);
    link.rs.run_in(|| -> Result<()> {
        let dcx0 = lb_user::neigh::ifindex("dcx0").expect("dcx0");
        // Settings left from before (and a local table other than the
        // namespace's).
        let mut p = DecapPins::open(&dir)?;
        p.set_iface_mode(
            dcx0,
            &DecapSettings {
                vips: vec![ip(VIP6)],
                gue_port: 7777,
            },
            DECAP_MODE_GENERIC,
        )?;
        p.set_local(&local_prefixes())?;
        let before = (p.iface_state(dcx0)?, p.local_keys()?);
        drop(p);
        let new = DecapSettings {
            vips: vec![ip(VIP4)],
            gue_port: 5555,
        };
        let r = lb_user::decap::attach(&dir, "dcx0", Mode::Native, &new);
        assert!(r.is_err(), "native XDP on a bridge attached");
        let p = DecapPins::open(&dir)?;
        let after = (p.iface_state(dcx0)?, p.local_keys()?);
        assert_eq!(before.0, after.0, "the interface's settings changed");
        let key = |k: &aya::maps::lpm_trie::Key<DecapPrefix>| (k.prefix_len(), k.data());
        let mut b: Vec<_> = before.1.iter().map(key).collect();
        let mut a: Vec<_> = after.1.iter().map(key).collect();
        b.sort_by_key(|(l, d)| (*l, d.family, d.addr));
        a.sort_by_key(|(l, d)| (*l, d.family, d.addr));
        assert_eq!(b, a, "the local addresses changed");
        Ok(())
    })??;
    Ok(())
});

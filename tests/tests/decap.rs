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
    // GUE with a UDP length longer than the packet.
    let gue = encapsulate(&inner, ip(DIRECTOR4), ip(RIP4), Tun::Gue(6080), 0);
    let mut f = gue.clone();
    f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&2000u16.to_be_bytes());
    passes_untouched(&d, &f, DECAP_REASON_PASS_BAD_OUTER, "UDP length")?;
    // IPv4 options are skipped: the header is stripped with them.
    let f = Frame::ip(DIRECTOR4.parse()?, RIP4.parse()?, 4)
        .ip_options(&[1, 1, 1, 1])
        .payload(ip_packet(&inner))
        .build();
    let (r, _) = d.run_counted(&f)?;
    assert_eq!((r.action, &r.frame), (XDP_PASS, &inner), "options");
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

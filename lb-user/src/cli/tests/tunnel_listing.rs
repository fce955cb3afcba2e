//! Listings of `-i` and `-m` real servers, byte for byte as ipvsadm 1.31
//! prints them (`-L -n`, `--tun-info`, `-S`), and `-S` read back by `-R`.

use super::*;
use crate::format::{list_services_with, save_with};
use crate::model::{Rates, RealView, TunCsum, TunType, Tunnel};

fn tunnel(kind: TunType, port: u16, csum: TunCsum) -> Fwd {
    Fwd::Tunnel(Tunnel { kind, port, csum })
}

fn rv(addr: &str, port: u16, fwd: Fwd) -> RealView {
    RealView {
        spec: RealSpec {
            fwd,
            ..real(addr, port, 1)
        },
        active_conns: 0,
        inactive_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

fn view(id: ServiceId, reals: Vec<RealView>) -> ServiceView {
    ServiceView {
        spec: spec(id, Sched::Rr, None, ALL),
        stats: Stats::default(),
        rates: Rates::default(),
        reals,
    }
}

/// ipvsadm(8)'s example table, plus a mixed-family tunnel and a -m real with
/// port 0, reals given newest first.
fn table() -> Vec<ServiceView> {
    let mut v6 = view(
        tcp("2001:db8::80", 80),
        vec![
            rv("2001:db8::a0a0", 8080, Fwd::Masq),
            rv("192.168.12.9", 80, Fwd::Tunnel(Tunnel::IPIP)),
        ],
    );
    v6.spec.netmask = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    vec![
        view(
            tcp("207.175.44.110", 80),
            vec![
                rv("192.168.13.2", 0, Fwd::Masq),
                rv("192.168.13.1", 8080, Fwd::Masq),
                rv("192.168.12.1", 80, Fwd::Tunnel(Tunnel::IPIP)),
                rv("192.168.11.1", 80, tunnel(TunType::Gre, 0, TunCsum::Csum)),
                rv(
                    "192.168.10.3",
                    80,
                    tunnel(TunType::Gue, 65535, TunCsum::RemCsum),
                ),
                rv(
                    "192.168.10.2",
                    80,
                    tunnel(TunType::Gue, 6080, TunCsum::Csum),
                ),
                rv(
                    "192.168.10.1",
                    80,
                    tunnel(TunType::Gue, 6080, TunCsum::NoCsum),
                ),
                rv("2001:db8::11", 80, tunnel(TunType::Gre, 0, TunCsum::NoCsum)),
                rv("192.168.9.1", 80, Fwd::Route),
            ],
        ),
        v6,
    ]
}

#[test]
fn forward_column_and_a_masq_reals_own_port() {
    let n = ListFormat {
        numeric: true,
        ..ListFormat::default()
    };
    assert_eq!(
        list_services_with(&table(), &n, 4096, &names()),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  207.175.44.110:80 rr\n\
         \x20 -> 192.168.9.1:80               Route   1      0          0         \n\
         \x20 -> 192.168.10.1:80              Tunnel  1      0          0         \n\
         \x20 -> 192.168.10.2:80              Tunnel  1      0          0         \n\
         \x20 -> 192.168.10.3:80              Tunnel  1      0          0         \n\
         \x20 -> 192.168.11.1:80              Tunnel  1      0          0         \n\
         \x20 -> 192.168.12.1:80              Tunnel  1      0          0         \n\
         \x20 -> 192.168.13.1:8080            Masq    1      0          0         \n\
         \x20 -> 192.168.13.2:0               Masq    1      0          0         \n\
         \x20 -> [2001:db8::11]:80            Tunnel  1      0          0         \n\
         TCP  [2001:db8::80]:80 rr\n\
         \x20 -> 192.168.12.9:80              Tunnel  1      0          0         \n\
         \x20 -> [2001:db8::a0a0]:8080        Masq    1      0          0         \n"
    );
}

#[test]
fn tun_info_column() {
    let t = ListFormat {
        numeric: true,
        tun_info: true,
        ..ListFormat::default()
    };
    let expected = "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n\
         TCP  207.175.44.110:80 rr\n\
         \x20 -> 192.168.9.1:80               Route   n/a           1      0          0         \n\
         \x20 -> 192.168.10.1:80              Tunnel  gue:6080:-c   1      0          0         \n\
         \x20 -> 192.168.10.2:80              Tunnel  gue:6080:+c   1      0          0         \n\
         \x20 -> 192.168.10.3:80              Tunnel  gue:65535:r+c 1      0          0         \n\
         \x20 -> 192.168.11.1:80              Tunnel  gre:+c        1      0          0         \n\
         \x20 -> 192.168.12.1:80              Tunnel  ipip          1      0          0         \n\
         \x20 -> 192.168.13.1:8080            Masq    n/a           1      0          0         \n\
         \x20 -> 192.168.13.2:0               Masq    n/a           1      0          0         \n\
         \x20 -> [2001:db8::11]:80            Tunnel  gre:-c        1      0          0         \n\
         TCP  [2001:db8::80]:80 rr\n\
         \x20 -> 192.168.12.9:80              Tunnel  ipip          1      0          0         \n\
         \x20 -> [2001:db8::a0a0]:8080        Masq    n/a           1      0          0         \n";
    assert_eq!(list_services_with(&table(), &t, 4096, &names()), expected);
    // --stats, --rate, --thresholds and --persistent-conn win over it.
    for other in [
        ListFormat {
            stats: true,
            ..ListFormat::default()
        },
        ListFormat {
            rate: true,
            ..ListFormat::default()
        },
        ListFormat {
            thresholds: true,
            ..ListFormat::default()
        },
        ListFormat {
            persistent_conn: true,
            ..ListFormat::default()
        },
    ] {
        let with = ListFormat {
            tun_info: true,
            ..other
        };
        assert_eq!(
            list_services_with(&table(), &with, 4096, &names()),
            list_services_with(&table(), &other, 4096, &names()),
            "{other:?}"
        );
    }
}

#[test]
fn save_prints_tunnel_rules_and_reads_back() {
    let saved = save_with(&table(), true, &names());
    assert_eq!(
        saved,
        "-A -t 207.175.44.110:80 -s rr\n\
         -a -t 207.175.44.110:80 -r 192.168.9.1:80 -g -w 1\n\
         -a -t 207.175.44.110:80 -r 192.168.10.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n\
         -a -t 207.175.44.110:80 -r 192.168.10.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n\
         -a -t 207.175.44.110:80 -r 192.168.10.3:80 -i -w 1 --tun-type gue --tun-port 65535 --tun-remcsum\n\
         -a -t 207.175.44.110:80 -r 192.168.11.1:80 -i -w 1 --tun-type gre --tun-csum\n\
         -a -t 207.175.44.110:80 -r 192.168.12.1:80 -i -w 1 --tun-type ipip\n\
         -a -t 207.175.44.110:80 -r 192.168.13.1:8080 -m -w 1\n\
         -a -t 207.175.44.110:80 -r 192.168.13.2:0 -m -w 1\n\
         -a -t 207.175.44.110:80 -r [2001:db8::11]:80 -i -w 1 --tun-type gre --tun-nocsum\n\
         -A -t [2001:db8::80]:80 -s rr\n\
         -a -t [2001:db8::80]:80 -r 192.168.12.9:80 -i -w 1 --tun-type ipip\n\
         -a -t [2001:db8::80]:80 -r [2001:db8::a0a0]:8080 -m -w 1\n"
    );
    // Every line reads back as the real server it came from.
    let mut reals = Vec::new();
    for line in saved.lines() {
        if let Ok(Some(Command::AddReal { real, .. })) = parse_restore_line_with(line, &names()) {
            reals.push(real);
        }
    }
    let mut want: Vec<RealSpec> = table()
        .into_iter()
        .flat_map(|v| v.reals.into_iter().map(|r| r.spec))
        .collect();
    want.sort_by_key(|r| r.id);
    reals.sort_by_key(|r| r.id);
    assert_eq!(reals, want);
    // Names: a tunnelling real's rule keeps its tunnel options; thresholds
    // (lbctl's addition) come last.
    let mut named = view(
        tcp("10.0.0.100", 80),
        vec![rv(
            "10.0.0.11",
            80,
            tunnel(TunType::Gue, 6080, TunCsum::NoCsum),
        )],
    );
    named.reals[0].spec.thresholds = Thresholds {
        upper: 10,
        lower: 5,
    };
    assert_eq!(
        save_with(&[named], false, &names()),
        "-A -t vip.example.com:http -s rr\n\
         -a -t vip.example.com:http -r rs1:http -i -w 1 --tun-type gue --tun-port 6080 \
         --tun-nocsum -x 10 -y 5\n"
    );
}

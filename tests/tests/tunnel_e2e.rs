//! End to end: tunnelling (`-i`, `--tun-type ipip|gue|gre`) with real TCP from the client's
//! namespace through the XDP load balancer to real servers behind a router (not on any
//! segment of the director), each running the decapsulator (`lbctl decap attach eth0`), over
//! IPv4 and IPv6 (`lb_tests::topo_methods`: the reals answer the client directly through the
//! router, from the VIP they hold on `lo`).
//!
//! Scenarios (docs/SEMANTICS.md §18, §20): balancing over every tunnel type and checksum
//! option, persistence, quiescing (held connections go on, new ones elsewhere), removal under
//! both `expire_nodest_conn` values, path MTU discovery (a large upload with full-sized
//! segments: the director answers with ICMP fragmentation needed / Packet Too Big carrying
//! the MTU left inside the tunnel, and the connection completes), on the veth's 1500 bytes
//! and on a remote segment of 1400, and one service mixing direct-routing, tunnelled and
//! masqueraded reals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use lb_common::{REASON_TX_ICMP_TOO_BIG, REASON_TX_RST_NODEST};
use lb_tests::client::{self, HoldConn, Outcome};
use lb_tests::lb::real_line;
use lb_tests::methods::{MethodsLb, upload};
use lb_tests::require_root;
use lb_tests::topo_methods::MethodsConfig;

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const T: Duration = client::DEFAULT_TIMEOUT;
/// How long the client waits for a flow to resume (TCP retransmits with backoff).
const RESUME: Duration = Duration::from_secs(8);

/// The tunnel types, as ipvsadm options, with the VIP index each uses when the client's path
/// MTU cache matters (one VIP per overhead) and the overhead of the encapsulation over an
/// IPv4 outer header (an IPv6 outer adds 20).
const TYPES: [(&str, &[&str], u8, u32); 3] = [
    ("ipip", &[], 0, 20),
    ("gue", &["--tun-type", "gue", "--tun-port", "6080"], 1, 32),
    ("gre", &["--tun-type", "gre"], 2, 24),
];

fn family(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// `-A -t VIP:port -s sched [extra]`, then `-a ... -r RIP:port -i [tun] -w 1` for each real
/// named in `reals`; returns the service's address as typed.
fn tunnel_service(
    lb: &MethodsLb,
    v6: bool,
    vip: u8,
    port: u16,
    extra: &[&str],
    tun: &[&str],
    reals: &[&str],
) -> Result<String> {
    let svc = lb.topo.vip_sock(v6, vip, port).to_string();
    let mut args = vec!["-A", "-t", &svc, "-s", "rr"];
    args.extend_from_slice(extra);
    lb.lbctl_ok(&args)?;
    for name in reals {
        let rip = rip(lb, name, v6, port)?;
        let mut args = vec!["-a", "-t", &svc, "-r", &rip, "-i"];
        args.extend_from_slice(tun);
        args.extend_from_slice(&["-w", "1"]);
        lb.lbctl_ok(&args)?;
    }
    Ok(svc)
}

/// `RIP:port` of the real called `name`, in ipvsadm's notation.
fn rip(lb: &MethodsLb, name: &str, v6: bool, port: u16) -> Result<String> {
    Ok(SocketAddr::new(lb.topo.real_ip(name, v6)?, port).to_string())
}

fn share(counts: &BTreeMap<String, usize>, name: &str) -> i64 {
    counts.get(name).copied().unwrap_or(0) as i64
}

/// Every real of `names` got about `n / names.len()` of `counts` (rr runs per CPU).
fn balanced(counts: &BTreeMap<String, usize>, names: &[&str], n: usize, what: &str) {
    let each = (n / names.len()) as i64;
    for name in names {
        assert!(
            (share(counts, name) - each).abs() <= 3,
            "{what}: {name} wants about {each}: {counts:?}"
        );
    }
    assert_eq!(
        counts.values().sum::<usize>(),
        n,
        "{what}: answered by others: {counts:?}"
    );
}

/// Every tunnel type (and the checksum options of GUE and GRE) balances real TCP over both
/// families to three reals behind the router; `-L -n` lists them as `Tunnel`; the entries
/// lead to the reals' addresses; and a large upload completes over each type, the client
/// having learnt the MTU left inside the tunnel (1500 minus the encapsulation) from the
/// director.
#[test]
fn tunnelled_reals_behind_a_router_are_balanced_over_ipip_gue_and_gre() -> Result<()> {
    if !require_root("tunnelled_reals_behind_a_router_are_balanced_over_ipip_gue_and_gre") {
        return Ok(());
    }
    let mut lb = MethodsLb::new(&MethodsConfig::new(0, 0, 3))?;
    let reals = ["tun1", "tun2", "tun3"];
    for port in 80..=84 {
        lb.serve_all(Path::new(SRV), port)?;
    }
    const N: usize = 30;
    for v6 in [false, true] {
        let fam = family(v6);
        let mut kinds: Vec<(String, u16, u8, Vec<&str>)> = TYPES
            .iter()
            .zip(80u16..)
            .map(|((name, opts, vip, _), port)| (name.to_string(), port, *vip, opts.to_vec()))
            .collect();
        kinds.push((
            "gue --tun-csum".into(),
            83,
            1,
            vec!["--tun-type", "gue", "--tun-port", "6080", "--tun-csum"],
        ));
        kinds.push((
            "gre --tun-csum".into(),
            84,
            2,
            vec!["--tun-type", "gre", "--tun-csum"],
        ));
        for (what, port, vip, opts) in &kinds {
            let what = format!("{what} over {fam}");
            let svc = tunnel_service(&lb, v6, *vip, *port, &[], opts, &reals)?;
            let kind = what.split(' ').next().unwrap_or_default();
            let outcome = format!("decap_{kind}_{}", if v6 { "v6" } else { "v4" });
            let decapped = lb.decapped(&outcome)?;
            let counts = lb.gets(lb.topo.vip_sock(v6, *vip, *port), N)?;
            balanced(&counts, &reals, N, &what);
            // Three packets at least from the client on each connection, each decapsulated.
            let now = lb.decapped(&outcome)?;
            assert!(
                now >= decapped + 3 * N as u64,
                "{what}: {outcome} {decapped} -> {now}"
            );
            let listing = lb.lbctl_ok(&["-L", "-n", "-t", &svc])?;
            for name in reals {
                let line = real_line(&listing, &rip(&lb, name, v6, *port)?)
                    .with_context(|| format!("{what}: {name} in\n{listing}"))?;
                assert_eq!(line[2], "Tunnel", "{what}:\n{listing}");
            }
        }
        // The entries go from the client to the VIP, and lead to the reals' own addresses.
        let rows = lb.conn_rows()?;
        let ours: Vec<_> = rows
            .iter()
            .filter(|r| r.source.ip() == lb.topo.client_ip(v6))
            .collect();
        assert_eq!(ours.len(), N * kinds.len(), "{fam}: {rows:?}");
        for r in &ours {
            assert!(
                reals
                    .iter()
                    .any(|n| lb.topo.real_ip(n, v6).ok() == Some(r.dest.ip())),
                "{fam}: {r:?}"
            );
            assert_eq!(r.dest.port(), r.virt.port(), "{fam}: {r:?}");
        }
        // Full-sized segments: too big once encapsulated, answered with the MTU left.
        for ((name, _, vip, overhead), port) in TYPES.iter().zip(80u16..) {
            let before = lb.reason(REASON_TX_ICMP_TOO_BIG)?;
            let dst = lb.topo.vip_sock(v6, *vip, port);
            let who = upload(&lb.topo.client.ns, dst, 40, 4000, RESUME)
                .with_context(|| format!("upload over {name}, {fam}"))?;
            assert!(reals.contains(&who.as_str()), "{who}");
            let want = 1500 - overhead - if v6 { 20 } else { 0 };
            assert_eq!(
                lb.client_pmtu(dst.ip())?,
                Some(want),
                "the client's path MTU to {dst} ({name}, {fam})"
            );
            assert!(
                lb.reason(REASON_TX_ICMP_TOO_BIG)? > before,
                "{name}, {fam}: no too-big answer counted"
            );
        }
    }
    Ok(())
}

/// Path MTU discovery through a remote segment of 1400 bytes (the director's route to it says
/// so): the director answers the client's full-sized segments with the MTU left inside each
/// tunnel type (1400 minus the encapsulation; 20 more for an IPv6 outer header), and a large
/// upload completes.
#[test]
fn tunnel_path_mtu_discovery_lets_a_large_upload_complete_on_a_1400_byte_path() -> Result<()> {
    if !require_root("tunnel_path_mtu_discovery_lets_a_large_upload_complete_on_a_1400_byte_path") {
        return Ok(());
    }
    let mut lb = MethodsLb::new(&MethodsConfig::new(0, 0, 1).remote_mtu(1400))?;
    lb.serve_all(Path::new(SRV), 80)?;
    for v6 in [false, true] {
        for (name, opts, vip, overhead) in TYPES {
            let what = format!("{name} over {}", family(v6));
            tunnel_service(&lb, v6, vip, 80, &[], opts, &["tun1"])?;
            let dst = lb.topo.vip_sock(v6, vip, 80);
            assert_eq!(
                lb.client_pmtu(dst.ip())?,
                None,
                "{what}: a path MTU already"
            );
            let before = lb.reason(REASON_TX_ICMP_TOO_BIG)?;
            let who = upload(&lb.topo.client.ns, dst, 40, 4000, RESUME)
                .with_context(|| format!("upload, {what}"))?;
            assert_eq!(who, "tun1");
            let want = 1400 - overhead - if v6 { 20 } else { 0 };
            assert_eq!(lb.client_pmtu(dst.ip())?, Some(want), "{what}");
            assert!(lb.reason(REASON_TX_ICMP_TOO_BIG)? > before, "{what}");
            // Small requests go on as before.
            assert_eq!(lb.get(dst)?, "tun1", "{what}");
        }
    }
    Ok(())
}

/// Opens held connections to `addr` until one lands on `name` (at most 12 tries).
fn hold_on(lb: &MethodsLb, addr: SocketAddr, name: &str) -> Result<HoldConn> {
    for _ in 0..12 {
        let c = HoldConn::open(&lb.topo.client.ns, addr, T)?;
        if c.backend() == name {
            return Ok(c);
        }
        c.close()?;
    }
    bail!("no held connection to {addr} reached {name}")
}

/// Persistence (`-p`): a client sticks to its real; quiescing (weight 0): a held connection
/// goes on, new connections go to the other real; removal (`-d`): with
/// `expire_nodest_conn=0` a held connection hangs and resumes when the real comes back, with
/// 1 it is reset. GUE over IPv4, IPIP over IPv6, two reals.
#[test]
fn tunnel_persistence_quiescing_and_removal_over_both_families() -> Result<()> {
    if !require_root("tunnel_persistence_quiescing_and_removal_over_both_families") {
        return Ok(());
    }
    let mut lb = MethodsLb::new(&MethodsConfig::new(0, 0, 2))?;
    let reals = ["tun1", "tun2"];
    for port in 80..=82 {
        lb.serve_all(Path::new(SRV), port)?;
    }
    let gue: &[&str] = &["--tun-type", "gue", "--tun-port", "6080"];
    for (v6, tun) in [(false, gue), (true, &[][..])] {
        let fam = family(v6);
        lb.lbctl_ok(&["sysctl", "expire_nodest_conn=0"])?;
        // Persistence.
        tunnel_service(&lb, v6, 0, 80, &["-p", "60"], tun, &reals)?;
        let sticky = lb.topo.vip_sock(v6, 0, 80);
        let x = lb.get(sticky)?;
        let counts = lb.gets(sticky, 6)?;
        assert_eq!(
            counts.get(&x),
            Some(&6),
            "{fam}: the template ignored: {counts:?}"
        );
        let templates = lb
            .conn_rows()?
            .into_iter()
            .filter(|r| r.source.port() == 0 && r.virt == sticky);
        assert_eq!(templates.count(), 1, "{fam}: one template");

        // Quiescing.
        let svc = tunnel_service(&lb, v6, 0, 81, &[], tun, &reals)?;
        let addr = lb.topo.vip_sock(v6, 0, 81);
        let mut held = HoldConn::open(&lb.topo.client.ns, addr, T)?;
        let x = held.backend().to_owned();
        let y = reals.iter().find(|n| **n != x).context("two reals")?;
        let mut args = vec!["-e", "-t", &svc];
        let x_rip = rip(&lb, &x, v6, 81)?;
        args.extend_from_slice(&["-r", &x_rip, "-i"]);
        args.extend_from_slice(tun);
        args.extend_from_slice(&["-w", "0"]);
        lb.lbctl_ok(&args)?;
        assert_eq!(
            held.ask(T),
            Outcome::Answered(x.clone()),
            "{fam}: held, quiesced"
        );
        let counts = lb.gets(addr, 4)?;
        assert_eq!(
            counts.get(*y),
            Some(&4),
            "{fam}: new ones after quiescing: {counts:?}"
        );
        assert_eq!(
            held.ask(T),
            Outcome::Answered(x.clone()),
            "{fam}: held, still"
        );
        held.close()?;

        // Removal, expire_nodest_conn=0 then 1.
        let svc = tunnel_service(&lb, v6, 0, 82, &[], tun, &reals)?;
        let addr = lb.topo.vip_sock(v6, 0, 82);
        let mut held = hold_on(&lb, addr, "tun1")?;
        let t1 = rip(&lb, "tun1", v6, 82)?;
        lb.lbctl_ok(&["-d", "-t", &svc, "-r", &t1])?;
        assert_eq!(
            held.ask(Duration::from_secs(1)),
            Outcome::TimedOut,
            "{fam}: -d"
        );
        let counts = lb.gets(addr, 3)?;
        assert_eq!(counts.get("tun2"), Some(&3), "{fam}: after -d: {counts:?}");
        let mut args = vec!["-a", "-t", &svc, "-r", &t1, "-i"];
        args.extend_from_slice(tun);
        lb.lbctl_ok(&args)?;
        assert_eq!(
            held.ask(RESUME),
            Outcome::Answered("tun1".into()),
            "{fam}: back"
        );
        held.close()?;

        lb.lbctl_ok(&["sysctl", "expire_nodest_conn=1"])?;
        let resets = lb.reason(REASON_TX_RST_NODEST)?;
        let mut held = hold_on(&lb, addr, "tun1")?;
        lb.lbctl_ok(&["-d", "-t", &svc, "-r", &t1])?;
        assert_eq!(held.ask(T), Outcome::Reset, "{fam}: expire_nodest_conn=1");
        assert_eq!(lb.reason(REASON_TX_RST_NODEST)?, resets + 1, "{fam}");
    }
    Ok(())
}

/// One service mixing a direct-routing real (on the client's segment), a tunnelled real
/// (behind the router) and a masqueraded real (on the inside segment, its port 8080), as
/// IPVS allows: each gets its share of real TCP over both families, `-L -n` shows each
/// method, and only the masqueraded real's replies cross the director (`OutPkts`).
#[test]
fn a_service_mixes_direct_routing_tunnelled_and_masqueraded_reals() -> Result<()> {
    if !require_root("a_service_mixes_direct_routing_tunnelled_and_masqueraded_reals") {
        return Ok(());
    }
    let mut lb = MethodsLb::new(&MethodsConfig::new(1, 1, 1))?;
    for n in lb.topo.dr.iter_mut().chain(lb.topo.tun.iter_mut()) {
        n.start_server(Path::new(SRV), 80, false)?;
    }
    lb.topo.nat[0].start_server(Path::new(SRV), 8080, false)?;
    const N: usize = 30;
    for v6 in [false, true] {
        let fam = family(v6);
        let svc = lb.topo.vip_sock(v6, 0, 80).to_string();
        lb.lbctl_ok(&["-A", "-t", &svc, "-s", "rr"])?;
        let reals = [
            ("dr1", 80, "-g", "Route"),
            ("tun1", 80, "-i", "Tunnel"),
            ("nat1", 8080, "-m", "Masq"),
        ];
        for (name, port, how, _) in reals {
            lb.lbctl_ok(&["-a", "-t", &svc, "-r", &rip(&lb, name, v6, port)?, how])?;
        }
        let counts = lb.gets(lb.topo.vip_sock(v6, 0, 80), N)?;
        balanced(&counts, &["dr1", "tun1", "nat1"], N, fam);
        let listing = lb.lbctl_ok(&["-L", "-n", "-t", &svc])?;
        let stats = lb.lbctl_ok(&["-L", "-n", "--stats", "-t", &svc])?;
        for (name, port, _, forward) in reals {
            let r = rip(&lb, name, v6, port)?;
            let line = real_line(&listing, &r).with_context(|| format!("{r} in\n{listing}"))?;
            assert_eq!(line[2], forward, "{fam}:\n{listing}");
            // -> addr Conns InPkts OutPkts InBytes OutBytes
            let s = real_line(&stats, &r).with_context(|| format!("{r} in\n{stats}"))?;
            assert_eq!(s[2], share(&counts, name).to_string(), "{fam}:\n{stats}");
            assert_ne!(s[3], "0", "{fam}: InPkts of {name}:\n{stats}");
            let crosses = forward == "Masq";
            assert_eq!(s[4] != "0", crosses, "{fam}: OutPkts of {name}:\n{stats}");
            assert_eq!(s[6] != "0", crosses, "{fam}: OutBytes of {name}:\n{stats}");
        }
    }
    Ok(())
}

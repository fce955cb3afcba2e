//! End to end: Debian's real ldirectord, unmodified, drives lbctl in ipvsadm's place
//! (docs/SEMANTICS.md §9.1), with real TCP and UDP clients through the XDP load balancer.
//!
//! Every test builds a direct-routing topology (`LbTopology`), starts
//! `/usr/sbin/ldirectord -d CONF start` (in the foreground) in the director's network
//! namespace and in a private mount namespace where lbctl is bind-mounted over
//! `/usr/sbin/ipvsadm` (`lb_tests::ldirectord`), with `checkinterval=1`, `checktimeout=1`.
//! What ldirectord did is read back with `lbctl -L -n` and seen by clients: which real
//! server answers a new connection, whether a held one still answers. ldirectord is always
//! stopped by a guard. Independent scenarios are separate tests (cargo runs them in
//! parallel); the scenarios of one test share its topology and its ldirectord.
//!
//! Every test also checks that no ipvsadm command ldirectord ran failed (ldirectord logs
//! `system(…) failed` for a non-zero exit status) and that it read every line lbctl listed
//! (it logs `Unknown line read from ipvsadm` for the others), except the one about a
//! loopback fallback, where the failure is the point.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
    os::unix::fs::MetadataExt as _,
    time::Duration,
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    client::{self, HoldConn, Outcome, UdpFlow},
    lb::{LbTopology, lbctl_path, wait_for},
    ldirectord::{Ldirectord, require_ldirectord},
    netns::NsChild,
    topo::{LB_ADDR, Node, TopoConfig, is_listening},
};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
/// ldirectord's start: perl loads its modules, installs the table, runs the first checks.
const START: Duration = Duration::from_secs(20);
/// One change: checkinterval + checktimeout, with room for a loaded 2-CPU machine.
const CHANGE: Duration = Duration::from_secs(10);

/// `lbctl -L -n`: every service line (whitespace collapsed, e.g. `TCP 203.0.113.10:80 wrr`)
/// with its real servers' weights.
type Listing = BTreeMap<String, BTreeMap<String, u32>>;

fn listing(lb: &LbTopology) -> Result<Listing> {
    let text = lb.lbctl_ok(&["-L", "-n"])?;
    let mut out = Listing::new();
    let mut service: Option<String> = None;
    for line in text.lines().skip(3) {
        if let Some(real) = line.strip_prefix("  -> ") {
            let f: Vec<&str> = real.split_whitespace().collect();
            let (Some(svc), Some(addr), Some(weight)) = (&service, f.first(), f.get(2)) else {
                bail!("bad real line {line:?} in:\n{text}");
            };
            out.entry(svc.clone())
                .or_default()
                .insert(addr.to_string(), weight.parse()?);
        } else {
            let svc = line.split_whitespace().collect::<Vec<_>>().join(" ");
            out.insert(svc.clone(), BTreeMap::new());
            service = Some(svc);
        }
    }
    Ok(out)
}

/// A listing from `(service line, [(real, weight)])`.
fn table(services: &[(&str, &[(&str, u32)])]) -> Listing {
    services
        .iter()
        .map(|(s, reals)| {
            (
                s.to_string(),
                reals.iter().map(|(r, w)| (r.to_string(), *w)).collect(),
            )
        })
        .collect()
}

/// Waits until `lbctl -L -n` is `want`.
fn wait_table(lb: &LbTopology, ld: &mut Ldirectord, want: &Listing, limit: Duration) -> Result<()> {
    let mut last = Listing::new();
    wait_for(&format!("the table {want:?}"), limit, || {
        ld.running()?;
        last = listing(lb)?;
        Ok((&last == want).then_some(()))
    })
    .with_context(|| format!("the table is {last:?}; ldirectord's log:\n{}", ld.log()))
}

/// Fails unless ldirectord ran ipvsadm where lbctl is bound, every command succeeded (it
/// logs `system(…) failed` for a non-zero exit status) and it read every line of `-L -n`
/// and `-L -n --thresholds` (it logs the others as `Unknown line read from ipvsadm`).
fn no_failed_command(ld: &Ldirectord) -> Result<()> {
    let log = ld.log();
    ensure!(
        log.contains("Running system(/sbin/ipvsadm -")
            || log.contains("Running system(/usr/sbin/ipvsadm -"),
        "ldirectord ran no ipvsadm:\n{log}"
    );
    ensure!(
        !log.contains(") failed") && !log.contains("Unknown line read from ipvsadm"),
        "ldirectord saw a failure:\n{log}"
    );
    Ok(())
}

/// Fails unless every line in `lines` is in ldirectord's log within [`CHANGE`]: ldirectord
/// logs a change after the ipvsadm command that made it, and at start it adds each real with
/// its weight, then quiesces it until its first check restores it, so the table may show a
/// weight before the line that a test looks for is written.
fn logged(ld: &Ldirectord, lines: &[String]) -> Result<()> {
    for l in lines {
        wait_for(&format!("log line {l:?}"), CHANGE, || {
            Ok(ld.log().contains(l.as_str()).then_some(()))
        })
        .with_context(|| format!("{l:?} missing from the log:\n{}", ld.log()))?;
    }
    Ok(())
}

/// Opens held connections to the VIP's `port` until one lands on `name` (the others are
/// closed); at most 12 tries.
fn hold_on(lb: &LbTopology, port: u16, name: &str) -> Result<HoldConn> {
    for _ in 0..12 {
        let c = HoldConn::open(
            &lb.topo.client.ns,
            lb.topo.vip_sock(port),
            client::DEFAULT_TIMEOUT,
        )?;
        if c.backend() == name {
            return Ok(c);
        }
        c.close()?;
    }
    bail!("no held connection to port {port} reached {name}")
}

/// One lb-testsrv on every port of `ports` (TCP, or UDP with `udp`) in `node`'s namespace,
/// answering with the node's name; the namespace's guard kills it.
fn serve(node: &Node, ports: &[u16], udp: bool) -> Result<NsChild> {
    // On a dual-stack host `[::]` takes both families.
    let any = if node.addr6.is_some() {
        "[::]"
    } else {
        "0.0.0.0"
    };
    let listen: Vec<String> = ports.iter().map(|p| format!("{any}:{p}")).collect();
    let mut argv = vec![SRV, "--name", node.name.as_str()];
    for l in &listen {
        argv.extend(["--listen", l.as_str()]);
    }
    if udp {
        argv.push("--udp");
    }
    let child = node.ns.spawn(&argv)?;
    for &p in ports {
        wait_for(
            &format!("{} listens on {p}", node.name),
            Duration::from_secs(10),
            || Ok(is_listening(&node.ns, p, udp)?.then_some(())),
        )?;
    }
    Ok(child)
}

fn addr(lb: &LbTopology, i: usize) -> String {
    lb.topo.backends[i].addr.to_string()
}

/// The whole cycle on one ldirectord with five virtual services on the VIP:
///
/// - `:80` wrr, `quiescent=yes`, weights 1/2/3, checked on a separate port (9000) so that a
///   real server's check can fail while its service keeps answering: start installs it; a
///   failed real is quiesced (weight 0), new clients avoid it while a held connection to it
///   keeps working; recovered, its weight is restored;
/// - `:82` `sh` with `schedflags=sh-port` (`-b sh-port`): one client's connections spread;
/// - `:83` rr with `u:1` on rs1 (`-x 1`): while rs1 holds a connection, it is overloaded and
///   new clients go elsewhere;
/// - `:84` wlc, weights 1 and 3: held connections fill the reals one for three;
/// - UDP `:53` rr with `ops=yes` (`-o`): one client socket's datagrams alternate;
///
/// then a reload (SIGHUP) changes `:82` to rr and drops `:84`; and at the end ldirectord's
/// stop (SIGTERM, `cleanstop=yes`, its default) removes it all.
#[test]
fn ldirectord_installs_quiesces_restores_and_cleans_up() -> Result<()> {
    if !require_ldirectord("ldirectord_installs_quiesces_restores_and_cleans_up") {
        return Ok(());
    }
    let lb = LbTopology::new(3)?;
    let (rs1, rs2, rs3) = (addr(&lb, 0), addr(&lb, 1), addr(&lb, 2));
    let vip = lb.topo.vip;
    let mut health = Vec::new();
    for b in &lb.topo.backends {
        serve(b, &[80, 82, 83, 84], false)?;
        serve(b, &[53], true)?;
        health.push(serve(b, &[9000], false)?);
    }
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\n\
         virtual={vip}:80\n\treal={rs1}:80 gate 1\n\treal={rs2}:80 gate 2\n\treal={rs3}:80 gate 3\n\
         \tchecktype=connect\n\tcheckport=9000\n\tquiescent=yes\n\
         virtual={vip}:82\n\treal={rs1}:82 gate\n\treal={rs2}:82 gate\n\treal={rs3}:82 gate\n\
         \tchecktype=connect\n\tscheduler=sh\n\tschedflags=sh-port\n\
         virtual={vip}:83\n\treal={rs1}:83 gate 1 u:1\n\treal={rs2}:83 gate 1\n\
         \tchecktype=connect\n\tscheduler=rr\n\
         virtual={vip}:84\n\treal={rs1}:84 gate 1\n\treal={rs2}:84 gate 3\n\
         \tchecktype=connect\n\tscheduler=wlc\n\
         virtual={vip}:53\n\tprotocol=udp\n\treal={rs1}:53 gate\n\treal={rs2}:53 gate\n\
         \tchecktype=on\n\tscheduler=rr\n\tops=yes\n"
    );
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    let (s80, s82, s83, s84, s53) = (
        format!("TCP {vip}:80 wrr"),
        format!("TCP {vip}:82 sh (sh-port)"),
        format!("TCP {vip}:83 rr"),
        format!("TCP {vip}:84 wlc"),
        format!("UDP {vip}:53 rr ops"),
    );
    let p = |a: &str, port: u16| format!("{a}:{port}");
    let (r80, r82, r83, r84, r53) = (
        [p(&rs1, 80), p(&rs2, 80), p(&rs3, 80)],
        [p(&rs1, 82), p(&rs2, 82), p(&rs3, 82)],
        [p(&rs1, 83), p(&rs2, 83)],
        [p(&rs1, 84), p(&rs2, 84)],
        [p(&rs1, 53), p(&rs2, 53)],
    );
    let started = |w80: &[u32; 3]| {
        table(&[
            (
                &s80,
                &[(&r80[0], w80[0]), (&r80[1], w80[1]), (&r80[2], w80[2])],
            ),
            (&s82, &[(&r82[0], 1), (&r82[1], 1), (&r82[2], 1)]),
            (&s83, &[(&r83[0], 1), (&r83[1], 1)]),
            (&s84, &[(&r84[0], 1), (&r84[1], 3)]),
            (&s53, &[(&r53[0], 1), (&r53[1], 1)]),
        ])
    };
    // Start: the virtual services and their reals, as configured.
    wait_table(&lb, &mut ld, &started(&[1, 2, 3]), START)?;
    logged(
        &ld,
        &[
            format!("Added virtual server: {vip}:80"),
            format!("Added virtual server: {vip}:53"),
            format!("Restored real server: {rs3}:80 ({vip}:80) (Weight set to 3)"),
        ],
    )?;
    let th = lb.lbctl_ok(&["-L", "-n", "--thresholds"])?;
    ensure!(
        th.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["->", r83[0].as_str(), "1", "0", "0", "0"]),
        "u:1 is not rs1's upper threshold:\n{th}"
    );
    let counts = lb.gets(80, 30)?;
    ensure!(counts.len() == 3, "not every real gets clients: {counts:?}");

    // sh-port: the source port is hashed too, so one client's connections spread.
    let counts = lb.gets(82, 30)?;
    ensure!(counts.len() >= 2, "sh-port ignored: {counts:?}");

    // u:1: with a connection held on rs1, rs1 is overloaded and rr skips it.
    let on_rs1 = hold_on(&lb, 83, "rs1")?;
    let counts = lb.gets(83, 10)?;
    ensure!(
        counts == BTreeMap::from([("rs2".to_string(), 10)]),
        "an overloaded real gets new clients: {counts:?}"
    );
    on_rs1.close()?;

    // wlc with weights 1 and 3: held connections fill the reals by active connections over
    // weight, one on rs1 for three on rs2 (rr would give two and two). All four stay open,
    // so only established connections count.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(HoldConn::open(
            &lb.topo.client.ns,
            lb.topo.vip_sock(84),
            client::DEFAULT_TIMEOUT,
        )?);
    }
    let mut counts = BTreeMap::new();
    for c in &held {
        *counts.entry(c.backend().to_string()).or_insert(0) += 1;
    }
    ensure!(
        counts == BTreeMap::from([("rs1".to_string(), 1), ("rs2".to_string(), 3)]),
        "wlc over weights 1 and 3: {counts:?}"
    );
    for c in held {
        c.close()?;
    }

    // ops: every datagram of one client socket is scheduled on its own.
    let flow = UdpFlow::open(&lb.topo.client.ns, lb.topo.vip_sock(53))?;
    let mut seen = BTreeMap::new();
    for _ in 0..6 {
        match flow.ask(client::DEFAULT_TIMEOUT) {
            Outcome::Answered(name) => *seen.entry(name).or_insert(0) += 1,
            other => bail!("UDP datagram: {other}"),
        }
    }
    // (Without ops they would all follow the flow's connection entry to one real; rr's
    // position is kept per CPU, so the split need not be three and three.)
    ensure!(seen.len() == 2, "ops: {seen:?}");

    // rs2 fails its check: quiesced (weight 0). New clients avoid it, a connection it
    // already holds keeps working.
    let mut on_rs2 = hold_on(&lb, 80, "rs2")?;
    health[1].kill()?;
    wait_table(&lb, &mut ld, &started(&[1, 0, 3]), CHANGE)?;
    logged(
        &ld,
        &[format!(
            "Quiescent real server: {rs2}:80 ({vip}:80) (Weight set to 0)"
        )],
    )?;
    let counts = lb.gets(80, 30)?;
    ensure!(
        !counts.contains_key("rs2") && counts.values().sum::<usize>() == 30,
        "a quiesced real gets new clients: {counts:?}"
    );
    let answer = on_rs2.ask(client::DEFAULT_TIMEOUT);
    ensure!(
        answer == Outcome::Answered("rs2".into()),
        "the held connection to the quiesced rs2: {answer}"
    );

    // rs2 recovers: its weight (2) is restored and it gets new clients again.
    health[1] = serve(&lb.topo.backends[1], &[9000], false)?;
    wait_table(&lb, &mut ld, &started(&[1, 2, 3]), CHANGE)?;
    logged(
        &ld,
        &[format!(
            "Restored real server: {rs2}:80 ({vip}:80) (Weight set to 2)"
        )],
    )?;
    let counts = lb.gets(80, 30)?;
    ensure!(
        counts.contains_key("rs2"),
        "rs2 gets no clients: {counts:?}"
    );
    on_rs2.close()?;

    // Reload (SIGHUP) on a configuration without :84 and with rr on :82: ldirectord changes
    // :82 (-E, which drops sh-port) and purges :84 (-D); the rest stays as it is.
    let (with84, without84) = (
        format!(
            "virtual={vip}:84\n\treal={rs1}:84 gate 1\n\treal={rs2}:84 gate 3\n\
             \tchecktype=connect\n\tscheduler=wlc\n"
        ),
        String::new(),
    );
    ensure!(conf.contains(&with84));
    let reloaded = conf
        .replace(&with84, &without84)
        .replace("\tscheduler=sh\n\tschedflags=sh-port\n", "\tscheduler=rr\n");
    ld.reload(&reloaded)?;
    let mut want = started(&[1, 2, 3]);
    want.remove(&s84);
    let reals82 = want.remove(&s82).context("no :82")?;
    want.insert(format!("TCP {vip}:82 rr"), reals82);
    wait_table(&lb, &mut ld, &want, CHANGE)?;
    ld.wait_log(&format!("Purged virtual server (start): {vip}:84"), CHANGE)?;
    logged(&ld, &[format!("Changed virtual server: {vip}:82")])?;

    // Stop: SIGTERM with cleanstop=yes removes everything it installed.
    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    ensure!(listing(&lb)?.is_empty(), "left behind: {:?}", listing(&lb)?);
    logged(
        &ld,
        &[
            format!("Purged virtual server (stop): {vip}:80"),
            format!("Purged virtual server (stop): {vip}:53"),
            "Linux Director Daemon terminated on signal: TERM".to_string(),
        ],
    )?;
    no_failed_command(&ld)?;
    // The host's ipvsadm was never replaced.
    let host = std::fs::metadata("/usr/sbin/ipvsadm")?;
    let lbctl = std::fs::metadata(lbctl_path()?)?;
    ensure!(
        (host.dev(), host.ino()) != (lbctl.dev(), lbctl.ino()),
        "the host's /usr/sbin/ipvsadm is lbctl"
    );
    Ok(())
}

/// `quiescent=no`: a failed real is deleted (`-d`); with every real down the `fallback=`
/// server is added (weight 1) and takes the clients; the first real back is added again and
/// the fallback deleted. With `cleanstop=no` the table outlives ldirectord, and the next
/// ldirectord finds its service and changes it (`-E`) instead of adding it.
#[test]
fn ldirectord_quiescent_no_removes_and_the_fallback_comes_and_goes() -> Result<()> {
    if !require_ldirectord("ldirectord_quiescent_no_removes_and_the_fallback_comes_and_goes") {
        return Ok(());
    }
    let lb = LbTopology::new(3)?;
    let servers: Vec<NsChild> = lb
        .topo
        .backends
        .iter()
        .map(|b| serve(b, &[80], false))
        .collect::<Result<_>>()?;
    let (rs1, rs2, rs3) = (addr(&lb, 0), addr(&lb, 1), addr(&lb, 2));
    let vip = lb.topo.vip;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=no\ncleanstop=no\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={rs2}:80 gate\n\
         \tfallback={rs3}:80 gate\n\tchecktype=connect\n\tscheduler=rr\n"
    );
    let svc = format!("TCP {vip}:80 rr");
    let only = |reals: &[&str]| {
        let reals: Vec<(String, u32)> = reals.iter().map(|a| (format!("{a}:80"), 1)).collect();
        let reals: Vec<(&str, u32)> = reals.iter().map(|(a, w)| (a.as_str(), *w)).collect();
        table(&[(&svc, &reals)])
    };
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    wait_table(&lb, &mut ld, &only(&[&rs1, &rs2]), START)?;

    // rs1 fails: deleted, and new clients all go to rs2.
    servers[0].kill()?;
    wait_table(&lb, &mut ld, &only(&[&rs2]), CHANGE)?;
    logged(&ld, &[format!("Deleted real server: {rs1}:80 ({vip}:80)")])?;
    ensure!(lb.gets(80, 10)? == BTreeMap::from([("rs2".to_string(), 10)]));

    // rs2 fails too: the fallback comes in and takes the clients.
    servers[1].kill()?;
    wait_table(&lb, &mut ld, &only(&[&rs3]), CHANGE)?;
    logged(
        &ld,
        &[format!(
            "Added fallback server: {rs3}:80 ({vip}:80) (Weight set to 1)"
        )],
    )?;
    ensure!(lb.gets(80, 10)? == BTreeMap::from([("rs3".to_string(), 10)]));

    // rs1 comes back: added again, and the fallback leaves.
    serve(&lb.topo.backends[0], &[80], false)?;
    wait_table(&lb, &mut ld, &only(&[&rs1]), CHANGE)?;
    logged(
        &ld,
        &[
            format!("Added real server: {rs1}:80 ({vip}:80) (Weight set to 1)"),
            format!("Deleted fallback server: {rs3}:80 ({vip}:80)"),
        ],
    )?;
    ensure!(lb.gets(80, 10)? == BTreeMap::from([("rs1".to_string(), 10)]));

    // cleanstop=no: stopped, ldirectord leaves the table as it was, and it still forwards.
    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    no_failed_command(&ld)?;
    ensure!(listing(&lb)? == only(&[&rs1]));
    ensure!(lb.gets(80, 5)? == BTreeMap::from([("rs1".to_string(), 5)]));

    // The next ldirectord changes the service it finds (-E) and converges on the same table
    // (at start it adds every real it has not checked yet and deletes it again: wait for rs2's
    // deletion).
    let mut again = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    again.wait_log(&format!("Changed virtual server: {vip}:80"), START)?;
    again.wait_log(&format!("Deleted real server: {rs2}:80 ({vip}:80)"), CHANGE)?;
    wait_table(&lb, &mut again, &only(&[&rs1]), CHANGE)?;
    ensure!(lb.gets(80, 5)? == BTreeMap::from([("rs1".to_string(), 5)]));
    let st = again.stop()?;
    ensure!(
        st.success(),
        "ldirectord's exit {st}; log:\n{}",
        again.log()
    );
    no_failed_command(&again)?;
    Ok(())
}

/// ldirectord's example configuration has `fallback=127.0.0.1:80 gate`. IPVS serves such a
/// real server on the director (`Local`); direct routing cannot, so lbctl refuses it, and
/// ldirectord logs the failed command, instead of a fallback that takes every client while
/// nothing answers them. So is the director's own address.
#[test]
fn ldirectord_loopback_fallback_is_refused_not_installed() -> Result<()> {
    if !require_ldirectord("ldirectord_loopback_fallback_is_refused_not_installed") {
        return Ok(());
    }
    let lb = LbTopology::new(1)?;
    let rs1 = addr(&lb, 0);
    let vip = lb.topo.vip;
    // rs1 serves nothing: down from its first check, so the fallback is wanted.
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=no\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\tfallback=127.0.0.1:80 gate\n\
         \tchecktype=connect\n"
    );
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    ld.wait_log("-r 127.0.0.1:80 -g -w 1) failed", START)?;
    logged(
        &ld,
        &["real server 127.0.0.1 is the director itself".to_string()],
    )?;
    ld.wait_log(&format!("Deleted real server: {rs1}:80 ({vip}:80)"), CHANGE)?;
    ensure!(
        listing(&lb)? == table(&[(&format!("TCP {vip}:80 wrr"), &[])]),
        "{:?}",
        listing(&lb)?
    );
    // The director's own address is as local as 127.0.0.1 (the kernel routes both to
    // itself, which is what makes IPVS serve them locally): refused too.
    let own = format!("{LB_ADDR}:80");
    let o = lb.lbctl(&[
        "-a",
        "-t",
        &format!("{vip}:80"),
        "-r",
        &own,
        "-g",
        "-w",
        "1",
    ])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !o.status.success()
            && err.contains(&format!("real server {LB_ADDR} is the director itself")),
        "-a -r {own}: {} {err}",
        o.status
    );
    ensure!(listing(&lb)? == table(&[(&format!("TCP {vip}:80 wrr"), &[])]));
    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    Ok(())
}

/// docs/SEMANTICS.md §9.1 with the real ldirectord: a persistent virtual (`persistent=300`,
/// `netmask=255.255.255.0`, so `-M` and a `mask` in the listing; `quiescent=yes`); the real
/// server a client's template points to fails its check (on a separate port, so the
/// service itself still answers) and is quiesced. With `expire_quiescent_template=0` the
/// client keeps going to it; with 1 it is moved.
fn persistent_client_under_ldirectord(expire_quiescent_template: u32) -> Result<()> {
    let lb = LbTopology::new(2)?;
    let mut health = Vec::new();
    for b in &lb.topo.backends {
        serve(b, &[80], false)?;
        health.push(serve(b, &[8080], false)?);
    }
    lb.lbctl_ok(&[
        "sysctl",
        &format!("expire_quiescent_template={expire_quiescent_template}"),
    ])?;
    let (rs1, rs2) = (addr(&lb, 0), addr(&lb, 1));
    let vip = lb.topo.vip;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=yes\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={rs2}:80 gate\n\
         \tchecktype=connect\n\tcheckport=8080\n\tpersistent=300\n\tnetmask=255.255.255.0\n\
         \tscheduler=rr\n"
    );
    let svc = format!("TCP {vip}:80 rr persistent 300 mask 255.255.255.0");
    let weights = |w1: u32, w2: u32| {
        table(&[(
            &svc,
            &[(&format!("{rs1}:80"), w1), (&format!("{rs2}:80"), w2)],
        )])
    };
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    wait_table(&lb, &mut ld, &weights(1, 1), START)?;

    // The client gets a template and sticks to its real server.
    let client = lb.sticky_client(80)?;

    // Its check fails: ldirectord quiesces it.
    health[client.index].kill()?;
    let want = if client.index == 0 {
        weights(0, 1)
    } else {
        weights(1, 0)
    };
    wait_table(&lb, &mut ld, &want, CHANGE)?;
    client.after_quiesce(&lb, expire_quiescent_template)?;

    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    ensure!(listing(&lb)?.is_empty(), "left behind: {:?}", listing(&lb)?);
    no_failed_command(&ld)?;
    Ok(())
}

#[test]
fn ldirectord_persistent_client_keeps_its_quiesced_real_with_expire_quiescent_template_0()
-> Result<()> {
    if !require_ldirectord(
        "ldirectord_persistent_client_keeps_its_quiesced_real_with_expire_quiescent_template_0",
    ) {
        return Ok(());
    }
    persistent_client_under_ldirectord(0)
}

#[test]
fn ldirectord_persistent_client_moves_with_expire_quiescent_template_1() -> Result<()> {
    if !require_ldirectord("ldirectord_persistent_client_moves_with_expire_quiescent_template_1") {
        return Ok(());
    }
    persistent_client_under_ldirectord(1)
}

/// GET `http://VIP:port/` from the client's namespace on the local address `from` (a
/// client address of its own); the real server's name.
fn get_from(lb: &LbTopology, from: Ipv4Addr, port: u16) -> Result<String> {
    let local = SocketAddrV4::new(from, 0);
    match client::http_try_from(
        &lb.topo.client.ns,
        local,
        lb.topo.vip_sock(port),
        client::DEFAULT_TIMEOUT,
    )? {
        Outcome::Answered(name) => Ok(name),
        other => bail!("GET port {port} from {from}: {other}"),
    }
}

/// Adds `n` client addresses `198.51.100.<first>…` (in the client's /24, clear of the real
/// servers' addresses) to the client's eth0: new clients, one persistence template each.
fn new_clients(lb: &LbTopology, first: u8, n: u8) -> Result<Vec<Ipv4Addr>> {
    (first..first + n)
        .map(|last| {
            let a = Ipv4Addr::new(198, 51, 100, last);
            lb.topo
                .client
                .ns
                .ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"])?;
            Ok(a)
        })
        .collect()
}

/// FWMARK with the real ldirectord (docs/SEMANTICS.md §9.1): two `lbctl fwmark add` rules
/// give the VIP's TCP ports 80 and 443 mark 1; ldirectord has `virtual=1` (`-A -f 1`),
/// `persistent=300`, and two reals without a port (`-r RIP:0`, the packet's own port) checked
/// on a separate port (`checkport=9000`), so that a real server's check can fail while it
/// keeps serving. It installs `FWM  1 rr persistent 300` with both reals and reads it back
/// from `-L -n`; a client's connections to 80 and 443 reach one real through one template
/// (`IP` and the mark in `-L -c -n`); that real fails its check: quiesced, new clients go to
/// the other one (the client with a template stays, expire_quiescent_template being 0); it
/// recovers: weight 1 again, and new clients reach it; a reload changes the persistence
/// (`-E -f 1`, a netmask too) and purges rs2 (`-d -f 1`); the stop (`cleanstop=yes`) removes
/// the service and leaves the rules, which are not ldirectord's.
#[test]
fn ldirectord_fwmark_virtual() -> Result<()> {
    if !require_ldirectord("ldirectord_fwmark_virtual") {
        return Ok(());
    }
    let lb = LbTopology::new(2)?;
    let mut health = Vec::new();
    for b in &lb.topo.backends {
        serve(b, &[80, 443], false)?;
        health.push(serve(b, &[9000], false)?);
    }
    let (rs1, rs2) = (addr(&lb, 0), addr(&lb, 1));
    for port in [80, 443] {
        lb.mark_tcp(port, 1)?;
    }
    let rules = lb.lbctl_ok(&["fwmark"])?;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=yes\n\
         virtual=1\n\treal={rs1} gate\n\treal={rs2} gate\n\
         \tchecktype=connect\n\tcheckport=9000\n\tscheduler=rr\n\tpersistent=300\n"
    );
    let svc = "FWM 1 rr persistent 300";
    let weights =
        |w1: u32, w2: u32| table(&[(svc, &[(&format!("{rs1}:0"), w1), (&format!("{rs2}:0"), w2)])]);
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    wait_table(&lb, &mut ld, &weights(1, 1), START)?;
    logged(
        &ld,
        &[
            "Added virtual server: 1".to_string(),
            format!("Restored real server: {rs2}:0 (1) (Weight set to 1)"),
        ],
    )?;

    // The client's connections to both ports go to one real, through one template: protocol
    // IP, the mark as the virtual address, the ports 0.
    let client_addr = lb.topo.client.addr;
    let first = get_from(&lb, client_addr, 80)?;
    for port in [443, 80, 443] {
        let got = get_from(&lb, client_addr, port)?;
        ensure!(
            got == first,
            "port {port} went to {got}, port 80 to {first}"
        );
    }
    let i = usize::from(first != "rs1");
    let (held, other) = (addr(&lb, i), if i == 0 { "rs2" } else { "rs1" });
    let rows = lb.conn_rows()?;
    let templates: Vec<_> = rows.iter().filter(|r| r.is_template()).collect();
    ensure!(
        templates.len() == 1
            && (
                templates[0].proto.as_str(),
                templates[0].source,
                templates[0].virt,
                templates[0].dest.to_string()
            ) == (
                "IP",
                SocketAddrV4::new(client_addr, 0),
                "0.0.0.1:0".parse()?,
                format!("{held}:0")
            ),
        "not one template for the client to {held}: {rows:?}"
    );
    ensure!(
        rows.iter()
            .any(|r| r.proto == "TCP" && r.virt.port() == 443 && !r.is_template()),
        "no connection entry to port 443: {rows:?}"
    );

    // Its real fails its check: quiesced (weight 0). New clients go to the other real; the
    // client with a template keeps its real (expire_quiescent_template=0, the default).
    health[i].kill()?;
    let want = if i == 0 { weights(0, 1) } else { weights(1, 0) };
    wait_table(&lb, &mut ld, &want, CHANGE)?;
    logged(
        &ld,
        &[format!(
            "Quiescent real server: {held}:0 (1) (Weight set to 0)"
        )],
    )?;
    for a in new_clients(&lb, 200, 4)? {
        for port in [80, 443] {
            let got = get_from(&lb, a, port)?;
            ensure!(
                got == other,
                "new client {a} went to the quiesced {first} on port {port}"
            );
        }
    }
    let got = get_from(&lb, client_addr, 443)?;
    ensure!(
        got == first,
        "the client's template to {first} ignored: {got}"
    );

    // It recovers: weight 1 again, and new clients reach it. (rr keeps its position per CPU:
    // of six new clients on two CPUs, one CPU schedules at least two in a row, and rr gives
    // them both reals.)
    health[i] = serve(&lb.topo.backends[i], &[9000], false)?;
    wait_table(&lb, &mut ld, &weights(1, 1), CHANGE)?;
    logged(
        &ld,
        &[format!(
            "Restored real server: {held}:0 (1) (Weight set to 1)"
        )],
    )?;
    let mut counts = BTreeMap::new();
    for a in new_clients(&lb, 210, 6)? {
        *counts.entry(get_from(&lb, a, 80)?).or_insert(0) += 1;
    }
    ensure!(
        counts.contains_key(&first),
        "the restored {first} gets no new clients: {counts:?}"
    );

    // Reload (SIGHUP) with persistent=120, netmask=255.255.255.0 and rs2 gone: ldirectord
    // changes the service (`-E -f 1 … -p 120 -M 255.255.255.0`) and purges rs2 (`-d -f 1 -r
    // RIP:0`).
    let reloaded = conf.replace(&format!("\treal={rs2} gate\n"), "").replace(
        "persistent=300\n",
        "persistent=120\n\tnetmask=255.255.255.0\n",
    );
    ensure!(reloaded.len() < conf.len() && reloaded.contains("netmask"));
    ld.reload(&reloaded)?;
    wait_table(
        &lb,
        &mut ld,
        &table(&[(
            "FWM 1 rr persistent 120 mask 255.255.255.0",
            &[(&format!("{rs1}:0"), 1)],
        )]),
        CHANGE,
    )?;
    ld.wait_log(&format!("Purged real server (start): {rs2}:0 (1)"), CHANGE)?;
    logged(&ld, &["Changed virtual server: 1".to_string()])?;

    // Stop: cleanstop removes the service; the rules stay (the operator made them).
    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    ensure!(listing(&lb)?.is_empty(), "left behind: {:?}", listing(&lb)?);
    logged(&ld, &["Purged virtual server (stop): 1".to_string()])?;
    ensure!(lb.lbctl_ok(&["fwmark"])? == rules, "the rules changed");
    no_failed_command(&ld)?;
    Ok(())
}

/// `fork=yes`: one ldirectord process per virtual service, so twelve processes run ipvsadm
/// (lbctl) at the same time, each reading the table and changing its own service. Every
/// change lands, none fails: the start, rs2's failure on every service at once (quiesced
/// twelve times), its recovery, and the stop.
#[test]
fn ldirectord_fork_yes_changes_the_table_from_many_processes_at_once() -> Result<()> {
    if !require_ldirectord("ldirectord_fork_yes_changes_the_table_from_many_processes_at_once") {
        return Ok(());
    }
    let lb = LbTopology::new(2)?;
    let ports: Vec<u16> = (1000..1012).collect();
    serve(&lb.topo.backends[0], &ports, false)?;
    let rs2_server = serve(&lb.topo.backends[1], &ports, false)?;
    let (rs1, rs2) = (addr(&lb, 0), addr(&lb, 1));
    let vip = lb.topo.vip;
    let mut conf = "checkinterval=1\nchecktimeout=1\nfork=yes\nquiescent=yes\n".to_string();
    for p in &ports {
        conf.push_str(&format!(
            "virtual={vip}:{p}\n\treal={rs1}:{p} gate 1\n\treal={rs2}:{p} gate 2\n\
             \tchecktype=connect\n\tscheduler=rr\n"
        ));
    }
    let all = |w2: u32| -> Listing {
        ports
            .iter()
            .map(|p| {
                (
                    format!("TCP {vip}:{p} rr"),
                    BTreeMap::from([(format!("{rs1}:{p}"), 1), (format!("{rs2}:{p}"), w2)]),
                )
            })
            .collect()
    };
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    wait_table(&lb, &mut ld, &all(2), START)?;
    ensure!(lb.gets(1000, 6)?.len() == 2);

    rs2_server.kill()?;
    wait_table(&lb, &mut ld, &all(0), CHANGE)?;
    for p in [1000, 1011] {
        ensure!(lb.gets(p, 6)? == BTreeMap::from([("rs1".to_string(), 6)]));
    }

    serve(&lb.topo.backends[1], &ports, false)?;
    wait_table(&lb, &mut ld, &all(2), CHANGE)?;
    ensure!(lb.gets(1011, 6)?.len() == 2);

    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    ensure!(listing(&lb)?.is_empty(), "left behind: {:?}", listing(&lb)?);
    no_failed_command(&ld)?;
    Ok(())
}

/// An IPv6 virtual service as an operator writes it for Debian's ldirectord (`virtual6=`,
/// `real6=`, an address in brackets), driving lbctl on the dual-stack topology with real IPv6
/// clients: start installs both services (`-A -t [v6]:80`, `-a … -r [v6]:80 -g -w N`, read
/// back through ldirectord's `-L -n` regexes: it sees no unknown line), `:80` is checked by
/// ldirectord's default for port 80, an HTTP check (LWP, which needs Net::INET6Glue for an
/// IPv6 real server), `:81` is persistent with `netmask=64` (`-M 64`, `mask 64`),
/// `virtual6=1` is an IPv6 fwmark service (`-A -f 1 -6`, `FWM  1 IPv6`) over an `lbctl
/// fwmark` rule for port 82; a real
/// server whose HTTP check fails is quiesced and new clients avoid it; recovered, its weight
/// is restored; stop removes everything.
#[test]
fn ldirectord_ipv6_virtual_installs_quiesces_and_restores() -> Result<()> {
    if !require_ldirectord("ldirectord_ipv6_virtual_installs_quiesces_and_restores") {
        return Ok(());
    }
    let lb = LbTopology::with_config(&TopoConfig::new(3).dual_stack())?;
    let mut web = Vec::new();
    for b in &lb.topo.backends {
        web.push(serve(b, &[80], false)?);
        serve(b, &[81, 82, 9000], false)?;
    }
    let a6 = |i: usize| format!("[{}]", lb.topo.backends[i].addr6.expect("dual stack"));
    let (rs1, rs2, rs3) = (a6(0), a6(1), a6(2));
    let vip = format!("[{}]", lb.topo.vip6.expect("dual stack"));
    let conf = format!(
        "checkinterval=1\nchecktimeout=2\nnegotiatetimeout=2\n\
         virtual6={vip}:80\n\treal6={rs1}:80 gate 1\n\treal6={rs2}:80 gate 2\n\treal6={rs3}:80 gate 3\n\
         \trequest=\"/\"\n\treceive=\"^rs\"\n\tquiescent=yes\n\
         virtual6={vip}:81\n\treal6={rs1}:81 gate\n\treal6={rs2}:81 gate\n\
         \tchecktype=connect\n\tcheckport=9000\n\tscheduler=rr\n\tpersistent=300\n\tnetmask=64\n\
         virtual6=1\n\treal6={rs1} gate\n\treal6={rs2} gate\n\tchecktype=connect\n\tcheckport=9000\n"
    );
    let vip6 = lb.topo.vip6.expect("dual stack").to_string();
    lb.lbctl_ok(&[
        "fwmark",
        "add",
        "-p",
        "tcp",
        "-d",
        &vip6,
        "--dport",
        "82",
        "--set-mark",
        "1",
    ])?;
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    let (s80, s81, sfwm) = (
        format!("TCP {vip}:80 wrr"),
        format!("TCP {vip}:81 rr persistent 300 mask 64"),
        "FWM 1 IPv6 wrr".to_string(),
    );
    let p = |a: &str, port: u16| format!("{a}:{port}");
    let (f1, f2) = (p(&rs1, 0), p(&rs2, 0));
    let (r80, r81) = (
        [p(&rs1, 80), p(&rs2, 80), p(&rs3, 80)],
        [p(&rs1, 81), p(&rs2, 81)],
    );
    let want = |w2: u32| {
        table(&[
            (&s80, &[(&r80[0], 1), (&r80[1], w2), (&r80[2], 3)]),
            (&s81, &[(&r81[0], 1), (&r81[1], 1)]),
            (&sfwm, &[(&f1, 1), (&f2, 1)]),
        ])
    };
    wait_table(&lb, &mut ld, &want(2), START)?;
    logged(
        &ld,
        &[
            format!("Added virtual server: {vip}:80"),
            format!("Added virtual server: {vip}:81"),
            format!("Restored real server: {rs3}:80 ({vip}:80) (Weight set to 3)"),
        ],
    )?;
    let gets = |port: u16, n: usize| -> Result<BTreeMap<String, usize>> {
        Ok(client::http_get_many(
            &lb.topo.client.ns,
            lb.topo.vip6_sock(port),
            n,
            client::DEFAULT_TIMEOUT,
        )?
        .into_iter()
        .collect())
    };
    let counts = gets(80, 30)?;
    ensure!(
        counts.len() == 3,
        "not every real gets IPv6 clients: {counts:?}"
    );
    // -M 64: one client's connections stay on one real.
    let counts = gets(81, 10)?;
    ensure!(counts.len() == 1, "persistence over a /64: {counts:?}");
    // The IPv6 fwmark service takes what the rule marks.
    let counts = gets(82, 10)?;
    ensure!(counts.len() == 2, "the IPv6 fwmark service: {counts:?}");

    // rs2's web server stops: its HTTP check fails, it is quiesced, new clients avoid it.
    web[1].kill()?;
    wait_table(&lb, &mut ld, &want(0), CHANGE)?;
    logged(
        &ld,
        &[format!(
            "Quiescent real server: {rs2}:80 ({vip}:80) (Weight set to 0)"
        )],
    )?;
    let counts = gets(80, 30)?;
    ensure!(
        !counts.contains_key("rs2") && counts.values().sum::<usize>() == 30,
        "a quiesced IPv6 real gets new clients: {counts:?}"
    );

    // rs2 recovers: its weight (2) is restored and it gets clients again.
    web[1] = serve(&lb.topo.backends[1], &[80], false)?;
    wait_table(&lb, &mut ld, &want(2), CHANGE)?;
    logged(
        &ld,
        &[format!(
            "Restored real server: {rs2}:80 ({vip}:80) (Weight set to 2)"
        )],
    )?;
    ensure!(gets(80, 30)?.contains_key("rs2"));

    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    ensure!(listing(&lb)?.is_empty(), "left behind: {:?}", listing(&lb)?);
    logged(&ld, &[format!("Purged virtual server (stop): {vip}:80")])?;
    no_failed_command(&ld)?;
    Ok(())
}

/// `fallback6=` under Debian's ldirectord (`quiescent=no`): failed IPv6 reals are deleted
/// (`-d -t [v6]:80 -r [v6]:80`); with none left the IPv6 fallback is added with weight 1 and
/// takes the IPv6 clients; the first real back is added again and the fallback deleted.
#[test]
fn ldirectord_ipv6_fallback6_comes_and_goes() -> Result<()> {
    if !require_ldirectord("ldirectord_ipv6_fallback6_comes_and_goes") {
        return Ok(());
    }
    let lb = LbTopology::with_config(&TopoConfig::new(3).dual_stack())?;
    let servers: Vec<NsChild> = lb
        .topo
        .backends
        .iter()
        .map(|b| serve(b, &[80], false))
        .collect::<Result<_>>()?;
    let a6 = |i: usize| format!("[{}]", lb.topo.backends[i].addr6.expect("dual stack"));
    let (rs1, rs2, rs3) = (a6(0), a6(1), a6(2));
    let vip = format!("[{}]", lb.topo.vip6.expect("dual stack"));
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=no\n\
         virtual6={vip}:80\n\treal6={rs1}:80 gate\n\treal6={rs2}:80 gate\n\
         \tfallback6={rs3}:80 gate\n\tchecktype=connect\n\tscheduler=rr\n"
    );
    let svc = format!("TCP {vip}:80 rr");
    let only = |reals: &[&str]| {
        let reals: Vec<(String, u32)> = reals.iter().map(|a| (format!("{a}:80"), 1)).collect();
        let reals: Vec<(&str, u32)> = reals.iter().map(|(a, w)| (a.as_str(), *w)).collect();
        table(&[(&svc, &reals)])
    };
    let gets = |n: usize| -> Result<BTreeMap<String, usize>> {
        Ok(client::http_get_many(
            &lb.topo.client.ns,
            lb.topo.vip6_sock(80),
            n,
            client::DEFAULT_TIMEOUT,
        )?
        .into_iter()
        .collect())
    };
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    wait_table(&lb, &mut ld, &only(&[&rs1, &rs2]), START)?;

    servers[0].kill()?;
    servers[1].kill()?;
    wait_table(&lb, &mut ld, &only(&[&rs3]), CHANGE)?;
    logged(
        &ld,
        &[
            format!("Deleted real server: {rs1}:80 ({vip}:80)"),
            format!("Added fallback server: {rs3}:80 ({vip}:80) (Weight set to 1)"),
        ],
    )?;
    ensure!(gets(10)? == BTreeMap::from([("rs3".to_string(), 10)]));

    serve(&lb.topo.backends[0], &[80], false)?;
    wait_table(&lb, &mut ld, &only(&[&rs1]), CHANGE)?;
    logged(
        &ld,
        &[
            format!("Added real server: {rs1}:80 ({vip}:80) (Weight set to 1)"),
            format!("Deleted fallback server: {rs3}:80 ({vip}:80)"),
        ],
    )?;
    ensure!(gets(10)? == BTreeMap::from([("rs1".to_string(), 10)]));
    let st = ld.stop()?;
    ensure!(st.success(), "ldirectord's exit {st}; log:\n{}", ld.log());
    ensure!(listing(&lb)?.is_empty(), "left behind: {:?}", listing(&lb)?);
    no_failed_command(&ld)?;
    Ok(())
}

//! End to end: Debian's real ldirectord, unmodified, drives lbctl in ipvsadm's place with
//! `gate`, `masq` and `ipip` reals in one virtual service (`lb_tests::ldirectord`, on the
//! topology of the forwarding methods, `lb_tests::topo_methods`: a direct-routing real on
//! the client's segment, a NAT real behind the two-armed director, a tunnelled real behind
//! the router running the decapsulator), with real TCP through them.
//!
//! ldirectord issues `-a -t VIP:80 -r RIP:PORT -g|-m|-i -w W`, reads `-L -n` back (the
//! Forward column `Route`/`Masq`/`Tunnel` tells it the method of each real), quiesces a real
//! whose check fails with `-e ... -m -w 0` (the method kept) and restores it; a `masq` real
//! without a port (`real=RIP masq`) is `RIP:0`, the service's port. Its checks connect to
//! each real's own address from the director (routed: on link, via the inside interface,
//! via the router).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::client::{self, HoldConn, Outcome};
use lb_tests::lb::wait_for;
use lb_tests::ldirectord::{Ldirectord, require_ldirectord};
use lb_tests::methods::MethodsLb;
use lb_tests::netns::NsChild;
use lb_tests::topo::{Node, is_listening};
use lb_tests::topo_methods::{MethodsConfig, vip};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
/// ldirectord's start: perl loads its modules, installs the table, runs the first checks.
const START: Duration = Duration::from_secs(20);
/// One change: checkinterval + checktimeout, with room for a loaded 2-CPU machine.
const CHANGE: Duration = Duration::from_secs(10);

/// `lbctl -L -n`: every service line (whitespace collapsed) with its reals' `(Forward,
/// Weight)`.
type Listing = BTreeMap<String, BTreeMap<String, (String, u32)>>;

fn listing(lb: &MethodsLb) -> Result<Listing> {
    let text = lb.lbctl_ok(&["-L", "-n"])?;
    let mut out = Listing::new();
    let mut service: Option<String> = None;
    for line in text.lines().skip(3) {
        if let Some(real) = line.strip_prefix("  -> ") {
            let f: Vec<&str> = real.split_whitespace().collect();
            let (Some(svc), [addr, fwd, weight, ..]) = (&service, &f[..]) else {
                bail!("bad real line {line:?} in:\n{text}");
            };
            out.entry(svc.clone())
                .or_default()
                .insert(addr.to_string(), (fwd.to_string(), weight.parse()?));
        } else {
            let svc = line.split_whitespace().collect::<Vec<_>>().join(" ");
            out.insert(svc.clone(), BTreeMap::new());
            service = Some(svc);
        }
    }
    Ok(out)
}

fn wait_table(lb: &MethodsLb, ld: &mut Ldirectord, want: &Listing, limit: Duration) -> Result<()> {
    let mut last = Listing::new();
    wait_for(&format!("the table {want:?}"), limit, || {
        ld.running()?;
        last = listing(lb)?;
        Ok((&last == want).then_some(()))
    })
    .with_context(|| format!("the table is {last:?}; ldirectord's log:\n{}", ld.log()))
}

/// lb-testsrv on `ports` in `node`, answering with its name.
fn serve(node: &Node, ports: &[u16]) -> Result<NsChild> {
    let listen: Vec<String> = ports.iter().map(|p| format!("[::]:{p}")).collect();
    let mut argv = vec![SRV, "--name", node.name.as_str()];
    for l in &listen {
        argv.extend(["--listen", l.as_str()]);
    }
    let child = node.ns.spawn(&argv)?;
    for &p in ports {
        wait_for(
            &format!("{} listens on {p}", node.name),
            Duration::from_secs(10),
            || Ok(is_listening(&node.ns, p, false)?.then_some(())),
        )?;
    }
    Ok(child)
}

/// One virtual with a `gate`, a `masq` (port 8080) and an `ipip` real, checked on port 9000,
/// `quiescent=yes`; and a virtual on port 8080 with `real=RIP masq` (no port; checked on 8080, the port it stands for). Start
/// installs both with each real's method; traffic reaches all three methods; the masq real's
/// check fails: quiesced as `Masq` (weight 0), a connection it holds keeps working, new ones
/// go to the others; it recovers; ldirectord's stop removes everything.
#[test]
fn ldirectord_drives_gate_masq_and_ipip_reals() -> Result<()> {
    if !require_ldirectord("ldirectord_drives_gate_masq_and_ipip_reals") {
        return Ok(());
    }
    let lb = MethodsLb::new(&MethodsConfig::new(1, 1, 1))?;
    let (dr, nat, tun) = (&lb.topo.dr[0], &lb.topo.nat[0], &lb.topo.tun[0]);
    serve(dr, &[80])?;
    serve(tun, &[80])?;
    serve(nat, &[8080])?;
    let mut health = Vec::new();
    for n in [dr, nat, tun] {
        health.push(serve(n, &[9000])?);
    }
    let v = vip(0);
    let (d, m, t) = (dr.addr, nat.addr, tun.addr);
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\n\
         virtual={v}:80\n\treal={d}:80 gate 1\n\treal={m}:8080 masq 1\n\treal={t}:80 ipip 1\n\
         \tchecktype=connect\n\tcheckport=9000\n\tquiescent=yes\n\tscheduler=rr\n\
         virtual={v}:8080\n\treal={m} masq\n\tchecktype=connect\n\tcheckport=8080\n\tscheduler=rr\n"
    );
    let mut ld = Ldirectord::start(&lb.topo.lb.ns, lb.pins.path(), &conf)?;
    let table = |w_nat: u32| -> Listing {
        let row = |a: String, f: &str, w: u32| (a, (f.to_string(), w));
        BTreeMap::from([
            (
                format!("TCP {v}:80 rr"),
                BTreeMap::from([
                    row(format!("{d}:80"), "Route", 1),
                    row(format!("{m}:8080"), "Masq", w_nat),
                    row(format!("{t}:80"), "Tunnel", 1),
                ]),
            ),
            (
                format!("TCP {v}:8080 rr"),
                BTreeMap::from([row(format!("{m}:0"), "Masq", 1)]),
            ),
        ])
    };
    wait_table(&lb, &mut ld, &table(1), START)?;
    let svc = lb.topo.vip_sock(false, 0, 80);
    let counts = lb.gets(svc, 30)?;
    ensure!(
        ["dr1", "nat1", "tun1"]
            .iter()
            .all(|n| counts.get(*n).is_some_and(|c| *c >= 5)),
        "every method gets clients: {counts:?}"
    );
    ensure!(lb.get(lb.topo.vip_sock(false, 0, 8080))? == "nat1", "RIP:0");

    // nat1's check fails: quiesced, its method kept; a held connection to it goes on.
    let mut held = None;
    for _ in 0..12 {
        let c = HoldConn::open(&lb.topo.client.ns, svc, client::DEFAULT_TIMEOUT)?;
        if c.backend() == "nat1" {
            held = Some(c);
            break;
        }
        c.close()?;
    }
    let mut held = held.context("no held connection reached nat1")?;
    health[1].kill()?;
    wait_table(&lb, &mut ld, &table(0), CHANGE)?;
    let counts = lb.gets(svc, 12)?;
    ensure!(
        !counts.contains_key("nat1"),
        "quiesced nat1 got clients: {counts:?}"
    );
    let a = held.ask(client::DEFAULT_TIMEOUT);
    ensure!(a == Outcome::Answered("nat1".into()), "held on nat1: {a}");
    held.close()?;
    health[1] = serve(nat, &[9000])?;
    wait_table(&lb, &mut ld, &table(1), CHANGE)?;

    let log = ld.log();
    ensure!(
        !log.contains(") failed") && !log.contains("Unknown line read from ipvsadm"),
        "ldirectord saw a failure:\n{log}"
    );
    for want in [
        format!("-r {m}:8080 -m"),
        format!("-r {t}:80 -i"),
        format!("-r {m}:0 -m"),
    ] {
        ensure!(log.contains(&want), "{want:?} not run:\n{log}");
    }
    ld.stop()?;
    let left = lb.lbctl_ok(&["-L", "-n"])?;
    ensure!(left.lines().count() == 3, "left after the stop:\n{left}");
    Ok(())
}

//! End to end: lbctl's tools beyond IPVS (`drain`, `whereis`) and the real
//! servers' thresholds (`-x`/`-y`), with real TCP from the client's namespace
//! through the XDP load balancer, driven by the real `lbctl` binary.
//!
//! Each test builds its own topology (unique namespaces, private pin
//! directory), so they run in parallel.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::client::{self, HoldConn, Outcome};
use lb_tests::lb::{LbTopology, real_line, wait_for};
use lb_tests::require_root;

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
/// Per-request timeout.
const T: Duration = client::DEFAULT_TIMEOUT;
/// How long a drain may take to see a closed connection (bounds a wait
/// that must end; never a timing assertion).
const SEE: Duration = Duration::from_secs(30);

/// The address of the real server that answers with `name` (`rs1`, ...).
fn addr_of(lb: &LbTopology, name: &str) -> Result<Ipv4Addr> {
    Ok(lb
        .topo
        .backend_named(name)
        .with_context(|| format!("no real server called {name:?}"))?
        .addr)
}

/// The name of the real server at `addr`.
fn name_of(lb: &LbTopology, addr: &str) -> Result<String> {
    let addr: Ipv4Addr = addr
        .split(':')
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("not an address: {addr}"))?;
    lb.topo
        .backends
        .iter()
        .find(|b| b.addr == addr)
        .map(|b| b.name.clone())
        .with_context(|| format!("no real server at {addr}"))
}

/// `lbctl ARGS` started in the LB's namespace, its output piped (not a
/// terminal: plain progress lines).
fn spawn_lbctl(lb: &LbTopology, args: &[&str]) -> Result<Child> {
    let mut cmd = lb.topo.lb.ns.nsenter_cmd(lb.lbctl_bin());
    cmd.args(args)
        .env("LB_PIN_PATH", lb.pins.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().context("spawning lbctl")
}

/// Waits for `child` (at most [`SEE`]); kills it if it does not end.
fn finish(mut child: Child) -> Result<Output> {
    let ended = wait_for("lbctl drain to end", SEE, || Ok(child.try_wait()?));
    if ended.is_err() {
        let _ = child.kill();
    }
    ended?;
    Ok(child.wait_with_output()?)
}

/// `-A -t VIP:80 SCHED...` and one `-a` per real server with weight 1.
fn service(lb: &LbTopology, sched: &[&str]) -> Result<String> {
    let vip = format!("{}:80", lb.topo.vip);
    let mut args = vec!["-A", "-t", &vip];
    args.extend_from_slice(sched);
    lb.lbctl_ok(&args)?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &b.addr.to_string(), "-w", "1"])?;
    }
    Ok(vip)
}

/// `lbctl -S -n` (to check that a refused command changed nothing).
fn saved(lb: &LbTopology) -> Result<String> {
    lb.lbctl_ok(&["-S", "-n"])
}

#[test]
fn drain_waits_for_the_connections_then_removes_the_real() -> Result<()> {
    if !require_root("drain_waits_for_the_connections_then_removes_the_real") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = service(&lb, &["-s", "wrr"])?;
    let ns = &lb.topo.client.ns;
    let sock = lb.topo.vip_sock(80);
    let mut held = HoldConn::open(ns, sock, T)?;
    let x = held.backend().to_owned();
    let x_addr = addr_of(&lb, &x)?.to_string();
    let x_real = format!("{x_addr}:80");

    // Bad input: ipvsadm's errors, and nothing changes.
    let before = saved(&lb)?;
    for (args, msg) in [
        (
            vec!["drain", "-t", "203.0.113.99:80", "-r", &x_addr],
            "no such service",
        ),
        (vec!["drain", "-u", &vip, "-r", &x_addr], "no such service"),
        (
            vec!["drain", "-t", &vip, "-r", "198.51.100.99"],
            "no such destination",
        ),
    ] {
        let o = lb.lbctl(&args)?;
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(o.status.code() == Some(1), "{args:?}: {o:?}");
        ensure!(err.contains(msg), "{args:?}: {err}");
    }
    ensure!(saved(&lb)? == before, "a refused drain changed the table");

    // A timeout: exit 3, the real stays at weight 0, its connection is served.
    let o = lb.lbctl(&["drain", "-t", &vip, "-r", &x_addr, "--timeout", "1"])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(o.status.code() == Some(3), "{o:?}");
    ensure!(
        err.contains("timed out after") && err.contains("1 active connection"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    ensure!(
        out.starts_with(&format!(
            "draining {x_real}: 1 active connection left, 0 s\n"
        )),
        "{out}"
    );
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    let line = real_line(&listing, &x_real).context(listing.clone())?;
    ensure!(line[2..5] == ["Route", "0", "1"], "{listing}");
    assert_eq!(held.ask(T), Outcome::Answered(x.clone()));
    // Quiesced: new connections go elsewhere.
    let counts = client::http_get_many(ns, sock, 6, T)?;
    ensure!(
        !counts.contains_key(&x),
        "{x} got new connections: {counts:?}"
    );

    // The drain waits while the connection is open...
    let child = spawn_lbctl(&lb, &["drain", "-t", &vip, "-r", &x_addr, "--remove"])?;
    std::thread::sleep(Duration::from_secs(2));
    let mut child = child;
    ensure!(
        child.try_wait()?.is_none(),
        "drain ended with a connection still open"
    );
    assert_eq!(held.ask(T), Outcome::Answered(x.clone()));
    // ...and ends once it is closed (FIN: the entry is no longer active),
    // removing the real.
    held.close()?;
    let o = finish(child)?;
    let out = String::from_utf8_lossy(&o.stdout);
    ensure!(o.status.success(), "{o:?}");
    ensure!(
        out.lines().next() == Some(&format!("draining {x_real}: 1 active connection left, 0 s")),
        "{out}"
    );
    ensure!(
        out.lines()
            .any(|l| l.starts_with(&format!("draining {x_real}: 0 active connections left"))),
        "{out}"
    );
    ensure!(
        out.lines().last().is_some_and(
            |l| l.starts_with(&format!("drained {x_real} in ")) && l.ends_with("; removed")
        ),
        "{out}"
    );
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    ensure!(real_line(&listing, &x_real).is_none(), "{listing}");
    Ok(())
}

#[test]
fn drain_with_inactive_waits_for_closing_connections_too() -> Result<()> {
    if !require_root("drain_with_inactive_waits_for_closing_connections_too") {
        return Ok(());
    }
    let mut lb = LbTopology::new(1)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = service(&lb, &["-s", "rr"])?;
    let ns = &lb.topo.client.ns;
    let held = HoldConn::open(ns, lb.topo.vip_sock(80), T)?;
    let x_addr = addr_of(&lb, held.backend())?.to_string();
    held.close()?;
    // The closed connection's entry stays (FIN_WAIT): inactive, not active.
    wait_for("the entry to leave the active state", SEE, || {
        let l = lb.lbctl_ok(&["-L", "-n"])?;
        Ok(real_line(&l, &format!("{x_addr}:80")).filter(|f| f[4] == "0" && f[5] == "1"))
    })?;
    let o = lb.lbctl(&[
        "drain",
        "-t",
        &vip,
        "-r",
        &x_addr,
        "--inactive",
        "--timeout",
        "0",
    ])?;
    ensure!(o.status.code() == Some(3), "{o:?}");
    ensure!(
        String::from_utf8_lossy(&o.stderr).contains("0 active and 1 inactive connection"),
        "{o:?}"
    );
    let o = lb.lbctl(&["drain", "-t", &vip, "-r", &x_addr, "--timeout", "0"])?;
    ensure!(o.status.success(), "{o:?}");
    // Drained, not removed: still listed, at weight 0.
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    let line = real_line(&listing, &format!("{x_addr}:80")).context(listing.clone())?;
    ensure!(line[3] == "0", "{listing}");
    Ok(())
}

/// `lbctl whereis -t VIP:80 CLIENT`'s lines, as `key=value` maps.
fn whereis(lb: &LbTopology, vip: &str, client: &str) -> Result<Vec<Vec<(String, String)>>> {
    let out = lb.lbctl_ok(&["whereis", "-t", vip, client])?;
    out.lines()
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    w.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .with_context(|| format!("not key=value: {w:?} in {out:?}"))
                })
                .collect()
        })
        .collect()
}

fn get<'a>(line: &'a [(String, String)], key: &str) -> Option<&'a str> {
    line.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The one answer of a `whereis` that does not depend on the CPU: (real
/// server's name, `by`).
fn only(lb: &LbTopology, answer: &[Vec<(String, String)>]) -> Result<(String, String)> {
    let [line] = answer else {
        bail!("not one answer: {answer:?}");
    };
    ensure!(get(line, "cpu").is_none(), "{answer:?}");
    let real = get(line, "real").context("no real")?;
    Ok((
        name_of(lb, real)?,
        get(line, "by").unwrap_or_default().to_owned(),
    ))
}

#[test]
fn whereis_agrees_with_where_the_next_connection_goes() -> Result<()> {
    if !require_root("whereis_agrees_with_where_the_next_connection_goes") {
        return Ok(());
    }
    let mut lb = LbTopology::new(4)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let ns = &lb.topo.client.ns;
    let sock = lb.topo.vip_sock(80);
    let client = lb.topo.client.addr;

    // sh: the client's bucket, whatever its port.
    let vip = service(&lb, &["-s", "sh"])?;
    let said = only(&lb, &whereis(&lb, &vip, &client.to_string())?)?;
    ensure!(said.1 == "sh", "{said:?}");
    let went = client::http_get(ns, sock, T)?;
    ensure!(
        went == said.0,
        "whereis said {said:?}, the connection went to {went}"
    );
    // Nothing changed: the same answer again.
    ensure!(only(&lb, &whereis(&lb, &vip, &client.to_string())?)? == said);

    // mh with mh-port: the client's port decides; it must be given.
    lb.lbctl_ok(&["-E", "-t", &vip, "-s", "mh", "-b", "mh-port"])?;
    let o = lb.lbctl(&["whereis", "-t", &vip, &client.to_string()])?;
    ensure!(
        String::from_utf8_lossy(&o.stderr).contains("give the client as ADDRESS:PORT"),
        "{o:?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for port in 40_000..40_012u16 {
        let said = only(&lb, &whereis(&lb, &vip, &format!("{client}:{port}"))?)?;
        ensure!(said.1 == "mh", "{said:?}");
        let local = SocketAddrV4::new(client, port);
        let went = match client::http_try_from(ns, local, sock, T)? {
            Outcome::Answered(name) => name,
            other => bail!("from port {port}: {other}"),
        };
        ensure!(
            went == said.0,
            "port {port}: whereis said {said:?}, went to {went}"
        );
        seen.insert(went);
    }
    ensure!(
        seen.len() > 1,
        "twelve ports all hashed to one real: {seen:?}"
    );

    // rr: the next in rotation, per CPU; the next connection goes to one of them.
    lb.lbctl_ok(&["-E", "-t", &vip, "-s", "rr"])?;
    let answer = whereis(&lb, &vip, &client.to_string())?;
    ensure!(
        answer.iter().all(|l| get(l, "cpu").is_some()
            && get(l, "by") == Some("rr")
            && get(l, "next") == Some("yes")),
        "{answer:?}"
    );
    // Asking turns no rotation: the same answer again.
    ensure!(whereis(&lb, &vip, &client.to_string())? == answer);
    let mut nexts = Vec::new();
    for l in &answer {
        nexts.push(name_of(&lb, get(l, "real").context("no real")?)?);
    }
    let went = client::http_get(ns, sock, T)?;
    ensure!(
        nexts.contains(&went),
        "next in rotation {nexts:?}, went to {went}"
    );

    // Persistent: no template yet, then the template the connection made.
    lb.lbctl_ok(&["-E", "-t", &vip, "-s", "wrr", "-p", "300"])?;
    let answer = whereis(&lb, &vip, &client.to_string())?;
    ensure!(
        answer.iter().all(|l| get(l, "template") == Some("none")),
        "{answer:?}"
    );
    let went = client::http_get(ns, sock, T)?;
    let said = only(&lb, &whereis(&lb, &vip, &client.to_string())?)?;
    ensure!(
        said == (went.clone(), "template".to_owned()),
        "{said:?} vs {went}"
    );
    // Another port of the same client: the template still decides.
    let said = only(&lb, &whereis(&lb, &vip, &format!("{client}:50000"))?)?;
    ensure!(said.0 == went, "{said:?}");
    ensure!(client::http_get(ns, sock, T)? == went);
    // Its real removed: the template is invalid, the scheduler decides.
    let went_addr = addr_of(&lb, &went)?.to_string();
    lb.lbctl_ok(&["-d", "-t", &vip, "-r", &went_addr])?;
    let answer = whereis(&lb, &vip, &client.to_string())?;
    ensure!(
        answer.iter().all(|l| get(l, "template") == Some("invalid")
            && get(l, "real") != Some(&format!("{went_addr}:80"))),
        "{answer:?}"
    );

    // Bad input: ipvsadm's errors.
    let o = lb.lbctl(&["whereis", "-t", "203.0.113.99:80", "192.0.2.1"])?;
    ensure!(o.status.code() == Some(1), "{o:?}");
    ensure!(
        String::from_utf8_lossy(&o.stderr).contains("no such service"),
        "{o:?}"
    );
    Ok(())
}

#[test]
fn thresholds_are_listed_saved_and_restored() -> Result<()> {
    if !require_root("thresholds_are_listed_saved_and_restored") {
        return Ok(());
    }
    let lb = LbTopology::new(2)?;
    let vip = format!("{}:80", lb.topo.vip);
    let (r1, r2) = (
        lb.topo.backends[0].addr.to_string(),
        lb.topo.backends[1].addr.to_string(),
    );
    lb.lbctl_ok(&["-A", "-t", &vip, "-s", "wrr"])?;
    lb.lbctl_ok(&[
        "-a", "-t", &vip, "-r", &r1, "-w", "2", "-x", "100", "-y", "50",
    ])?;
    // ldirectord's `-x 0 -y 0`: accepted, no thresholds.
    lb.lbctl_ok(&[
        "-a", "-t", &vip, "-x", "0", "-y", "0", "-r", &r2, "-g", "-w", "1",
    ])?;
    let listing = lb.lbctl_ok(&["-L", "-n", "--thresholds"])?;
    let expected = format!(
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n\
         \x20 -> RemoteAddress:Port\n\
         TCP  {vip} wrr\n\
         \x20 -> {:<28} 100        50         0          0         \n\
         \x20 -> {:<28} 0          0          0          0         \n",
        format!("{r1}:80"),
        format!("{r2}:80"),
    );
    ensure!(
        listing.ends_with(&expected),
        "{listing}\nexpected:\n{expected}"
    );
    let rules = saved(&lb)?;
    ensure!(
        rules
            == format!(
                "-A -t {vip} -s wrr\n-a -t {vip} -r {r1}:80 -g -w 2 -x 100 -y 50\n\
             -a -t {vip} -r {r2}:80 -g -w 1\n"
            ),
        "{rules}"
    );

    // The kernel's refusal of a lower threshold above the upper one; nothing changes.
    for args in [
        vec!["-e", "-t", &vip, "-r", &r1, "-x", "5", "-y", "10"],
        vec!["-e", "-t", &vip, "-r", &r1, "-y", "1"],
    ] {
        let o = lb.lbctl(&args)?;
        let err = String::from_utf8_lossy(&o.stderr);
        // ipvsadm prints strerror(ERANGE) and exits 255.
        ensure!(o.status.code() == Some(255), "{args:?}: {o:?}");
        ensure!(err == "Numerical result out of range\n", "{err}");
    }
    let o = lb.lbctl(&["-e", "-t", &vip, "-r", &r1, "-x", "2147483648"])?;
    ensure!(o.status.code() == Some(2), "{o:?}");
    ensure!(
        String::from_utf8_lossy(&o.stderr).contains("illegal u_threshold specified"),
        "{o:?}"
    );
    ensure!(saved(&lb)? == rules, "a refused -e changed the table");

    // Cleared and restored from the saved rules.
    lb.lbctl_ok(&["-C"])?;
    let o = lb.lbctl_stdin(&["-R"], Some(&rules))?;
    ensure!(o.status.success(), "{o:?}");
    ensure!(
        lb.lbctl_ok(&["-L", "-n", "--thresholds"])?
            .ends_with(&expected)
    );

    // -e without -x/-y clears them, as ipvsadm (which sends 0).
    lb.lbctl_ok(&["-e", "-t", &vip, "-r", &r1, "-w", "2"])?;
    let listing = lb.lbctl_ok(&["-L", "-n", "--thresholds"])?;
    let line = real_line(&listing, &format!("{r1}:80")).context(listing.clone())?;
    ensure!(line[2..4] == ["0", "0"], "{listing}");
    Ok(())
}

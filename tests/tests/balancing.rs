//! End to end: real TCP through the XDP load balancer (direct routing) in
//! namespaces, driven with lbctl as an ipvsadm user would.

use std::path::Path;

use anyhow::Result;
use lb_tests::{client, lb::LbTopology, require_root};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");

/// The service line and real lines of `-L -n --stats`, as (Conns, InPkts)
/// by address:port.
fn stats_conns(listing: &str) -> Vec<(String, u64, u64)> {
    listing
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, rest) = match f.first()? {
                &"TCP" | &"UDP" => (f.get(1)?, &f[2..]),
                &"->" => (f.get(1)?, &f[2..]),
                _ => return None,
            };
            Some((
                addr.to_string(),
                rest.first()?.parse().ok()?,
                rest.get(1)?.parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn weights_give_proportional_shares_and_stats_count_them() -> Result<()> {
    if !require_root("weights_give_proportional_shares_and_stats_count_them") {
        return Ok(());
    }
    let mut lb = LbTopology::new(3)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = format!("{}:80", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-t", &vip, "-s", "wrr"])?;
    for (i, w) in [(0, "1"), (1, "2"), (2, "3")] {
        let rs = lb.topo.backends[i].addr.to_string();
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &rs, "-w", w])?;
    }
    let counts = client::http_get_many(
        &lb.topo.client.ns,
        lb.topo.vip_sock(80),
        300,
        client::DEFAULT_TIMEOUT,
    )?;
    let share = |n: &str| counts.get(n).copied().unwrap_or(0) as i64;
    assert_eq!(
        share("rs1") + share("rs2") + share("rs3"),
        300,
        "{counts:?}"
    );
    // Each CPU runs the kernel's wrr on its own: exact per CPU, so within a
    // couple of picks of 1:2:3 overall.
    assert!((share("rs1") - 50).abs() <= 4, "{counts:?}");
    assert!((share("rs2") - 100).abs() <= 4, "{counts:?}");
    assert!((share("rs3") - 150).abs() <= 4, "{counts:?}");

    // --stats counts what was sent: one conn per request, per real server.
    let listing = lb.lbctl_ok(&["-L", "-n", "--stats"])?;
    let rows = stats_conns(&listing);
    let row = |a: &str| rows.iter().find(|r| r.0 == a).cloned();
    assert_eq!(row(&vip).map(|r| r.1), Some(300), "{listing}");
    for (i, name) in ["rs1", "rs2", "rs3"].iter().enumerate() {
        let addr = format!("{}:80", lb.topo.backends[i].addr);
        let r = row(&addr).unwrap_or_else(|| panic!("{addr} missing: {listing}"));
        assert_eq!(r.1 as i64, share(name), "{listing}");
        assert!(r.2 >= 3 * r.1, "at least SYN, ACK, FIN per conn: {listing}");
    }

    // `lbctl counters`: every new connection was scheduled by the program.
    let counters = lb.lbctl_ok(&["counters"])?;
    let count = |name: &str| -> Option<u64> {
        counters
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    };
    assert_eq!(count("fwd_new"), Some(300), "{counters}");
    assert!(count("fwd_conn").unwrap_or(0) >= 600, "{counters}");
    Ok(())
}

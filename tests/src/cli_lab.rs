//! What the command-line suites against a loaded program share (`lbctl_e2e`,
//! `ipv6_cli`, `tunnel_cli`): a director whose link carries both families,
//! and the small helpers to run lbctl and compare its output.

use anyhow::{Context as _, Result, ensure};

use crate::{lb::LbTopology, netns::format_mac, topo::TopoConfig};

/// The director's IPv6 address on the real servers' link.
pub const LB_V6: &str = "2001:db8:0:1::1";
/// The real servers' IPv6 addresses (rs1, rs2), on the director's link.
pub const RS_V6: [&str; 2] = ["2001:db8:0:1::11", "2001:db8:0:1::12"];

/// The topology with IPv6 on, the director given [`LB_V6`]/64 and permanent neighbour
/// entries for [`RS_V6`] (the real servers' MACs): every real server is on the director's
/// link, of either family. `extra` is more `ip -batch` lines for the director.
pub fn dual_stack_lab(extra: &str) -> Result<LbTopology> {
    let lb = LbTopology::with_config(&TopoConfig::new(2).with_ipv6())?;
    let mut batch = format!("addr add {LB_V6}/64 dev eth0 nodad\n");
    for (rs, addr) in lb.topo.backends.iter().zip(RS_V6) {
        batch.push_str(&format!(
            "neigh replace {addr} lladdr {} dev eth0 nud permanent\n",
            format_mac(&rs.mac)
        ));
    }
    batch.push_str(extra);
    lb.topo.lb.ns.ip_batch(&batch)?;
    Ok(lb)
}

/// `text` without its comment lines: what `-S` prints of a saved file
/// (the init script's `# ipvsadm.rules` heading is not `-S` output).
pub fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `lbctl ARGS`: (stdout, stderr, exit status).
pub fn run(lb: &LbTopology, args: &[&str]) -> Result<(String, String, i32)> {
    let o = lb.lbctl(args)?;
    Ok((
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().context("killed by a signal")?,
    ))
}

/// `lbctl -R` of `rules`, which must succeed silently.
pub fn restore(lb: &LbTopology, rules: &str) -> Result<()> {
    let o = lb.lbctl_stdin(&["-R"], Some(rules))?;
    ensure!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "-R: {} {:?}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

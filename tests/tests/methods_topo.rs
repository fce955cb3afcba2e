//! Self-check of the topology of the forwarding methods (`lb_tests::topo_methods`, needs
//! root): with the load balancer attached on the director's interfaces but no service, plain
//! routing reaches every real's own address from the client over both families (through the
//! director's kernel for the NAT reals, through the router for the tunnelled ones), and a
//! direct-routing service on the same topology answers over both families. Dropping the
//! topology deletes every namespace.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use lb_tests::methods::{MethodsLb, route_mtu};
use lb_tests::require_root;
use lb_tests::topo_methods::{MethodsConfig, twin6};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");

#[test]
fn methods_topology_routes_every_namespace_and_direct_routing_works() -> Result<()> {
    if !require_root("methods_topology_routes_every_namespace_and_direct_routing_works") {
        return Ok(());
    }
    let mut lb = MethodsLb::build(&MethodsConfig::new(1, 2, 2).remote_mtu(1400), false)?;
    lb.serve_all(Path::new(SRV), 80)?;
    let names: Vec<String> = lb.topo.reals().map(|n| n.name.clone()).collect();
    assert_eq!(names, ["dr1", "nat1", "nat2", "tun1", "tun2"]);
    for n in lb.topo.reals() {
        for addr in [
            SocketAddr::new(n.addr.into(), 80),
            SocketAddr::new(twin6(n.addr).into(), 80),
        ] {
            assert_eq!(lb.get(addr)?, n.name, "plain routing to {addr}");
        }
    }
    // The remote segment's MTU, and the director's route to it.
    let tun1 = lb.topo.tun[0].addr;
    assert_eq!(route_mtu(&lb.topo.lb.ns, tun1.into())?, Some(1400));
    assert_eq!(route_mtu(&lb.topo.lb.ns, twin6(tun1).into())?, Some(1400));
    // Direct routing to dr1 over both families.
    for v6 in [false, true] {
        let vip = lb.topo.vip_sock(v6, 0, 80).to_string();
        let rip = lb.topo.real_ip("dr1", v6)?;
        let rip = SocketAddr::new(rip, 80).to_string();
        lb.lbctl_ok(&["-A", "-t", &vip, "-s", "rr"])?;
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &rip, "-g"])?;
        let counts = lb.gets(lb.topo.vip_sock(v6, 0, 80), 3)?;
        assert_eq!(counts.get("dr1"), Some(&3), "{counts:?}");
    }
    let mut ns_names: Vec<String> = lb.topo.reals().map(|n| n.ns.name().to_owned()).collect();
    ns_names.push(lb.topo.switch.name().to_owned());
    drop(lb);
    let out = Command::new("ip").args(["netns", "list"]).output()?;
    let listed = String::from_utf8_lossy(&out.stdout);
    for n in ns_names {
        assert!(!listed.contains(&n), "{n} left behind");
    }
    Ok(())
}

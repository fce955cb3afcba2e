//! A topology for the three forwarding methods (LVS `-g`, `-i`, `-m`) side by side, dual
//! stack, for `tests/tunnel_e2e.rs`, `tests/nat_e2e.rs` and the ldirectord suite of the
//! methods.
//!
//! ```text
//!                         switch namespace: bridges br0 (outside), br1 (inside), br2 (remote)
//!
//!  outside br0  198.51.100.0/24, 2001:db8::/64
//!    client eth0 .10/::10    director eth0 .2/::2    router eth0 .1/::1    dr1.. eth0 .11/::11..
//!
//!  inside br1   192.0.2.0/25, 2001:db8:0:1::/64       (only with NAT reals)
//!    director eth1 192.0.2.1/2001:db8:0:1::1          nat1.. eth0 192.0.2.11../2001:db8:0:1::11..
//!                                                     (default routes via the director)
//!
//!  remote br2   192.0.2.128/25, 2001:db8:0:2::/64     (only with tunnelled reals)
//!    router eth1 192.0.2.129/2001:db8:0:2::129        tun1.. eth0 192.0.2.131../2001:db8:0:2::131..
//!                                                     (default routes via the router)
//! ```
//!
//! - The client routes the VIPs' networks (203.0.113.0/24, 2001:db8:0:ff::/64) via the
//!   director, whose MAC it knows without asking (a permanent neighbour entry for the
//!   director's IPv6 address; the IPv4 one is resolved by ARP), the inside network via the
//!   director and the remote network via the router (so that plain routing between every
//!   namespace can be checked). TX checksum offload is off on every `eth0` whose frames go
//!   through XDP (the client's, and the NAT reals', whose replies the director rewrites).
//! - The director does not hold the VIPs. Its XDP program is attached (by
//!   [`MethodsLb`](crate::methods::MethodsLb)) to `eth0` and, with NAT reals, `eth1`; their
//!   bridge ports get a pass-through XDP program (a veth drops `XDP_TX` and redirected frames
//!   unless its peer runs XDP, see [`crate::topo::DrTopology::lb_peer`]). It forwards (IPv4 and
//!   IPv6: `bpf_fib_lookup` answers only forwarding interfaces) and routes the remote
//!   network via the router, with the route MTU [`MethodsConfig::remote_mtu`] when set. Its
//!   neighbour tables hold permanent entries for the router, the client and every real.
//! - Direct-routing reals (`dr1`, ...) are on the outside segment and hold the VIPs on `lo`
//!   (`arp_ignore=1`, `arp_announce=2`), as in [`crate::topo`].
//! - NAT reals (`nat1`, ...) are on the inside segment, hold no VIP and route everything via
//!   the director: their replies come back through it.
//! - Tunnelled reals (`tun1`, ...) are behind the router, not on any segment of the director;
//!   they hold the VIPs on `lo` (with the ARP sysctls, as the README says) and route
//!   everything via the router, so their replies go to the client directly. The decapsulator
//!   is attached by [`MethodsLb`](crate::methods::MethodsLb) (`lbctl decap attach eth0`).
//!   [`MethodsConfig::remote_mtu`] sets the MTU of the whole remote segment (the router's
//!   `eth1`, the reals' `eth0`, the bridge and its ports) and of the director's route to it.
//! - The router forwards both families, with `rp_filter` off (the reals' answers come from the
//!   VIPs, for which it has no route).
//!
//! Every real server holds [`VIPS`] VIPs of each family: 203.0.113.10, .11, ... and
//! 2001:db8:0:ff::10, ::11, ... (distinct VIPs keep per-destination state of the client, e.g.
//! its path MTU cache, apart between scenarios). Only documentation addresses are used;
//! everything lives in namespaces owned by the topology.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Context as _, Result, ensure};

use crate::netns::{self, Netns, format_mac};
use crate::topo::{IFNAME, Node, mac_for};

/// The director's inside interface (facing the NAT reals).
pub const INSIDE_IFNAME: &str = "eth1";
/// The router's interface on the remote segment.
pub const ROUTER_REMOTE_IFNAME: &str = "eth1";
/// The client's address.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The director's outside address.
pub const DIRECTOR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The router's outside address.
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The director's inside address (the NAT reals' default gateway).
pub const DIRECTOR_INSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The router's address on the remote segment (the tunnelled reals' default gateway).
pub const ROUTER_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 129);
/// The inside network (NAT reals).
pub const INSIDE_NET: &str = "192.0.2.0/25";
/// The remote network (tunnelled reals).
pub const REMOTE_NET: &str = "192.0.2.128/25";
/// The IPv6 inside network.
pub const INSIDE_NET6: &str = "2001:db8:0:1::/64";
/// The IPv6 remote network.
pub const REMOTE_NET6: &str = "2001:db8:0:2::/64";
/// How many VIPs of each family every real server holds.
pub const VIPS: u8 = 3;
/// Most reals of one kind.
pub const MAX_REALS: usize = 9;

/// The `i`-th IPv4 VIP (0-based): 203.0.113.10, .11, ...
pub fn vip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 10 + i)
}

/// The `i`-th IPv6 VIP (0-based): 2001:db8:0:ff::10, ::11, ...
pub fn vip6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0xff, 0, 0, 0, 0x10 + u16::from(i))
}

/// The `i`-th VIP of the family of `v6`.
pub fn vip_of(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(vip6(i))
    } else {
        IpAddr::V4(vip(i))
    }
}

/// The IPv6 address on network `2001:db8:0:NET::/64` of the host whose IPv4 address ends in
/// `last`: the decimal digits of `last` written as hex digits (.131 -> `::131`).
pub fn addr6(net: u16, last: u8) -> Ipv6Addr {
    let low = u16::from(last / 100) << 8 | u16::from(last / 10 % 10) << 4 | u16::from(last % 10);
    Ipv6Addr::new(0x2001, 0xdb8, 0, net, 0, 0, 0, low)
}

/// The IPv6 twin of an address of this topology (its network by the IPv4 subnet).
pub fn twin6(a: Ipv4Addr) -> Ipv6Addr {
    let [_, _, c, d] = a.octets();
    let net = match (c, d) {
        (100, _) => 0,
        (2, 0..=127) => 1,
        _ => 2,
    };
    addr6(net, d)
}

/// Which reals a [`MethodsTopology`] has.
#[derive(Clone, Debug, Default)]
pub struct MethodsConfig {
    /// Direct-routing reals on the outside segment (`dr1`, ...).
    pub dr: usize,
    /// NAT reals on the inside segment (`nat1`, ...); the director gets `eth1`.
    pub nat: usize,
    /// Tunnelled reals behind the router (`tun1`, ...).
    pub tun: usize,
    /// MTU of the remote segment and of the director's route to it (default: 1500, the
    /// veth's).
    pub remote_mtu: Option<u32>,
}

impl MethodsConfig {
    /// `dr` direct-routing, `nat` NAT and `tun` tunnelled reals.
    pub fn new(dr: usize, nat: usize, tun: usize) -> Self {
        MethodsConfig {
            dr,
            nat,
            tun,
            remote_mtu: None,
        }
    }

    /// The remote segment (and the director's route to it) has MTU `mtu`.
    pub fn remote_mtu(mut self, mtu: u32) -> Self {
        self.remote_mtu = Some(mtu);
        self
    }
}

/// The topology. Dropping it deletes every namespace (reals first, the switch last).
#[derive(Debug)]
pub struct MethodsTopology {
    /// Direct-routing reals `dr1..` (198.51.100.11..).
    pub dr: Vec<Node>,
    /// NAT reals `nat1..` (192.0.2.11..).
    pub nat: Vec<Node>,
    /// Tunnelled reals `tun1..` (192.0.2.131..).
    pub tun: Vec<Node>,
    /// The client (198.51.100.10).
    pub client: Node,
    /// The director (198.51.100.2; 192.0.2.1 on `eth1` with NAT reals).
    pub lb: Node,
    /// The router (198.51.100.1; 192.0.2.129 on `eth1`), with tunnelled reals.
    pub router: Option<Node>,
    /// The bridge ports of the director's interfaces, in the switch namespace:
    /// `(interface, port)`.
    pub lb_ports: Vec<(String, String)>,
    /// The switch namespace with the bridges.
    pub switch: Netns,
}

/// One host to wire: namespace, role name, its interfaces `(ifname, bridge, port, address,
/// IPv6 prefix length)`.
struct Wire<'a> {
    ns: &'a Netns,
    links: Vec<(&'static str, &'static str, String, Ipv4Addr, u8)>,
}

impl MethodsTopology {
    /// Builds the topology. On error everything created so far is torn down.
    pub fn build(cfg: &MethodsConfig) -> Result<Self> {
        for n in [cfg.dr, cfg.nat, cfg.tun] {
            ensure!(
                n <= MAX_REALS,
                "at most {MAX_REALS} reals of a kind, not {n}"
            );
        }
        let switch = Netns::new("sw")?;
        let client = Netns::new("cl")?;
        let lb = Netns::new("lb")?;
        let router = (cfg.tun > 0).then(|| Netns::new("rt")).transpose()?;
        let mk = |kind: &str, n: usize| -> Result<Vec<Netns>> {
            (1..=n).map(|i| Netns::new(&format!("{kind}{i}"))).collect()
        };
        let (dr_ns, nat_ns, tun_ns) = (mk("dr", cfg.dr)?, mk("nat", cfg.nat)?, mk("tun", cfg.tun)?);
        let all: Vec<&Netns> = [&switch, &client, &lb]
            .into_iter()
            .chain(router.as_ref())
            .chain(&dr_ns)
            .chain(&nat_ns)
            .chain(&tun_ns)
            .collect();
        for ns in &all {
            for conf in ["all", "default"] {
                ns.sysctl(&format!("net.ipv6.conf.{conf}.accept_dad"), "0")?;
                // IPv4 settings are inherited from the host's namespace: no reverse-path
                // filter of its own anywhere (the reals' answers come from the VIPs).
                ns.sysctl(&format!("net.ipv4.conf.{conf}.rp_filter"), "0")?;
            }
            ns.sysctl("net.ipv6.conf.default.router_solicitations", "0")?;
        }
        // Reals holding a VIP must not answer ARP for it; set before any address exists.
        for ns in dr_ns.iter().chain(&tun_ns) {
            for conf in ["all", "default", "lo"] {
                ns.sysctl(&format!("net.ipv4.conf.{conf}.arp_ignore"), "1")?;
                ns.sysctl(&format!("net.ipv4.conf.{conf}.arp_announce"), "2")?;
            }
        }
        for ns in [&lb].into_iter().chain(router.as_ref()) {
            ns.sysctl("net.ipv4.ip_forward", "1")?;
            ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        }

        let at = |net: [u8; 3], last: u8| Ipv4Addr::new(net[0], net[1], net[2], last);
        let mut wires = vec![
            Wire {
                ns: &client,
                links: vec![(IFNAME, "br0", "o-cl".into(), CLIENT, 64)],
            },
            Wire {
                ns: &lb,
                links: vec![(IFNAME, "br0", "o-lb".into(), DIRECTOR, 64)],
            },
        ];
        if cfg.nat > 0 {
            wires[1]
                .links
                .push((INSIDE_IFNAME, "br1", "i-lb".into(), DIRECTOR_INSIDE, 64));
        }
        if let Some(r) = &router {
            wires.push(Wire {
                ns: r,
                links: vec![
                    (IFNAME, "br0", "o-rt".into(), ROUTER, 64),
                    (
                        ROUTER_REMOTE_IFNAME,
                        "br2",
                        "r-rt".into(),
                        ROUTER_REMOTE,
                        64,
                    ),
                ],
            });
        }
        let real_addr = |kind: &str, i: usize| -> Ipv4Addr {
            let i = i as u8;
            match kind {
                "dr" => at([198, 51, 100], 11 + i),
                "nat" => at([192, 0, 2], 11 + i),
                _ => at([192, 0, 2], 131 + i),
            }
        };
        for (kind, nss, bridge, p) in [
            ("dr", &dr_ns, "br0", "o"),
            ("nat", &nat_ns, "br1", "i"),
            ("tun", &tun_ns, "br2", "r"),
        ] {
            for (i, ns) in nss.iter().enumerate() {
                wires.push(Wire {
                    ns,
                    links: vec![(
                        IFNAME,
                        bridge,
                        format!("{p}-{kind}{}", i + 1),
                        real_addr(kind, i),
                        64,
                    )],
                });
            }
        }

        // The switch: three bridges and a veth per link, the host end created directly in its
        // namespace with a deterministic MAC.
        let mut batch = String::new();
        for br in ["br0", "br1", "br2"] {
            batch.push_str(&format!("link add {br} type bridge\nlink set {br} up\n"));
        }
        if let Some(mtu) = cfg.remote_mtu {
            batch.push_str(&format!("link set br2 mtu {mtu}\n"));
        }
        for w in &wires {
            for (ifname, bridge, port, addr, _) in &w.links {
                let mtu = match (cfg.remote_mtu, *bridge) {
                    (Some(m), "br2") => format!(" mtu {m}"),
                    _ => String::new(),
                };
                batch.push_str(&format!(
                    "link add {port}{mtu} type veth peer name {ifname} address {}{mtu} netns {}\n\
                     link set {port} master {bridge}\n\
                     link set {port} up\n",
                    format_mac(&mac_for(*addr)),
                    w.ns.name()
                ));
            }
        }
        switch.ip_batch(&batch).context("cannot build the switch")?;
        for w in &wires {
            let mut b = String::new();
            for (ifname, _, _, addr, p6) in &w.links {
                let prefix = if addr.octets()[2] == 2 { 25 } else { 24 };
                b.push_str(&format!(
                    "link set {ifname} up\naddr add {addr}/{prefix} dev {ifname}\n\
                     addr add {}/{p6} dev {ifname} nodad\n",
                    twin6(*addr)
                ));
            }
            w.ns.ip_batch(&b)?;
        }

        // Routes and neighbours.
        let neigh = |a: Ipv4Addr, dev: &str| {
            let mac = format_mac(&mac_for(a));
            format!(
                "neigh replace {a} lladdr {mac} dev {dev} nud permanent\n\
                 neigh replace {} lladdr {mac} dev {dev} nud permanent\n",
                twin6(a)
            )
        };
        let mut c = format!(
            "neigh replace {} lladdr {} dev {IFNAME} nud permanent\n\
             route add 203.0.113.0/24 via {DIRECTOR}\n\
             route add 2001:db8:0:ff::/64 via {}\n",
            twin6(DIRECTOR),
            format_mac(&mac_for(DIRECTOR)),
            twin6(DIRECTOR)
        );
        if cfg.nat > 0 {
            c.push_str(&format!(
                "route add {INSIDE_NET} via {DIRECTOR}\nroute add {INSIDE_NET6} via {}\n",
                twin6(DIRECTOR)
            ));
        }
        if router.is_some() {
            c.push_str(&format!(
                "route add {REMOTE_NET} via {ROUTER}\nroute add {REMOTE_NET6} via {}\n",
                twin6(ROUTER)
            ));
        }
        client.ip_batch(&c)?;
        let mut l = neigh(CLIENT, IFNAME);
        if router.is_some() {
            let mtu = cfg
                .remote_mtu
                .map(|m| format!(" mtu {m}"))
                .unwrap_or_default();
            l.push_str(&neigh(ROUTER, IFNAME));
            l.push_str(&format!(
                "route add {REMOTE_NET} via {ROUTER}{mtu}\nroute add {REMOTE_NET6} via {}{mtu}\n",
                twin6(ROUTER)
            ));
        }
        for i in 0..cfg.dr {
            l.push_str(&neigh(real_addr("dr", i), IFNAME));
        }
        for i in 0..cfg.nat {
            l.push_str(&neigh(real_addr("nat", i), INSIDE_IFNAME));
        }
        lb.ip_batch(&l)?;
        for ns in &nat_ns {
            ns.ip_batch(&format!(
                "route add default via {DIRECTOR_INSIDE}\nroute add default via {}\n",
                twin6(DIRECTOR_INSIDE)
            ))?;
        }
        for ns in &tun_ns {
            ns.ip_batch(&format!(
                "route add default via {ROUTER_REMOTE}\nroute add default via {}\n",
                twin6(ROUTER_REMOTE)
            ))?;
        }
        for ns in dr_ns.iter().chain(&tun_ns) {
            ns.sysctl(&format!("net.ipv4.conf.{IFNAME}.arp_ignore"), "1")?;
            ns.sysctl(&format!("net.ipv4.conf.{IFNAME}.arp_announce"), "2")?;
            let mut b = String::new();
            for i in 0..VIPS {
                b.push_str(&format!(
                    "addr add {}/32 dev lo\naddr add {}/128 dev lo nodad\n",
                    vip(i),
                    vip6(i)
                ));
            }
            ns.ip_batch(&b)?;
        }
        // Frames whose checksums XDP must find complete.
        for ns in [&client].into_iter().chain(&nat_ns) {
            netns::run_checked(ns.nsenter_cmd("ethtool").args(["-K", IFNAME, "tx", "off"]))
                .with_context(|| format!("cannot turn off TX checksum offload in {}", ns.name()))?;
        }

        let node = |name: String, ns: Netns, port: String, addr: Ipv4Addr| -> Result<Node> {
            let mac = ns.mac(IFNAME)?;
            ensure!(mac == mac_for(addr), "{} has MAC {mac:?}", ns.name());
            Ok(Node {
                name,
                ns,
                addr,
                addr6: Some(twin6(addr)),
                mac,
                bridge_port: port,
                servers: Vec::new(),
            })
        };
        let reals = |kind: &str, nss: Vec<Netns>, p: &str| -> Result<Vec<Node>> {
            nss.into_iter()
                .enumerate()
                .map(|(i, ns)| {
                    let name = format!("{kind}{}", i + 1);
                    node(name.clone(), ns, format!("{p}-{name}"), real_addr(kind, i))
                })
                .collect()
        };
        let mut lb_ports = vec![(IFNAME.to_owned(), "o-lb".to_owned())];
        if cfg.nat > 0 {
            lb_ports.push((INSIDE_IFNAME.to_owned(), "i-lb".to_owned()));
        }
        Ok(MethodsTopology {
            dr: reals("dr", dr_ns, "o")?,
            nat: reals("nat", nat_ns, "i")?,
            tun: reals("tun", tun_ns, "r")?,
            client: node("client".into(), client, "o-cl".into(), CLIENT)?,
            lb: node("lb".into(), lb, "o-lb".into(), DIRECTOR)?,
            router: router
                .map(|r| node("router".into(), r, "o-rt".into(), ROUTER))
                .transpose()?,
            lb_ports,
            switch,
        })
    }

    /// Every real server, direct-routing ones first, then NAT, then tunnelled.
    pub fn reals(&self) -> impl Iterator<Item = &Node> {
        self.dr.iter().chain(&self.nat).chain(&self.tun)
    }

    /// Every real server, mutable.
    pub fn reals_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.dr
            .iter_mut()
            .chain(self.nat.iter_mut())
            .chain(self.tun.iter_mut())
    }

    /// The real server called `name` (`dr1`, `nat2`, `tun1`, ...).
    pub fn real(&self, name: &str) -> Option<&Node> {
        self.reals().find(|n| n.name == name)
    }

    /// The address of the real called `name` in the family of `v6`.
    pub fn real_ip(&self, name: &str, v6: bool) -> Result<IpAddr> {
        let n = self
            .real(name)
            .with_context(|| format!("no real server {name:?}"))?;
        Ok(if v6 {
            IpAddr::V6(twin6(n.addr))
        } else {
            IpAddr::V4(n.addr)
        })
    }

    /// `VIP:port` (the `i`-th VIP of the family of `v6`).
    pub fn vip_sock(&self, v6: bool, i: u8, port: u16) -> SocketAddr {
        SocketAddr::new(vip_of(v6, i), port)
    }

    /// The client's address of the family of `v6`.
    pub fn client_ip(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(twin6(CLIENT))
        } else {
            IpAddr::V4(CLIENT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(twin6(CLIENT), "2001:db8::10".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            twin6(DIRECTOR_INSIDE),
            "2001:db8:0:1::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            twin6(Ipv4Addr::new(192, 0, 2, 131)),
            "2001:db8:0:2::131".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            twin6(ROUTER_REMOTE),
            "2001:db8:0:2::129".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(vip6(1), "2001:db8:0:ff::11".parse::<Ipv6Addr>().unwrap());
        assert_eq!(vip(2), Ipv4Addr::new(203, 0, 113, 12));
    }
}

//! A direct-routing (LVS `-g`) topology for end-to-end tests.
//!
//! ```text
//!                 switch namespace (bridge br0)
//!        p-cl            p-lb            p-rs1 ... p-rsN       <- bridge ports
//!         |               |               |
//!   client eth0       LB eth0         rs1 eth0 ...              <- one namespace each
//!   198.51.100.10     198.51.100.2    198.51.100.11 ... (+ VIP/32 on lo)
//! ```
//!
//! - The client routes the VIP's /24 via the LB (`203.0.113.0/24 via 198.51.100.2`), so its
//!   frames to the VIP carry the LB's MAC. TX checksum offload is off on the client's `eth0`
//!   (frames passing through XDP would otherwise reach the real server with partial TCP
//!   checksums).
//! - The LB does not hold the VIP: the XDP program (attached by the test to the LB's `eth0`)
//!   rewrites the destination MAC and sends the frame back out with `XDP_TX`. A veth drops
//!   `XDP_TX` frames unless its peer (the bridge port [`DrTopology::lb_peer`] in the switch
//!   namespace) has an XDP program too; the test attaches one there.
//! - Real servers hold the VIP on `lo` (/32) with `arp_ignore=1`, `arp_announce=2` (on `all`,
//!   `lo`, `eth0`) and answer the client directly (same subnet): direct routing.
//!
//! - Dual stack ([`TopoConfig::dual_stack`]): every `eth0` also gets an IPv6 address of
//!   2001:db8::/64 (client `::10`, LB `::2`, real servers `::11`, `::12`, ...), all `nodad`
//!   with DAD off in every namespace (`accept_dad=0`, so link-local addresses are usable at
//!   once too). The client routes the IPv6 VIP's /64 (2001:db8:0:ff::/64) via the LB's
//!   address, for which it has a permanent neighbour entry with the LB's MAC: its frames to
//!   the VIP carry the LB's MAC and it never asks ND for the VIP. Real servers hold the IPv6
//!   VIP on `lo` (/128). They need nothing like `arp_ignore`: IPv6 neighbour discovery only
//!   answers for addresses of the interface the solicitation came in on, so a VIP on `lo` is
//!   never advertised on `eth0` (checked by `tests/ipv6_e2e.rs`). The LB's permanent
//!   neighbour entries cover both addresses of every real server.
//!
//! Only documentation addresses are used (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) and every interface
//! lives inside a namespace owned by the topology, so nothing leaves the test. Several
//! topologies can be built in parallel: namespace names are unique and the bridge port names
//! only need to be unique within their own switch namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::netns::{self, Netns, NsChild, format_mac};

/// Interface name inside the client, LB and real-server namespaces.
pub const IFNAME: &str = "eth0";
/// Bridge name inside the switch namespace.
pub const BRIDGE: &str = "br0";
/// Prefix length of the shared segment.
pub const PREFIX_LEN: u8 = 24;
/// The client's address.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The LB's (director's) address.
pub const LB_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The first real server's address; the others follow (.12, .13, ...).
pub const FIRST_BACKEND_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
/// The default virtual IP.
pub const DEFAULT_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// Prefix length of the shared segment's IPv6 network (2001:db8::/64).
pub const PREFIX_LEN6: u8 = 64;
/// The client's IPv6 address (dual stack).
pub const CLIENT_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// The LB's IPv6 address (dual stack).
pub const LB_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// The first real server's IPv6 address; the others follow (`::12`, `::13`, ...).
pub const FIRST_BACKEND_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
/// The default IPv6 virtual IP (dual stack), in a /64 of its own that the client routes via
/// the LB.
pub const DEFAULT_VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0xff, 0, 0, 0, 0x10);
/// How long [`DrTopology::start_servers`] waits for a server to listen.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(5);

/// Most real servers that fit after [`FIRST_BACKEND_ADDR`] in the /24.
pub const MAX_BACKENDS: usize = 254 - 11 + 1;

/// The deterministic, locally administered MAC given to the `eth0` holding `addr`:
/// `02:00:` followed by the four address bytes (e.g. `02:00:c6:33:64:0b` for .11).
pub fn mac_for(addr: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = addr.octets();
    [0x02, 0x00, a, b, c, d]
}

/// How to build a [`DrTopology`].
#[derive(Clone, Debug)]
pub struct TopoConfig {
    /// Number of real servers (1..=[`MAX_BACKENDS`]).
    pub backends: usize,
    /// The virtual IP held by the real servers on `lo`; the client routes its /24 via the LB.
    pub vip: Ipv4Addr,
    /// Install permanent neighbour entries for every real server in the LB namespace
    /// (default). Turn off to test the controller's own MAC resolution.
    pub lb_neighbours: bool,
    /// Disable IPv6 in every namespace (default), so router solicitations and MLD reports do
    /// not show up in XDP counters.
    pub disable_ipv6: bool,
    /// The IPv6 virtual IP when the topology is dual stack ([`TopoConfig::dual_stack`]).
    pub vip6: Option<Ipv6Addr>,
}

impl TopoConfig {
    /// `backends` real servers, VIP [`DEFAULT_VIP`], LB neighbours installed, IPv6 off.
    pub fn new(backends: usize) -> Self {
        TopoConfig {
            backends,
            vip: DEFAULT_VIP,
            lb_neighbours: true,
            disable_ipv6: true,
            vip6: None,
        }
    }

    /// Dual stack: IPv6 addresses on every host as well, the IPv6 VIP [`DEFAULT_VIP6`] on the
    /// real servers' `lo` (see the module's documentation).
    pub fn dual_stack(mut self) -> Self {
        self.disable_ipv6 = false;
        self.vip6 = Some(DEFAULT_VIP6);
        self
    }

    /// Uses `vip` as the virtual IP.
    pub fn vip(mut self, vip: Ipv4Addr) -> Self {
        self.vip = vip;
        self
    }

    /// Leaves the LB's neighbour table empty.
    pub fn without_lb_neighbours(mut self) -> Self {
        self.lb_neighbours = false;
        self
    }

    /// Keeps IPv6 enabled in every namespace.
    pub fn with_ipv6(mut self) -> Self {
        self.disable_ipv6 = false;
        self
    }
}

/// One host on the segment: its namespace and its `eth0`.
#[derive(Debug)]
pub struct Node {
    /// Short name: `client`, `lb`, or `rs1`, `rs2`, ... for real servers (the name a test
    /// server answers with).
    pub name: String,
    /// The host's namespace.
    pub ns: Netns,
    /// The address on its `eth0`.
    pub addr: Ipv4Addr,
    /// Its IPv6 address on `eth0` (dual-stack topologies).
    pub addr6: Option<Ipv6Addr>,
    /// The MAC of its `eth0` (read back from the device).
    pub mac: [u8; 6],
    /// The other end of its veth: a bridge port in the switch namespace.
    pub bridge_port: String,
    /// Test servers started in this namespace (killed when the namespace is dropped).
    pub servers: Vec<NsChild>,
}

impl Node {
    /// The interface name inside the namespace ([`IFNAME`]).
    pub fn ifname(&self) -> &str {
        IFNAME
    }

    /// `addr:port`.
    pub fn sock(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.addr, port)
    }

    /// `[addr6]:port`; panics on a host without IPv6 (not a dual-stack topology).
    pub fn sock6(&self, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(self.addr6.expect("a dual-stack topology"), port, 0, 0)
    }

    /// Starts `lb-testsrv --name <name> --listen 0.0.0.0:<port> [--udp]` in this namespace and
    /// waits until it listens (the wildcard bind covers the VIP on `lo`). On a dual-stack host
    /// it listens on `[::]:<port>`, which takes both families.
    pub fn start_server(&mut self, bin: &Path, port: u16, udp: bool) -> Result<NsChild> {
        let bin = bin
            .to_str()
            .with_context(|| format!("non-UTF-8 path {}", bin.display()))?;
        let listen = if self.addr6.is_some() {
            format!("[::]:{port}")
        } else {
            format!("0.0.0.0:{port}")
        };
        let mut argv = vec![bin, "--name", &self.name, "--listen", &listen];
        if udp {
            argv.push("--udp");
        }
        let child = self.ns.spawn(&argv)?;
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            if is_listening(&self.ns, port, udp)? {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("{bin} in {} exited early: {status}", self.ns.name());
            }
            if Instant::now() > deadline {
                bail!(
                    "{bin} in {} does not listen on {listen} after {SERVER_START_TIMEOUT:?}",
                    self.ns.name()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.servers.push(child.clone());
        Ok(child)
    }

    /// Kills every test server started in this namespace (e.g. to simulate a failed real
    /// server while its namespace, and so its address, stays).
    pub fn stop_servers(&mut self) -> Result<()> {
        for server in self.servers.drain(..) {
            server.kill()?;
        }
        Ok(())
    }
}

/// Whether something in `ns` listens on `port` (TCP LISTEN, or a bound UDP socket), read
/// from `/proc/thread-self/net/{tcp,udp}` (and `tcp6`, `udp6`) on a thread inside the
/// namespace.
pub fn is_listening(ns: &Netns, port: u16, udp: bool) -> Result<bool> {
    let (files, state) = if udp {
        (
            ["/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"],
            "07",
        )
    } else {
        (
            ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"],
            "0A",
        )
    };
    for file in files {
        let table = ns
            .run_in(|| std::fs::read_to_string(file))?
            .with_context(|| format!("cannot read {file} in {}", ns.name()))?;
        if socket_table_has(&table, port, state) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Parses a `/proc/net/{tcp,udp}` table: is there a socket with local port `port` in `state`?
fn socket_table_has(table: &str, port: u16, state: &str) -> bool {
    table.lines().skip(1).any(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1);
        let st = cols.nth(1);
        let local_port = local
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        local_port == Some(port) && st == Some(state)
    })
}

/// The direct-routing topology. Dropping it deletes every namespace (real servers first,
/// the switch last), which kills the test servers and removes every veth and the bridge.
#[derive(Debug)]
pub struct DrTopology {
    /// Real servers `rs1..rsN` at 198.51.100.11.. (fields drop in declaration order).
    pub backends: Vec<Node>,
    /// The client at 198.51.100.10.
    pub client: Node,
    /// The director at 198.51.100.2 (does not hold the VIP).
    pub lb: Node,
    /// The switch namespace holding the bridge [`BRIDGE`] and every bridge port.
    pub switch: Netns,
    /// The virtual IP.
    pub vip: Ipv4Addr,
    /// The IPv6 virtual IP (dual-stack topologies).
    pub vip6: Option<Ipv6Addr>,
}

impl DrTopology {
    /// Builds the topology with `backends` real servers and the defaults of [`TopoConfig`].
    pub fn new(backends: usize) -> Result<Self> {
        Self::build(&TopoConfig::new(backends))
    }

    /// Builds the topology. On error everything created so far is torn down.
    pub fn build(cfg: &TopoConfig) -> Result<Self> {
        ensure!(
            (1..=MAX_BACKENDS).contains(&cfg.backends),
            "between 1 and {MAX_BACKENDS} real servers, not {}",
            cfg.backends
        );
        let switch = Netns::new("sw")?;
        let client = Netns::new("cl")?;
        let lb = Netns::new("lb")?;
        let backend_ns = (1..=cfg.backends)
            .map(|i| Netns::new(&format!("rs{i}")))
            .collect::<Result<Vec<_>>>()?;

        if cfg.disable_ipv6 {
            for ns in [&switch, &client, &lb].into_iter().chain(&backend_ns) {
                // `default` applies to interfaces created afterwards (the veth ends below).
                ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
                ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            }
        }
        if cfg.vip6.is_some() {
            for ns in [&switch, &client, &lb].into_iter().chain(&backend_ns) {
                // No duplicate address detection (link-local addresses usable at once) and
                // no router solicitations on the interfaces created below.
                for conf in ["all", "default"] {
                    ns.sysctl(&format!("net.ipv6.conf.{conf}.accept_dad"), "0")?;
                }
                ns.sysctl("net.ipv6.conf.default.router_solicitations", "0")?;
            }
        }
        // Real servers must not answer ARP for the VIP; set before any address exists.
        for ns in &backend_ns {
            for conf in ["all", "default", "lo"] {
                ns.sysctl(&format!("net.ipv4.conf.{conf}.arp_ignore"), "1")?;
                ns.sysctl(&format!("net.ipv4.conf.{conf}.arp_announce"), "2")?;
            }
        }

        // Switch: the bridge and one veth per host, the host end created directly in the
        // host's namespace as `eth0` with a deterministic MAC.
        let backend_addrs = (0..cfg.backends)
            .map(|i| backend_addr(i).with_context(|| format!("no address for real server {i}")))
            .collect::<Result<Vec<Ipv4Addr>>>()?;
        let mut hosts: Vec<(&Netns, String, Ipv4Addr)> = vec![
            (&client, "p-cl".to_owned(), CLIENT_ADDR),
            (&lb, "p-lb".to_owned(), LB_ADDR),
        ];
        for (i, ns) in backend_ns.iter().enumerate() {
            hosts.push((ns, format!("p-rs{}", i + 1), backend_addrs[i]));
        }
        let mut batch = format!("link add {BRIDGE} type bridge\nlink set {BRIDGE} up\n");
        for (ns, port, addr) in &hosts {
            batch.push_str(&format!(
                "link add {port} type veth peer name {IFNAME} address {} netns {}\n\
                 link set {port} master {BRIDGE}\n\
                 link set {port} up\n",
                format_mac(&mac_for(*addr)),
                ns.name()
            ));
        }
        switch.ip_batch(&batch).context("cannot build the switch")?;

        // Hosts.
        let addr6_of = |addr: Ipv4Addr| cfg.vip6.map(|_| addr6_for(addr));
        for (ns, _, addr) in &hosts {
            let mut batch =
                format!("link set {IFNAME} up\naddr add {addr}/{PREFIX_LEN} dev {IFNAME}\n");
            if let Some(a6) = addr6_of(*addr) {
                batch.push_str(&format!("addr add {a6}/{PREFIX_LEN6} dev {IFNAME} nodad\n"));
            }
            ns.ip_batch(&batch)?;
        }
        if let Some(vip6) = cfg.vip6 {
            // The VIP's /64 via the LB, whose MAC the client knows without asking ND.
            let vip6_net = Ipv6Addr::from(u128::from(vip6) & !u128::from(u64::MAX));
            client.ip_batch(&format!(
                "neigh replace {LB_ADDR6} lladdr {} dev {IFNAME} nud permanent\n\
                 route add {vip6_net}/64 via {LB_ADDR6} dev {IFNAME}\n",
                format_mac(&mac_for(LB_ADDR))
            ))?;
            for ns in &backend_ns {
                ns.ip(&["addr", "add", &format!("{vip6}/128"), "dev", "lo", "nodad"])?;
            }
        }
        let vip_net = Ipv4Addr::from(u32::from(cfg.vip) & 0xffff_ff00);
        client.ip(&[
            "route",
            "add",
            &format!("{vip_net}/24"),
            "via",
            &LB_ADDR.to_string(),
        ])?;
        netns::run_checked(
            client
                .nsenter_cmd("ethtool")
                .args(["-K", IFNAME, "tx", "off"]),
        )
        .context("cannot turn off TX checksum offload on the client")?;
        for ns in &backend_ns {
            ns.sysctl(&format!("net.ipv4.conf.{IFNAME}.arp_ignore"), "1")?;
            ns.sysctl(&format!("net.ipv4.conf.{IFNAME}.arp_announce"), "2")?;
            ns.ip(&["addr", "add", &format!("{}/32", cfg.vip), "dev", "lo"])?;
        }

        let node = |name: String, ns: Netns, port: String, addr: Ipv4Addr| -> Result<Node> {
            let addr6 = addr6_of(addr);
            let mac = ns.mac(IFNAME)?;
            ensure!(
                mac == mac_for(addr),
                "{} has MAC {} instead of {}",
                ns.name(),
                format_mac(&mac),
                format_mac(&mac_for(addr))
            );
            Ok(Node {
                name,
                ns,
                addr,
                addr6,
                mac,
                bridge_port: port,
                servers: Vec::new(),
            })
        };
        let backends = backend_ns
            .into_iter()
            .zip(backend_addrs)
            .enumerate()
            .map(|(i, (ns, addr))| node(format!("rs{}", i + 1), ns, format!("p-rs{}", i + 1), addr))
            .collect::<Result<Vec<_>>>()?;
        let topo = DrTopology {
            backends,
            client: node("client".into(), client, "p-cl".into(), CLIENT_ADDR)?,
            lb: node("lb".into(), lb, "p-lb".into(), LB_ADDR)?,
            switch,
            vip: cfg.vip,
            vip6: cfg.vip6,
        };
        if cfg.lb_neighbours {
            topo.add_lb_neighbours()?;
        }
        Ok(topo)
    }

    /// The LB's interface (inside `lb.ns`): where the XDP program goes.
    pub fn lb_ifname(&self) -> &str {
        IFNAME
    }

    /// The LB veth's peer, a bridge port inside the `switch` namespace. `XDP_TX` frames from
    /// the LB are dropped by the veth (counted as `rx_queue_0_xdp_tx_errors` in
    /// `ethtool -S eth0` in the LB namespace) unless this peer has an XDP program attached;
    /// a plain `XDP_PASS` program is enough (checked by `tests/topo_xdp.rs`). Turning GRO on
    /// for the peer instead makes the `XDP_TX` count go up, but on Linux 6.18 the frames did
    /// not reach the real server: attach a program.
    pub fn lb_peer(&self) -> &str {
        &self.lb.bridge_port
    }

    /// `VIP:port`.
    pub fn vip_sock(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.vip, port)
    }

    /// `[VIP6]:port`; panics unless the topology is dual stack.
    pub fn vip6_sock(&self, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(self.vip6.expect("a dual-stack topology"), port, 0, 0)
    }

    /// `VIP:port` of the family of `v6`: the VIP's, or the IPv6 VIP's.
    pub fn vip_sock_of(&self, v6: bool, port: u16) -> SocketAddr {
        if v6 {
            self.vip6_sock(port).into()
        } else {
            self.vip_sock(port).into()
        }
    }

    /// Gives the client the extra address `addr` on its `eth0` (IPv6: `nodad`), e.g. a second
    /// client for persistence. An IPv6 address outside 2001:db8::/64 gets its /64 routed on
    /// link by every real server, so that they answer it directly.
    pub fn add_client_address(&self, addr: IpAddr) -> Result<()> {
        match addr {
            IpAddr::V4(a) => self
                .client
                .ns
                .ip(&["addr", "add", &format!("{a}/{PREFIX_LEN}"), "dev", IFNAME])
                .map(drop),
            IpAddr::V6(a) => {
                self.client.ns.ip(&[
                    "addr",
                    "add",
                    &format!("{a}/{PREFIX_LEN6}"),
                    "dev",
                    IFNAME,
                    "nodad",
                ])?;
                let net = Ipv6Addr::from(u128::from(a) & !u128::from(u64::MAX));
                let segment = Ipv6Addr::from(u128::from(CLIENT_ADDR6) & !u128::from(u64::MAX));
                if net != segment {
                    for b in &self.backends {
                        b.ns.ip(&["route", "replace", &format!("{net}/64"), "dev", IFNAME])?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Real server `i` (0-based) by index.
    pub fn backend(&self, i: usize) -> &Node {
        &self.backends[i]
    }

    /// The real server called `name` (`rs1`, ...).
    pub fn backend_named(&self, name: &str) -> Option<&Node> {
        self.backends.iter().find(|b| b.name == name)
    }

    /// Installs a permanent neighbour entry for every real server (both its addresses in a
    /// dual-stack topology) in the LB namespace (done by [`DrTopology::build`] unless
    /// [`TopoConfig::without_lb_neighbours`]).
    pub fn add_lb_neighbours(&self) -> Result<()> {
        let batch: String = self
            .backends
            .iter()
            .flat_map(|b| {
                let v4 = Some(IpAddr::V4(b.addr));
                let v6 = b.addr6.map(IpAddr::V6);
                [v4, v6].into_iter().flatten().map(|a| {
                    format!(
                        "neigh replace {a} lladdr {} dev {IFNAME} nud permanent\n",
                        format_mac(&b.mac)
                    )
                })
            })
            .collect();
        self.lb.ns.ip_batch(&batch)
    }

    /// Empties the LB's neighbour table.
    pub fn flush_lb_neighbours(&self) -> Result<()> {
        self.lb
            .ns
            .ip(&["neigh", "flush", "dev", IFNAME, "nud", "all"])
            .map(drop)
    }

    /// Starts `lb-testsrv` on `port` (TCP, or UDP when `udp`) in every real server and waits
    /// until each listens. Each answers with its name (`rs1`, ...).
    pub fn start_servers(&mut self, bin: &Path, port: u16, udp: bool) -> Result<Vec<NsChild>> {
        self.backends
            .iter_mut()
            .map(|b| b.start_server(bin, port, udp))
            .collect()
    }

    /// The names of every namespace of this topology.
    pub fn netns_names(&self) -> Vec<String> {
        self.backends
            .iter()
            .map(|b| b.ns.name())
            .chain([self.client.ns.name(), self.lb.ns.name(), self.switch.name()])
            .map(str::to_owned)
            .collect()
    }
}

/// The IPv6 address of the host whose IPv4 address is `addr`: 2001:db8:: and the last octet
/// written as hex digits (198.51.100.11 -> 2001:db8::11, .2 -> ::2, .10 -> ::10).
pub fn addr6_for(addr: Ipv4Addr) -> Ipv6Addr {
    let last = addr.octets()[3];
    let low = u16::from(last / 100) << 8 | u16::from(last / 10 % 10) << 4 | u16::from(last % 10);
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, low)
}

/// Address of real server `i` (0-based), or None past the /24.
pub fn backend_addr(i: usize) -> Option<Ipv4Addr> {
    let base = FIRST_BACKEND_ADDR.octets()[3] as usize;
    let last = u8::try_from(base + i).ok().filter(|&o| o < 255)?;
    let [a, b, c, _] = FIRST_BACKEND_ADDR.octets();
    Some(Ipv4Addr::new(a, b, c, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(backend_addr(0), Some(Ipv4Addr::new(198, 51, 100, 11)));
        assert_eq!(backend_addr(1), Some(Ipv4Addr::new(198, 51, 100, 12)));
        assert_eq!(
            backend_addr(MAX_BACKENDS - 1),
            Some(Ipv4Addr::new(198, 51, 100, 254))
        );
        assert_eq!(backend_addr(MAX_BACKENDS), None);
        assert_eq!(mac_for(FIRST_BACKEND_ADDR), [2, 0, 198, 51, 100, 11]);
        assert_eq!(addr6_for(FIRST_BACKEND_ADDR), FIRST_BACKEND_ADDR6);
        assert_eq!(addr6_for(CLIENT_ADDR), CLIENT_ADDR6);
        assert_eq!(addr6_for(LB_ADDR), LB_ADDR6);
        assert_eq!(
            addr6_for(Ipv4Addr::new(198, 51, 100, 254)),
            "2001:db8::254".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn proc_net_parsing() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   \
                   1: 0A6433C6:9C40 0B6433C6:0050 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";
        assert!(socket_table_has(tcp, 80, "0A"));
        assert!(!socket_table_has(tcp, 40000, "0A"));
        assert!(socket_table_has(tcp, 40000, "01"));
        assert!(!socket_table_has(tcp, 81, "0A"));
        assert!(!socket_table_has("", 80, "0A"));
    }

    #[test]
    fn config_builder() {
        let cfg = TopoConfig::new(3)
            .vip(Ipv4Addr::new(203, 0, 113, 20))
            .without_lb_neighbours()
            .with_ipv6();
        assert_eq!(cfg.backends, 3);
        assert_eq!(cfg.vip, Ipv4Addr::new(203, 0, 113, 20));
        assert!(!cfg.lb_neighbours && !cfg.disable_ipv6);
        assert!(DrTopology::build(&TopoConfig::new(0)).is_err());
    }
}

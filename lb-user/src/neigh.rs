//! Next hops for direct routing, asked of the kernel over rtnetlink: the
//! route to a real server (`RTM_GETROUTE`), its neighbour entry
//! (`RTM_GETNEIGH`), a request to resolve it (`RTM_NEWNEIGH` with
//! `NTF_USE`, and `NTF_EXT_MANAGED` so the kernel keeps the entry fresh),
//! and interface indexes and MAC addresses (`RTM_GETLINK`).
//!
//! Nothing here waits for the network: a real server whose MAC is not known
//! yet is installed unresolved, and its MAC is filled in when the kernel
//! learns it: by `lbctl daemon` (neighbour events, `daemon::neigh_watch`),
//! by the next `lbctl -e` of that real or `lbctl attach`, and by the XDP
//! program (`bpf_fib_lookup` on the real's next new flow), which the kernel
//! answers only where forwarding is on for the ingress interface
//! (`net.ipv4.conf.IFACE.forwarding=1`, `net.ipv6.conf.IFACE.forwarding=1`
//! for IPv6; otherwise `FWD_DISABLED`).
//!
//! Both families: an IPv6 real server's route and neighbour entry are
//! asked with `AF_INET6` (its neighbour discovery is the kernel's).
//!
//! Every socket is opened in the calling thread's network namespace.

use std::{io, net::IpAddr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressMessage, AddressScope},
    link::{LinkAttribute, LinkMessage},
    neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourFlags, NeighbourMessage,
        NeighbourState,
    },
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteType},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// A resolved next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub mac: [u8; 6],
    pub ifindex: u32,
    /// MAC of the interface, used as source for redirected frames.
    pub smac: [u8; 6],
}

/// How the kernel routes packets to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The output interface.
    pub oif: u32,
    /// The gateway, when the address is not on a directly connected network.
    pub gateway: Option<IpAddr>,
    /// The address is one of this host's (`RTN_LOCAL`).
    pub local: bool,
    /// The source address the kernel would use (`RTA_PREFSRC`).
    pub prefsrc: Option<IpAddr>,
    /// The route's MTU (`RTAX_MTU`: set on the route or learned by path MTU
    /// discovery), 0 when it has none (the interface's applies).
    pub mtu: u32,
}

/// The way to a tunnelling or masquerading real server (docs/SEMANTICS.md
/// §18): its next hop (the real server itself or the route's gateway),
/// the director's source address on that route, and the route's MTU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    /// `None` while the next hop's MAC is not known (the kernel was asked
    /// to resolve it).
    pub hop: Option<NextHop>,
    /// The route's preferred source, else an address of the egress
    /// interface of the real server's family.
    pub saddr: Option<IpAddr>,
    /// The route's MTU, else the egress interface's.
    pub mtu: u32,
    /// The address whose neighbour entry gives the MAC (the gateway or
    /// the real server).
    pub neighbour: IpAddr,
}

/// A neighbour entry of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub addr: IpAddr,
    pub ifindex: u32,
    /// The link-layer address, when the entry has one.
    pub mac: Option<[u8; 6]>,
    /// `NUD_*` bits.
    pub state: u16,
}

const NUD_REACHABLE: u16 = 0x02;
const NUD_STALE: u16 = 0x04;
const NUD_DELAY: u16 = 0x08;
const NUD_PROBE: u16 = 0x10;
const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;
/// The kernel's `NUD_VALID`: the entry's address may be used.
const NUD_VALID: u16 =
    NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

impl Neighbour {
    /// The MAC the kernel would send to: a valid state and a non-zero address.
    pub fn usable_mac(&self) -> Option<[u8; 6]> {
        self.mac
            .filter(|m| *m != [0; 6] && self.state & NUD_VALID != 0)
    }

    /// Set by an administrator (`nud permanent` or `noarp`): never asked to
    /// resolve (that would turn a static entry into a dynamic one).
    pub fn is_static(&self) -> bool {
        self.state & (NUD_PERMANENT | NUD_NOARP) != 0
    }

    /// Parses an `RTM_NEWNEIGH` message (a reply or an event) for IPv4 or
    /// IPv6.
    pub fn from_message(m: &NeighbourMessage) -> Option<Neighbour> {
        if !matches!(m.header.family, AddressFamily::Inet | AddressFamily::Inet6) {
            return None;
        }
        let mut addr = None;
        let mut mac = None;
        for a in &m.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                    addr = Some(IpAddr::V4(*ip));
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                    addr = Some(IpAddr::V6(*ip));
                }
                NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(&l[..]).ok(),
                _ => {}
            }
        }
        Some(Neighbour {
            addr: addr?,
            ifindex: m.header.ifindex,
            mac,
            state: u16::from(m.header.state),
        })
    }
}

/// What [`Netlink::next_hop`] found for a real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The kernel knows its MAC.
    Resolved(NextHop),
    /// On-link, MAC not known yet: the kernel was asked to resolve it.
    Pending,
    /// No usable route (unreachable).
    NoRoute,
}

/// The error refusing a direct-routing real server that the kernel routes
/// through a gateway (docs/SEMANTICS.md §7: direct routing changes only the
/// destination MAC, so the real server must be on a directly connected
/// network).
pub fn gateway_error(real: IpAddr, gateway: IpAddr, dev: &str) -> String {
    format!(
        "real server {real} is not on a directly connected network: the kernel routes it \
         via gateway {gateway} (dev {dev}); direct routing (-g) rewrites only the destination \
         MAC, so the real server must be on the same link as the director: give the director \
         an address on the real server's network, or use a real server on one of its networks"
    )
}

/// The error refusing a real server that the kernel routes to the director itself (a local
/// route: one of its addresses, loopback, `0.0.0.0`). IPVS serves such a real server on
/// the director (`Local`, the kernel's `inet_addr_type` test); direct routing cannot
/// (docs/SEMANTICS.md §7).
pub fn local_error(real: IpAddr) -> String {
    format!("real server {real} is the director itself: lbctl forwards by direct routing (-g) only")
}

/// A synchronous rtnetlink socket.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn nl_err(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Netlink {
    /// Opens a socket in this thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("netlink socket", e))?;
        sock.bind_auto().map_err(|e| nl_err("netlink bind", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| nl_err("netlink connect", e))?;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: vec![0; 1 << 16],
        })
    }

    /// Sends one request and returns the messages of its answer, until the
    /// acknowledgement (with `NLM_F_ACK`) or the first reply.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n.min(self.buf.len()) {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                                None => Ok(replies),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::InnerMessage(r) => {
                            replies.push(r);
                            if flags & NLM_F_ACK == 0 {
                                return Ok(replies);
                            }
                        }
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// The kernel's route to `addr` (`ip route get ADDR`); `None` when it
    /// has none.
    pub fn route(&mut self, addr: IpAddr) -> io::Result<Option<Route>> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(addr);
        match addr {
            IpAddr::V4(a) => {
                m.header.destination_prefix_length = 32;
                m.attributes
                    .push(RouteAttribute::Destination(RouteAddress::Inet(a)));
            }
            IpAddr::V6(a) => {
                m.header.destination_prefix_length = 128;
                m.attributes
                    .push(RouteAttribute::Destination(RouteAddress::Inet6(a)));
            }
        }
        let replies = match self.request(RouteNetlinkMessage::GetRoute(m), 0) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EINVAL)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(nl_err(&format!("route to {addr}"), e)),
        };
        for r in replies {
            let RouteNetlinkMessage::NewRoute(r) = r else {
                continue;
            };
            let mut route = Route {
                oif: 0,
                gateway: None,
                local: r.header.kind == RouteType::Local,
                prefsrc: None,
                mtu: 0,
            };
            if !matches!(r.header.kind, RouteType::Unicast | RouteType::Local) {
                return Ok(None);
            }
            for a in &r.attributes {
                match a {
                    RouteAttribute::Oif(i) => route.oif = *i,
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                        route.gateway = Some(IpAddr::V4(*g));
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet6(g)) => {
                        route.gateway = Some(IpAddr::V6(*g));
                    }
                    RouteAttribute::PrefSource(RouteAddress::Inet(a)) => {
                        route.prefsrc = Some(IpAddr::V4(*a));
                    }
                    RouteAttribute::PrefSource(RouteAddress::Inet6(a)) => {
                        route.prefsrc = Some(IpAddr::V6(*a));
                    }
                    RouteAttribute::Metrics(metrics) => {
                        for m in metrics {
                            if let RouteMetric::Mtu(mtu) = m {
                                route.mtu = *mtu;
                            }
                        }
                    }
                    _ => {}
                }
            }
            return Ok(Some(route));
        }
        Ok(None)
    }

    /// The kernel's neighbour entry for `addr` on `ifindex`, if any.
    pub fn neighbour(&mut self, addr: IpAddr, ifindex: u32) -> io::Result<Option<Neighbour>> {
        let mut m = NeighbourMessage::default();
        m.header.family = family(addr);
        m.header.ifindex = ifindex;
        m.attributes
            .push(NeighbourAttribute::Destination(neigh_addr(addr)));
        match self.request(RouteNetlinkMessage::GetNeighbour(m), 0) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(n) => Neighbour::from_message(n),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(nl_err(&format!("neighbour entry of {addr}"), e)),
        }
    }

    /// Asks the kernel to resolve `addr` on `ifindex` (`ip neigh add ADDR
    /// dev DEV use managed`): it sends an ARP request (an IPv6 neighbour
    /// solicitation) now and, where the kernel has managed entries (Linux
    /// 5.16), keeps the entry fresh. Never called on a static entry.
    pub fn ask_resolve(&mut self, addr: IpAddr, ifindex: u32) -> io::Result<()> {
        let msg = |managed: bool| {
            let mut m = NeighbourMessage::default();
            m.header.family = family(addr);
            m.header.ifindex = ifindex;
            m.header.state = NeighbourState::None;
            m.header.flags = NeighbourFlags::Use;
            m.attributes
                .push(NeighbourAttribute::Destination(neigh_addr(addr)));
            if managed {
                m.attributes
                    .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
            }
            RouteNetlinkMessage::NewNeighbour(m)
        };
        let flags = NLM_F_ACK | NLM_F_CREATE;
        match self.request(msg(true), flags) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // A kernel without managed neighbour entries.
                self.request(msg(false), flags).map(drop)
            }
            r => r.map(drop),
        }
        .map_err(|e| nl_err(&format!("asking the kernel to resolve {addr}"), e))
    }

    /// (index, MAC) of the interface called `name`, or with index `index`.
    fn link(&mut self, name: Option<&str>, index: u32) -> io::Result<Option<(u32, [u8; 6])>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(n) = name {
            m.attributes.push(LinkAttribute::IfName(n.to_string()));
        }
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => {
                    let mac = l
                        .attributes
                        .iter()
                        .find_map(|a| match a {
                            LinkAttribute::Address(a) => <[u8; 6]>::try_from(&a[..]).ok(),
                            _ => None,
                        })
                        .unwrap_or([0; 6]);
                    Some((l.header.index, mac))
                }
                _ => None,
            })),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::EINVAL)) => Ok(None),
            Err(e) => Err(nl_err("interface", e)),
        }
    }

    /// The index of the interface called `name`.
    pub fn ifindex(&mut self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.link(Some(name), 0)?.map(|(i, _)| i))
    }

    /// The MAC address of the interface called `name`.
    pub fn if_mac(&mut self, name: &str) -> io::Result<Option<[u8; 6]>> {
        Ok(self.link(Some(name), 0)?.map(|(_, m)| m))
    }

    /// The MAC address of interface `index`.
    pub fn if_mac_by_index(&mut self, index: u32) -> io::Result<Option<[u8; 6]>> {
        if index == 0 {
            return Ok(None);
        }
        Ok(self.link(None, index)?.map(|(_, m)| m))
    }

    /// The name of interface `index` (for messages).
    pub fn if_name(&mut self, index: u32) -> String {
        let mut m = LinkMessage::default();
        m.header.index = index;
        let name = self
            .request(RouteNetlinkMessage::GetLink(m), 0)
            .ok()
            .and_then(|r| {
                r.into_iter().find_map(|r| match r {
                    RouteNetlinkMessage::NewLink(l) => {
                        l.attributes.into_iter().find_map(|a| match a {
                            LinkAttribute::IfName(n) => Some(n),
                            _ => None,
                        })
                    }
                    _ => None,
                })
            });
        name.unwrap_or_else(|| format!("if{index}"))
    }

    /// The route check and the next hop of a direct-routing real server.
    /// `Err(text)` when the kernel routes it through a gateway or to this
    /// host itself (the real server is refused, see [`gateway_error`] and
    /// [`local_error`]). Never waits: when the MAC
    /// is not known, the kernel is asked to resolve it and `Pending` comes
    /// back at once.
    pub fn next_hop(&mut self, addr: IpAddr) -> io::Result<Result<Lookup, String>> {
        let Some(route) = self.route(addr)? else {
            return Ok(Ok(Lookup::NoRoute));
        };
        if let Some(gw) = route.gateway {
            let dev = self.if_name(route.oif);
            return Ok(Err(gateway_error(addr, gw, &dev)));
        }
        if route.local {
            return Ok(Err(local_error(addr)));
        }
        if route.oif == 0 {
            return Ok(Ok(Lookup::NoRoute));
        }
        let entry = self.neighbour(addr, route.oif)?;
        if let Some(mac) = entry.and_then(|n| n.usable_mac()) {
            let smac = self.if_mac_by_index(route.oif)?.unwrap_or([0; 6]);
            return Ok(Ok(Lookup::Resolved(NextHop {
                mac,
                ifindex: route.oif,
                smac,
            })));
        }
        if !entry.is_some_and(|n| n.is_static()) {
            self.ask_resolve(addr, route.oif)?;
        }
        Ok(Ok(Lookup::Pending))
    }

    /// The way to a tunnelling (`-i`) or masquerading (`-m`) real server:
    /// as IPVS's `__ip_vs_get_out_rt`, any route will do (through a gateway
    /// too) but a local one (`Err`, as [`local_error`] for direct routing);
    /// `None` without a route. Never waits: an unknown MAC is asked of the
    /// kernel and `hop` is `None`.
    pub fn path(&mut self, addr: IpAddr) -> io::Result<Result<Option<Path>, String>> {
        let Some(route) = self.route(addr)? else {
            return Ok(Ok(None));
        };
        if route.local {
            return Ok(Err(local_error(addr)));
        }
        if route.oif == 0 {
            return Ok(Ok(None));
        }
        let neighbour = route.gateway.unwrap_or(addr);
        let saddr = match route.prefsrc {
            Some(a) => Some(a),
            None => self.if_addr(route.oif, addr.is_ipv6())?,
        };
        let mtu = match route.mtu {
            0 => self.if_mtu(route.oif)?.unwrap_or(0),
            m => m,
        };
        let entry = self.neighbour(neighbour, route.oif)?;
        let hop = match entry.and_then(|n| n.usable_mac()) {
            Some(mac) => Some(NextHop {
                mac,
                ifindex: route.oif,
                smac: self.if_mac_by_index(route.oif)?.unwrap_or([0; 6]),
            }),
            None => {
                if !entry.is_some_and(|n| n.is_static()) {
                    self.ask_resolve(neighbour, route.oif)?;
                }
                None
            }
        };
        Ok(Ok(Some(Path {
            hop,
            saddr,
            mtu,
            neighbour,
        })))
    }

    /// The MTU of interface `index`.
    pub fn if_mtu(&mut self, index: u32) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Mtu(m) => Some(*m),
                    _ => None,
                }),
                _ => None,
            })),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::EINVAL)) => Ok(None),
            Err(e) => Err(nl_err("interface MTU", e)),
        }
    }

    /// An address of interface `index` of the family (IPv6 when `v6`): the
    /// first of global scope, else the first.
    pub fn if_addr(&mut self, index: u32, v6: bool) -> io::Result<Option<IpAddr>> {
        let mut m = AddressMessage::default();
        m.header.family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        m.header.index = index;
        let replies = self
            .request(RouteNetlinkMessage::GetAddress(m), NLM_F_DUMP | NLM_F_ACK)
            .map_err(|e| nl_err("interface addresses", e))?;
        let mut found: Vec<(bool, IpAddr)> = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            let addr = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = addr.or_else(|| {
                a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = addr.filter(|ip| ip.is_ipv6() == v6) {
                found.push((a.header.scope == AddressScope::Universe, ip));
            }
        }
        Ok(found
            .iter()
            .find(|(global, _)| *global)
            .or(found.first())
            .map(|(_, ip)| *ip))
    }
}

/// rtnetlink's family of an address.
fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// A neighbour message's destination.
fn neigh_addr(addr: IpAddr) -> NeighbourAddress {
    match addr {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

/// The index of the interface `name` of this thread's network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    Netlink::open().ok()?.ifindex(name).ok()?
}

/// The MAC address of an interface of this thread's network namespace.
pub fn if_mac(name: &str) -> Option<[u8; 6]> {
    Netlink::open().ok()?.if_mac(name).ok()?
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn entry(state: u16, mac: Option<[u8; 6]>) -> Neighbour {
        Neighbour {
            addr: Ipv4Addr::new(198, 51, 100, 11).into(),
            ifindex: 2,
            mac,
            state,
        }
    }

    #[test]
    fn only_valid_entries_with_an_address_are_used() {
        let mac = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01];
        assert_eq!(entry(NUD_REACHABLE, Some(mac)).usable_mac(), Some(mac));
        assert_eq!(entry(NUD_STALE, Some(mac)).usable_mac(), Some(mac));
        assert_eq!(entry(NUD_PERMANENT, Some(mac)).usable_mac(), Some(mac));
        // NUD_INCOMPLETE, NUD_FAILED, NUD_NONE.
        assert_eq!(entry(0x01, None).usable_mac(), None);
        assert_eq!(entry(0x20, Some(mac)).usable_mac(), None);
        assert_eq!(entry(0, Some(mac)).usable_mac(), None);
        assert_eq!(entry(NUD_REACHABLE, Some([0; 6])).usable_mac(), None);
        assert!(entry(NUD_PERMANENT, Some(mac)).is_static());
        assert!(!entry(NUD_STALE, Some(mac)).is_static());
    }

    #[test]
    fn neighbour_messages_parse() {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = 7;
        m.header.state = NeighbourState::Stale;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                Ipv4Addr::new(198, 51, 100, 12),
            )));
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 1, 2, 3, 4]));
        let n = Neighbour::from_message(&m).unwrap();
        assert_eq!(n.addr, IpAddr::from(Ipv4Addr::new(198, 51, 100, 12)));
        assert_eq!((n.ifindex, n.state), (7, NUD_STALE));
        assert_eq!(n.usable_mac(), Some([2, 0, 1, 2, 3, 4]));
        // IPv6 entries too.
        m.header.family = AddressFamily::Inet6;
        m.attributes[0] = NeighbourAttribute::Destination(NeighbourAddress::Inet6(
            "2001:db8::11".parse().unwrap(),
        ));
        let n = Neighbour::from_message(&m).unwrap();
        assert_eq!(n.addr, "2001:db8::11".parse::<IpAddr>().unwrap());
        assert_eq!(n.usable_mac(), Some([2, 0, 1, 2, 3, 4]));
        m.header.family = AddressFamily::Bridge;
        assert_eq!(Neighbour::from_message(&m), None);
    }

    #[test]
    fn macs_parse_and_format() {
        assert_eq!(parse_mac("aa:bb:cc:dd:ee"), None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff:00"), None);
        let m = parse_mac("02:00:c6:33:64:0b").unwrap();
        assert_eq!(format_mac(&m), "02:00:c6:33:64:0b");
    }

    #[test]
    fn the_local_error_is_the_command_lines() {
        // `lbctl -a` refuses loopback reals before it asks the kernel (the command line's
        // check); the same words either way.
        assert_eq!(
            local_error(Ipv4Addr::new(198, 51, 100, 2).into()),
            "real server 198.51.100.2 is the director itself: lbctl forwards by direct \
             routing (-g) only"
        );
    }

    #[test]
    fn the_gateway_error_names_the_real_and_the_gateway() {
        let e = gateway_error(
            Ipv4Addr::new(192, 0, 2, 20).into(),
            Ipv4Addr::new(198, 51, 100, 1).into(),
            "eth0",
        );
        assert!(e.contains("real server 192.0.2.20"), "{e}");
        assert!(e.contains("via gateway 198.51.100.1 (dev eth0)"), "{e}");
        assert!(e.contains("directly connected network"), "{e}");
    }
}

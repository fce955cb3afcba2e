//! The host's local addresses, as the kernel decides that a packet is for
//! this host: the routes of its `local` table (table 255, `ip route show
//! table local`) of type `local`: every address of every interface, the
//! loopback prefixes, and `ip route add local PREFIX dev lo` ranges. Read
//! over rtnetlink (`RTM_GETROUTE` dumps, both families) in the calling
//! thread's network namespace.

use std::{io, net::IpAddr};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteType},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The kernel's `RT_TABLE_LOCAL`.
const RT_TABLE_LOCAL: u32 = 255;

/// The prefixes of the local table's `local` routes, both families.
pub fn local_prefixes() -> io::Result<Vec<(IpAddr, u8)>> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        for r in dump(family)? {
            if let Some(p) = local_prefix(&r) {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The destination of a `local` route of the local table.
fn local_prefix(r: &RouteMessage) -> Option<(IpAddr, u8)> {
    let table = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table));
    if table != RT_TABLE_LOCAL || r.header.kind != RouteType::Local {
        return None;
    }
    let plen = r.header.destination_prefix_length;
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(a)) => Some((IpAddr::V4(*a), plen)),
        RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some((IpAddr::V6(*a), plen)),
        _ => None,
    })
}

fn nl_err(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Every route of `family` (an `RTM_GETROUTE` dump).
fn dump(family: AddressFamily) -> io::Result<Vec<RouteMessage>> {
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("netlink socket", e))?;
    sock.bind_auto().map_err(|e| nl_err("netlink bind", e))?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(|e| nl_err("netlink connect", e))?;
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut req = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetRoute(m)),
    );
    req.finalize();
    let mut bytes = vec![0; req.buffer_len()];
    req.serialize(&mut bytes);
    sock.send(&bytes, 0)
        .map_err(|e| nl_err("dumping the routes", e))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut routes = Vec::new();
    loop {
        let n = sock
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| nl_err("dumping the routes", e))?;
        let mut off = 0;
        while off < n.min(buf.len()) {
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = m.header.length as usize;
            match m.payload {
                NetlinkPayload::Done(_) => return Ok(routes),
                NetlinkPayload::Error(e) => {
                    if let Some(c) = e.code {
                        return Err(nl_err(
                            "dumping the routes",
                            io::Error::from_raw_os_error(-c.get()),
                        ));
                    }
                    return Ok(routes);
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => routes.push(r),
                _ => {}
            }
            if len == 0 {
                break;
            }
            off += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local() {
        // Every network namespace has lo's 127.0.0.0/8 (once lo is up; the
        // host's is).
        let p = local_prefixes().expect("dump");
        assert!(
            p.iter().any(|(a, _)| a.is_loopback()),
            "no loopback prefix in {p:?}"
        );
    }
}

//! Following the real servers' MAC addresses: the daemon listens to the
//! kernel's neighbour events (rtnetlink group `RTNLGRP_NEIGH`) and, when an
//! entry gets a MAC address (the kernel resolved a real server installed
//! unresolved) or changes it (a replaced real server, a gratuitous ARP),
//! writes the new next hop into every direct-routing dest of that address,
//! through [`Table`] (the one writer of `DESTS`).
//!
//! Entries the kernel drops or fails to refresh leave the dests as they
//! are: the last MAC known is the best guess, and the XDP program keeps
//! forwarding to it.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    net::IpAddr,
    path::PathBuf,
    time::Duration,
};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use tokio::io::unix::AsyncFd;

use super::Logger;
use crate::{
    Pins, Table,
    error::Error,
    neigh::{Neighbour, Netlink, NextHop, format_mac},
};

/// Events arriving within this window are applied together.
const BATCH: Duration = Duration::from_millis(20);

/// A socket subscribed to the kernel's neighbour events.
fn subscribe() -> io::Result<AsyncFd<Socket>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind(&SocketAddr::new(0, 0))?;
    sock.add_membership(libc::RTNLGRP_NEIGH)?;
    // A burst of events (a thousand real servers resolving at once) must
    // not overflow the socket.
    sock.set_rx_buf_sz(4 << 20)?;
    sock.set_non_blocking(true)?;
    // SAFETY: the socket owns its descriptor, which stays open until the
    // socket is dropped with the `AsyncFd`, and `as_raw_fd` always returns
    // that descriptor.
    unsafe { AsyncFd::register(sock) }.map_err(|e| e.into_parts().1)
}

/// An address and the (MAC, ifindex) of its neighbour entry, `None` when
/// the entry has no usable MAC.
type Event = (IpAddr, Option<([u8; 6], u32)>);

/// The neighbour entries in one datagram of events.
fn parse_events(buf: &[u8], out: &mut Vec<Event>) {
    let mut off = 0;
    while off < buf.len() {
        let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..]) else {
            return;
        };
        let len = m.header.length as usize;
        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) = &m.payload
            && let Some(n) = Neighbour::from_message(n)
        {
            out.push((n.addr, n.usable_mac().map(|mac| (mac, n.ifindex))));
        }
        if len == 0 {
            return;
        }
        off += (len + 3) & !3;
    }
}

/// Subscribes to neighbour events now (so none is missed from here on) and
/// follows them on a task of the daemon's runtime. A failure to subscribe
/// is logged; the daemon goes on without (the XDP program still resolves
/// unresolved real servers itself).
pub fn start(pin_dir: PathBuf, log: Logger) {
    match subscribe() {
        Ok(sock) => {
            tokio::spawn(follow(sock, pin_dir, log));
        }
        Err(e) => log.log(&format!(
            "Error: subscribing to the kernel's neighbour events: {e}; real servers' MAC \
             changes are not followed"
        )),
    }
}

async fn follow(sock: AsyncFd<Socket>, pin_dir: PathBuf, log: Logger) {
    // What was last applied, per address: only changes reach the table.
    let mut known: HashMap<IpAddr, ([u8; 6], u32)> = HashMap::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let mut events = Vec::new();
        let mut deadline = None;
        loop {
            let read = async {
                let mut guard = sock.readable().await?;
                match guard.try_io(|s| s.get_ref().recv(&mut &mut buf[..], 0)) {
                    Ok(r) => r.map(Some),
                    Err(_would_block) => Ok(None),
                }
            };
            let got = match deadline {
                None => read.await,
                Some(d) => match tokio::time::timeout_at(d, read).await {
                    Ok(r) => r,
                    Err(_) => break,
                },
            };
            match got {
                Ok(Some(n)) => {
                    parse_events(&buf[..n.min(buf.len())], &mut events);
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + BATCH);
                }
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Events were lost: forget what is known, so the next
                    // event of every address is applied.
                    log.log("Warning: neighbour events were lost (ENOBUFS); following again");
                    known.clear();
                }
                Err(e) => {
                    log.log(&format!(
                        "Error: reading neighbour events: {e}; real servers' MAC changes are \
                         no longer followed"
                    ));
                    return;
                }
            }
        }
        let mut todo: BTreeMap<IpAddr, ([u8; 6], u32)> = BTreeMap::new();
        for (addr, entry) in events {
            match entry {
                Some(e) if known.get(&addr) != Some(&e) => {
                    todo.insert(addr, e);
                }
                Some(_) => {
                    todo.remove(&addr);
                }
                None => {
                    known.remove(&addr);
                    todo.remove(&addr);
                }
            }
        }
        if todo.is_empty() {
            continue;
        }
        let dir = pin_dir.clone();
        let hops: Vec<Entry> = todo.into_iter().collect();
        let result = tokio::task::spawn_blocking(move || apply(&dir, &hops))
            .await
            .unwrap_or_else(|e| Err(Error::Invalid(format!("neighbour task failed: {e}"))));
        match result {
            Ok((found, lines)) => {
                // Only addresses of real servers are remembered: another
                // one's next event is looked at again (it may be a real
                // server by then).
                known.extend(found);
                for l in lines {
                    log.log(&l);
                }
            }
            Err(e) => log.log(&format!(
                "Error: updating real servers' next hops: {}",
                super::chain(&e)
            )),
        }
    }
}

/// An address and the (MAC, ifindex) of its neighbour entry.
type Entry = (IpAddr, ([u8; 6], u32));

/// Writes the new next hops through the table. Returns the entries of real
/// servers' addresses and one log line per address whose dests changed.
fn apply(dir: &std::path::Path, hops: &[Entry]) -> Result<(Vec<Entry>, Vec<String>), Error> {
    let mut nl = Netlink::open().map_err(|e| Error::Io {
        what: "netlink".into(),
        source: e,
    })?;
    let mut smacs: HashMap<u32, ([u8; 6], String)> = HashMap::new();
    let mut next = Vec::new();
    for (addr, (mac, ifindex)) in hops {
        let (smac, _) = smacs.entry(*ifindex).or_insert_with(|| {
            let smac = nl
                .if_mac_by_index(*ifindex)
                .ok()
                .flatten()
                .unwrap_or([0; 6]);
            (smac, nl.if_name(*ifindex))
        });
        next.push((
            *addr,
            NextHop {
                mac: *mac,
                ifindex: *ifindex,
                smac: *smac,
            },
        ));
    }
    let mut t = Table::new(Pins::open(dir, None)?);
    let found = t.set_next_hops(&next)?;
    let entry = |a: IpAddr| hops.iter().find(|(h, _)| *h == a).copied();
    let mut changed: Vec<IpAddr> = found.iter().filter(|f| f.1).map(|f| f.0).collect();
    changed.sort_unstable();
    changed.dedup();
    let known = found.iter().filter_map(|f| entry(f.0)).collect();
    let lines = changed
        .into_iter()
        .filter_map(|a| {
            let (_, (mac, ifindex)) = hops.iter().find(|(h, _)| *h == a)?;
            let dev = smacs.get(ifindex).map_or("?", |(_, n)| n.as_str());
            Some(format!(
                "Real server {a}: next hop {} on {dev} (from the kernel's neighbour table)",
                format_mac(mac)
            ))
        })
        .collect();
    Ok((known, lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NetlinkHeader;
    use netlink_packet_route::{
        AddressFamily,
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
    };

    fn event(addr: IpAddr, state: NeighbourState, mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut n = NeighbourMessage::default();
        let (family, dest) = match addr {
            IpAddr::V4(a) => (AddressFamily::Inet, NeighbourAddress::Inet(a)),
            IpAddr::V6(a) => (AddressFamily::Inet6, NeighbourAddress::Inet6(a)),
        };
        n.header.family = family;
        n.header.ifindex = 3;
        n.header.state = state;
        n.attributes.push(NeighbourAttribute::Destination(dest));
        if let Some(m) = mac {
            n.attributes
                .push(NeighbourAttribute::LinkLayerAddress(m.to_vec()));
        }
        let mut m = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::NewNeighbour(n)),
        );
        m.finalize();
        let mut b = vec![0; m.buffer_len()];
        m.serialize(&mut b);
        b
    }

    /// The same events of either family: IPv4 (ARP) and IPv6 (neighbour
    /// discovery) entries of real servers, in one datagram.
    #[test]
    fn events_give_usable_entries_and_lost_ones() {
        for (a, b) in [
            ("198.51.100.11", "198.51.100.12"),
            ("2001:db8::11", "2001:db8::12"),
        ] {
            let a: IpAddr = a.parse().unwrap();
            let b: IpAddr = b.parse().unwrap();
            let mac = [2, 0, 198, 51, 100, 11];
            let mut buf = event(a, NeighbourState::Reachable, Some(mac));
            buf.extend(event(b, NeighbourState::Failed, None));
            buf.extend(event(b, NeighbourState::Stale, Some(mac)));
            let mut out = Vec::new();
            parse_events(&buf, &mut out);
            assert_eq!(
                out,
                vec![(a, Some((mac, 3))), (b, None), (b, Some((mac, 3)))],
                "{a}"
            );
        }
    }
}

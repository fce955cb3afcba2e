//! Next hops of real servers, asked of the kernel over netlink, and
//! followed when they change: direct routing's (docs/SEMANTICS.md §7: the
//! real server on a directly connected network), and the way to tunnelling
//! and masquerading real servers (§18: any route, the next hop being its
//! gateway; the outer source address and the route's MTU with it).

use std::{collections::HashMap, net::IpAddr};

use lb_common::{DEST_F_IN_USE, DEST_F_RESOLVED, Dest, FWD_ROUTE, FWD_TUNNEL};

use super::Table;
use crate::{
    addr::{from_addr, to_addr},
    error::Error,
    neigh::{self, Lookup, NextHop, Path},
};

impl Table {
    /// Sets the next hop of the dest `d` (its address and method already
    /// written in it) as the kernel routes it now: direct routing's
    /// [`Table::next_hop`], or for `-i`/`-m` the route's [`Path`]. An
    /// unknown MAC keeps the last one (the kernel was asked to resolve it).
    pub(super) fn route_dest(&mut self, d: &mut Dest) -> Result<(), Error> {
        let addr = from_addr(&d.addr);
        if d.fwd == FWD_ROUTE {
            if let Some(hop) = self.next_hop(addr)? {
                set_hop(d, &hop);
            }
            return Ok(());
        }
        if let Some(path) = self.path(addr)? {
            set_path(d, &path);
        }
        Ok(())
    }

    /// The way to a tunnelling or masquerading real server (not cached: a
    /// route's source and MTU change more than a neighbour's MAC). `Err`
    /// for a real server that is the director itself.
    fn path(&mut self, addr: IpAddr) -> Result<Option<Path>, Error> {
        if self.nl.is_none() {
            self.nl = neigh::Netlink::open().ok();
        }
        let Some(nl) = self.nl.as_mut() else {
            return Ok(None);
        };
        match nl.path(addr) {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(refused)) => Err(Error::Invalid(refused)),
            Err(_) => {
                self.nl = None;
                Ok(None)
            }
        }
    }

    /// The route check and the next hop of a direct-routing real server
    /// (docs/SEMANTICS.md §7), asked of the kernel over netlink (one socket
    /// per table) without waiting: `Err` when the kernel routes it through a
    /// gateway, `None` when its MAC is not known yet (the kernel was asked to
    /// resolve it; the XDP program asks `bpf_fib_lookup` on its next new flow
    /// and `lbctl daemon` fills it in when the kernel learns it).
    /// Both families (IPv6 with `AF_INET6` routes and neighbours).
    pub(super) fn next_hop(&mut self, addr: IpAddr) -> Result<Option<NextHop>, Error> {
        if let Some(known) = self.hops.get(&addr) {
            return known.clone().map_err(Error::Invalid);
        }
        let hop = self.ask_next_hop(addr);
        match &hop {
            Ok(h) => self.hops.insert(addr, Ok(*h)),
            Err(Error::Invalid(refused)) => self.hops.insert(addr, Err(refused.clone())),
            Err(_) => None,
        };
        hop
    }

    fn ask_next_hop(&mut self, addr: IpAddr) -> Result<Option<NextHop>, Error> {
        if self.nl.is_none() {
            self.nl = neigh::Netlink::open().ok();
        }
        let Some(nl) = self.nl.as_mut() else {
            return Ok(None);
        };
        match nl.next_hop(addr) {
            Ok(Ok(Lookup::Resolved(hop))) => Ok(Some(hop)),
            Ok(Ok(Lookup::Pending | Lookup::NoRoute)) => Ok(None),
            Err(_) => {
                // A broken socket: a new one next time.
                self.nl = None;
                Ok(None)
            }
            Ok(Err(refused)) => Err(Error::Invalid(refused)),
        }
    }

    /// Re-resolves the next hop of every real server that has none yet.
    pub fn resolve_unresolved(&mut self) -> Result<(), Error> {
        let todo: Vec<(u32, Dest)> = self
            .dest_table()?
            .into_iter()
            .enumerate()
            .map(|(i, d)| (i as u32, d))
            .filter(|(_, d)| d.flags & DEST_F_IN_USE != 0 && d.flags & DEST_F_RESOLVED == 0)
            .collect();
        for (i, mut d) in todo {
            // A real refused today (behind a gateway) stays as it is.
            let addr = from_addr(&d.addr);
            if d.fwd != FWD_ROUTE {
                if let Ok(Some(path)) = self.path(addr) {
                    set_path(&mut d, &path);
                    self.write_dest(i, &d)?;
                }
            } else if let Ok(Some(hop)) = self.next_hop(addr) {
                set_hop(&mut d, &hop);
                self.write_dest(i, &d)?;
            }
        }
        Ok(())
    }

    /// The kernel learned (or changed) the MAC of some neighbours: every
    /// direct-routing dest of those addresses, and every tunnelling or
    /// masquerading dest whose route goes through one of them (asked of
    /// the kernel again when the event is on its interface), takes its new
    /// next hop. Returns the neighbour address of every dest found, and
    /// whether it changed.
    pub fn set_next_hops(
        &mut self,
        hops: &[(IpAddr, NextHop)],
    ) -> Result<Vec<(IpAddr, bool)>, Error> {
        let mut found = Vec::new();
        let mut paths: HashMap<IpAddr, Option<Path>> = HashMap::new();
        for (i, mut d) in self.dest_table()?.into_iter().enumerate() {
            if d.flags & DEST_F_IN_USE == 0 {
                continue;
            }
            if d.fwd != FWD_ROUTE {
                let resolved = d.flags & DEST_F_RESOLVED != 0;
                if resolved && !hops.iter().any(|(_, h)| h.ifindex == d.ifindex) {
                    continue;
                }
                let addr = from_addr(&d.addr);
                let path = match paths.get(&addr) {
                    Some(p) => *p,
                    None => {
                        let p = self.path(addr).ok().flatten();
                        paths.insert(addr, p);
                        p
                    }
                };
                let Some(mut path) = path else {
                    continue;
                };
                let Some((_, hop)) = hops.iter().find(|(a, _)| *a == path.neighbour) else {
                    continue;
                };
                path.hop = Some(*hop);
                let before = d;
                set_path(&mut d, &path);
                let changed = !same_dest(&before, &d);
                if changed {
                    self.write_dest(i as u32, &d)?;
                }
                found.push((path.neighbour, changed));
                continue;
            }
            let addr = from_addr(&d.addr);
            let Some((_, hop)) = hops.iter().find(|(a, _)| *a == addr) else {
                continue;
            };
            let same = d.flags & DEST_F_RESOLVED != 0
                && d.mac == hop.mac
                && (d.ifindex == hop.ifindex || d.ifindex == 0);
            if !same {
                set_hop(&mut d, hop);
                self.write_dest(i as u32, &d)?;
            }
            found.push((addr, !same));
        }
        Ok(found)
    }
}

pub(super) fn set_hop(d: &mut Dest, hop: &NextHop) {
    d.mac = hop.mac;
    d.smac = hop.smac;
    d.ifindex = hop.ifindex;
    d.flags |= DEST_F_RESOLVED;
}

/// A tunnelling or masquerading dest's next hop (when known), route MTU,
/// and for tunnelling its outer source address.
fn set_path(d: &mut Dest, path: &Path) {
    if let Some(hop) = &path.hop {
        set_hop(d, hop);
    }
    d.mtu = path.mtu;
    if d.fwd == FWD_TUNNEL
        && let Some(saddr) = path.saddr
    {
        d.saddr = to_addr(saddr);
    }
}

/// The words of a dest that a next hop sets.
fn same_dest(a: &Dest, b: &Dest) -> bool {
    a.mac == b.mac
        && a.smac == b.smac
        && a.ifindex == b.ifindex
        && a.flags == b.flags
        && a.mtu == b.mtu
        && a.saddr == b.saddr
}

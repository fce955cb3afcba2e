//! Next hops of direct-routing real servers, asked of the kernel over
//! netlink (docs/SEMANTICS.md §7), and followed when they change.

use std::net::IpAddr;

use lb_common::{DEST_F_IN_USE, DEST_F_RESOLVED, Dest, FWD_ROUTE};

use super::Table;
use crate::{
    addr::from_addr,
    error::Error,
    neigh::{self, Lookup, NextHop},
};

impl Table {
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
            if let Ok(Some(hop)) = self.next_hop(from_addr(&d.addr)) {
                set_hop(&mut d, &hop);
                self.write_dest(i, &d)?;
            }
        }
        Ok(())
    }

    /// The kernel learned (or changed) the MAC of some real servers: every
    /// dest of those addresses takes its new next hop. Returns the address
    /// of every dest found, and whether it changed.
    pub fn set_next_hops(
        &mut self,
        hops: &[(IpAddr, NextHop)],
    ) -> Result<Vec<(IpAddr, bool)>, Error> {
        let mut found = Vec::new();
        for (i, mut d) in self.dest_table()?.into_iter().enumerate() {
            if d.flags & DEST_F_IN_USE == 0 || d.fwd != FWD_ROUTE {
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

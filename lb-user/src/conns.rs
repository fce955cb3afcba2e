//! Reading the connection and template tables for the listings: `-L -c`'s
//! rows and `-L`'s PersistConn gauge (ActiveConn/InActConn are the
//! program's live counts, `DEST_CONNS`). The tables may
//! hold millions of entries, so they are walked a batch at a time
//! (`batch::for_each`) and never collected: `-L -c` formats and writes each
//! row as it is read, `-L` only adds to one counter per real server, and the
//! memory used stays that of one batch whatever the table's size. Rows come
//! in the kernel's hash order, connection entries first, then templates, as
//! ipvsadm prints the kernel's table unsorted.

use std::{collections::BTreeMap, ops::ControlFlow, os::fd::AsFd};

use aya::maps::IterableMap;

use lb_common::{
    CONN_STATE_NAMES, COUNTED_ACTIVE, COUNTED_INACTIVE, Conn, ConnKey, DEST_F_AVAILABLE,
    DEST_F_IN_USE, Dest, DestConns, MAP_CONNS, MAP_DEST_CONNS, MAP_SWEEPER, MAP_TEMPLATES,
    NS_PER_SEC, SweepStats, TMPL_F_INVALID, TMPL_INVALID_PORT, TMPL_S_ASSURED, Template,
    TemplateKey,
};

use crate::{
    addr::from_addr,
    batch,
    clock::monotonic_ns,
    error::Error,
    model::{ConnView, Proto},
    pins::map_err,
    table::Table,
};

/// Per `DESTS` slot: (active, inactive, persistent) entries, what `-L`
/// shows as ActiveConn, InActConn and PersistConn.
pub type Gauges = BTreeMap<u32, (u64, u64, u64)>;

impl Table {
    /// Calls `f` on every connection entry, a batch at a time, until `f`
    /// breaks.
    pub fn for_each_conn(
        &self,
        f: impl FnMut(&ConnKey, &Conn) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let m = &self.pins.conns;
        batch::for_each(m, || m.iter().filter_map(Result::ok), f).map_err(map_err(MAP_CONNS))
    }

    /// Calls `f` on every template, a batch at a time, until `f` breaks.
    pub fn for_each_template(
        &self,
        f: impl FnMut(&TemplateKey, &Template) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let m = &self.pins.templates;
        batch::for_each(m, || m.iter().filter_map(Result::ok), f).map_err(map_err(MAP_TEMPLATES))
    }

    /// Every connection entry, collected (for tests and tools; the
    /// listings stream them).
    pub fn conn_entries(&self) -> Result<Vec<(ConnKey, Conn)>, Error> {
        let mut out = Vec::new();
        self.for_each_conn(|k, c| {
            out.push((*k, *c));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Every template, collected.
    pub fn template_entries(&self) -> Result<Vec<(TemplateKey, Template)>, Error> {
        let mut out = Vec::new();
        self.for_each_template(|k, t| {
            out.push((*k, *t));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Each dest slot's gauges: ActiveConn and InActConn as the program
    /// keeps them (`DEST_CONNS`, live to within the sweeper's second), and
    /// PersistConn, the live templates bound to the slot (from `TEMPLATES`
    /// at `now`; templates of a flushed dest, of another generation or a
    /// free slot, are not counted).
    pub fn conn_gauges(&self, dests: &[Dest], now: u64) -> Result<Gauges, Error> {
        let mut gauges = Gauges::new();
        for (slot, c) in self.dest_conns(dests.len() as u32)?.iter().enumerate() {
            if c.active_now() != 0 || c.inactive_now() != 0 {
                gauges.insert(
                    slot as u32,
                    (c.active_now() as u64, c.inactive_now() as u64, 0),
                );
            }
        }
        self.for_each_template(|_, t| {
            if now >= t.expires {
                return ControlFlow::Continue(());
            }
            let Some(d) = dests.get(t.dest as usize) else {
                return ControlFlow::Continue(());
            };
            if d.generation == t.dest_gen && d.flags & DEST_F_IN_USE != 0 {
                gauges.entry(t.dest).or_default().2 += 1;
            }
            ControlFlow::Continue(())
        })?;
        Ok(gauges)
    }

    /// The live counts of the first `n` dest slots (`DEST_CONNS`).
    pub fn dest_conns(&self, n: u32) -> Result<Vec<DestConns>, Error> {
        let n = n.min(self.pins.sizes.reals);
        batch::array_range(self.pins.dest_conns.map().fd().as_fd(), 0, n)
            .map_err(|e| map_err(MAP_DEST_CONNS)(batch::syscall_error("bpf_map_lookup_batch", e)))
    }

    /// The sweeper's counters (`SWEEPER`): its runs, the entries it
    /// expired, and its last sweep's size and duration.
    pub fn sweeper(&self) -> Result<SweepStats, Error> {
        Ok(self
            .pins
            .sweeper
            .get(&0, 0)
            .map_err(map_err(MAP_SWEEPER))?
            .stats)
    }

    /// The counts `DEST_CONNS` should hold for the first `n` slots: the
    /// conns of each slot in `CONNS` by their `counted`, walked now. Equal
    /// to `dest_conns` when no conn changes during the walk (tests, and
    /// `lbctl attach`'s check after an upgrade).
    pub fn walked_dest_conns(&self, n: u32) -> Result<Vec<DestConns>, Error> {
        let mut out = vec![DestConns::default(); n as usize];
        self.for_each_conn(|_, c| {
            if let Some(d) = out.get_mut(c.dest as usize) {
                match c.counted {
                    COUNTED_ACTIVE => d.active += 1,
                    COUNTED_INACTIVE => d.inactive += 1,
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Calls `f` on each row of `-L -c` (live connection entries, then
    /// templates), a batch of the table at a time, until `f` breaks.
    pub fn for_each_conn_row(
        &self,
        mut f: impl FnMut(&ConnView) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let now = monotonic_ns();
        let settings = self.pins.settings()?;
        let dests = self.dest_table()?;
        let secs = |exp: u64| exp.saturating_sub(now) / NS_PER_SEC;
        let mut stopped = false;
        self.for_each_conn(|k, c| {
            if now >= c.expires() {
                return ControlFlow::Continue(());
            }
            let Some(d) = dests.get(c.dest as usize) else {
                return ControlFlow::Continue(());
            };
            if d.generation != c.dest_gen || d.flags & DEST_F_IN_USE == 0 {
                return ControlFlow::Continue(()); // flushed
            }
            if d.flags & DEST_F_AVAILABLE == 0 && settings.expire_nodest_conn != 0 {
                return ControlFlow::Continue(()); // expires on its next packet
            }
            let Some(proto) = Proto::from_number(k.proto) else {
                return ControlFlow::Continue(());
            };
            // A port-0 service's dest has port 0: the kernel stores the
            // port the client used (docs/SEMANTICS.md §2.1).
            let dport = if d.port == [0, 0] { k.vport } else { d.port };
            let flow = f(&ConnView {
                proto,
                expire_secs: secs(c.expires()),
                state: CONN_STATE_NAMES
                    .get(c.state as usize)
                    .copied()
                    .unwrap_or("NONE"),
                caddr: from_addr(&k.caddr),
                cport: u16::from_be_bytes(k.cport),
                vaddr: from_addr(&k.vaddr),
                vport: u16::from_be_bytes(k.vport),
                daddr: from_addr(&d.addr),
                dport: u16::from_be_bytes(dport),
            });
            stopped = flow.is_break();
            flow
        })?;
        if stopped {
            return Ok(());
        }
        self.for_each_template(|k, t| {
            if now >= t.expires {
                return ControlFlow::Continue(());
            }
            let Some(d) = dests.get(t.dest as usize) else {
                return ControlFlow::Continue(());
            };
            if d.generation != t.dest_gen || d.flags & DEST_F_IN_USE == 0 {
                return ControlFlow::Continue(());
            }
            let Some(proto) = Proto::from_number(k.proto) else {
                return ControlFlow::Continue(());
            };
            // A template that a new connection of its client found invalid
            // was moved to the key of port 65535 and flagged, as the kernel
            // rehashes it (§3.2): ports 65535. Until then it shows its own
            // ports, whatever happened to its real since. A port-0
            // service's template keeps port 0.
            let (vport, dport) = if t.flags & TMPL_F_INVALID != 0 {
                (TMPL_INVALID_PORT, TMPL_INVALID_PORT)
            } else if k.vport == [0, 0] {
                (0, 0)
            } else {
                (u16::from_be_bytes(k.vport), u16::from_be_bytes(d.port))
            };
            f(&ConnView {
                proto,
                expire_secs: secs(t.expires),
                state: if t.state == TMPL_S_ASSURED {
                    "ASSURED"
                } else {
                    "NONE"
                },
                caddr: from_addr(&k.caddr),
                cport: 0,
                vaddr: from_addr(&k.vaddr),
                vport,
                daddr: from_addr(&d.addr),
                dport,
            })
        })
    }

    /// Rows of `-L -c`, collected (for tests and tools; `lbctl -L -c`
    /// streams them with [`Table::for_each_conn_row`]).
    pub fn conn_rows(&self) -> Result<Vec<ConnView>, Error> {
        let mut rows = Vec::new();
        self.for_each_conn_row(|r| {
            rows.push(r.clone());
            ControlFlow::Continue(())
        })?;
        Ok(rows)
    }
}

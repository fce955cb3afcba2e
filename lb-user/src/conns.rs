//! Reading the connection and template tables for the listings: `-L -c`'s
//! rows and `-L`'s ActiveConn/InActConn/PersistConn gauges. The tables may
//! hold millions of entries, so they are walked a batch at a time
//! (`batch::for_each`) and never collected: `-L -c` formats and writes each
//! row as it is read, `-L` only adds to one counter per real server, and the
//! memory used stays that of one batch whatever the table's size. Rows come
//! in the kernel's hash order, connection entries first, then templates, as
//! ipvsadm prints the kernel's table unsorted.

use std::{collections::BTreeMap, net::Ipv4Addr, ops::ControlFlow};

use lb_common::{
    CONN_STATE_NAMES, Conn, ConnKey, DEST_F_AVAILABLE, DEST_F_IN_USE, Dest, MAP_CONNS,
    MAP_TEMPLATES, NS_PER_SEC, TMPL_S_ASSURED, Template, TemplateKey, conn_state_is_active,
};

use crate::{
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

    /// The live entries and templates of each dest slot of `dests` (the
    /// `DESTS` table by slot) at `now`; entries of a flushed dest (another
    /// generation, or a free slot) are not counted.
    pub fn conn_gauges(&self, dests: &[Dest], now: u64) -> Result<Gauges, Error> {
        let mut gauges = Gauges::new();
        self.for_each_conn(|_, c| {
            if now >= c.expires() {
                return ControlFlow::Continue(());
            }
            let Some(d) = dests.get(c.dest as usize) else {
                return ControlFlow::Continue(());
            };
            if d.generation != c.dest_gen || d.flags & DEST_F_IN_USE == 0 {
                return ControlFlow::Continue(());
            }
            let g = gauges.entry(c.dest).or_default();
            if conn_state_is_active(c.state) {
                g.0 += 1;
            } else {
                g.1 += 1;
            }
            ControlFlow::Continue(())
        })?;
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
            let flow = f(&ConnView {
                proto,
                expire_secs: secs(c.expires()),
                state: CONN_STATE_NAMES
                    .get(c.state as usize)
                    .copied()
                    .unwrap_or("NONE"),
                caddr: Ipv4Addr::from(k.caddr),
                cport: u16::from_be_bytes(k.cport),
                vaddr: Ipv4Addr::from(k.vaddr),
                vport: u16::from_be_bytes(k.vport),
                daddr: Ipv4Addr::from(d.addr),
                dport: u16::from_be_bytes(d.port),
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
            // An invalidated template is shown as the kernel shows it after
            // rehashing it out of the way: ports 65535 (§3.2).
            let valid = d.flags & DEST_F_AVAILABLE != 0
                && d.tmpl_epoch == t.epoch
                && !(settings.expire_quiescent_template != 0 && d.weight == 0);
            let vport = if valid {
                u16::from_be_bytes(k.vport)
            } else {
                65535
            };
            let dport = if valid {
                if k.vport == [0, 0] {
                    0
                } else {
                    u16::from_be_bytes(d.port)
                }
            } else {
                65535
            };
            f(&ConnView {
                proto,
                expire_secs: secs(t.expires),
                state: if t.state == TMPL_S_ASSURED {
                    "ASSURED"
                } else {
                    "NONE"
                },
                caddr: Ipv4Addr::from(k.caddr),
                cport: 0,
                vaddr: Ipv4Addr::from(k.vaddr),
                vport,
                daddr: Ipv4Addr::from(d.addr),
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

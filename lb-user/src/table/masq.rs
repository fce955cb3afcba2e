//! The `-m` real servers as the packet path asks after them (`MASQ_REALS`):
//! whether a reply that matches no conn comes from one, for
//! `nat_icmp_send` (IPVS's `ip_vs_has_real_service`, docs/SEMANTICS.md
//! §19). A count per (address, port, protocol): the same real server may
//! be a `-m` dest of several services. A dest counts while it is in its
//! service (not in the trash), as the kernel's `rs_table`.

use lb_common::{Dest, FWD_MASQ, MAP_MASQ_REALS, RealKey};

use crate::{error::Error, pins::map_err};

use super::Table;

impl Table {
    /// `d` (as written, or as it was) enters (`delta` 1) or leaves (-1)
    /// the `-m` real servers; nothing for another method.
    pub(super) fn count_masq_real(&mut self, d: &Dest, delta: i32) -> Result<(), Error> {
        if d.fwd != FWD_MASQ {
            return Ok(());
        }
        let key = RealKey {
            addr: d.addr,
            port: d.port,
            proto: d.svc.proto,
            _pad: 0,
        };
        let m = &mut self.pins.masq_reals;
        let have = m.get(&key, 0).unwrap_or(0);
        let now = have.saturating_add_signed(delta);
        if now == 0 {
            if have == 0 {
                return Ok(());
            }
            m.remove(&key).map_err(map_err(MAP_MASQ_REALS))
        } else {
            m.insert(key, now, 0).map_err(map_err(MAP_MASQ_REALS))
        }
    }
}

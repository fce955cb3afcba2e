//! The LVS control plane over the pinned maps: what `ipvsadm -A/-E/-D/-C/-a/
//! -e/-d/-Z/--set` do to the kernel's tables, done to ours, and the views
//! the listings print.
//!
//! Rules kept from IPVS (docs/SEMANTICS.md §3, §4, §5):
//! - a service's dest list is kept newest-first and written whole, with the
//!   wrr bookkeeping (`di`, `mw`, `cw_seed`) recomputed as the kernel does;
//! - a removed dest keeps its slot in `DESTS` (the kernel's trash): its
//!   flows are dropped (`expire_nodest_conn=0`) and resume if the same real
//!   server is added back; with `expire_nodest_conn=1` its generation is
//!   bumped, which expires its flows and templates at once, whatever their
//!   number;
//! - setting a weight to 0 with `expire_quiescent_template=1` bumps the
//!   dest's template epoch: all its templates become invalid in O(1).
//!
//! Every operation validates first; on `Err` nothing has changed.

use std::{collections::BTreeMap, net::IpAddr, os::fd::AsFd};

use aya::maps::{IterableMap, PerCpuValues};
use lb_common::{
    CONN_S_ESTABLISHED, CONN_S_FIN_WAIT, CONN_S_UDP, DEST_F_AVAILABLE, DEST_F_IN_USE,
    DEST_F_RESOLVED, Dest, MAP_DEST_STATS, MAP_DESTS, MAP_SERVICES, MAP_STATS, MAP_SVC_DESTS,
    MAP_SVC_STATS, MAP_VIPS, MAX_SERVICE_DESTS, MAX_TIMEOUT, MAX_WEIGHT, REASON_NAMES, SCHED_MH,
    SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_PORT0, SVC_F_SCHED_MASK, Service, ServiceDest,
    ServiceKey, ServiceStats, Settings, VIP_FILTER_WORDS, vip_bit,
};

mod fwmark;
mod hops;
mod masq;
mod views;

use crate::{
    addr::{checked, from_addr, netmask_from_addr, netmask_to_addr, to_addr, v6_prefix_len},
    batch,
    dest_slots::DestSlots,
    error::Error,
    hash_sched,
    list_pool::ListPool,
    model::{
        Fwd, Proto, RealId, RealSpec, Sched, SchedFlags, ServiceId, ServiceSpec, Thresholds,
        Timeouts, TunType,
    },
    neigh::{self, NextHop},
    pins::{Pins, map_err},
    sched_table,
    svc_index::SvcIndex,
};

pub fn service_key(id: &ServiceId) -> ServiceKey {
    ServiceKey {
        addr: to_addr(id.addr),
        port: id.port.to_be_bytes(),
        proto: id.proto.number(),
        _pad: 0,
    }
}

fn service_id(k: &ServiceKey) -> Option<ServiceId> {
    Some(ServiceId {
        proto: Proto::from_number(k.proto)?,
        addr: from_addr(&k.addr),
        port: u16::from_be_bytes(k.port),
    })
}

/// Sets the weight of the real server at `pos` of `list`, whose `Dest` is
/// `d`, in both places the packet path reads it: the service's dest list
/// (the schedulers) and the `Dest` (template checks with
/// `expire_quiescent_template`, port reuse with `expire_nodest_conn`). The
/// only place a weight is set; the caller writes both. `last_weight` (mh)
/// follows as `__ip_vs_update_dest` sets it: on `add`, or to a non-0 weight.
fn set_weight(list: &mut [ServiceDest], pos: usize, d: &mut Dest, weight: u32, add: bool) {
    if add || weight != 0 {
        d.last_weight = weight;
    }
    d.weight = weight;
    if let Some(sd) = list.get_mut(pos) {
        sd.weight = weight;
    }
}

/// Sets the thresholds of `-a`/`-e` (docs/SEMANTICS.md §5.8). The
/// overload state is the program's (`DEST_CONNS`); lb-common's
/// `dest_overloaded` reads it against the new upper threshold, so that
/// removing or raising it clears the overload at once, as
/// `__ip_vs_update_dest` does.
fn set_thresholds(d: &mut Dest, real: &RealSpec) {
    d.u_threshold = real.thresholds.upper;
    d.l_threshold = real.thresholds.lower;
}

/// The `DESTS` slot `-a` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The same real server's trashed slot: its flows and counters resume.
    Resumed,
    /// A slot that was never used (zeros throughout).
    Unused,
    /// A free slot, or another real's trashed one (its generation bumped).
    Taken,
}

/// How far `Settings::dests_used` is raised at a time.
const DESTS_USED_STEP: u32 = 1024;

/// A service and its real servers (weights and thresholds), in list order.
pub type Configured = (ServiceSpec, Vec<RealSpec>);

/// The control plane: LVS operations on the pinned maps.
pub struct Table {
    pub pins: Pins,
    /// `DESTS` as last read, kept up to date by `write_dest`: where `-a`
    /// looks for a slot (a `-R` of 1,000 real servers reads the 65,536
    /// slots once, not once per real; `dest_slots.rs` picks without a
    /// scan). The lock held with `pins` keeps other controllers out; a slot
    /// is read again before it is used.
    slots: Option<DestSlots>,
    /// The services and free service indexes, read once (`svc_index.rs`).
    index: Option<SvcIndex>,
    /// Room in `SVC_DESTS` (`list_pool.rs`), made from the services' blocks
    /// the first time a list is written.
    pool: Option<ListPool>,
    /// Dest lists as last read or written, by service.
    lists: BTreeMap<ServiceId, Vec<ServiceDest>>,
    /// Service values as last read or written.
    values: BTreeMap<ServiceId, Service>,
    /// `Settings::dests_used` as last read or written.
    dests_used: Option<u32>,
    /// The netlink socket next hops are asked on.
    nl: Option<neigh::Netlink>,
    /// Next hops as the kernel gave them during this table's life (a `-R`
    /// names the same real servers in many services: they are asked once).
    hops: BTreeMap<IpAddr, Result<Option<NextHop>, String>>,
}

impl Table {
    pub fn new(pins: Pins) -> Table {
        Table {
            pins,
            slots: None,
            index: None,
            pool: None,
            lists: BTreeMap::new(),
            values: BTreeMap::new(),
            dests_used: None,
            nl: None,
            hops: BTreeMap::new(),
        }
    }

    /// The dest list of `svc` (newest first), read from its block.
    pub fn read_list(&self, svc: &Service) -> Result<Vec<ServiceDest>, Error> {
        if svc.ndests == 0 || svc.cap == 0 {
            return Ok(Vec::new());
        }
        let n = svc.ndests.min(svc.cap);
        let start = svc.list.checked_add(svc.cap).ok_or_else(|| {
            Error::Invalid(format!("service block at {} is out of range", svc.list))
        })?;
        batch::array_range(self.pins.svc_dests.map().fd().as_fd(), start, n)
            .map_err(|e| map_err(MAP_SVC_DESTS)(batch::syscall_error("bpf_map_lookup_batch", e)))
    }

    /// The dest list of service `id` whose value is `svc`, as this table
    /// last wrote it or read from its block.
    fn list(&mut self, id: &ServiceId, svc: &Service) -> Result<Vec<ServiceDest>, Error> {
        if let Some(l) = self.lists.get(id) {
            return Ok(l.clone());
        }
        let l = self.read_list(svc)?;
        self.lists.insert(*id, l.clone());
        Ok(l)
    }

    fn pool(&mut self) -> Result<&mut ListPool, Error> {
        if self.pool.is_none() {
            let used: Vec<(u32, u32)> = self
                .services()?
                .values()
                .filter(|(_, s)| s.cap > 0)
                .map(|(_, s)| (s.list, 2 * s.cap))
                .collect();
            self.pool = Some(ListPool::new(self.pins.sizes.svc_dests(), used));
        }
        self.pool
            .as_mut()
            .ok_or_else(|| Error::Invalid("list pool".into()))
    }

    /// Writes `list` as the dest list of service `id`: a new block of
    /// `SVC_DESTS` with the scheduler's tree (`sched_table`), then the
    /// service value pointing at it, then the old block is freed (a packet
    /// that read the old value still finds its old block). The only way a
    /// list changes.
    fn write_list(
        &mut self,
        id: &ServiceId,
        svc: &mut Service,
        list: Vec<ServiceDest>,
    ) -> Result<(), Error> {
        let old = (svc.cap > 0).then_some((svc.list, 2 * svc.cap));
        self.write_hash_table(svc, &list)?;
        sched_table::dests_changed(svc, &list);
        if svc.cap > 0 {
            let block = sched_table::block(&list);
            let len = block.len() as u32;
            let size = self.pins.sizes.svc_dests();
            let off = self.pool()?.alloc(len).ok_or(Error::ListPoolFull(size))?;
            let keys: Vec<u32> = (off..off + len).collect();
            if let Err(e) = batch::update(self.pins.svc_dests.map().fd().as_fd(), &keys, &block) {
                self.pool()?.free(off, len);
                return Err(map_err(MAP_SVC_DESTS)(batch::syscall_error(
                    "bpf_map_update_batch",
                    e,
                )));
            }
            svc.list = off;
        } else {
            svc.list = 0;
        }
        self.write_service(id, svc)?;
        if let Some((off, len)) = old {
            self.pool()?.free(off, len);
        }
        self.lists.insert(*id, list);
        Ok(())
    }

    /// sh and mh: the table for `list`, before the `Service` value.
    fn write_hash_table(&mut self, svc: &mut Service, list: &[ServiceDest]) -> Result<(), Error> {
        let mh = list.iter().filter(|_| svc.sched == SCHED_MH);
        let dests = mh
            .map(|sd| self.dest_cached(sd.dest))
            .collect::<Result<Vec<_>, _>>()?;
        hash_sched::write_table(&mut self.pins, svc, list, &dests)
    }

    fn services(&self) -> Result<BTreeMap<ServiceId, (ServiceKey, Service)>, Error> {
        let mut out = BTreeMap::new();
        for item in self.pins.services.iter() {
            let (k, v) = item.map_err(map_err(MAP_SERVICES))?;
            if let Some(id) = service_id(&k) {
                out.insert(id, (k, v));
            }
        }
        Ok(out)
    }

    /// The services and their real servers' weights and thresholds, in list
    /// order: what `-S` saves. Reads only the service and dest maps (no scan of the
    /// connection table, unlike `views`).
    pub fn configured(&self) -> Result<Vec<Configured>, Error> {
        let mut out = Vec::new();
        for (id, (_, svc)) in self.services()? {
            let mut reals = Vec::new();
            for sd in &self.read_list(&svc)? {
                let d = self.dest(sd.dest)?;
                reals.push(RealSpec {
                    id: RealId {
                        addr: from_addr(&d.addr),
                        port: u16::from_be_bytes(d.port),
                    },
                    fwd: Fwd::of_dest(&d),
                    weight: sd.weight,
                    thresholds: Thresholds {
                        upper: d.u_threshold,
                        lower: d.l_threshold,
                    },
                });
            }
            out.push((spec_of(&id, &svc), reals));
        }
        Ok(out)
    }

    /// Every `DESTS` slot ever used, by index (`Settings::dests_used`: the
    /// slots above were never given out), read in batches.
    pub fn dest_table(&self) -> Result<Vec<Dest>, Error> {
        let used = self.pins.settings()?.dests_used.min(self.pins.sizes.reals);
        batch::array_range(self.pins.dests.map().fd().as_fd(), 0, used)
            .map_err(|e| map_err(MAP_DESTS)(batch::syscall_error("bpf_map_lookup_batch", e)))
    }

    fn service(&self, id: &ServiceId) -> Result<Service, Error> {
        if let Some(s) = self.values.get(id) {
            return Ok(*s);
        }
        match self.pins.services.get(&service_key(id), 0) {
            Ok(s) => Ok(s),
            Err(aya::maps::MapError::KeyNotFound) => Err(Error::NoService(*id)),
            Err(e) => Err(map_err(MAP_SERVICES)(e)),
        }
    }

    fn write_service(&mut self, id: &ServiceId, svc: &Service) -> Result<(), Error> {
        self.pins
            .services
            .insert(service_key(id), svc, 0)
            .map_err(map_err(MAP_SERVICES))?;
        self.values.insert(*id, *svc);
        if let Some(ix) = self.index.as_mut() {
            ix.written(*id, svc.id);
        }
        Ok(())
    }

    /// The services and free indexes: `SERVICES` is read the first time only.
    fn index(&mut self) -> Result<&SvcIndex, Error> {
        if self.index.is_none() {
            let all = self.services()?;
            let ids = all.into_iter().map(|(id, (_, svc))| (id, svc.id));
            self.index = Some(SvcIndex::new(ids, self.pins.sizes.services));
        }
        self.index
            .as_ref()
            .ok_or_else(|| Error::Invalid("service index".into()))
    }

    /// A dest as last read or written by this table when `DESTS` is cached
    /// (the lock keeps other controllers out, and the packet path writes
    /// only the flags it owns), else from the map.
    fn dest_cached(&self, i: u32) -> Result<Dest, Error> {
        match self.slots.as_ref().and_then(|s| s.get(i)) {
            Some(d) => Ok(*d),
            None => self.dest(i),
        }
    }

    fn dest(&self, i: u32) -> Result<Dest, Error> {
        self.pins.dests.get(&i, 0).map_err(map_err(MAP_DESTS))
    }

    fn write_dest(&mut self, i: u32, d: &Dest) -> Result<(), Error> {
        // Raise the high-water mark first: a reader never misses a slot.
        let used = match self.dests_used {
            Some(u) => u,
            None => self.pins.settings()?.dests_used,
        };
        let used = if i >= used {
            // Raised in steps, so that a `-R` of many reals does not write
            // SETTINGS for each: the slots in between are all zeros (free).
            let mut settings = self.pins.settings()?;
            settings.dests_used = (i + 1)
                .next_multiple_of(DESTS_USED_STEP)
                .min(self.pins.sizes.reals);
            self.pins.set_settings(&settings)?;
            settings.dests_used
        } else {
            used
        };
        self.dests_used = Some(used);
        self.pins.dests.set(i, d, 0).map_err(map_err(MAP_DESTS))?;
        if let Some(s) = self.slots.as_mut() {
            s.set(i, d);
        }
        Ok(())
    }

    fn zero_stats(&mut self, svc_id: Option<u32>, dest: Option<u32>) -> Result<(), Error> {
        let n = aya::util::nr_cpus().map_err(|(_, e)| Error::Io {
            what: "counting CPUs".into(),
            source: e,
        })?;
        let zeros = || PerCpuValues::try_from(vec![ServiceStats::default(); n]);
        if let Some(i) = svc_id {
            let z = zeros().map_err(|e| Error::Io {
                what: "per-CPU values".into(),
                source: e,
            })?;
            self.pins
                .svc_stats
                .set(i, z, 0)
                .map_err(map_err(MAP_SVC_STATS))?;
        }
        if let Some(i) = dest {
            let z = zeros().map_err(|e| Error::Io {
                what: "per-CPU values".into(),
                source: e,
            })?;
            self.pins
                .dest_stats
                .set(i, z, 0)
                .map_err(map_err(MAP_DEST_STATS))?;
        }
        Ok(())
    }

    /// Rewrites the VIP filter (`VIPS`) for the current services and fwmark
    /// rules: the words that change only. Called after a service or a rule
    /// is added or deleted, and when the tables are opened (the filter is
    /// derived state). While a fwmark service exists no bit is cleared
    /// (`fwmark::filter_word`).
    pub fn sync_vip_filter(&mut self) -> Result<(), Error> {
        let sticky = self.index()?.ids().any(|id| id.proto == Proto::Fwm);
        let mut want = vec![0u64; VIP_FILTER_WORDS as usize];
        let mut set = |addr: IpAddr| {
            let bit = vip_bit(&to_addr(addr));
            want[(bit / 64) as usize] |= 1u64 << (bit % 64);
        };
        for id in self.index()?.ids() {
            if id.proto != Proto::Fwm {
                set(id.addr);
            }
        }
        let (addrs, _) = crate::fwmark::filter_addresses(&self.fwmark_rules()?);
        addrs.into_iter().for_each(&mut set);
        let m = &self.pins.vips;
        let mut have = batch::entries(m, || {
            m.iter()
                .enumerate()
                .filter_map(|(i, w)| w.ok().map(|w| (i as u32, w)))
                .collect()
        })
        .map_err(map_err(MAP_VIPS))?;
        have.sort_unstable_by_key(|(i, _)| *i);
        for (i, w) in have {
            let Some(&new) = want.get(i as usize) else {
                continue;
            };
            let new = crate::fwmark::filter_word(new, w, sticky);
            if new != w {
                self.pins.vips.set(i, new, 0).map_err(map_err(MAP_VIPS))?;
            }
        }
        Ok(())
    }

    /// The state derived from the services and the fwmark rules: the VIP
    /// filter, `Settings::has_port0` and `Settings::fwmark`.
    fn update_port0_flag(&mut self) -> Result<(), Error> {
        self.sync_vip_filter()?;
        let any = self
            .index()?
            .ids()
            .any(|id| id.port == 0 && id.proto != Proto::Fwm);
        let any_fwm = self.index()?.ids().any(|id| id.proto == Proto::Fwm);
        let rules = self.fwmark_rules()?;
        let (_, wide) = crate::fwmark::filter_addresses(&rules);
        let mut s = self.pins.settings()?;
        let fwmark = crate::fwmark::settings_flags(any_fwm, !rules.is_empty(), wide, s.fwmark);
        let v = any as u32;
        if s.has_port0 != v || s.fwmark != fwmark {
            s.has_port0 = v;
            s.fwmark = fwmark;
            self.pins.set_settings(&s)?;
        }
        Ok(())
    }

    // ---- services --------------------------------------------------------

    /// `-A`.
    pub fn add_service(&mut self, spec: &ServiceSpec) -> Result<(), Error> {
        validate_service(spec)?;
        let index = self.index()?;
        if index.contains(&spec.id) {
            return Err(Error::ServiceExists(spec.id));
        }
        let id = index
            .first_free()
            .ok_or(Error::TooManyServices(self.pins.sizes.services))?;
        let mut settings = self.pins.settings()?;
        let epoch = settings.next_epoch.max(1);
        settings.next_epoch = epoch.wrapping_add(1).max(1);
        let mut svc: Service = bytemuck::Zeroable::zeroed();
        svc.id = id;
        svc.epoch = epoch;
        svc.generation = 1;
        svc.di = 1;
        apply_spec(&mut svc, spec);
        self.pins.set_settings(&settings)?;
        self.zero_stats(Some(id), None)?;
        self.write_list(&spec.id, &mut svc, Vec::new())?;
        self.update_port0_flag()
    }

    /// `-E`: all of the service's settings are replaced (ipvsadm re-sends
    /// every field). Templates keep the timeout they were made with.
    pub fn edit_service(&mut self, spec: &ServiceSpec) -> Result<(), Error> {
        validate_service(spec)?;
        let mut svc = self.service(&spec.id)?;
        let old_sched = svc.sched;
        apply_spec(&mut svc, spec);
        if svc.sched != old_sched {
            // A new scheduler starts from scratch, as in the kernel.
            let mut settings = self.pins.settings()?;
            svc.epoch = settings.next_epoch.max(1);
            settings.next_epoch = svc.epoch.wrapping_add(1).max(1);
            self.pins.set_settings(&settings)?;
            svc.cw_seed = svc.mw;
        }
        let list = self.list(&spec.id, &svc)?;
        self.write_hash_table(&mut svc, &list)?;
        self.write_service(&spec.id, &svc)?;
        hash_sched::drop_tables(&mut self.pins, svc.id, Some(svc.sched))
    }

    /// `-D`.
    pub fn delete_service(&mut self, id: &ServiceId) -> Result<(), Error> {
        let svc = self.service(id)?;
        let list = self.list(id, &svc)?;
        let settings = self.pins.settings()?;
        self.pins
            .services
            .remove(&service_key(id))
            .map_err(map_err(MAP_SERVICES))?;
        if let Some(ix) = self.index.as_mut() {
            ix.deleted(id);
        }
        self.lists.remove(id);
        self.values.remove(id);
        if svc.cap > 0 {
            self.pool()?.free(svc.list, 2 * svc.cap);
        }
        hash_sched::drop_tables(&mut self.pins, svc.id, None)?;
        for sd in &list {
            self.retire_dest(sd.dest, &settings)?;
        }
        self.update_port0_flag()
    }

    /// `-C`: every service, and every fwmark rule (lbctl's classifier
    /// stands in for the iptables rules, which `ipvsadm -C` leaves alone).
    pub fn clear(&mut self) -> Result<(), Error> {
        for id in self.services()?.keys() {
            self.delete_service(id)?;
        }
        self.clear_fwmark_rules()
    }

    /// A dest leaves its service: its slot stays (trash) so that its flows
    /// can resume if it comes back; `expire_nodest_conn=1` expires them now.
    fn retire_dest(&mut self, i: u32, settings: &Settings) -> Result<(), Error> {
        let mut d = self.dest(i)?;
        self.count_masq_real(&d, -1)?;
        d.flags &= !DEST_F_AVAILABLE;
        if settings.expire_nodest_conn != 0 {
            d.generation = d.generation.wrapping_add(1);
        }
        self.write_dest(i, &d)
    }

    // ---- real servers ----------------------------------------------------

    /// `-a`.
    pub fn add_real(&mut self, sid: &ServiceId, real: &RealSpec) -> Result<(), Error> {
        validate_real(sid, real)?;
        let mut svc = self.service(sid)?;
        validate_thresholds(real)?;
        let mut list = self.list(sid, &svc)?;
        let key = service_key(sid);
        if self.real_pos(&list, &real.id)?.is_some() {
            return Err(Error::RealExists(*sid, real.id));
        }
        if !real_is_unicast(real.id.addr) {
            return Err(Error::RealNotUnicast(real.id.addr));
        }
        if list.len() >= MAX_SERVICE_DESTS {
            return Err(Error::TooManyReals(MAX_SERVICE_DESTS));
        }
        let (slot, mut d, kind) = self.find_slot(&key, &real.id)?;
        d.addr = to_addr(real.id.addr);
        d.port = real.id.port.to_be_bytes();
        real.fwd.to_dest(&mut d);
        d.svc = key;
        d.flags = (d.flags & DEST_F_RESOLVED) | DEST_F_IN_USE | DEST_F_AVAILABLE;
        self.route_dest(&mut d)?;
        // Newest first, as the kernel's list: the new dest is ranked after
        // every other from the tail, so no other rank changes.
        d.rank = list.len() as u32;
        list.insert(
            0,
            ServiceDest {
                dest: slot,
                weight: 0,
            },
        );
        set_weight(&mut list, 0, &mut d, real.weight, true);
        set_thresholds(&mut d, real);
        if kind == Slot::Taken {
            // Another real's counters were there.
            self.zero_stats(None, Some(slot))?;
        }
        self.write_dest(slot, &d)?;
        self.write_list(sid, &mut svc, list)?;
        self.count_masq_real(&d, 1)?;
        self.note_masq(real.fwd)
    }

    /// Turns on the packet path's lookup of masqueraded replies
    /// (`Settings::has_masq`) with the first `-m` real server. It stays on
    /// (a lookup that finds nothing) until the tables are made again.
    fn note_masq(&mut self, fwd: Fwd) -> Result<(), Error> {
        if fwd != Fwd::Masq {
            return Ok(());
        }
        let mut s = self.pins.settings()?;
        if s.has_masq == 0 {
            s.has_masq = 1;
            self.pins.set_settings(&s)?;
        }
        Ok(())
    }

    /// A slot for (service, real): the same real server's old slot if it is
    /// in the trash (its flows resume), else the free slot of lowest index,
    /// else the trashed slot of another real with the lowest index (its
    /// generation is bumped, so nothing bound to the old real can use it).
    fn find_slot(&mut self, key: &ServiceKey, real: &RealId) -> Result<(u32, Dest, Slot), Error> {
        // Who holds a slot, as far as choosing one goes.
        let owner = |d: &Dest| {
            (
                d.flags & (DEST_F_IN_USE | DEST_F_AVAILABLE),
                d.svc,
                d.addr,
                d.port,
            )
        };
        for _ in 0..2 {
            let slots = match self.slots.take() {
                Some(s) => s,
                None => DestSlots::new(self.dest_table()?, self.pins.sizes.reals),
            };
            let pick = slots.pick(key, real);
            let used = slots.used();
            // A slot above the high-water mark, or all zeros below it, was
            // never used.
            let cached = pick.map(|(i, _)| slots.get(i).copied().unwrap_or_default());
            self.slots = Some(slots);
            let (Some((i, resume)), Some(cached)) = (pick, cached) else {
                return Err(Error::TooManyDests(self.pins.sizes.reals));
            };
            if i >= used || (cached.flags == 0 && cached.generation == 0) {
                let d = Dest {
                    generation: 1,
                    ..Dest::default()
                };
                return Ok((i, d, Slot::Unused));
            }
            let mut d = self.dest(i)?;
            if owner(&d) != owner(&cached) {
                // Written behind this table's back: read the slots again.
                self.slots = None;
                continue;
            }
            if resume {
                return Ok((i, d, Slot::Resumed));
            }
            d.generation = d.generation.wrapping_add(1);
            d.flags = 0;
            return Ok((i, d, Slot::Taken));
        }
        Err(Error::Invalid("DESTS keeps changing".into()))
    }

    fn real_pos(&self, list: &[ServiceDest], real: &RealId) -> Result<Option<usize>, Error> {
        for (pos, sd) in list.iter().enumerate() {
            let d = self.dest_cached(sd.dest)?;
            if d.addr == to_addr(real.addr) && d.port == real.port.to_be_bytes() {
                return Ok(Some(pos));
            }
        }
        Ok(None)
    }

    /// `-e`.
    pub fn edit_real(&mut self, sid: &ServiceId, real: &RealSpec) -> Result<(), Error> {
        validate_real(sid, real)?;
        let mut svc = self.service(sid)?;
        validate_thresholds(real)?;
        let mut list = self.list(sid, &svc)?;
        let pos = self
            .real_pos(&list, &real.id)?
            .ok_or(Error::NoReal(*sid, real.id))?;
        let slot = list[pos].dest;
        let settings = self.pins.settings()?;
        let mut d = self.dest(slot)?;
        let was = d.weight;
        set_weight(&mut list, pos, &mut d, real.weight, false);
        set_thresholds(&mut d, real);
        // The whole dest is replaced, method and tunnel settings included
        // (ipvsadm sends them with every `-e`); conns keep the method they
        // were bound with.
        let before = d;
        real.fwd.to_dest(&mut d);
        if real.weight == 0 && was != 0 && settings.expire_quiescent_template != 0 {
            // Flush this real server's templates, in O(1) whatever their number.
            d.tmpl_epoch = d.tmpl_epoch.wrapping_add(1);
        }
        // Re-resolved: a real server whose MAC changed is followed (an
        // unknown MAC keeps the last one; the kernel is asked to resolve).
        self.route_dest(&mut d)?;
        self.write_dest(slot, &d)?;
        self.write_list(sid, &mut svc, list)?;
        self.count_masq_real(&before, -1)?;
        self.count_masq_real(&d, 1)?;
        self.note_masq(real.fwd)
    }

    /// `-d`.
    pub fn delete_real(&mut self, sid: &ServiceId, real: &RealId) -> Result<(), Error> {
        let mut svc = self.service(sid)?;
        let mut list = self.list(sid, &svc)?;
        let pos = self
            .real_pos(&list, real)?
            .ok_or(Error::NoReal(*sid, *real))?;
        let slot = list.remove(pos).dest;
        let newer: Vec<u32> = list[..pos].iter().map(|sd| sd.dest).collect();
        // First no new flows, then the dest goes to the trash.
        self.write_list(sid, &mut svc, list)?;
        let settings = self.pins.settings()?;
        self.retire_dest(slot, &settings)?;
        // The dests added after it move one place closer to the tail.
        for i in newer {
            let mut d = self.dest_cached(i)?;
            d.rank = d.rank.saturating_sub(1);
            self.write_dest(i, &d)?;
        }
        Ok(())
    }

    /// `-Z [service]`: packet, byte and connection counters (not the
    /// ActiveConn/InActConn gauges).
    pub fn zero(&mut self, sid: Option<&ServiceId>) -> Result<(), Error> {
        let all = self.services()?;
        if let Some(s) = sid
            && !all.contains_key(s)
        {
            return Err(Error::NoService(*s));
        }
        for (id, (_, svc)) in &all {
            if sid.is_some_and(|s| s != id) {
                continue;
            }
            self.zero_stats(Some(svc.id), None)?;
            for sd in &self.read_list(svc)? {
                self.zero_stats(None, Some(sd.dest))?;
            }
        }
        Ok(())
    }

    // ---- settings --------------------------------------------------------

    /// `--set tcp tcpfin udp` (0 leaves a value unchanged).
    pub fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), Error> {
        let mut s = self.pins.settings()?;
        if t.tcp != 0 {
            s.timeouts[CONN_S_ESTABLISHED as usize] = t.tcp;
        }
        if t.tcpfin != 0 {
            s.timeouts[CONN_S_FIN_WAIT as usize] = t.tcpfin;
        }
        if t.udp != 0 {
            s.timeouts[CONN_S_UDP as usize] = t.udp;
        }
        self.pins.set_settings(&s)
    }

    pub fn timeouts(&self) -> Result<Timeouts, Error> {
        let s = self.pins.settings()?;
        Ok(Timeouts {
            tcp: s.timeouts[CONN_S_ESTABLISHED as usize],
            tcpfin: s.timeouts[CONN_S_FIN_WAIT as usize],
            udp: s.timeouts[CONN_S_UDP as usize],
        })
    }

    /// The LVS sysctls, as (name, value).
    pub fn sysctls(&self) -> Result<Vec<(&'static str, u32)>, Error> {
        let s = self.pins.settings()?;
        Ok(vec![
            ("conn_reuse_mode", s.conn_reuse_mode),
            ("expire_nodest_conn", s.expire_nodest_conn),
            ("expire_quiescent_template", s.expire_quiescent_template),
            ("nat_icmp_send", s.nat_icmp_send),
            ("pmtu_disc", s.pmtu_disc),
        ])
    }

    /// Sets one sysctl (name without the `net.ipv4.vs.` prefix; value
    /// already validated by the parser, checked again here).
    pub fn set_sysctl(&mut self, name: &str, value: u32) -> Result<(), Error> {
        let mut s = self.pins.settings()?;
        match name {
            "expire_nodest_conn" if value <= 1 => s.expire_nodest_conn = value,
            "expire_quiescent_template" if value <= 1 => s.expire_quiescent_template = value,
            "conn_reuse_mode" if value <= 3 => s.conn_reuse_mode = value,
            "pmtu_disc" if value <= 1 => s.pmtu_disc = value,
            "nat_icmp_send" if value <= 1 => s.nat_icmp_send = value,
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid sysctl setting {name}={value}"
                )));
            }
        }
        self.pins.set_settings(&s)
    }

    /// The XDP program's outcome counters (`STATS`), summed over CPUs, as
    /// (reason name, packets, bytes).
    pub fn counters(&self) -> Result<Vec<(&'static str, u64, u64)>, Error> {
        let mut out = Vec::new();
        for (i, name) in REASON_NAMES.iter().enumerate() {
            let v = self
                .pins
                .stats
                .get(&(i as u32), 0)
                .map_err(map_err(MAP_STATS))?;
            let (p, b) = v
                .iter()
                .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes));
            out.push((*name, p, b));
        }
        Ok(out)
    }
}

fn apply_spec(svc: &mut Service, spec: &ServiceSpec) {
    svc.sched = spec.sched.id();
    // -E re-sends every field: an omitted -b clears the flags.
    svc.flags = spec.sched.flags().0 & SVC_F_SCHED_MASK;
    svc.timeout = 0;
    if let Some(t) = spec.persistent {
        svc.flags |= SVC_F_PERSISTENT;
        svc.timeout = t;
    }
    if spec.id.port == 0 && spec.id.proto != Proto::Fwm {
        svc.flags |= SVC_F_PORT0;
    }
    if spec.one_packet {
        svc.flags |= SVC_F_ONEPACKET;
    }
    svc.netmask = netmask_to_addr(spec.netmask);
    svc.fwmark = spec.id.mark().unwrap_or(0);
}

fn spec_of(id: &ServiceId, svc: &Service) -> ServiceSpec {
    ServiceSpec {
        id: *id,
        sched: Sched::of(svc.sched, SchedFlags(svc.flags & SVC_F_SCHED_MASK)),
        persistent: (svc.flags & SVC_F_PERSISTENT != 0).then_some(svc.timeout),
        netmask: netmask_from_addr(&svc.netmask, id.is_v6()),
        one_packet: svc.flags & SVC_F_ONEPACKET != 0,
    }
}

fn validate_service(spec: &ServiceSpec) -> Result<(), Error> {
    if spec.id.port == 0 && spec.id.proto != Proto::Fwm && spec.persistent.is_none() {
        return Err(Error::Invalid(
            "Zero port specified for non-persistent service".into(),
        ));
    }
    if let Some(t) = spec.persistent
        && !(1..=MAX_TIMEOUT).contains(&t)
    {
        return Err(Error::Invalid("Illegal timeout specified".into()));
    }
    // The parser refuses it first, as ipvsadm does; this guards other
    // callers with the same text.
    if spec.one_packet && spec.id.proto == Proto::Tcp {
        return Err(Error::Invalid(
            "One-Packet Scheduling is only for UDP virtual services".into(),
        ));
    }
    checked(spec.id.addr)?;
    let contiguous = match (spec.id.addr, spec.netmask) {
        (IpAddr::V4(_), IpAddr::V4(m)) => {
            let m = u32::from(m);
            m.leading_ones() + m.trailing_zeros() == 32
        }
        // The kernel's check of an IPv6 prefix length: 1..=128.
        (IpAddr::V6(_), IpAddr::V6(m)) => v6_prefix_len(m).is_some_and(|p| p >= 1),
        _ => false,
    };
    if !contiguous {
        return Err(Error::Invalid("Illegal netmask specified".into()));
    }
    Ok(())
}

/// The kernel's check of `-x`/`-y`, made after the service is found (as
/// `ip_vs_add_dest`/`ip_vs_edit_dest` run after the service lookup) and
/// before the real is looked up.
fn validate_thresholds(real: &RealSpec) -> Result<(), Error> {
    let t = real.thresholds;
    if !t.valid() {
        return Err(Error::ThresholdRange {
            upper: t.upper,
            lower: t.lower,
        });
    }
    Ok(())
}

/// The kernel's check of a new IPv6 real server (`ip_vs_new_dest`):
/// unicast and not link-local (IPv4 reals are not checked so here).
fn real_is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(_) => true,
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_unicast_link_local()),
    }
}

fn validate_real(sid: &ServiceId, real: &RealSpec) -> Result<(), Error> {
    checked(real.id.addr)?;
    if real.weight > MAX_WEIGHT {
        return Err(Error::Invalid("Illegal weight specified".into()));
    }
    // ipvsadm's check (the kernel leaves it to the tunnel's route): a real
    // of the other family is reached by tunnelling only (4in6, 6in4).
    if real.id.addr.is_ipv6() != sid.is_v6() && !matches!(real.fwd, Fwd::Tunnel(_)) {
        return Err(Error::Invalid(
            "Different address family is allowed only for tunneling servers".into(),
        ));
    }
    // The kernel's check (`ip_vs_add_dest`, `ip_vs_edit_dest`).
    if let Fwd::Tunnel(t) = real.fwd
        && t.kind == TunType::Gue
        && t.port == 0
    {
        return Err(Error::Invalid("tunnel port is zero".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_validation() {
        let id = ServiceId {
            proto: Proto::Tcp,
            addr: "203.0.113.10".parse().unwrap(),
            port: 0,
        };
        let mut spec = ServiceSpec {
            id,
            sched: Sched::Wrr,
            persistent: None,
            netmask: "255.255.255.255".parse().unwrap(),
            one_packet: false,
        };
        assert!(validate_service(&spec).is_err());
        spec.persistent = Some(300);
        assert!(validate_service(&spec).is_ok());
        spec.netmask = "255.0.255.0".parse().unwrap();
        assert!(validate_service(&spec).is_err());
        spec.netmask = "255.255.255.0".parse().unwrap();
        spec.persistent = Some(0);
        assert!(validate_service(&spec).is_err());
    }

    /// An IPv6 service takes an IPv6 prefix mask of 1..=128 bits, and no
    /// service or real may have an IPv4-mapped IPv6 address (it would be
    /// stored as the IPv4 one).
    #[test]
    fn ipv6_service_validation() {
        let mut spec = ServiceSpec {
            id: ServiceId {
                proto: Proto::Tcp,
                addr: "2001:db8::1".parse().unwrap(),
                port: 80,
            },
            sched: Sched::Wrr,
            persistent: Some(300),
            netmask: crate::addr::v6_netmask(64).into(),
            one_packet: false,
        };
        assert!(validate_service(&spec).is_ok());
        spec.netmask = crate::addr::v6_netmask(0).into();
        assert!(validate_service(&spec).is_err());
        spec.netmask = "ffff::1".parse().unwrap();
        assert!(validate_service(&spec).is_err());
        spec.netmask = "255.255.255.255".parse().unwrap();
        assert!(
            validate_service(&spec).is_err(),
            "an IPv4 mask on an IPv6 service"
        );
        spec.netmask = crate::addr::v6_netmask(128).into();
        spec.id.addr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(matches!(validate_service(&spec), Err(Error::Addr(_))));
        let real = RealSpec {
            id: RealId {
                addr: "::ffff:198.51.100.11".parse().unwrap(),
                port: 80,
            },
            fwd: Fwd::Route,
            weight: 1,
            thresholds: Thresholds::NONE,
        };
        assert!(matches!(
            validate_real(&spec.id, &real),
            Err(Error::Addr(_))
        ));
    }

    /// A real of the other family than its service's is a tunnelling one
    /// only (ipvsadm's check, for other callers than the parser); a GUE real
    /// needs its port (the kernel's check).
    #[test]
    fn other_family_is_for_tunnels_and_gue_needs_a_port() {
        use crate::model::{TunCsum, Tunnel};
        let v4 = ServiceId {
            proto: Proto::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        };
        let v6_fwm = ServiceId::fwmark_of_family(1, true);
        let real = |addr: &str, fwd: Fwd| RealSpec {
            id: RealId {
                addr: addr.parse().unwrap(),
                port: 80,
            },
            fwd,
            weight: 1,
            thresholds: Thresholds::NONE,
        };
        let family = "Different address family is allowed only for tunneling servers";
        for fwd in [Fwd::Route, Fwd::Masq] {
            for (sid, addr) in [(&v4, "2001:db8::2"), (&v6_fwm, "198.51.100.2")] {
                match validate_real(sid, &real(addr, fwd)) {
                    Err(Error::Invalid(m)) => assert_eq!(m, family),
                    other => panic!("{fwd:?} {addr}: {other:?}"),
                }
            }
        }
        let ipip = Fwd::Tunnel(Tunnel::IPIP);
        assert!(validate_real(&v4, &real("2001:db8::2", ipip)).is_ok());
        assert!(validate_real(&v6_fwm, &real("198.51.100.2", ipip)).is_ok());
        assert!(validate_real(&v4, &real("198.51.100.2", Fwd::Masq)).is_ok());
        let gue = |port| {
            Fwd::Tunnel(Tunnel {
                kind: TunType::Gue,
                port,
                csum: TunCsum::Csum,
            })
        };
        assert!(validate_real(&v4, &real("198.51.100.2", gue(6080))).is_ok());
        match validate_real(&v4, &real("198.51.100.2", gue(0))) {
            Err(Error::Invalid(m)) => assert_eq!(m, "tunnel port is zero"),
            other => panic!("{other:?}"),
        }
    }
}

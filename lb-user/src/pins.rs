//! The pinned maps: the load balancer's whole state, shared by every `lbctl`
//! invocation and the XDP program, as the kernel's tables are shared by every
//! `ipvsadm` run.
//!
//! `Pins::open` creates the maps (by loading the object's map definitions)
//! the first time, pins them under the pin directory, and afterwards opens
//! the pins, refusing any whose layout differs from this build's. Every
//! invocation holds an exclusive lock on the directory while it works, so two
//! invocations at once cannot interleave their changes.
//!
//! Privileges are capabilities, not euid 0 (README, "Privileges"): CAP_BPF
//! and CAP_NET_ADMIN for everything, CAP_PERFMON to attach, CAP_SYS_ADMIN
//! only to mount bpffs. The pins belong to the pin directory's owner: every
//! pin made here is given to that user and group.

use std::{
    fs::File,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData, PerCpuArray, lpm_trie::LpmTrie},
};
use lb_common::{
    Conn, ConnKey, Counters, DEFAULT_CONNS, DEFAULT_REALS, DEFAULT_SERVICES, DEFAULT_TEMPLATES,
    Dest, DestConns, FwmarkKey, FwmarkRules, Iface, LblcEntry, LblcKey, MAP_CONNS, MAP_DEST_CONNS,
    MAP_DEST_STATS, MAP_DESTS, MAP_FWMARK, MAP_IFACES, MAP_LBLC, MAP_MASQ_REALS, MAP_MH_TABLES,
    MAP_NAMES, MAP_NAT_REPLIES, MAP_REPLY_RATE, MAP_SCHED, MAP_SERVICES, MAP_SETTINGS,
    MAP_SH_TABLES, MAP_STATS, MAP_SVC_DESTS, MAP_SVC_STATS, MAP_SWEEPER, MAP_TEMPLATES, MAP_VIPS,
    MAX_FWMARK_PREFIXES, MAX_IFACES, MhTable, NatKey, NatReply, REASON_COUNT, RealKey, ReplyRate,
    SVC_DESTS_PER_REAL, SchedState, Service, ServiceDest, ServiceKey, ServiceStats, Settings,
    ShTable, SweeperValue, TABLES_PER_SERVICE, Template, TemplateKey, VIP_FILTER_WORDS,
};

use caps::{CapSet, Capability};

use crate::error::Error;

/// Default pin directory; `$LB_PIN_PATH` overrides it.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/lb";
/// The environment variable naming the pin directory.
pub const PIN_PATH_ENV: &str = "LB_PIN_PATH";

/// The pin directory in force.
pub fn pin_dir() -> PathBuf {
    std::env::var_os(PIN_PATH_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_PATH))
}

/// The BPF object embedded at build time (see build.rs).
pub static BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf.o"));

/// The embedded object, or a clear error when this build has none.
pub fn bpf_object() -> Result<&'static [u8], Error> {
    if BPF_OBJECT.is_empty() {
        return Err(Error::NoObject);
    }
    Ok(BPF_OBJECT)
}

/// Sizes of the tables, chosen when the maps are created (`lbctl attach
/// --conns --templates --services --reals`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Connection entries (`CONNS`).
    pub conns: u32,
    /// Persistence templates (`TEMPLATES`).
    pub templates: u32,
    /// Virtual services (`SERVICES`, `SCHED`, `SVC_STATS`).
    pub services: u32,
    /// Real-server slots of all services, removed ones still referenced
    /// included (`DESTS`, `DEST_STATS`; `SVC_DESTS` holds
    /// `SVC_DESTS_PER_REAL` entries per slot).
    pub reals: u32,
}

impl Sizes {
    pub const DEFAULT: Sizes = Sizes {
        conns: DEFAULT_CONNS,
        templates: DEFAULT_TEMPLATES,
        services: DEFAULT_SERVICES,
        reals: DEFAULT_REALS,
    };

    /// Entries of `SVC_DESTS` for `reals` real-server slots.
    pub const fn svc_dests(&self) -> u32 {
        self.reals.saturating_mul(SVC_DESTS_PER_REAL)
    }

    /// The size this build gives a map of these sizes, `None` for maps of a
    /// fixed size.
    fn of(&self, name: &str) -> Option<u32> {
        match name {
            // A masqueraded conn has one reply entry.
            MAP_CONNS | MAP_NAT_REPLIES => Some(self.conns),
            MAP_TEMPLATES => Some(self.templates),
            MAP_SERVICES | MAP_SCHED | MAP_SVC_STATS | MAP_LBLC => Some(self.services),
            MAP_DESTS | MAP_DEST_STATS | MAP_DEST_CONNS | MAP_MASQ_REALS => Some(self.reals),
            MAP_SVC_DESTS => Some(self.svc_dests()),
            // Two keys per service; not preallocated (only sh and mh
            // services hold entries).
            MAP_SH_TABLES | MAP_MH_TABLES => Some(self.services.saturating_mul(TABLES_PER_SERVICE)),
            _ => None,
        }
    }
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes::DEFAULT
    }
}

/// Typed handles on every pinned map.
pub struct Pins {
    pub dir: PathBuf,
    pub services: HashMap<MapData, ServiceKey, Service>,
    pub dests: Array<MapData, Dest>,
    pub svc_dests: Array<MapData, ServiceDest>,
    pub sh_tables: HashMap<MapData, u32, ShTable>,
    pub mh_tables: HashMap<MapData, u32, MhTable>,
    pub conns: HashMap<MapData, ConnKey, Conn>,
    /// The replies of masqueraded conns: reply tuple -> conn key.
    pub nat_replies: HashMap<MapData, NatKey, NatReply>,
    /// The `-m` real servers (`nat_icmp_send`): how many dests each.
    pub masq_reals: HashMap<MapData, RealKey, u32>,
    pub templates: HashMap<MapData, TemplateKey, Template>,
    pub sched: PerCpuArray<MapData, SchedState>,
    pub settings: Array<MapData, Settings>,
    pub stats: PerCpuArray<MapData, Counters>,
    pub svc_stats: PerCpuArray<MapData, ServiceStats>,
    pub dest_stats: PerCpuArray<MapData, ServiceStats>,
    pub dest_conns: Array<MapData, DestConns>,
    pub sweeper: Array<MapData, SweeperValue>,
    pub ifaces: Array<MapData, Iface>,
    pub vips: Array<MapData, u64>,
    pub fwmark: LpmTrie<MapData, FwmarkKey, FwmarkRules>,
    pub sizes: Sizes,
    /// Held for the lifetime of `Pins`: the exclusive lock on `dir`.
    _lock: File,
}

/// Expected (key size, value size, max entries) of each map; `None` for the
/// sizes chosen at creation (`Sizes`), checked against each other instead.
fn expected(name: &str) -> (usize, usize, Option<u32>) {
    use std::mem::size_of;
    match name {
        MAP_SERVICES => (size_of::<ServiceKey>(), size_of::<Service>(), None),
        MAP_DESTS => (4, size_of::<Dest>(), None),
        MAP_SVC_DESTS => (4, size_of::<ServiceDest>(), None),
        MAP_SH_TABLES => (4, size_of::<ShTable>(), None),
        MAP_MH_TABLES => (4, size_of::<MhTable>(), None),
        MAP_CONNS => (size_of::<ConnKey>(), size_of::<Conn>(), None),
        MAP_NAT_REPLIES => (size_of::<NatKey>(), size_of::<NatReply>(), None),
        MAP_MASQ_REALS => (size_of::<RealKey>(), 4, None),
        MAP_TEMPLATES => (size_of::<TemplateKey>(), size_of::<Template>(), None),
        MAP_SCHED => (4, size_of::<SchedState>(), None),
        MAP_SETTINGS => (4, size_of::<Settings>(), Some(1)),
        MAP_STATS => (4, size_of::<Counters>(), Some(REASON_COUNT)),
        MAP_SVC_STATS => (4, size_of::<ServiceStats>(), None),
        MAP_DEST_STATS => (4, size_of::<ServiceStats>(), None),
        MAP_DEST_CONNS => (4, size_of::<DestConns>(), None),
        MAP_LBLC => (size_of::<LblcKey>(), size_of::<LblcEntry>(), None),
        MAP_SWEEPER => (4, size_of::<SweeperValue>(), Some(1)),
        MAP_REPLY_RATE => (4, size_of::<ReplyRate>(), Some(1)),
        MAP_IFACES => (4, size_of::<Iface>(), Some(MAX_IFACES)),
        MAP_VIPS => (4, 8, Some(VIP_FILTER_WORDS)),
        MAP_FWMARK => (
            4 + size_of::<FwmarkKey>(),
            size_of::<FwmarkRules>(),
            Some(MAX_FWMARK_PREFIXES),
        ),
        _ => (0, 0, Some(0)),
    }
}

/// Makes sure a bpffs is mounted where the pin directory lives (the default
/// `/sys/fs/bpf`, as ipvsadm users expect things to just work).
pub(crate) fn ensure_bpffs(dir: &Path) -> Result<(), Error> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if is_bpffs(parent) || is_bpffs(dir) {
        return Ok(());
    }
    if parent == Path::new("/sys/fs/bpf") {
        // A mount made in a private mount namespace (`ip netns exec`) would
        // vanish with this process, and the tables and links with it.
        let mine = std::fs::read_link("/proc/self/ns/mnt").ok();
        let init = std::fs::read_link("/proc/1/ns/mnt").ok();
        if mine.is_some() && init.is_some() && mine != init {
            return Err(Error::Invalid(
                "/sys/fs/bpf is not a bpffs in this mount namespace (`ip netns exec` remounts \
                 /sys): a bpffs mounted here would vanish when lbctl exits. Run lbctl with \
                 `nsenter --net=/run/netns/NAME` instead, or set LB_PIN_PATH to a bpffs"
                    .into(),
            ));
        }
        // Mounting is the one step that needs CAP_SYS_ADMIN.
        require_caps(
            &[Capability::CAP_SYS_ADMIN],
            "mounting bpffs on /sys/fs/bpf needs CAP_SYS_ADMIN; or mount it first: mount -t bpf bpf /sys/fs/bpf",
        )?;
        return nix::mount::mount(
            Some("bpf"),
            "/sys/fs/bpf",
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| Error::Io {
            what: "mounting bpffs on /sys/fs/bpf".into(),
            source: e.into(),
        });
    }
    Err(Error::NotBpffs(dir.to_path_buf()))
}

fn is_bpffs(path: &Path) -> bool {
    use nix::sys::statfs::{BPF_FS_MAGIC, statfs};
    statfs(path).is_ok_and(|st| st.filesystem_type() == BPF_FS_MAGIC)
}

/// Takes the exclusive lock on the pin directory (waiting for another
/// `lbctl` to finish). A directory this user may not open is named with its
/// owner, whose the pins are.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, Error> {
    let f = File::open(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return Error::PinAccess {
                dir: dir.to_path_buf(),
                owner: std::fs::metadata(dir).map_or(u32::MAX, |m| m.uid()),
            };
        }
        Error::Io {
            what: format!("opening {}", dir.display()),
            source: e,
        }
    })?;
    f.lock().map_err(|e| Error::Io {
        what: format!("locking {}", dir.display()),
        source: e,
    })?;
    Ok(f)
}

impl Pins {
    /// Opens the pinned maps in `dir`, creating them first if there are none.
    /// `sizes` applies only when the maps are created; `Some` sizes that
    /// differ from existing pins are refused (`--reset` starts afresh).
    pub fn open(dir: &Path, sizes: Option<Sizes>) -> Result<Pins, Error> {
        require_privileges()?;
        ensure_bpffs(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            what: format!("creating {}", dir.display()),
            source: e,
        })?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let lock = lock_dir(dir)?;
        let present: Vec<&str> = MAP_NAMES
            .iter()
            .copied()
            .filter(|n| dir.join(n).exists())
            .collect();
        let mut maps: Vec<(String, MapData)> = Vec::new();
        if present.is_empty() {
            let sizes = sizes.unwrap_or_default();
            let mut ebpf = load_maps(dir, sizes)?;
            for name in MAP_NAMES {
                let map = ebpf.take_map(name).ok_or(Error::MissingMap(name))?;
                maps.push((name.to_string(), map_data(map)));
                give_to_dir_owner(dir, &dir.join(name))?;
            }
        } else if present.len() != MAP_NAMES.len() {
            return Err(Error::StalePin {
                dir: dir.to_path_buf(),
                why: format!(
                    "only some maps are pinned ({}); remove the directory or run `lbctl attach --reset`",
                    present.join(", ")
                ),
            });
        } else {
            for name in MAP_NAMES {
                let md = MapData::from_pin(dir.join(name)).map_err(|e| Error::Map {
                    name,
                    op: "open pin",
                    source: e,
                })?;
                maps.push((name.to_string(), md));
            }
        }
        // Layout check: aya does not compare a reused pin with the program's
        // definition, so do it here.
        let mut found = Sizes::default();
        for (name, md) in &maps {
            let info = md.info().map_err(|e| Error::Map {
                name: static_name(name),
                op: "info",
                source: e,
            })?;
            let (k, v, max) = expected(name);
            let ok = info.key_size() as usize == k
                && info.value_size() as usize == v
                && max.is_none_or(|m| m == info.max_entries());
            if !ok {
                return Err(Error::StalePin {
                    dir: dir.to_path_buf(),
                    why: format!(
                        "map `{name}` has key/value/max {}/{}/{}, this build expects {k}/{v}/{}; \
                         it was made by another version: run `lbctl attach --reset` to start afresh",
                        info.key_size(),
                        info.value_size(),
                        info.max_entries(),
                        max.map_or("any".to_string(), |m| m.to_string())
                    ),
                });
            }
            match name.as_str() {
                MAP_CONNS => found.conns = info.max_entries(),
                MAP_TEMPLATES => found.templates = info.max_entries(),
                MAP_SERVICES => found.services = info.max_entries(),
                MAP_DESTS => found.reals = info.max_entries(),
                _ => {}
            }
        }
        // The maps sized alike must agree (a half-made set is refused).
        for (name, md) in &maps {
            let Some(want) = found.of(name) else { continue };
            let have = md.info().map(|i| i.max_entries()).unwrap_or(0);
            if have != want {
                return Err(Error::StalePin {
                    dir: dir.to_path_buf(),
                    why: format!(
                        "map `{name}` has {have} entries where its sizes say {want}; \
                         run `lbctl attach --reset` to start afresh"
                    ),
                });
            }
        }
        if let Some(want) = sizes
            && want != found
        {
            return Err(Error::SizeMismatch {
                want: Box::new(want),
                have: Box::new(found),
            });
        }
        let mut take = |n: &str| -> Map {
            let i = maps.iter().position(|(name, _)| name == n).unwrap_or(0);
            Map::from_map_data(maps.remove(i).1).expect("map type known to aya")
        };
        let services = HashMap::try_from(take(MAP_SERVICES)).map_err(map_err(MAP_SERVICES))?;
        let dests = Array::try_from(take(MAP_DESTS)).map_err(map_err(MAP_DESTS))?;
        let svc_dests = Array::try_from(take(MAP_SVC_DESTS)).map_err(map_err(MAP_SVC_DESTS))?;
        let sh_tables = HashMap::try_from(take(MAP_SH_TABLES)).map_err(map_err(MAP_SH_TABLES))?;
        let mh_tables = HashMap::try_from(take(MAP_MH_TABLES)).map_err(map_err(MAP_MH_TABLES))?;
        let conns = HashMap::try_from(take(MAP_CONNS)).map_err(map_err(MAP_CONNS))?;
        let nat_replies =
            HashMap::try_from(take(MAP_NAT_REPLIES)).map_err(map_err(MAP_NAT_REPLIES))?;
        let masq_reals =
            HashMap::try_from(take(MAP_MASQ_REALS)).map_err(map_err(MAP_MASQ_REALS))?;
        let templates = HashMap::try_from(take(MAP_TEMPLATES)).map_err(map_err(MAP_TEMPLATES))?;
        let sched = PerCpuArray::try_from(take(MAP_SCHED)).map_err(map_err(MAP_SCHED))?;
        let settings = Array::try_from(take(MAP_SETTINGS)).map_err(map_err(MAP_SETTINGS))?;
        let stats = PerCpuArray::try_from(take(MAP_STATS)).map_err(map_err(MAP_STATS))?;
        let svc_stats =
            PerCpuArray::try_from(take(MAP_SVC_STATS)).map_err(map_err(MAP_SVC_STATS))?;
        let dest_stats =
            PerCpuArray::try_from(take(MAP_DEST_STATS)).map_err(map_err(MAP_DEST_STATS))?;
        let dest_conns = Array::try_from(take(MAP_DEST_CONNS)).map_err(map_err(MAP_DEST_CONNS))?;
        let sweeper = Array::try_from(take(MAP_SWEEPER)).map_err(map_err(MAP_SWEEPER))?;
        let ifaces = Array::try_from(take(MAP_IFACES)).map_err(map_err(MAP_IFACES))?;
        let vips = Array::try_from(take(MAP_VIPS)).map_err(map_err(MAP_VIPS))?;
        let fwmark = LpmTrie::try_from(take(MAP_FWMARK)).map_err(map_err(MAP_FWMARK))?;
        let mut pins = Pins {
            dir: dir.to_path_buf(),
            services,
            dests,
            svc_dests,
            sh_tables,
            mh_tables,
            conns,
            nat_replies,
            masq_reals,
            templates,
            sched,
            settings,
            stats,
            svc_stats,
            dest_stats,
            dest_conns,
            sweeper,
            ifaces,
            vips,
            fwmark,
            sizes: found,
            _lock: lock,
        };
        // A fresh SETTINGS entry is all zeros: give it the kernel's defaults.
        // Tables made by a build of another layout version are refused even
        // when every size matches (the meaning of a field may have changed).
        let layout = pins.settings()?.layout;
        if layout == 0 {
            let mut fresh = Settings::DEFAULT;
            if let Some((tick, offset)) = crate::clock::calibrate() {
                fresh.clock_ns_per_jiffy = tick;
                fresh.clock_offset = offset;
            }
            pins.set_settings(&fresh)?;
        } else if layout != lb_common::LAYOUT_VERSION {
            return Err(Error::StalePin {
                dir: dir.to_path_buf(),
                why: format!(
                    "the tables have layout version {layout}, this build uses {}; \
                     they were made by another version: run `lbctl attach --reset` to start afresh",
                    lb_common::LAYOUT_VERSION
                ),
            });
        }
        Ok(pins)
    }

    pub fn settings(&self) -> Result<Settings, Error> {
        self.settings.get(&0, 0).map_err(map_err(MAP_SETTINGS))
    }

    pub fn set_settings(&mut self, s: &Settings) -> Result<(), Error> {
        self.settings.set(0, s, 0).map_err(map_err(MAP_SETTINGS))
    }

    /// Records the MAC of an interface the program runs on, so that frames
    /// addressed to another host are left to the kernel.
    pub fn set_iface(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), Error> {
        let v = Iface {
            ifindex,
            mac,
            _pad: [0; 2],
        };
        self.ifaces
            .set(ifindex % MAX_IFACES, v, 0)
            .map_err(map_err(MAP_IFACES))
    }

    /// Forgets an interface recorded by `set_iface`.
    pub fn clear_iface(&mut self, ifindex: u32) -> Result<(), Error> {
        let slot = ifindex % MAX_IFACES;
        let cur = self.ifaces.get(&slot, 0).map_err(map_err(MAP_IFACES))?;
        if cur.ifindex == ifindex {
            self.ifaces
                .set(slot, Iface::default(), 0)
                .map_err(map_err(MAP_IFACES))?;
        }
        Ok(())
    }
}

/// `attach --reset`: removes the pinned tables (not the links), so that the
/// next open makes them afresh. Every connection, template, service and
/// counter is gone; an attached program keeps running on the old maps until
/// it is attached again.
pub fn reset(dir: &Path) -> Result<(), Error> {
    require_privileges()?;
    if !dir.exists() {
        return Ok(());
    }
    let _lock = lock_dir(dir)?;
    for name in MAP_NAMES {
        let p = dir.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::Io {
                what: format!("removing {}", p.display()),
                source: e,
            })?;
        }
    }
    Ok(())
}

/// Loads the object's maps (not its programs) with every map pinned by name
/// under `dir`. Used to create the maps, and by `attach` to load the program
/// against the existing pins.
pub fn load_maps(dir: &Path, sizes: Sizes) -> Result<Ebpf, Error> {
    let obj = bpf_object()?;
    let mut loader = EbpfLoader::new();
    for name in MAP_NAMES {
        loader.map_pin_path(name, dir.join(name));
    }
    for name in MAP_NAMES {
        if let Some(n) = sizes.of(name) {
            loader.map_max_entries(name, n);
        }
    }
    loader.load(obj).map_err(|e| Error::Load(Box::new(e)))
}

fn map_data(map: Map) -> MapData {
    match map {
        Map::HashMap(m)
        | Map::LruHashMap(m)
        | Map::Array(m)
        | Map::PerCpuArray(m)
        | Map::PerCpuHashMap(m)
        | Map::LpmTrie(m) => m,
        other => panic!("unexpected map kind {other:?}"),
    }
}

fn static_name(name: &str) -> &'static str {
    MAP_NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .unwrap_or("?")
}

pub fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> Error {
    move |source| Error::Map {
        name,
        op: "access",
        source,
    }
}

/// Gives a pin just made in `dir` to the directory's owner and group: the
/// tables belong to whoever owns the pin directory, so a service user given
/// the directory (`contrib/systemd/`) keeps access to maps and links that
/// root creates there (`lbctl attach`, `--reset`). A no-op when they match.
pub fn give_to_dir_owner(dir: &Path, pin: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        what: format!("giving {} to the owner of {}", pin.display(), dir.display()),
        source,
    };
    let d = std::fs::metadata(dir).map_err(io)?;
    let p = std::fs::metadata(pin).map_err(io)?;
    if (p.uid(), p.gid()) != (d.uid(), d.gid()) {
        std::os::unix::fs::chown(pin, Some(d.uid()), Some(d.gid())).map_err(io)?;
    }
    Ok(())
}

/// What every table operation needs: CAP_BPF to create, open and change
/// the maps and to load the program, CAP_NET_ADMIN to attach it, and
/// because ipvsadm needs it for every command, `-L` included.
pub const NEEDED_CAPS: [Capability; 2] = [Capability::CAP_BPF, Capability::CAP_NET_ADMIN];

/// The capabilities of `needed` this process does not have in its
/// effective set. Root has them all unless something dropped them.
pub fn missing_caps(needed: &[Capability]) -> Vec<Capability> {
    let have = caps::read(None, CapSet::Effective).unwrap_or_default();
    needed
        .iter()
        .copied()
        .filter(|c| !have.contains(c))
        .collect()
}

fn require_caps(needed: &[Capability], why: &'static str) -> Result<(), Error> {
    let missing = missing_caps(needed);
    if missing.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
    let last = names.pop().unwrap_or_default();
    let missing = if names.is_empty() {
        last
    } else {
        format!("{} and {last}", names.join(", "))
    };
    Err(Error::Privileges { missing, why })
}

/// ipvsadm needs CAP_NET_ADMIN; we need that and CAP_BPF (not euid 0, so a
/// service user given these capabilities works). Say so up front, naming
/// what is missing, instead of failing halfway with EPERM.
pub fn require_privileges() -> Result<(), Error> {
    require_caps(&NEEDED_CAPS, "lbctl needs CAP_BPF and CAP_NET_ADMIN")
}

/// `lbctl attach` also loads the program, whose packet pointer arithmetic
/// the verifier allows only with CAP_PERFMON.
pub fn require_attach_privileges() -> Result<(), Error> {
    require_caps(
        &[
            Capability::CAP_BPF,
            Capability::CAP_NET_ADMIN,
            Capability::CAP_PERFMON,
        ],
        "lbctl attach needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, which the verifier \
         wants for the program's packet pointer arithmetic",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_caps_are_named_and_none_when_all_are_held() {
        let have = caps::read(None, CapSet::Effective).unwrap();
        let held: Vec<Capability> = have.iter().copied().collect();
        assert!(missing_caps(&held).is_empty());
        // One capability this process lacks (every one when not root).
        let all = caps::all();
        if let Some(lacking) = all.iter().find(|c| !have.contains(c)) {
            assert_eq!(missing_caps(&[*lacking]), vec![*lacking]);
            let e = require_caps(&[*lacking], "why").unwrap_err().to_string();
            assert!(e.contains(&lacking.to_string()) && e.contains("why"), "{e}");
        }
    }
}

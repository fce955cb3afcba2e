//! `lbctl decap`: the real servers' decapsulator (docs/SEMANTICS.md §20).
//!
//! A real server of a tunnelling (`-i`) service receives the director's
//! packets inside IPIP, GUE or GRE. Linux strips those only with its tunnel
//! modules (`ipip`/`tunl0`, `fou`, `ip_gre`/`gre0`); `lbctl decap attach
//! IFACE` does it at XDP instead, with a second, small BPF object (lb-ebpf's
//! `src/decap/`, embedded as `DECAP_OBJECT`): a real server never makes the
//! load balancer's maps.
//!
//! Its maps and links are pinned in `$LB_PIN_PATH/decap` (default
//! `/sys/fs/bpf/lb/decap`): per interface its settings (`DECAP_IFACES`: the
//! GUE port, whether the inner destination must be one of its `--vip`s) and
//! `--vip`s (`DECAP_VIPS`); the host's local addresses (`DECAP_LOCAL`, the
//! kernel's local routing table as read by the last `decap attach`: the
//! program cannot ask the kernel itself, `bpf_fib_lookup` refuses on hosts
//! that do not forward); the outcome counters (`DECAP_STATS`).

mod local;
pub mod words;

use std::{
    fs::File,
    net::IpAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    maps::{HashMap, Map, MapData, PerCpuArray, lpm_trie::Key, lpm_trie::LpmTrie},
    programs::{Xdp, links::PinnedLink},
};
use lb_common::{
    Counters,
    decap::{
        DECAP_F_VIPS, DECAP_FAMILY_V4, DECAP_FAMILY_V6, DECAP_LAYOUT_VERSION, DECAP_MAP_NAMES,
        DECAP_MODE_GENERIC, DECAP_MODE_NATIVE, DECAP_PIN_SUBDIR, DECAP_PROGRAM_NAME,
        DECAP_REASON_COUNT, DECAP_REASON_NAMES, DecapIface, DecapPrefix, DecapVipKey,
        MAP_DECAP_IFACES, MAP_DECAP_LOCAL, MAP_DECAP_STATS, MAP_DECAP_VIPS, MAX_DECAP_IFACES,
        MAX_DECAP_LOCAL, MAX_DECAP_VIPS,
    },
};

pub use local::local_prefixes;

use crate::{
    attach::{self, Mode},
    error::Error,
    neigh,
    pins::{self, give_to_dir_owner, map_err},
};

/// The decapsulator's BPF object, embedded at build time (see build.rs).
pub static DECAP_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-decap.o"));

/// `lbctl decap ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecapCmd {
    /// `lbctl decap attach IFACE [--vip ADDR]... [--gue-port N] [--mode M]`.
    Attach {
        iface: String,
        mode: crate::cli::XdpMode,
        settings: DecapSettings,
    },
    /// `lbctl decap detach IFACE`.
    Detach { iface: String },
    /// `lbctl decap status`.
    Status,
}

/// What `decap attach` sets for an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecapSettings {
    /// The inner destinations taken; empty: any local address.
    pub vips: Vec<IpAddr>,
    /// The GUE UDP port (never 0).
    pub gue_port: u16,
}

impl Default for DecapSettings {
    fn default() -> Self {
        DecapSettings {
            vips: Vec::new(),
            gue_port: lb_common::decap::DEFAULT_GUE_PORT,
        }
    }
}

/// Why a `decap` command failed.
#[derive(Debug, thiserror::Error)]
pub enum DecapError {
    #[error(
        "this lbctl was built without the decapsulator's BPF object; build it with \
         `cargo xtask build`"
    )]
    NoObject,
    #[error("interface {0} not found")]
    NoInterface(String),
    #[error("the decapsulator is not attached to {0}")]
    NotAttached(String),
    #[error("too many --vip addresses: {given} (at most {max} for all interfaces together)")]
    TooManyVips { given: usize, max: u32 },
    #[error("too many interfaces with the decapsulator (at most {0})")]
    TooManyIfaces(u32),
    #[error(
        "this host has {0} local address prefixes, more than the decapsulator's table holds \
         ({MAX_DECAP_LOCAL})"
    )]
    TooManyLocal(usize),
    #[error(
        "the decapsulator's pins in {} belong to another network namespace (its interfaces \
         and addresses are that namespace's): set LB_PIN_PATH to a pin directory of this \
         namespace's own",
        .0.display()
    )]
    OtherNamespace(PathBuf),
    #[error(
        "the decapsulator is attached to {iface} in {have} mode: detach it first to attach it \
         in {want} mode"
    )]
    OtherMode {
        iface: String,
        have: &'static str,
        want: &'static str,
    },
    #[error("reading the host's local addresses")]
    Local(#[source] std::io::Error),
    #[error(transparent)]
    Lib(#[from] Error),
}

/// The calling thread's network namespace: the inode number of
/// `/proc/thread-self/ns/net`.
fn this_netns() -> Result<u64, DecapError> {
    use std::os::unix::fs::MetadataExt;
    let p = "/proc/thread-self/ns/net";
    std::fs::metadata(p).map(|m| m.ino()).map_err(|e| {
        DecapError::Lib(Error::Io {
            what: format!("reading {p}"),
            source: e,
        })
    })
}

/// The decapsulator's pin folder: `decap` inside the load balancer's pin
/// directory (`$LB_PIN_PATH`, default `/sys/fs/bpf/lb`).
pub fn decap_dir() -> PathBuf {
    pins::pin_dir().join(DECAP_PIN_SUBDIR)
}

fn object() -> Result<&'static [u8], DecapError> {
    if DECAP_OBJECT.is_empty() {
        return Err(DecapError::NoObject);
    }
    Ok(DECAP_OBJECT)
}

/// The decapsulator's pinned maps, with the folder locked while they live.
pub struct DecapPins {
    pub dir: PathBuf,
    pub ifaces: HashMap<MapData, u32, DecapIface>,
    pub local: LpmTrie<MapData, DecapPrefix, u32>,
    pub vips: HashMap<MapData, DecapVipKey, u32>,
    pub stats: PerCpuArray<MapData, Counters>,
    _lock: File,
}

/// (key size, value size, max entries) of each map.
fn expected(name: &str) -> (u32, u32, u32) {
    use std::mem::size_of;
    match name {
        MAP_DECAP_IFACES => (4, size_of::<DecapIface>() as u32, MAX_DECAP_IFACES),
        MAP_DECAP_LOCAL => (4 + size_of::<DecapPrefix>() as u32, 4, MAX_DECAP_LOCAL),
        MAP_DECAP_VIPS => (size_of::<DecapVipKey>() as u32, 4, MAX_DECAP_VIPS),
        MAP_DECAP_STATS => (4, size_of::<Counters>() as u32, DECAP_REASON_COUNT),
        _ => (0, 0, 0),
    }
}

fn loader(dir: &Path) -> EbpfLoader<'static> {
    let mut loader = EbpfLoader::new();
    for name in DECAP_MAP_NAMES {
        loader.map_pin_path(name, dir.join(name));
    }
    loader
}

/// Loads the decapsulator's object with its maps pinned in `dir` (made if
/// absent); its program is not loaded yet.
pub fn load(dir: &Path) -> Result<aya::Ebpf, DecapError> {
    let obj = object()?;
    loader(dir)
        .load(obj)
        .map_err(|e| DecapError::Lib(Error::Load(Box::new(e))))
}

fn stale(dir: &Path, why: String) -> DecapError {
    DecapError::Lib(Error::StalePin {
        dir: dir.to_path_buf(),
        why,
    })
}

impl DecapPins {
    /// Opens the pinned maps in `dir` (a `decap` folder), making them first
    /// if there are none; refuses maps of another layout.
    pub fn open(dir: &Path) -> Result<DecapPins, DecapError> {
        pins::require_privileges()?;
        let parent = dir.parent().unwrap_or(Path::new("/"));
        pins::ensure_bpffs(parent)?;
        for d in [parent, dir] {
            std::fs::create_dir_all(d).map_err(|e| Error::Io {
                what: format!("creating {}", d.display()),
                source: e,
            })?;
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700));
        }
        let lock = pins::lock_dir(dir)?;
        let present: Vec<&str> = DECAP_MAP_NAMES
            .iter()
            .copied()
            .filter(|n| dir.join(n).exists())
            .collect();
        let mut maps: Vec<(&str, MapData)> = Vec::new();
        if present.is_empty() {
            let mut ebpf = load(dir)?;
            for name in DECAP_MAP_NAMES {
                let map = ebpf.take_map(name).ok_or(Error::MissingMap(name))?;
                let md = match map {
                    Map::HashMap(m) | Map::LpmTrie(m) | Map::PerCpuArray(m) => m,
                    _ => return Err(Error::MissingMap(name).into()),
                };
                give_to_dir_owner(dir, &dir.join(name))?;
                maps.push((name, md));
            }
        } else if present.len() != DECAP_MAP_NAMES.len() {
            return Err(stale(
                dir,
                format!(
                    "only some maps are pinned ({}); remove the folder",
                    present.join(", ")
                ),
            ));
        } else {
            for name in DECAP_MAP_NAMES {
                let md = MapData::from_pin(dir.join(name)).map_err(|e| Error::Map {
                    name,
                    op: "open pin",
                    source: e,
                })?;
                maps.push((name, md));
            }
        }
        for (name, md) in &maps {
            let info = md.info().map_err(|e| Error::Map {
                name,
                op: "info",
                source: e,
            })?;
            let (k, v, max) = expected(name);
            if (info.key_size(), info.value_size(), info.max_entries()) != (k, v, max) {
                return Err(stale(
                    dir,
                    format!(
                        "map `{name}` has key/value/max {}/{}/{}, this build expects \
                         {k}/{v}/{max}; it was made by another version: detach the \
                         decapsulator everywhere and remove the folder",
                        info.key_size(),
                        info.value_size(),
                        info.max_entries()
                    ),
                ));
            }
        }
        let mut take = |n: &'static str| -> Result<Map, DecapError> {
            let i = maps
                .iter()
                .position(|(name, _)| *name == n)
                .ok_or(Error::MissingMap(n))?;
            let md = maps.remove(i).1;
            Map::from_map_data(md).map_err(|e| {
                DecapError::Lib(Error::Map {
                    name: n,
                    op: "open",
                    source: e,
                })
            })
        };
        let ifaces =
            HashMap::try_from(take(MAP_DECAP_IFACES)?).map_err(map_err(MAP_DECAP_IFACES))?;
        let local = LpmTrie::try_from(take(MAP_DECAP_LOCAL)?).map_err(map_err(MAP_DECAP_LOCAL))?;
        let vips = HashMap::try_from(take(MAP_DECAP_VIPS)?).map_err(map_err(MAP_DECAP_VIPS))?;
        let stats =
            PerCpuArray::try_from(take(MAP_DECAP_STATS)?).map_err(map_err(MAP_DECAP_STATS))?;
        let pins = DecapPins {
            dir: dir.to_path_buf(),
            ifaces,
            local,
            vips,
            stats,
            _lock: lock,
        };
        let netns = this_netns()?;
        for (ifindex, v) in pins.iface_settings()? {
            if v.netns != netns {
                return Err(DecapError::OtherNamespace(dir.to_path_buf()));
            }
            if v.layout != DECAP_LAYOUT_VERSION {
                return Err(stale(
                    dir,
                    format!(
                        "interface {ifindex} has settings of layout version {}, this build \
                         uses {DECAP_LAYOUT_VERSION}: detach and attach it again",
                        v.layout
                    ),
                ));
            }
        }
        Ok(pins)
    }

    /// Every interface's settings, by ifindex.
    pub fn iface_settings(&self) -> Result<Vec<(u32, DecapIface)>, DecapError> {
        let mut out = Vec::new();
        for e in self.ifaces.iter() {
            out.push(e.map_err(map_err(MAP_DECAP_IFACES))?);
        }
        out.sort_by_key(|(i, _)| *i);
        Ok(out)
    }

    /// The `--vip`s of `ifindex`.
    pub fn vips_of(&self, ifindex: u32) -> Result<Vec<IpAddr>, DecapError> {
        let mut out = Vec::new();
        for k in self.vips.keys() {
            let k = k.map_err(map_err(MAP_DECAP_VIPS))?;
            if k.ifindex == ifindex {
                out.push(crate::addr::from_addr(&k.addr));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Makes `DECAP_LOCAL` hold exactly `prefixes` (new ones first, then
    /// the ones gone, so an address that stays is never missing).
    pub fn set_local(&mut self, prefixes: &[(IpAddr, u8)]) -> Result<(), DecapError> {
        if prefixes.len() > MAX_DECAP_LOCAL as usize {
            return Err(DecapError::TooManyLocal(prefixes.len()));
        }
        let want: Vec<Key<DecapPrefix>> =
            prefixes.iter().map(|(a, p)| prefix_key(*a, *p)).collect();
        self.set_local_keys(&want)
    }

    /// The keys `DECAP_LOCAL` holds.
    pub fn local_keys(&self) -> Result<Vec<Key<DecapPrefix>>, DecapError> {
        Ok(self
            .local
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err(MAP_DECAP_LOCAL))?)
    }

    /// Makes `DECAP_LOCAL` hold exactly `want`, as `set_local`.
    fn set_local_keys(&mut self, want: &[Key<DecapPrefix>]) -> Result<(), DecapError> {
        for k in want {
            self.local
                .insert(k, 0, 0)
                .map_err(map_err(MAP_DECAP_LOCAL))?;
        }
        for k in self.local_keys()? {
            let gone = !want
                .iter()
                .any(|w| w.prefix_len() == k.prefix_len() && w.data() == k.data());
            if gone {
                self.local.remove(&k).map_err(map_err(MAP_DECAP_LOCAL))?;
            }
        }
        Ok(())
    }

    /// How many prefixes `DECAP_LOCAL` holds.
    pub fn local_count(&self) -> usize {
        self.local.keys().count()
    }

    /// Gives `ifindex` its settings: its `--vip`s first, then the settings
    /// that make the program look at them.
    pub fn set_iface(&mut self, ifindex: u32, s: &DecapSettings) -> Result<(), DecapError> {
        self.set_iface_mode(ifindex, s, DECAP_MODE_NATIVE)
    }

    /// `set_iface`, recording that the program is attached in `mode`
    /// (`DECAP_MODE_*`).
    pub fn set_iface_mode(
        &mut self,
        ifindex: u32,
        s: &DecapSettings,
        mode: u8,
    ) -> Result<(), DecapError> {
        let others = self
            .vips
            .keys()
            .filter(|k| !matches!(k, Ok(k) if k.ifindex == ifindex))
            .count();
        if others + s.vips.len() > MAX_DECAP_VIPS as usize {
            return Err(DecapError::TooManyVips {
                given: s.vips.len(),
                max: MAX_DECAP_VIPS,
            });
        }
        let known = self.ifaces.get(&ifindex, 0).is_ok();
        if !known && self.ifaces.keys().count() >= MAX_DECAP_IFACES as usize {
            return Err(DecapError::TooManyIfaces(MAX_DECAP_IFACES));
        }
        let old = self.vips_of(ifindex)?;
        for a in &s.vips {
            self.vips
                .insert(vip_key(ifindex, *a), 0, 0)
                .map_err(map_err(MAP_DECAP_VIPS))?;
        }
        let v = DecapIface {
            netns: this_netns()?,
            layout: DECAP_LAYOUT_VERSION,
            flags: if s.vips.is_empty() { 0 } else { DECAP_F_VIPS },
            gue_port: s.gue_port.to_be_bytes(),
            mode,
            _pad: 0,
            vips: s.vips.len() as u32,
        };
        self.ifaces
            .insert(ifindex, v, 0)
            .map_err(map_err(MAP_DECAP_IFACES))?;
        for a in old.iter().filter(|a| !s.vips.contains(a)) {
            self.vips
                .remove(&vip_key(ifindex, *a))
                .map_err(map_err(MAP_DECAP_VIPS))?;
        }
        Ok(())
    }

    /// `ifindex`'s settings and `--vip`s, if it has any.
    pub fn iface_state(&self, ifindex: u32) -> Result<Option<IfaceState>, DecapError> {
        let Ok(v) = self.ifaces.get(&ifindex, 0) else {
            return Ok(None);
        };
        Ok(Some(IfaceState {
            iface: v,
            vips: self.vips_of(ifindex)?,
        }))
    }

    /// Puts back what `iface_state` read (`None`: no settings).
    pub fn restore_iface(
        &mut self,
        ifindex: u32,
        state: Option<&IfaceState>,
    ) -> Result<(), DecapError> {
        let Some(st) = state else {
            return self.clear_iface(ifindex);
        };
        let now = self.vips_of(ifindex)?;
        for a in &st.vips {
            self.vips
                .insert(vip_key(ifindex, *a), 0, 0)
                .map_err(map_err(MAP_DECAP_VIPS))?;
        }
        self.ifaces
            .insert(ifindex, st.iface, 0)
            .map_err(map_err(MAP_DECAP_IFACES))?;
        for a in now.iter().filter(|a| !st.vips.contains(a)) {
            self.vips
                .remove(&vip_key(ifindex, *a))
                .map_err(map_err(MAP_DECAP_VIPS))?;
        }
        Ok(())
    }

    /// Forgets `ifindex`'s settings and `--vip`s.
    pub fn clear_iface(&mut self, ifindex: u32) -> Result<(), DecapError> {
        if self.ifaces.get(&ifindex, 0).is_ok() {
            self.ifaces
                .remove(&ifindex)
                .map_err(map_err(MAP_DECAP_IFACES))?;
        }
        for a in self.vips_of(ifindex)? {
            self.vips
                .remove(&vip_key(ifindex, a))
                .map_err(map_err(MAP_DECAP_VIPS))?;
        }
        Ok(())
    }

    /// Packets and bytes under each outcome, summed over the CPUs.
    pub fn counters(&self) -> Result<Vec<(&'static str, u64, u64)>, DecapError> {
        let mut out = Vec::new();
        for (i, name) in DECAP_REASON_NAMES.iter().enumerate() {
            let v = self
                .stats
                .get(&(i as u32), 0)
                .map_err(map_err(MAP_DECAP_STATS))?;
            let (p, b) = v
                .iter()
                .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes));
            out.push((*name, p, b));
        }
        Ok(out)
    }
}

/// One interface's entries, as `iface_state` read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceState {
    pub iface: DecapIface,
    pub vips: Vec<IpAddr>,
}

/// The `--mode` word of a `DECAP_MODE_*`.
fn mode_name(m: u8) -> &'static str {
    match m {
        DECAP_MODE_NATIVE => "native",
        DECAP_MODE_GENERIC => "generic",
        _ => "unknown",
    }
}

/// An address and prefix length in the maps' form (without the family
/// word): IPv4 as the IPv4-mapped address and prefix (`/(96 + p)`).
fn mapped(addr: IpAddr, plen: u8) -> (u128, u32) {
    let a = u128::from_be_bytes(lb_common::addr_octets(&crate::addr::to_addr(addr)));
    match addr {
        IpAddr::V4(_) => (a, 96 + u32::from(plen.min(32))),
        IpAddr::V6(_) => (a, u32::from(plen.min(128))),
    }
}

fn mask(plen: u32) -> u128 {
    if plen == 0 {
        0
    } else {
        u128::MAX << (128 - plen)
    }
}

/// `DECAP_FAMILY_*` of an address.
fn family(a: IpAddr) -> u32 {
    if a.is_ipv4() {
        DECAP_FAMILY_V4
    } else {
        DECAP_FAMILY_V6
    }
}

/// The `DECAP_LOCAL` key of a prefix (bits past the prefix cleared): the
/// family word, then the address (docs/SEMANTICS.md §20).
pub fn prefix_key(addr: IpAddr, plen: u8) -> Key<DecapPrefix> {
    let (a, plen) = mapped(addr, plen);
    Key::new(
        32 + plen,
        DecapPrefix {
            family: family(addr),
            addr: lb_common::addr_from_octets((a & mask(plen)).to_be_bytes()),
        },
    )
}

/// Whether the prefix `(net, plen)` holds `addr` (of the same family).
fn prefix_holds(net: IpAddr, plen: u8, addr: IpAddr) -> bool {
    let (n, plen) = mapped(net, plen);
    let (a, _) = mapped(addr, 0);
    net.is_ipv4() == addr.is_ipv4() && (n ^ a) & mask(plen) == 0
}

fn vip_key(ifindex: u32, a: IpAddr) -> DecapVipKey {
    DecapVipKey {
        ifindex,
        family: family(a),
        addr: crate::addr::to_addr(a),
    }
}

/// Loads the decapsulator against the pins in `dir` and attaches it to
/// `ifindex`/`iface` (or swaps it into the link already there).
fn attach_program(dir: &Path, iface: &str, mode: Mode) -> Result<(), DecapError> {
    let mut ebpf = load(dir)?;
    let prog: &mut Xdp = ebpf
        .program_mut(DECAP_PROGRAM_NAME)
        .ok_or(Error::MissingMap("program"))?
        .try_into()
        .map_err(|e| Error::Program {
            what: format!("loading {DECAP_PROGRAM_NAME}"),
            source: e,
        })?;
    prog.load().map_err(|e| Error::Program {
        what: format!("verifying {DECAP_PROGRAM_NAME}"),
        source: e,
    })?;
    attach::attach_loaded(prog, dir, iface, mode)?;
    Ok(())
}

/// `lbctl decap attach`: validates, records the host's local addresses and
/// the interface's settings, then attaches (or replaces) the program.
pub fn attach(
    dir: &Path,
    iface: &str,
    mode: Mode,
    s: &DecapSettings,
) -> Result<Vec<String>, DecapError> {
    pins::require_attach_privileges()?;
    object()?;
    let ifindex = neigh::ifindex(iface).ok_or_else(|| DecapError::NoInterface(iface.into()))?;
    if s.vips.len() > MAX_DECAP_VIPS as usize {
        return Err(DecapError::TooManyVips {
            given: s.vips.len(),
            max: MAX_DECAP_VIPS,
        });
    }
    let local = local_prefixes().map_err(DecapError::Local)?;
    let mut warnings = Vec::new();
    for v in &s.vips {
        let covered = local.iter().any(|(a, p)| prefix_holds(*a, *p, *v));
        if !covered {
            warnings.push(format!(
                "--vip {v} is not an address of this host: the kernel will not deliver the \
                 packets decapsulated for it (add it to lo: ip addr add {v}/{} dev lo)",
                if v.is_ipv4() { 32 } else { 128 }
            ));
        }
    }
    let mut p = DecapPins::open(dir)?;
    let was_attached = attach::link_pin(dir, iface).exists();
    let old = p.iface_state(ifindex)?;
    let want_mode = match mode {
        Mode::Native => DECAP_MODE_NATIVE,
        Mode::Generic => DECAP_MODE_GENERIC,
    };
    // An attached program is swapped into its link, which keeps the mode
    // it was made with: another mode is refused, not silently ignored.
    if let Some(o) = old
        .as_ref()
        .filter(|o| was_attached && o.iface.mode != want_mode)
    {
        return Err(DecapError::OtherMode {
            iface: iface.into(),
            have: mode_name(o.iface.mode),
            want: mode_name(want_mode),
        });
    }
    let old_local = p.local_keys()?;
    let applied = p
        .set_local(&local)
        .and_then(|()| p.set_iface_mode(ifindex, s, want_mode))
        .and_then(|()| attach_program(dir, iface, mode));
    if let Err(e) = applied {
        // Nothing changes on an error: the previous settings and local
        // addresses come back (best effort; the error is the first one).
        let _ = p.restore_iface(ifindex, old.as_ref());
        let _ = p.set_local_keys(&old_local);
        return Err(e);
    }
    Ok(warnings)
}

/// `lbctl decap detach`: removes the program from `iface` and forgets the
/// interface's settings.
pub fn detach(dir: &Path, iface: &str) -> Result<(), DecapError> {
    pins::require_privileges()?;
    let pin = attach::link_pin(dir, iface);
    if !pin.exists() {
        return Err(DecapError::NotAttached(iface.into()));
    }
    let mut p = DecapPins::open(dir)?;
    let pinned = PinnedLink::from_pin(&pin).map_err(|e| Error::Io {
        what: format!("opening {}", pin.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    let link = pinned.unpin().map_err(|e| Error::Io {
        what: format!("unpinning {}", pin.display()),
        source: e,
    })?;
    // Closing the last reference to the link detaches the program.
    drop(link);
    if let Some(ifindex) = neigh::ifindex(iface) {
        p.clear_iface(ifindex)?;
    }
    Ok(())
}

/// `lbctl decap status`: the interfaces, their settings, the local
/// addresses, the counters. Changes nothing.
pub fn status(dir: &Path) -> Result<String, DecapError> {
    pins::require_privileges()?;
    let ifaces = attach::attached(dir);
    if ifaces.is_empty() && !dir.join(MAP_DECAP_STATS).exists() {
        return Ok("The decapsulator is not attached to any interface.\n".into());
    }
    let p = DecapPins::open(dir)?;
    let settings = p.iface_settings()?;
    let mut out = String::new();
    if ifaces.is_empty() {
        out.push_str("The decapsulator is not attached to any interface.\n");
    }
    for name in &ifaces {
        let s = neigh::ifindex(name).and_then(|i| settings.iter().find(|(k, _)| *k == i));
        match s {
            None => out.push_str(&format!(
                "{name}: attached, no settings (attach it again)\n"
            )),
            Some((ifindex, v)) => {
                let inner = if v.flags & DECAP_F_VIPS != 0 {
                    let vips: Vec<String> =
                        p.vips_of(*ifindex)?.iter().map(|a| a.to_string()).collect();
                    format!("vip {}", vips.join(" "))
                } else {
                    "any local address".into()
                };
                out.push_str(&format!(
                    "{name}: mode {} gue-port {} inner destination {inner}\n",
                    mode_name(v.mode),
                    u16::from_be_bytes(v.gue_port)
                ));
            }
        }
    }
    out.push_str(&format!(
        "local addresses: {} prefixes (read by the last `lbctl decap attach`)\n",
        p.local_count()
    ));
    out.push_str(&counters_text(&p.counters()?));
    Ok(out)
}

/// The counters, one aligned line per outcome.
pub fn counters_text(rows: &[(&str, u64, u64)]) -> String {
    let mut out = format!("{:<22} {:>14} {:>16}\n", "Outcome", "Packets", "Bytes");
    for (name, p, b) in rows {
        out.push_str(&format!("{name:<22} {p:>14} {b:>16}\n"));
    }
    out
}

/// Runs a `decap` command: what to print on standard output, and warnings
/// for standard error.
pub fn run(cmd: DecapCmd) -> Result<(String, Vec<String>), DecapError> {
    let dir = decap_dir();
    match cmd {
        DecapCmd::Attach {
            iface,
            mode,
            settings,
        } => {
            let mode = match mode {
                crate::cli::XdpMode::Native => Mode::Native,
                crate::cli::XdpMode::Generic => Mode::Generic,
            };
            Ok((String::new(), attach(&dir, &iface, mode, &settings)?))
        }
        DecapCmd::Detach { iface } => {
            detach(&dir, &iface)?;
            Ok((String::new(), Vec::new()))
        }
        DecapCmd::Status => Ok((status(&dir)?, Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_keyed_as_the_program_looks_them_up() {
        let k = prefix_key("203.0.113.77".parse().unwrap(), 25);
        assert_eq!(k.prefix_len(), 32 + 96 + 25);
        assert_eq!(k.data().family, DECAP_FAMILY_V4);
        assert_eq!(
            k.data().addr,
            crate::addr::to_addr("203.0.113.0".parse().unwrap())
        );
        let k = prefix_key("2001:db8::1".parse().unwrap(), 128);
        assert_eq!(k.prefix_len(), 32 + 128);
        assert_eq!(k.data().family, DECAP_FAMILY_V6);
        assert_eq!(
            k.data().addr,
            crate::addr::to_addr("2001:db8::1".parse().unwrap())
        );
        let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
        assert!(prefix_holds(v4("203.0.113.128"), 25, v4("203.0.113.200")));
        assert!(!prefix_holds(v4("203.0.113.128"), 25, v4("203.0.113.10")));
        assert!(prefix_holds(v4("127.0.0.0"), 8, v4("127.1.2.3")));
        assert!(prefix_holds(v4("2001:db8::"), 64, v4("2001:db8::10")));
        // Never across families, even where the IPv4-mapped bits would agree.
        assert!(!prefix_holds(v4("::"), 0, v4("192.0.2.1")));
        assert!(!prefix_holds(v4("0.0.0.0"), 0, v4("2001:db8::1")));
    }
}

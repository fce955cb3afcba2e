//! The program under measurement: `lb_xdp` and the `lb_baseline` MAC swap
//! loaded side by side against one private pin directory, run frame by
//! frame through `BPF_PROG_TEST_RUN`, with the control plane (`Table`) over
//! the same maps, as `lbctl` would drive them.
//!
//! Everything runs inside a [`Lab`]: a private network namespace whose
//! interface has permanent neighbour entries for the real servers, so the
//! controller resolves their MACs at once, and whose interface is the
//! frames' ingress, so direct routing answers `XDP_TX` (one-armed LVS-DR).

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    path::Path,
};

use anyhow::{Context, Result, bail};
use aya::{
    Ebpf, TestRun, TestRunOptions,
    maps::{IterableMap, MapData, PerCpuArray},
    programs::Xdp,
};
use lb_common::{Counters, MAP_STATS, PROGRAM_NAME, REASON_COUNT};
use lb_tests::{BpfPinDir, Netns, netns::format_mac, topo::mac_for};
use lb_user::{Pins, Sizes, Table, pins::load_maps};

/// The load balancer.
pub const PROG_LB: &str = PROGRAM_NAME;
/// The limit we measure against: bounds checks, MAC swap, `XDP_TX`.
pub const PROG_BASELINE: &str = "lb_baseline";
/// The lab's interface: where frames come in and real servers are reached.
pub const LAB_IF: &str = "lab0";
/// The lab interface's address (the director's).
pub const LAB_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// First real server address; the others follow.
pub const FIRST_REAL: u8 = 11;
/// Real servers the lab knows (198.51.100.11 ..= .42).
pub const LAB_REALS: u8 = 32;

/// Address of lab real server `i` (0-based).
pub fn real_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, FIRST_REAL + i as u8)
}

/// IPv6 address of lab real server `i` (0-based): 2001:db8:0:1::(11 + i),
/// with the MAC of the IPv4 real `i` (`mac_for(real_addr(i))`).
pub fn real_addr6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        0,
        1,
        0,
        0,
        0,
        u16::from(FIRST_REAL) + i as u16,
    )
}

/// A private network namespace: `lab0` (a veth, its peer up so that it has
/// carrier) on 198.51.100.0/24 and 2001:db8:0:1::/64 with permanent
/// neighbour entries for every lab real server of both families (MAC
/// `mac_for(addr)` of the IPv4 address), IPv6 forwarding on (the program
/// resolves IPv6 reals with `bpf_fib_lookup`, which answers only on a
/// forwarding interface). Nothing is ever sent anywhere.
pub struct Lab {
    ns: Netns,
}

impl Lab {
    pub fn new() -> Result<Lab> {
        let ns = Netns::new("bench")?;
        ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        // The masquerading cases' replies are forwarded to the client
        // (198.51.100.10) by `bpf_fib_lookup`.
        ns.sysctl("net.ipv4.ip_forward", "1")?;
        let mut batch = format!(
            "link add {LAB_IF} type veth peer name lab1\naddr add {LAB_ADDR}/24 dev {LAB_IF}\n\
             addr add 2001:db8:0:1::2/64 dev {LAB_IF} nodad\n\
             link set lab1 up\nlink set {LAB_IF} up\n"
        );
        for i in 0..LAB_REALS as usize {
            let a = real_addr(i);
            let mac = format_mac(&mac_for(a));
            batch.push_str(&format!(
                "neigh replace {a} lladdr {mac} dev {LAB_IF} nud permanent\n"
            ));
            batch.push_str(&format!(
                "neigh replace {} lladdr {mac} dev {LAB_IF} nud permanent\n",
                real_addr6(i)
            ));
        }
        batch.push_str(&format!(
            "neigh replace 198.51.100.10 lladdr {} dev {LAB_IF} nud permanent\n",
            format_mac(&lb_tests::frame::DOC_SRC_MAC)
        ));
        ns.ip_batch(&batch)?;
        Ok(Lab { ns })
    }

    /// Runs `f` on a thread inside the lab, pinned to `cpu`.
    pub fn run<R: Send>(&self, cpu: usize, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
        self.ns.run_in(move || {
            lb_tests::lb::pin_to_cpu(cpu);
            f()
        })?
    }
}

/// `struct xdp_md` for `ctx_in`: the frame arrives on `ifindex`, queue 0.
fn xdp_md(len: usize, ifindex: u32) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[4..8].copy_from_slice(&(len as u32).to_ne_bytes()); // data_end
    b[12..16].copy_from_slice(&ifindex.to_ne_bytes()); // ingress_ifindex
    b
}

/// One program of the object, loaded, ready for `test_run`.
pub struct Runner<'a> {
    prog: &'a Xdp,
    ifindex: u32,
    out: Vec<u8>,
}

impl Runner<'_> {
    /// Runs the program once on `frame`: (action, kernel-reported ns).
    /// The output frame is in [`Runner::output`] afterwards.
    #[inline]
    pub fn run(&mut self, frame: &[u8]) -> Result<(u32, u64)> {
        let ctx = xdp_md(frame.len(), self.ifindex);
        self.out.resize(frame.len() + 256, 0);
        let r = self.prog.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut self.out),
            ctx_in: Some(&ctx),
            ..TestRunOptions::default()
        })?;
        self.out.truncate(r.data_size_out as usize);
        Ok((r.return_value, r.duration.as_nanos() as u64))
    }

    pub fn output(&self) -> &[u8] {
        &self.out
    }
}

/// `lb_xdp` and `lb_baseline` on a private pin directory, plus the
/// controller. The controller holds the pin directory's lock while it is
/// open; [`Plane::release_table`] lets a real `lbctl` work on the same maps.
pub struct Plane {
    table: Option<Table>,
    ebpf: Ebpf,
    sizes: Sizes,
    ifindex: u32,
    pins: BpfPinDir,
}

impl Plane {
    /// Creates the maps with `sizes` (CONNS, TEMPLATES) and loads both
    /// programs. Call inside the [`Lab`].
    pub fn new(sizes: Sizes) -> Result<Plane> {
        if lb_user::BPF_OBJECT.is_empty() {
            bail!("built without the BPF object: run through `cargo xtask bench`");
        }
        let ifindex = lb_user::neigh::ifindex(LAB_IF).context("no lab interface here")?;
        let pins = BpfPinDir::new()?;
        let table = Table::new(Pins::open(pins.path(), Some(sizes))?);
        let mut ebpf = match std::env::var_os(OBJECT_OVERRIDE_ENV) {
            None => load_maps(pins.path(), sizes)?,
            Some(path) => load_other(pins.path(), sizes, Path::new(&path))?,
        };
        for name in [PROG_LB, PROG_BASELINE] {
            let prog: &mut Xdp = ebpf
                .program_mut(name)
                .with_context(|| format!("{name} missing from the object"))?
                .try_into()?;
            prog.load().with_context(|| format!("loading {name}"))?;
        }
        Ok(Plane {
            table: Some(table),
            ebpf,
            sizes,
            ifindex,
            pins,
        })
    }

    /// Arms the sweeper as `lbctl attach` does, and waits for its first
    /// sweep: (entries it visited, ns it took).
    pub fn sweep_once(&mut self) -> Result<(u64, u64)> {
        lb_tests::lb::arm_sweeper(&mut self.ebpf)?;
        let table = self.table()?;
        lb_tests::lb::wait_for("the first sweep", std::time::Duration::from_secs(5), || {
            let s = table.sweeper()?;
            Ok((s.runs > 0).then_some((s.visited, s.took_ns)))
        })
    }

    pub fn pin_dir(&self) -> &Path {
        self.pins.path()
    }

    /// The controller (reopened if released).
    pub fn table(&mut self) -> Result<&mut Table> {
        if self.table.is_none() {
            self.table = Some(Table::new(Pins::open(self.pins.path(), Some(self.sizes))?));
        }
        Ok(self.table.as_mut().expect("just opened"))
    }

    /// Closes the controller, releasing the pin directory's lock.
    pub fn release_table(&mut self) {
        self.table = None;
    }

    pub fn xdp(&self, name: &str) -> Result<&Xdp> {
        let p = self
            .ebpf
            .program(name)
            .with_context(|| format!("{name} not loaded"))?;
        Ok(<&Xdp>::try_from(p)?)
    }

    pub fn runner(&self, name: &str) -> Result<Runner<'_>> {
        Ok(Runner {
            prog: self.xdp(name)?,
            ifindex: self.ifindex,
            out: Vec::with_capacity(512),
        })
    }

    /// Packets counted under each `REASON_*`, summed over CPUs.
    pub fn reasons(&self) -> Result<Vec<u64>> {
        let stats: PerCpuArray<_, Counters> =
            PerCpuArray::try_from(self.ebpf.map(MAP_STATS).context(MAP_STATS)?)?;
        let mut out = vec![0; REASON_COUNT as usize];
        for (i, o) in out.iter_mut().enumerate() {
            *o = stats.get(&(i as u32), 0)?.iter().map(|c| c.packets).sum();
        }
        Ok(out)
    }

    /// The file descriptor of the CONNS map (for batch operations).
    pub fn conns_fd(&mut self) -> Result<BorrowedFd<'_>> {
        Ok(self.table()?.pins.conns.map().fd().as_fd())
    }

    /// The file descriptor of the TEMPLATES map.
    pub fn templates_fd(&mut self) -> Result<BorrowedFd<'_>> {
        Ok(self.table()?.pins.templates.map().fd().as_fd())
    }

    /// Kernel memory charged to a pinned map (`memlock` in its fdinfo) and
    /// its `max_entries`.
    pub fn memlock(&self, map: &str) -> Result<(u64, u32)> {
        let md = MapData::from_pin(self.pins.join(map))?;
        let max = md.info()?.max_entries();
        let fd = md.fd().as_fd().as_raw_fd();
        let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
        let bytes = text
            .lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse().ok())
            .context("no memlock in fdinfo")?;
        Ok((bytes, max))
    }
}

/// Names another build of the BPF object whose programs are timed instead
/// of the embedded one's, against maps made by the embedded one (same
/// layout). For attributing costs: time variants of the program with one
/// stage removed, side by side with the same harness.
pub const OBJECT_OVERRIDE_ENV: &str = "LB_BENCH_OBJECT";

fn load_other(dir: &Path, sizes: Sizes, object: &Path) -> Result<Ebpf> {
    let bytes = std::fs::read(object).with_context(|| format!("reading {}", object.display()))?;
    let mut loader = aya::EbpfLoader::new();
    for name in lb_common::MAP_NAMES {
        loader.map_pin_path(name, dir.join(name));
    }
    loader
        .map_max_entries(lb_common::MAP_CONNS, sizes.conns)
        .map_max_entries(lb_common::MAP_TEMPLATES, sizes.templates);
    loader
        .load(&bytes)
        .with_context(|| format!("loading {}", object.display()))
}

/// CLOCK_MONOTONIC in ns, the time base of the maps (lbctl's own clock),
/// for entries written from userspace.
pub use lb_user::clock::monotonic_ns;

//! Listings in ipvsadm 1.31's formats, byte for byte (its `printf` strings are
//! quoted next to the code that reproduces them), so that scripts parsing
//! `ipvsadm -L`, `-L -n --stats`, `-L -c`, `-S` keep working on `lbctl`.
//!
//! All functions are pure and return the whole text, ending with a newline.
//! Without `numeric`, addresses and ports are shown as names from
//! `/etc/hosts` and `/etc/services` (falling back to numbers), like ipvsadm
//! minus DNS; the `*_with` variants take the name tables explicitly.

use std::{fmt::Write as _, net::IpAddr};

use crate::addr::{Ntop, host_words, is_full_netmask, v6_prefix_len};

use crate::model::{
    ConnView, Fwd, Proto, RealView, ServiceView, Thresholds, Timeouts, TunCsum, TunType,
};
use crate::resolve::Resolver;

/// IPVS version ipvsadm reports in the header (that of every kernel since
/// 2.6.x).
pub const IPVS_VERSION: &str = "1.2.1";

/// Output modifiers of `-L` (ipvsadm's `FMT_*` flags). When several are given,
/// ipvsadm's precedence applies: stats, then rate, then thresholds, then
/// persistent-conn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListFormat {
    /// `-n`: numbers instead of host and service names.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`: Uthreshold and Lthreshold instead of Forward and
    /// Weight (0 = none).
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--exact`: no K/M/G/T abbreviation in `--stats`/`--rate`.
    pub exact: bool,
    /// `--nosort`: services and reals in the order given.
    pub nosort: bool,
    /// `--tun-info`: a TunnelInfo column after Forward (the other formats
    /// win over it).
    pub tun_info: bool,
}

/// Names used when a listing is numeric: none are looked up.
static NO_NAMES: Resolver = Resolver::new();

/// The name tables a listing uses: none with `-n`, else the system's.
pub fn names_for(numeric: bool) -> &'static Resolver {
    if numeric {
        &NO_NAMES
    } else {
        Resolver::system()
    }
}

/// `-L` without a service: the header line, the column titles, then every
/// service with its reals. `conn_tab_size` is the connection hash size shown
/// as `(size=N)`.
pub fn list_services(views: &[ServiceView], opts: &ListFormat, conn_tab_size: u32) -> String {
    list_services_with(views, opts, conn_tab_size, names_for(opts.numeric))
}

/// [`list_services`] with the given name tables.
pub fn list_services_with(
    views: &[ServiceView],
    opts: &ListFormat,
    conn_tab_size: u32,
    names: &Resolver,
) -> String {
    // "IP Virtual Server version %d.%d.%d (size=%d)\n"
    let mut out = format!("IP Virtual Server version {IPVS_VERSION} (size={conn_tab_size})\n");
    print_title(&mut out, opts);
    for view in sorted_services(views, opts.nosort) {
        print_service_entry(&mut out, view, opts, names);
    }
    out
}

/// `-L -t|-u service`: the column titles and that service, without the
/// `IP Virtual Server version` line (ipvsadm's `list_service`).
pub fn list_service(view: &ServiceView, opts: &ListFormat) -> String {
    list_service_with(view, opts, names_for(opts.numeric))
}

/// [`list_service`] with the given name tables.
pub fn list_service_with(view: &ServiceView, opts: &ListFormat, names: &Resolver) -> String {
    let mut out = String::new();
    print_title(&mut out, opts);
    print_service_entry(&mut out, view, opts, names);
    out
}

/// `-L -c [-n]`: the connection table, rows in the given order.
pub fn list_conns(rows: &[ConnView], numeric: bool) -> String {
    let opts = ListFormat {
        numeric,
        ..ListFormat::default()
    };
    list_conns_with(rows, &opts, names_for(numeric))
}

/// [`list_conns`] with the given name tables; `opts.persistent_conn`
/// (`-L -c --persistent-conn`) selects ipvsadm's wider heading. Rows never
/// carry persistence-engine data in lbctl, so they keep the plain layout, as
/// ipvsadm prints rows without PE data.
pub fn list_conns_with(rows: &[ConnView], opts: &ListFormat, names: &Resolver) -> String {
    let mut out = conns_heading(opts);
    for c in rows {
        conn_row(&mut out, c, opts, names);
    }
    out
}

/// The two heading lines of `-L -c`. `lbctl -L -c` prints them, then each
/// row with [`conn_row`] as it reads the table.
pub fn conns_heading(opts: &ListFormat) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if opts.persistent_conn {
        // "pro expire %-11s %-18s %-18s %-18s %-16s %s\n"
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} {}\n",
            "state", "source", "virtual", "destination", "pe name", "pe_data"
        ));
    } else {
        // "pro expire %-11s %-18s %-18s %s\n"
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        ));
    }
    out
}

/// Appends one row of `-L -c` to `out`: ipvsadm's
/// `"%-3s %-6s %-11s %-18s %-18s %s\n"` of protocol, `"%02d:%02d"` expiry,
/// state, and the three `addr:port`s. Written in place, without a `String`
/// per field: `lbctl -L -c` prints a row per entry of a table of millions.
pub fn conn_row(out: &mut String, c: &ConnView, opts: &ListFormat, names: &Resolver) {
    let field = |out: &mut String, width: usize, put: &dyn Fn(&mut String)| {
        let start = out.len();
        put(out);
        let len = out[start..].chars().count();
        out.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
        out.push(' ');
    };
    field(out, 3, &|o| o.push_str(c.proto.conn_name()));
    field(out, 6, &|o| {
        let _ = write!(o, "{:02}:{:02}", c.expire_secs / 60, c.expire_secs % 60);
    });
    field(out, 11, &|o| o.push_str(c.state));
    let ap =
        |o: &mut String, addr, port| addrport_into(o, addr, port, c.proto, opts.numeric, names);
    field(out, 18, &|o| ap(o, c.caddr, c.cport));
    field(out, 18, &|o| ap(o, c.vaddr, c.vport));
    ap(out, c.daddr, c.dport);
    out.push('\n');
}

/// `-S [-n]`: the rules in `-R` format. Services and reals are always sorted
/// (ipvsadm's `-S` takes no `--nosort`). A real with thresholds gets
/// ` -x U -y L` after its weight, which ipvsadm 1.31's `-S` leaves out (it
/// loses them): a file of reals without thresholds is ipvsadm's byte for
/// byte, and one with them restores them with `lbctl -R` and
/// `ipvsadm-restore` alike.
pub fn save(views: &[ServiceView], numeric: bool) -> String {
    save_with(views, numeric, names_for(numeric))
}

/// [`save`] with the given name tables.
pub fn save_with(views: &[ServiceView], numeric: bool, names: &Resolver) -> String {
    let mut out = String::new();
    for view in sorted_services(views, false) {
        let spec = &view.spec;
        let proto = spec.id.proto;
        // "-f %d" ("-f %d -6" for IPv6) for a fwmark service, else
        // "%s %s", stype, vname
        let svc_name = match spec.id.mark() {
            Some(mark) if spec.id.is_v6() => format!("-f {mark} -6"),
            Some(mark) => format!("-f {mark}"),
            None => {
                let stype = if proto == Proto::Udp { "-u" } else { "-t" };
                let vname = addrport(spec.id.addr, spec.id.port, proto, numeric, names);
                format!("{stype} {vname}")
            }
        };
        // "-A %s -s %s" [" -p %u" [" -M %s"]]
        out.push_str(&format!("-A {svc_name} -s {}", spec.sched.name()));
        if let Some(timeout) = spec.persistent {
            out.push_str(&format!(" -p {timeout}"));
            if !is_full_netmask(spec.netmask) {
                out.push_str(&format!(" -M {}", netmask_text(spec.netmask)));
            }
        }
        // [" -o"]
        if spec.one_packet {
            out.push_str(" -o");
        }
        // [" -b " print_sched_flags]
        if spec.sched.flags().any() {
            out.push_str(&format!(" -b {}", spec.sched.flag_names()));
        }
        out.push('\n');
        for real in sorted_reals(&view.reals, false) {
            let r = &real.spec;
            let dname = addrport(r.id.addr, r.id.port, proto, numeric, names);
            // "-a %s -r %s %s -w %d\n" (print_tunnel_rule's forms for a
            // tunnelling real), with " -x %u -y %u" before the newline when
            // a threshold is set (not in ipvsadm: see above).
            out.push_str(&format!(
                "-a {svc_name} -r {dname} {}",
                fwd_rule(r.fwd, r.weight)
            ));
            let t = r.thresholds;
            if t != Thresholds::NONE {
                out.push_str(&format!(" -x {} -y {}", t.upper, t.lower));
            }
            out.push('\n');
        }
    }
    out
}

/// `-L --timeout`: `Timeout (tcp tcpfin udp): 900 120 300`.
pub fn timeouts(t: &Timeouts) -> String {
    // "Timeout (tcp tcpfin udp): %d %d %d\n"
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}

/// `lbctl sysctl`: one `net.ipv4.vs.NAME = VALUE` line per knob, as
/// `sysctl -a` prints them; names are given without the prefix.
pub fn sysctls(list: &[(&str, u32)]) -> String {
    list.iter()
        .map(|(name, value)| format!("net.ipv4.vs.{name} = {value}\n"))
        .collect()
}

// ---------------------------------------------------------------------------

fn sorted_services(views: &[ServiceView], nosort: bool) -> Vec<&ServiceView> {
    let mut sorted: Vec<&ServiceView> = views.iter().collect();
    if !nosort {
        // ipvs_cmp_services: fwmark (services without one first), then
        // family (IPv4 first), protocol, address word by word, port.
        qsort(&mut sorted, &|a, b| {
            let (a, b) = (a.spec.id, b.spec.id);
            let mark = |id: crate::model::ServiceId| id.mark().unwrap_or(0);
            int_order(mark(a), mark(b))
                .then_with(|| a.is_v6().cmp(&b.is_v6()))
                .then_with(|| a.proto.number().cmp(&b.proto.number()))
                .then_with(|| addr_order(a.addr, b.addr))
                .then_with(|| a.port.cmp(&b.port))
        });
    }
    sorted
}

fn sorted_reals(reals: &[RealView], nosort: bool) -> Vec<&RealView> {
    let mut sorted: Vec<&RealView> = reals.iter().collect();
    if !nosort {
        // ipvs_cmp_dests: address (word by word for IPv6), port.
        qsort(&mut sorted, &|a, b| {
            let (a, b) = (a.spec.id, b.spec.id);
            addr_order(a.addr, b.addr).then_with(|| a.port.cmp(&b.port))
        });
    }
    sorted
}

/// How libipvs's comparators order two 32-bit values (addresses in host
/// order, marks): by their difference read as an `int`, so values 2^31 or
/// more apart compare the wrong way round (203.0.113.10 before 10.0.0.100),
/// and ipvsadm lists them so.
fn int_order(a: u32, b: u32) -> std::cmp::Ordering {
    // The wrap is the point: `(int)(a - b)`.
    #[expect(clippy::cast_possible_wrap, reason = "ipvsadm's int difference")]
    let r = a.wrapping_sub(b) as i32;
    r.cmp(&0)
}

/// libipvs's address comparison: [`int_order`] of each 32-bit word in
/// host order, as many words as `a`'s family has (one for IPv4, four for
/// IPv6; `b` is read as that family, the words it lacks are zero).
fn addr_order(a: IpAddr, b: IpAddr) -> std::cmp::Ordering {
    let (a, b) = (host_words(a), host_words(b));
    a.iter()
        .enumerate()
        .map(|(i, &w)| int_order(w, b.get(i).copied().unwrap_or(0)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// A persistence netmask as ipvsadm prints it: an IPv4 mask dotted
/// (`inet_ntoa`), an IPv6 one as its prefix length (`%i`).
fn netmask_text(mask: IpAddr) -> String {
    match mask {
        IpAddr::V4(m) => m.to_string(),
        IpAddr::V6(m) => v6_prefix_len(m).map_or_else(|| m.to_string(), |p| p.to_string()),
    }
}

/// glibc's `qsort` as ipvsadm calls it: its merge sort (`msort_with_tmp`:
/// halves of n / 2 and the rest, the left element taken while it compares
/// `<= 0`). Where the comparator is a total order (values within 2^31 of
/// each other) any sort gives the same list; where [`int_order`] is not
/// transitive, this never panics (as `sort_by` may) and, like ipvsadm's,
/// the result depends on the order the table gave.
fn qsort<T: Copy>(v: &mut [T], cmp: &impl Fn(&T, &T) -> std::cmp::Ordering) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    let (left, right) = v.split_at_mut(n1);
    qsort(left, cmp);
    qsort(right, cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]).is_le() {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..]);
    v.copy_from_slice(&merged);
}

/// Cuts `s` to at most `max` bytes (on a character boundary), like ipvsadm's
/// `name[max] = '\0'`.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// [`addrport`], appended to `out`.
fn addrport_into(
    out: &mut String,
    addr: IpAddr,
    port: u16,
    proto: Proto,
    numeric: bool,
    names: &Resolver,
) {
    if numeric {
        // At most 47 bytes: nothing to cut.
        let _ = match addr {
            IpAddr::V4(a) => write!(out, "{a}:{port}"),
            IpAddr::V6(_) => write!(out, "[{}]:{port}", Ntop(addr)),
        };
    } else {
        out.push_str(&addrport(addr, port, proto, numeric, names));
    }
}

/// ipvsadm's `addrport_to_anyname`: `addr:port`, or `host:service` with names
/// where known, an IPv6 address or its name in brackets (`[addr]:port`); at
/// most 59 bytes (its 60-byte buffer).
fn addrport(addr: IpAddr, port: u16, proto: Proto, numeric: bool, names: &Resolver) -> String {
    let mut s = if numeric {
        crate::addr::addr_port(addr, port)
    } else {
        let host = names
            .host_name(addr)
            .map_or_else(|| Ntop(addr).to_string(), str::to_owned);
        let service = names
            .service_name(port, proto)
            .map_or_else(|| port.to_string(), str::to_owned);
        match addr {
            IpAddr::V4(_) => format!("{host}:{service}"),
            IpAddr::V6(_) => format!("[{host}]:{service}"),
        }
    };
    truncate(&mut s, 59);
    s
}

/// ipvsadm's `print_largenum`: a counter right-aligned in 9 columns; without
/// `--exact`, values of 10^8 and more are shown in thousands (K), millions
/// (M), billions (G) or trillions (T), truncated.
fn largenum(out: &mut String, i: u64, exact: bool) {
    if exact {
        // printf("%*llu", len <= 8 ? 9 : len + 1, i)
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        out.push_str(&format!("{i:>width$}"));
    } else if i < 100_000_000 {
        out.push_str(&format!("{i:>9}"));
    } else if i < 1_000_000_000 {
        out.push_str(&format!("{:>8}K", i / 1_000));
    } else if i < 100_000_000_000 {
        out.push_str(&format!("{:>8}M", i / 1_000_000));
    } else if i < 100_000_000_000_000 {
        out.push_str(&format!("{:>8}G", i / 1_000_000_000));
    } else {
        out.push_str(&format!("{:>8}T", i / 1_000_000_000_000));
    }
}

/// ipvsadm's `print_title`.
fn print_title(out: &mut String, opts: &ListFormat) {
    const PROT: &str = "Prot LocalAddress:Port";
    const REMOTE: &str = "  -> RemoteAddress:Port\n";
    if opts.stats {
        // "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
        out.push_str(&format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ));
    } else if opts.rate {
        out.push_str(&format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ));
    } else if opts.thresholds {
        // "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n"
        out.push_str(&format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n{REMOTE}",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ));
    } else if opts.persistent_conn {
        // "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n"
        out.push_str(&format!(
            "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{REMOTE}",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        ));
    } else if opts.tun_info {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        );
    } else {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
    }
}

/// ipvsadm's `fwd_tun_info`: `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS` (FLAGS
/// `-c`, `+c` or `r+c`) for a tunnelling real, `None` for the others.
fn tun_info(fwd: Fwd) -> Option<String> {
    let Fwd::Tunnel(t) = fwd else {
        return None;
    };
    // tunflags[] = { "-c", "+c", "r+c" }
    let flags = match t.csum {
        TunCsum::NoCsum => "-c",
        TunCsum::Csum => "+c",
        TunCsum::RemCsum => "r+c",
    };
    Some(match t.kind {
        TunType::Ipip => "ipip".to_owned(),
        // snprintf(info, 16, "%s:%d:%s", "gue", ntohs(e->tun_port), ...):
        // at most 15 characters, which "gue:65535:r+c" is not over.
        TunType::Gue => format!("gue:{}:{flags}", t.port),
        TunType::Gre => format!("gre:{flags}"),
    })
}

/// The `-S` options of a real's method: ipvsadm's `print_tunnel_rule` for
/// a tunnelling real (its defaults made explicit), `fwd_switch` for the
/// others.
fn fwd_rule(fwd: Fwd, weight: u32) -> String {
    let Fwd::Tunnel(t) = fwd else {
        return format!("{} -w {weight}", fwd.switch());
    };
    // tun_flags_opts[] = { "--tun-nocsum", "--tun-csum", "--tun-remcsum" }
    let csum = match t.csum {
        TunCsum::NoCsum => "--tun-nocsum",
        TunCsum::Csum => "--tun-csum",
        TunCsum::RemCsum => "--tun-remcsum",
    };
    match t.kind {
        // "%s -w %d --tun-type %s"
        TunType::Ipip => format!("-i -w {weight} --tun-type ipip"),
        // "%s -w %d --tun-type %s --tun-port %d %s"
        TunType::Gue => format!("-i -w {weight} --tun-type gue --tun-port {} {csum}", t.port),
        // "%s -w %d --tun-type %s %s"
        TunType::Gre => format!("-i -w {weight} --tun-type gre {csum}"),
    }
}

/// ipvsadm's `print_service_entry` for listings (not `-S`).
fn print_service_entry(out: &mut String, view: &ServiceView, opts: &ListFormat, names: &Resolver) {
    let spec = &view.spec;
    let proto = spec.id.proto;
    // "FWM  %d" ("FWM  %d IPv6") for a fwmark service; else
    // snprintf(svc_name, ..., "%-4s %s", stype, vname);
    // if (se->af != AF_INET6) svc_name[33] = '\0';
    let svc_name = match spec.id.mark() {
        Some(mark) if spec.id.is_v6() => format!("FWM  {mark} IPv6"),
        Some(mark) => format!("FWM  {mark}"),
        None => {
            let vname = addrport(spec.id.addr, spec.id.port, proto, opts.numeric, names);
            let mut svc_name = format!("{:<4} {vname}", proto.name());
            if !spec.id.is_v6() {
                truncate(&mut svc_name, 33);
            }
            svc_name
        }
    };

    if opts.stats {
        // printf("%-33s", svc_name) and five print_largenum
        out.push_str(&format!("{svc_name:<33}"));
        let s = &view.stats;
        for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
            largenum(out, n, opts.exact);
        }
    } else if opts.rate {
        out.push_str(&format!("{svc_name:<33}"));
        let r = &view.rates;
        for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
            largenum(out, n, opts.exact);
        }
    } else {
        // printf("%s %s", svc_name, sched_name) [" persistent %u" [" mask %s"]]
        out.push_str(&format!("{svc_name} {}", spec.sched.name()));
        // [" (" print_sched_flags ")"]
        if spec.sched.flags().any() {
            out.push_str(&format!(" ({})", spec.sched.flag_names()));
        }
        if let Some(timeout) = spec.persistent {
            out.push_str(&format!(" persistent {timeout}"));
            if !is_full_netmask(spec.netmask) {
                out.push_str(&format!(" mask {}", netmask_text(spec.netmask)));
            }
        }
        // [" ops"]
        if spec.one_packet {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    for real in sorted_reals(&view.reals, opts.nosort) {
        let r = &real.spec;
        let mut dname = addrport(r.id.addr, r.id.port, proto, opts.numeric, names);
        // if (e->af != AF_INET6) dname[28] = '\0'
        if r.id.addr.is_ipv4() {
            truncate(&mut dname, 28);
        }
        if opts.stats {
            // printf("  -> %-28s", dname) and five print_largenum
            out.push_str(&format!("  -> {dname:<28}"));
            let s = &real.stats;
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                largenum(out, n, opts.exact);
            }
            out.push('\n');
        } else if opts.rate {
            // printf("  -> %-28s %8llu %8llu %8llu", dname, cps, inpps, outpps)
            // then print_largenum for inbps and outbps
            let t = &real.rates;
            out.push_str(&format!(
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                t.cps, t.inpps, t.outpps
            ));
            largenum(out, t.inbps, opts.exact);
            largenum(out, t.outbps, opts.exact);
            out.push('\n');
        } else if opts.thresholds {
            // "  -> %-28s %-10u %-10u %-10u %-10u\n"
            out.push_str(&format!(
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}\n",
                r.thresholds.upper, r.thresholds.lower, real.active_conns, real.inactive_conns
            ));
        } else if opts.persistent_conn {
            // "  -> %-28s %-9u %-11u %-10u %-10u\n"
            out.push_str(&format!(
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}\n",
                r.weight, real.persist_conns, real.active_conns, real.inactive_conns
            ));
        } else if opts.tun_info {
            // "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n", ti ? : NA
            out.push_str(&format!(
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}\n",
                r.fwd.name(),
                tun_info(r.fwd).as_deref().unwrap_or("n/a"),
                r.weight,
                real.active_conns,
                real.inactive_conns
            ));
        } else {
            // "  -> %-28s %-7s %-6d %-10u %-10u\n"
            out.push_str(&format!(
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}\n",
                r.fwd.name(),
                r.weight,
                real.active_conns,
                real.inactive_conns
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    //! Expected texts were produced by a C program that calls `printf` with
    //! ipvsadm.c's own format strings and `print_largenum` on the same values.

    use super::*;
    use crate::model::{Fwd, Rates, RealId, RealSpec, Sched, ServiceId, ServiceSpec, Stats};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn svc(
        proto: Proto,
        addr: &str,
        port: u16,
        sched: Sched,
        persistent: Option<u32>,
    ) -> ServiceView {
        ServiceView {
            spec: ServiceSpec {
                id: ServiceId {
                    proto,
                    addr: ip(addr),
                    port,
                },
                sched,
                persistent,
                netmask: ip("255.255.255.255"),
                one_packet: false,
            },
            stats: Stats::default(),
            rates: Rates::default(),
            reals: Vec::new(),
        }
    }

    fn real(addr: &str, port: u16, weight: u32, active: u64, inactive: u64) -> RealView {
        RealView {
            spec: RealSpec {
                id: RealId {
                    addr: ip(addr),
                    port,
                },
                fwd: Fwd::Route,
                weight,
                thresholds: Thresholds::NONE,
            },
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: 0,
            stats: Stats::default(),
            rates: Rates::default(),
        }
    }

    fn stats(v: [u64; 5]) -> Stats {
        Stats {
            conns: v[0],
            inpkts: v[1],
            outpkts: v[2],
            inbytes: v[3],
            outbytes: v[4],
        }
    }

    /// Three services given out of order, reals newest first.
    fn table() -> Vec<ServiceView> {
        let mut web = svc(Proto::Tcp, "10.0.0.100", 80, Sched::Wrr, Some(300));
        web.reals = vec![
            real("10.0.0.12", 80, 0, 1, 0),
            real("10.0.0.11", 80, 1, 2, 5),
        ];
        let mut dns = svc(Proto::Udp, "10.0.0.100", 53, Sched::Rr, None);
        dns.reals = vec![real("10.0.0.11", 53, 65535, 0, 123456)];
        let mut tls = svc(Proto::Tcp, "10.0.0.99", 443, Sched::Rr, Some(600));
        tls.spec.netmask = ip("255.255.255.0");
        vec![web, dns, tls]
    }

    fn names() -> Resolver {
        Resolver::from_text(
            "127.0.0.1 localhost\n10.0.0.100 vip.example.com vip\n10.0.0.11 rs1\n",
            "http 80/tcp www\ndomain 53/tcp\ndomain 53/udp\nhttps 443/tcp\n",
        )
    }

    #[test]
    fn list_numeric_sorted() {
        let opts = ListFormat {
            numeric: true,
            ..ListFormat::default()
        };
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  10.0.0.99:443 rr persistent 600 mask 255.255.255.0\n",
            "TCP  10.0.0.100:80 wrr persistent 300\n",
            "  -> 10.0.0.11:80                 Route   1      2          5         \n",
            "  -> 10.0.0.12:80                 Route   0      1          0         \n",
            "UDP  10.0.0.100:53 rr\n",
            "  -> 10.0.0.11:53                 Route   65535  0          123456    \n",
        );
        assert_eq!(
            list_services_with(&table(), &opts, 4096, &names()),
            expected
        );
    }

    #[test]
    fn list_nosort_keeps_given_order() {
        let opts = ListFormat {
            numeric: true,
            nosort: true,
            ..ListFormat::default()
        };
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  10.0.0.100:80 wrr persistent 300\n",
            "  -> 10.0.0.12:80                 Route   0      1          0         \n",
            "  -> 10.0.0.11:80                 Route   1      2          5         \n",
            "UDP  10.0.0.100:53 rr\n",
            "  -> 10.0.0.11:53                 Route   65535  0          123456    \n",
            "TCP  10.0.0.99:443 rr persistent 600 mask 255.255.255.0\n",
        );
        assert_eq!(
            list_services_with(&table(), &opts, 4096, &names()),
            expected
        );
    }

    #[test]
    fn list_empty_table() {
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=1048576)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
        let opts = ListFormat::default();
        assert_eq!(list_services_with(&[], &opts, 1 << 20, &names()), expected);
    }

    #[test]
    fn list_with_names_falls_back_to_numbers() {
        let opts = ListFormat::default();
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  10.0.0.99:https rr persistent 600 mask 255.255.255.0\n",
            "TCP  vip.example.com:http wrr persistent 300\n",
            "  -> rs1:http                     Route   1      2          5         \n",
            "  -> 10.0.0.12:http               Route   0      1          0         \n",
            "UDP  vip.example.com:domain rr\n",
            "  -> rs1:domain                   Route   65535  0          123456    \n",
        );
        assert_eq!(
            list_services_with(&table(), &opts, 4096, &names()),
            expected
        );
    }

    #[test]
    fn long_names_are_cut_like_ipvsadm() {
        let mut v = svc(Proto::Tcp, "192.0.2.1", 443, Sched::Rr, None);
        v.reals = vec![real("192.0.2.2", 443, 1, 0, 0)];
        let names = Resolver::from_text(
            "192.0.2.1 a-very-long-virtual-host-name.example.com\n\
             192.0.2.2 a-very-long-real-server-name.example.com\n",
            "https 443/tcp\n",
        );
        let expected = concat!(
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  a-very-long-virtual-host-nam rr\n",
            "  -> a-very-long-real-server-name Route   1      0          0         \n",
        );
        assert_eq!(
            list_service_with(&v, &ListFormat::default(), &names),
            expected
        );
    }

    #[test]
    fn single_service_has_no_header_line() {
        let opts = ListFormat {
            numeric: true,
            ..ListFormat::default()
        };
        let t = table();
        let expected = concat!(
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "UDP  10.0.0.100:53 rr\n",
            "  -> 10.0.0.11:53                 Route   65535  0          123456    \n",
        );
        assert_eq!(list_service_with(&t[1], &opts, &names()), expected);
    }

    fn stats_table() -> Vec<ServiceView> {
        let mut v = svc(Proto::Tcp, "10.0.0.100", 80, Sched::Wrr, Some(300));
        v.stats = stats([12, 99_999_999, 100_000_000, 123_456_789, 5_000_000_000]);
        let mut r11 = real("10.0.0.11", 80, 1, 0, 0);
        r11.stats = stats([
            999_999_999,
            1_000_000_000,
            99_999_999_999,
            100_000_000_000,
            99_999_999_999_999,
        ]);
        let mut r12 = real("10.0.0.12", 80, 1, 0, 0);
        r12.stats = stats([100_000_000_000_000, u64::MAX, 0, 7, 123_456_789_012]);
        v.reals = vec![r12, r11];
        vec![v]
    }

    #[test]
    fn stats_abbreviates_large_numbers() {
        let opts = ListFormat {
            numeric: true,
            stats: true,
            ..ListFormat::default()
        };
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.100:80                      12 99999999  100000K  123456K    5000M\n",
            "  -> 10.0.0.11:80                  999999K    1000M   99999M     100G   99999G\n",
            "  -> 10.0.0.12:80                     100T18446744T        0        7     123G\n",
        );
        assert_eq!(
            list_services_with(&stats_table(), &opts, 4096, &names()),
            expected
        );
    }

    #[test]
    fn stats_exact_widens_columns() {
        let opts = ListFormat {
            numeric: true,
            stats: true,
            exact: true,
            ..ListFormat::default()
        };
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.100:80                      12 99999999 100000000 123456789 5000000000\n",
            "  -> 10.0.0.11:80                 999999999 1000000000 99999999999 100000000000 99999999999999\n",
            "  -> 10.0.0.12:80                 100000000000000 18446744073709551615        0        7 123456789012\n",
        );
        assert_eq!(
            list_services_with(&stats_table(), &opts, 4096, &names()),
            expected
        );
    }

    #[test]
    fn stats_win_over_rate_thresholds_and_persistent_conn() {
        let all = ListFormat {
            numeric: true,
            stats: true,
            rate: true,
            thresholds: true,
            persistent_conn: true,
            ..ListFormat::default()
        };
        let only = ListFormat {
            numeric: true,
            stats: true,
            ..ListFormat::default()
        };
        let t = stats_table();
        assert_eq!(
            list_services_with(&t, &all, 4096, &names()),
            list_services_with(&t, &only, 4096, &names())
        );
        assert!(list_services_with(&t, &all, 4096, &names()).contains("    Conns"));
    }

    #[test]
    fn rate_real_lines_do_not_abbreviate_the_first_three_columns() {
        let mut v = svc(Proto::Tcp, "10.0.0.100", 80, Sched::Wrr, None);
        let rates = Rates {
            cps: 3,
            inpps: 250_000_000,
            outpps: 0,
            inbps: 1_500_000_000,
            outbps: 0,
        };
        v.rates = rates;
        let mut r = real("10.0.0.11", 80, 1, 0, 0);
        r.rates = rates;
        v.reals = vec![r];
        let opts = ListFormat {
            numeric: true,
            rate: true,
            ..ListFormat::default()
        };
        let expected = concat!(
            "IP Virtual Server version 1.2.1 (size=65536)\n",
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.100:80                       3  250000K        0    1500M        0\n",
            "  -> 10.0.0.11:80                        3 250000000        0    1500M        0\n",
        );
        assert_eq!(list_services_with(&[v], &opts, 65536, &names()), expected);
    }

    #[test]
    fn thresholds_listing() {
        let mut v = svc(Proto::Tcp, "10.0.0.100", 80, Sched::Wrr, Some(300));
        let mut with = real("10.0.0.12", 80, 1, 123456, 7);
        with.spec.thresholds = Thresholds {
            upper: 2147483647,
            lower: 1500,
        };
        v.reals = vec![real("10.0.0.11", 80, 1, 2, 5), with];
        let opts = ListFormat {
            numeric: true,
            thresholds: true,
            ..ListFormat::default()
        };
        // printf("  -> %-28s %-10u %-10u %-10u %-10u\n", ...): a value of ten
        // digits fills its column, and one space still follows.
        let expected = concat!(
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.100:80 wrr persistent 300\n",
            "  -> 10.0.0.11:80                 0          0          2          5         \n",
            "  -> 10.0.0.12:80                 2147483647 1500       123456     7         \n",
        );
        assert_eq!(list_service_with(&v, &opts, &names()), expected);
    }

    #[test]
    fn persistent_conn_listing() {
        let mut v = svc(Proto::Tcp, "10.0.0.100", 80, Sched::Wrr, Some(300));
        let mut r = real("10.0.0.11", 80, 1, 2, 5);
        r.persist_conns = 3;
        v.reals = vec![r];
        let opts = ListFormat {
            numeric: true,
            persistent_conn: true,
            ..ListFormat::default()
        };
        let expected = concat!(
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.100:80 wrr persistent 300\n",
            "  -> 10.0.0.11:80                 1         3           2          5         \n",
        );
        assert_eq!(list_service_with(&v, &opts, &names()), expected);
    }

    #[test]
    fn largenum_boundaries() {
        // (value, without --exact, with --exact)
        let cases: [(u64, &str, &str); 9] = [
            (0, "        0", "        0"),
            (99_999_999, " 99999999", " 99999999"),
            (100_000_000, "  100000K", " 100000000"),
            (999_999_999, "  999999K", " 999999999"),
            (1_000_000_000, "    1000M", " 1000000000"),
            (99_999_999_999, "   99999M", " 99999999999"),
            (100_000_000_000, "     100G", " 100000000000"),
            (99_999_999_999_999, "   99999G", " 99999999999999"),
            (100_000_000_000_000, "     100T", " 100000000000000"),
        ];
        for (n, abbreviated, exact) in cases {
            let mut a = String::new();
            largenum(&mut a, n, false);
            assert_eq!(a, abbreviated, "{n}");
            let mut e = String::new();
            largenum(&mut e, n, true);
            assert_eq!(e, exact, "{n} exact");
        }
    }

    fn conn(
        proto: Proto,
        expire: u64,
        state: &'static str,
        c: (&str, u16),
        v: (&str, u16),
        d: (&str, u16),
    ) -> ConnView {
        ConnView {
            proto,
            expire_secs: expire,
            state,
            caddr: ip(c.0),
            cport: c.1,
            vaddr: ip(v.0),
            vport: v.1,
            daddr: ip(d.0),
            dport: d.1,
        }
    }

    fn conns() -> Vec<ConnView> {
        vec![
            conn(
                Proto::Tcp,
                898,
                "ESTABLISHED",
                ("192.0.2.5", 51234),
                ("10.0.0.100", 80),
                ("10.0.0.11", 80),
            ),
            conn(
                Proto::Tcp,
                297,
                "ASSURED",
                ("192.0.2.5", 0),
                ("10.0.0.100", 80),
                ("10.0.0.11", 80),
            ),
            conn(
                Proto::Udp,
                5,
                "UDP",
                ("192.0.2.9", 33000),
                ("10.0.0.100", 53),
                ("10.0.0.11", 53),
            ),
            conn(
                Proto::Tcp,
                6000,
                "NONE",
                ("198.51.100.200", 0),
                ("10.0.0.100", 80),
                ("10.0.0.12", 80),
            ),
        ]
    }

    /// ipvsadm's row printf, field by field with `format!`, as the
    /// listing was written before rows were written in place.
    fn printf_row(c: &ConnView, numeric: bool, names: &Resolver) -> String {
        let a = |addr, port| addrport(addr, port, c.proto, numeric, names);
        format!(
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}\n",
            c.proto.conn_name(),
            format!("{:02}:{:02}", c.expire_secs / 60, c.expire_secs % 60),
            c.state,
            a(c.caddr, c.cport),
            a(c.vaddr, c.vport),
            a(c.daddr, c.dport)
        )
    }

    #[test]
    fn rows_written_in_place_are_ipvsadms_printf() {
        let long = Resolver::from_text(
            "192.0.2.5 a-very-long-host-name-of-a-client.example.org\n10.0.0.100 vip\n10.0.0.11 rs1\n",
            "http 80/tcp\n",
        );
        let mut rows = conns();
        rows.push(conn(
            Proto::Tcp,
            u64::from(u32::MAX),
            "SYN_RECV",
            ("203.0.113.255", 65535),
            ("203.0.113.254", 65535),
            ("255.255.255.255", 65535),
        ));
        for names in [&names(), &long, &NO_NAMES] {
            for numeric in [true, false] {
                let opts = ListFormat {
                    numeric,
                    ..ListFormat::default()
                };
                for c in &rows {
                    let mut row = String::new();
                    conn_row(&mut row, c, &opts, names);
                    assert_eq!(row, printf_row(c, numeric, names));
                }
            }
        }
    }

    #[test]
    fn conn_listing_numeric() {
        let expected = concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            destination\n",
            "TCP 14:58  ESTABLISHED 192.0.2.5:51234    10.0.0.100:80      10.0.0.11:80\n",
            "TCP 04:57  ASSURED     192.0.2.5:0        10.0.0.100:80      10.0.0.11:80\n",
            "UDP 00:05  UDP         192.0.2.9:33000    10.0.0.100:53      10.0.0.11:53\n",
            "TCP 100:00 NONE        198.51.100.200:0   10.0.0.100:80      10.0.0.12:80\n",
        );
        assert_eq!(list_conns(&conns(), true), expected);
    }

    #[test]
    fn conn_listing_persistent_conn_heading() {
        let opts = ListFormat {
            numeric: true,
            persistent_conn: true,
            ..ListFormat::default()
        };
        let expected = concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            destination        pe name          pe_data\n",
            "TCP 14:58  ESTABLISHED 192.0.2.5:51234    10.0.0.100:80      10.0.0.11:80\n",
        );
        assert_eq!(list_conns_with(&conns()[..1], &opts, &names()), expected);
    }

    #[test]
    fn conn_listing_with_names() {
        let expected = concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            destination\n",
            "TCP 14:58  ESTABLISHED 192.0.2.5:51234    vip.example.com:http rs1:http\n",
            "UDP 00:05  UDP         192.0.2.9:33000    vip.example.com:domain rs1:domain\n",
        );
        let rows = [conns()[0].clone(), conns()[2].clone()];
        assert_eq!(
            list_conns_with(&rows, &ListFormat::default(), &names()),
            expected
        );
    }

    #[test]
    fn save_numeric() {
        let expected = concat!(
            "-A -t 10.0.0.99:443 -s rr -p 600 -M 255.255.255.0\n",
            "-A -t 10.0.0.100:80 -s wrr -p 300\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 0\n",
            "-A -u 10.0.0.100:53 -s rr\n",
            "-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g -w 65535\n",
        );
        assert_eq!(save_with(&table(), true, &names()), expected);
    }

    #[test]
    fn save_with_names() {
        let expected = concat!(
            "-A -t 10.0.0.99:https -s rr -p 600 -M 255.255.255.0\n",
            "-A -t vip.example.com:http -s wrr -p 300\n",
            "-a -t vip.example.com:http -r rs1:http -g -w 1\n",
            "-a -t vip.example.com:http -r 10.0.0.12:http -g -w 0\n",
            "-A -u vip.example.com:domain -s rr\n",
            "-a -u vip.example.com:domain -r rs1:domain -g -w 65535\n",
        );
        assert_eq!(save_with(&table(), false, &names()), expected);
    }

    #[test]
    fn save_writes_thresholds_only_where_there_are_some() {
        let mut v = svc(Proto::Tcp, "10.0.0.100", 80, Sched::Wrr, None);
        let mut a = real("10.0.0.11", 80, 3, 0, 0);
        a.spec.thresholds = Thresholds {
            upper: 100,
            lower: 0,
        };
        let mut b = real("10.0.0.12", 80, 1, 0, 0);
        b.spec.thresholds = Thresholds {
            upper: 100,
            lower: 75,
        };
        v.reals = vec![a, b, real("10.0.0.13", 80, 1, 0, 0)];
        let expected = concat!(
            "-A -t 10.0.0.100:80 -s wrr\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 3 -x 100 -y 0\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1 -x 100 -y 75\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.13:80 -g -w 1\n",
        );
        assert_eq!(save_with(&[v], true, &names()), expected);
    }

    #[test]
    fn save_mask_only_for_persistent_services() {
        let mut v = svc(Proto::Tcp, "10.0.0.1", 80, Sched::Rr, None);
        v.spec.netmask = ip("255.255.0.0");
        assert_eq!(
            save_with(&[v.clone()], true, &names()),
            "-A -t 10.0.0.1:80 -s rr\n"
        );
        let listed = list_service_with(
            &v,
            &ListFormat {
                numeric: true,
                ..ListFormat::default()
            },
            &names(),
        );
        assert!(listed.ends_with("TCP  10.0.0.1:80 rr\n"), "{listed}");
    }

    /// A fwmark service's reals and a fwmark template's ports are numbers
    /// even without `-n`: the kernel reports no protocol for a fwmark
    /// service (libipvs leaves it 0) and `/proc/net/ip_vs_conn` gives its
    /// templates protocol `IP`, so ipvsadm's `port_to_service` names none.
    /// Host names are looked up as for any service.
    #[test]
    fn fwmark_ports_are_printed_as_numbers_even_with_names() {
        let mut v = svc(Proto::Tcp, "0.0.0.0", 0, Sched::Rr, Some(300));
        v.spec.id = ServiceId::fwmark(1);
        v.reals = vec![
            real("10.0.0.11", 80, 3, 0, 0),
            real("10.0.0.12", 0, 1, 0, 0),
        ];
        assert_eq!(
            save_with(std::slice::from_ref(&v), false, &names()),
            concat!(
                "-A -f 1 -s rr -p 300\n",
                "-a -f 1 -r rs1:80 -g -w 3\n",
                "-a -f 1 -r 10.0.0.12:0 -g -w 1\n",
            )
        );
        let listed = list_service_with(&v, &ListFormat::default(), &names());
        assert!(
            listed.ends_with(concat!(
                "FWM  1 rr persistent 300\n",
                "  -> rs1:80                       Route   3      0          0         \n",
                "  -> 10.0.0.12:0                  Route   1      0          0         \n",
            )),
            "{listed}"
        );
        let template = conn(
            Proto::Fwm,
            300,
            "NONE",
            ("192.0.2.5", 0),
            ("0.0.0.1", 0),
            ("10.0.0.11", 80),
        );
        let mut row = String::new();
        conn_row(&mut row, &template, &ListFormat::default(), &names());
        assert_eq!(
            row,
            "IP  05:00  NONE        192.0.2.5:0        0.0.0.1:0          rs1:80\n"
        );
        // A connection of a fwmark service is TCP or UDP: named ports.
        let entry = conn(
            Proto::Tcp,
            60,
            "ESTABLISHED",
            ("192.0.2.5", 40000),
            ("10.0.0.100", 80),
            ("10.0.0.11", 80),
        );
        let mut row = String::new();
        conn_row(&mut row, &entry, &ListFormat::default(), &names());
        assert!(row.ends_with("vip.example.com:http rs1:http\n"), "{row}");
    }

    /// libipvs's comparators read a 32-bit difference as an `int`: a
    /// service or real 2^31 or more above another sorts before it, as
    /// ipvsadm lists and saves them (here 192.0.2.10, 203.0.113.10, then
    /// 10.0.0.100); a set where that order is not transitive is still
    /// listed whole.
    #[test]
    fn services_and_reals_sort_as_ipvsadms_comparators() {
        let mut low = svc(Proto::Tcp, "10.0.0.100", 80, Sched::Rr, None);
        low.reals = vec![
            real("10.0.0.11", 80, 1, 0, 0),
            real("198.51.100.11", 80, 1, 0, 0),
        ];
        let views = [
            low,
            svc(Proto::Tcp, "203.0.113.10", 80, Sched::Rr, None),
            svc(Proto::Tcp, "192.0.2.10", 80, Sched::Rr, None),
        ];
        let expected = concat!(
            "-A -t 192.0.2.10:80 -s rr\n",
            "-A -t 203.0.113.10:80 -s rr\n",
            "-A -t 10.0.0.100:80 -s rr\n",
            "-a -t 10.0.0.100:80 -r 198.51.100.11:80 -g -w 1\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1\n",
        );
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
            let given: Vec<_> = order.iter().map(|&i| views[i].clone()).collect();
            assert_eq!(save_with(&given, true, &names()), expected);
        }
        // 10.0.0.1 < 100.0.0.1 < 192.0.2.1 < 10.0.0.1: no total order.
        let cycle: Vec<_> = ["10.0.0.1", "100.0.0.1", "192.0.2.1"]
            .into_iter()
            .map(|a| svc(Proto::Tcp, a, 80, Sched::Rr, None))
            .collect();
        assert_eq!(save_with(&cycle, true, &names()).lines().count(), 3);
    }

    #[test]
    fn save_of_nothing_is_empty() {
        assert_eq!(save_with(&[], true, &names()), "");
    }

    #[test]
    fn timeouts_line() {
        let t = Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        };
        assert_eq!(timeouts(&t), "Timeout (tcp tcpfin udp): 900 120 300\n");
    }

    #[test]
    fn sysctl_lines() {
        assert_eq!(
            sysctls(&[("conn_reuse_mode", 1), ("expire_nodest_conn", 0)]),
            "net.ipv4.vs.conn_reuse_mode = 1\nnet.ipv4.vs.expire_nodest_conn = 0\n"
        );
        assert_eq!(sysctls(&[]), "");
    }

    #[test]
    fn sched_flags_as_ipvsadm_prints_them() {
        use crate::model::SchedFlags;
        let opts = ListFormat {
            numeric: true,
            ..ListFormat::default()
        };
        let both = SchedFlags(SchedFlags::FALLBACK.0 | SchedFlags::PORT.0);
        let mut sh = svc(Proto::Tcp, "10.0.0.1", 80, Sched::Sh(both), Some(300));
        sh.reals = vec![real("10.0.0.11", 80, 1, 0, 0)];
        let mh = svc(
            Proto::Udp,
            "10.0.0.1",
            53,
            Sched::Mh(SchedFlags::PORT),
            None,
        );
        let plain = svc(
            Proto::Tcp,
            "10.0.0.2",
            80,
            Sched::Mh(SchedFlags::NONE),
            None,
        );
        // flag-3 alone: ipvsadm 1.31 prints sh's flags without it, so "()".
        let third = svc(
            Proto::Tcp,
            "10.0.0.3",
            80,
            Sched::Sh(SchedFlags(lb_common::SVC_F_SCHED3)),
            None,
        );
        let views = [sh, mh, plain, third];
        let listed = list_services_with(&views, &opts, 4096, &names());
        let lines: Vec<&str> = listed.lines().collect();
        assert_eq!(
            lines[3],
            "TCP  10.0.0.1:80 sh (sh-fallback,sh-port) persistent 300"
        );
        assert_eq!(lines[5], "TCP  10.0.0.2:80 mh");
        assert_eq!(lines[6], "TCP  10.0.0.3:80 sh ()");
        assert_eq!(lines[7], "UDP  10.0.0.1:53 mh (mh-port)");
        assert_eq!(
            save_with(&views, true, &names()),
            concat!(
                "-A -t 10.0.0.1:80 -s sh -p 300 -b sh-fallback,sh-port\n",
                "-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 1\n",
                "-A -t 10.0.0.2:80 -s mh\n",
                "-A -t 10.0.0.3:80 -s sh -b \n",
                "-A -u 10.0.0.1:53 -s mh -b mh-port\n",
            )
        );
    }

    #[test]
    fn counting_schedulers_are_listed_and_saved_by_name() {
        let opts = ListFormat {
            numeric: true,
            ..ListFormat::default()
        };
        let scheds = [
            Sched::Lc,
            Sched::Wlc,
            Sched::Sed,
            Sched::Nq,
            Sched::Fo,
            Sched::Ovf,
            Sched::Twos,
        ];
        let views: Vec<ServiceView> = scheds
            .iter()
            .enumerate()
            .map(|(i, &s)| svc(Proto::Tcp, "10.0.0.1", 80 + i as u16, s, None))
            .collect();
        let listed = list_services_with(&views, &opts, 4096, &names());
        let services: Vec<&str> = listed.lines().skip(3).collect();
        assert_eq!(
            services,
            vec![
                "TCP  10.0.0.1:80 lc",
                "TCP  10.0.0.1:81 wlc",
                "TCP  10.0.0.1:82 sed",
                "TCP  10.0.0.1:83 nq",
                "TCP  10.0.0.1:84 fo",
                "TCP  10.0.0.1:85 ovf",
                "TCP  10.0.0.1:86 twos",
            ]
        );
        assert_eq!(
            save_with(&views, true, &names()),
            concat!(
                "-A -t 10.0.0.1:80 -s lc\n",
                "-A -t 10.0.0.1:81 -s wlc\n",
                "-A -t 10.0.0.1:82 -s sed\n",
                "-A -t 10.0.0.1:83 -s nq\n",
                "-A -t 10.0.0.1:84 -s fo\n",
                "-A -t 10.0.0.1:85 -s ovf\n",
                "-A -t 10.0.0.1:86 -s twos\n",
            )
        );
    }

    /// IPv6 services and reals (docs/SEMANTICS.md "IPv6"): bracketed,
    /// never truncated (the columns after them move right), the mask as a
    /// prefix length, `FWM  N IPv6` / `-f N -6`, and ipvsadm's order: IPv4
    /// before IPv6 at equal mark, then protocol, address word by word.
    #[test]
    fn ipv6_services_list_and_save_as_ipvsadm() {
        let mut web6 = svc(Proto::Tcp, "2001:db8::1", 80, Sched::Wlc, Some(300));
        web6.spec.netmask = ip("ffff:ffff:ffff:ffff::");
        web6.reals = vec![
            real("2001:db8:1111:2222:3333:4444:5555:11", 8080, 100, 12, 3),
            real("2001:db8::11", 80, 1, 0, 0),
        ];
        let mut dns6 = svc(Proto::Udp, "2001:db8::1", 53, Sched::Rr, None);
        dns6.spec.one_packet = true;
        let fwm = |mark, v6| {
            let mut v = svc(Proto::Tcp, "0.0.0.0", 0, Sched::Rr, None);
            v.spec.id = ServiceId::fwmark_of_family(mark, v6);
            v.spec.netmask = crate::addr::full_netmask(v.spec.id.addr);
            v
        };
        let mut fwm1_6 = fwm(1, true);
        fwm1_6.reals = vec![real("2001:db8::11", 0, 1, 0, 0)];
        let views = vec![
            fwm(2, false),
            fwm1_6,
            dns6,
            web6,
            fwm(1, false),
            svc(Proto::Udp, "10.0.0.1", 53, Sched::Rr, None),
            svc(Proto::Tcp, "10.0.0.1", 80, Sched::Rr, None),
        ];
        let opts = ListFormat {
            numeric: true,
            ..ListFormat::default()
        };
        let listed = list_services_with(&views, &opts, 4096, &Resolver::new());
        assert_eq!(
            listed,
            concat!(
                "IP Virtual Server version 1.2.1 (size=4096)\n",
                "Prot LocalAddress:Port Scheduler Flags\n",
                "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
                "TCP  10.0.0.1:80 rr\n",
                "UDP  10.0.0.1:53 rr\n",
                "TCP  [2001:db8::1]:80 wlc persistent 300 mask 64\n",
                "  -> [2001:db8::11]:80            Route   1      0          0         \n",
                "  -> [2001:db8:1111:2222:3333:4444:5555:11]:8080 Route   100    12         3         \n",
                "UDP  [2001:db8::1]:53 rr ops\n",
                "FWM  1 rr\n",
                "FWM  1 IPv6 rr\n",
                "  -> [2001:db8::11]:0             Route   1      0          0         \n",
                "FWM  2 rr\n",
            )
        );
        let saved = save_with(&views, true, &Resolver::new());
        assert_eq!(
            saved,
            concat!(
                "-A -t 10.0.0.1:80 -s rr\n",
                "-A -u 10.0.0.1:53 -s rr\n",
                "-A -t [2001:db8::1]:80 -s wlc -p 300 -M 64\n",
                "-a -t [2001:db8::1]:80 -r [2001:db8::11]:80 -g -w 1\n",
                "-a -t [2001:db8::1]:80 -r [2001:db8:1111:2222:3333:4444:5555:11]:8080 -g -w 100\n",
                "-A -u [2001:db8::1]:53 -s rr -o\n",
                "-A -f 1 -s rr\n",
                "-A -f 1 -6 -s rr\n",
                "-a -f 1 -6 -r [2001:db8::11]:0 -g -w 1\n",
                "-A -f 2 -s rr\n",
            )
        );
        // --stats: the long name pushes the numbers right.
        let mut long = svc(
            Proto::Tcp,
            "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1",
            443,
            Sched::Rr,
            None,
        );
        long.stats = stats([5, 50, 0, 4000, 0]);
        let opts = ListFormat {
            numeric: true,
            stats: true,
            ..ListFormat::default()
        };
        let listed = list_service_with(&long, &opts, &Resolver::new());
        assert!(
            listed.ends_with(
                "TCP  [2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:443        5       50        0     4000        0\n"
            ),
            "{listed}"
        );
        // A v6 real's word differing by 2^31 or more sorts "backwards", as
        // libipvs's int difference does it per word.
        let mut quirk = svc(Proto::Tcp, "2001:db8::1", 80, Sched::Rr, None);
        quirk.reals = vec![
            real("2001:db8::11", 80, 1, 0, 0),
            real("2001:db8:aaaa::11", 80, 1, 0, 0),
        ];
        let saved = save_with(&[quirk], true, &Resolver::new());
        assert!(
            saved.contains(
                "-r [2001:db8:aaaa::11]:80 -g -w 1\n-a -t [2001:db8::1]:80 -r [2001:db8::11]:80"
            ),
            "{saved}"
        );
    }

    /// `--rate`, `--thresholds`, `--persistent-conn` and names (no `-n`)
    /// of IPv6 services, each line as ipvsadm's `printf` writes it.
    #[test]
    fn ipv6_rate_thresholds_persistent_conn_and_names() {
        let mut web6 = svc(Proto::Tcp, "2001:db8::1", 80, Sched::Wrr, None);
        let mut short = real("2001:db8::11", 80, 2, 2, 1);
        short.rates = Rates {
            cps: 1,
            inpps: 20,
            outpps: 0,
            inbps: 3000,
            outbps: 0,
        };
        short.spec.thresholds = Thresholds {
            upper: 100,
            lower: 50,
        };
        short.persist_conns = 7;
        let mut long = real("2001:db8:aaaa:bbbb:cccc:dddd:eeee:11", 80, 1, 0, 0);
        long.rates = Rates {
            cps: 1,
            inpps: 20,
            outpps: 0,
            inbps: 300_000_000,
            outbps: 0,
        };
        web6.rates = short.rates;
        web6.reals = vec![long, short];
        // (aaaa0000 - 0 is negative as an int: the long one sorts first.)
        let numeric = |f: fn(&mut ListFormat)| {
            let mut opts = ListFormat {
                numeric: true,
                ..ListFormat::default()
            };
            f(&mut opts);
            list_service_with(&web6, &opts, &Resolver::new())
        };
        assert_eq!(
            numeric(|o| o.rate = true),
            concat!(
                "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
                "  -> RemoteAddress:Port\n",
                "TCP  [2001:db8::1]:80                    1       20        0     3000        0\n",
                "  -> [2001:db8:aaaa:bbbb:cccc:dddd:eeee:11]:80        1       20        0  300000K        0\n",
                "  -> [2001:db8::11]:80                   1       20        0     3000        0\n",
            )
        );
        assert_eq!(
            numeric(|o| o.thresholds = true),
            concat!(
                "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
                "  -> RemoteAddress:Port\n",
                "TCP  [2001:db8::1]:80 wrr\n",
                "  -> [2001:db8:aaaa:bbbb:cccc:dddd:eeee:11]:80 0          0          0          0         \n",
                "  -> [2001:db8::11]:80            100        50         2          1         \n",
            )
        );
        assert!(numeric(|o| o.persistent_conn = true).contains(
            "\n  -> [2001:db8::11]:80            2         7           2          1         \n"
        ));
        // Without -n: names from the hosts file, still in brackets.
        let names =
            Resolver::from_text("2001:db8::1 v6host\n2001:db8::11 v6real\n", "http 80/tcp\n");
        web6.reals.remove(0);
        let listed = list_service_with(&web6, &ListFormat::default(), &names);
        assert!(
            listed.ends_with(concat!(
                "TCP  [v6host]:http wrr\n",
                "  -> [v6real]:http                Route   2      2          1         \n",
            )),
            "{listed}"
        );
        assert_eq!(
            save_with(std::slice::from_ref(&web6), false, &names),
            "-A -t [v6host]:http -s wrr\n-a -t [v6host]:http -r [v6real]:http -g -w 2 -x 100 -y 50\n"
        );
        // A fwmark template's virtual address: the mark in the first word.
        let rows = [conn(
            Proto::Fwm,
            300,
            "ASSURED",
            ("2001:db8:1:2::", 0),
            ("102:304::", 0),
            ("2001:db8::11", 0),
        )];
        assert!(
            list_conns_with(&rows, &ListFormat::default(), &names).ends_with(
                "IP  05:00  ASSURED     [2001:db8:1:2::]:0 [102:304::]:0      [v6real]:0\n"
            )
        );
    }

    #[test]
    fn ipv6_conn_rows_bracket_and_overflow() {
        let rows = [
            conn(
                Proto::Tcp,
                898,
                "ESTABLISHED",
                ("2001:db8::100", 40000),
                ("2001:db8::1", 80),
                ("2001:db8::11", 80),
            ),
            conn(
                Proto::Fwm,
                300,
                "NONE",
                ("2001:db8::", 0),
                ("0:1::", 0),
                ("2001:db8::11", 0),
            ),
        ];
        assert_eq!(
            list_conns_with(&rows, &ListFormat::default(), &NO_NAMES),
            concat!(
                "IPVS connection entries\n",
                "pro expire state       source             virtual            destination\n",
                "TCP 14:58  ESTABLISHED [2001:db8::100]:40000 [2001:db8::1]:80   [2001:db8::11]:80\n",
                "IP  05:00  NONE        [2001:db8::]:0     [0:1::]:0          [2001:db8::11]:0\n",
            )
        );
    }
}

/// `lbctl counters`: one line per outcome of the XDP program.
pub fn counters(rows: &[(&str, u64, u64)]) -> String {
    let mut out = format!("{:<18} {:>14} {:>16}\n", "Outcome", "Packets", "Bytes");
    for (name, p, b) in rows {
        out.push_str(&format!("{name:<18} {p:>14} {b:>16}\n"));
    }
    out
}

#[cfg(test)]
mod counters_tests {
    #[test]
    fn one_aligned_line_per_outcome() {
        let text = super::counters(&[("fwd_conn", 12, 3456), ("pass_no_service", 0, 0)]);
        assert_eq!(
            text,
            "Outcome                   Packets            Bytes\n\
             fwd_conn                       12             3456\n\
             pass_no_service                 0                0\n"
        );
    }
}

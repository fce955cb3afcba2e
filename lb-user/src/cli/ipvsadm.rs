//! ipvsadm's `process_options`: the first option is the command, the others
//! fill a `State`, then the checks run in ipvsadm's order and `build` makes
//! the [`Command`](super::Command).

use std::net::IpAddr;

use lb_common::MAX_WEIGHT;

use super::options::{Cmd, OPT_NAMES, Opt, Tag, command_of, generic_opt_check};
use super::popt::{Found, Popt};
use super::values::{
    parse_addr, parse_netmask, parse_prefix_len, parse_sched, parse_sched_flags, parse_timeout,
    string_to_number,
};
use super::{
    CliError, Command, DEFAULT_PERSISTENT_TIMEOUT, DEFAULT_SCHED, DEFAULT_WEIGHT, ListTarget,
};
use crate::addr::{checked, full_netmask, v6_netmask};
use crate::format::ListFormat;
use crate::model::{
    Fwd, MAX_THRESHOLD, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec, Thresholds,
    Timeouts, TunCsum, TunType, Tunnel,
};
use crate::resolve::Resolver;
/// A service or real address that lbctl can use, or the error that explains
/// why not (already recorded as the deferred error).
#[derive(Clone)]
pub(super) enum Usable<T> {
    Yes(T),
    No(CliError),
}

#[derive(Default)]
pub(super) struct State {
    options: u64,
    /// Protocol for port names (`-f` sets TCP, as ipvsadm does).
    svc_proto: Option<Proto>,
    svc_port: u16,
    fwmark: bool,
    /// The service's family as ipvsadm knows it so far: `-t`/`-u`'s
    /// address's, IPv4 for `-f`, IPv6 after `-6`.
    svc_v6: bool,
    svc: Option<Usable<ServiceId>>,
    /// `-r`: address and port (port as ipvsadm computes it before forcing).
    real: Option<Usable<(IpAddr, u16)>>,
    sched: Option<Sched>,
    /// `-s` as given (what ipvsadm checks `-b`'s words against).
    sched_name: Option<String>,
    /// `-b` as given, parsed once all options are read (as ipvsadm does).
    sched_flags: Option<String>,
    /// `-o`: one-packet scheduling.
    one_packet: bool,
    persistent: Option<u32>,
    netmask: Option<IpAddr>,
    /// `-M` given before its service's family was settled (before `-t`/`-u`,
    /// or after `-f`, which `-6` may follow): read once every option is.
    netmask_pending: Option<String>,
    weight: Option<u32>,
    /// `-x`, `-y` (0 when omitted, as ipvsadm sends them).
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    /// `-g`, `-i` or `-m` (ipvsadm's `conn_flags`; `None`: direct routing,
    /// its default); `-i`'s settings come from the `--tun-*` fields.
    fwd: Option<Fwd>,
    /// `--tun-type` (`None`: ipip, ipvsadm's default).
    tun_type: Option<TunType>,
    /// `--tun-port` (0 when omitted).
    tun_port: u16,
    /// `--tun-csum` or `--tun-remcsum` (`None`: nocsum; two checksum options
    /// are refused by `tunnel_opt_check`).
    tun_csum: Option<TunCsum>,
    format: ListFormat,
    /// The first "not supported yet" error, reported after the table check.
    deferred: Option<CliError>,
    /// An unknown scheduler: ipvsadm passes any name on and the kernel
    /// refuses it, so it is reported after every check of the command line.
    sched_not_found: Option<CliError>,
}

impl State {
    fn set(&mut self, opt: Opt) -> Result<(), CliError> {
        if self.options & opt.bit() != 0 {
            return Err(CliError::MultipleOptions(OPT_NAMES[opt as usize]));
        }
        self.options |= opt.bit();
        Ok(())
    }

    fn has(&self, opt: Opt) -> bool {
        self.options & opt.bit() != 0
    }

    fn defer(&mut self, e: CliError) -> CliError {
        if self.deferred.is_none() {
            self.deferred = Some(e.clone());
        }
        e
    }

    fn service(&self, cmd: Cmd) -> Result<ServiceId, CliError> {
        match &self.svc {
            Some(Usable::Yes(id)) => Ok(*id),
            Some(Usable::No(e)) => Err(e.clone()),
            None => Err(CliError::MissingOption {
                option: OPT_NAMES[Opt::Service as usize],
                command: cmd.name(),
            }),
        }
    }

    fn real(&self, cmd: Cmd) -> Result<(IpAddr, u16), CliError> {
        match &self.real {
            Some(Usable::Yes(r)) => Ok(*r),
            Some(Usable::No(e)) => Err(e.clone()),
            None => Err(CliError::MissingOption {
                option: OPT_NAMES[Opt::Server as usize],
                command: cmd.name(),
            }),
        }
    }
}

pub(super) const SYNC_DAEMON: &str = "the connection sync daemon (--start-daemon/--stop-daemon)";

pub(super) fn parse_ipvsadm(
    args: &[String],
    names: &Resolver,
    restore: bool,
) -> Result<Command, CliError> {
    let mut popt = Popt::new(args);
    // popt's errors on the first option end in ipvsadm's `tryhelp_exit` too.
    let Some(first) = popt.next_opt().map_err(|_| CliError::NoCommand)? else {
        return Err(CliError::NoCommand);
    };
    let cmd = match first.tag {
        Tag::Help if !restore => return Ok(Command::Help),
        Tag::Version if !restore => return Ok(Command::Version),
        tag => match command_of(tag) {
            Some(cmd) => cmd,
            None if restore && matches!(tag, Tag::Help | Tag::Version) => {
                return Err(CliError::NotAllowedInRestore(first.word));
            }
            None => return Err(CliError::NotACommand(first.word)),
        },
    };
    if restore
        && !matches!(
            cmd,
            Cmd::Add
                | Cmd::Edit
                | Cmd::Del
                | Cmd::Flush
                | Cmd::AddDest
                | Cmd::EditDest
                | Cmd::DelDest
        )
    {
        return Err(CliError::NotAllowedInRestore(first.word));
    }

    let mut st = State::default();
    match (cmd, first.arg.as_deref()) {
        (Cmd::StartDaemon, Some(state)) => {
            if state != "master" && state != "backup" {
                return Err(CliError::IllegalValue {
                    what: "start-daemon parameter",
                });
            }
            st.defer(CliError::Unsupported(SYNC_DAEMON));
        }
        (Cmd::StopDaemon, Some(state)) => {
            if state != "master" && state != "backup" {
                // sic: ipvsadm's message for --stop-daemon.
                return Err(CliError::IllegalValue {
                    what: "start_daemon",
                });
            }
            st.defer(CliError::Unsupported(SYNC_DAEMON));
        }
        _ => {}
    }

    while let Some(found) = popt.next_opt()? {
        apply_option(&mut st, found, names)?;
    }
    apply_pending_netmask(&mut st)?;

    // Leftover words: --set's three values, anything else is unexpected.
    let mut leftovers = popt.leftovers.into_iter();
    let mut timeouts = None;
    if cmd == Cmd::Timeout {
        match (leftovers.next(), leftovers.next(), leftovers.next()) {
            (Some(tcp), Some(tcpfin), Some(udp)) => {
                timeouts = Some(Timeouts {
                    tcp: parse_timeout(&tcp, 0)?,
                    tcpfin: parse_timeout(&tcpfin, 0)?,
                    udp: parse_timeout(&udp, 0)?,
                });
            }
            _ => return Err(CliError::SetNeedsThreeValues),
        }
    }
    if let Some(extra) = leftovers.next() {
        return Err(CliError::UnexpectedArgument(extra));
    }
    apply_sched_flags(&mut st)?;

    generic_opt_check(cmd, st.options)?;
    if let Some(e) = st.deferred.take() {
        return Err(e);
    }

    // ipvsadm's checks after the table.
    if matches!(cmd, Cmd::Add | Cmd::Edit)
        && !st.fwmark
        && st.svc_port == 0
        && st.persistent.is_none()
    {
        return Err(CliError::ZeroPort);
    }
    if matches!(cmd, Cmd::Add | Cmd::Edit)
        && st.one_packet
        && !st.fwmark
        && st.svc_proto != Some(Proto::Udp)
    {
        return Err(CliError::OnePacketNotUdp);
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
        // (The real's port is made the service's for -g and -i by `build`.)
        let tunnel = matches!(st.fwd, Some(Fwd::Tunnel(_)));
        if let Some(Usable::Yes((addr, _))) = &st.real
            && addr.is_ipv6() != st.svc_v6
            && !tunnel
        {
            return Err(CliError::DifferentFamily);
        }
        if st.options & TUN_OPTS != 0 && !tunnel {
            return Err(CliError::TunnelOptionsConflict);
        }
        tunnel_opt_check(st.tun_type.unwrap_or(TunType::Ipip), st.options)?;
        // lbctl's own refusal, after ipvsadm's checks (IPv6's `::` is not
        // unicast: the kernel's refusal, `Table`).
        if let Some(Usable::Yes((addr, _))) = &st.real
            && (addr.is_loopback() || (addr.is_ipv4() && addr.is_unspecified()))
        {
            return Err(CliError::LocalReal(*addr));
        }
    }
    if cmd == Cmd::List {
        let f = &st.format;
        let conn_like = st.has(Opt::Connection) || st.has(Opt::Timeout) || st.has(Opt::Daemon);
        let timeout_like = st.has(Opt::Timeout) || st.has(Opt::Daemon);
        if (conn_like && (f.stats || f.rate || f.thresholds)) || (timeout_like && f.persistent_conn)
        {
            return Err(CliError::ListConflict);
        }
    }
    if let Some(e) = st.sched_not_found.take() {
        return Err(e);
    }

    build(cmd, &st, timeouts)
}

pub(super) fn apply_option(st: &mut State, found: Found, names: &Resolver) -> Result<(), CliError> {
    let Found {
        tag,
        arg: optarg,
        word,
    } = found;
    let arg = optarg.clone().unwrap_or_default();
    match tag {
        Tag::TcpService | Tag::UdpService | Tag::SctpService => {
            st.set(Opt::Service)?;
            let proto = match tag {
                Tag::TcpService => Some(Proto::Tcp),
                Tag::UdpService => Some(Proto::Udp),
                _ => None,
            };
            st.svc_proto = proto;
            let parsed = parse_addr(&arg, proto, names).ok_or(CliError::IllegalServiceAddress)?;
            let (addr, port) = parsed.split();
            st.svc_port = port.unwrap_or(0);
            st.svc_v6 = addr.is_ipv6();
            st.svc = Some(match (proto, checked(addr)) {
                (None, _) => {
                    Usable::No(st.defer(CliError::Unsupported("SCTP services (--sctp-service)")))
                }
                (Some(_), Err(e)) => Usable::No(st.defer(e.into())),
                (Some(proto), Ok(addr)) => Usable::Yes(ServiceId {
                    proto,
                    addr,
                    port: st.svc_port,
                }),
            });
            // ipvsadm's parse_service sets an IPv6 service's mask to /128
            // (an IPv4 one keeps the -M read before it).
            if st.svc_v6 {
                st.netmask = None;
            }
        }
        Tag::FwmarkService => {
            st.set(Opt::Service)?;
            let mark = string_to_number(&arg, 1, i64::from(u32::MAX))
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| CliError::InvalidFwmark(arg.clone()))?;
            st.fwmark = true;
            // As ipvsadm: protocol TCP for the names of `-r`, port 0,
            // IPv4 until `-6`.
            st.svc_proto = Some(Proto::Tcp);
            st.svc_port = 0;
            st.svc_v6 = false;
            st.svc = Some(Usable::Yes(ServiceId::fwmark(mark)));
        }
        Tag::Scheduler => {
            st.set(Opt::Scheduler)?;
            st.sched_name = Some(arg.clone());
            match parse_sched(&arg) {
                Ok(s) => st.sched = Some(s),
                Err(e @ CliError::SchedulerNotFound(_)) => st.sched_not_found = Some(e),
                Err(e) => {
                    st.defer(e);
                }
            }
        }
        Tag::Persistent => {
            st.set(Opt::Persistent)?;
            // popt gives no argument when none is attached and the next word
            // starts with `-` (or there is none): then the default applies.
            st.persistent = Some(match &optarg {
                None => DEFAULT_PERSISTENT_TIMEOUT,
                Some(t) => parse_timeout(t, 1)?,
            });
        }
        Tag::Netmask => {
            st.set(Opt::Netmask)?;
            // Read now when the family is known for good (ipvsadm reads it
            // by the family known so far, so that a -M before -t [v6] or
            // before -6 would be lost: docs/SEMANTICS.md §8).
            match &st.svc {
                Some(_) if !st.fwmark => st.netmask = Some(parse_mask(&arg, st.svc_v6)?),
                _ => st.netmask_pending = Some(arg),
            }
        }
        Tag::RealServer => {
            st.set(Opt::Server)?;
            let parsed =
                parse_addr(&arg, st.svc_proto, names).ok_or(CliError::IllegalRealAddress)?;
            let (addr, port) = parsed.split();
            st.real = Some(match checked(addr) {
                Ok(addr) => Usable::Yes((addr, port.unwrap_or(st.svc_port))),
                Err(e) => Usable::No(st.defer(e.into())),
            });
        }
        Tag::Gatewaying => {
            st.set(Opt::Forward)?;
            st.fwd = Some(Fwd::Route);
        }
        Tag::Ipip => {
            st.set(Opt::Forward)?;
            st.fwd = Some(Fwd::Tunnel(Tunnel::IPIP));
        }
        Tag::Masquerading => {
            st.set(Opt::Forward)?;
            st.fwd = Some(Fwd::Masq);
        }
        Tag::Weight => {
            st.set(Opt::Weight)?;
            let w =
                string_to_number(&arg, 0, i64::from(MAX_WEIGHT)).ok_or(CliError::IllegalWeight)?;
            st.weight = u32::try_from(w).ok();
        }
        Tag::UThreshold => {
            st.set(Opt::UThreshold)?;
            st.u_threshold = Some(parse_threshold(&arg, "u_threshold")?);
        }
        Tag::LThreshold => {
            st.set(Opt::LThreshold)?;
            st.l_threshold = Some(parse_threshold(&arg, "l_threshold")?);
        }
        Tag::Connection => st.set(Opt::Connection)?,
        Tag::Numeric => {
            st.set(Opt::Numeric)?;
            st.format.numeric = true;
        }
        Tag::McastInterface => st.set(Opt::Mcast)?,
        Tag::SyncId => {
            st.set(Opt::SyncId)?;
            string_to_number(&arg, 0, 255).ok_or(CliError::IllegalValue { what: "syncid" })?;
        }
        Tag::Timeout => st.set(Opt::Timeout)?,
        Tag::Daemon => {
            st.set(Opt::Daemon)?;
            st.defer(CliError::Unsupported("--daemon (sync daemon status)"));
        }
        Tag::Stats => {
            st.set(Opt::Stats)?;
            st.format.stats = true;
        }
        Tag::Rate => {
            st.set(Opt::Rate)?;
            st.format.rate = true;
        }
        Tag::Thresholds => {
            st.set(Opt::Thresholds)?;
            st.format.thresholds = true;
        }
        Tag::PersistentConn => {
            st.set(Opt::PersistentConn)?;
            st.format.persistent_conn = true;
        }
        Tag::NoSort => {
            st.set(Opt::NoSort)?;
            st.format.nosort = true;
        }
        // Sort is the default; ipvsadm accepts --sort anywhere as a no-op.
        Tag::Sort => {}
        Tag::Exact => {
            st.set(Opt::Exact)?;
            st.format.exact = true;
        }
        Tag::Ipv6 => {
            let Some(mark) = st.svc.as_ref().and_then(|s| match s {
                Usable::Yes(id) => id.mark(),
                Usable::No(_) => None,
            }) else {
                return Err(CliError::Ipv6BeforeFwmark);
            };
            st.svc_v6 = true;
            st.netmask = None;
            st.svc = Some(Usable::Yes(ServiceId::fwmark_of_family(mark, true)));
        }
        Tag::Ops => {
            st.set(Opt::OnePacket)?;
            st.one_packet = true;
        }
        Tag::Pe => {
            st.set(Opt::Pe)?;
            st.defer(CliError::Unsupported("persistence engines (--pe)"));
        }
        Tag::SchedFlags => {
            st.set(Opt::SchedFlags)?;
            st.sched_flags = Some(arg);
        }
        Tag::McastGroup => st.set(Opt::McastGroup)?,
        Tag::McastPort => {
            st.set(Opt::McastPort)?;
            string_to_number(&arg, 1, 65535)
                .ok_or(CliError::IllegalValue { what: "mcast-port" })?;
        }
        Tag::McastTtl => {
            st.set(Opt::McastTtl)?;
            string_to_number(&arg, 1, 255).ok_or(CliError::IllegalValue { what: "mcast-ttl" })?;
        }
        Tag::SyncMaxlen => {
            st.set(Opt::SyncMaxlen)?;
            string_to_number(&arg, 1, 65535 - 20 - 8).ok_or(CliError::IllegalValue {
                what: "sync-maxlen",
            })?;
        }
        Tag::TunInfo => {
            st.set(Opt::TunInfo)?;
            st.format.tun_info = true;
        }
        Tag::TunType => {
            st.set(Opt::TunType)?;
            // parse_tun_type: exact names only.
            st.tun_type = Some(match arg.as_str() {
                "ipip" => TunType::Ipip,
                "gue" => TunType::Gue,
                "gre" => TunType::Gre,
                _ => {
                    return Err(CliError::IllegalValue {
                        what: "tunnel type",
                    });
                }
            });
        }
        Tag::TunPort => {
            st.set(Opt::TunPort)?;
            st.tun_port = string_to_number(&arg, 1, 65535)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(CliError::IllegalValue {
                    what: "tunnel port",
                })?;
        }
        Tag::TunNoCsum => st.set(Opt::TunNoCsum)?,
        Tag::TunCsum => {
            st.set(Opt::TunCsum)?;
            st.tun_csum = Some(TunCsum::Csum);
        }
        Tag::TunRemCsum => {
            st.set(Opt::TunRemCsum)?;
            st.tun_csum = Some(TunCsum::RemCsum);
        }
        // A command after the first one: ipvsadm's second switch has no case
        // for it.
        Tag::AddService
        | Tag::EditService
        | Tag::DeleteService
        | Tag::Clear
        | Tag::List
        | Tag::Zero
        | Tag::AddServer
        | Tag::EditServer
        | Tag::DeleteServer
        | Tag::Set
        | Tag::Help
        | Tag::Version
        | Tag::Restore
        | Tag::Save
        | Tag::StartDaemon
        | Tag::StopDaemon => return Err(CliError::InvalidOption(word)),
    }
    Ok(())
}

/// The `--tun-*` options that only `-i` takes.
const TUN_OPTS: u64 = (1 << Opt::TunType as u32)
    | (1 << Opt::TunPort as u32)
    | (1 << Opt::TunNoCsum as u32)
    | (1 << Opt::TunCsum as u32)
    | (1 << Opt::TunRemCsum as u32);

/// ipvsadm's `tunnel_opt_check` with its `tunnel_types_v_options` table
/// (columns tun-port, tun-nocsum, tun-csum, tun-remcsum; `+` compulsory,
/// `x` illegal, `1` exclusive).
fn tunnel_opt_check(kind: TunType, options: u64) -> Result<(), CliError> {
    const COLUMNS: [Opt; 4] = [Opt::TunPort, Opt::TunNoCsum, Opt::TunCsum, Opt::TunRemCsum];
    let (row, tunnel): (&[u8; 4], _) = match kind {
        TunType::Ipip => (b"xxxx", "ipip"),
        TunType::Gue => (b"+111", "gue"),
        TunType::Gre => (b"x11x", "gre"),
    };
    let mut last: Option<Opt> = None;
    for (opt, rule) in COLUMNS.into_iter().zip(row) {
        let name = OPT_NAMES[opt as usize];
        match (options & opt.bit() != 0, rule) {
            (false, b'+') => {
                return Err(CliError::MissingTunnelOption {
                    option: name,
                    tunnel,
                });
            }
            (true, b'x') => {
                return Err(CliError::IllegalTunnelOption {
                    option: name,
                    tunnel,
                });
            }
            (true, b'1') => match last {
                None => last = Some(opt),
                Some(l) => {
                    return Err(CliError::ConflictingTunnelOptions {
                        option: name,
                        other: OPT_NAMES[l as usize],
                        tunnel,
                    });
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// `-M` for a service of the family `v6`: a dotted IPv4 mask, or an IPv6
/// prefix length as ipvsadm's `atoi` reads it.
fn parse_mask(arg: &str, v6: bool) -> Result<IpAddr, CliError> {
    if v6 {
        Ok(IpAddr::V6(v6_netmask(parse_prefix_len(arg)?)))
    } else {
        Ok(IpAddr::V4(parse_netmask(arg)?))
    }
}

/// A `-M` read before its service's family was settled, by the family the
/// options end with.
fn apply_pending_netmask(st: &mut State) -> Result<(), CliError> {
    if let Some(arg) = st.netmask_pending.take() {
        st.netmask = Some(parse_mask(&arg, st.svc_v6)?);
    }
    Ok(())
}

/// `-x`/`-y`: ipvsadm's `string_to_number(optarg, 0, INT_MAX)`, failing
/// with "illegal u_threshold specified" (or `l_threshold`). Whether the
/// lower one is above the upper one is the kernel's check (`Table`).
fn parse_threshold(arg: &str, what: &'static str) -> Result<u32, CliError> {
    string_to_number(arg, 0, i64::from(MAX_THRESHOLD))
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(CliError::IllegalValue { what })
}

/// `-b`, once every option is read (ipvsadm parses it last, against the
/// `-s` given or its default `wlc`): sh's and mh's flags go with their
/// scheduler; `flag-1`..`flag-3` on another scheduler are not supported yet.
fn apply_sched_flags(st: &mut State) -> Result<(), CliError> {
    let Some(arg) = st.sched_flags.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let flags = parse_sched_flags(st.sched_name.as_deref().unwrap_or("wlc"), arg)?;
    match &mut st.sched {
        Some(Sched::Sh(f) | Sched::Mh(f)) => *f = flags,
        // An unknown scheduler takes no flags: the kernel refuses it first.
        _ if flags.any() && st.sched_not_found.is_none() => {
            st.defer(CliError::Unsupported(
                "scheduler flags (-b) of schedulers other than sh and mh",
            ));
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn build(cmd: Cmd, st: &State, timeouts: Option<Timeouts>) -> Result<Command, CliError> {
    let service_spec = || -> Result<ServiceSpec, CliError> {
        let id = st.service(cmd)?;
        Ok(ServiceSpec {
            id,
            sched: st.sched.unwrap_or(DEFAULT_SCHED),
            persistent: st.persistent,
            netmask: st.netmask.unwrap_or_else(|| full_netmask(id.addr)),
            one_packet: st.one_packet,
        })
    };
    let real_spec = || -> Result<(ServiceId, RealSpec), CliError> {
        let service = st.service(cmd)?;
        let (addr, given_port) = st.real(cmd)?;
        // ipvsadm silently makes a -g or -i real's port the service's on
        // non-fwmark services; a -m real keeps the port given (0 included:
        // the packet's port), and so does a fwmark service's real (0 when
        // none).
        let port = if st.fwmark || st.fwd == Some(Fwd::Masq) {
            given_port
        } else {
            service.port
        };
        let fwd = match st.fwd {
            Some(Fwd::Tunnel(_)) => Fwd::Tunnel(Tunnel {
                kind: st.tun_type.unwrap_or(TunType::Ipip),
                port: st.tun_port,
                csum: st.tun_csum.unwrap_or(TunCsum::NoCsum),
            }),
            Some(other) => other,
            None => Fwd::Route,
        };
        Ok((
            service,
            RealSpec {
                id: RealId { addr, port },
                fwd,
                weight: st.weight.unwrap_or(DEFAULT_WEIGHT),
                // ipvsadm sends 0 for an omitted -x/-y, on -e too: the
                // kernel then clears them (Thresholds::NONE).
                thresholds: Thresholds {
                    upper: st.u_threshold.unwrap_or(0),
                    lower: st.l_threshold.unwrap_or(0),
                },
            },
        ))
    };
    Ok(match cmd {
        Cmd::Add => Command::AddService(service_spec()?),
        Cmd::Edit => Command::EditService(service_spec()?),
        Cmd::Del => Command::DeleteService(st.service(cmd)?),
        Cmd::Flush => Command::Clear,
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save {
            numeric: st.format.numeric,
        },
        Cmd::AddDest => {
            let (service, real) = real_spec()?;
            Command::AddReal { service, real }
        }
        Cmd::EditDest => {
            let (service, real) = real_spec()?;
            Command::EditReal { service, real }
        }
        Cmd::DelDest => {
            let service = st.service(cmd)?;
            let (addr, port) = st.real(cmd)?;
            Command::DeleteReal {
                service,
                real: RealId { addr, port },
            }
        }
        Cmd::List => {
            let target = if st.has(Opt::Connection) {
                ListTarget::Conns
            } else if st.svc.is_some() {
                ListTarget::Service(st.service(cmd)?)
            } else if st.has(Opt::Timeout) {
                ListTarget::Timeouts
            } else {
                ListTarget::All
            };
            Command::List {
                target,
                format: st.format,
            }
        }
        Cmd::Zero => Command::Zero(match st.svc {
            Some(_) => Some(st.service(cmd)?),
            None => None,
        }),
        Cmd::Timeout => Command::SetTimeouts(timeouts.ok_or(CliError::SetNeedsThreeValues)?),
        Cmd::StartDaemon | Cmd::StopDaemon => return Err(CliError::Unsupported(SYNC_DAEMON)),
    })
}

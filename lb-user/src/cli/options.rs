//! ipvsadm 1.31's option table (popt's `options[]`), its commands and the
//! `commands_v_options` check.

use clap::{Arg, ArgAction};

use super::CliError;

/// ipvsadm's option tags (popt `val`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    TcpService,
    UdpService,
    SctpService,
    FwmarkService,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ArgKind {
    None,
    Required,
    Optional,
}

pub(super) struct Spec {
    pub(super) long: &'static str,
    pub(super) short: Option<char>,
    pub(super) arg: ArgKind,
    pub(super) tag: Tag,
    /// The argument's name in help texts (empty when it takes none).
    pub(super) value: &'static str,
    /// One line for `lbctl`'s completions and man page.
    pub(super) help: &'static str,
}

const fn spec(
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    tag: Tag,
    value: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        long,
        short,
        arg,
        tag,
        value,
        help,
    }
}

/// ipvsadm 1.31's popt option table, in its order (`--list` is `-L`), with
/// the help texts of lbctl's completions and man page.
pub(super) const SPECS: &[Spec] = &[
    spec(
        "add-service",
        Some('A'),
        ArgKind::None,
        Tag::AddService,
        "",
        "add a virtual service with options",
    ),
    spec(
        "edit-service",
        Some('E'),
        ArgKind::None,
        Tag::EditService,
        "",
        "edit a virtual service with options",
    ),
    spec(
        "delete-service",
        Some('D'),
        ArgKind::None,
        Tag::DeleteService,
        "",
        "delete a virtual service, with its real servers",
    ),
    spec(
        "clear",
        Some('C'),
        ArgKind::None,
        Tag::Clear,
        "",
        "clear the whole table",
    ),
    spec(
        "list",
        Some('L'),
        ArgKind::None,
        Tag::List,
        "",
        "list the table",
    ),
    spec(
        "list",
        Some('l'),
        ArgKind::None,
        Tag::List,
        "",
        "list the table",
    ),
    spec(
        "zero",
        Some('Z'),
        ArgKind::None,
        Tag::Zero,
        "",
        "zero the counters of a service or of all services",
    ),
    spec(
        "add-server",
        Some('a'),
        ArgKind::None,
        Tag::AddServer,
        "",
        "add a real server to a virtual service",
    ),
    spec(
        "edit-server",
        Some('e'),
        ArgKind::None,
        Tag::EditServer,
        "",
        "edit a real server of a virtual service",
    ),
    spec(
        "delete-server",
        Some('d'),
        ArgKind::None,
        Tag::DeleteServer,
        "",
        "delete a real server from a virtual service",
    ),
    spec(
        "set",
        None,
        ArgKind::None,
        Tag::Set,
        "",
        "set the connection timeouts: --set tcp tcpfin udp (0 leaves one unchanged)",
    ),
    spec(
        "help",
        Some('h'),
        ArgKind::None,
        Tag::Help,
        "",
        "display the help message",
    ),
    spec(
        "version",
        Some('v'),
        ArgKind::None,
        Tag::Version,
        "",
        "display the version",
    ),
    spec(
        "restore",
        Some('R'),
        ArgKind::None,
        Tag::Restore,
        "",
        "restore rules from stdin (-A, -E, -D, -a, -e, -d and -C lines)",
    ),
    spec(
        "save",
        Some('S'),
        ArgKind::None,
        Tag::Save,
        "",
        "save the rules to stdout in -R format",
    ),
    spec(
        "start-daemon",
        None,
        ArgKind::Required,
        Tag::StartDaemon,
        "state",
        "start the connection sync daemon (master|backup) (not supported by lbctl yet)",
    ),
    spec(
        "stop-daemon",
        None,
        ArgKind::Required,
        Tag::StopDaemon,
        "state",
        "stop the connection sync daemon (master|backup) (not supported by lbctl yet)",
    ),
    spec(
        "tcp-service",
        Some('t'),
        ArgKind::Required,
        Tag::TcpService,
        "service-address",
        "a TCP virtual service: host[:port]",
    ),
    spec(
        "udp-service",
        Some('u'),
        ArgKind::Required,
        Tag::UdpService,
        "service-address",
        "a UDP virtual service: host[:port]",
    ),
    spec(
        "sctp-service",
        None,
        ArgKind::Required,
        Tag::SctpService,
        "service-address",
        "an SCTP virtual service (not supported by lbctl yet)",
    ),
    spec(
        "fwmark-service",
        Some('f'),
        ArgKind::Required,
        Tag::FwmarkService,
        "fwmark",
        "a firewall-mark virtual service (not supported by lbctl yet)",
    ),
    spec(
        "scheduler",
        Some('s'),
        ArgKind::Required,
        Tag::Scheduler,
        "scheduler",
        "scheduling method: rr or wrr (the default is wrr)",
    ),
    spec(
        "persistent",
        Some('p'),
        ArgKind::Optional,
        Tag::Persistent,
        "timeout",
        "persistent service, with an optional timeout in seconds (default 300)",
    ),
    spec(
        "netmask",
        Some('M'),
        ArgKind::Required,
        Tag::Netmask,
        "netmask",
        "granularity of persistence: a contiguous IPv4 mask",
    ),
    spec(
        "real-server",
        Some('r'),
        ArgKind::Required,
        Tag::RealServer,
        "server-address",
        "a real server: host[:port]",
    ),
    spec(
        "masquerading",
        Some('m'),
        ArgKind::None,
        Tag::Masquerading,
        "",
        "masquerading (NAT): the real server may have another port",
    ),
    spec(
        "ipip",
        Some('i'),
        ArgKind::None,
        Tag::Ipip,
        "",
        "tunnelling (ipip, gue or gre encapsulation, --tun-type)",
    ),
    spec(
        "gatewaying",
        Some('g'),
        ArgKind::None,
        Tag::Gatewaying,
        "",
        "gatewaying (direct routing), the default",
    ),
    spec(
        "weight",
        Some('w'),
        ArgKind::Required,
        Tag::Weight,
        "weight",
        "capacity of a real server, 0 to 65535 (default 1)",
    ),
    spec(
        "u-threshold",
        Some('x'),
        ArgKind::Required,
        Tag::UThreshold,
        "uthreshold",
        "upper threshold of connections of a real server (0 = none, the default)",
    ),
    spec(
        "l-threshold",
        Some('y'),
        ArgKind::Required,
        Tag::LThreshold,
        "lthreshold",
        "lower threshold of connections of a real server (0 = none, the default)",
    ),
    spec(
        "numeric",
        Some('n'),
        ArgKind::None,
        Tag::Numeric,
        "",
        "numeric output of addresses and ports",
    ),
    spec(
        "connection",
        Some('c'),
        ArgKind::None,
        Tag::Connection,
        "",
        "list the current connections",
    ),
    spec(
        "mcast-interface",
        None,
        ArgKind::Required,
        Tag::McastInterface,
        "interface",
        "multicast interface of the sync daemon (not supported by lbctl yet)",
    ),
    spec(
        "syncid",
        None,
        ArgKind::Required,
        Tag::SyncId,
        "syncid",
        "sync daemon id (not supported by lbctl yet)",
    ),
    spec(
        "timeout",
        None,
        ArgKind::None,
        Tag::Timeout,
        "",
        "list the timeouts (tcp tcpfin udp)",
    ),
    spec(
        "daemon",
        None,
        ArgKind::None,
        Tag::Daemon,
        "",
        "list the sync daemon status (not supported by lbctl yet)",
    ),
    spec(
        "stats",
        None,
        ArgKind::None,
        Tag::Stats,
        "",
        "list with statistics",
    ),
    spec(
        "rate",
        None,
        ArgKind::None,
        Tag::Rate,
        "",
        "list with rates",
    ),
    spec(
        "thresholds",
        None,
        ArgKind::None,
        Tag::Thresholds,
        "",
        "list with thresholds",
    ),
    spec(
        "persistent-conn",
        None,
        ArgKind::None,
        Tag::PersistentConn,
        "",
        "list with persistent connection details",
    ),
    spec(
        "nosort",
        None,
        ArgKind::None,
        Tag::NoSort,
        "",
        "do not sort the services and servers in listings",
    ),
    spec(
        "sort",
        None,
        ArgKind::None,
        Tag::Sort,
        "",
        "does nothing, for backwards compatibility",
    ),
    spec(
        "exact",
        Some('X'),
        ArgKind::None,
        Tag::Exact,
        "",
        "expand numbers (display exact values)",
    ),
    spec(
        "ipv6",
        Some('6'),
        ArgKind::None,
        Tag::Ipv6,
        "",
        "an IPv6 firewall-mark service (not supported by lbctl yet)",
    ),
    spec(
        "ops",
        Some('o'),
        ArgKind::None,
        Tag::Ops,
        "",
        "one-packet scheduling (not supported by lbctl yet)",
    ),
    spec(
        "pe",
        None,
        ArgKind::Required,
        Tag::Pe,
        "engine",
        "persistence engine (not supported by lbctl yet)",
    ),
    spec(
        "sched-flags",
        Some('b'),
        ArgKind::Required,
        Tag::SchedFlags,
        "flags",
        "scheduler flags (not supported by lbctl yet)",
    ),
    spec(
        "mcast-group",
        None,
        ArgKind::Required,
        Tag::McastGroup,
        "address",
        "multicast group of the sync daemon (not supported by lbctl yet)",
    ),
    spec(
        "mcast-port",
        None,
        ArgKind::Required,
        Tag::McastPort,
        "port",
        "multicast port of the sync daemon (not supported by lbctl yet)",
    ),
    spec(
        "mcast-ttl",
        None,
        ArgKind::Required,
        Tag::McastTtl,
        "ttl",
        "multicast TTL of the sync daemon (not supported by lbctl yet)",
    ),
    spec(
        "sync-maxlen",
        None,
        ArgKind::Required,
        Tag::SyncMaxlen,
        "length",
        "maximum sync message length (not supported by lbctl yet)",
    ),
    spec(
        "tun-info",
        None,
        ArgKind::None,
        Tag::TunInfo,
        "",
        "list tunnel information (with -L)",
    ),
    spec(
        "tun-type",
        None,
        ArgKind::Required,
        Tag::TunType,
        "type",
        "tunnel type of -i: ipip (the default), gue or gre",
    ),
    spec(
        "tun-port",
        None,
        ArgKind::Required,
        Tag::TunPort,
        "port",
        "tunnel destination port (gue only, required)",
    ),
    spec(
        "tun-nocsum",
        None,
        ArgKind::None,
        Tag::TunNoCsum,
        "",
        "tunnel without checksums, the default (gue and gre)",
    ),
    spec(
        "tun-csum",
        None,
        ArgKind::None,
        Tag::TunCsum,
        "",
        "tunnel with checksums (gue and gre)",
    ),
    spec(
        "tun-remcsum",
        None,
        ArgKind::None,
        Tag::TunRemCsum,
        "",
        "tunnel with remote checksum offload (gue only)",
    ),
];

/// ipvsadm's commands, in `commands_v_options` row order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    /// ipvsadm's `cmdnames`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
        }
    }

    /// ipvsadm's `commands_v_options` row: `+` compulsory, `x` illegal, `1`
    /// exclusive, ` ` optional; columns in [`OPT_NAMES`] order.
    pub(super) fn row(self) -> &'static [u8; NUMBER_OF_OPT] {
        match self {
            Cmd::Add | Cmd::Edit => b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
            Cmd::Del => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Flush | Cmd::Timeout | Cmd::Restore => b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => b" 11xxxxxxxxx11       xxxxxxx xxxxx",
            Cmd::AddDest | Cmd::EditDest => b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
            Cmd::DelDest => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::StartDaemon => b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
            Cmd::StopDaemon => b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
            Cmd::Save => b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

pub(super) const NUMBER_OF_OPT: usize = 34;

/// ipvsadm's `optnames`, indexed by [`Opt`].
pub(super) const OPT_NAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// ipvsadm's `OPTC_*` option bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opt {
    Numeric = 0,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Mcast,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    OnePacket,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

impl Opt {
    pub(super) fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// ipvsadm's `generic_opt_check`.
pub(super) fn generic_opt_check(cmd: Cmd, options: u64) -> Result<(), CliError> {
    let row = cmd.row();
    let mut last: Option<usize> = None;
    for (j, rule) in row.iter().enumerate() {
        let set = options & (1 << j) != 0;
        match (set, rule) {
            (false, b'+') => {
                return Err(CliError::MissingOption {
                    option: OPT_NAMES[j],
                    command: cmd.name(),
                });
            }
            (true, b'x') => {
                return Err(CliError::IllegalOption {
                    option: OPT_NAMES[j],
                    command: cmd.name(),
                });
            }
            (true, b'1') => match last {
                None => last = Some(j),
                Some(l) => {
                    return Err(CliError::ConflictingOptions {
                        option: OPT_NAMES[j],
                        other: OPT_NAMES[l],
                        command: cmd.name(),
                    });
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// The command of a tag that is one (`-A`, `-L`, `--set`, ...).
pub(super) fn command_of(tag: Tag) -> Option<Cmd> {
    Some(match tag {
        Tag::AddService => Cmd::Add,
        Tag::EditService => Cmd::Edit,
        Tag::DeleteService => Cmd::Del,
        Tag::Clear => Cmd::Flush,
        Tag::List => Cmd::List,
        Tag::Zero => Cmd::Zero,
        Tag::AddServer => Cmd::AddDest,
        Tag::EditServer => Cmd::EditDest,
        Tag::DeleteServer => Cmd::DelDest,
        Tag::Set => Cmd::Timeout,
        Tag::Restore => Cmd::Restore,
        Tag::Save => Cmd::Save,
        Tag::StartDaemon => Cmd::StartDaemon,
        Tag::StopDaemon => Cmd::StopDaemon,
        _ => return None,
    })
}

/// The table as clap arguments, for lbctl's completions and man page only
/// (parsing stays with `popt`): `-L` and `-l` make one `--list`; the
/// commands (and `--help`, `--version`) go under the "Commands" heading, the
/// other options under "Options", as in ipvsadm(8).
pub(super) fn clap_args() -> Vec<Arg> {
    let mut args: Vec<Arg> = Vec::new();
    for s in SPECS {
        if let Some(a) = args.iter_mut().find(|a| a.get_id() == s.long) {
            if let Some(c) = s.short {
                *a = a.clone().visible_short_alias(c);
            }
            continue;
        }
        let mut a = Arg::new(s.long).long(s.long).help(s.help);
        if let Some(c) = s.short {
            a = a.short(c);
        }
        a = match s.arg {
            ArgKind::None => a.action(ArgAction::SetTrue),
            ArgKind::Required => a.action(ArgAction::Set).num_args(1).value_name(s.value),
            ArgKind::Optional => a.action(ArgAction::Set).num_args(0..=1).value_name(s.value),
        };
        let command = command_of(s.tag).is_some() || matches!(s.tag, Tag::Help | Tag::Version);
        args.push(a.help_heading(if command { "Commands" } else { "Options" }));
    }
    args
}

//! ipvsadm 1.31's option table (popt's `options[]`), its commands and the
//! `commands_v_options` check.

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
}

pub(super) const fn spec(long: &'static str, short: Option<char>, arg: ArgKind, tag: Tag) -> Spec {
    Spec {
        long,
        short,
        arg,
        tag,
    }
}

/// ipvsadm 1.31's popt option table, in its order (`--list` is `-L`).
pub(super) const SPECS: &[Spec] = &[
    spec("add-service", Some('A'), ArgKind::None, Tag::AddService),
    spec("edit-service", Some('E'), ArgKind::None, Tag::EditService),
    spec(
        "delete-service",
        Some('D'),
        ArgKind::None,
        Tag::DeleteService,
    ),
    spec("clear", Some('C'), ArgKind::None, Tag::Clear),
    spec("list", Some('L'), ArgKind::None, Tag::List),
    spec("list", Some('l'), ArgKind::None, Tag::List),
    spec("zero", Some('Z'), ArgKind::None, Tag::Zero),
    spec("add-server", Some('a'), ArgKind::None, Tag::AddServer),
    spec("edit-server", Some('e'), ArgKind::None, Tag::EditServer),
    spec("delete-server", Some('d'), ArgKind::None, Tag::DeleteServer),
    spec("set", None, ArgKind::None, Tag::Set),
    spec("help", Some('h'), ArgKind::None, Tag::Help),
    spec("version", Some('v'), ArgKind::None, Tag::Version),
    spec("restore", Some('R'), ArgKind::None, Tag::Restore),
    spec("save", Some('S'), ArgKind::None, Tag::Save),
    spec("start-daemon", None, ArgKind::Required, Tag::StartDaemon),
    spec("stop-daemon", None, ArgKind::Required, Tag::StopDaemon),
    spec("tcp-service", Some('t'), ArgKind::Required, Tag::TcpService),
    spec("udp-service", Some('u'), ArgKind::Required, Tag::UdpService),
    spec("sctp-service", None, ArgKind::Required, Tag::SctpService),
    spec(
        "fwmark-service",
        Some('f'),
        ArgKind::Required,
        Tag::FwmarkService,
    ),
    spec("scheduler", Some('s'), ArgKind::Required, Tag::Scheduler),
    spec("persistent", Some('p'), ArgKind::Optional, Tag::Persistent),
    spec("netmask", Some('M'), ArgKind::Required, Tag::Netmask),
    spec("real-server", Some('r'), ArgKind::Required, Tag::RealServer),
    spec("masquerading", Some('m'), ArgKind::None, Tag::Masquerading),
    spec("ipip", Some('i'), ArgKind::None, Tag::Ipip),
    spec("gatewaying", Some('g'), ArgKind::None, Tag::Gatewaying),
    spec("weight", Some('w'), ArgKind::Required, Tag::Weight),
    spec("u-threshold", Some('x'), ArgKind::Required, Tag::UThreshold),
    spec("l-threshold", Some('y'), ArgKind::Required, Tag::LThreshold),
    spec("numeric", Some('n'), ArgKind::None, Tag::Numeric),
    spec("connection", Some('c'), ArgKind::None, Tag::Connection),
    spec(
        "mcast-interface",
        None,
        ArgKind::Required,
        Tag::McastInterface,
    ),
    spec("syncid", None, ArgKind::Required, Tag::SyncId),
    spec("timeout", None, ArgKind::None, Tag::Timeout),
    spec("daemon", None, ArgKind::None, Tag::Daemon),
    spec("stats", None, ArgKind::None, Tag::Stats),
    spec("rate", None, ArgKind::None, Tag::Rate),
    spec("thresholds", None, ArgKind::None, Tag::Thresholds),
    spec("persistent-conn", None, ArgKind::None, Tag::PersistentConn),
    spec("nosort", None, ArgKind::None, Tag::NoSort),
    spec("sort", None, ArgKind::None, Tag::Sort),
    spec("exact", Some('X'), ArgKind::None, Tag::Exact),
    spec("ipv6", Some('6'), ArgKind::None, Tag::Ipv6),
    spec("ops", Some('o'), ArgKind::None, Tag::Ops),
    spec("pe", None, ArgKind::Required, Tag::Pe),
    spec("sched-flags", Some('b'), ArgKind::Required, Tag::SchedFlags),
    spec("mcast-group", None, ArgKind::Required, Tag::McastGroup),
    spec("mcast-port", None, ArgKind::Required, Tag::McastPort),
    spec("mcast-ttl", None, ArgKind::Required, Tag::McastTtl),
    spec("sync-maxlen", None, ArgKind::Required, Tag::SyncMaxlen),
    spec("tun-info", None, ArgKind::None, Tag::TunInfo),
    spec("tun-type", None, ArgKind::Required, Tag::TunType),
    spec("tun-port", None, ArgKind::Required, Tag::TunPort),
    spec("tun-nocsum", None, ArgKind::None, Tag::TunNoCsum),
    spec("tun-csum", None, ArgKind::None, Tag::TunCsum),
    spec("tun-remcsum", None, ArgKind::None, Tag::TunRemCsum),
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

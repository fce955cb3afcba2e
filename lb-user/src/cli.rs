//! The `lbctl` command line: ipvsadm 1.31's syntax, option for option, plus a
//! few lbctl-only words (`attach`, `detach`, `sysctl`, `version`, `help`).
//!
//! The ipvsadm part follows `ipvsadm.c` closely:
//!
//! * options are read the way popt reads them: short options may be clustered
//!   (`-Ln`, `-At 10.0.0.1:80`), an argument may be attached (`-w3`, `-p300`,
//!   `--weight=3`), `-p`'s argument is optional and is taken from the next word
//!   only when that word does not start with `-`, non-option words are collected
//!   and may appear anywhere, `--` ends the options, long names must be spelt
//!   out in full;
//! * the first option must be the command (`ipvsadm -n -L` is refused too);
//! * value errors are reported in argument order, then leftover words, then the
//!   command/option table (`commands_v_options`), then the post-checks (zero
//!   port, list conflicts), with ipvsadm's own messages;
//! * features that ipvsadm has and lbctl does not yet (IPv6, fwmark and SCTP
//!   services, NAT and tunnelling, thresholds, other schedulers, ...) are
//!   accepted by the parser as ipvsadm accepts them and then refused with a
//!   clear "not supported yet" error, after the command/option table check, so
//!   that misplaced options still get ipvsadm's "Illegal ..." message.
//!
//! Host and port names are looked up in `/etc/hosts` and `/etc/services` only
//! (never DNS), through a [`Resolver`] that tests build from text.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::format::ListFormat;
use crate::model::UNSUPPORTED_SCHEDULERS;
use crate::model::{Fwd, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec, Timeouts};
use crate::resolve::{Resolver, uncomment};

pub use lb_common::MAX_TIMEOUT;
use lb_common::MAX_WEIGHT;

/// Timeout that `-p` without a value gives, in seconds.
///
/// 300, as ipvsadm's man page and our specification say. Note: ipvsadm's code
/// uses libipvs.h's `IPVS_SVC_PERSISTENT_TIMEOUT`, which is `(6*60)`, so a
/// real `ipvsadm -A -t ... -p` lists `persistent 360`; the README says so.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 300;

/// Scheduler used when `-A`/`-E` has no `-s`.
///
/// ipvsadm's default is `wlc` (`DEF_SCHED`), which lbctl does not implement
/// yet. Rather than refusing every `-A` without `-s`, lbctl deliberately falls
/// back to `wrr`, which with equal weights and no connection counts behaves
/// closest to `wlc`. Like ipvsadm, `-E` without `-s` also resets the scheduler
/// to this default.
pub const DEFAULT_SCHED: Sched = Sched::Wrr;

/// Weight of `-a`/`-e` without `-w` (ipvsadm re-sends it on `-e` too).
pub const DEFAULT_WEIGHT: u32 = 1;

/// One parsed `lbctl` invocation (or one line of `-R` input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-A`: add a virtual service.
    AddService(ServiceSpec),
    /// `-E`: edit a virtual service. Like ipvsadm, every field is re-sent:
    /// omitted `-p` makes the service non-persistent, omitted `-M` resets the
    /// mask to /32, omitted `-s` resets the scheduler to [`DEFAULT_SCHED`].
    EditService(ServiceSpec),
    /// `-D`: delete a virtual service and its real servers.
    DeleteService(ServiceId),
    /// `-C`: delete all virtual services.
    Clear,
    /// `-R`: read commands from stdin, one per line (see [`parse_restore_line`]).
    Restore,
    /// `-S [-n]`: print the rules in `-R` format.
    Save { numeric: bool },
    /// `-a`: add a real server. The real's port is the service's port (direct
    /// routing cannot change ports; ipvsadm forces it the same way).
    AddReal { service: ServiceId, real: RealSpec },
    /// `-e`: edit a real server; omitted `-w` resets the weight to 1.
    EditReal { service: ServiceId, real: RealSpec },
    /// `-d`: delete a real server. The port is the one given with `-r`, or the
    /// service's port when none is given (ipvsadm does not force it here).
    DeleteReal { service: ServiceId, real: RealId },
    /// `-L`/`-l` (and `lbctl` without arguments).
    List {
        target: ListTarget,
        format: ListFormat,
    },
    /// `-Z [service]`: zero the counters of one service or of all.
    Zero(Option<ServiceId>),
    /// `--set tcp tcpfin udp`; a value of 0 leaves that timeout unchanged.
    SetTimeouts(Timeouts),
    /// `-h`, `--help`, `lbctl help`: print [`usage`].
    Help,
    /// `-v`, `--version`, `lbctl version`: print [`version_text`].
    Version,
    /// `lbctl attach IFACE [--mode native|generic] [--conns N] [--templates N]
    /// [--reset]` (default native; table sizes apply when the tables are made,
    /// `--reset` remakes them, dropping every connection and template).
    Attach {
        iface: String,
        mode: XdpMode,
        conns: Option<u32>,
        templates: Option<u32>,
        reset: bool,
    },
    /// `lbctl detach IFACE`.
    Detach { iface: String },
    /// `lbctl sysctl [NAME[=VALUE]]`.
    Sysctl(SysctlCmd),
    /// `lbctl counters`: what the XDP program did with every packet, by
    /// reason (forwarded, passed to the kernel and why, dropped and why).
    Counters,
    /// `lbctl daemon [--foreground] [--metrics ADDR:PORT [--metrics-public]]
    /// CONFIG`: the ldirectord-compatible health-checking daemon
    /// (`-d`/`--debug` and a trailing `start`, as ldirectord takes them, are
    /// accepted too).
    Daemon {
        foreground: bool,
        config: std::path::PathBuf,
        metrics: Option<std::net::SocketAddr>,
        metrics_public: bool,
    },
    /// `lbctl daemon-status [CONFIG]`, `lbctl daemon status`, `lbctl daemon
    /// CONFIG status`: the health the running daemon(s) last saw.
    DaemonStatus { config: Option<std::path::PathBuf> },
}

/// What `-L` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListTarget {
    /// The whole table, with the `IP Virtual Server version` header.
    All,
    /// `-L -t|-u service`: that service only, without the header line; ipvsadm
    /// prints "No such service" and exits 1 when it does not exist.
    Service(ServiceId),
    /// `-L -c`: the connection table (`format.numeric` and
    /// `format.persistent_conn` apply).
    Conns,
    /// `-L --timeout`.
    Timeouts,
}

/// XDP attach mode of `lbctl attach --mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// Driver (native) XDP.
    Native,
    /// Generic (skb) XDP, works on any interface.
    Generic,
}

/// The `net.ipv4.vs.*` knobs that lbctl implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sysctl {
    ExpireNodestConn,
    ExpireQuiescentTemplate,
    ConnReuseMode,
}

impl Sysctl {
    /// All knobs, in listing order.
    pub const ALL: [Sysctl; 3] = [
        Sysctl::ConnReuseMode,
        Sysctl::ExpireNodestConn,
        Sysctl::ExpireQuiescentTemplate,
    ];

    /// The name without the `net.ipv4.vs.` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Sysctl::ExpireNodestConn => "expire_nodest_conn",
            Sysctl::ExpireQuiescentTemplate => "expire_quiescent_template",
            Sysctl::ConnReuseMode => "conn_reuse_mode",
        }
    }

    /// Largest accepted value (the smallest is 0).
    pub fn max(self) -> u32 {
        match self {
            Sysctl::ExpireNodestConn | Sysctl::ExpireQuiescentTemplate => 1,
            Sysctl::ConnReuseMode => 3,
        }
    }

    /// Looks a knob up by name, with or without the `net.ipv4.vs.` prefix
    /// (also written `net/ipv4/vs/`, as sysctl(8) accepts).
    pub fn from_name(name: &str) -> Option<Sysctl> {
        let bare = name
            .strip_prefix("net.ipv4.vs.")
            .or_else(|| name.strip_prefix("net/ipv4/vs/"))
            .unwrap_or(name);
        Sysctl::ALL.into_iter().find(|s| s.name() == bare)
    }

    fn expected(self) -> &'static str {
        match self {
            Sysctl::ExpireNodestConn | Sysctl::ExpireQuiescentTemplate => "0 or 1",
            Sysctl::ConnReuseMode => "0, 1, 2 or 3",
        }
    }
}

/// `lbctl sysctl ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysctlCmd {
    /// `lbctl sysctl`: list all knobs.
    List,
    /// `lbctl sysctl NAME`: show one knob.
    Show(Sysctl),
    /// `lbctl sysctl NAME=VALUE`: set one knob (value already range-checked).
    Set(Sysctl, u32),
}

/// Why a command line (or a `-R` line) was refused. `Display` gives the text to
/// print after `lbctl: `; ipvsadm's own wording is kept where ipvsadm has the
/// same error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// popt: an option that does not exist (the word as typed).
    #[error("{0}: unknown option")]
    UnknownOption(String),
    /// popt: an option whose argument is missing.
    #[error("{0}: missing argument")]
    MissingArgument(String),
    /// popt: `--numeric=1` and the like.
    #[error("{0}: option does not take an argument")]
    UnwantedArgument(String),
    /// Only non-option words and no command.
    #[error("no command specified; try `lbctl -h' or 'lbctl --help' for more information")]
    NoCommand,
    /// The first option is not a command (ipvsadm needs the command first).
    #[error(
        "`{0}' is not a command: the command (-A, -E, -D, -C, -R, -S, -a, -e, -d, -L, -Z, --set) \
         must come first; try `lbctl -h' for more information"
    )]
    NotACommand(String),
    /// A second command after the first (ipvsadm's wording).
    #[error("invalid option `{0}'")]
    InvalidOption(String),
    /// A word that no option takes.
    #[error("unexpected argument {0}")]
    UnexpectedArgument(String),
    /// The same option twice (ipvsadm's option names, e.g. `weight`).
    #[error("multiple '{0}' options specified")]
    MultipleOptions(&'static str),
    /// An option that the command does not take (ipvsadm's names, e.g.
    /// `Illegal 'weight' option with the 'add-service' command`).
    #[error("Illegal '{option}' option with the '{command}' command")]
    IllegalOption {
        option: &'static str,
        command: &'static str,
    },
    /// An option that the command requires.
    #[error("You need to supply the '{option}' option for the '{command}' command")]
    MissingOption {
        option: &'static str,
        command: &'static str,
    },
    /// Two mutually exclusive options of `-L` (`-c`, a service, `--timeout`).
    #[error("The option '{option}' conflicts with the '{other}' option in the '{command}' command")]
    ConflictingOptions {
        option: &'static str,
        other: &'static str,
        command: &'static str,
    },
    /// `-L -c --stats` and the like.
    #[error("options conflicts in the list command")]
    ListConflict,
    #[error("illegal virtual server address[:port] specified")]
    IllegalServiceAddress,
    #[error("illegal real server address[:port] specified")]
    IllegalRealAddress,
    #[error("illegal virtual server persistent mask specified")]
    IllegalNetmask,
    /// lbctl only: ipvsadm passes such masks on; they make no sense.
    #[error("persistent mask {0} is not contiguous")]
    NonContiguousNetmask(Ipv4Addr),
    #[error("illegal weight specified")]
    IllegalWeight,
    /// Other `illegal <what> specified` errors of ipvsadm (`u_threshold`,
    /// `syncid`, `tunnel port`, ...), for options lbctl does not support.
    #[error("illegal {what} specified")]
    IllegalValue { what: &'static str },
    /// `-p` or `--set` value out of range or not a number.
    #[error("invalid timeout value `{0}' specified")]
    InvalidTimeout(String),
    #[error("invalid fwmark value `{0}' specified")]
    InvalidFwmark(String),
    #[error("--set option requires 3 timeout values")]
    SetNeedsThreeValues,
    /// `-A`/`-E` without a port (or with port 0) and without `-p`.
    #[error("Zero port specified for non-persistent service")]
    ZeroPort,
    #[error("Tunnel options conflict with forward method")]
    TunnelOptionsConflict,
    #[error("-6 used before -f")]
    Ipv6BeforeFwmark,
    #[error("IPv6 is not supported yet")]
    Ipv6Unsupported,
    /// A known IPVS scheduler that lbctl does not implement yet.
    #[error("scheduler {0} is not supported yet (supported: rr, wrr)")]
    SchedulerUnsupported(String),
    /// A scheduler name IPVS does not know (ipvsadm's wording; the kernel's
    /// ENOENT).
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound(String),
    /// `-i` or `-m`.
    #[error("forwarding method {0} is not supported yet; only direct routing (-g)")]
    ForwardingUnsupported(&'static str),
    /// Any other ipvsadm feature that lbctl does not implement yet.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// A command other than -A -E -D -a -e -d -C in `-R` input.
    #[error("`{0}' is not allowed in restore input (only -A, -E, -D, -a, -e, -d and -C are)")]
    NotAllowedInRestore(String),
    /// A first word that is neither an option nor an lbctl word.
    #[error("unknown command `{0}'; try `lbctl -h' for more information")]
    UnknownCommand(String),
    /// Wrong use of an lbctl word; the text is its synopsis.
    #[error("usage: lbctl {0}")]
    Usage(&'static str),
    #[error("invalid interface name `{0}'")]
    InvalidInterface(String),
    #[error("invalid XDP mode `{0}' (expected native or generic)")]
    InvalidXdpMode(String),
    #[error(
        "unknown sysctl `{0}' (known: expire_nodest_conn, expire_quiescent_template, \
         conn_reuse_mode)"
    )]
    UnknownSysctl(String),
    #[error("invalid value `{value}' for {name} (expected {expected})")]
    InvalidSysctlValue {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid metrics address `{0}' (expected ADDR:PORT, e.g. 127.0.0.1:9469)")]
    InvalidMetricsAddress(String),
    /// ldirectord's `stop`, `reload`, ... words: lbctl daemon never detaches.
    #[error(
        "`lbctl daemon CONFIG {0}' is not supported: the daemon stays in the foreground; \
         stop it with SIGTERM and reload it with SIGHUP (`lbctl daemon-status' shows its pid)"
    )]
    DaemonAction(String),
}

impl CliError {
    /// Exit status ipvsadm uses for this kind of error: 255 for option-syntax
    /// errors (popt errors and "try -h"), 2 for everything ipvsadm reports
    /// through `fail()`.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::UnknownOption(_)
            | CliError::MissingArgument(_)
            | CliError::UnwantedArgument(_)
            | CliError::NoCommand
            | CliError::NotACommand(_)
            | CliError::NotAllowedInRestore(_)
            | CliError::UnknownCommand(_)
            | CliError::Usage(_) => 255,
            _ => 2,
        }
    }
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// Parses `lbctl`'s arguments (without the program name), looking names up in
/// the system's `/etc/hosts` and `/etc/services`.
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    parse_with(args, Resolver::system())
}

/// [`parse`] with the given name tables.
pub fn parse_with(args: &[String], names: &Resolver) -> Result<Command, CliError> {
    match args.first() {
        // `ipvsadm` alone lists the table.
        None => Ok(Command::List {
            target: ListTarget::All,
            format: ListFormat::default(),
        }),
        Some(word) if !word.starts_with('-') => parse_word(word, &args[1..]),
        Some(_) => parse_ipvsadm(args, names, false),
    }
}

/// Parses one line of `-R` input: blank lines and `#` comments give `None`; an
/// optional leading `ipvsadm` (or `lbctl`) word is dropped; the rest is split
/// on whitespace and parsed as an ipvsadm command line, which must be one of
/// `-A -E -D -a -e -d -C`.
///
/// Differences from ipvsadm 1.31's reader: its `#` handling never triggers (a
/// comment line is parsed as arguments and aborts the restore), and it drops
/// the word `ipvsadm` wherever it appears, not only in front; it also accepts
/// any command, even `-L`.
pub fn parse_restore_line(line: &str) -> Result<Option<Command>, CliError> {
    parse_restore_line_with(line, Resolver::system())
}

/// [`parse_restore_line`] with the given name tables.
pub fn parse_restore_line_with(line: &str, names: &Resolver) -> Result<Option<Command>, CliError> {
    let mut words: Vec<String> = uncomment(line)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if words
        .first()
        .is_some_and(|w| w == "ipvsadm" || w == "lbctl")
    {
        words.remove(0);
    }
    if words.is_empty() {
        return Ok(None);
    }
    parse_ipvsadm(&words, names, true).map(Some)
}

/// `lbctl -v` / `lbctl version` text (one line, with newline).
pub fn version_text() -> String {
    format!(
        "lbctl v{} (ipvsadm v1.31 command line and listings, IPVS v1.2.1)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `lbctl -h` text, modelled on ipvsadm's usage and limited to what lbctl
/// supports.
pub fn usage() -> String {
    let mut s = version_text();
    s.push_str(
        "Usage:\n\
         \x20 lbctl -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask]\n\
         \x20 lbctl -D virtual-service\n\
         \x20 lbctl -C\n\
         \x20 lbctl -R\n\
         \x20 lbctl -S [-n]\n\
         \x20 lbctl -a|e virtual-service -r server-address [options]\n\
         \x20 lbctl -d virtual-service -r server-address\n\
         \x20 lbctl -L|l [virtual-service] [options]\n\
         \x20 lbctl -Z [virtual-service]\n\
         \x20 lbctl --set tcp tcpfin udp\n\
         \x20 lbctl -h\n\
         \x20 lbctl attach IFACE [--mode native|generic] [--conns N] [--templates N] [--reset]\n\
         \x20 lbctl detach IFACE\n\
         \x20 lbctl sysctl [NAME[=VALUE]]\n\
         \x20 lbctl counters\n\
         \x20 lbctl daemon [--foreground] [--metrics ADDR:PORT [--metrics-public]] CONFIG\n\
         \x20 lbctl daemon-status [CONFIG]\n\
         \x20 lbctl version\n\
         \n\
         Commands:\n\
         Either long or short options are allowed.\n\
         \x20 --add-service     -A        add virtual service with options\n\
         \x20 --edit-service    -E        edit virtual service with options\n\
         \x20 --delete-service  -D        delete virtual service\n\
         \x20 --clear           -C        clear the whole table\n\
         \x20 --restore         -R        restore rules from stdin\n\
         \x20 --save            -S        save rules to stdout\n\
         \x20 --add-server      -a        add real server with options\n\
         \x20 --edit-server     -e        edit real server with options\n\
         \x20 --delete-server   -d        delete real server\n\
         \x20 --list            -L|-l     list the table\n\
         \x20 --zero            -Z        zero counters in a service or all services\n\
         \x20 --set tcp tcpfin udp        set connection timeout values\n\
         \x20 --help            -h        display this help message\n\
         \x20 --version         -v        display the version\n\
         \n\
         lbctl commands:\n\
         \x20 attach IFACE [--mode native|generic] [--conns N] [--templates N] [--reset]\n\
         \x20                             attach the load balancer to IFACE (default: native)\n\
         \x20 detach IFACE                detach the load balancer from IFACE\n\
         \x20 sysctl                      list the net.ipv4.vs.* settings\n\
         \x20 sysctl NAME[=VALUE]         show or set one of them: expire_nodest_conn (0|1),\n\
         \x20                             expire_quiescent_template (0|1), conn_reuse_mode (0-3)\n\
         \x20 daemon CONFIG               check real servers as ldirectord does with CONFIG (an\n\
         \x20                             ldirectord.cf) and keep the table in step; SIGHUP reloads\n\
         \x20 daemon-status [CONFIG]      health of each real server as the daemon last saw it\n\
         \x20 version                     display the version\n\
         \n\
         virtual-service:\n\
         \x20 --tcp-service|-t  service-address   service-address is host[:port]\n\
         \x20 --udp-service|-u  service-address   service-address is host[:port]\n\
         \n\
         Options:\n\
         \x20 --scheduler    -s scheduler         one of rr|wrr,\n\
         \x20                                     the default scheduler is wrr.\n\
         \x20 --persistent   -p [timeout]         persistent service (default timeout 300)\n\
         \x20 --netmask      -M netmask           persistent granularity mask\n\
         \x20 --real-server  -r server-address    server-address is host (and port)\n\
         \x20 --gatewaying   -g                   gatewaying (direct routing) (default)\n\
         \x20 --weight       -w weight            capacity of real server\n\
         \x20 --connection   -c                   output of current IPVS connections\n\
         \x20 --timeout                           output of timeout (tcp tcpfin udp)\n\
         \x20 --stats                             output of statistics information\n\
         \x20 --rate                              output of rate information\n\
         \x20 --exact        -X                   expand numbers (display exact values)\n\
         \x20 --thresholds                        output of thresholds information\n\
         \x20 --persistent-conn                   output of persistent connection info\n\
         \x20 --nosort                            disable sorting output of service/server entries\n\
         \x20 --sort                              does nothing, for backwards compatibility\n\
         \x20 --numeric      -n                   numeric output of addresses and ports\n",
    );
    s
}

// ---------------------------------------------------------------------------
// lbctl words
// ---------------------------------------------------------------------------

const ATTACH_USAGE: &str =
    "attach IFACE [--mode native|generic] [--conns N] [--templates N] [--reset]";
const DETACH_USAGE: &str = "detach IFACE";
const SYSCTL_USAGE: &str = "sysctl [NAME[=VALUE]]";
const DAEMON_USAGE: &str = "daemon [--foreground] [--metrics ADDR:PORT [--metrics-public]] CONFIG | daemon-status [CONFIG]";

fn parse_word(word: &str, rest: &[String]) -> Result<Command, CliError> {
    match word {
        "attach" => parse_attach(rest),
        "detach" => match rest {
            [iface] if !iface.starts_with('-') => Ok(Command::Detach {
                iface: check_iface(iface)?,
            }),
            [_, extra, ..] if !rest[0].starts_with('-') => {
                Err(CliError::UnexpectedArgument(extra.clone()))
            }
            _ => Err(CliError::Usage(DETACH_USAGE)),
        },
        "sysctl" => parse_sysctl(rest),
        "daemon" => parse_daemon(rest),
        "daemon-status" => match rest {
            [] => Ok(Command::DaemonStatus { config: None }),
            [c, ..] if c.starts_with('-') => Err(CliError::UnknownOption(c.clone())),
            [c] => Ok(Command::DaemonStatus {
                config: Some(c.into()),
            }),
            [_, extra, ..] => Err(CliError::UnexpectedArgument(extra.clone())),
        },
        "version" => no_more(rest).map(|()| Command::Version),
        "counters" => no_more(rest).map(|()| Command::Counters),
        "help" => no_more(rest).map(|()| Command::Help),
        _ => Err(CliError::UnknownCommand(word.to_owned())),
    }
}

fn no_more(rest: &[String]) -> Result<(), CliError> {
    match rest.first() {
        None => Ok(()),
        Some(w) => Err(CliError::UnexpectedArgument(w.clone())),
    }
}

fn parse_attach(rest: &[String]) -> Result<Command, CliError> {
    let mut iface = None;
    let mut mode = None;
    let mut words = rest.iter();
    let mut conns = None;
    let mut templates = None;
    let mut reset = false;
    while let Some(w) = words.next() {
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (w.as_str(), None),
        };
        let value = |words: &mut std::slice::Iter<'_, String>| -> Result<String, CliError> {
            match inline {
                Some(v) => Ok(v.to_owned()),
                None => words
                    .next()
                    .cloned()
                    .ok_or_else(|| CliError::MissingArgument(w.clone())),
            }
        };
        match name {
            "--mode" => {
                if mode.is_some() {
                    return Err(CliError::MultipleOptions("mode"));
                }
                let v = value(&mut words)?;
                mode = Some(match v.as_str() {
                    "native" => XdpMode::Native,
                    "generic" => XdpMode::Generic,
                    _ => return Err(CliError::InvalidXdpMode(v)),
                });
            }
            "--conns" | "--templates" => {
                let v = value(&mut words)?;
                let n = parse_table_size(&v).ok_or(CliError::IllegalValue {
                    what: if name == "--conns" {
                        "connection table size (1024..=134217728)"
                    } else {
                        "template table size (1024..=134217728)"
                    },
                })?;
                let slot = if name == "--conns" {
                    &mut conns
                } else {
                    &mut templates
                };
                if slot.is_some() {
                    return Err(CliError::MultipleOptions(if name == "--conns" {
                        "conns"
                    } else {
                        "templates"
                    }));
                }
                *slot = Some(n);
            }
            "--reset" if inline.is_none() => reset = true,
            _ if w.starts_with('-') => return Err(CliError::UnknownOption(w.clone())),
            _ if iface.is_some() => return Err(CliError::UnexpectedArgument(w.clone())),
            _ => iface = Some(check_iface(w)?),
        }
    }
    let iface = iface.ok_or(CliError::Usage(ATTACH_USAGE))?;
    Ok(Command::Attach {
        iface,
        mode: mode.unwrap_or(XdpMode::Native),
        conns,
        templates,
        reset,
    })
}

/// A table size for `--conns`/`--templates`.
fn parse_table_size(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = v.parse().ok()?;
    (1024..=134_217_728).contains(&n).then_some(n)
}

/// The kernel's `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or
/// whitespace.
fn check_iface(name: &str) -> Result<String, CliError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(name.to_owned())
    } else {
        Err(CliError::InvalidInterface(name.to_owned()))
    }
}

/// `lbctl daemon ...`: options anywhere, then `CONFIG`, `status`, `CONFIG
/// status` or `CONFIG start` (ldirectord's words).
fn parse_daemon(rest: &[String]) -> Result<Command, CliError> {
    let mut foreground = false;
    let mut metrics = None;
    let mut metrics_public = false;
    let mut words = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (w.as_str(), None),
        };
        match name {
            "--foreground" | "-f" | "--debug" | "-d" if inline.is_none() => foreground = true,
            "--metrics-public" if inline.is_none() => metrics_public = true,
            "--metrics" => {
                if metrics.is_some() {
                    return Err(CliError::MultipleOptions("metrics"));
                }
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| CliError::MissingArgument(w.clone()))?,
                };
                metrics = Some(
                    v.parse::<std::net::SocketAddr>()
                        .map_err(|_| CliError::InvalidMetricsAddress(v.clone()))?,
                );
            }
            "--" => words.extend(it.by_ref().cloned()),
            _ if w.starts_with('-') && w.len() > 1 => {
                return Err(CliError::UnknownOption(w.clone()));
            }
            _ => words.push(w.clone()),
        }
    }
    let status_only = |extra: bool| -> Result<(), CliError> {
        if extra || metrics.is_some() || metrics_public {
            return Err(CliError::Usage(DAEMON_USAGE));
        }
        Ok(())
    };
    let daemon = |c: &String| {
        if metrics_public && metrics.is_none() {
            return Err(CliError::Usage(DAEMON_USAGE));
        }
        Ok(Command::Daemon {
            foreground,
            config: c.into(),
            metrics,
            metrics_public,
        })
    };
    match words.as_slice() {
        [s] if s == "status" => {
            status_only(false)?;
            Ok(Command::DaemonStatus { config: None })
        }
        [c, s] if s == "status" => {
            status_only(false)?;
            Ok(Command::DaemonStatus {
                config: Some(c.into()),
            })
        }
        [c] => daemon(c),
        [c, s] if s == "start" => daemon(c),
        [_, action] => Err(CliError::DaemonAction(action.clone())),
        [_, _, extra, ..] => Err(CliError::UnexpectedArgument(extra.clone())),
        [] => Err(CliError::Usage(DAEMON_USAGE)),
    }
}

fn parse_sysctl(rest: &[String]) -> Result<Command, CliError> {
    let arg = match rest {
        [] => return Ok(Command::Sysctl(SysctlCmd::List)),
        [arg] => arg,
        [_, extra, ..] => return Err(CliError::UnexpectedArgument(extra.clone())),
    };
    if arg.starts_with('-') {
        return Err(CliError::Usage(SYSCTL_USAGE));
    }
    let (name, value) = match arg.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (arg.trim(), None),
    };
    let knob = Sysctl::from_name(name).ok_or_else(|| CliError::UnknownSysctl(name.to_owned()))?;
    let Some(value) = value else {
        return Ok(Command::Sysctl(SysctlCmd::Show(knob)));
    };
    let parsed = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<u32>().ok())
        .flatten()
        .filter(|v| *v <= knob.max());
    match parsed {
        Some(v) => Ok(Command::Sysctl(SysctlCmd::Set(knob, v))),
        None => Err(CliError::InvalidSysctlValue {
            name: knob.name(),
            value: value.to_owned(),
            expected: knob.expected(),
        }),
    }
}

// ---------------------------------------------------------------------------
// popt, as ipvsadm uses it
// ---------------------------------------------------------------------------

/// ipvsadm's option tags (popt `val`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
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
enum ArgKind {
    None,
    Required,
    Optional,
}

struct Spec {
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    tag: Tag,
}

const fn spec(long: &'static str, short: Option<char>, arg: ArgKind, tag: Tag) -> Spec {
    Spec {
        long,
        short,
        arg,
        tag,
    }
}

/// ipvsadm 1.31's popt option table, in its order (`--list` is `-L`).
const SPECS: &[Spec] = &[
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

/// One option as popt returns it.
struct Found {
    tag: Tag,
    arg: Option<String>,
    /// The argument word it came from (popt's `poptBadOption`).
    word: String,
}

/// popt's `poptGetNextOpt` over ipvsadm's table, with argument permutation:
/// non-option words are collected in `leftovers`.
struct Popt<'a> {
    args: &'a [String],
    next: usize,
    /// Rest of a short-option cluster: (word index, byte offset).
    cluster: Option<(usize, usize)>,
    rest_leftover: bool,
    leftovers: Vec<String>,
}

impl<'a> Popt<'a> {
    fn new(args: &'a [String]) -> Self {
        Popt {
            args,
            next: 0,
            cluster: None,
            rest_leftover: false,
            leftovers: Vec::new(),
        }
    }

    /// The argument of an option that did not get one attached: the next word
    /// (an optional argument only if that word does not start with `-`).
    fn separate_arg(&mut self, kind: ArgKind, word: &str) -> Result<Option<String>, CliError> {
        match self.args.get(self.next) {
            Some(a) if kind == ArgKind::Required || !a.starts_with('-') => {
                self.next += 1;
                Ok(Some(a.clone()))
            }
            None if kind == ArgKind::Required => Err(CliError::MissingArgument(word.to_owned())),
            _ => Ok(None),
        }
    }

    fn next_opt(&mut self) -> Result<Option<Found>, CliError> {
        loop {
            if let Some((wi, off)) = self.cluster.take() {
                return self.short_opt(wi, off).map(Some);
            }
            let Some(word) = self.args.get(self.next) else {
                return Ok(None);
            };
            let wi = self.next;
            self.next += 1;
            if self.rest_leftover || !word.starts_with('-') || word == "-" {
                self.leftovers.push(word.clone());
                continue;
            }
            if word == "--" {
                self.rest_leftover = true;
                continue;
            }
            let Some(body) = word.strip_prefix("--") else {
                self.cluster = Some((wi, 1));
                continue;
            };
            let (name, attached) = match body.split_once('=') {
                Some((n, a)) => (n, Some(a)),
                None => (body, None),
            };
            let spec = SPECS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| CliError::UnknownOption(word.clone()))?;
            let arg = match (spec.arg, attached) {
                (ArgKind::None, Some(_)) => return Err(CliError::UnwantedArgument(word.clone())),
                (ArgKind::None, None) => None,
                (_, Some(a)) => Some(a.to_owned()),
                (kind, None) => self.separate_arg(kind, word)?,
            };
            return Ok(Some(Found {
                tag: spec.tag,
                arg,
                word: word.clone(),
            }));
        }
    }

    fn short_opt(&mut self, wi: usize, off: usize) -> Result<Found, CliError> {
        let word = &self.args[wi];
        let rest = &word[off..];
        let Some(c) = rest.chars().next() else {
            return Err(CliError::UnknownOption(word.clone()));
        };
        let spec = SPECS
            .iter()
            .find(|s| s.short == Some(c))
            .ok_or_else(|| CliError::UnknownOption(word.clone()))?;
        let after = &rest[c.len_utf8()..];
        let arg = match spec.arg {
            ArgKind::None => {
                if after.starts_with('=') {
                    return Err(CliError::UnwantedArgument(word.clone()));
                }
                if !after.is_empty() {
                    self.cluster = Some((wi, off + c.len_utf8()));
                }
                None
            }
            kind if after.is_empty() => self.separate_arg(kind, word)?,
            _ => Some(after.strip_prefix('=').unwrap_or(after).to_owned()),
        };
        Ok(Found {
            tag: spec.tag,
            arg,
            word: word.clone(),
        })
    }
}

// ---------------------------------------------------------------------------
// ipvsadm's command/option table
// ---------------------------------------------------------------------------

/// ipvsadm's commands, in `commands_v_options` row order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
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
    fn name(self) -> &'static str {
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
    fn row(self) -> &'static [u8; NUMBER_OF_OPT] {
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

const NUMBER_OF_OPT: usize = 34;

/// ipvsadm's `optnames`, indexed by [`Opt`].
const OPT_NAMES: [&str; NUMBER_OF_OPT] = [
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
enum Opt {
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
    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// ipvsadm's `generic_opt_check`.
fn generic_opt_check(cmd: Cmd, options: u64) -> Result<(), CliError> {
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

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// ipvsadm's `string_to_number`: `strtol` base 10 (leading blanks and a sign
/// allowed), the whole word must be used, `min..=max`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'+') => (false, &t[1..]),
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.parse::<i64>().ok()?;
    let n = if negative { -magnitude } else { magnitude };
    (min..=max).contains(&n).then_some(n)
}

/// ipvsadm's `parse_timeout` for a given value.
fn parse_timeout(s: &str, min: u32) -> Result<u32, CliError> {
    string_to_number(s, i64::from(min), i64::from(MAX_TIMEOUT))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| CliError::InvalidTimeout(s.to_owned()))
}

/// ipvsadm's `str_is_digit` (true for the empty string too).
fn str_is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// What `host[:port]` named.
enum Addr {
    V4 { addr: Ipv4Addr, port: Option<u16> },
    V6 { port: Option<u16> },
}

/// ipvsadm's `parse_service`: `None` is its `SERVICE_NONE` (an error).
///
/// Hosts are dotted quads or names from the hosts file; unlike `inet_aton`,
/// shorthand (`10.1`), octal (`010.0.0.1`) and hex forms are not accepted.
/// Ports are numbers or names from the services file for `proto` (no names
/// without a protocol, as in ipvsadm when `-r` comes before `-t`).
fn parse_addr(buf: &str, proto: Option<Proto>, names: &Resolver) -> Option<Addr> {
    if str_is_digit(buf) {
        return None;
    }
    let port = |p: &str| -> Option<u16> {
        string_to_number(p, 0, 65535)
            .and_then(|n| u16::try_from(n).ok())
            .or_else(|| proto.and_then(|pr| names.service_port(p, pr)))
    };
    if let Some(rest) = buf.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let p = after.strip_prefix(':')?;
        inner.parse::<Ipv6Addr>().ok()?;
        return Some(Addr::V6 { port: port(p) });
    }
    if buf.parse::<Ipv6Addr>().is_ok() {
        return Some(Addr::V6 { port: None });
    }
    let (host, p) = match buf.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (buf, None),
    };
    let addr = host
        .parse::<Ipv4Addr>()
        .ok()
        .or_else(|| names.host_addr(host))?;
    let port = match p {
        Some(p) => Some(port(p)?),
        None => None,
    };
    Some(Addr::V4 { addr, port })
}

/// `-M`: a dotted IPv4 mask whose one bits are contiguous.
fn parse_netmask(s: &str) -> Result<Ipv4Addr, CliError> {
    let mask: Ipv4Addr = s.parse().map_err(|_| CliError::IllegalNetmask)?;
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() == 32 {
        Ok(mask)
    } else {
        Err(CliError::NonContiguousNetmask(mask))
    }
}

fn parse_sched(name: &str) -> Result<Sched, CliError> {
    match name {
        "rr" => Ok(Sched::Rr),
        "wrr" => Ok(Sched::Wrr),
        n if UNSUPPORTED_SCHEDULERS.contains(&n) => {
            Err(CliError::SchedulerUnsupported(n.to_owned()))
        }
        n => Err(CliError::SchedulerNotFound(n.to_owned())),
    }
}

// ---------------------------------------------------------------------------
// ipvsadm's process_options
// ---------------------------------------------------------------------------

/// A service or real address that lbctl can use, or the error that explains
/// why not (already recorded as the deferred error).
#[derive(Clone)]
enum Usable<T> {
    Yes(T),
    No(CliError),
}

#[derive(Default)]
struct State {
    options: u64,
    /// Protocol for port names (`-f` sets TCP, as ipvsadm does).
    svc_proto: Option<Proto>,
    svc_port: u16,
    fwmark: bool,
    svc: Option<Usable<ServiceId>>,
    /// `-r`: address and port (port as ipvsadm computes it before forcing).
    real: Option<Usable<(Ipv4Addr, u16)>>,
    sched: Option<Sched>,
    persistent: Option<u32>,
    netmask: Option<Ipv4Addr>,
    weight: Option<u32>,
    tunnel_opts: bool,
    format: ListFormat,
    /// The first "not supported yet" error, reported after the table check.
    deferred: Option<CliError>,
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

    fn real(&self, cmd: Cmd) -> Result<(Ipv4Addr, u16), CliError> {
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

fn command_of(tag: Tag) -> Option<Cmd> {
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

const SYNC_DAEMON: &str = "the connection sync daemon (--start-daemon/--stop-daemon)";

fn parse_ipvsadm(args: &[String], names: &Resolver, restore: bool) -> Result<Command, CliError> {
    let mut popt = Popt::new(args);
    let Some(first) = popt.next_opt()? else {
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
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) && st.tunnel_opts {
        // Only -g gets here (-i and -m were refused as unsupported).
        return Err(CliError::TunnelOptionsConflict);
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

    build(cmd, &st, timeouts)
}

fn apply_option(st: &mut State, found: Found, names: &Resolver) -> Result<(), CliError> {
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
            st.svc = Some(match (proto, parsed) {
                (None, Addr::V4 { port, .. } | Addr::V6 { port }) => {
                    st.svc_port = port.unwrap_or(0);
                    Usable::No(st.defer(CliError::Unsupported("SCTP services (--sctp-service)")))
                }
                (Some(_), Addr::V6 { port }) => {
                    st.svc_port = port.unwrap_or(0);
                    Usable::No(st.defer(CliError::Ipv6Unsupported))
                }
                (Some(proto), Addr::V4 { addr, port }) => {
                    st.svc_port = port.unwrap_or(0);
                    Usable::Yes(ServiceId {
                        proto,
                        addr,
                        port: st.svc_port,
                    })
                }
            });
        }
        Tag::FwmarkService => {
            st.set(Opt::Service)?;
            string_to_number(&arg, 1, i64::from(u32::MAX))
                .ok_or_else(|| CliError::InvalidFwmark(arg.clone()))?;
            st.fwmark = true;
            st.svc_proto = Some(Proto::Tcp);
            st.svc = Some(Usable::No(
                st.defer(CliError::Unsupported("fwmark services (-f)")),
            ));
        }
        Tag::Scheduler => {
            st.set(Opt::Scheduler)?;
            match parse_sched(&arg) {
                Ok(s) => st.sched = Some(s),
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
            st.netmask = Some(parse_netmask(&arg)?);
        }
        Tag::RealServer => {
            st.set(Opt::Server)?;
            let parsed =
                parse_addr(&arg, st.svc_proto, names).ok_or(CliError::IllegalRealAddress)?;
            st.real = Some(match parsed {
                Addr::V6 { .. } => Usable::No(st.defer(CliError::Ipv6Unsupported)),
                Addr::V4 { addr, port } => Usable::Yes((addr, port.unwrap_or(st.svc_port))),
            });
        }
        Tag::Gatewaying => st.set(Opt::Forward)?,
        Tag::Ipip => {
            st.set(Opt::Forward)?;
            st.defer(CliError::ForwardingUnsupported("ipip (-i)"));
        }
        Tag::Masquerading => {
            st.set(Opt::Forward)?;
            st.defer(CliError::ForwardingUnsupported("masquerading (-m)"));
        }
        Tag::Weight => {
            st.set(Opt::Weight)?;
            let w =
                string_to_number(&arg, 0, i64::from(MAX_WEIGHT)).ok_or(CliError::IllegalWeight)?;
            st.weight = u32::try_from(w).ok();
        }
        Tag::UThreshold | Tag::LThreshold => {
            let (opt, what) = if tag == Tag::UThreshold {
                (Opt::UThreshold, "u_threshold")
            } else {
                (Opt::LThreshold, "l_threshold")
            };
            st.set(opt)?;
            string_to_number(&arg, 0, i64::from(i32::MAX))
                .ok_or(CliError::IllegalValue { what })?;
            st.defer(CliError::Unsupported("thresholds (-x/-y)"));
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
            if !st.fwmark {
                return Err(CliError::Ipv6BeforeFwmark);
            }
            st.defer(CliError::Ipv6Unsupported);
        }
        Tag::Ops => {
            st.set(Opt::OnePacket)?;
            st.defer(CliError::Unsupported("one-packet scheduling (-o)"));
        }
        Tag::Pe => {
            st.set(Opt::Pe)?;
            st.defer(CliError::Unsupported("persistence engines (--pe)"));
        }
        Tag::SchedFlags => {
            st.set(Opt::SchedFlags)?;
            st.defer(CliError::Unsupported("scheduler flags (-b)"));
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
            st.defer(CliError::Unsupported("--tun-info"));
        }
        Tag::TunType => {
            st.set(Opt::TunType)?;
            if arg != "ipip" && arg != "gue" {
                return Err(CliError::IllegalValue {
                    what: "tunnel type",
                });
            }
            st.tunnel_opts = true;
        }
        Tag::TunPort => {
            st.set(Opt::TunPort)?;
            string_to_number(&arg, 1, 65535).ok_or(CliError::IllegalValue {
                what: "tunnel port",
            })?;
            st.tunnel_opts = true;
        }
        Tag::TunNoCsum | Tag::TunCsum | Tag::TunRemCsum => {
            st.set(match tag {
                Tag::TunNoCsum => Opt::TunNoCsum,
                Tag::TunCsum => Opt::TunCsum,
                _ => Opt::TunRemCsum,
            })?;
            st.tunnel_opts = true;
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

fn build(cmd: Cmd, st: &State, timeouts: Option<Timeouts>) -> Result<Command, CliError> {
    let service_spec = || -> Result<ServiceSpec, CliError> {
        Ok(ServiceSpec {
            id: st.service(cmd)?,
            sched: st.sched.unwrap_or(DEFAULT_SCHED),
            persistent: st.persistent,
            netmask: st.netmask.unwrap_or(Ipv4Addr::BROADCAST),
        })
    };
    let real_spec = || -> Result<(ServiceId, RealSpec), CliError> {
        let service = st.service(cmd)?;
        let (addr, _given_port) = st.real(cmd)?;
        // Direct routing cannot change the port: ipvsadm forces the service's
        // port for -g (and -i) on non-fwmark services.
        Ok((
            service,
            RealSpec {
                id: RealId {
                    addr,
                    port: service.port,
                },
                fwd: Fwd::Route,
                weight: st.weight.unwrap_or(DEFAULT_WEIGHT),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ServiceView, Stats};

    fn names() -> Resolver {
        Resolver::from_text(
            "# test hosts\n\
             127.0.0.1   localhost\n\
             10.0.0.100  vip.example.com VIP   # the service\n\
             10.0.0.11   rs1\n\
             10.0.0.111  rs1 duplicate-is-ignored\n\
             2001:db8::1 v6host\n",
            "http     80/tcp   www   # WorldWideWeb HTTP\n\
             domain   53/tcp\n\
             domain   53/udp\n\
             ntp      123/udp\n\
             bogus    notaport/tcp\n",
        )
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn p(s: &str) -> Result<Command, CliError> {
        parse_with(&words(s), &names())
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn tcp(addr: &str, port: u16) -> ServiceId {
        ServiceId {
            proto: Proto::Tcp,
            addr: ip(addr),
            port,
        }
    }

    fn udp(addr: &str, port: u16) -> ServiceId {
        ServiceId {
            proto: Proto::Udp,
            addr: ip(addr),
            port,
        }
    }

    fn spec(id: ServiceId, sched: Sched, persistent: Option<u32>, mask: &str) -> ServiceSpec {
        ServiceSpec {
            id,
            sched,
            persistent,
            netmask: ip(mask),
        }
    }

    fn real(addr: &str, port: u16, weight: u32) -> RealSpec {
        RealSpec {
            id: RealId {
                addr: ip(addr),
                port,
            },
            fwd: Fwd::Route,
            weight,
        }
    }

    fn list(target: ListTarget, format: ListFormat) -> Command {
        Command::List { target, format }
    }

    const ALL: &str = "255.255.255.255";

    // --- services --------------------------------------------------------

    #[test]
    fn add_service() {
        assert_eq!(
            p("-A -t 10.0.0.100:80 -s rr"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Rr,
                None,
                ALL
            )))
        );
        assert_eq!(
            p("-A -u 10.0.0.100:53 -s wrr"),
            Ok(Command::AddService(spec(
                udp("10.0.0.100", 53),
                Sched::Wrr,
                None,
                ALL
            )))
        );
    }

    #[test]
    fn add_service_defaults_to_wrr() {
        assert_eq!(
            p("-A -t 10.0.0.100:80"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                None,
                ALL
            )))
        );
    }

    #[test]
    fn long_options() {
        assert_eq!(
            p(
                "--add-service --tcp-service 10.0.0.100:80 --scheduler rr --persistent 600 --netmask 255.255.255.0"
            ),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Rr,
                Some(600),
                "255.255.255.0"
            )))
        );
        assert_eq!(
            p("--add-service --tcp-service=10.0.0.100:80 --scheduler=rr --persistent=60"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Rr,
                Some(60),
                ALL
            )))
        );
    }

    #[test]
    fn clustered_and_attached_short_options() {
        let want = Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Rr,
            Some(600),
            ALL,
        )));
        assert_eq!(p("-At 10.0.0.100:80 -srr -p600"), want);
        assert_eq!(p("-At10.0.0.100:80 -s=rr -p 600"), want);
        assert_eq!(
            p("-Lnc"),
            Ok(list(
                ListTarget::Conns,
                ListFormat {
                    numeric: true,
                    ..ListFormat::default()
                }
            ))
        );
    }

    #[test]
    fn persistent_timeout() {
        let add = |t: Option<u32>| {
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                t,
                ALL,
            )))
        };
        // No value: ipvsadm's IPVS_SVC_PERSISTENT_TIMEOUT, (6*60).
        assert_eq!(p("-A -t 10.0.0.100:80 -p"), add(Some(300)));
        // The next word is taken only if it does not start with '-'.
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p -s rr"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Rr,
                Some(300),
                ALL
            )))
        );
        assert_eq!(p("-A -t 10.0.0.100:80 -p 1"), add(Some(1)));
        assert_eq!(p("-A -t 10.0.0.100:80 -p 2678400"), add(Some(2_678_400)));
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p 0"),
            Err(CliError::InvalidTimeout("0".into()))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p 2678401"),
            Err(CliError::InvalidTimeout("2678401".into()))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p rr"),
            Err(CliError::InvalidTimeout("rr".into()))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 --persistent="),
            Err(CliError::InvalidTimeout(String::new()))
        );
    }

    #[test]
    fn zero_port_needs_persistence() {
        assert_eq!(p("-A -t 10.0.0.100"), Err(CliError::ZeroPort));
        assert_eq!(p("-A -t 10.0.0.100:0"), Err(CliError::ZeroPort));
        assert_eq!(p("-E -u 10.0.0.100"), Err(CliError::ZeroPort));
        assert_eq!(
            p("-A -t 10.0.0.100 -p"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 0),
                Sched::Wrr,
                Some(300),
                ALL
            )))
        );
        // Only -A/-E check it.
        assert_eq!(
            p("-D -t 10.0.0.100"),
            Ok(Command::DeleteService(tcp("10.0.0.100", 0)))
        );
    }

    #[test]
    fn edit_service_resends_defaults() {
        assert_eq!(
            p("-E -t 10.0.0.100:80"),
            Ok(Command::EditService(spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                None,
                ALL
            )))
        );
        assert_eq!(
            p("--edit-service -t 10.0.0.100:80 -s rr -p 30 -M 255.255.0.0"),
            Ok(Command::EditService(spec(
                tcp("10.0.0.100", 80),
                Sched::Rr,
                Some(30),
                "255.255.0.0"
            )))
        );
    }

    #[test]
    fn delete_and_clear() {
        assert_eq!(
            p("-D -t 10.0.0.100:80"),
            Ok(Command::DeleteService(tcp("10.0.0.100", 80)))
        );
        assert_eq!(
            p("--delete-service -u 10.0.0.100:53"),
            Ok(Command::DeleteService(udp("10.0.0.100", 53)))
        );
        assert_eq!(p("-C"), Ok(Command::Clear));
        assert_eq!(p("--clear"), Ok(Command::Clear));
        assert_eq!(
            p("-D -t 10.0.0.100:80 -s rr"),
            Err(CliError::IllegalOption {
                option: "scheduler",
                command: "delete-service"
            })
        );
        assert_eq!(
            p("-C -n"),
            Err(CliError::IllegalOption {
                option: "numeric",
                command: "flush"
            })
        );
        assert_eq!(
            p("-D"),
            Err(CliError::MissingOption {
                option: "service-address",
                command: "delete-service"
            })
        );
    }

    #[test]
    fn netmask() {
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p -M 0.0.0.0"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                Some(300),
                "0.0.0.0"
            )))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p -M 255.0.255.0"),
            Err(CliError::NonContiguousNetmask(ip("255.0.255.0")))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p -M 24"),
            Err(CliError::IllegalNetmask)
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -p -M vip"),
            Err(CliError::IllegalNetmask)
        );
    }

    #[test]
    fn restore_and_save() {
        assert_eq!(p("-R"), Ok(Command::Restore));
        assert_eq!(p("--restore"), Ok(Command::Restore));
        assert_eq!(p("-R foo"), Err(CliError::UnexpectedArgument("foo".into())));
        assert_eq!(p("-S"), Ok(Command::Save { numeric: false }));
        assert_eq!(p("-S -n"), Ok(Command::Save { numeric: true }));
        assert_eq!(p("--save --numeric"), Ok(Command::Save { numeric: true }));
        assert_eq!(p("-Sn"), Ok(Command::Save { numeric: true }));
        assert_eq!(
            p("-S --stats"),
            Err(CliError::IllegalOption {
                option: "stats",
                command: "save"
            })
        );
    }

    // --- real servers ----------------------------------------------------

    #[test]
    fn add_real() {
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r 10.0.0.11 -g -w 3"),
            Ok(Command::AddReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 3)
            })
        );
        assert_eq!(
            p(
                "--add-server --tcp-service 10.0.0.100:80 --real-server 10.0.0.11:80 --gatewaying --weight 0"
            ),
            Ok(Command::AddReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 0)
            })
        );
    }

    #[test]
    fn add_real_defaults_and_forced_port() {
        // Weight 1, direct routing, and the service's port even if another
        // one is given (ipvsadm forces it for -g).
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r 10.0.0.11:8080"),
            Ok(Command::AddReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 1)
            })
        );
        // Port-0 (persistent) service: reals get port 0.
        assert_eq!(
            p("-a -t 10.0.0.100 -r 10.0.0.11:443"),
            Ok(Command::AddReal {
                service: tcp("10.0.0.100", 0),
                real: real("10.0.0.11", 0, 1)
            })
        );
    }

    #[test]
    fn edit_real_resets_weight_to_one() {
        assert_eq!(
            p("-e -t 10.0.0.100:80 -r 10.0.0.11"),
            Ok(Command::EditReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 1)
            })
        );
        assert_eq!(
            p("--edit-server -u 10.0.0.100:53 -r 10.0.0.11:53 -w 65535"),
            Ok(Command::EditReal {
                service: udp("10.0.0.100", 53),
                real: real("10.0.0.11", 53, 65535)
            })
        );
    }

    #[test]
    fn weight_range() {
        let add = |w: &str| p(&format!("-a -t 10.0.0.100:80 -r 10.0.0.11 -w {w}"));
        assert!(add("0").is_ok());
        assert!(add("65535").is_ok());
        // strtol: a sign and leading blanks are accepted.
        assert_eq!(
            add("+5"),
            Ok(Command::AddReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 5)
            })
        );
        assert_eq!(add("65536"), Err(CliError::IllegalWeight));
        assert_eq!(add("-1"), Err(CliError::IllegalWeight));
        assert_eq!(add("3x"), Err(CliError::IllegalWeight));
        assert_eq!(add("99999999999999999999999"), Err(CliError::IllegalWeight));
    }

    #[test]
    fn delete_real_keeps_the_given_port() {
        assert_eq!(
            p("-d -t 10.0.0.100:80 -r 10.0.0.11"),
            Ok(Command::DeleteReal {
                service: tcp("10.0.0.100", 80),
                real: RealId {
                    addr: ip("10.0.0.11"),
                    port: 80
                }
            })
        );
        assert_eq!(
            p("-d -t 10.0.0.100:80 -r 10.0.0.11:8080"),
            Ok(Command::DeleteReal {
                service: tcp("10.0.0.100", 80),
                real: RealId {
                    addr: ip("10.0.0.11"),
                    port: 8080
                }
            })
        );
        // -r before -t: ipvsadm copies the (still zero) service port.
        assert_eq!(
            p("-d -r 10.0.0.11 -t 10.0.0.100:80"),
            Ok(Command::DeleteReal {
                service: tcp("10.0.0.100", 80),
                real: RealId {
                    addr: ip("10.0.0.11"),
                    port: 0
                }
            })
        );
        assert_eq!(
            p("-d -t 10.0.0.100:80 -r 10.0.0.11 -w 1"),
            Err(CliError::IllegalOption {
                option: "weight",
                command: "delete-server"
            })
        );
    }

    #[test]
    fn real_server_needs_service_and_address() {
        assert_eq!(
            p("-a -t 10.0.0.100:80"),
            Err(CliError::MissingOption {
                option: "real-server",
                command: "add-server"
            })
        );
        assert_eq!(
            p("-a -r 10.0.0.11"),
            Err(CliError::MissingOption {
                option: "service-address",
                command: "add-server"
            })
        );
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r nosuchhost"),
            Err(CliError::IllegalRealAddress)
        );
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r 10.0.0.11:99999"),
            Err(CliError::IllegalRealAddress)
        );
        // Port names need the service's protocol, which ipvsadm only knows
        // once -t/-u has been seen.
        assert_eq!(
            p("-a -r rs1:http -t 10.0.0.100:80"),
            Err(CliError::IllegalRealAddress)
        );
        assert!(p("-a -t 10.0.0.100:80 -r rs1:http").is_ok());
    }

    // --- addresses and names -----------------------------------------------

    #[test]
    fn host_and_port_names() {
        assert_eq!(
            p("-A -t vip:http"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                None,
                ALL
            )))
        );
        assert_eq!(
            p("-A -t VIP.example.COM:www"),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                None,
                ALL
            )))
        );
        assert_eq!(
            p("-A -u vip:domain"),
            Ok(Command::AddService(spec(
                udp("10.0.0.100", 53),
                Sched::Wrr,
                None,
                ALL
            )))
        );
        // The first line naming a host wins.
        assert_eq!(
            p("-a -t vip:80 -r rs1"),
            Ok(Command::AddReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 1)
            })
        );
        // http is TCP only in the services file; ntp UDP only.
        assert_eq!(p("-A -u vip:http"), Err(CliError::IllegalServiceAddress));
        assert_eq!(p("-A -t vip:ntp"), Err(CliError::IllegalServiceAddress));
    }

    #[test]
    fn bad_service_addresses() {
        for bad in [
            "10.0.0.300:80",
            "nosuchhost:80",
            "80",
            "10.0.0.100:65536",
            "10.0.0.100:-1",
            "10.0.0.100:nosuchport",
            "10.0.0.100:",
            ":80",
            "010.0.0.100:80",
            "10.1:80",
            "v6host:80",
            "[10.0.0.100]:80",
            "[2001:db8::1",
        ] {
            assert_eq!(
                p(&format!("-A -t {bad}")),
                Err(CliError::IllegalServiceAddress),
                "{bad}"
            );
        }
    }

    #[test]
    fn ipv6_is_not_supported() {
        assert_eq!(p("-A -t [2001:db8::1]:80"), Err(CliError::Ipv6Unsupported));
        assert_eq!(p("-A -u 2001:db8::1"), Err(CliError::Ipv6Unsupported));
        assert_eq!(p("-L -t [::1]:80"), Err(CliError::Ipv6Unsupported));
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r [2001:db8::2]:80"),
            Err(CliError::Ipv6Unsupported)
        );
        // The command/option table is checked first, as in ipvsadm.
        assert_eq!(
            p("-L -t [::1]:80 -s rr"),
            Err(CliError::IllegalOption {
                option: "scheduler",
                command: "list"
            })
        );
        assert_eq!(p("-A -t 10.0.0.100:80 -6"), Err(CliError::Ipv6BeforeFwmark));
    }

    // --- schedulers and forwarding ------------------------------------------

    #[test]
    fn schedulers() {
        for name in UNSUPPORTED_SCHEDULERS {
            assert_eq!(
                p(&format!("-A -t 10.0.0.100:80 -s {name}")),
                Err(CliError::SchedulerUnsupported(name.to_owned())),
                "{name}"
            );
        }
        assert_eq!(
            p("-A -t 10.0.0.100:80 -s fancy"),
            Err(CliError::SchedulerNotFound("fancy".into()))
        );
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r 10.0.0.11 -s rr"),
            Err(CliError::IllegalOption {
                option: "scheduler",
                command: "add-server"
            })
        );
    }

    #[test]
    fn forwarding_methods() {
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r 10.0.0.11 -m"),
            Err(CliError::ForwardingUnsupported("masquerading (-m)"))
        );
        assert_eq!(
            p("-e -t 10.0.0.100:80 -r 10.0.0.11 --ipip"),
            Err(CliError::ForwardingUnsupported("ipip (-i)"))
        );
        assert_eq!(
            p("-a -t 10.0.0.100:80 -r 10.0.0.11 -g -m"),
            Err(CliError::MultipleOptions("forwarding-method"))
        );
        assert_eq!(
            p("-L -m"),
            Err(CliError::IllegalOption {
                option: "forwarding-method",
                command: "list"
            })
        );
    }

    #[test]
    fn unsupported_features() {
        let real = "-a -t 10.0.0.100:80 -r 10.0.0.11";
        assert_eq!(
            p(&format!("{real} -x 10")),
            Err(CliError::Unsupported("thresholds (-x/-y)"))
        );
        assert_eq!(
            p(&format!("{real} --l-threshold 5")),
            Err(CliError::Unsupported("thresholds (-x/-y)"))
        );
        assert_eq!(
            p(&format!("{real} -x -1")),
            Err(CliError::IllegalValue {
                what: "u_threshold"
            })
        );
        assert_eq!(
            p("-A -u 10.0.0.100:53 -o"),
            Err(CliError::Unsupported("one-packet scheduling (-o)"))
        );
        assert_eq!(
            p("-A -u 10.0.0.100:5060 -p --pe sip"),
            Err(CliError::Unsupported("persistence engines (--pe)"))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -b sh-port"),
            Err(CliError::Unsupported("scheduler flags (-b)"))
        );
        assert_eq!(
            p("-A -f 1"),
            Err(CliError::Unsupported("fwmark services (-f)"))
        );
        assert_eq!(
            p("-A -f 1 -6"),
            Err(CliError::Unsupported("fwmark services (-f)"))
        );
        assert_eq!(p("-A -f 0"), Err(CliError::InvalidFwmark("0".into())));
        assert_eq!(
            p("-A --sctp-service 10.0.0.100:80"),
            Err(CliError::Unsupported("SCTP services (--sctp-service)"))
        );
        assert_eq!(p("-L --tun-info"), Err(CliError::Unsupported("--tun-info")));
        assert_eq!(
            p("-L --daemon"),
            Err(CliError::Unsupported("--daemon (sync daemon status)"))
        );
        assert_eq!(
            p(&format!("{real} --tun-type gue")),
            Err(CliError::TunnelOptionsConflict)
        );
        assert_eq!(
            p(&format!("{real} --tun-type foo")),
            Err(CliError::IllegalValue {
                what: "tunnel type"
            })
        );
        assert_eq!(
            p("--start-daemon master"),
            Err(CliError::Unsupported(SYNC_DAEMON))
        );
        assert_eq!(
            p("--stop-daemon backup"),
            Err(CliError::Unsupported(SYNC_DAEMON))
        );
        assert_eq!(
            p("--start-daemon master --syncid 300"),
            Err(CliError::IllegalValue { what: "syncid" })
        );
        assert_eq!(
            p("--start-daemon slave"),
            Err(CliError::IllegalValue {
                what: "start-daemon parameter"
            })
        );
        assert_eq!(
            p("--stop-daemon slave"),
            Err(CliError::IllegalValue {
                what: "start_daemon"
            })
        );
        assert_eq!(
            p("--start-daemon master -n"),
            Err(CliError::IllegalOption {
                option: "numeric",
                command: "start-daemon"
            })
        );
    }

    // --- listing -------------------------------------------------------------

    #[test]
    fn list_variants() {
        let d = ListFormat::default();
        assert_eq!(parse_with(&[], &names()), Ok(list(ListTarget::All, d)));
        assert_eq!(p("-L"), Ok(list(ListTarget::All, d)));
        assert_eq!(p("-l"), Ok(list(ListTarget::All, d)));
        assert_eq!(p("--list"), Ok(list(ListTarget::All, d)));
        assert_eq!(p("-L --sort"), Ok(list(ListTarget::All, d)));
        let n = ListFormat { numeric: true, ..d };
        assert_eq!(p("-L -n"), Ok(list(ListTarget::All, n)));
        assert_eq!(p("-Ln"), Ok(list(ListTarget::All, n)));
        assert_eq!(
            p("-L -n --stats --exact"),
            Ok(list(
                ListTarget::All,
                ListFormat {
                    stats: true,
                    exact: true,
                    ..n
                }
            ))
        );
        assert_eq!(
            p("-L -X"),
            Ok(list(ListTarget::All, ListFormat { exact: true, ..d }))
        );
        assert_eq!(
            p("-L --rate"),
            Ok(list(ListTarget::All, ListFormat { rate: true, ..d }))
        );
        assert_eq!(
            p("-L --thresholds"),
            Ok(list(
                ListTarget::All,
                ListFormat {
                    thresholds: true,
                    ..d
                }
            ))
        );
        assert_eq!(
            p("-L --persistent-conn"),
            Ok(list(
                ListTarget::All,
                ListFormat {
                    persistent_conn: true,
                    ..d
                }
            ))
        );
        assert_eq!(
            p("-L --nosort"),
            Ok(list(ListTarget::All, ListFormat { nosort: true, ..d }))
        );
        assert_eq!(
            p("-L -t 10.0.0.100:80 -n"),
            Ok(list(ListTarget::Service(tcp("10.0.0.100", 80)), n))
        );
        assert_eq!(p("-L -c"), Ok(list(ListTarget::Conns, d)));
        assert_eq!(p("-L -c -n"), Ok(list(ListTarget::Conns, n)));
        assert_eq!(
            p("-L -c --persistent-conn"),
            Ok(list(
                ListTarget::Conns,
                ListFormat {
                    persistent_conn: true,
                    ..d
                }
            ))
        );
        assert_eq!(p("-L --timeout"), Ok(list(ListTarget::Timeouts, d)));
    }

    #[test]
    fn list_conflicts() {
        assert_eq!(p("-L -c --stats"), Err(CliError::ListConflict));
        assert_eq!(p("-L --timeout --rate"), Err(CliError::ListConflict));
        assert_eq!(
            p("-L --timeout --persistent-conn"),
            Err(CliError::ListConflict)
        );
        assert_eq!(
            p("-L -c -t 10.0.0.100:80"),
            Err(CliError::ConflictingOptions {
                option: "service-address",
                other: "connection",
                command: "list"
            })
        );
        assert_eq!(
            p("-L -t 10.0.0.100:80 --timeout"),
            Err(CliError::ConflictingOptions {
                option: "timeout",
                other: "service-address",
                command: "list"
            })
        );
        assert_eq!(
            p("-L -w 1"),
            Err(CliError::IllegalOption {
                option: "weight",
                command: "list"
            })
        );
    }

    #[test]
    fn zero() {
        assert_eq!(p("-Z"), Ok(Command::Zero(None)));
        assert_eq!(
            p("--zero -t 10.0.0.100:80"),
            Ok(Command::Zero(Some(tcp("10.0.0.100", 80))))
        );
        assert_eq!(
            p("-Z -n"),
            Err(CliError::IllegalOption {
                option: "numeric",
                command: "zero"
            })
        );
    }

    #[test]
    fn set_timeouts() {
        assert_eq!(
            p("--set 900 120 300"),
            Ok(Command::SetTimeouts(Timeouts {
                tcp: 900,
                tcpfin: 120,
                udp: 300
            }))
        );
        assert_eq!(
            p("--set 0 0 2678400"),
            Ok(Command::SetTimeouts(Timeouts {
                tcp: 0,
                tcpfin: 0,
                udp: 2_678_400
            }))
        );
        assert_eq!(p("--set 900 120"), Err(CliError::SetNeedsThreeValues));
        assert_eq!(p("--set"), Err(CliError::SetNeedsThreeValues));
        assert_eq!(
            p("--set 900 120 300 5"),
            Err(CliError::UnexpectedArgument("5".into()))
        );
        assert_eq!(
            p("--set 900 x 300"),
            Err(CliError::InvalidTimeout("x".into()))
        );
        assert_eq!(
            p("--set 2678401 0 0"),
            Err(CliError::InvalidTimeout("2678401".into()))
        );
        assert_eq!(
            p("--set 1 2 3 -n"),
            Err(CliError::IllegalOption {
                option: "numeric",
                command: "set"
            })
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(p("-h"), Ok(Command::Help));
        assert_eq!(p("--help"), Ok(Command::Help));
        // ipvsadm prints the usage as soon as -h is the command.
        assert_eq!(p("-h --bogus"), Ok(Command::Help));
        assert_eq!(p("-v"), Ok(Command::Version));
        assert_eq!(p("--version"), Ok(Command::Version));
        assert_eq!(p("version"), Ok(Command::Version));
        assert_eq!(p("help"), Ok(Command::Help));
        assert_eq!(
            p("version now"),
            Err(CliError::UnexpectedArgument("now".into()))
        );
    }

    // --- option syntax errors -------------------------------------------------

    #[test]
    fn option_syntax_errors() {
        assert_eq!(
            p("-L --bogus"),
            Err(CliError::UnknownOption("--bogus".into()))
        );
        assert_eq!(p("--bogus"), Err(CliError::UnknownOption("--bogus".into())));
        assert_eq!(p("-Lq"), Err(CliError::UnknownOption("-Lq".into())));
        // popt: no abbreviations, no single-dash long options.
        assert_eq!(p("--lis"), Err(CliError::UnknownOption("--lis".into())));
        assert_eq!(p("-A -t"), Err(CliError::MissingArgument("-t".into())));
        assert_eq!(
            p("-L --numeric=1"),
            Err(CliError::UnwantedArgument("--numeric=1".into()))
        );
        assert_eq!(p("-L -n=1"), Err(CliError::UnwantedArgument("-n=1".into())));
        assert_eq!(p("-n -L"), Err(CliError::NotACommand("-n".into())));
        assert_eq!(
            p("-t 10.0.0.100:80 -A"),
            Err(CliError::NotACommand("-t".into()))
        );
        assert_eq!(p("-- -L"), Err(CliError::NoCommand));
        assert_eq!(p("-L -A"), Err(CliError::InvalidOption("-A".into())));
        assert_eq!(p("-L -h"), Err(CliError::InvalidOption("-h".into())));
        assert_eq!(p("-L foo"), Err(CliError::UnexpectedArgument("foo".into())));
        assert_eq!(
            p("-A foo -t 10.0.0.100:80"),
            Err(CliError::UnexpectedArgument("foo".into()))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -s rr -s wrr"),
            Err(CliError::MultipleOptions("scheduler"))
        );
        assert_eq!(
            p("-A -t 10.0.0.100:80 -t 10.0.0.100:81"),
            Err(CliError::MultipleOptions("service-address"))
        );
        // A required argument is taken even if it starts with '-'.
        assert_eq!(p("-A -t -s rr"), Err(CliError::IllegalServiceAddress));
        assert_eq!(
            p("frobnicate"),
            Err(CliError::UnknownCommand("frobnicate".into()))
        );
    }

    // --- restore ----------------------------------------------------------------

    fn r(line: &str) -> Result<Option<Command>, CliError> {
        parse_restore_line_with(line, &names())
    }

    #[test]
    fn restore_lines() {
        assert_eq!(r(""), Ok(None));
        assert_eq!(r("   \t "), Ok(None));
        assert_eq!(r("# saved by lbctl"), Ok(None));
        assert_eq!(r("ipvsadm"), Ok(None));
        assert_eq!(
            r("-A -t 10.0.0.100:80 -s rr   # web"),
            Ok(Some(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                Sched::Rr,
                None,
                ALL
            ))))
        );
        assert_eq!(
            r("ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 2"),
            Ok(Some(Command::AddReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 2)
            }))
        );
        assert_eq!(r("lbctl -C"), Ok(Some(Command::Clear)));
        assert_eq!(
            r("\t-D\t-t 10.0.0.100:80\r"),
            Ok(Some(Command::DeleteService(tcp("10.0.0.100", 80))))
        );
        assert_eq!(
            r("-e -t 10.0.0.100:80 -r 10.0.0.11 -w 0"),
            Ok(Some(Command::EditReal {
                service: tcp("10.0.0.100", 80),
                real: real("10.0.0.11", 80, 0)
            }))
        );
        assert_eq!(
            r("-d -t 10.0.0.100:80 -r 10.0.0.11"),
            Ok(Some(Command::DeleteReal {
                service: tcp("10.0.0.100", 80),
                real: RealId {
                    addr: ip("10.0.0.11"),
                    port: 80
                }
            }))
        );
        assert_eq!(
            r("-E -t 10.0.0.100:80 -p"),
            Ok(Some(Command::EditService(spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                Some(300),
                ALL
            ))))
        );
        assert_eq!(r("-A -t 10.0.0.100"), Err(CliError::ZeroPort));
    }

    #[test]
    fn restore_refuses_other_commands() {
        for (line, word) in [
            ("-L", "-L"),
            ("-Ln", "-Ln"),
            ("-R", "-R"),
            ("-S", "-S"),
            ("-Z", "-Z"),
            ("--set 1 2 3", "--set"),
            ("-h", "-h"),
            ("-v", "-v"),
        ] {
            assert_eq!(
                r(line),
                Err(CliError::NotAllowedInRestore(word.into())),
                "{line}"
            );
        }
        // lbctl words are not ipvsadm commands.
        assert_eq!(r("attach eth0"), Err(CliError::NoCommand));
    }

    #[test]
    fn saved_table_restores_to_the_same_commands() {
        let web = ServiceView {
            spec: spec(
                tcp("10.0.0.100", 80),
                Sched::Wrr,
                Some(300),
                "255.255.255.0",
            ),
            stats: Stats::default(),
            rates: Default::default(),
            reals: vec![crate::model::RealView {
                spec: real("10.0.0.11", 80, 7),
                active_conns: 0,
                inactive_conns: 0,
                persist_conns: 0,
                stats: Stats::default(),
                rates: Default::default(),
            }],
        };
        let dns = ServiceView {
            spec: spec(udp("10.0.0.100", 53), Sched::Rr, None, ALL),
            stats: Stats::default(),
            rates: Default::default(),
            reals: Vec::new(),
        };
        for numeric in [true, false] {
            let saved = crate::format::save_with(&[web.clone(), dns.clone()], numeric, &names());
            let cmds: Vec<Command> = saved.lines().map(|l| r(l).unwrap().unwrap()).collect();
            assert_eq!(
                cmds,
                vec![
                    Command::AddService(web.spec),
                    Command::AddReal {
                        service: web.spec.id,
                        real: web.reals[0].spec
                    },
                    Command::AddService(dns.spec),
                ],
                "{saved}"
            );
        }
    }

    // --- lbctl words ------------------------------------------------------------

    #[test]
    fn attach_and_detach() {
        assert_eq!(
            p("attach eth0"),
            Ok(Command::Attach {
                iface: "eth0".into(),
                mode: XdpMode::Native,
                conns: None,
                templates: None,
                reset: false,
            })
        );
        assert_eq!(
            p("attach eth0 --mode native"),
            Ok(Command::Attach {
                iface: "eth0".into(),
                mode: XdpMode::Native,
                conns: None,
                templates: None,
                reset: false,
            })
        );
        assert_eq!(
            p("attach --mode=generic veth-lb0"),
            Ok(Command::Attach {
                iface: "veth-lb0".into(),
                mode: XdpMode::Generic,
                conns: None,
                templates: None,
                reset: false,
            })
        );
        assert_eq!(
            p("attach eth0 --conns 65536 --templates=4096 --reset"),
            Ok(Command::Attach {
                iface: "eth0".into(),
                mode: XdpMode::Native,
                conns: Some(65536),
                templates: Some(4096),
                reset: true,
            })
        );
        assert!(p("attach eth0 --conns 12").is_err());
        assert!(p("attach eth0 --conns 1e6").is_err());
        assert!(p("attach eth0 --templates").is_err());
        assert_eq!(
            p("attach eth0 --conns 4096 --conns 4096"),
            Err(CliError::MultipleOptions("conns"))
        );
        assert_eq!(p("attach"), Err(CliError::Usage(ATTACH_USAGE)));
        assert_eq!(
            p("attach eth0 --mode"),
            Err(CliError::MissingArgument("--mode".into()))
        );
        assert_eq!(
            p("attach eth0 --mode skb"),
            Err(CliError::InvalidXdpMode("skb".into()))
        );
        assert_eq!(
            p("attach eth0 --mode native --mode generic"),
            Err(CliError::MultipleOptions("mode"))
        );
        assert_eq!(
            p("attach eth0 eth1"),
            Err(CliError::UnexpectedArgument("eth1".into()))
        );
        assert_eq!(
            p("attach eth0 --force"),
            Err(CliError::UnknownOption("--force".into()))
        );
        assert_eq!(
            p("attach a/b"),
            Err(CliError::InvalidInterface("a/b".into()))
        );
        assert_eq!(
            p("attach 0123456789abcdef"),
            Err(CliError::InvalidInterface("0123456789abcdef".into()))
        );
        assert!(p("attach 0123456789abcde").is_ok());
        assert_eq!(
            p("detach eth0"),
            Ok(Command::Detach {
                iface: "eth0".into()
            })
        );
        assert_eq!(p("detach"), Err(CliError::Usage(DETACH_USAGE)));
        assert_eq!(
            p("detach eth0 eth1"),
            Err(CliError::UnexpectedArgument("eth1".into()))
        );
        assert_eq!(p("detach .."), Err(CliError::InvalidInterface("..".into())));
    }

    #[test]
    fn sysctl_word() {
        let set = |k, v| Ok(Command::Sysctl(SysctlCmd::Set(k, v)));
        assert_eq!(p("sysctl"), Ok(Command::Sysctl(SysctlCmd::List)));
        assert_eq!(
            p("sysctl expire_nodest_conn=1"),
            set(Sysctl::ExpireNodestConn, 1)
        );
        assert_eq!(
            p("sysctl expire_quiescent_template=0"),
            set(Sysctl::ExpireQuiescentTemplate, 0)
        );
        assert_eq!(
            p("sysctl net.ipv4.vs.conn_reuse_mode=3"),
            set(Sysctl::ConnReuseMode, 3)
        );
        assert_eq!(
            p("sysctl net/ipv4/vs/conn_reuse_mode=0"),
            set(Sysctl::ConnReuseMode, 0)
        );
        assert_eq!(
            p("sysctl net.ipv4.vs.expire_nodest_conn"),
            Ok(Command::Sysctl(SysctlCmd::Show(Sysctl::ExpireNodestConn)))
        );
        let invalid = |name, value: &str, expected| {
            Err(CliError::InvalidSysctlValue {
                name,
                value: value.into(),
                expected,
            })
        };
        assert_eq!(
            p("sysctl conn_reuse_mode=4"),
            invalid("conn_reuse_mode", "4", "0, 1, 2 or 3")
        );
        assert_eq!(
            p("sysctl expire_nodest_conn=2"),
            invalid("expire_nodest_conn", "2", "0 or 1")
        );
        assert_eq!(
            p("sysctl expire_nodest_conn=-1"),
            invalid("expire_nodest_conn", "-1", "0 or 1")
        );
        assert_eq!(
            p("sysctl expire_nodest_conn="),
            invalid("expire_nodest_conn", "", "0 or 1")
        );
        assert_eq!(
            p("sysctl expire_quiescent_template=yes"),
            invalid("expire_quiescent_template", "yes", "0 or 1")
        );
        assert_eq!(
            p("sysctl amemthresh=1024"),
            Err(CliError::UnknownSysctl("amemthresh".into()))
        );
        assert_eq!(
            p("sysctl expire_nodest_conn=1 conn_reuse_mode=0"),
            Err(CliError::UnexpectedArgument("conn_reuse_mode=0".into()))
        );
        assert_eq!(p("sysctl -a"), Err(CliError::Usage(SYSCTL_USAGE)));
    }

    // --- resolver, messages, usage ------------------------------------------------

    #[test]
    fn resolver_lookups() {
        let n = names();
        assert_eq!(n.host_addr("vip"), Some(ip("10.0.0.100")));
        assert_eq!(n.host_addr("vip.EXAMPLE.com"), Some(ip("10.0.0.100")));
        assert_eq!(n.host_addr("rs1"), Some(ip("10.0.0.11")));
        assert_eq!(n.host_addr("v6host"), None);
        assert_eq!(n.host_addr("the"), None, "comment words are not names");
        assert_eq!(n.host_name(ip("10.0.0.100")), Some("vip.example.com"));
        assert_eq!(n.host_name(ip("10.0.0.111")), Some("rs1"));
        assert_eq!(n.host_name(ip("10.0.0.12")), None);
        assert_eq!(n.service_port("www", Proto::Tcp), Some(80));
        assert_eq!(n.service_port("http", Proto::Udp), None);
        assert_eq!(n.service_port("HTTP", Proto::Tcp), None);
        assert_eq!(n.service_port("bogus", Proto::Tcp), None);
        assert_eq!(n.service_name(53, Proto::Udp), Some("domain"));
        assert_eq!(n.service_name(123, Proto::Tcp), None);
        assert_eq!(Resolver::new().host_addr("localhost"), None);
    }

    #[test]
    fn messages() {
        let msg = |s: &str| p(s).unwrap_err().to_string();
        assert_eq!(
            msg("-A -t 10.0.0.100"),
            "Zero port specified for non-persistent service"
        );
        assert_eq!(
            msg("-D -t 10.0.0.100:80 -w 1"),
            "Illegal 'weight' option with the 'delete-service' command"
        );
        assert_eq!(
            msg("-a -t 10.0.0.100:80"),
            "You need to supply the 'real-server' option for the 'add-server' command"
        );
        assert_eq!(
            msg("-L -c -t 10.0.0.100:80"),
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            msg("-A -t 10.0.0.100:80 -p 0"),
            "invalid timeout value `0' specified"
        );
        assert_eq!(
            msg("-A -t 10.0.0.1:80 -s lc"),
            "scheduler lc is not supported yet (supported: rr, wrr)"
        );
        assert_eq!(
            msg("-A -t 10.0.0.1:80 -s xx"),
            "Scheduler or persistence engine not found"
        );
        assert_eq!(
            msg("-a -t 10.0.0.1:80 -r 10.0.0.2 -m"),
            "forwarding method masquerading (-m) is not supported yet; only direct routing (-g)"
        );
        assert_eq!(msg("-A -t [::1]:80"), "IPv6 is not supported yet");
        assert_eq!(msg("-A -f 1"), "fwmark services (-f) is not supported yet");
        assert_eq!(
            msg("-A -t x"),
            "illegal virtual server address[:port] specified"
        );
        assert_eq!(
            msg("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536"),
            "illegal weight specified"
        );
        assert_eq!(msg("-L --bogus"), "--bogus: unknown option");
        assert_eq!(msg("--set 1"), "--set option requires 3 timeout values");
        assert_eq!(msg("-L x"), "unexpected argument x");
        assert_eq!(msg("-L -c --rate"), "options conflicts in the list command");
        assert_eq!(msg("-L -L"), "invalid option `-L'");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(p("-L --bogus").unwrap_err().exit_code(), 255);
        assert_eq!(p("-n").unwrap_err().exit_code(), 255);
        assert_eq!(p("-A -t 10.0.0.100").unwrap_err().exit_code(), 2);
        assert_eq!(p("-C -n").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn usage_lists_what_is_supported() {
        let u = usage();
        assert!(u.starts_with("lbctl v"), "{u}");
        for needle in [
            "-A|E virtual-service",
            "--tcp-service|-t",
            "--udp-service|-u",
            "--scheduler    -s",
            "one of rr|wrr",
            "the default scheduler is wrr.",
            "--persistent   -p [timeout]",
            "--gatewaying   -g",
            "--weight       -w",
            "--set tcp tcpfin udp",
            "--persistent-conn",
            "attach IFACE [--mode native|generic] [--conns N] [--templates N] [--reset]",
            "detach IFACE",
            "sysctl NAME[=VALUE]",
            "conn_reuse_mode (0-3)",
        ] {
            assert!(u.contains(needle), "usage lacks {needle:?}");
        }
        for absent in [
            "--masquerading",
            "--ipip",
            "--fwmark-service",
            "--start-daemon",
            "wlc",
            "--pe ",
        ] {
            assert!(!u.contains(absent), "usage mentions unsupported {absent:?}");
        }
        assert!(u.lines().all(|l| l.len() <= 100), "overlong line in usage");
    }

    #[test]
    fn option_table_rows_are_well_formed() {
        // Every row has one rule per option, and the commands that take a
        // service require it.
        for cmd in [
            Cmd::Add,
            Cmd::Edit,
            Cmd::Del,
            Cmd::AddDest,
            Cmd::EditDest,
            Cmd::DelDest,
        ] {
            assert_eq!(cmd.row()[Opt::Service as usize], b'+', "{cmd:?}");
        }
        assert_eq!(Cmd::List.row()[Opt::Connection as usize], b'1');
        assert_eq!(OPT_NAMES[Opt::TunRemCsum as usize], "tun-remcsum");
    }
    #[test]
    fn daemon_words() {
        let d = |s: &str| parse_with(&words(s), &Resolver::new());
        assert_eq!(
            d("daemon /etc/ha.d/ldirectord.cf"),
            Ok(Command::Daemon {
                foreground: false,
                config: "/etc/ha.d/ldirectord.cf".into(),
                metrics: None,
                metrics_public: false,
            })
        );
        assert_eq!(
            d("daemon --foreground --metrics 127.0.0.1:9469 lb.cf"),
            Ok(Command::Daemon {
                foreground: true,
                config: "lb.cf".into(),
                metrics: Some("127.0.0.1:9469".parse().unwrap()),
                metrics_public: false,
            })
        );
        assert_eq!(
            d("daemon lb.cf --metrics=[::1]:9469 --metrics-public -d start"),
            Ok(Command::Daemon {
                foreground: true,
                config: "lb.cf".into(),
                metrics: Some("[::1]:9469".parse().unwrap()),
                metrics_public: true,
            })
        );
        assert_eq!(
            d("daemon-status"),
            Ok(Command::DaemonStatus { config: None })
        );
        assert_eq!(
            d("daemon status"),
            Ok(Command::DaemonStatus { config: None })
        );
        assert_eq!(
            d("daemon lb.cf status"),
            Ok(Command::DaemonStatus {
                config: Some("lb.cf".into())
            })
        );
        assert_eq!(
            d("daemon-status lb.cf"),
            Ok(Command::DaemonStatus {
                config: Some("lb.cf".into())
            })
        );
        assert_eq!(d("daemon"), Err(CliError::Usage(DAEMON_USAGE)));
        assert_eq!(
            d("daemon --metrics localhost:9469 lb.cf"),
            Err(CliError::InvalidMetricsAddress("localhost:9469".into()))
        );
        assert_eq!(
            d("daemon --metrics"),
            Err(CliError::MissingArgument("--metrics".into()))
        );
        assert_eq!(
            d("daemon --metrics-public lb.cf"),
            Err(CliError::Usage(DAEMON_USAGE))
        );
        assert_eq!(
            d("daemon --bogus lb.cf"),
            Err(CliError::UnknownOption("--bogus".into()))
        );
        assert_eq!(
            d("daemon lb.cf reload"),
            Err(CliError::DaemonAction("reload".into()))
        );
        assert_eq!(
            d("daemon lb.cf status x"),
            Err(CliError::UnexpectedArgument("x".into()))
        );
        assert_eq!(
            d("daemon-status a b"),
            Err(CliError::UnexpectedArgument("b".into()))
        );
        assert_eq!(
            d("daemon --metrics 127.0.0.1:1 status"),
            Err(CliError::Usage(DAEMON_USAGE))
        );
    }
}

//! `CliError`: ipvsadm's messages and exit codes, and lbctl's own.

use std::net::{IpAddr, Ipv4Addr};

use clap::error::ErrorKind;
/// Why a command line (or a `-R` line) was refused. `Display` gives the
/// message; [`CliError::render`] the text to print, as ipvsadm prints its own
/// errors (no prefix, docs/SEMANTICS.md §8.6) or, for lbctl's own, after
/// `lbctl: `.
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
    /// Only non-option words and no command: ipvsadm's `tryhelp_exit`,
    /// whose text names the program ([`CliError::render`]).
    #[error("Try `lbctl -h' or 'lbctl --help' for more information.")]
    NoCommand,
    /// The first option is not a command (ipvsadm needs the command first):
    /// ipvsadm's `tryhelp_exit` too.
    #[error("Try `lbctl -h' or 'lbctl --help' for more information.")]
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
    /// `lbctl whereis`'s client.
    #[error("illegal client address[:port] specified")]
    IllegalClientAddress,
    #[error("illegal virtual server persistent mask specified")]
    IllegalNetmask,
    /// lbctl only: ipvsadm passes such masks on; they make no sense.
    #[error("persistent mask {0} is not contiguous")]
    NonContiguousNetmask(Ipv4Addr),
    #[error("illegal weight specified")]
    IllegalWeight,
    /// Other `illegal <what> specified` errors of ipvsadm (`u_threshold`,
    /// `l_threshold`, `syncid`, `tunnel port`, ...), and of lbctl's words'
    /// values.
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
    /// `-A`/`-E -o` on a TCP service (ipvsadm allows it on UDP and fwmark
    /// services only).
    #[error("One-Packet Scheduling is only for UDP virtual services")]
    OnePacketNotUdp,
    /// A `--tun-*` option with `-g` or `-m` (or no method).
    #[error("Tunnel options conflict with forward method")]
    TunnelOptionsConflict,
    /// `-i --tun-type gue` without `--tun-port` (ipvsadm's
    /// `tunnel_opt_check`).
    #[error("You need to supply the '{option}' option for the '{tunnel}' tunnel type")]
    MissingTunnelOption {
        option: &'static str,
        tunnel: &'static str,
    },
    /// A `--tun-*` option the tunnel type does not take (`--tun-port` with
    /// ipip or gre, a checksum option with ipip, `--tun-remcsum` with gre).
    #[error("Illegal '{option}' option with the '{tunnel}' tunnel type")]
    IllegalTunnelOption {
        option: &'static str,
        tunnel: &'static str,
    },
    /// Two checksum options (`option` the later in ipvsadm's column order).
    #[error(
        "The option '{option}' conflicts with the '{other}' option in the '{tunnel}' tunnel type"
    )]
    ConflictingTunnelOptions {
        option: &'static str,
        other: &'static str,
        tunnel: &'static str,
    },
    /// ipvsadm's message ends in its own newline, so a blank line follows.
    #[error("-6 used before -f\n")]
    Ipv6BeforeFwmark,
    /// `-M` of an IPv6 service: not a prefix length 1 to 128.
    #[error("illegal ipv6 netmask specified")]
    IllegalIpv6Netmask,
    /// `-a`/`-e` of a real server of the other family than its service's
    /// (ipvsadm allows it with `-i` only).
    #[error("Different address family is allowed only for tunneling servers")]
    DifferentFamily,
    /// An IPv4-mapped IPv6 address as a service's or real's.
    #[error(transparent)]
    Addr(#[from] crate::addr::AddrError),
    /// A known IPVS scheduler that lbctl does not implement yet.
    #[error(
        "scheduler {0} is not supported yet (supported: {supported})",
        supported = crate::model::supported_names()
    )]
    SchedulerUnsupported(String),
    /// A scheduler name IPVS does not know: the kernel's ENOENT, which
    /// ipvsadm prints as libipvs words it and exits 255; in `-R` input the
    /// line fails when it is applied, as in ipvsadm.
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound(String),
    /// `-b` names a flag ipvsadm does not know.
    #[error("invalid scheduler flag `{0}'")]
    InvalidSchedFlag(String),
    /// `-b` names another scheduler's flag (`sh-port` without `-s sh`).
    #[error("incompatible scheduler flag `{0}'")]
    IncompatibleSchedFlag(String),
    /// `-a`/`-e` of a loopback or unspecified real server: IPVS serves it on the director
    /// (`Local`, e.g. ldirectord's `fallback=127.0.0.1:80`); lbctl cannot. The same words
    /// as the table's refusal of the director's other addresses.
    #[error("{}", crate::neigh::local_error(*.0))]
    LocalReal(IpAddr),
    /// Any other ipvsadm feature that lbctl does not implement yet.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// A command other than -A -E -D -a -e -d -C in `-R` input.
    #[error(
        "`{0}' is not allowed in restore input (only -A, -E, -D, -a, -e, -d, -C and `fwmark add|del' are)"
    )]
    NotAllowedInRestore(String),
    /// Wrong use of an lbctl word (or a mistyped one), as clap reports it:
    /// the message, the word's usage and clap's tips (a similar word or
    /// option), without clap's leading `error: `.
    #[error("{message}")]
    Word { kind: ErrorKind, message: String },
    #[error("invalid interface name `{0}'")]
    InvalidInterface(String),
    #[error(
        "unknown sysctl `{0}' (known: expire_nodest_conn, expire_quiescent_template, \
         conn_reuse_mode, pmtu_disc, nat_icmp_send)"
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
    /// errors (popt errors and "try -h", and clap's errors about lbctl's
    /// words) and for the kernel's refusal of an unknown scheduler
    /// (`process_options` returns -1), 2 for everything ipvsadm reports
    /// through `fail()`.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::UnknownOption(_)
            | CliError::MissingArgument(_)
            | CliError::UnwantedArgument(_)
            | CliError::NoCommand
            | CliError::NotACommand(_)
            | CliError::SchedulerNotFound(_)
            | CliError::NotAllowedInRestore(_)
            | CliError::Word { .. } => 255,
            _ => 2,
        }
    }

    /// Whether ipvsadm has this error, with this text: it is then printed
    /// as ipvsadm prints it, without a prefix. lbctl's own errors (its
    /// words, and the features it does not implement) are not.
    pub fn is_ipvsadms(&self) -> bool {
        !matches!(
            self,
            CliError::IllegalClientAddress
                | CliError::NonContiguousNetmask(_)
                | CliError::Addr(_)
                | CliError::SchedulerUnsupported(_)
                | CliError::LocalReal(_)
                | CliError::Unsupported(_)
                | CliError::NotAllowedInRestore(_)
                | CliError::Word { .. }
                | CliError::InvalidInterface(_)
                | CliError::UnknownSysctl(_)
                | CliError::InvalidSysctlValue { .. }
                | CliError::InvalidMetricsAddress(_)
                | CliError::DaemonAction(_)
        )
    }

    /// The text to print on standard error for a command line run as
    /// `program` (its `argv[0]`, which ipvsadm's "Try" line names), with
    /// its newline: ipvsadm's errors as ipvsadm prints them, lbctl's own
    /// after `lbctl: `.
    pub fn render(&self, program: &str) -> String {
        match self {
            CliError::NoCommand | CliError::NotACommand(_) => {
                format!("Try `{program} -h' or '{program} --help' for more information.\n")
            }
            e if e.is_ipvsadms() => format!("{e}\n"),
            e => format!("lbctl: {e}\n"),
        }
    }

    /// A [`CliError::Word`] from clap's rendered error text.
    pub(super) fn word(kind: ErrorKind, rendered: &str) -> CliError {
        let message = rendered.strip_prefix("error: ").unwrap_or(rendered);
        CliError::Word {
            kind,
            message: message.trim_end().to_owned(),
        }
    }
}

//! The `lbctl` command line: ipvsadm 1.31's syntax, option for option, plus
//! lbctl's own words (`attach`, `detach`, `sysctl`, `counters`, `daemon`,
//! `daemon-status`, `drain`, `whereis`, `decap`, `version`, `help`, `completions`),
//! which clap reads: a
//! first argument that starts with `-` is ipvsadm's, any other is a word.
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
//!   port, a real's port by method, family, tunnel options, list conflicts),
//!   with ipvsadm's own messages;
//! * features that ipvsadm has and lbctl does not yet (SCTP services, the
//!   sync daemon, ...) are
//!   accepted by the parser as ipvsadm accepts them and then refused with a
//!   clear "not supported yet" error, after the command/option table check, so
//!   that misplaced options still get ipvsadm's "Illegal ..." message.
//!
//! Host and port names are looked up in `/etc/hosts` and `/etc/services` only
//! (never DNS), through a [`Resolver`] that tests build from text.
//!
//! The rooms: this file has the [`Command`] types and the entry points;
//! `popt` reads options as popt does, over ipvsadm's option table in
//! `options` (with its command/option check); `ipvsadm` is ipvsadm's
//! `process_options`, using the value parsers of `values`; `errors` has
//! [`CliError`] with ipvsadm's messages and exit codes; `words` reads lbctl's
//! own words with clap; `manual` makes the completion scripts and the man
//! page from the words and the option table; `restore` reads `-R`'s
//! standard input, line by line within bounds. Names are looked up through
//! `crate::resolve`, a leaf: nothing here is used by `format` or `resolve`.

mod errors;
mod ipvsadm;
mod manual;
mod options;
mod outcome;
mod popt;
mod restore;
mod values;
mod words;

#[cfg(test)]
mod tests;

use crate::format::ListFormat;
use crate::model::{RealId, RealSpec, Sched, ServiceId, ServiceSpec, Timeouts};
use crate::resolve::{Resolver, uncomment};
pub use errors::CliError;
use ipvsadm::parse_ipvsadm;
pub use manual::{completions, manpage};
pub use outcome::{Failure, Op, Step, chain, failure, ipvs_strerror, restore};
pub use restore::{MAX_RESTORE_LINE, RestoreError, read_restore};
use words::parse_word;

pub use lb_common::MAX_TIMEOUT;

/// Timeout that `-p` without a value gives, in seconds.
///
/// 300, as ipvsadm's man page and our specification say. Note: ipvsadm's code
/// uses libipvs.h's `IPVS_SVC_PERSISTENT_TIMEOUT`, which is `(6*60)`, so a
/// real `ipvsadm -A -t ... -p` lists `persistent 360`; the README says so.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 300;

/// Scheduler used when `-A`/`-E` has no `-s`: ipvsadm's `DEF_SCHED`, wlc.
/// As in ipvsadm, `-E` without `-s` also resets the scheduler to it.
pub const DEFAULT_SCHED: Sched = crate::model::DEFAULT_SCHEDULER;

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
    /// `-e`: edit a real server; omitted `-w` resets the weight to 1, and
    /// omitted `-x`/`-y` the thresholds to 0 (ipvsadm re-sends them all).
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
    /// `-h`, `--help`, `lbctl help`: print [`usage`] (ipvsadm's help first).
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
        services: Option<u32>,
        reals: Option<u32>,
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
    /// `lbctl WORD --help`, `lbctl help WORD`: text to print on stdout as it
    /// is (exit 0).
    Print(String),
    /// `lbctl completions bash|zsh|fish`: print [`completions`]'s script.
    Completions(Shell),
    /// `lbctl manpage` (hidden): print [`manpage`]'s lbctl(8).
    Manpage,
    /// `lbctl drain -t|-u VIP:PORT -r RIP[:PORT] [--timeout S] [--remove]
    /// [--inactive]`: quiesce the real and wait for its connections to end.
    Drain(crate::drain::DrainSpec),
    /// `lbctl fwmark [list]`, `lbctl fwmark add|del RULE`: the fwmark
    /// classifier's rules.
    Fwmark(FwmarkCmd),
    /// `lbctl decap attach|detach|status`: the real servers' decapsulator.
    Decap(crate::decap::DecapCmd),
    /// `lbctl whereis -t|-u VIP:PORT CLIENT[:PORT]`: where a new connection
    /// of the client would go now, and why.
    Whereis {
        service: ServiceId,
        client: std::net::IpAddr,
        port: Option<u16>,
    },
}

/// `lbctl fwmark ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwmarkCmd {
    /// `lbctl fwmark`, `lbctl fwmark list`: the rules, as `add` lines.
    List,
    /// `lbctl fwmark add RULE`.
    Add(crate::fwmark::FwmarkRule),
    /// `lbctl fwmark del RULE`.
    Del(crate::fwmark::FwmarkRule),
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum XdpMode {
    /// Driver (native) XDP.
    Native,
    /// Generic (skb) XDP, works on any interface.
    Generic,
}

/// The shells of `lbctl completions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The `net.ipv4.vs.*` knobs that lbctl implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sysctl {
    ExpireNodestConn,
    ExpireQuiescentTemplate,
    ConnReuseMode,
    /// `pmtu_disc`: 1 (the default) answers a tunnelled packet too big for
    /// the path with ICMP "fragmentation needed" when it has DF set.
    PmtuDisc,
    /// `nat_icmp_send`: 1 answers a masqueraded reply without a connection
    /// with ICMP port unreachable (0, the default, forwards it unchanged).
    NatIcmpSend,
}

impl Sysctl {
    /// All knobs, in listing order.
    pub const ALL: [Sysctl; 5] = [
        Sysctl::ConnReuseMode,
        Sysctl::ExpireNodestConn,
        Sysctl::ExpireQuiescentTemplate,
        Sysctl::NatIcmpSend,
        Sysctl::PmtuDisc,
    ];

    /// The name without the `net.ipv4.vs.` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Sysctl::ExpireNodestConn => "expire_nodest_conn",
            Sysctl::ExpireQuiescentTemplate => "expire_quiescent_template",
            Sysctl::ConnReuseMode => "conn_reuse_mode",
            Sysctl::PmtuDisc => "pmtu_disc",
            Sysctl::NatIcmpSend => "nat_icmp_send",
        }
    }

    /// Largest accepted value (the smallest is 0).
    pub fn max(self) -> u32 {
        match self {
            Sysctl::ExpireNodestConn
            | Sysctl::ExpireQuiescentTemplate
            | Sysctl::PmtuDisc
            | Sysctl::NatIcmpSend => 1,
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
            Sysctl::ExpireNodestConn
            | Sysctl::ExpireQuiescentTemplate
            | Sysctl::PmtuDisc
            | Sysctl::NatIcmpSend => "0 or 1",
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
        // A word (or a mistyped one) goes to clap; options to ipvsadm's popt.
        Some(word) if !word.starts_with('-') => parse_word(args, names),
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
    // `-S` saves the fwmark classifier's rules as `fwmark add` lines.
    if words[0] == "fwmark" {
        return match parse_word(&words, names)? {
            c @ Command::Fwmark(FwmarkCmd::Add(_) | FwmarkCmd::Del(_)) => Ok(Some(c)),
            _ => Err(CliError::NotAllowedInRestore(words.join(" "))),
        };
    }
    parse_ipvsadm(&words, names, true).map(Some)
}

/// ipvsadm 1.31's version line, the first line of `--version` and `-h`.
pub const IPVSADM_VERSION_LINE: &str =
    "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n";

/// `lbctl -v` / `--version` / `lbctl version`: ipvsadm's line, then lbctl's.
pub fn version_text() -> String {
    format!(
        "{IPVSADM_VERSION_LINE}lbctl v{}: ipvsadm v1.31's commands and listings for the XDP \
         load balancer\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// ipvsadm 1.31's `-h` text after its version line, byte for byte, with
/// `%s` where it prints its `argv[0]`.
const IPVSADM_USAGE: &str = "\
Usage:
  %s -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  %s -D virtual-service
  %s -C
  %s -R
  %s -S [-n]
  %s -a|e virtual-service -r server-address [options]
  %s -d virtual-service -r server-address
  %s -L|l [virtual-service] [options]
  %s -Z [virtual-service]
  %s --set tcp tcpfin udp
  %s --start-daemon {master|backup} [daemon-options]
  %s --stop-daemon {master|backup}
  %s -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
";

/// The forms of lbctl's command line it implements (the man page's
/// synopsis, and lbctl's part of `-h`).
const LBCTL_FORMS: &str =
    "  lbctl -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  lbctl -D virtual-service
  lbctl -C
  lbctl -R
  lbctl -S [-n]
  lbctl -a|e virtual-service -r server-address [-g|i|m] [-w weight] [-x upper] [-y lower]
      [--tun-type ipip|gue|gre] [--tun-port port] [--tun-nocsum|--tun-csum|--tun-remcsum]
  lbctl -d virtual-service -r server-address
  lbctl -L|l [virtual-service] [options]
  lbctl -Z [virtual-service]
  lbctl --set tcp tcpfin udp
  lbctl -h|--help
  lbctl -v|--version
  lbctl attach IFACE [--mode native|generic] [--conns N] [--templates N]
      [--services N] [--reals N] [--reset]
  lbctl detach IFACE
  lbctl sysctl [NAME[=VALUE]]
  lbctl counters
  lbctl daemon [--foreground] [--metrics ADDR:PORT [--metrics-public]] CONFIG
  lbctl daemon-status [CONFIG]
  lbctl drain -t|u service-address -r server-address [--timeout S] [--remove] [--inactive]
  lbctl whereis -t|u service-address client-address[:port]
  lbctl version
  lbctl completions bash|zsh|fish
";

/// [`LBCTL_FORMS`].
pub(crate) fn lbctl_forms() -> &'static str {
    LBCTL_FORMS
}

/// `lbctl -h` as run as `program` (its `argv[0]`): ipvsadm 1.31's help as
/// ipvsadm prints it, then what lbctl adds and leaves out, and its own
/// words.
pub fn usage(program: &str) -> String {
    let mut s = String::from(IPVSADM_VERSION_LINE);
    s.push_str(&IPVSADM_USAGE.replace("%s", program));
    s.push('\n');
    s.push_str(&version_text()[IPVSADM_VERSION_LINE.len()..]);
    s.push_str(
        "It implements the commands and options above for IPv4 and IPv6 TCP, UDP and\n\
         fwmark services (-f, -6, marks given by `lbctl fwmark') with direct routing\n\
         (-g), tunnelling (-i with --tun-type ipip|gue|gre and the --tun-* options;\n\
         real servers decapsulate with `lbctl decap' or the kernel's modules) and\n\
         masquerading (-m), and also the scheduler twos, -X for --exact and\n\
         -v|--version. Not implemented (refused with an error, nothing changes):\n\
         --sctp-service, --pe, the sync daemon (--start-daemon, --stop-daemon,\n\
         --daemon and its options), and -b's flag-1..flag-3 (sh and mh take\n\
         sh-fallback,sh-port and mh-fallback,mh-port).\n\
         \n\
         Usage:\n",
    );
    s.push_str(LBCTL_FORMS);
    s.push('\n');
    s.push_str(
        "lbctl commands:\n\
         \x20 attach IFACE [--mode native|generic] [--conns N] [--templates N]\n\
         \x20     [--services N] [--reals N] [--reset]\n\
         \x20                             attach the load balancer to IFACE (default: native)\n\
         \x20 detach IFACE                detach the load balancer from IFACE\n\
         \x20 sysctl                      list the net.ipv4.vs.* settings\n\
         \x20 sysctl NAME[=VALUE]         show or set one of them: expire_nodest_conn (0|1),\n\
         \x20                             expire_quiescent_template (0|1), conn_reuse_mode (0-3),\n\
         \x20                             pmtu_disc (0|1), nat_icmp_send (0|1)\n\
         \x20 daemon CONFIG               check real servers as ldirectord does with CONFIG (an\n\
         \x20                             ldirectord.cf) and keep the table in step; SIGHUP reloads\n\
         \x20 daemon-status [CONFIG]      health of each real server as the daemon last saw it\n\
         \x20 drain -t|u VIP:PORT -r RIP  quiesce a real server (weight 0) and wait until its\n\
         \x20     [--timeout S] [--remove]  ActiveConn (with --inactive, InActConn too) is 0;\n\
         \x20     [--inactive]            exit 3 on timeout; --remove deletes it when drained\n\
         \x20 whereis -t|u VIP:PORT CLIENT[:PORT]\n\
         \x20                             where a new connection of CLIENT would go now, and why\n\
         \x20 fwmark [list]               the fwmark classifier's rules, as `fwmark add' lines\n\
         \x20 fwmark add|del -p tcp|udp -d ADDR[/PLEN] [--dport PORT[:PORT]] --set-mark MARK\n\
         \x20                             add or delete a rule giving such packets MARK (-f MARK)\n\
         \x20 decap attach IFACE [--vip ADDR]... [--gue-port N] [--mode native|generic]\n\
         \x20                             on a real server: strip the director's IPIP, GUE and\n\
         \x20                             GRE headers (-i) on IFACE, as tunl0/fou/gre0 would\n\
         \x20 decap detach IFACE          detach the decapsulator from IFACE\n\
         \x20 decap status                its interfaces, settings and counters\n\
         \x20 version                     display the version\n\
         \x20 completions SHELL           print a completion script for bash, zsh or fish\n\
         \x20 help [WORD]                 display this help message, or WORD's (also WORD --help)\n",
    );
    s
}

//! lbctl's own words (`attach`, `detach`, `sysctl`, `counters`, `daemon`,
//! `daemon-status`, `decap`, `drain`, `whereis`, `fwmark`, `version`, `help`, `completions`), on clap: each has
//! `--help`, and a mistyped word or option gets clap's "similar ... exists"
//! tip. Values are checked by lbctl's own parsers, so a bad interface name,
//! table size, sysctl or metrics address gets the same [`CliError`] as ever.
//!
//! The ipvsadm half does not come here: its popt-compatible reader keeps
//! ipvsadm's messages and exit codes (see `ipvsadm`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};

use super::values::parse_addr;
use super::{CliError, Command, FwmarkCmd, Shell, Sysctl, SysctlCmd, XdpMode};
use crate::addr::checked;
use crate::drain::DrainSpec;
use crate::model::{Proto, ServiceId};
use crate::resolve::Resolver;

/// Smallest and largest `--conns`/`--templates` (the tables' sizes).
const TABLE_SIZES: std::ops::RangeInclusive<u32> = 1024..=134_217_728;
/// Smallest and largest `--services`.
const SERVICE_SIZES: std::ops::RangeInclusive<u32> = 16..=lb_common::MAX_SERVICES_LIMIT;
/// Smallest and largest `--reals`.
const REAL_SIZES: std::ops::RangeInclusive<u32> = 64..=lb_common::MAX_REALS_LIMIT;

/// lbctl's words, as clap reads them.
#[derive(Parser, Debug)]
#[command(
    name = "lbctl",
    bin_name = "lbctl",
    about = "ipvsadm's command line for the XDP load balancer",
    long_about = "lbctl manages the XDP layer-4 load balancer as ipvsadm manages Linux\n\
                  Virtual Server (IPVS): the same options, messages and listings, straight\n\
                  on the dataplane's pinned tables. Its own words attach the XDP program,\n\
                  show the packet counters, set the net.ipv4.vs.* settings and run the\n\
                  ldirectord-compatible health-checking daemon.",
    version = env!("CARGO_PKG_VERSION"),
    disable_version_flag = true,
    disable_help_subcommand = true,
    subcommand_required = true
)]
pub(super) struct Words {
    #[command(subcommand)]
    word: Word,
}

#[derive(Subcommand, Debug)]
enum Word {
    /// Attach the load balancer to IFACE
    #[command(
        long_about = "Attach the load balancer's XDP program to IFACE, making the pinned\n\
                      tables first if there are none. --conns, --templates, --services and\n\
                      --reals size the tables when they are made; --reset remakes them,\n\
                      dropping every connection and template."
    )]
    Attach(AttachArgs),
    /// Detach the load balancer from IFACE
    Detach {
        /// The network interface
        #[arg(value_name = "IFACE", value_parser = parse_iface)]
        iface: String,
    },
    /// List, show or set the net.ipv4.vs.* settings
    #[command(
        long_about = "Without NAME, list the net.ipv4.vs.* settings that lbctl implements;\n\
                      with NAME, show one; with NAME=VALUE, set it. NAME may carry the\n\
                      net.ipv4.vs. (or net/ipv4/vs/) prefix."
    )]
    Sysctl {
        /// expire_nodest_conn (0|1), expire_quiescent_template (0|1), conn_reuse_mode (0-3),
        /// pmtu_disc (0|1) or nat_icmp_send (0|1)
        #[arg(value_name = "NAME[=VALUE]", value_parser = parse_setting)]
        setting: Option<SysctlCmd>,
    },
    /// What the XDP program did with every packet, by reason
    Counters,
    /// Check the real servers as ldirectord does and keep the table in step
    #[command(
        long_about = "Check the real servers as ldirectord does with CONFIG (an ldirectord.cf)\n\
                      and keep the table in step. The daemon stays in the foreground: SIGHUP\n\
                      reloads CONFIG, SIGTERM stops it. `lbctl daemon status` and `lbctl\n\
                      daemon CONFIG status` are `lbctl daemon-status`."
    )]
    Daemon(DaemonArgs),
    /// Health of each real server as the daemon last saw it
    #[command(
        long_about = "Health of each real server as the daemon last saw it. Exits 0 when the\n\
                      daemon runs, 1 when its pid file is stale, 3 when none runs (as\n\
                      ldirectord's status does)."
    )]
    DaemonStatus {
        /// The daemon's ldirectord.cf (default: every running daemon)
        #[arg(value_name = "CONFIG")]
        config: Option<PathBuf>,
    },
    /// Quiesce a real server and wait until its connections are gone
    #[command(
        long_about = "Quiesce a real server (weight 0, as -e -w 0 with everything else kept)\n\
                      and wait until its ActiveConn, and with --inactive its InActConn too,\n\
                      is 0, as -L shows them. On a terminal a progress line (connections left,\n\
                      time elapsed) is rewritten in place; otherwise a line is written when\n\
                      the counts change. Exits 0 once drained (--remove then deletes the real\n\
                      server), 3 on --timeout (the real stays at weight 0), 1 on an error,\n\
                      among them the real's weight set again or the real removed meanwhile."
    )]
    Drain(DrainArgs),
    /// Where a new connection of a client would go now, and why
    #[command(
        long_about = "Where a new connection of CLIENT[:PORT] to the service would go now, and\n\
                      why: the client's persistence template while it is valid, else the\n\
                      service's scheduler, computed by the packet path's own code over the\n\
                      tables (nothing is changed). rr and wrr keep their rotation per CPU: the\n\
                      answer is then one line per CPU, the next in rotation on that CPU.\n\
                      Output: one line per answer of key=value words: [cpu=N]\n\
                      real=ADDRESS:PORT|none by=template expires=SECONDS, or by=SCHEDULER\n\
                      [next=yes] [template=none|expired|invalid]. real=none: no real server may\n\
                      take it (the client gets ICMP port unreachable)."
    )]
    Whereis(WhereisArgs),
    /// List, add or delete the fwmark classifier's rules
    #[command(
        long_about = "The fwmark classifier: rules that give a packet's (protocol, destination\n\
                      address or prefix, destination port or port range) a mark, which selects\n\
                      the fwmark service (-f MARK) of that mark, as iptables mangle rules\n\
                      (-j MARK --set-mark) do for IPVS. Without an action, or with `list',\n\
                      print the rules as `fwmark add' lines (as -S saves them). When rules\n\
                      overlap, the most specific wins: the longest prefix, then an explicit\n\
                      port range over any port, then the narrower range."
    )]
    Fwmark {
        #[command(subcommand)]
        action: Option<FwmarkAction>,
    },
    /// The real servers' decapsulator of tunnelled packets (IPIP, GUE, GRE)
    #[command(long_about = crate::decap::words::ABOUT)]
    Decap {
        #[command(subcommand)]
        action: crate::decap::words::DecapAction,
    },
    /// Display the version
    Version,
    /// Display the help message, or a word's
    Help {
        /// An lbctl word
        #[arg(value_name = "WORD")]
        word: Option<String>,
    },
    /// Print a completion script for the shell
    #[command(
        long_about = "Print a completion script covering lbctl's words and ipvsadm's options,\n\
                      e.g. `lbctl completions bash > /etc/bash_completion.d/lbctl`."
    )]
    Completions {
        /// The shell
        #[arg(value_name = "SHELL", value_enum)]
        shell: Shell,
    },
}

#[derive(Subcommand, Debug)]
enum FwmarkAction {
    /// Print the rules as `fwmark add' lines
    List,
    /// Add a rule (its match must be new)
    Add(FwmarkRuleArgs),
    /// Delete a rule (the same words as it was added with)
    Del(FwmarkRuleArgs),
}

/// A rule, in iptables' words.
#[derive(Args, Debug)]
struct FwmarkRuleArgs {
    /// tcp or udp
    #[arg(short = 'p', long = "protocol", value_name = "PROTO", value_parser = parse_fwmark_proto)]
    proto: Proto,
    /// The destination address, or a prefix (ADDR/PLEN), IPv4 or IPv6
    #[arg(short = 'd', long = "destination", value_name = "ADDR[/PLEN]", value_parser = parse_fwmark_dest)]
    dest: (std::net::IpAddr, u8),
    /// The destination port or port range (LO:HI); default: any port
    #[arg(long = "dport", alias = "destination-port", value_name = "PORT[:PORT]", value_parser = parse_fwmark_ports)]
    dport: Option<(u16, u16)>,
    /// iptables' `-j MARK', accepted and ignored
    #[arg(short = 'j', long = "jump", value_name = "MARK", value_parser = parse_fwmark_jump)]
    jump: Option<String>,
    /// The mark (decimal or 0x hexadecimal, not 0)
    #[arg(long = "set-mark", value_name = "MARK", value_parser = parse_fwmark_mark)]
    mark: u32,
}

impl FwmarkRuleArgs {
    fn rule(&self) -> crate::fwmark::FwmarkRule {
        crate::fwmark::FwmarkRule {
            matches: crate::fwmark::FwmarkMatch::new(
                self.proto,
                self.dest.0,
                self.dest.1,
                self.dport,
            ),
            mark: self.mark,
        }
    }
}

fn parse_fwmark_proto(v: &str) -> Result<Proto, CliError> {
    crate::fwmark::parse_proto(v).ok_or(CliError::IllegalValue {
        what: "fwmark rule protocol (tcp or udp)",
    })
}

fn parse_fwmark_dest(v: &str) -> Result<(std::net::IpAddr, u8), CliError> {
    let dest = crate::fwmark::parse_destination(v).ok_or(CliError::IllegalValue {
        what: "fwmark rule destination (an IPv4 or IPv6 address or ADDR/PLEN)",
    })?;
    // The trie keeps IPv4 prefixes as IPv4-mapped IPv6 ones.
    if let (std::net::IpAddr::V6(a), plen) = dest
        && crate::fwmark::overlaps_v4_mapped(a, plen)
    {
        return Err(CliError::IllegalValue {
            what: "fwmark rule destination (an IPv6 prefix sharing addresses with \
                   ::ffff:0.0.0.0/96; give IPv4 rules as IPv4 prefixes)",
        });
    }
    Ok(dest)
}

fn parse_fwmark_ports(v: &str) -> Result<(u16, u16), CliError> {
    crate::fwmark::parse_ports(v).ok_or(CliError::IllegalValue {
        what: "fwmark rule destination port (PORT or LO:HI, numbers)",
    })
}

fn parse_fwmark_mark(v: &str) -> Result<u32, CliError> {
    crate::fwmark::parse_mark(v).ok_or(CliError::IllegalValue {
        what: "fwmark rule mark (1 to 4294967295, decimal or 0x hexadecimal)",
    })
}

fn parse_fwmark_jump(v: &str) -> Result<String, CliError> {
    (v == "MARK")
        .then(|| v.to_owned())
        .ok_or(CliError::IllegalValue {
            what: "fwmark rule target (only MARK)",
        })
}

/// The hidden word that prints lbctl(8); outside clap, so that no `--help`,
/// completion or suggestion shows it.
const MANPAGE: &str = "manpage";

#[derive(Args, Debug)]
struct AttachArgs {
    /// The network interface
    #[arg(value_name = "IFACE", value_parser = parse_iface)]
    iface: String,
    /// XDP attach mode
    #[arg(long, value_name = "MODE", value_enum, default_value_t = XdpMode::Native)]
    mode: XdpMode,
    /// Size of the connection table when it is made (1024 to 134217728)
    #[arg(long, value_name = "N", value_parser = parse_conns)]
    conns: Option<u32>,
    /// Size of the persistence template table when it is made (1024 to 134217728)
    #[arg(long, value_name = "N", value_parser = parse_templates)]
    templates: Option<u32>,
    /// Number of virtual services the tables hold (16 to 1048576; default 16384)
    #[arg(long, value_name = "N", value_parser = parse_services)]
    services: Option<u32>,
    /// Real-server slots of all services together, removed ones still in use
    /// included (64 to 4194304; default 262144)
    #[arg(long, value_name = "N", value_parser = parse_reals)]
    reals: Option<u32>,
    /// Remake the tables, dropping every connection and template
    #[arg(long)]
    reset: bool,
}

#[derive(Args, Debug)]
struct DaemonArgs {
    /// Stay in the foreground quietly (it never detaches; without this flag it
    /// says so once); ldirectord's -d/--debug is taken too
    #[arg(short = 'f', long, short_alias = 'd', alias = "debug")]
    foreground: bool,
    /// Serve Prometheus metrics on ADDR:PORT (e.g. 127.0.0.1:9469)
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_metrics)]
    metrics: Option<SocketAddr>,
    /// Allow --metrics on an address that is not a loopback one
    #[arg(long, requires = "metrics")]
    metrics_public: bool,
    /// The ldirectord.cf to run (or `status`)
    #[arg(value_name = "CONFIG")]
    config: String,
    /// `start` (the default) or `status`, as ldirectord takes them
    #[arg(value_name = "ACTION")]
    action: Option<String>,
}

/// `-t VIP:PORT`, `-u VIP:PORT` or `-f MARK`, as ipvsadm names a service.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct ServiceArg {
    /// A TCP virtual service (host[:port])
    #[arg(short = 't', long = "tcp-service", value_name = "SERVICE-ADDRESS")]
    tcp: Option<String>,
    /// A UDP virtual service (host[:port])
    #[arg(short = 'u', long = "udp-service", value_name = "SERVICE-ADDRESS")]
    udp: Option<String>,
    /// A fwmark service (its mark, an integer greater than zero)
    #[arg(short = 'f', long = "fwmark-service", value_name = "FWMARK")]
    fwmark: Option<String>,
}

/// `-6` after `-f`: the IPv6 fwmark service.
#[derive(Args, Debug)]
struct FwmarkFamily {
    /// The fwmark service is IPv6's (-f MARK -6)
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
}

impl ServiceArg {
    /// The service, with ipvsadm's messages for a bad address; `v6`: `-6`.
    fn service(&self, v6: bool, names: &Resolver) -> Result<ServiceId, CliError> {
        if v6 && self.fwmark.is_none() {
            return Err(CliError::Ipv6BeforeFwmark);
        }
        let (proto, text) = match (&self.tcp, &self.udp, &self.fwmark) {
            (Some(t), _, _) => (Proto::Tcp, t),
            (None, Some(u), _) => (Proto::Udp, u),
            (None, None, Some(f)) => {
                // ipvsadm's parse_fwmark: decimal, 1 to UINT_MAX.
                let mark = super::values::string_to_number(f, 1, i64::from(u32::MAX))
                    .ok_or_else(|| CliError::InvalidFwmark(f.clone()))?;
                return Ok(ServiceId::fwmark_of_family(mark as u32, v6));
            }
            (None, None, None) => return Err(CliError::IllegalServiceAddress),
        };
        let (addr, port) = parse_addr(text, Some(proto), names)
            .ok_or(CliError::IllegalServiceAddress)?
            .split();
        Ok(ServiceId {
            proto,
            addr: checked(addr)?,
            port: port.unwrap_or(0),
        })
    }
}

#[derive(Args, Debug)]
struct DrainArgs {
    #[command(flatten)]
    service: ServiceArg,
    #[command(flatten)]
    family: FwmarkFamily,
    /// The real server (host[:port]; without a port, the service's)
    #[arg(short = 'r', long = "real-server", value_name = "SERVER-ADDRESS")]
    real: String,
    /// Give up after this many seconds (exit 3); default: wait as long as it takes
    #[arg(long, value_name = "SECONDS", value_parser = parse_drain_timeout)]
    timeout: Option<u32>,
    /// Delete the real server once drained
    #[arg(long)]
    remove: bool,
    /// Wait for InActConn to reach 0 too (closing connections, UDP flows)
    #[arg(long)]
    inactive: bool,
}

#[derive(Args, Debug)]
struct WhereisArgs {
    #[command(flatten)]
    service: ServiceArg,
    #[command(flatten)]
    family: FwmarkFamily,
    /// The client (host[:port]); the port matters to sh and mh with sh-port/mh-port
    #[arg(value_name = "CLIENT-ADDRESS")]
    client: String,
}

/// Parses a command line whose first word is not an option (`args` without
/// the program name): an lbctl word, or a mistyped one.
pub(super) fn parse_word(args: &[String], names: &Resolver) -> Result<Command, CliError> {
    match args {
        [w] if w == MANPAGE => return Ok(Command::Manpage),
        [w, extra, ..] if w == MANPAGE => {
            return Err(word_error(
                None,
                ErrorKind::UnknownArgument,
                &format!("unexpected argument '{extra}' found: `lbctl {MANPAGE}' takes none"),
            ));
        }
        _ => {}
    }
    let argv = std::iter::once("lbctl".to_owned()).chain(args.iter().cloned());
    match Words::try_parse_from(argv) {
        Ok(w) => w.word.into_command(names),
        Err(e) => outcome(e),
    }
}

/// What a clap error means for lbctl: `--help` is text to print; a value
/// refused by one of lbctl's parsers is that parser's error; anything else
/// is clap's message, usage and tips.
fn outcome(e: clap::Error) -> Result<Command, CliError> {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            Ok(Command::Print(e.render().to_string()))
        }
        kind => {
            if kind == ErrorKind::ValueValidation
                && let Some(inner) =
                    std::error::Error::source(&e).and_then(|s| s.downcast_ref::<CliError>())
            {
                return Err(inner.clone());
            }
            Err(CliError::word(kind, &e.render().to_string()))
        }
    }
}

/// An error about `word`'s arguments (or lbctl's, for `None`) found outside
/// clap's parse, rendered as clap renders its own (with the usage).
fn word_error(word: Option<&str>, kind: ErrorKind, message: &str) -> CliError {
    let mut cmd = Words::command();
    cmd.build();
    let e = match word.and_then(|w| cmd.find_subcommand_mut(w)) {
        Some(sub) => sub.error(kind, message),
        None => cmd.error(kind, message),
    };
    CliError::word(kind, &e.render().to_string())
}

impl Word {
    fn into_command(self, names: &Resolver) -> Result<Command, CliError> {
        Ok(match self {
            Word::Attach(a) => Command::Attach {
                iface: a.iface,
                mode: a.mode,
                conns: a.conns,
                templates: a.templates,
                services: a.services,
                reals: a.reals,
                reset: a.reset,
            },
            Word::Detach { iface } => Command::Detach { iface },
            Word::Sysctl { setting } => Command::Sysctl(setting.unwrap_or(SysctlCmd::List)),
            Word::Counters => Command::Counters,
            Word::Daemon(d) => d.into_command()?,
            Word::DaemonStatus { config } => Command::DaemonStatus { config },
            Word::Decap { action } => Command::Decap(action.into_cmd()),
            Word::Version => Command::Version,
            Word::Help { word: None } => Command::Help,
            Word::Help { word: Some(w) } => {
                return parse_word(&[w, "--help".to_owned()], names);
            }
            Word::Drain(d) => {
                let service = d.service.service(d.family.ipv6, names)?;
                let (addr, port) = parse_addr(&d.real, Some(service.proto), names)
                    .ok_or(CliError::IllegalRealAddress)?
                    .split();
                let addr = checked(addr)?;
                Command::Drain(DrainSpec {
                    service,
                    addr,
                    port,
                    timeout: d.timeout.map(|s| Duration::from_secs(s.into())),
                    remove: d.remove,
                    inactive: d.inactive,
                })
            }
            Word::Whereis(w) => {
                let service = w.service.service(w.family.ipv6, names)?;
                let (client, port) = parse_addr(&w.client, Some(service.proto), names)
                    .ok_or(CliError::IllegalClientAddress)?
                    .split();
                let client = checked(client)?;
                Command::Whereis {
                    service,
                    client,
                    port,
                }
            }
            Word::Completions { shell } => Command::Completions(shell),
            Word::Fwmark { action } => Command::Fwmark(match action {
                None | Some(FwmarkAction::List) => FwmarkCmd::List,
                Some(FwmarkAction::Add(r)) => FwmarkCmd::Add(r.rule()),
                Some(FwmarkAction::Del(r)) => FwmarkCmd::Del(r.rule()),
            }),
        })
    }
}

impl DaemonArgs {
    /// ldirectord's `CONFIG [start|status]` and `status`.
    fn into_command(self) -> Result<Command, CliError> {
        let status = |config: Option<PathBuf>| {
            if self.metrics.is_some() || self.metrics_public {
                return Err(word_error(
                    Some("daemon"),
                    ErrorKind::ArgumentConflict,
                    "--metrics and --metrics-public do not go with `status'",
                ));
            }
            Ok(Command::DaemonStatus { config })
        };
        match (self.config.as_str(), self.action.as_deref()) {
            ("status", None) => status(None),
            (c, Some("status")) => status(Some(c.into())),
            (c, None | Some("start")) => Ok(Command::Daemon {
                foreground: self.foreground,
                config: c.into(),
                metrics: self.metrics,
                metrics_public: self.metrics_public,
            }),
            (_, Some(action)) => Err(CliError::DaemonAction(action.to_owned())),
        }
    }
}

/// The kernel's `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or
/// whitespace.
fn parse_iface(name: &str) -> Result<String, CliError> {
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

/// A table size: decimal digits only, within [`TABLE_SIZES`].
fn table_size(v: &str) -> Option<u32> {
    size_in(v, &TABLE_SIZES)
}

/// Decimal digits only, within `range`.
fn size_in(v: &str, range: &std::ops::RangeInclusive<u32>) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = v.parse().ok()?;
    range.contains(&n).then_some(n)
}

fn parse_services(v: &str) -> Result<u32, CliError> {
    size_in(v, &SERVICE_SIZES).ok_or(CliError::IllegalValue {
        what: "number of services (16..=1048576)",
    })
}

fn parse_reals(v: &str) -> Result<u32, CliError> {
    size_in(v, &REAL_SIZES).ok_or(CliError::IllegalValue {
        what: "number of real-server slots (64..=4194304)",
    })
}

fn parse_conns(v: &str) -> Result<u32, CliError> {
    table_size(v).ok_or(CliError::IllegalValue {
        what: "connection table size (1024..=134217728)",
    })
}

fn parse_templates(v: &str) -> Result<u32, CliError> {
    table_size(v).ok_or(CliError::IllegalValue {
        what: "template table size (1024..=134217728)",
    })
}

/// `drain --timeout`: whole seconds, 0 to ipvsadm's `MAX_TIMEOUT` (0: look
/// once).
fn parse_drain_timeout(v: &str) -> Result<u32, CliError> {
    size_in(v, &(0..=lb_common::MAX_TIMEOUT)).ok_or(CliError::IllegalValue {
        what: "drain timeout (seconds, 0 to 2678400)",
    })
}

fn parse_metrics(v: &str) -> Result<SocketAddr, CliError> {
    v.parse()
        .map_err(|_| CliError::InvalidMetricsAddress(v.to_owned()))
}

/// `NAME` or `NAME=VALUE` of `lbctl sysctl`.
fn parse_setting(arg: &str) -> Result<SysctlCmd, CliError> {
    let (name, value) = match arg.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (arg.trim(), None),
    };
    let knob = Sysctl::from_name(name).ok_or_else(|| CliError::UnknownSysctl(name.to_owned()))?;
    let Some(value) = value else {
        return Ok(SysctlCmd::Show(knob));
    };
    let parsed = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<u32>().ok())
        .flatten()
        .filter(|v| *v <= knob.max());
    match parsed {
        Some(v) => Ok(SysctlCmd::Set(knob, v)),
        None => Err(CliError::InvalidSysctlValue {
            name: knob.name(),
            value: value.to_owned(),
            expected: knob.expected(),
        }),
    }
}

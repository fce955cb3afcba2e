//! ldirectord's configuration file (`ldirectord.cf`), read as ldirectord
//! reads it (`read_config` and `ld_setup` in ClusterLabs/resource-agents
//! `ldirectord/ldirectord.in`), into what `lbctl daemon` needs.
//!
//! The format:
//!
//! * global directives start in the first column (`checktimeout=3`);
//! * `virtual=ADDR:PORT` starts a virtual service; its directives follow on
//!   lines indented by at least 4 spaces or a tab (`real=`, `service=`, ...);
//!   the block ends at the first non-blank, non-comment line that is not
//!   indented that far;
//! * `#` starts a comment (outside double quotes); blank lines are ignored.
//!
//! Defaults are ldirectord's: `checkinterval` 10 s, `checktimeout` 5 s and
//! `negotiatetimeout` 30 s (each falls back to the other as ldirectord's
//! `ld_setup` does), `failurecount` 1, `checktype` negotiate, `scheduler`
//! wrr, `protocol` tcp (udp for port 53), `service` from the port (http for
//! 80, ...), `request` "/", weight 1, `cleanstop` yes, `autoreload` no,
//! `quiescent` yes (LVS-SEMANTICS §9.1 and ldirectord's manual; note that
//! recent ldirectord code sets `$QUIESCENT = "no"` in `set_defaults`, unlike
//! its manual: write `quiescent=` explicitly to be independent of that).
//!
//! Everything an ldirectord configuration may contain is either honoured,
//! ignored with a warning (it changes nothing about which real servers get
//! traffic: e-mail alerts, `callback`, `monitorfile`, a loopback fallback
//! server), or refused with an error naming the file, the line and the
//! reason (it would change traffic in a way lbctl cannot reproduce: NAT or
//! tunnelling, IPv6, fwmark services, ping and external checks, protocol
//! checks other than HTTP and simpletcp, schedulers other than rr/wrr,
//! one-packet scheduling, `execute`). Hosts are IPv4 addresses or names from
//! `/etc/hosts`; ports are numbers or names from `/etc/services` (never DNS).

use std::{
    fmt,
    net::{Ipv4Addr, SocketAddrV4},
    path::{Path, PathBuf},
    time::Duration,
};

use lb_common::{MAX_SERVICE_DESTS, MAX_TIMEOUT, MAX_WEIGHT};
use regex::Regex;

use crate::{
    model::{Proto, RealId, Sched, ServiceId, ServiceSpec, UNSUPPORTED_SCHEDULERS},
    resolve::Resolver,
};

/// ldirectord's `$CHECKINTERVAL` default.
pub const DEFAULT_CHECKINTERVAL: u32 = 10;
/// ldirectord's `$DEFAULT_CHECKTIMEOUT`.
pub const DEFAULT_CHECKTIMEOUT: u32 = 5;
/// ldirectord's `$DEFAULT_NEGOTIATETIMEOUT`.
pub const DEFAULT_NEGOTIATETIMEOUT: u32 = 30;
/// The check services `lbctl daemon` can negotiate.
const SUPPORTED_SERVICES: &str = "http, simpletcp, none";

/// A configuration error: the file, the line (0 when the file itself is the
/// problem) and what is wrong. Displayed as `FILE:LINE: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

/// Something in the file that is accepted but has no effect, or a
/// deprecated spelling; logged when the configuration is loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// The `checktype` of a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckType {
    /// A TCP connection to the check port within `checktimeout`.
    Connect,
    /// The `service` protocol's check within `negotiatetimeout`.
    Negotiate,
    /// `checktype=N`: N connect checks, then one negotiate check.
    Combined(u32),
    /// No checks: real servers are always up.
    On,
    /// No checks: real servers keep the state they have.
    Off,
}

impl CheckType {
    /// As ldirectord's configuration spells it.
    pub fn name(self) -> String {
        match self {
            CheckType::Connect => "connect".into(),
            CheckType::Negotiate => "negotiate".into(),
            CheckType::Combined(n) => n.to_string(),
            CheckType::On => "on".into(),
            CheckType::Off => "off".into(),
        }
    }
    fn negotiates(self) -> bool {
        matches!(self, CheckType::Negotiate | CheckType::Combined(_))
    }
    fn connects(self) -> bool {
        matches!(self, CheckType::Connect | CheckType::Combined(_))
    }
}

/// The `service` of a negotiate check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckService {
    /// HTTP `GET`/`HEAD` of `request`; a 2xx answer whose body matches
    /// `receive` is a success.
    Http,
    /// `request` sent verbatim (`\n` as newline), then a line of the answer
    /// must match `receive`.
    SimpleTcp,
    /// Always a success (ldirectord's `check_none`).
    None,
}

impl CheckService {
    pub fn name(self) -> &'static str {
        match self {
            CheckService::Http => "http",
            CheckService::SimpleTcp => "simpletcp",
            CheckService::None => "none",
        }
    }
}

/// A `receive=` regular expression, kept with its text.
#[derive(Clone, Debug)]
pub struct Receive {
    pub source: String,
    pub regex: Regex,
}

impl PartialEq for Receive {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// How the real servers of one virtual service are checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub kind: CheckType,
    /// Meaningful when `kind` negotiates.
    pub service: CheckService,
    /// `GET` or `HEAD`.
    pub httpmethod: String,
    /// The `request=` path (with its leading `/`).
    pub request: String,
    /// `receive=`; `None` accepts any answer.
    pub receive: Option<Receive>,
    /// `virtualhost=`: the `Host:` header (default: the real's address).
    pub virtualhost: Option<String>,
    /// `checktimeout`: bound of connect checks.
    pub checktimeout: Duration,
    /// `negotiatetimeout`: bound of negotiate checks.
    pub negotiatetimeout: Duration,
}

/// One `real=` server (a range gives one per address).
#[derive(Clone, Debug, PartialEq)]
pub struct Real {
    pub line: usize,
    /// As the dataplane has it: direct routing keeps the service's port.
    pub id: RealId,
    /// The port the line gave (0 when none), as ldirectord keeps it.
    pub port_given: u16,
    pub weight: u32,
    /// Where checks go: `checkport`, else the real's own port, else the
    /// port of the `service` protocol, else the service's port.
    pub check_port: u16,
    /// A per-real `"request", "receive"` pair, overriding the virtual's.
    pub request: Option<String>,
    pub receive: Option<Receive>,
}

impl Real {
    pub fn check_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.id.addr, self.check_port)
    }
}

/// One `virtual=` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Virtual {
    pub line: usize,
    pub spec: ServiceSpec,
    pub reals: Vec<Real>,
    /// `fallback=` (the virtual's, else the global one), added with weight 1
    /// while no real server is up.
    pub fallback: Option<RealId>,
    pub check: Check,
    /// How often each real server is checked.
    pub checkinterval: Duration,
    /// Consecutive failed checks before a real server is taken down.
    pub failurecount: u32,
    /// `quiescent=yes`: a down real server gets weight 0; `no`: it is
    /// removed.
    pub quiescent: bool,
    /// `cleanstop=yes`: the service is removed when the daemon stops.
    pub cleanstop: bool,
    /// `fallbackcommand=`: run with `start` when the last real server goes
    /// down, with `stop` when one comes back.
    pub fallbackcommand: Option<String>,
}

impl Virtual {
    pub fn id(&self) -> ServiceId {
        self.spec.id
    }
}

/// A whole configuration file.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    /// The global `checkinterval` (also how often `autoreload` looks).
    pub checkinterval: Duration,
    pub autoreload: bool,
    /// `logfile="/path"`; `None`: standard error.
    pub logfile: Option<PathBuf>,
    /// `readdquiescent=yes`: a down real server missing from the table is
    /// added back with weight 0.
    pub readdquiescent: bool,
    /// `maintenancedir=`: a file named after a real server forces it down.
    pub maintenancedir: Option<PathBuf>,
    pub virtuals: Vec<Virtual>,
    pub warnings: Vec<Warning>,
}

impl Config {
    pub fn virtual_by_id(&self, id: &ServiceId) -> Option<&Virtual> {
        self.virtuals.iter().find(|v| v.id() == *id)
    }
}

/// Reads and parses `path`, looking names up in `/etc/hosts` and
/// `/etc/services`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot read the configuration: {e}"),
    })?;
    parse(path, &text, Resolver::system())
}

/// Parses the text of a configuration file named `path`.
pub fn parse(path: &Path, text: &str, names: &Resolver) -> Result<Config, ConfigError> {
    Parser {
        path: path.to_path_buf(),
        names,
        globals: Globals::default(),
        raw_virtuals: Vec::new(),
        warnings: Vec::new(),
    }
    .run(text)
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Global directives as written (unset = `None`), resolved at the end as
/// ldirectord's `ld_setup` does (a global applies wherever it appears).
#[derive(Default)]
struct Globals {
    checktimeout: Option<u32>,
    negotiatetimeout: Option<u32>,
    checkinterval: Option<u32>,
    failurecount: Option<u32>,
    fallback: Option<(usize, Option<FallbackSpec>)>,
    fallbackcommand: Option<String>,
    autoreload: Option<bool>,
    logfile: Option<PathBuf>,
    fork: Option<bool>,
    quiescent: Option<bool>,
    readdquiescent: Option<bool>,
    cleanstop: Option<bool>,
    maintenancedir: Option<PathBuf>,
}

/// `fallback=host[:port] [gate]`, not resolved yet.
#[derive(Clone)]
struct FallbackSpec {
    host: String,
    port: Option<String>,
}

/// A virtual block as written.
struct RawVirtual {
    line: usize,
    host: String,
    port: String,
    reals: Vec<(usize, String)>,
    request: Option<String>,
    receive: Option<(usize, String)>,
    checktype: Option<(usize, CheckType)>,
    checktimeout: Option<u32>,
    negotiatetimeout: Option<u32>,
    failurecount: Option<u32>,
    checkinterval: Option<(usize, u32)>,
    checkport: Option<u16>,
    scheduler: Option<Sched>,
    persistent: Option<u32>,
    netmask: Option<Ipv4Addr>,
    protocol: Option<Proto>,
    service: Option<(usize, String)>,
    httpmethod: Option<String>,
    virtualhost: Option<String>,
    fallback: Option<(usize, Option<FallbackSpec>)>,
    fallbackcommand: Option<String>,
    quiescent: Option<bool>,
    cleanstop: Option<bool>,
}

struct Parser<'a> {
    path: PathBuf,
    names: &'a Resolver,
    globals: Globals,
    raw_virtuals: Vec<RawVirtual>,
    warnings: Vec<Warning>,
}

/// The part of a line before a `#` that is not inside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `name = value` → (name, value), both trimmed; `None` without `=`.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    let (name, value) = s.split_once('=')?;
    Some((name.trim(), value.trim()))
}

impl Parser<'_> {
    fn err<T>(&self, line: usize, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError {
            path: self.path.clone(),
            line,
            message: message.into(),
        })
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(Warning {
            line,
            message: message.into(),
        });
    }

    fn run(mut self, text: &str) -> Result<Config, ConfigError> {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let lineno = i + 1;
            let line = strip_comment(lines[i]);
            i += 1;
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                return self.err(
                    lineno,
                    format!(
                        "Unknown command \"{}\": an indented directive must follow a virtual= line \
                         and be indented by at least 4 spaces or a tab",
                        line.trim()
                    ),
                );
            }
            let Some((name, value)) = split_directive(line) else {
                if line.trim() == "supervised" {
                    self.warn(
                        lineno,
                        "please update your config not to use a bare supervised directive",
                    );
                    continue;
                }
                return self.err(lineno, format!("Unknown command \"{}\"", line.trim()));
            };
            if name == "virtual" || name == "virtual6" {
                // The block: following lines indented by 4+ columns (a tab
                // counts 4), blank and comment lines skipped.
                let mut block = Vec::new();
                while i < lines.len() {
                    let raw = lines[i];
                    if raw.trim_start().starts_with('#') || strip_comment(raw).trim().is_empty() {
                        i += 1;
                        continue;
                    }
                    let expanded = raw.replace('\t', "    ");
                    if !expanded.starts_with("    ") {
                        break;
                    }
                    block.push((i + 1, strip_comment(raw).trim().to_string()));
                    i += 1;
                }
                if name == "virtual6" {
                    return self.err(
                        lineno,
                        "IPv6 virtual services (virtual6) are not supported yet",
                    );
                }
                self.virtual_block(lineno, value, &block)?;
                continue;
            }
            self.global(lineno, name, value)?;
        }
        self.finish()
    }

    fn positive(&self, line: usize, value: &str, what: &str) -> Result<u32, ConfigError> {
        match value.parse::<u32>() {
            Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => self.err(
                line,
                format!("invalid {what} `{value}' (a positive integer is required)"),
            ),
        }
    }

    fn yes_no(&self, line: usize, name: &str, value: &str) -> Result<bool, ConfigError> {
        match value {
            "yes" => Ok(true),
            "no" => Ok(false),
            _ => self.err(line, format!("{name} must be 'yes' or 'no'")),
        }
    }

    /// A value that ldirectord requires in double quotes.
    fn quoted(&self, line: usize, name: &str, value: &str) -> Result<String, ConfigError> {
        match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            Some(_) => self.err(line, format!("{name}: empty string")),
            None => self.err(
                line,
                format!("{name} must be in double quotes: {name}=\"...\""),
            ),
        }
    }

    /// A value with optional double quotes.
    fn unquote(value: &str) -> &str {
        value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
    }

    fn regex(&self, line: usize, source: &str) -> Result<Receive, ConfigError> {
        match Regex::new(source) {
            Ok(regex) => Ok(Receive {
                source: source.to_string(),
                regex,
            }),
            Err(e) => self.err(
                line,
                format!("receive \"{source}\" is not a regular expression lbctl understands: {e}"),
            ),
        }
    }

    fn ignored(&mut self, line: usize, name: &str, why: &str) {
        self.warn(
            line,
            format!("{name} is not supported by lbctl daemon and is ignored ({why})"),
        );
    }

    fn global(&mut self, line: usize, name: &str, value: &str) -> Result<(), ConfigError> {
        match name {
            "checktimeout" => {
                self.globals.checktimeout =
                    Some(self.positive(line, value, "check timeout value")?)
            }
            "negotiatetimeout" => {
                self.globals.negotiatetimeout =
                    Some(self.positive(line, value, "negotiate timeout value")?)
            }
            "connecttimeout" => {
                self.globals.negotiatetimeout =
                    Some(self.positive(line, value, "connect timeout value")?);
                self.warn(line, "connecttimeout is deprecated in favour of negotiatetimeout; taken as negotiatetimeout");
            }
            "checkinterval" => {
                self.globals.checkinterval =
                    Some(self.positive(line, value, "check interval value")?)
            }
            "checkcount" => {
                self.positive(line, value, "check count value")?;
                self.warn(line, "checkcount is deprecated (it only applies to ping checks, which lbctl daemon does not do); please see 'failurecount'");
            }
            "failurecount" => {
                self.globals.failurecount =
                    Some(self.positive(line, value, "failure count value")?)
            }
            "fallback" => {
                let fb = self.fallback(line, value)?;
                self.globals.fallback = Some((line, fb));
            }
            "fallback6" => self.ignored(
                line,
                "fallback6",
                "it only applies to IPv6 virtual services",
            ),
            "fallbackcommand" => {
                let v = Self::unquote(value);
                if v.is_empty() {
                    return self.err(line, "invalid fallback command");
                }
                self.globals.fallbackcommand = Some(v.to_string());
            }
            "autoreload" => self.globals.autoreload = Some(self.yes_no(line, name, value)?),
            "callback" => {
                self.quoted(line, name, value)?;
                self.ignored(line, "callback", "use autoreload=yes or SIGHUP to reload");
            }
            "logfile" => {
                let v = self.quoted(line, name, value)?;
                if v.starts_with('/') {
                    self.globals.logfile = Some(PathBuf::from(v));
                } else {
                    self.warn(
                        line,
                        format!("logfile=\"{v}\" names a syslog facility, which lbctl daemon does not use; logging to standard error (journald under systemd)"),
                    );
                }
            }
            "execute" => {
                return self.err(
                    line,
                    "execute is not supported: run one `lbctl daemon CONFIG` per configuration",
                );
            }
            "fork" => {
                self.globals.fork = Some(self.yes_no(line, name, value)?);
            }
            "supervised" => {
                // lbctl daemon always stays in the foreground.
                self.yes_no(line, name, value)?;
            }
            "quiescent" => self.globals.quiescent = Some(self.yes_no(line, name, value)?),
            "readdquiescent" => self.globals.readdquiescent = Some(self.yes_no(line, name, value)?),
            "cleanstop" => self.globals.cleanstop = Some(self.yes_no(line, name, value)?),
            "maintenancedir" => {
                if value.is_empty() {
                    return self.err(line, "maintenance directory not specified");
                }
                let dir = PathBuf::from(Self::unquote(value));
                if !dir.is_dir() {
                    self.warn(line, "maintenance directory does not exist");
                }
                self.globals.maintenancedir = Some(dir);
            }
            "emailalert" | "emailalertfreq" | "emailalertstatus" | "emailalertfrom" | "smtp" => {
                self.ignored(
                    line,
                    name,
                    "e-mail alerts are not sent; the log has one line per change",
                )
            }
            "timeout" => {
                return self.err(
                    line,
                    "timeout directive deprecated in favour of checktimeout and negotiatetimeout",
                );
            }
            "real" | "request" | "receive" | "service" | "scheduler" | "checktype" | "protocol"
            | "persistent" | "netmask" | "checkport" | "virtualhost" => {
                return self.err(
                    line,
                    format!("{name}= must be inside a virtual= block, indented by at least 4 spaces or a tab"),
                );
            }
            _ => return self.err(line, format!("Unknown command \"{name}={value}\"")),
        }
        Ok(())
    }

    /// `fallback=host[:port] [gate|masq|ipip]`. A loopback fallback (the
    /// director itself, as in ldirectord's sample) cannot be reached by
    /// direct routing: ignored with a warning (`None`).
    fn fallback(&mut self, line: usize, value: &str) -> Result<Option<FallbackSpec>, ConfigError> {
        let mut words = value.split_whitespace();
        let Some(target) = words.next() else {
            return self.err(line, format!("invalid fallback server: {value}"));
        };
        match words.next() {
            None | Some("gate") => {}
            Some(m @ ("masq" | "ipip")) => {
                return self.err(line, format!(
                    "fallback forwarding method {m} is not supported: lbctl forwards by direct routing (gate) only"
                ));
            }
            Some(_) => return self.err(line, "forward method must be gate, masq or ipip"),
        }
        if let Some(extra) = words.next() {
            return self.err(line, format!("invalid fallback server, around \"{extra}\""));
        }
        if target.starts_with('[') {
            return self.err(line, "IPv6 fallback servers are not supported yet");
        }
        let (host, port) = match target.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (target.to_string(), None),
        };
        let addr = self.host(line, &host, "fallback server")?;
        if addr.is_loopback() || addr.is_unspecified() {
            self.warn(
                line,
                format!(
                    "fallback {target} is the director itself: lbctl forwards by direct routing \
                     only and cannot deliver to a local server, so this fallback is ignored \
                     (name a server on the segment instead)"
                ),
            );
            return Ok(None);
        }
        Ok(Some(FallbackSpec { host, port }))
    }

    fn host(&self, line: usize, host: &str, what: &str) -> Result<Ipv4Addr, ConfigError> {
        if let Ok(a) = host.parse::<Ipv4Addr>() {
            return Ok(a);
        }
        if host.contains(':') || host.starts_with('[') {
            return self.err(
                line,
                format!("IPv6 addresses are not supported yet ({what} {host})"),
            );
        }
        match self.names.host_addr(host) {
            Some(a) => Ok(a),
            None => self.err(
                line,
                format!(
                    "invalid address ({host}) for {what} (could not resolve host from /etc/hosts)"
                ),
            ),
        }
    }

    fn port(&self, line: usize, port: &str, proto: Proto, what: &str) -> Result<u16, ConfigError> {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return match port.parse::<u16>() {
                Ok(p) => Ok(p),
                Err(_) => self.err(line, format!("invalid port ({port}) for {what}")),
            };
        }
        let other = match proto {
            Proto::Tcp => Proto::Udp,
            Proto::Udp => Proto::Tcp,
        };
        match self
            .names
            .service_port(port, proto)
            .or_else(|| self.names.service_port(port, other))
        {
            Some(p) => Ok(p),
            None => self.err(
                line,
                format!(
                    "invalid port ({port}) for {what} (could not resolve port from /etc/services)"
                ),
            ),
        }
    }

    fn virtual_block(
        &mut self,
        line: usize,
        value: &str,
        block: &[(usize, String)],
    ) -> Result<(), ConfigError> {
        let value = value.trim();
        if value.starts_with('[') {
            return self.err(
                line,
                "cannot specify an IPv6 address here. please use \"virtual6\" instead (IPv6 is not supported yet)",
            );
        }
        let (host, port) = match value.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.is_empty() => (h.to_string(), p.to_string()),
            _ if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                return self.err(
                    line,
                    "firewall-mark virtual services (virtual=MARK) are not supported yet",
                );
            }
            _ => return self.err(line, "invalid address for virtual server"),
        };
        let mut v = RawVirtual {
            line,
            host,
            port,
            reals: Vec::new(),
            request: None,
            receive: None,
            checktype: None,
            checktimeout: None,
            negotiatetimeout: None,
            failurecount: None,
            checkinterval: None,
            checkport: None,
            scheduler: None,
            persistent: None,
            netmask: None,
            protocol: None,
            service: None,
            httpmethod: None,
            virtualhost: None,
            fallback: None,
            fallbackcommand: None,
            quiescent: None,
            cleanstop: None,
        };
        for (l, text) in block {
            let l = *l;
            let Some((name, value)) = split_directive(text) else {
                return self.err(l, format!("Unknown command \"{text}\""));
            };
            match name {
                "real" => v.reals.push((l, value.to_string())),
                "real6" => {
                    return self.err(l, "cannot specify \"real6\" here.  please use \"real\" instead (IPv6 is not supported yet)");
                }
                "request" => {
                    let r = self.quoted(l, "request", value)?;
                    v.request = Some(if r.starts_with('/') { r } else { format!("/{r}") });
                }
                "receive" => v.receive = Some((l, self.quoted(l, "receive", value)?)),
                "checktype" => v.checktype = Some((l, self.checktype(l, value)?)),
                "checkcommand" => {
                    if Self::unquote(value).is_empty() {
                        return self.err(l, "invalid check command");
                    }
                }
                "checktimeout" => {
                    v.checktimeout = Some(self.positive(l, value, "check timeout")?)
                }
                "negotiatetimeout" => {
                    v.negotiatetimeout = Some(self.positive(l, value, "negotiate timeout")?)
                }
                "connecttimeout" => {
                    v.negotiatetimeout = Some(self.positive(l, value, "connect timeout")?);
                    self.warn(l, "connecttimeout is deprecated in favour of negotiatetimeout; taken as negotiatetimeout");
                }
                "checkcount" => {
                    self.positive(l, value, "check count")?;
                    self.warn(l, "checkcount is deprecated (it only applies to ping checks, which lbctl daemon does not do); please see 'failurecount'");
                }
                "failurecount" => {
                    v.failurecount = Some(self.positive(l, value, "failure count")?)
                }
                "checkinterval" => {
                    v.checkinterval = Some((l, self.positive(l, value, "checkinterval")?))
                }
                "checkport" => {
                    let p = value
                        .parse::<u32>()
                        .ok()
                        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()));
                    match p {
                        Some(p @ 1..=65535) => v.checkport = Some(p as u16),
                        Some(_) => return self.err(l, "checkport must be in range 1..65535"),
                        None => return self.err(l, "invalid port"),
                    }
                }
                "login" | "passwd" | "database" | "secret" | "load" => {
                    // Credentials of protocol checks lbctl does not do
                    // (refused below when such a check is asked for).
                    self.quoted(l, name, value)?;
                }
                "scheduler" => v.scheduler = Some(self.scheduler(l, value)?),
                "persistent" => match value.parse::<u32>() {
                    Ok(t @ 1..=MAX_TIMEOUT) if value.bytes().all(|b| b.is_ascii_digit()) => {
                        v.persistent = Some(t)
                    }
                    _ => {
                        return self.err(
                            l,
                            format!("invalid persistent timeout `{value}' (1 to {MAX_TIMEOUT} seconds)"),
                        );
                    }
                },
                "netmask" => {
                    let Ok(m) = value.parse::<Ipv4Addr>() else {
                        return self.err(l, "invalid netmask: dotted quad notation is required");
                    };
                    let bits = u32::from(m);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return self.err(l, format!("invalid netmask: {m} is not contiguous"));
                    }
                    v.netmask = Some(m);
                }
                "protocol" => {
                    v.protocol = Some(match value {
                        "tcp" => Proto::Tcp,
                        "udp" => Proto::Udp,
                        "fwm" => {
                            return self.err(l, "protocol must be tcp or udp if the virtual service is an address and port (fwmark services are not supported yet)");
                        }
                        _ => return self.err(l, "protocol must be tcp or udp if the virtual service is an address and port"),
                    })
                }
                "ops" => match value {
                    "no" => {}
                    "yes" => {
                        return self.err(l, "ops=yes (one-packet scheduling) is not supported yet");
                    }
                    _ => return self.err(l, "ops must be 'yes' or 'no'"),
                },
                "service" => {
                    const KNOWN: [&str; 20] = [
                        "dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap",
                        "nntp", "mysql", "none", "oracle", "pop", "pops", "radius", "pgsql",
                        "sip", "smtp", "submission", "simpletcp",
                    ];
                    if !KNOWN.contains(&value) {
                        return self.err(l, "service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, nntp, mysql, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission");
                    }
                    v.service = Some((l, value.to_string()));
                }
                "httpmethod" => {
                    let m = value.to_ascii_uppercase();
                    if m != "GET" && m != "HEAD" {
                        return self.err(l, "httpmethod must be GET or HEAD");
                    }
                    v.httpmethod = Some(m);
                }
                "virtualhost" => {
                    let h = Self::unquote(value);
                    if h.is_empty() {
                        return self.err(l, "invalid virtualhost");
                    }
                    v.virtualhost = Some(h.to_string());
                }
                "fallback" => {
                    let fb = self.fallback(l, value)?;
                    v.fallback = Some((l, fb));
                }
                "fallback6" => {
                    return self.err(l, "cannot specify \"fallback6\" here.  please use \"fallback\" instead");
                }
                "fallbackcommand" => {
                    let c = Self::unquote(value);
                    if c.is_empty() {
                        return self.err(l, "invalid fallback command");
                    }
                    v.fallbackcommand = Some(c.to_string());
                }
                "quiescent" => v.quiescent = Some(self.yes_no(l, name, value)?),
                "cleanstop" => v.cleanstop = Some(self.yes_no(l, name, value)?),
                "emailalert" | "emailalertfreq" | "emailalertstatus" | "smtp" => {
                    self.ignored(l, name, "e-mail alerts are not sent; the log has one line per change")
                }
                "monitorfile" => self.ignored(
                    l,
                    "monitorfile",
                    "the log has one line per state change and `lbctl daemon-status` shows each check's last result",
                ),
                "virtual" | "virtual6" => {
                    return self.err(l, "virtual= must start in the first column");
                }
                _ => return self.err(l, format!("Unknown command \"{text}\"")),
            }
        }
        self.raw_virtuals.push(v);
        Ok(())
    }

    fn checktype(&self, line: usize, value: &str) -> Result<CheckType, ConfigError> {
        match value {
            "connect" => Ok(CheckType::Connect),
            "negotiate" => Ok(CheckType::Negotiate),
            "on" => Ok(CheckType::On),
            "off" => Ok(CheckType::Off),
            "ping" | "external" | "external-perl" => self.err(
                line,
                format!("checktype={value} is not supported by lbctl daemon (supported: connect, negotiate, a number N, on, off)"),
            ),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => match n.parse::<u32>() {
                Ok(0) => Ok(CheckType::Negotiate),
                Ok(n) => Ok(CheckType::Combined(n)),
                Err(_) => self.err(line, "checktype number too large"),
            },
            _ => self.err(line, "checktype must be \"connect\", \"negotiate\", \"on\", \"off\", \"ping\", \"external\", \"external-perl\" or a positive number"),
        }
    }

    fn scheduler(&self, line: usize, value: &str) -> Result<Sched, ConfigError> {
        match value {
            "rr" => Ok(Sched::Rr),
            "wrr" => Ok(Sched::Wrr),
            s if UNSUPPORTED_SCHEDULERS.contains(&s) => self.err(
                line,
                format!("scheduler {s} is not supported yet (supported: rr, wrr)"),
            ),
            s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase()) => self.err(
                line,
                format!("scheduler {s}: no such scheduler (supported: rr, wrr)"),
            ),
            _ => self.err(
                line,
                "invalid scheduler, should be only lowercase letters (a-z)",
            ),
        }
    }

    /// `real=host[->host2][:port] gate [weight] ["request", "receive"]`.
    fn reals(
        &self,
        line: usize,
        text: &str,
        proto: Proto,
        vport: u16,
        out: &mut Vec<Real>,
    ) -> Result<(), ConfigError> {
        let text = text.trim();
        let (target, rest) = match text.find(char::is_whitespace) {
            Some(i) => (&text[..i], text[i..].trim_start()),
            None => {
                return self.err(
                    line,
                    "invalid real server line: the forwarding method is missing (real=ADDRESS[:PORT] gate [WEIGHT] [\"REQUEST\", \"RECEIVE\"])",
                );
            }
        };
        if target.contains('[') {
            return self.err(line, "IPv6 real servers are not supported yet");
        }
        let (hosts, port) = match target.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() => (h, Some(p)),
            Some(_) => return self.err(line, "invalid address for real server (wrong format)"),
            None => (target, None),
        };
        let port_given = match port {
            Some(p) => self.port(line, p, proto, "real server")?,
            None => 0,
        };
        let (first, last) = match hosts.split_once("->") {
            Some((a, b)) => (
                self.host(line, a, "real server")?,
                self.host(line, b, "real server")?,
            ),
            None => {
                let a = self.host(line, hosts, "real server")?;
                (a, a)
            }
        };
        if u32::from(first) > u32::from(last) {
            return self.err(line, format!(
                "Invalid Range: {first}-{last}: the first address must not be greater than the second"
            ));
        }
        // Forwarding method.
        let (method, mut rest) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        match method {
            "gate" => {}
            "masq" | "ipip" => {
                return self.err(
                    line,
                    format!("forwarding method {method} is not supported: lbctl forwards by direct routing (gate) only"),
                );
            }
            _ => return self.err(line, "forward method must be gate, masq or ipip"),
        }
        // Weight.
        let mut weight = 1;
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            weight = match rest[..end].parse::<u32>() {
                Ok(w) if w <= MAX_WEIGHT => w,
                _ => {
                    return self.err(
                        line,
                        format!("invalid weight {} (0 to {MAX_WEIGHT})", &rest[..end]),
                    );
                }
            };
            rest = rest[end..].trim_start();
        }
        // "request", "receive".
        let mut request = None;
        let mut receive = None;
        if !rest.is_empty() {
            let Some((req, rcv)) = parse_pair(rest) else {
                return self.err(line, format!("Invalid real server line, around \"{rest}\""));
            };
            request = Some(if req.starts_with('/') || req.starts_with("http://") {
                req
            } else {
                format!("/{req}")
            });
            receive = Some(self.regex(line, &rcv)?);
        }
        let count = u32::from(last) - u32::from(first) + 1;
        if out.len() + count as usize > MAX_SERVICE_DESTS {
            return self.err(
                line,
                format!(
                    "too many real servers in one virtual service (at most {MAX_SERVICE_DESTS})"
                ),
            );
        }
        for a in u32::from(first)..=u32::from(last) {
            let addr = Ipv4Addr::from(a);
            if addr.is_loopback() || addr.is_unspecified() {
                return self.err(line, format!(
                    "real server {addr} is the director itself: lbctl forwards by direct routing only"
                ));
            }
            let id = RealId { addr, port: vport };
            if let Some(prev) = out.iter().find(|r| r.id == id) {
                return self.err(line, format!(
                    "duplicate real server {addr}:{vport} (also on line {}; direct routing keeps the service's port)",
                    prev.line
                ));
            }
            out.push(Real {
                line,
                id,
                port_given,
                weight,
                check_port: 0,
                request: request.clone(),
                receive: receive.clone(),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Config, ConfigError> {
        let g = std::mem::take(&mut self.globals);
        let fork = g.fork.unwrap_or(false);
        let interval = g.checkinterval.unwrap_or(DEFAULT_CHECKINTERVAL);
        let raws = std::mem::take(&mut self.raw_virtuals);
        let mut virtuals: Vec<Virtual> = Vec::new();
        for raw in raws {
            let v = self.resolve_virtual(raw, &g, fork, interval)?;
            if let Some(prev) = virtuals.iter().find(|p| p.id() == v.id()) {
                return self.err(
                    v.line,
                    format!("duplicate virtual server (also on line {})", prev.line),
                );
            }
            virtuals.push(v);
        }
        Ok(Config {
            path: self.path,
            checkinterval: Duration::from_secs(interval.into()),
            autoreload: g.autoreload.unwrap_or(false),
            logfile: g.logfile,
            readdquiescent: g.readdquiescent.unwrap_or(false),
            maintenancedir: g.maintenancedir,
            virtuals,
            warnings: self.warnings,
        })
    }

    fn resolve_virtual(
        &mut self,
        raw: RawVirtual,
        g: &Globals,
        fork: bool,
        global_interval: u32,
    ) -> Result<Virtual, ConfigError> {
        let line = raw.line;
        let proto = raw
            .protocol
            .unwrap_or(if raw.port == "53" || raw.port == "domain" {
                Proto::Udp
            } else {
                Proto::Tcp
            });
        let addr = self.host(line, &raw.host, "virtual service")?;
        let port = self.port(line, &raw.port, proto, "virtual service")?;
        if port == 0 && raw.persistent.is_none() {
            return self.err(line, "Zero port specified for non-persistent service");
        }
        let id = ServiceId { proto, addr, port };
        let spec = ServiceSpec {
            id,
            sched: raw.scheduler.unwrap_or(Sched::Wrr),
            persistent: raw.persistent,
            netmask: match raw.persistent {
                Some(_) => raw.netmask.unwrap_or(Ipv4Addr::BROADCAST),
                None => Ipv4Addr::BROADCAST,
            },
        };
        // Checks.
        let (kind_line, kind) = raw.checktype.unwrap_or((line, CheckType::Negotiate));
        let (service_line, service_name) = raw
            .service
            .clone()
            .unwrap_or_else(|| (line, port_to_service(port).to_string()));
        let service = match service_name.as_str() {
            "http" => Some(CheckService::Http),
            "simpletcp" => Some(CheckService::SimpleTcp),
            "none" => Some(CheckService::None),
            _ => None,
        };
        let service = match service {
            Some(s) => s,
            None if kind.negotiates() => {
                let how = if raw.service.is_some() {
                    String::new()
                } else {
                    format!(" (the default for port {port})")
                };
                return self.err(service_line, format!(
                    "service={service_name}{how} cannot be checked with checktype={}: lbctl daemon negotiates {SUPPORTED_SERVICES}; use checktype=connect, on or off",
                    kind.name()
                ));
            }
            None => CheckService::None,
        };
        if kind.connects() && proto == Proto::Udp {
            return self.err(
                kind_line,
                "checktype=connect on a UDP service is a ping check in ldirectord, which lbctl daemon does not do; use checktype=on or off",
            );
        }
        let checktimeout = raw
            .checktimeout
            .or(raw.negotiatetimeout)
            .or(g.checktimeout)
            .or(g.negotiatetimeout)
            .unwrap_or(DEFAULT_CHECKTIMEOUT);
        let negotiatetimeout = raw
            .negotiatetimeout
            .or(raw.checktimeout)
            .or(g.negotiatetimeout)
            .or(g.checktimeout)
            .unwrap_or(DEFAULT_NEGOTIATETIMEOUT);
        let receive = match &raw.receive {
            Some((l, r)) => Some(self.regex(*l, r)?),
            None => None,
        };
        let checkinterval = match raw.checkinterval {
            Some((_, n)) if fork => n,
            Some((l, _)) => {
                self.warn(
                    l,
                    format!("checkinterval in virtual service {addr}:{port} ignored when fork=no"),
                );
                global_interval
            }
            None => global_interval,
        };
        // Real servers.
        let mut reals = Vec::new();
        for (l, text) in &raw.reals {
            self.reals(*l, text, proto, port, &mut reals)?;
        }
        for r in &mut reals {
            r.check_port = raw
                .checkport
                .or((r.port_given > 0).then_some(r.port_given))
                .or(service_to_port(&service_name))
                .unwrap_or(port);
        }
        // Fallback: the virtual's, else the global one.
        let fallback = match raw.fallback.as_ref().or(g.fallback.as_ref()) {
            Some((l, Some(fb))) => {
                let a = self.host(*l, &fb.host, "fallback server")?;
                if let Some(p) = &fb.port {
                    self.port(*l, p, proto, "fallback server")?;
                }
                let fid = RealId { addr: a, port };
                if let Some(r) = reals.iter().find(|r| r.id == fid) {
                    return self.err(*l, format!(
                        "fallback {a}:{port} is also a real server of virtual service {}:{} (line {})",
                        id.addr, id.port, r.line
                    ));
                }
                Some(fid)
            }
            _ => None,
        };
        Ok(Virtual {
            line,
            spec,
            reals,
            fallback,
            check: Check {
                kind,
                service,
                httpmethod: raw.httpmethod.unwrap_or_else(|| "GET".into()),
                request: raw.request.unwrap_or_else(|| "/".into()),
                receive,
                virtualhost: raw.virtualhost,
                checktimeout: Duration::from_secs(checktimeout.into()),
                negotiatetimeout: Duration::from_secs(negotiatetimeout.into()),
            },
            checkinterval: Duration::from_secs(checkinterval.into()),
            failurecount: raw.failurecount.or(g.failurecount).unwrap_or(1),
            quiescent: raw.quiescent.or(g.quiescent).unwrap_or(true),
            cleanstop: raw.cleanstop.or(g.cleanstop).unwrap_or(true),
            fallbackcommand: raw.fallbackcommand.or_else(|| g.fallbackcommand.clone()),
        })
    }
}

/// `"request", "receive"` (a comma or a space between the two).
fn parse_pair(s: &str) -> Option<(String, String)> {
    let s = s.strip_prefix('"')?;
    let (req, rest) = s.split_once('"')?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    let rest = rest.strip_prefix('"')?;
    let (rcv, tail) = rest.rsplit_once('"')?;
    (tail.trim().is_empty() && !req.is_empty()).then(|| (req.to_string(), rcv.to_string()))
}

/// ldirectord's `ld_port_to_service`: the check service a port implies.
pub fn port_to_service(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        25 => "smtp",
        53 => "dns",
        80 => "http",
        110 => "pop",
        119 => "nntp",
        143 => "imap",
        389 => "ldap",
        443 => "https",
        587 => "submission",
        993 => "imaps",
        995 => "pops",
        1521 => "oracle",
        1812 => "radius",
        3128 => "http_proxy",
        3306 => "mysql",
        5060 => "sip",
        5432 => "pgsql",
        _ => "none",
    }
}

/// ldirectord's `ld_service_to_port`.
fn service_to_port(service: &str) -> Option<u16> {
    Some(match service {
        "ftp" => 21,
        "smtp" => 25,
        "dns" => 53,
        "http" => 80,
        "pop" => 110,
        "nntp" => 119,
        "imap" => 143,
        "ldap" => 389,
        "https" => 443,
        "submission" => 587,
        "imaps" => 993,
        "pops" => 995,
        "oracle" => 1521,
        "radius" => 1812,
        "http_proxy" => 3128,
        "mysql" => 3306,
        "sip" => 5060,
        "pgsql" => 5432,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

    fn names() -> Resolver {
        Resolver::from_text(
            "203.0.113.10 www www.example.org\n198.51.100.11 rs1.example.org rs1\n",
            "http 80/tcp www\nsmtp 25/tcp mail\ndomain 53/udp\ndomain 53/tcp\n",
        )
    }

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/ha.d/test.cf"), text, &names())
    }

    fn fixture(name: &str) -> Config {
        let path = Path::new(DATA).join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        parse(&path, &text, &names()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn ldirectord_sample_parses() {
        let c = fixture("ldirectord-sample.cf");
        assert_eq!(c.checkinterval, secs(1));
        assert!(c.autoreload);
        assert_eq!(c.virtuals.len(), 1);
        let v = &c.virtuals[0];
        assert_eq!(v.line, 22);
        assert_eq!(
            v.spec,
            ServiceSpec {
                id: ServiceId {
                    proto: Proto::Tcp,
                    addr: ip("203.0.113.240"),
                    port: 80
                },
                sched: Sched::Rr,
                persistent: None,
                netmask: Ipv4Addr::BROADCAST,
            }
        );
        let reals: Vec<(Ipv4Addr, u16, u32, u16)> = v
            .reals
            .iter()
            .map(|r| (r.id.addr, r.id.port, r.weight, r.check_port))
            .collect();
        assert_eq!(
            reals,
            [
                (ip("198.51.100.2"), 80, 1, 80),
                (ip("198.51.100.3"), 80, 1, 80),
                (ip("198.51.100.6"), 80, 1, 80)
            ]
        );
        assert!(!v.quiescent);
        assert!(v.cleanstop);
        assert_eq!(v.failurecount, 1);
        assert_eq!(v.check.kind, CheckType::Negotiate);
        assert_eq!(v.check.service, CheckService::Http);
        assert_eq!(v.check.request, "/index.html");
        assert_eq!(v.check.receive.as_ref().unwrap().source, "Test Page");
        assert_eq!(v.check.virtualhost.as_deref(), Some("www.x.y.z"));
        assert_eq!(v.check.checktimeout, secs(3));
        // negotiatetimeout falls back to checktimeout, as in ld_setup.
        assert_eq!(v.check.negotiatetimeout, secs(3));
        // The director itself as fallback: ignored, with a warning on its line.
        assert_eq!(v.fallback, None);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].line, 26);
        assert!(
            c.warnings[0]
                .message
                .contains("fallback 127.0.0.1:80 is the director itself")
        );
    }

    #[test]
    fn every_directive_is_read() {
        let c = fixture("ldirectord-full.cf");
        assert_eq!(c.checkinterval, secs(2));
        assert!(!c.autoreload);
        assert_eq!(
            c.logfile.as_deref(),
            Some(Path::new("/var/log/lbctl-daemon.log"))
        );
        assert!(c.readdquiescent);
        assert_eq!(c.virtuals.len(), 3);

        let web = &c.virtuals[0];
        assert_eq!(
            web.id(),
            ServiceId {
                proto: Proto::Tcp,
                addr: ip("203.0.113.10"),
                port: 80
            }
        );
        assert_eq!(web.spec.sched, Sched::Wrr);
        assert_eq!(web.spec.persistent, Some(600));
        assert_eq!(web.spec.netmask, ip("255.255.255.0"));
        assert_eq!(web.check.kind, CheckType::Negotiate);
        assert_eq!(web.check.service, CheckService::Http);
        assert_eq!(web.check.httpmethod, "HEAD");
        assert_eq!(web.check.request, "/health");
        assert_eq!(web.check.receive.as_ref().unwrap().source, "OK|ready");
        assert_eq!(web.check.virtualhost.as_deref(), Some("www.example.org"));
        assert_eq!(
            (web.check.checktimeout, web.check.negotiatetimeout),
            (secs(1), secs(2))
        );
        assert_eq!(web.failurecount, 2);
        assert!(!web.quiescent && web.cleanstop);
        assert_eq!(
            web.fallback,
            Some(RealId {
                addr: ip("198.51.100.20"),
                port: 80
            })
        );
        assert_eq!(
            web.fallbackcommand.as_deref(),
            Some("/usr/local/sbin/sorry-page")
        );
        let reals: Vec<(Ipv4Addr, u32, u16)> = web
            .reals
            .iter()
            .map(|r| (r.id.addr, r.weight, r.check_port))
            .collect();
        assert_eq!(
            reals,
            [
                (ip("198.51.100.11"), 3, 8080),
                (ip("198.51.100.12"), 2, 8080),
                (ip("198.51.100.13"), 1, 8080),
                (ip("198.51.100.14"), 1, 8080),
            ]
        );
        assert!(web.reals.iter().all(|r| r.id.port == 80));
        assert_eq!(web.reals[1].request.as_deref(), Some("/alive"));
        assert_eq!(web.reals[1].receive.as_ref().unwrap().source, "^yes$");
        assert_eq!(web.reals[0].request, None);

        let mail = &c.virtuals[1];
        assert_eq!(mail.id().port, 25);
        assert_eq!(mail.spec.sched, Sched::Rr);
        assert_eq!(mail.check.kind, CheckType::Combined(2));
        assert_eq!(mail.check.service, CheckService::SimpleTcp);
        assert_eq!(mail.check.request, "/EHLO lb\\nQUIT\\n");
        assert_eq!(
            (mail.check.checktimeout, mail.check.negotiatetimeout),
            (secs(4), secs(9))
        );
        assert_eq!(mail.failurecount, 3);
        assert!(mail.quiescent && !mail.cleanstop);
        // The global fallback, on the virtual service's port.
        assert_eq!(
            mail.fallback,
            Some(RealId {
                addr: ip("198.51.100.99"),
                port: 25
            })
        );
        assert_eq!(mail.reals[1].weight, 0);
        // No port on the real: the check goes to the service's port.
        assert_eq!(mail.reals[0].check_port, 25);

        let dns = &c.virtuals[2];
        assert_eq!(
            dns.id(),
            ServiceId {
                proto: Proto::Udp,
                addr: ip("203.0.113.10"),
                port: 53
            }
        );
        assert_eq!(dns.check.kind, CheckType::On);
        assert_eq!(
            dns.fallbackcommand.as_deref(),
            Some("/usr/local/sbin/dns-sorry")
        );

        // Warnings: ignored e-mail alerts, callback, monitorfile.
        let lines: Vec<usize> = c.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [15, 16, 17, 18, 19, 20, 44, 45], "{:?}", c.warnings);
        assert!(c.warnings[5].message.contains("callback is not supported"));
        assert!(
            c.warnings[7]
                .message
                .contains("monitorfile is not supported")
        );
    }

    #[test]
    fn defaults_are_ldirectords() {
        let c = parse_str("virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n").unwrap();
        assert_eq!(c.checkinterval, secs(10));
        assert!(!c.autoreload && !c.readdquiescent);
        assert_eq!(c.logfile, None);
        let v = &c.virtuals[0];
        assert_eq!(v.spec.sched, Sched::Wrr);
        assert_eq!(v.spec.persistent, None);
        assert_eq!(v.check.kind, CheckType::Negotiate);
        assert_eq!(v.check.service, CheckService::Http);
        assert_eq!(v.check.request, "/");
        assert_eq!(v.check.receive, None);
        assert_eq!(v.check.httpmethod, "GET");
        assert_eq!(
            (v.check.checktimeout, v.check.negotiatetimeout),
            (secs(5), secs(30))
        );
        assert_eq!(v.failurecount, 1);
        assert!(v.quiescent && v.cleanstop);
        assert_eq!(v.reals[0].weight, 1);
        assert_eq!(v.reals[0].check_port, 80);
        assert!(c.warnings.is_empty());

        // Another port: service none (always up); port 53: UDP.
        let c = parse_str("virtual=203.0.113.10:8080\n\treal=198.51.100.11 gate\nvirtual=203.0.113.10:53\n\treal=198.51.100.11 gate\n\tchecktype=off\n").unwrap();
        assert_eq!(c.virtuals[0].check.service, CheckService::None);
        assert_eq!(c.virtuals[1].id().proto, Proto::Udp);

        // Each timeout falls back to the other, the virtual's first.
        let t = |text: &str| {
            let v = &parse_str(text).unwrap().virtuals[0];
            (
                v.check.checktimeout.as_secs(),
                v.check.negotiatetimeout.as_secs(),
            )
        };
        let svc = "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n";
        assert_eq!(t(&format!("negotiatetimeout=7\n{svc}")), (7, 7));
        assert_eq!(t(&format!("checktimeout=2\n{svc}")), (2, 2));
        assert_eq!(
            t(&format!("checktimeout=2\n{svc}\tnegotiatetimeout=6\n")),
            (6, 6)
        );
        assert_eq!(
            t(&format!("negotiatetimeout=8\n{svc}\tchecktimeout=1\n")),
            (1, 1)
        );
        // Globals apply wherever they are written.
        assert_eq!(t(&format!("{svc}checktimeout=4\n")), (4, 4));
    }

    #[test]
    fn block_layout_follows_ldirectord() {
        // Comment and blank lines inside a block; a tab or 4+ spaces indent;
        // a line in the first column ends the block.
        let c = parse_str(
            "virtual=203.0.113.10:80\n    real=198.51.100.11 gate\n# note\n\n\t# indented note\n\treal=198.51.100.12 gate # trailing\nquiescent=no\nvirtual = 203.0.113.11:80\n        real = 198.51.100.13 gate\n",
        )
        .unwrap();
        assert_eq!(c.virtuals[0].reals.len(), 2);
        assert!(!c.virtuals[0].quiescent);
        assert_eq!(c.virtuals[1].reals[0].id.addr, ip("198.51.100.13"));
        // A '#' inside quotes is not a comment.
        let c =
            parse_str("virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\treceive=\"#1 in\"\n")
                .unwrap();
        assert_eq!(
            c.virtuals[0].check.receive.as_ref().unwrap().source,
            "#1 in"
        );
    }

    #[test]
    fn names_from_etc_hosts_and_services() {
        let c = parse_str(
            "virtual=www:www\n\treal=rs1.example.org:http gate\n\treal=rs1->198.51.100.12 gate\n",
        )
        .err();
        // rs1 twice: the range repeats .11.
        assert!(
            c.unwrap()
                .message
                .contains("duplicate real server 198.51.100.11:80 (also on line 2")
        );
        let c = parse_str("virtual=www:smtp\n\treal=rs1:mail gate\n\tchecktype=connect\n").unwrap();
        assert_eq!(c.virtuals[0].id().port, 25);
        assert_eq!(c.virtuals[0].reals[0].check_port, 25);
        let e = parse_str("virtual=nowhere:80\n\treal=rs1 gate\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (
                1,
                "invalid address (nowhere) for virtual service (could not resolve host from /etc/hosts)"
            )
        );
        let e = parse_str("virtual=www:gopher\n\treal=rs1 gate\n").unwrap_err();
        assert!(
            e.message
                .contains("invalid port (gopher) for virtual service"),
            "{e}"
        );
    }

    #[test]
    fn real_server_lines() {
        let v = |line: &str| {
            parse_str(&format!("virtual=203.0.113.10:80\n\treal={line}\n"))
                .map(|c| c.virtuals[0].reals.clone())
        };
        let r = v("198.51.100.11:8080 gate 5").unwrap();
        // Direct routing keeps the service's port; checks go to the real's.
        assert_eq!(
            (r[0].id.port, r[0].port_given, r[0].check_port, r[0].weight),
            (80, 8080, 8080, 5)
        );
        let r = v("198.51.100.11 gate \"status\" \"alive\"").unwrap();
        assert_eq!(r[0].request.as_deref(), Some("/status"));
        let r = v("198.51.100.11->198.51.100.20 gate 2").unwrap();
        assert_eq!(r.len(), 10);
        assert!(r.iter().all(|x| x.weight == 2));
        let r = v("198.51.100.11 gate \"http://198.51.100.50:81/x\", \"y\"").unwrap();
        assert_eq!(r[0].request.as_deref(), Some("http://198.51.100.50:81/x"));
    }

    /// Each kind of mistake gives its message on its line (and the file).
    #[test]
    fn mistakes_name_the_file_the_line_and_the_problem() {
        let svc = "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n";
        let cases: Vec<(String, usize, &str)> = vec![
            ("bogus=1\n".into(), 1, "Unknown command \"bogus=1\""),
            (
                "checktimeout=0\n".into(),
                1,
                "invalid check timeout value `0'",
            ),
            (
                "checkinterval=ten\n".into(),
                1,
                "invalid check interval value `ten'",
            ),
            (
                "failurecount=-1\n".into(),
                1,
                "invalid failure count value `-1'",
            ),
            (
                "autoreload=maybe\n".into(),
                1,
                "autoreload must be 'yes' or 'no'",
            ),
            ("quiescent=1\n".into(), 1, "quiescent must be 'yes' or 'no'"),
            (
                "logfile=/var/log/x\n".into(),
                1,
                "logfile must be in double quotes",
            ),
            ("execute=other.cf\n".into(), 1, "execute is not supported"),
            ("timeout=3\n".into(), 1, "timeout directive deprecated"),
            (
                "real=198.51.100.11 gate\n".into(),
                1,
                "real= must be inside a virtual= block",
            ),
            (
                "  checktimeout=3\n".into(),
                1,
                "Unknown command \"checktimeout=3\": an indented directive",
            ),
            (
                "fallback=198.51.100.9:80 masq\n".into(),
                1,
                "fallback forwarding method masq is not supported",
            ),
            (
                "virtual=1\n\treal=198.51.100.11 gate\n".into(),
                1,
                "firewall-mark virtual services",
            ),
            (
                "virtual6=[2001:db8::1]:80\n".into(),
                1,
                "IPv6 virtual services (virtual6) are not supported",
            ),
            (
                "virtual=[2001:db8::1]:80\n".into(),
                1,
                "cannot specify an IPv6 address here",
            ),
            (
                "virtual=203.0.113.10\n".into(),
                1,
                "invalid address for virtual server",
            ),
            (
                "virtual=203.0.113.10:0\n\treal=198.51.100.11 gate\n".into(),
                1,
                "Zero port specified for non-persistent service",
            ),
            (
                format!("{svc}\treal=198.51.100.12 masq\n"),
                3,
                "forwarding method masq is not supported: lbctl forwards by direct routing (gate) only",
            ),
            (
                format!("{svc}\treal=198.51.100.12 ipip\n"),
                3,
                "forwarding method ipip is not supported",
            ),
            (
                format!("{svc}\treal=198.51.100.12 route\n"),
                3,
                "forward method must be gate, masq or ipip",
            ),
            (
                format!("{svc}\treal=198.51.100.12\n"),
                3,
                "the forwarding method is missing",
            ),
            (
                format!("{svc}\treal=198.51.100.12 gate 70000\n"),
                3,
                "invalid weight 70000",
            ),
            (
                format!("{svc}\treal=198.51.100.12 gate 1 junk\n"),
                3,
                "Invalid real server line, around \"junk\"",
            ),
            (
                format!("{svc}\treal=198.51.100.20->198.51.100.12 gate\n"),
                3,
                "Invalid Range",
            ),
            (
                format!("{svc}\treal=127.0.0.1 gate\n"),
                3,
                "real server 127.0.0.1 is the director itself",
            ),
            (
                format!("{svc}\treal6=[2001:db8::2]:80 gate\n"),
                3,
                "cannot specify \"real6\" here",
            ),
            (
                format!("{svc}\treal=198.51.100.11 gate\n"),
                3,
                "duplicate real server 198.51.100.11:80 (also on line 2",
            ),
            (
                format!("{svc}\tchecktype=ping\n"),
                3,
                "checktype=ping is not supported by lbctl daemon",
            ),
            (
                format!("{svc}\tchecktype=external\n"),
                3,
                "checktype=external is not supported",
            ),
            (
                format!("{svc}\tchecktype=sometimes\n"),
                3,
                "checktype must be",
            ),
            (
                format!("{svc}\tservice=https\n"),
                3,
                "service=https cannot be checked with checktype=negotiate: lbctl daemon negotiates http, simpletcp, none",
            ),
            (
                format!("{svc}\tservice=gopher\n"),
                3,
                "service must be dns, ftp",
            ),
            (
                format!("{svc}\tscheduler=wlc\n"),
                3,
                "scheduler wlc is not supported yet (supported: rr, wrr)",
            ),
            (
                format!("{svc}\tscheduler=fancy\n"),
                3,
                "scheduler fancy: no such scheduler",
            ),
            (
                format!("{svc}\tscheduler=W-RR\n"),
                3,
                "invalid scheduler, should be only lowercase letters",
            ),
            (
                format!("{svc}\tpersistent=0\n"),
                3,
                "invalid persistent timeout `0'",
            ),
            (
                format!("{svc}\tnetmask=255.0.255.0\n"),
                3,
                "invalid netmask: 255.0.255.0 is not contiguous",
            ),
            (
                format!("{svc}\tnetmask=24\n"),
                3,
                "invalid netmask: dotted quad notation is required",
            ),
            (
                format!("{svc}\tprotocol=fwm\n"),
                3,
                "fwmark services are not supported yet",
            ),
            (
                format!("{svc}\tprotocol=sctp\n"),
                3,
                "protocol must be tcp or udp",
            ),
            (
                format!("{svc}\tops=yes\n"),
                3,
                "ops=yes (one-packet scheduling) is not supported yet",
            ),
            (
                format!("{svc}\trequest=/index.html\n"),
                3,
                "request must be in double quotes",
            ),
            (format!("{svc}\treceive=\"\"\n"), 3, "receive: empty string"),
            (
                format!("{svc}\treceive=\"(unclosed\"\n"),
                3,
                "is not a regular expression",
            ),
            (
                format!("{svc}\treceive=\"(?<=x)y\"\n"),
                3,
                "is not a regular expression",
            ),
            (
                format!("{svc}\thttpmethod=POST\n"),
                3,
                "httpmethod must be GET or HEAD",
            ),
            (
                format!("{svc}\tcheckport=0\n"),
                3,
                "checkport must be in range 1..65535",
            ),
            (
                format!("{svc}\tfailurecount=0\n"),
                3,
                "invalid failure count `0'",
            ),
            (
                format!("{svc}\tfallback6=[::1]:80\n"),
                3,
                "cannot specify \"fallback6\" here",
            ),
            (
                format!("{svc}\tfallback=198.51.100.11\n"),
                3,
                "fallback 198.51.100.11:80 is also a real server",
            ),
            (
                format!("{svc}\tcleanstop=sometimes\n"),
                3,
                "cleanstop must be 'yes' or 'no'",
            ),
            (
                format!("{svc}\tvirtualhost\n"),
                3,
                "Unknown command \"virtualhost\"",
            ),
            (
                format!("{svc}\tfrobnicate=1\n"),
                3,
                "Unknown command \"frobnicate=1\"",
            ),
            (
                format!("{svc}  real=198.51.100.12 gate\n"),
                3,
                "Unknown command",
            ),
            (
                format!("{svc}{svc}"),
                3,
                "duplicate virtual server (also on line 1)",
            ),
            (
                "virtual=203.0.113.10:53\n\treal=198.51.100.11 gate\n\tchecktype=connect\n".into(),
                3,
                "checktype=connect on a UDP service is a ping check in ldirectord",
            ),
            (
                "virtual=203.0.113.10:443\n\treal=198.51.100.11 gate\n".into(),
                1,
                "service=https (the default for port 443) cannot be checked with checktype=negotiate",
            ),
        ];
        for (text, line, msg) in cases {
            let e = parse_str(&text).expect_err(&text);
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.message.contains(msg), "{text}: got {e}, wanted {msg}");
            assert!(
                e.to_string()
                    .starts_with(&format!("/etc/ha.d/test.cf:{line}: ")),
                "{e}"
            );
        }
        // A service lbctl cannot negotiate is fine when it is not negotiated.
        assert!(parse_str(&format!("{svc}\tservice=https\n\tchecktype=connect\n")).is_ok());
        // Too many real servers for one service.
        let e = parse_str("virtual=203.0.113.10:80\n\treal=198.51.100.1->198.51.100.100 gate\n")
            .unwrap_err();
        assert!(e.message.contains("too many real servers"), "{e}");
        // A missing file.
        let e = load(Path::new("/nonexistent/ldirectord.cf")).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/ldirectord.cf: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn tolerated_directives_warn() {
        let c = parse_str(
            "connecttimeout=4\nchecktimeout=2\nfallback6=[::1]:80\nlogfile=\"local0\"\nsupervised\nfork=no\nvirtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\tcheckinterval=3\n\tcheckcount=2\n\tsmtp=mail\n",
        )
        .unwrap();
        let msgs: Vec<(usize, &str)> = c
            .warnings
            .iter()
            .map(|w| (w.line, w.message.as_str()))
            .collect();
        assert_eq!(msgs.len(), 7, "{msgs:?}");
        assert!(msgs[0].1.starts_with("connecttimeout is deprecated"));
        assert!(msgs[1].1.starts_with("fallback6 is not supported"));
        assert!(msgs[2].1.contains("syslog facility"));
        assert!(msgs[3].1.contains("bare supervised"));
        assert_eq!(msgs[4].0, 10); // checkcount
        assert_eq!(msgs[5].0, 11); // smtp
        assert_eq!(
            msgs[6],
            (
                9,
                "checkinterval in virtual service 203.0.113.10:80 ignored when fork=no"
            )
        );
        assert_eq!(c.virtuals[0].checkinterval, secs(10));
        assert_eq!(c.virtuals[0].check.negotiatetimeout, secs(4));
        // With fork=yes the virtual's interval is used.
        let c = parse_str(
            "fork=yes\nvirtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\tcheckinterval=3\n",
        )
        .unwrap();
        assert_eq!(c.virtuals[0].checkinterval, secs(3));
        assert!(c.warnings.is_empty());
    }
}

//! What a parsed `ldirectord.cf` is: the virtual services, their real
//! servers and checks, with ldirectord's defaults, and [`ConfigError`].

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use regex::Regex;

use crate::model::{Fwd, RealId, ServiceId, ServiceSpec, Thresholds};

/// ldirectord's `$CHECKINTERVAL` default.
pub const DEFAULT_CHECKINTERVAL: u32 = 10;
/// ldirectord's `$DEFAULT_CHECKTIMEOUT`.
pub const DEFAULT_CHECKTIMEOUT: u32 = 5;
/// ldirectord's `$DEFAULT_NEGOTIATETIMEOUT`.
pub const DEFAULT_NEGOTIATETIMEOUT: u32 = 30;
/// The check services `lbctl daemon` can negotiate.
pub(super) const SUPPORTED_SERVICES: &str = "http, https, simpletcp, none";

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
    pub(super) fn negotiates(self) -> bool {
        matches!(self, CheckType::Negotiate | CheckType::Combined(_))
    }
    pub(super) fn connects(self) -> bool {
        matches!(self, CheckType::Connect | CheckType::Combined(_))
    }
}

/// The `service` of a negotiate check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckService {
    /// HTTP `GET`/`HEAD` of `request`; a 2xx answer whose body matches
    /// `receive` is a success.
    Http,
    /// As `Http`, over TLS: the server's certificate is not verified (as
    /// ldirectord's LWP with `verify_hostname => 0`); SNI is `virtualhost`.
    Https,
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
            CheckService::Https => "https",
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
    /// As the dataplane has it: `gate` and `ipip` reals of TCP and UDP
    /// services have the service's port, `masq` ones the port given (0 when
    /// none: the packet's port).
    pub id: RealId,
    /// `gate`, `ipip` or `masq`.
    pub fwd: Fwd,
    /// The port the line gave (0 when none), as ldirectord keeps it.
    pub port_given: u16,
    pub weight: u32,
    /// `l:LOWER` and `u:UPPER` (`-y`, `-x`; none when not given).
    pub thresholds: Thresholds,
    /// Where checks go: `checkport`, else the real's own port, else the
    /// port of the `service` protocol, else the service's port.
    pub check_port: u16,
    /// A per-real `"request", "receive"` pair, overriding the virtual's.
    pub request: Option<String>,
    pub receive: Option<Receive>,
}

impl Real {
    pub fn check_addr(&self) -> SocketAddr {
        SocketAddr::new(self.id.addr, self.check_port)
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
    /// The fallback's method (`gate` when it has none).
    pub fallback_fwd: Fwd,
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

/// Where `logfile=` sends the log: ldirectord's `ld_openlog` takes a value
/// with a leading `/` as a file, anything else as a syslog(3) facility name
/// (Perl's `Sys::Syslog`: any case, with or without `LOG_`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// Appended to, opened for each line.
    File(PathBuf),
    /// `syslog(3)` through `/dev/log` with this facility, lower case
    /// without `log_` (`local0`).
    Syslog(String),
}

impl LogTarget {
    /// ldirectord's rule, with the facility name checked: an unknown name is
    /// refused (`Sys::Syslog` would die at the first line).
    pub fn parse(value: &str) -> Result<LogTarget, String> {
        if value.starts_with('/') {
            return Ok(LogTarget::File(PathBuf::from(value)));
        }
        let lower = value.to_ascii_lowercase();
        let name = lower.strip_prefix("log_").unwrap_or(&lower);
        match name.parse::<syslog::Facility>() {
            Ok(_) => Ok(LogTarget::Syslog(name.to_string())),
            Err(()) => Err(format!(
                "unable to open logfile: {value} (neither an absolute path nor a syslog facility: \
                 kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, \
                 local0 to local7)"
            )),
        }
    }
}

/// A whole configuration file.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    /// The global `checkinterval` (also how often `autoreload` looks).
    pub checkinterval: Duration,
    pub autoreload: bool,
    /// `logfile=`; `None`: standard error.
    pub logfile: Option<LogTarget>,
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
pub(super) fn service_to_port(service: &str) -> Option<u16> {
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

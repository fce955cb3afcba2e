//! The `ldirectord.cf` grammar, as ldirectord's `read_config` reads it: one
//! pass over the lines collects globals and raw virtual blocks, then
//! `finish` resolves them (names, ports, defaults) into a [`Config`].

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use lb_common::{MAX_SERVICE_DESTS, MAX_TIMEOUT, MAX_WEIGHT};
use regex::Regex;

mod hosts;
mod reals;

use hosts::{is_port_word, split_port, wrong_family};

use super::types::*;
use crate::{
    addr::{addr_port, full_netmask, v6_netmask},
    model::{Fwd, MAX_THRESHOLD, Proto, RealId, Sched, ServiceId, ServiceSpec, Thresholds, Tunnel},
    resolve::Resolver,
};

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

/// Global directives as written (unset = `None`), resolved at the end as
/// ldirectord's `ld_setup` does (a global applies wherever it appears).
#[derive(Default)]
struct Globals {
    checktimeout: Option<u32>,
    negotiatetimeout: Option<u32>,
    checkinterval: Option<u32>,
    failurecount: Option<u32>,
    fallback: Option<(usize, Option<FallbackSpec>)>,
    /// `fallback6=`: the fallback of IPv6 virtual services.
    fallback6: Option<(usize, Option<FallbackSpec>)>,
    fallbackcommand: Option<String>,
    autoreload: Option<bool>,
    logfile: Option<LogTarget>,
    fork: Option<bool>,
    quiescent: Option<bool>,
    readdquiescent: Option<bool>,
    cleanstop: Option<bool>,
    maintenancedir: Option<PathBuf>,
}

/// `fallback[6]=host[:port] [gate|masq|ipip]`, not resolved yet.
#[derive(Clone)]
struct FallbackSpec {
    host: String,
    port: Option<String>,
    fwd: Fwd,
}

/// A virtual block as written.
struct RawVirtual {
    line: usize,
    /// `virtual6=`: an IPv6 service (its reals and fallback are IPv6 too).
    v6: bool,
    /// `virtual=MARK`: a fwmark service (`host` and `port` are then empty).
    fwmark: Option<u32>,
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
    schedflags: Option<(usize, String)>,
    /// The line of `ops=yes`: one-packet scheduling (ipvsadm `-o`).
    ops: Option<usize>,
    persistent: Option<u32>,
    netmask: Option<IpAddr>,
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
            message: crate::input::bound_message(message.into()),
        })
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(Warning {
            line,
            message: crate::input::bound_message(message.into()),
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
                self.virtual_block(lineno, value, name == "virtual6", &block)?;
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
                let fb = self.fallback(line, value, false)?;
                self.globals.fallback = Some((line, fb));
            }
            "fallback6" => {
                let fb = self.fallback(line, value, true)?;
                self.globals.fallback6 = Some((line, fb));
            }
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
                match LogTarget::parse(&v) {
                    Ok(t) => self.globals.logfile = Some(t),
                    Err(e) => return self.err(line, e),
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
            "real" | "real6" | "request" | "receive" | "service" | "scheduler" | "checktype"
            | "protocol" | "persistent" | "netmask" | "checkport" | "virtualhost" => {
                return self.err(
                    line,
                    format!("{name}= must be inside a virtual= block, indented by at least 4 spaces or a tab"),
                );
            }
            _ => return self.err(line, format!("Unknown command \"{name}={value}\"")),
        }
        Ok(())
    }

    /// `fallback=host[:port] [gate|masq|ipip]` (`fallback6=` when `v6`, its
    /// IPv6 address in brackets: `[2001:db8::99]:80`; `gate` when no method
    /// is given). A loopback fallback (the director itself, as in
    /// ldirectord's sample) cannot be reached: ignored with a warning
    /// (`None`).
    fn fallback(
        &mut self,
        line: usize,
        value: &str,
        v6: bool,
    ) -> Result<Option<FallbackSpec>, ConfigError> {
        let mut words = value.split_whitespace();
        let Some(target) = words.next() else {
            return self.err(line, format!("invalid fallback server: {value}"));
        };
        let fwd = match words.next().map(reals::forward) {
            None => Fwd::Route,
            Some(Some(fwd)) => fwd,
            Some(None) => return self.err(line, "forward method must be gate, masq or ipip"),
        };
        if let Some(extra) = words.next() {
            return self.err(line, format!("invalid fallback server, around \"{extra}\""));
        }
        let (host, port) = split_port(target);
        let (host, port) = (host.to_string(), port.map(str::to_string));
        let addr = self.fallback_host(line, &host, v6)?;
        if addr.is_loopback() || addr.is_unspecified() {
            self.warn(
                line,
                format!(
                    "fallback {target} is the director itself: lbctl cannot deliver to a \
                     server on the director, so this fallback is ignored (name another server \
                     instead)"
                ),
            );
            return Ok(None);
        }
        Ok(Some(FallbackSpec { host, port, fwd }))
    }

    /// A `virtual=` (`virtual6=` when `v6`) line and its block.
    fn virtual_block(
        &mut self,
        line: usize,
        value: &str,
        v6: bool,
        block: &[(usize, String)],
    ) -> Result<(), ConfigError> {
        let value = value.trim();
        // ldirectord's patterns, in its order: an IPv6 address goes in
        // brackets, and only after `virtual6`.
        let bracketed = value.strip_prefix('[').and_then(|v| v.split_once("]:"));
        let (host, port, fwmark) = match value.rsplit_once(':') {
            _ if value.starts_with('[') && !v6 && bracketed.is_some() => {
                return self.err(
                    line,
                    "cannot specify an IPv6 address here. please use \"virtual6\" instead.",
                );
            }
            _ if value.starts_with('[') => match bracketed {
                Some((a, p))
                    if !a.is_empty()
                        && a.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
                        && !p.is_empty()
                        && is_port_word(p) =>
                {
                    if a.parse::<Ipv6Addr>().is_err() {
                        return self.err(line, "invalid ipv6 address for virtual server");
                    }
                    (format!("[{a}]"), p.to_string(), None)
                }
                _ => return self.err(line, "invalid address for virtual server"),
            },
            // A name (no colon in it) and a port; an IPv6 address without
            // brackets is not an address for ldirectord (it would read the
            // name `2001` and the port `db8`).
            Some((h, _)) if v6 && h.contains(':') => {
                return self.err(
                    line,
                    "invalid address for virtual server (an IPv6 address is written in brackets: virtual6=[2001:db8::1]:80)",
                );
            }
            Some((h, p)) if !h.is_empty() && !p.is_empty() => (h.to_string(), p.to_string(), None),
            // ldirectord's `virtual=MARK` (a number): `-f MARK`.
            _ if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                match value.parse::<u32>() {
                    Ok(m @ 1..) => (String::new(), "0".to_string(), Some(m)),
                    _ => {
                        return self.err(
                            line,
                            format!("invalid fwmark value `{value}' (1 to {})", u32::MAX),
                        );
                    }
                }
            }
            _ => return self.err(line, "invalid address for virtual server"),
        };
        let mut v = RawVirtual {
            line,
            v6,
            fwmark,
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
            schedflags: None,
            ops: None,
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
                "real" | "real6" if (name == "real6") != v6 => {
                    return self.err(l, wrong_family(name, "real", v6));
                }
                "real" | "real6" => v.reals.push((l, value.to_string())),
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
                "scheduler" => v.scheduler = Some(Sched::from_ldirectord(value).or_else(|m| self.err(l, m))?),
                "schedflags" => match value.split_whitespace().next() {
                    Some(w) => v.schedflags = Some((l, w.to_string())),
                    None => return self.err(l, "invalid sched-flags"),
                },
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
                "netmask" if v6 => match value.parse::<u8>() {
                    Ok(n @ 1..=128) if value.bytes().all(|b| b.is_ascii_digit()) => {
                        v.netmask = Some(v6_netmask(n).into())
                    }
                    _ => {
                        return self.err(
                            l,
                            "invalid netmask: a prefix length between 1 and 128 is required",
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
                    v.netmask = Some(m.into());
                }
                "protocol" => {
                    v.protocol = Some(match (value, v.fwmark) {
                        ("fwm", Some(_)) => Proto::Fwm,
                        (_, Some(_)) => {
                            return self.err(l, "protocol must be fwm if the virtual service is a fwmark (a number)");
                        }
                        ("tcp", None) => Proto::Tcp,
                        ("udp", None) => Proto::Udp,
                        _ => return self.err(l, "protocol must be tcp or udp if the virtual service is an address and port"),
                    })
                }
                "ops" => match value {
                    "no" => v.ops = None,
                    "yes" => v.ops = Some(l),
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
                "fallback" | "fallback6" if (name == "fallback6") != v6 => {
                    return self.err(l, wrong_family(name, "fallback", v6));
                }
                "fallback" | "fallback6" => {
                    let fb = self.fallback(l, value, v6)?;
                    v.fallback = Some((l, fb));
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
        let proto = match raw.fwmark {
            Some(_) => Proto::Fwm,
            None => raw
                .protocol
                .unwrap_or(if raw.port == "53" || raw.port == "domain" {
                    Proto::Udp
                } else {
                    Proto::Tcp
                }),
        };
        let (id, addr, port) = match raw.fwmark {
            Some(mark) => {
                let id = ServiceId::fwmark_of_family(mark, raw.v6);
                (id, id.addr, 0)
            }
            None => {
                let addr = self.host(line, &raw.host, "virtual service", raw.v6)?;
                let port = self.port(line, &raw.port, proto, "virtual service")?;
                if port == 0 && raw.persistent.is_none() {
                    return self.err(line, "Zero port specified for non-persistent service");
                }
                (ServiceId { proto, addr, port }, addr, port)
            }
        };
        let mut sched = raw.scheduler.unwrap_or(Sched::Wrr);
        if let Some((l, words)) = &raw.schedflags {
            // ldirectord passes `-b` on to ipvsadm, which checks it so.
            sched = sched
                .with_flags(words)
                .or_else(|e| self.err(*l, e.to_string()))?;
        }
        let spec = ServiceSpec {
            id,
            sched,
            persistent: raw.persistent,
            netmask: match raw.persistent {
                Some(_) => raw.netmask.unwrap_or(full_netmask(addr)),
                None => full_netmask(addr),
            },
            // ldirectord passes -o for ops=yes; ipvsadm refuses it but for UDP.
            // A fwmark service: ldirectord passes -o for protocol udp only,
            // so ops=yes is ignored.
            one_packet: raw.ops.is_some() && proto != Proto::Fwm,
        };
        if let Some(l) = raw.ops.filter(|_| proto == Proto::Tcp) {
            return self.err(l, "One-Packet Scheduling is only for UDP virtual services");
        }
        // Checks.
        let (kind_line, kind) = raw.checktype.unwrap_or((line, CheckType::Negotiate));
        // A fwmark service's default is ldirectord's `service=none`.
        let default_service = match raw.fwmark {
            Some(_) => "none",
            None => port_to_service(port),
        };
        let (service_line, service_name) = raw
            .service
            .clone()
            .unwrap_or_else(|| (line, default_service.to_string()));
        let service = match service_name.as_str() {
            "http" => Some(CheckService::Http),
            "https" => Some(CheckService::Https),
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
                    format!(
                        "checkinterval in virtual service {} ignored when fork=no",
                        addr_port(addr, port)
                    ),
                );
                global_interval
            }
            None => global_interval,
        };
        // Real servers.
        let mut reals = Vec::new();
        for (l, text) in &raw.reals {
            self.reals(*l, text, raw.v6, proto, port, &mut reals)?;
        }
        for r in &mut reals {
            r.check_port = raw
                .checkport
                .or((r.port_given > 0).then_some(r.port_given))
                .or(service_to_port(&service_name))
                .unwrap_or(port);
            // ldirectord's ld_checkport: a fwmark service's checks go to
            // `checkport`, else the real's port, else the service's port;
            // with none of them a check that connects has nowhere to go.
            let connects = kind.connects() || (kind.negotiates() && service != CheckService::None);
            if r.check_port == 0 && connects {
                let (directive, host) = match r.id.addr {
                    IpAddr::V4(a) => ("real", a.to_string()),
                    IpAddr::V6(a) => ("real6", format!("[{a}]")),
                };
                return self.err(r.line, format!(
                    "real server {host} of fwmark virtual service {}: its check needs a port: give the real a port ({directive}={host}:PORT) or the virtual service checkport=",
                    raw.fwmark.unwrap_or(0)
                ));
            }
        }
        // Fallback: the virtual's, else the global one of its family
        // (ldirectord's `fallback_find`).
        let global = if raw.v6 { &g.fallback6 } else { &g.fallback };
        let mut fallback_fwd = Fwd::Route;
        let fallback = match raw.fallback.as_ref().or(global.as_ref()) {
            Some((l, Some(fb))) => {
                let a = self.fallback_host(*l, &fb.host, raw.v6)?;
                // ldirectord's `parse_fallback`/`fallback_find`: the port
                // given, else the virtual's; ipvsadm then keeps it for masq.
                let given = match &fb.port {
                    Some(p) => self.port(*l, p, proto, "fallback server")?,
                    None => port,
                };
                fallback_fwd = fb.fwd;
                let fid = RealId {
                    addr: a,
                    port: reals::real_port(fb.fwd, proto, given, port),
                };
                if let Some(r) = reals.iter().find(|r| r.id == fid) {
                    return self.err(
                        *l,
                        format!(
                            "fallback {} is also a real server of virtual service {} (line {})",
                            addr_port(a, port),
                            addr_port(id.addr, id.port),
                            r.line
                        ),
                    );
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
            fallback_fwd,
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

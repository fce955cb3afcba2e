//! lbctl's own words: `attach`, `detach`, `sysctl`, `counters`, `daemon`,
//! `daemon-status`, `version`, `help`.

use super::{CliError, Command, Sysctl, SysctlCmd, XdpMode};
pub(super) const ATTACH_USAGE: &str =
    "attach IFACE [--mode native|generic] [--conns N] [--templates N] [--reset]";
pub(super) const DETACH_USAGE: &str = "detach IFACE";
pub(super) const SYSCTL_USAGE: &str = "sysctl [NAME[=VALUE]]";
pub(super) const DAEMON_USAGE: &str = "daemon [--foreground] [--metrics ADDR:PORT [--metrics-public]] CONFIG | daemon-status [CONFIG]";

pub(super) fn parse_word(word: &str, rest: &[String]) -> Result<Command, CliError> {
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

pub(super) fn no_more(rest: &[String]) -> Result<(), CliError> {
    match rest.first() {
        None => Ok(()),
        Some(w) => Err(CliError::UnexpectedArgument(w.clone())),
    }
}

pub(super) fn parse_attach(rest: &[String]) -> Result<Command, CliError> {
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
pub(super) fn parse_table_size(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = v.parse().ok()?;
    (1024..=134_217_728).contains(&n).then_some(n)
}

/// The kernel's `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or
/// whitespace.
pub(super) fn check_iface(name: &str) -> Result<String, CliError> {
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
pub(super) fn parse_daemon(rest: &[String]) -> Result<Command, CliError> {
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

pub(super) fn parse_sysctl(rest: &[String]) -> Result<Command, CliError> {
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

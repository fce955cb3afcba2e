//! ipvsadm's value parsers: numbers, timeouts, addresses, netmask, scheduler.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{CliError, MAX_TIMEOUT};
use crate::model::{BadSchedFlag, Proto, Sched, SchedFlags};
use crate::resolve::Resolver;
/// ipvsadm's `string_to_number`: `strtol` base 10 (leading blanks and a sign
/// allowed), the whole word must be used, `min..=max`.
pub(super) fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
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
pub(super) fn parse_timeout(s: &str, min: u32) -> Result<u32, CliError> {
    string_to_number(s, i64::from(min), i64::from(MAX_TIMEOUT))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| CliError::InvalidTimeout(s.to_owned()))
}

/// ipvsadm's `str_is_digit` (true for the empty string too).
pub(super) fn str_is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// What `host[:port]` named.
pub(super) enum Addr {
    V4 { addr: Ipv4Addr, port: Option<u16> },
    V6 { addr: Ipv6Addr, port: Option<u16> },
}

impl Addr {
    /// The address and port (`None`: no port given).
    pub(super) fn split(&self) -> (IpAddr, Option<u16>) {
        match *self {
            Addr::V4 { addr, port } => (IpAddr::V4(addr), port),
            Addr::V6 { addr, port } => (IpAddr::V6(addr), port),
        }
    }
}

/// ipvsadm's `parse_service`: `None` is its `SERVICE_NONE` (an error).
///
/// IPv6 addresses are numeric, `[addr]:port` (a port is then required, as
/// in ipvsadm) or bare `addr` (no port); bracketed text that is not an IPv6
/// address is refused (ipvsadm takes `[10.0.0.1]:80` as 10.0.0.1 and drops
/// the port). Hosts are dotted quads or names from the hosts file (IPv4
/// only, as ipvsadm's `gethostbyname`); unlike `inet_aton`,
/// shorthand (`10.1`), octal (`010.0.0.1`) and hex forms are not accepted.
/// Ports are numbers or names from the services file for `proto` (no names
/// without a protocol, as in ipvsadm when `-r` comes before `-t`).
pub(super) fn parse_addr(buf: &str, proto: Option<Proto>, names: &Resolver) -> Option<Addr> {
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
        let addr = inner.parse::<Ipv6Addr>().ok()?;
        return Some(Addr::V6 {
            addr,
            port: Some(port(p)?),
        });
    }
    if let Ok(addr) = buf.parse::<Ipv6Addr>() {
        return Some(Addr::V6 { addr, port: None });
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
pub(super) fn parse_netmask(s: &str) -> Result<Ipv4Addr, CliError> {
    let mask: Ipv4Addr = s.parse().map_err(|_| CliError::IllegalNetmask)?;
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() == 32 {
        Ok(mask)
    } else {
        Err(CliError::NonContiguousNetmask(mask))
    }
}

/// `-M` of an IPv6 service: ipvsadm's `atoi` (leading blanks, a sign, then
/// the digits up to the first other character), 1 to 128.
pub(super) fn parse_prefix_len(s: &str) -> Result<u8, CliError> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'+') => (false, &t[1..]),
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap_or(0).min(u64::from(u32::MAX));
    if negative || !(1..=128).contains(&n) {
        return Err(CliError::IllegalIpv6Netmask);
    }
    Ok(n as u8)
}

pub(super) fn parse_sched(name: &str) -> Result<Sched, CliError> {
    match Sched::from_name(name) {
        Some(s) if s.implemented() => Ok(s),
        Some(_) => Err(CliError::SchedulerUnsupported(name.to_owned())),
        None => Err(CliError::SchedulerNotFound(name.to_owned())),
    }
}

/// `-b`: ipvsadm 1.31's `parse_sched_flags` (`model::parse_sched_flags`),
/// with its messages.
pub(super) fn parse_sched_flags(sched: &str, arg: &str) -> Result<SchedFlags, CliError> {
    crate::model::parse_sched_flags(sched, arg).map_err(|e| match e {
        BadSchedFlag::Invalid(f) => CliError::InvalidSchedFlag(f),
        BadSchedFlag::Incompatible(f) => CliError::IncompatibleSchedFlag(f),
    })
}

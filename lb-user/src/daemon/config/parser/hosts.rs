//! Hosts and ports of `ldirectord.cf` as ldirectord resolves them
//! (`ld_gethostbyname`, `ld_getservbyname`, `parse_fallback`) for either
//! family, and its messages: the third part of the `Parser`.

use super::*;

impl Parser<'_> {
    /// A host as ldirectord's `ld_gethostbyname(host, af)` finds it: its
    /// brackets stripped, an address of the family (IPv6 when `v6`: the
    /// service is a `virtual6=`) or a name with an entry of that family in
    /// `/etc/hosts`. `None` when there is none; an IPv4-mapped IPv6 address
    /// is refused (it would collide with the IPv4 address in the tables).
    pub(super) fn lookup(
        &self,
        line: usize,
        host: &str,
        v6: bool,
    ) -> Result<Option<IpAddr>, ConfigError> {
        let name = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let found = if v6 {
            name.parse::<Ipv6Addr>()
                .ok()
                .or_else(|| self.names.host_addr6(name))
                .map(IpAddr::V6)
        } else {
            name.parse::<Ipv4Addr>()
                .ok()
                .or_else(|| self.names.host_addr(name))
                .map(IpAddr::V4)
        };
        match found.map(crate::addr::checked) {
            Some(Ok(a)) => Ok(Some(a)),
            Some(Err(e)) => self.err(line, e.to_string()),
            None => Ok(None),
        }
    }

    /// Why a host of the other family than its service's is refused.
    pub(super) fn family_hint(host: &str, v6: bool) -> &'static str {
        let other = if v6 {
            host.parse::<Ipv4Addr>().is_ok()
        } else {
            host.contains(':')
        };
        match (other, v6) {
            (true, true) => " (an IPv4 address belongs to a virtual= service)",
            (true, false) => " (an IPv6 address belongs to a virtual6= service)",
            (false, true) if host.contains(':') && !host.starts_with('[') => {
                " (an IPv6 address is written in brackets: [2001:db8::11]:80)"
            }
            _ => "",
        }
    }

    /// [`Self::lookup`], with ldirectord's message (and the family's hint)
    /// when nothing is found.
    pub(super) fn host(
        &self,
        line: usize,
        host: &str,
        what: &str,
        v6: bool,
    ) -> Result<IpAddr, ConfigError> {
        match self.lookup(line, host, v6)? {
            Some(a) => Ok(a),
            None => self.err(
                line,
                format!(
                    "invalid address ({host}) for {what} (could not resolve host from /etc/hosts){}",
                    Self::family_hint(host, v6)
                ),
            ),
        }
    }

    /// The host of a `fallback[6]=`, with ldirectord's message
    /// (`_ld_read_config_fallback_resolve`) when nothing is found.
    pub(super) fn fallback_host(
        &self,
        line: usize,
        host: &str,
        v6: bool,
    ) -> Result<IpAddr, ConfigError> {
        match self.lookup(line, host, v6)? {
            Some(a) => Ok(a),
            None => self.err(
                line,
                format!(
                    "invalid {} address or could not resolve for fallback server: {host}{}",
                    if v6 { "IPv6" } else { "IPv4" },
                    Self::family_hint(host, v6)
                ),
            ),
        }
    }

    pub(super) fn port(
        &self,
        line: usize,
        port: &str,
        proto: Proto,
        what: &str,
    ) -> Result<u16, ConfigError> {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return match port.parse::<u16>() {
                Ok(p) => Ok(p),
                Err(_) => self.err(line, format!("invalid port ({port}) for {what}")),
            };
        }
        let other = match proto {
            Proto::Tcp | Proto::Fwm => Proto::Udp,
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
}

/// `host[:port]` as ldirectord's `parse_fallback` splits it: a last
/// `:WORD` is the port (so `[2001:db8::99]:80` is `[2001:db8::99]` and 80,
/// `[::1]` has none).
pub(super) fn split_port(target: &str) -> (&str, Option<&str>) {
    match target.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && is_port_word(p) => (h, Some(p)),
        _ => (target, None),
    }
}

/// A port as ldirectord's patterns take one: a number or a service name.
pub(super) fn is_port_word(p: &str) -> bool {
    p.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// ldirectord's message for `real6=`/`fallback6=` in a `virtual=` block and
/// `real=`/`fallback=` in a `virtual6=` one (`base` is `real` or
/// `fallback`, `name` what was written).
pub(super) fn wrong_family(name: &str, base: &str, v6: bool) -> String {
    format!(
        "cannot specify \"{name}\" here.  please use \"{base}{}\" instead",
        if v6 { "6" } else { "" }
    )
}

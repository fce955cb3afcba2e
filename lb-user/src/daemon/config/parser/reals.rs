//! The `real=` lines of a virtual block and their thresholds (ldirectord's
//! `add_real_server` and its `l:`/`u:` words): the second half of the
//! `Parser`.

use super::*;

impl Parser<'_> {
    /// The optional `l:LOWER` and `u:UPPER` that end a `real=` line, in
    /// that order (ldirectord's `add_real_server`; passed as `-y` and `-x`),
    /// and what comes before them. ldirectord reads `u:` before `l:` as
    /// nothing (its second pattern looks after the first match) and passes
    /// a lower threshold above the upper one to ipvsadm, which the kernel
    /// refuses: both are configuration errors here.
    fn thresholds<'a>(
        &self,
        line: usize,
        rest: &'a str,
    ) -> Result<(&'a str, Thresholds), ConfigError> {
        let mut rest = rest.trim_end();
        let mut t = Thresholds::NONE;
        let take = |rest: &mut &'a str, prefix: &str| -> Option<&'a str> {
            let (before, last) = match rest.rfind(char::is_whitespace) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => ("", *rest),
            };
            let v = last.strip_prefix(prefix)?;
            (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| {
                *rest = before.trim_end();
                v
            })
        };
        let value = |v: &str, which: &str| -> Result<u32, ConfigError> {
            match v.parse::<u32>() {
                Ok(n) if n <= MAX_THRESHOLD => Ok(n),
                _ => self.err(
                    line,
                    format!("invalid {which} threshold {v} (0 to {MAX_THRESHOLD})"),
                ),
            }
        };
        if let Some(u) = take(&mut rest, "u:") {
            t.upper = value(u, "upper")?;
        }
        if let Some(l) = take(&mut rest, "l:") {
            t.lower = value(l, "lower")?;
        }
        if take(&mut rest, "u:").is_some() {
            return self.err(
                line,
                "the thresholds go in ldirectord's order: l:LOWER, then u:UPPER",
            );
        }
        if !t.valid() {
            return self.err(
                line,
                format!(
                    "the lower threshold (l:{}) is higher than the upper threshold (u:{}); the \
                     kernel refuses it",
                    t.lower, t.upper
                ),
            );
        }
        Ok((rest, t))
    }

    /// `real=host[->host2][:port] gate|masq|ipip [weight] ["request",
    /// "receive"] [l:LOWER] [u:UPPER]`; `real6=` when `v6`, the host an IPv6 address in
    /// brackets (`[2001:db8::11]:80`) or a name, and no range.
    pub(super) fn reals(
        &self,
        line: usize,
        text: &str,
        v6: bool,
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
        let (hosts, port) = match target.rsplit_once(':') {
            // `[2001:db8::11]` has no port.
            _ if target.ends_with(']') => (target, None),
            Some((h, p)) if !p.is_empty() => (h, Some(p)),
            Some(_) => return self.err(line, "invalid address for real server (wrong format)"),
            None => (target, None),
        };
        let port_given = match port {
            Some(p) => self.port(line, p, proto, "real server")?,
            None => 0,
        };
        let (first, last) = match hosts.split_once("->") {
            Some(_) if v6 => {
                return self.err(line, "Address range for IPv6 is not supported yet");
            }
            Some((a, b)) => (
                self.host(line, a, "real server", v6)?,
                self.host(line, b, "real server", v6)?,
            ),
            None => {
                let a = self.host(line, hosts, "real server", v6)?;
                (a, a)
            }
        };
        // A range is IPv4 (`u32`); an IPv6 real is one address.
        let range = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a), u32::from(b)),
            _ => (0, 0),
        };
        if range.0 > range.1 {
            return self.err(line, format!(
                "Invalid Range: {first}-{last}: the first address must not be greater than the second"
            ));
        }
        // Forwarding method.
        let (method, mut rest) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        let Some(fwd) = forward(method) else {
            return self.err(line, "forward method must be gate, masq or ipip");
        };
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
        // "l:LOWER" "u:UPPER" at the end (ldirectord's `-y`, `-x`).
        let (rest, thresholds) = self.thresholds(line, rest)?;
        // "request", "receive".
        let mut request = None;
        let mut receive = None;
        if !rest.is_empty() {
            let Some((req, rcv)) = parse_pair(rest) else {
                return self.err(line, format!("Invalid real server line, around \"{rest}\""));
            };
            request = Some(
                if req.starts_with('/') || req.starts_with("http://") || req.starts_with("https://")
                {
                    req
                } else {
                    format!("/{req}")
                },
            );
            receive = Some(self.regex(line, &rcv)?);
        }
        let count = range.1 - range.0 + 1;
        if out.len() + count as usize > MAX_SERVICE_DESTS {
            return self.err(
                line,
                format!(
                    "too many real servers in one virtual service (at most {MAX_SERVICE_DESTS})"
                ),
            );
        }
        let addrs: Box<dyn Iterator<Item = IpAddr>> = match first {
            IpAddr::V4(_) => Box::new((range.0..=range.1).map(|a| Ipv4Addr::from(a).into())),
            IpAddr::V6(_) => Box::new(std::iter::once(first)),
        };
        for addr in addrs {
            if addr.is_loopback() || addr.is_unspecified() {
                return self.err(line, format!(
                    "real server {addr} is the director itself: lbctl cannot deliver to a server on the director"
                ));
            }
            if let IpAddr::V6(a) = addr
                && (a.is_multicast() || a.segments()[0] & 0xffc0 == 0xfe80)
            {
                return self.err(line, format!(
                    "real server {addr} is not a global unicast address: IPVS refuses link-local and multicast real servers"
                ));
            }
            let rport = real_port(fwd, proto, port_given, vport);
            let id = RealId { addr, port: rport };
            if let Some(prev) = out.iter().find(|r| r.id == id) {
                let why = if proto == Proto::Fwm || fwd == Fwd::Masq {
                    ""
                } else {
                    "; gate and ipip reals have the service's port"
                };
                return self.err(
                    line,
                    format!(
                        "duplicate real server {} (also on line {}{why})",
                        addr_port(addr, rport),
                        prev.line
                    ),
                );
            }
            out.push(Real {
                line,
                id,
                fwd,
                port_given,
                weight,
                thresholds,
                check_port: 0,
                request: request.clone(),
                receive: receive.clone(),
            });
        }
        Ok(())
    }
}

/// ldirectord's `get_forward_flag`: `gate` is `-g`, `ipip` is `-i` (IPIP:
/// ldirectord has no words for GUE or GRE), `masq` is `-m`.
pub(super) fn forward(method: &str) -> Option<Fwd> {
    match method {
        "gate" => Some(Fwd::Route),
        "ipip" => Some(Fwd::Tunnel(Tunnel::IPIP)),
        "masq" => Some(Fwd::Masq),
        _ => None,
    }
}

/// The port a real server (or fallback) gets, as ipvsadm makes it from the
/// `-r` ldirectord passes: a `masq` real keeps the port given (0 when none:
/// the packet's port), as does a fwmark service's real; `gate` and `ipip`
/// reals of TCP and UDP services get the virtual's port.
pub(super) fn real_port(fwd: Fwd, proto: Proto, port_given: u16, vport: u16) -> u16 {
    if proto == Proto::Fwm || fwd == Fwd::Masq {
        port_given
    } else {
        vport
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

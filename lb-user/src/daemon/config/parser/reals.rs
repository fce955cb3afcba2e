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

    /// `real=host[->host2][:port] gate [weight] ["request", "receive"]
    /// [l:LOWER] [u:UPPER]`.
    pub(super) fn reals(
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
            // A fwmark service's real keeps its own port (ldirectord forces
            // the virtual's port for TCP and UDP services only).
            let rport = if proto == Proto::Fwm {
                port_given
            } else {
                vport
            };
            let id = RealId {
                addr: addr.into(),
                port: rport,
            };
            if let Some(prev) = out.iter().find(|r| r.id == id) {
                return self.err(line, format!(
                    "duplicate real server {addr}:{rport} (also on line {}; direct routing keeps the service's port)",
                    prev.line
                ));
            }
            out.push(Real {
                line,
                id,
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

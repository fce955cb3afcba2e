//! Checking one result: the program's verdict and output frame against the model's
//! expectation, with the frames it builds checked by the independent parser.

use std::net::IpAddr;

use lb_common::{
    REASON_DROP_REPLY_RATE, REASON_NAMES, REASON_TX_ICMP_UNREACH, REASON_TX_RST_NODEST,
};

use super::model::{Expect, Model, Pkt};
use crate::{
    frame::{self, tcp_flags},
    lb::{RunResult, XDP_DROP, XDP_PASS, XDP_TX, real_mac},
};

/// The IP header of a reply the program built: (source, destination,
/// protocol / next header, IP length, TTL / hop limit), either family.
fn reply_ip(parsed: &frame::Parsed) -> Result<(IpAddr, IpAddr, u8, usize, u8), String> {
    if let Some(ip) = parsed.ipv4() {
        return Ok((
            ip.src.into(),
            ip.dst.into(),
            ip.protocol,
            usize::from(ip.total_len),
            ip.ttl,
        ));
    }
    let ip = parsed.ipv6().ok_or("reply is neither IPv4 nor IPv6")?;
    if (ip.traffic_class, ip.flow_label) != (0, 0) {
        return Err(format!(
            "IPv6 reply with traffic class {} flow label {}",
            ip.traffic_class, ip.flow_label
        ));
    }
    Ok((
        ip.src.into(),
        ip.dst.into(),
        ip.next_header,
        40 + usize::from(ip.payload_len),
        ip.hop_limit,
    ))
}

/// Checks the program's result against the expectation; on success returns
/// the reason the packet must have been counted under and the real it went
/// to (index in the service), if forwarded.
pub(super) fn check(
    model: &Model,
    input: &[u8],
    pkt: Option<&Pkt>,
    expect: &Expect,
    r: &RunResult,
) -> Result<(u32, Option<usize>), String> {
    let action = |a: u32| match a {
        XDP_DROP => "XDP_DROP".to_string(),
        XDP_PASS => "XDP_PASS".to_string(),
        XDP_TX => "XDP_TX".to_string(),
        other => format!("action {other}"),
    };
    match expect {
        Expect::Pass(reason) => {
            if r.action != XDP_PASS {
                return Err(format!("expected XDP_PASS, got {}", action(r.action)));
            }
            if r.frame != input {
                return Err("XDP_PASS with a modified frame".into());
            }
            Ok((*reason, None))
        }
        Expect::Drop(reason) => {
            if r.action != XDP_DROP {
                return Err(format!("expected XDP_DROP, got {}", action(r.action)));
            }
            Ok((*reason, None))
        }
        Expect::Forward { svc, reason, reals } => {
            if r.action != XDP_TX {
                return Err(format!(
                    "expected forwarding ({}), got {}",
                    REASON_NAMES[*reason as usize],
                    action(r.action)
                ));
            }
            if r.frame.len() != input.len() {
                return Err(format!(
                    "forwarded frame has {} bytes, the input {}",
                    r.frame.len(),
                    input.len()
                ));
            }
            if r.frame[12..] != input[12..] {
                let at = (12..input.len())
                    .find(|&i| r.frame[i] != input[i])
                    .unwrap_or(12);
                return Err(format!(
                    "forwarded frame changed beyond the MACs (byte {at})"
                ));
            }
            if r.frame[6..12] != input[0..6] {
                return Err("source MAC is not ours (the frame's old destination)".into());
            }
            let s = &model.svcs[*svc];
            let Some(i) = s
                .reals
                .iter()
                .position(|x| r.frame[0..6] == real_mac(x.last))
            else {
                return Err(format!(
                    "forwarded to MAC {} which is no real of service #{svc}",
                    crate::netns::format_mac(&r.frame[0..6].try_into().expect("6 bytes"))
                ));
            };
            if !reals.contains(&i) {
                let names: Vec<String> = reals.iter().map(|&j| real_name(s, j)).collect();
                return Err(format!(
                    "{} to {}, which may not take it (allowed: {})",
                    REASON_NAMES[*reason as usize],
                    real_name(s, i),
                    names.join(", ")
                ));
            }
            Ok((*reason, Some(i)))
        }
        Expect::Unreachable => {
            if r.action == XDP_DROP {
                return Ok((REASON_DROP_REPLY_RATE, None));
            }
            if r.action != XDP_TX {
                return Err(format!(
                    "expected an ICMP port unreachable, got {}",
                    action(r.action)
                ));
            }
            let p = pkt.ok_or("no packet")?;
            let parsed =
                frame::parse(&r.frame).map_err(|e| format!("ICMP reply does not parse: {e}"))?;
            if parsed.dst_mac != input[6..12] || parsed.src_mac != input[0..6] {
                return Err("ICMP reply MACs are not the input's, swapped".into());
            }
            let (src, dst, proto, len, ttl) = reply_ip(&parsed)?;
            let (v6, ip_len) = (p.saddr.is_ipv6(), if p.saddr.is_ipv6() { 40 } else { 20 });
            let want_proto = if v6 { 58 } else { 1 };
            if (src, dst, proto) != (p.daddr, p.saddr, want_proto) {
                return Err(format!(
                    "ICMP reply {src} -> {dst} proto {proto}, expected VIP -> client, ICMP"
                ));
            }
            // ICMPv6 quotes at most 1,232 bytes (icmp6_send).
            let quote = if v6 { (p.ihl + 8).min(1232) } else { p.ihl + 8 };
            if ttl == 0 || len != ip_len + 8 + quote || r.frame.len() != 14 + len {
                return Err(format!("ICMP reply ttl {ttl} length {len}"));
            }
            let icmp = parsed.icmp().ok_or("no ICMP message")?;
            let want = if v6 { (1, 4) } else { (3, 3) };
            if (icmp.ty, icmp.code) != want || icmp.rest != [0; 4] {
                return Err(format!("ICMP type {} code {}", icmp.ty, icmp.code));
            }
            if icmp.payload != input[14..14 + quote] {
                return Err("ICMP reply does not quote the IP header(s) and 8 bytes".into());
            }
            Ok((REASON_TX_ICMP_UNREACH, None))
        }
        Expect::Reset => {
            if r.action != XDP_TX {
                return Err(format!("expected a TCP RST, got {}", action(r.action)));
            }
            let p = pkt.ok_or("no packet")?;
            let parsed = frame::parse(&r.frame).map_err(|e| format!("RST does not parse: {e}"))?;
            if parsed.dst_mac != input[6..12] || parsed.src_mac != input[0..6] {
                return Err("RST MACs are not the input's, swapped".into());
            }
            let (src, dst, proto, len, ttl) = reply_ip(&parsed)?;
            let ip_len = if p.saddr.is_ipv6() { 40 } else { 20 };
            if (src, dst, proto, len) != (p.daddr, p.saddr, 6, ip_len + 20)
                || ttl == 0
                || r.frame.len() != 14 + len
            {
                return Err(format!(
                    "RST {src} -> {dst} proto {proto} length {len} ttl {ttl}"
                ));
            }
            let t = parsed.tcp().ok_or("no TCP segment")?;
            if (t.sport, t.dport) != (p.dport, p.sport) || !t.is_rst() || !t.payload.is_empty() {
                return Err(format!(
                    "RST ports {}->{} flags {:#04x}",
                    t.sport, t.dport, t.flags
                ));
            }
            // RFC 793 / tcp_v4_send_reset: to an ACK, seq = its ack; else
            // RST|ACK acknowledging everything the segment occupied.
            let ok = if p.flags & tcp_flags::ACK != 0 {
                t.seq == p.ack && !t.is_ack()
            } else {
                let len = p.payload
                    + u32::from(p.flags & tcp_flags::SYN != 0)
                    + u32::from(p.flags & tcp_flags::FIN != 0);
                t.seq == 0 && t.is_ack() && t.ack == p.seq.wrapping_add(len)
            };
            if !ok {
                return Err(format!(
                    "RST seq {} ack {} flags {:#04x} for a segment seq {} ack {} flags {:#04x}",
                    t.seq, t.ack, t.flags, p.seq, p.ack, p.flags
                ));
            }
            Ok((REASON_TX_RST_NODEST, None))
        }
    }
}

/// Real `i` of a service, as reports name it.
fn real_name(s: &super::model::SvcM, i: usize) -> String {
    let def = &super::config::SERVICES[s.def];
    super::config::real_addr(def, s.reals[i].last).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        frame::Frame,
        fuzz::{config::VIP_A, model::classify},
    };
    use lb_common::REASON_PASS_NO_SERVICE;
    use std::net::Ipv4Addr;

    /// The checker rejects what the program must never do (so a clean run
    /// means something).
    #[test]
    fn checker_catches_wrong_outcomes() {
        let model = Model::new();
        let input = Frame::tcp(Ipv4Addr::new(192, 0, 2, 1), VIP_A)
            .ports(1024, 80)
            .syn()
            .build();
        let p = classify(&input).unwrap();
        let svc = model.lookup(&p).unwrap();
        let plan = model.plan(svc, &p);
        let routed = |i: u8| {
            let mut out = input.clone();
            out[0..6].copy_from_slice(&real_mac(i));
            out[6..12].copy_from_slice(&input[0..6]);
            out
        };
        let res = |action, frame| RunResult { action, frame };
        // A correct forward to a real with weight > 0 passes...
        assert!(
            check(
                &model,
                &input,
                Some(&p),
                &plan.expect,
                &res(XDP_TX, routed(11))
            )
            .is_ok()
        );
        // ...but not to the quiescent real, another service's real, with a
        // changed IP byte, or as a pass.
        for bad in [
            res(XDP_TX, routed(13)),
            res(XDP_TX, routed(14)),
            res(XDP_TX, {
                let mut f = routed(11);
                f[22] ^= 1;
                f
            }),
            res(XDP_PASS, input.clone()),
            res(XDP_DROP, input.clone()),
        ] {
            assert!(check(&model, &input, Some(&p), &plan.expect, &bad).is_err());
        }
        // A pass must leave the frame as it was.
        let mut changed = input.clone();
        changed[0] ^= 1;
        let pass = Expect::Pass(REASON_PASS_NO_SERVICE);
        assert!(check(&model, &input, None, &pass, &res(XDP_PASS, input.clone())).is_ok());
        assert!(check(&model, &input, None, &pass, &res(XDP_PASS, changed)).is_err());
        // A reply that does not parse (here: the input echoed) is caught.
        assert!(
            check(
                &model,
                &input,
                Some(&p),
                &Expect::Unreachable,
                &res(XDP_TX, input.clone())
            )
            .is_err()
        );
        assert!(
            check(
                &model,
                &input,
                Some(&p),
                &Expect::Reset,
                &res(XDP_TX, input.clone())
            )
            .is_err()
        );
    }
}

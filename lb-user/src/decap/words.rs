//! `lbctl decap`'s words, on clap (a subcommand of lbctl's words,
//! `cli/words.rs`): `attach IFACE [--vip ADDR]... [--gue-port N] [--mode
//! M]`, `detach IFACE`, `status`. A bad value is refused by clap with the
//! value, the word's usage and the reason, before anything is touched.

use std::net::IpAddr;

use clap::{Args, Subcommand};

use super::{DecapCmd, DecapSettings};
use crate::cli::XdpMode;

/// The long help of `lbctl decap`.
pub const ABOUT: &str = "The real servers' side of tunnelling (-i): an XDP program that strips\n\
    the IPIP, GUE and GRE headers of the director's packets on IFACE and hands\n\
    the inner packet to the stack, instead of the kernel's ipip, fou and ip_gre\n\
    modules (tunl0, gre0). Packets whose outer and inner destinations are local\n\
    addresses (or, with --vip, whose inner destination is one of the VIPs) are\n\
    decapsulated; everything else passes untouched. The host's local addresses\n\
    are read at each attach: after adding one, attach again.";

#[derive(Subcommand, Debug)]
pub enum DecapAction {
    /// Attach the decapsulator to IFACE (again: new settings, addresses re-read)
    Attach(DecapAttachArgs),
    /// Detach the decapsulator from IFACE
    Detach {
        /// The network interface
        #[arg(value_name = "IFACE", value_parser = parse_iface)]
        iface: String,
    },
    /// The interfaces, their settings and what the decapsulator did, by outcome
    Status,
}

#[derive(Args, Debug)]
pub struct DecapAttachArgs {
    /// The network interface the tunnelled packets arrive on
    #[arg(value_name = "IFACE", value_parser = parse_iface)]
    iface: String,
    /// Decapsulate only packets whose inner destination is ADDR (repeatable;
    /// default: any local address)
    #[arg(long = "vip", value_name = "ADDR", value_parser = parse_vip)]
    vips: Vec<IpAddr>,
    /// The GUE UDP port (1 to 65535; ipvsadm's --tun-port of the reals)
    #[arg(long, value_name = "PORT", default_value_t = lb_common::decap::DEFAULT_GUE_PORT,
          value_parser = parse_gue_port)]
    gue_port: u16,
    /// XDP attach mode
    #[arg(long, value_name = "MODE", value_enum, default_value_t = XdpMode::Native)]
    mode: XdpMode,
}

impl DecapAction {
    pub fn into_cmd(self) -> DecapCmd {
        match self {
            DecapAction::Attach(a) => {
                let mut vips = a.vips;
                vips.sort();
                vips.dedup();
                DecapCmd::Attach {
                    iface: a.iface,
                    mode: a.mode,
                    settings: DecapSettings {
                        vips,
                        gue_port: a.gue_port,
                    },
                }
            }
            DecapAction::Detach { iface } => DecapCmd::Detach { iface },
            DecapAction::Status => DecapCmd::Status,
        }
    }
}

/// The kernel's `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or
/// whitespace.
fn parse_iface(name: &str) -> Result<String, String> {
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
        Err("not a valid interface name".into())
    }
}

/// A unicast IPv4 or IPv6 address, numeric.
fn parse_vip(v: &str) -> Result<IpAddr, String> {
    let a: IpAddr = v
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_owned())?;
    let unicast = match a {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.to_ipv4_mapped().is_some()),
    };
    if !unicast {
        return Err("not a unicast address (give IPv4 addresses as IPv4)".into());
    }
    Ok(a)
}

fn parse_gue_port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p != 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err("a port is 1 to 65535".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked() {
        assert_eq!(parse_gue_port("6080"), Ok(6080));
        for bad in ["0", "65536", "-1", "+5", "x", ""] {
            assert!(parse_gue_port(bad).is_err(), "{bad}");
        }
        assert!(parse_vip("203.0.113.10").is_ok());
        assert!(parse_vip("2001:db8::10").is_ok());
        for bad in [
            "0.0.0.0",
            "224.0.0.1",
            "::ffff:192.0.2.1",
            "ff02::1",
            "vip",
            "192.0.2.1/32",
        ] {
            assert!(parse_vip(bad).is_err(), "{bad}");
        }
        assert!(parse_iface("eth0").is_ok());
        assert!(parse_iface("a/b").is_err());
    }
}

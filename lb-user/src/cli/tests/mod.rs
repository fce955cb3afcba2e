//! The command line's tests, by topic.

use clap::error::ErrorKind;

use super::ipvsadm::SYNC_DAEMON;
use super::options::{Cmd, OPT_NAMES, Opt};
use super::*;
use crate::format::ListFormat;
use crate::model::{
    Fwd, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec, ServiceView, Stats, Thresholds,
    UNSUPPORTED_SCHEDULERS,
};
use crate::resolve::Resolver;

fn names() -> Resolver {
    Resolver::from_text(
        "# test hosts\n\
         127.0.0.1   localhost\n\
         10.0.0.100  vip.example.com VIP   # the service\n\
         10.0.0.11   rs1\n\
         10.0.0.111  rs1 duplicate-is-ignored\n\
         2001:db8::1 v6host\n",
        "http     80/tcp   www   # WorldWideWeb HTTP\n\
         domain   53/tcp\n\
         domain   53/udp\n\
         ntp      123/udp\n\
         bogus    notaport/tcp\n",
    )
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn p(s: &str) -> Result<Command, CliError> {
    parse_with(&words(s), &names())
}

/// An address of the type the context wants (`Ipv4Addr` or `IpAddr`).
fn ip<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceId {
    ServiceId {
        proto: Proto::Tcp,
        addr: ip(addr),
        port,
    }
}

fn udp(addr: &str, port: u16) -> ServiceId {
    ServiceId {
        proto: Proto::Udp,
        addr: ip(addr),
        port,
    }
}

fn spec(id: ServiceId, sched: Sched, persistent: Option<u32>, mask: &str) -> ServiceSpec {
    ServiceSpec {
        id,
        sched,
        persistent,
        netmask: ip(mask),
        one_packet: false,
    }
}

fn real(addr: &str, port: u16, weight: u32) -> RealSpec {
    RealSpec {
        id: RealId {
            addr: ip(addr),
            port,
        },
        fwd: Fwd::Route,
        weight,
        thresholds: Thresholds::NONE,
    }
}

/// The kind of clap error that an lbctl word's command line got (`None`
/// when it parsed, or failed with one of lbctl's own errors).
fn kind(r: Result<Command, CliError>) -> Option<ErrorKind> {
    match r {
        Err(CliError::Word { kind, .. }) => Some(kind),
        _ => None,
    }
}

fn list(target: ListTarget, format: ListFormat) -> Command {
    Command::List { target, format }
}

const ALL: &str = "255.255.255.255";

mod clap_words;
mod errors;
mod fwmark;
mod ipv6;
mod listing;
mod manual;
mod services;
mod tunnel;
mod tunnel_listing;
mod values;
mod words;

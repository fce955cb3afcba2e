//! Host and service names, from `/etc/hosts` and `/etc/services` only (never
//! DNS): ipvsadm's `host_to_addr`/`addr_to_host`/`service_to_port`/
//! `port_to_service` helper group. A leaf room: the command line, the listings
//! and the daemon's configuration all use it, and it uses none of them.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use crate::model::Proto;

/// Host and service names, from `/etc/hosts` and `/etc/services` only (lbctl
/// never asks DNS). Lookups follow glibc's files backend: host names match
/// case-insensitively on the canonical name or an alias, service names
/// case-sensitively; the first matching line wins; reverse lookups give the
/// line's canonical (first) name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolver {
    /// (address, names) per line of the hosts file, in file order.
    hosts: Vec<(IpAddr, Vec<String>)>,
    /// One entry per line of the services file, in file order.
    services: Vec<ServiceEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ServiceEntry {
    port: u16,
    proto: String,
    names: Vec<String>,
}

impl Resolver {
    /// A resolver that knows no names: only numbers parse, listings stay
    /// numeric.
    pub const fn new() -> Resolver {
        Resolver {
            hosts: Vec::new(),
            services: Vec::new(),
        }
    }

    /// Builds a resolver from the text of a hosts file and a services file.
    pub fn from_text(hosts: &str, services: &str) -> Resolver {
        Resolver {
            hosts: parse_hosts(hosts),
            services: parse_services(services),
        }
    }

    /// The machine's `/etc/hosts` and `/etc/services`, read once per process
    /// (a missing or unreadable file counts as empty).
    pub fn system() -> &'static Resolver {
        static SYSTEM: OnceLock<Resolver> = OnceLock::new();
        SYSTEM.get_or_init(|| {
            let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
            Resolver::from_text(&hosts, &services)
        })
    }

    /// `gethostbyname` restricted to the hosts file (IPv4 entries only).
    pub fn host_addr(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.iter().find_map(|(addr, names)| match addr {
            IpAddr::V4(a) if names.iter().any(|n| n.eq_ignore_ascii_case(name)) => Some(*a),
            _ => None,
        })
    }

    /// `getaddrinfo(name, AF_INET6)` restricted to the hosts file: the first
    /// IPv6 entry of the name (ldirectord's `ld_gethostbyname` of a
    /// `virtual6=`/`real6=`/`fallback6=` host).
    pub fn host_addr6(&self, name: &str) -> Option<std::net::Ipv6Addr> {
        self.hosts.iter().find_map(|(addr, names)| match addr {
            IpAddr::V6(a) if names.iter().any(|n| n.eq_ignore_ascii_case(name)) => Some(*a),
            _ => None,
        })
    }

    /// `gethostbyaddr` restricted to the hosts file (either family).
    pub fn host_name(&self, addr: IpAddr) -> Option<&str> {
        self.hosts
            .iter()
            .find(|(a, _)| *a == addr)
            .and_then(|(_, names)| names.first())
            .map(String::as_str)
    }

    /// `getservbyname(name, "tcp"|"udp")`.
    pub fn service_port(&self, name: &str, proto: Proto) -> Option<u16> {
        let proto = proto_file_name(proto);
        self.services
            .iter()
            .find(|e| e.proto == proto && e.names.iter().any(|n| n == name))
            .map(|e| e.port)
    }

    /// `getservbyport(port, "tcp"|"udp")`, as ipvsadm's `port_to_service`
    /// asks it: never for a fwmark service's reals or a fwmark template,
    /// whose protocol ipvsadm reads as 0 (the kernel reports none for a
    /// fwmark service; `/proc/net/ip_vs_conn` says `IP`), so their ports
    /// are printed as numbers.
    pub fn service_name(&self, port: u16, proto: Proto) -> Option<&str> {
        if proto == Proto::Fwm {
            return None;
        }
        let proto = proto_file_name(proto);
        self.services
            .iter()
            .find(|e| e.proto == proto && e.port == port)
            .and_then(|e| e.names.first())
            .map(String::as_str)
    }
}

fn proto_file_name(proto: Proto) -> &'static str {
    match proto {
        // A fwmark service's names are TCP's when parsed, as ipvsadm
        // gives `-f` protocol TCP (`service_name` prints none).
        Proto::Tcp | Proto::Fwm => "tcp",
        Proto::Udp => "udp",
    }
}

/// The part of a configuration line before its `#` comment.
pub(crate) fn uncomment(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

fn parse_hosts(text: &str) -> Vec<(IpAddr, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = uncomment(line).split_whitespace();
            let addr = fields.next()?.parse::<IpAddr>().ok()?;
            let names: Vec<String> = fields.map(str::to_owned).collect();
            (!names.is_empty()).then_some((addr, names))
        })
        .collect()
}

fn parse_services(text: &str) -> Vec<ServiceEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = uncomment(line).split_whitespace();
            let name = fields.next()?;
            let (port, proto) = fields.next()?.split_once('/')?;
            let port = port.parse::<u16>().ok()?;
            let mut names = vec![name.to_owned()];
            names.extend(fields.map(str::to_owned));
            Some(ServiceEntry {
                port,
                proto: proto.to_owned(),
                names,
            })
        })
        .collect()
}

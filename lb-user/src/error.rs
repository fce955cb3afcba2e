//! Errors of the controller library. Messages are lowercase fragments; the
//! binary prints them after `lbctl: `.

use std::path::PathBuf;

use crate::model::{RealId, ServiceId};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "this lbctl was built without its BPF object; build it with `cargo xtask build` \
         (target/release/lbctl)"
    )]
    NoObject,
    #[error(
        "permission denied: this process lacks {missing} ({why}; run it as root, or as a \
         user given these capabilities)"
    )]
    Privileges { missing: String, why: &'static str },
    #[error(
        "permission denied on the pin directory {} (owned by uid {owner}): the tables belong \
         to the directory's owner; run lbctl as that user or root, or give the directory to \
         this user (chown -R)",
        .dir.display()
    )]
    PinAccess { dir: PathBuf, owner: u32 },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not on a bpffs; mount one (mount -t bpf bpf DIR) or set LB_PIN_PATH", .0.display())]
    NotBpffs(PathBuf),
    #[error("pinned maps in {dir} cannot be used: {why}")]
    StalePin { dir: PathBuf, why: String },
    #[error(
        "the pinned tables have {} connection and {} template entries, {} services and {} \
         real-server slots, not the requested {}, {}, {} and {}; run `lbctl attach --reset` to \
         recreate them (this drops every connection and template)",
        have.conns, have.templates, have.services, have.reals,
        want.conns, want.templates, want.services, want.reals
    )]
    SizeMismatch {
        want: Box<crate::pins::Sizes>,
        have: Box<crate::pins::Sizes>,
    },
    #[error("map `{0}` is missing from the BPF object")]
    MissingMap(&'static str),
    #[error("map `{name}`: {op} failed")]
    Map {
        name: &'static str,
        op: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("loading the BPF object failed")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("BPF program: {what} failed")]
    Program {
        what: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("interface {0} not found")]
    NoInterface(String),
    /// An IPv4-mapped IPv6 address as a service's or real's.
    #[error(transparent)]
    Addr(#[from] crate::addr::AddrError),
    /// `-a` of an IPv6 real server that is link-local, multicast or
    /// unspecified: the kernel's -EINVAL (`ip_vs_new_dest`).
    #[error("real server {0} is not a unicast address (link-local, multicast or unspecified)")]
    RealNotUnicast(std::net::IpAddr),
    #[error("service already exists")]
    ServiceExists(ServiceId),
    #[error("no such service")]
    NoService(ServiceId),
    #[error("destination already exists")]
    RealExists(ServiceId, RealId),
    #[error("no such destination")]
    NoReal(ServiceId, RealId),
    /// ipvsadm prints `strerror(ERANGE)` for the kernel's refusal
    /// (`ip_vs_add_dest`/`ip_vs_edit_dest`: "lower threshold is higher than
    /// upper threshold").
    #[error(
        "numerical result out of range: the lower threshold (-y {lower}) is higher than the \
         upper threshold (-x {upper})"
    )]
    ThresholdRange { upper: u32, lower: u32 },
    #[error("too many services (at most {0})")]
    TooManyServices(u32),
    #[error("too many real servers in one service (at most {0})")]
    TooManyReals(usize),
    #[error(
        "no room left for the real-server lists (`SVC_DESTS`, {0} entries); make the tables \
         with more real-server slots (`lbctl attach --reset --reals N`)"
    )]
    ListPoolFull(u32),
    #[error("too many real servers (at most {0}, including removed ones still in use)")]
    TooManyDests(u32),
    #[error("{0}")]
    Invalid(String),
    /// `lbctl fwmark add|del` refused.
    #[error(transparent)]
    Fwmark(#[from] crate::fwmark::FwmarkError),
}

//! A frame fuzzer for the XDP program, run through `BPF_PROG_TEST_RUN`.
//!
//! It generates frames — valid ones for every service, protocol and connection
//! state, then mutated: truncated at every header boundary, bits flipped in
//! every header field, wrong lengths, IP options, fragments, VLAN tags, IPv6
//! extension headers and payload lengths, TCP flag combinations, ICMP and
//! ICMPv6 errors about live flows — for IPv4 and IPv6 services alike (the
//! report gives the IPv6 share) — runs each through the loaded
//! program, and checks invariants on every result:
//!
//! - a frame that matches no service, or that the program must not act on
//!   (malformed, tagged, fragmented, an IPv6 chain of extension headers past
//!   the bound, not TCP/UDP over IPv4 or IPv6), leaves unchanged with
//!   `XDP_PASS`;
//! - a forwarded frame goes to a real server of its service that may take it
//!   (weight > 0 and in the service for a new flow, the template's real for a
//!   client with a valid persistence template, the flow's own real for an
//!   existing flow), with only the MAC addresses changed;
//! - every frame the program builds (ICMP port unreachable, TCP RST) has valid
//!   lengths and checksums, checked by the independent parser
//!   ([`crate::frame::parse`]), and the fields LVS prescribes;
//! - every packet is counted under exactly the reason its outcome implies.
//!
//! The checker is independent of the program's code: a reference classifier
//! written from the parsing policy, and a model of LVS semantics (services,
//! reals with weights and availability, connection entries with the
//! INPUT-ONLY TCP state machine of docs/SEMANTICS.md §6.2, persistence templates,
//! `expire_nodest_conn`, `expire_quiescent_template`, `conn_reuse_mode`)
//! that tracks what the program must have done. Control-plane changes
//! (weights, removing and re-adding reals, sysctls) happen during the run,
//! through the same `Table` that lbctl uses.
//!
//! Runs are deterministic for a seed: the generator is a SplitMix64 PRNG, the
//! thread is pinned to one CPU (per-CPU scheduler state), and every state
//! timeout is raised so that nothing expires during a run (expiry is covered
//! by the dataplane fixtures).
//!
//! [`flood`] measures table exhaustion the same way: a connection table of a
//! chosen size, a flood of new flows several times its size, and established
//! connections that keep sending; it reports how many of their packets still
//! found their entry.
//!
//! The rooms: `rng` (the PRNG, [`Rng`]), `config` (the services under test), `model` (the
//! reference classifier and the LVS model), `generator` (frames and mutations), `checker`
//! (the invariants for one result), `runner` (the run loop, control-plane events and the
//! report) and `flood`.

mod checker;
mod config;
mod flood;
mod generator;
mod model;
mod rng;
mod runner;

pub use config::{NOT_VIP, NOT_VIP6, VIP_A, VIP_B, VIP6_A, VIP6_B, configure};
pub use flood::{FloodConfig, FloodReport, Rig, flood};
pub use rng::Rng;
pub use runner::{FuzzConfig, Report, Violation, check_one, hex, run, run_in_lab, unhex};

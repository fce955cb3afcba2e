//! Test infrastructure for the XDP load balancer.
//!
//! - [`netns`]: network-namespace and bpffs pin-directory guards (unique names, cleanup in
//!   `Drop`, per-thread `setns`), and [`netns::require_root`] for loud privilege skips.
//! - [`topo`]: a direct-routing (LVS `-g`) topology on a bridge: client, director (LB) and
//!   real servers, each in its own namespace, all addresses from documentation ranges.
//! - [`topo_methods`]: the topology of the three forwarding methods: direct-routing reals
//!   on the client's segment, NAT reals behind a two-armed director, tunnelled reals behind a
//!   router; [`methods`]: the load balancer and the decapsulator attached on it, and helpers
//!   (a bulk upload, the client's path MTU, a server that holds its connection).
//! - [`client`]: TCP/UDP helpers that run inside the client namespace.
//! - [`daemon_lab`]: a director for `lbctl daemon` at scale: answering and silent real
//!   servers behind a veth, the program attached in generic mode.
//! - [`ldirectord`]: Debian's real ldirectord run unmodified against lbctl (bind-mounted over
//!   ipvsadm in a private mount namespace), for the ldirectord suite.
//! - [`logged_child`]: a background child that logs to files (wait for a line, stop,
//!   killed on drop), under both of those.
//! - [`frame`]: Ethernet/IPv4/IPv6/TCP/UDP/ICMP/ARP frames for `BPF_PROG_TEST_RUN`
//!   fixtures: a builder, a mutator for malformed frames, and a strict parser on `etherparse`
//!   (independent of the builder) to check the frames the program outputs.
//! - [`fuzz`]: a frame fuzzer for the XDP program (PRNG, configuration, LVS model, generator,
//!   checker, runner, and the table-exhaustion flood), run by `cargo xtask fuzz` (the
//!   `lb-fuzz` binary) and, briefly, by the robustness tests.
//!
//! The `lb-testsrv` binary (in `src/bin`) is the real-server side: an HTTP-ish TCP server
//! that answers with its name, a "hold" echo mode, and a UDP responder.
//!
//! Nothing here touches the caller's network namespace: every interface, address and route
//! is created inside namespaces owned by guards.

pub mod cli_lab;
pub mod client;
pub mod daemon_lab;
pub mod decap;
pub mod fixture;
pub mod frame;
pub mod fuzz;
pub mod lb;
pub mod ldirectord;
pub mod logged_child;
pub mod methods;
pub mod netns;
pub mod topo;
pub mod topo_methods;

pub use netns::{BpfPinDir, Netns, require_root};

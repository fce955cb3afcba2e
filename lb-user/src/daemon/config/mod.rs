//! ldirectord's configuration file (`ldirectord.cf`), read as ldirectord
//! reads it (`read_config` and `ld_setup` in ClusterLabs/resource-agents
//! `ldirectord/ldirectord.in`), into what `lbctl daemon` needs.
//!
//! The format:
//!
//! * global directives start in the first column (`checktimeout=3`);
//! * `virtual=ADDR:PORT` starts a virtual service; its directives follow on
//!   lines indented by at least 4 spaces or a tab (`real=`, `service=`, ...);
//!   the block ends at the first non-blank, non-comment line that is not
//!   indented that far;
//! * `#` starts a comment (outside double quotes); blank lines are ignored.
//!
//! Defaults are ldirectord's: `checkinterval` 10 s, `checktimeout` 5 s and
//! `negotiatetimeout` 30 s (each falls back to the other as ldirectord's
//! `ld_setup` does), `failurecount` 1, `checktype` negotiate, `scheduler`
//! wrr, `protocol` tcp (udp for port 53), `service` from the port (http for
//! 80, ...), `request` "/", weight 1, `cleanstop` yes, `autoreload` no,
//! `quiescent` yes (docs/SEMANTICS.md §9.1 and ldirectord's manual; note that
//! recent ldirectord code sets `$QUIESCENT = "no"` in `set_defaults`, unlike
//! its manual: write `quiescent=` explicitly to be independent of that).
//!
//! Everything an ldirectord configuration may contain is either honoured,
//! ignored with a warning (it changes nothing about which real servers get
//! traffic: e-mail alerts, `callback`, `monitorfile`, a loopback fallback
//! server), or refused with an error naming the file, the line and the
//! reason (it would change traffic in a way lbctl cannot reproduce: NAT or
//! tunnelling, IPv6, fwmark services, ping and external checks, protocol
//! checks other than HTTP and simpletcp, schedulers other than rr/wrr,
//! one-packet scheduling, `execute`). Hosts are IPv4 addresses or names from
//! `/etc/hosts`; ports are numbers or names from `/etc/services` (never DNS).
//!
//! The module's parts: [`types`] (what a configuration is, with ldirectord's
//! defaults), [`parser`] (the file's grammar, line by line), and the tests in
//! `tests.rs`. The daemon reads this module only through the names below.

mod parser;
#[cfg(test)]
mod tests;
mod types;

use std::path::Path;

pub use parser::parse;
pub use types::*;

use crate::resolve::Resolver;

/// Reads and parses `path`, looking names up in `/etc/hosts` and
/// `/etc/services`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot read the configuration: {e}"),
    })?;
    parse(path, &text, Resolver::system())
}

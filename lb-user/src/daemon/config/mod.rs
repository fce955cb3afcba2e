//! ldirectord's configuration file (`ldirectord.cf`), read as ldirectord
//! reads it (`read_config` and `ld_setup` in ClusterLabs/resource-agents
//! `ldirectord/ldirectord.in`), into what `lbctl daemon` needs.
//!
//! The format:
//!
//! * global directives start in the first column (`checktimeout=3`);
//! * `virtual=ADDR:PORT` starts a virtual service (`virtual6=[ADDR]:PORT` an
//!   IPv6 one, whose reals are `real6=` and fallback `fallback6=`, as in
//!   ldirectord; `virtual=MARK`/`virtual6=MARK` a fwmark one); its directives follow on
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
//! tunnelling, ping and external checks, protocol checks other than HTTP and
//! simpletcp, `execute`). Hosts are addresses (IPv6 ones in brackets) or
//! names from `/etc/hosts` (an entry of the virtual service's family);
//! ports are numbers or names from `/etc/services` (never DNS).
//!
//! The module's parts: [`types`] (what a configuration is, with ldirectord's
//! defaults), [`parser`] (the file's grammar, line by line), and the tests in
//! `tests.rs` (IPv6 in `tests_v6.rs`). The daemon reads this module only through the names below.

mod parser;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fwd;
#[cfg(test)]
mod tests_v6;
mod types;

use std::path::Path;

pub use parser::parse;
pub use types::*;

use crate::{input, resolve::Resolver};

/// The largest configuration file `lbctl daemon` reads (README, "Health
/// checking"): far more than 16,384 services of 16 real servers take.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads and parses `path`, looking names up in `/etc/hosts` and
/// `/etc/services`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(path, &read(path)?, Resolver::system())
}

/// The text of the configuration file `path`, as [`parse`] takes it: a
/// regular file of at most [`MAX_CONFIG_BYTES`] (a FIFO or a device such as
/// `/dev/zero` is refused before it is read), decoded by [`decode`].
pub fn read(path: &Path) -> Result<String, ConfigError> {
    let bytes = input::read_regular_file(path, MAX_CONFIG_BYTES).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        message: match e {
            input::FileError::Io(e) => format!("cannot read the configuration: {e}"),
            e => format!("cannot read the configuration: {e}"),
        },
    })?;
    decode(path, bytes)
}

/// The file's bytes as text. ldirectord (Perl) reads bytes: a comment may
/// hold any, and so may a comment here (its bytes that are not UTF-8 become
/// U+FFFD, and comments are ignored anyway). Before a comment, such a byte
/// is refused with its line and column: values (hosts, requests, expected
/// answers, paths) are text to lbctl, and a byte that is not UTF-8 in one
/// is most likely a Latin-1 file (README, "Differences from IPVS").
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, ConfigError> {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e.into_bytes(),
    };
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 8);
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let end = input::comment_start(line, true).unwrap_or(line.len());
        let value = input::utf8(&line[..end]).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: i + 1,
            message: format!(
                "{e}: lbctl reads ldirectord.cf as UTF-8 text; write this line in UTF-8 \
                 (comments may hold any bytes)"
            ),
        })?;
        text.push_str(value);
        text.push_str(&String::from_utf8_lossy(&line[end..]));
    }
    Ok(text)
}

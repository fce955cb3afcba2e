//! `lbctl -R`: the commands of standard input, one per line, all parsed
//! before any is applied (a line that cannot be parsed, or that asks for
//! what lbctl does not implement, changes nothing: the whole input is
//! refused with its line number); `outcome::restore` then applies them in
//! turn as ipvsadm does. A line is read up to
//! [`MAX_RESTORE_LINE`] bytes (ipvsadm reads words of at most 4,096 bytes,
//! and a saved line is under 100), so an input without newlines such as
//! `/dev/zero` is refused at its first line instead of filling memory. A
//! byte that is not UTF-8 is refused with its line and column, unless it is
//! in a comment (after `#`), which may hold any bytes as in ipvsadm.

use std::io::BufRead;

use super::{Step, parse_restore_line_with};
use crate::{
    cli::CliError,
    input::{self, LineError, NotUtf8},
    resolve::Resolver,
};

/// The longest line `-R` reads, in bytes.
pub const MAX_RESTORE_LINE: usize = 4096;

/// Why `-R` input was refused: the 1-based line and the reason.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("line {line}: longer than {MAX_RESTORE_LINE} bytes, the most lbctl -R reads")]
    LineTooLong { line: usize },
    #[error("line {line}: {at} (only comments, after #, may hold other bytes)")]
    NotUtf8 { line: usize, at: NotUtf8 },
    #[error("line {line}: {error}")]
    Parse { line: usize, error: CliError },
    #[error("reading standard input at line {line}")]
    Io {
        line: usize,
        #[source]
        source: std::io::Error,
    },
}

/// Every command of `input`, in order; comment and blank lines give none.
/// A line that IPVS itself would refuse when applied (an unknown
/// scheduler) is a [`Step::Refused`], not a refusal of the input.
pub fn read_restore<R: BufRead>(mut input: R, names: &Resolver) -> Result<Vec<Step>, RestoreError> {
    let mut cmds = Vec::new();
    let mut buf = Vec::new();
    for line in 1.. {
        match input::read_line_bounded(&mut input, MAX_RESTORE_LINE, &mut buf) {
            Ok(Some(())) => {}
            Ok(None) => break,
            Err(LineError::TooLong(_)) => return Err(RestoreError::LineTooLong { line }),
            Err(LineError::Io(source)) => return Err(RestoreError::Io { line, source }),
        }
        let end = input::comment_start(&buf, false).unwrap_or(buf.len());
        let text = input::utf8(&buf[..end]).map_err(|at| RestoreError::NotUtf8 { line, at })?;
        match parse_restore_line_with(text, names) {
            Ok(Some(c)) => cmds.push(Step::Apply(c)),
            Ok(None) => {}
            Err(e @ CliError::SchedulerNotFound(_)) => cmds.push(Step::Refused(e)),
            Err(error) => return Err(RestoreError::Parse { line, error }),
        }
    }
    Ok(cmds)
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor, Read};

    use super::*;
    use crate::cli::Command;

    fn restore(input: &[u8]) -> Result<Vec<Step>, RestoreError> {
        read_restore(Cursor::new(input.to_vec()), &Resolver::new())
    }

    #[test]
    fn lines_become_commands_in_order() {
        let cmds = restore(
            b"# saved\n-A -t 203.0.113.10:80 -s rr\n\n-a -t 203.0.113.10:80 -r 198.51.100.11:80 -g -w 1\r\n",
        )
        .unwrap();
        assert_eq!(cmds.len(), 2);
        assert!(matches!(cmds[0], Step::Apply(Command::AddService(_))));
        assert!(matches!(cmds[1], Step::Apply(Command::AddReal { .. })));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_fine_in_comments_only() {
        let cmds = restore(b"-A -t 203.0.113.10:80 -s rr # caf\xe9\n# \xff\xfe\n").unwrap();
        assert_eq!(cmds.len(), 1);
        let e = restore(b"-C\n-A -t 203.0.113.10:80 -s r\xe9r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: byte 0xE9 at column 27 is not UTF-8 (only comments, after #, may hold other bytes)"
        );
    }

    #[test]
    fn a_line_without_end_is_refused_at_the_bound() {
        let endless = BufReader::new(std::io::repeat(b'x').take(1 << 30));
        let e = read_restore(endless, &Resolver::new()).unwrap_err();
        assert!(matches!(e, RestoreError::LineTooLong { line: 1 }), "{e:?}");
        let mut long = b"-C\n".to_vec();
        long.extend(std::iter::repeat_n(b' ', MAX_RESTORE_LINE + 1));
        let e = restore(&long).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: longer than 4096 bytes, the most lbctl -R reads"
        );
        // Exactly the bound is read.
        let mut fits = b"-C".to_vec();
        fits.extend(std::iter::repeat_n(b' ', MAX_RESTORE_LINE - 2));
        assert_eq!(restore(&fits).unwrap(), [Step::Apply(Command::Clear)]);
    }

    #[test]
    fn a_bad_command_names_its_line() {
        let e = restore(b"-C\n\n-A -t 203.0.113.10\n").unwrap_err();
        assert!(
            matches!(
                e,
                RestoreError::Parse {
                    line: 3,
                    error: CliError::ZeroPort
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn one_packet_scheduling_on_tcp_names_its_line() {
        let e = restore(b"-A -u 203.0.113.10:53 -s rr -o\n-A -t 203.0.113.10:80 -s rr -o\n")
            .unwrap_err();
        assert!(
            matches!(
                e,
                RestoreError::Parse {
                    line: 2,
                    error: CliError::OnePacketNotUdp
                }
            ),
            "{e:?}"
        );
    }

    /// What lbctl does not implement refuses the whole input, with the
    /// line; what IPVS refuses only when applied (an unknown scheduler) is
    /// a step that fails in its turn.
    #[test]
    fn unsupported_lines_refuse_the_input_and_unknown_schedulers_fail_in_turn() {
        for line in [
            "-A -t [::ffff:203.0.113.10]:80 -s rr",
            "-A --sctp-service 203.0.113.10:80 -s rr",
            "-A -t 203.0.113.10:80 -s rr -p 60 --pe sip",
            "-L -n",
        ] {
            let input = format!("-A -t 203.0.113.10:80 -s rr\n\n{line}\n-C\n");
            let e = restore(input.as_bytes()).unwrap_err();
            let RestoreError::Parse { line: 3, error } = &e else {
                panic!("{line}: {e:?}");
            };
            assert!(!error.is_ipvsadms(), "{line}: {error}");
            assert!(e.to_string().starts_with("line 3: "), "{e}");
        }
        let steps = restore(b"-A -t 203.0.113.10:80 -s bogus\n-C\n").unwrap();
        assert_eq!(
            steps,
            [
                Step::Refused(CliError::SchedulerNotFound("bogus".into())),
                Step::Apply(Command::Clear)
            ]
        );
    }
}

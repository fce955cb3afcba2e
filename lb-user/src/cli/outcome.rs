//! What a command that fails when it is applied prints and exits with, as
//! ipvsadm 1.31 does (docs/SEMANTICS.md §8.6): where IPVS would refuse the
//! command, libipvs's `ipvs_strerror` text alone on standard error and exit
//! status 255 (`process_options` returns -1); lbctl's own refusals (a real
//! server behind a gateway, the tables unreachable, ...) after `lbctl: `,
//! exit status 1. And `-R`'s loop: every line applied in turn, a failing
//! line's message printed and the rest applied, the exit status that of the
//! last line, as ipvsadm's `restore_table` returns it.

use std::io::Write;

use super::{CliError, Command, ListTarget, RestoreError};
use crate::error::Error;

/// The operation a command asks of IPVS: libipvs words a kernel error by
/// it (ESRCH is "No such service" for `-E`, "Service not defined" for
/// `-a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    AddService,
    EditService,
    DeleteService,
    Zero,
    AddDest,
    EditDest,
    DeleteDest,
    /// `-L -t|-u service` (ipvsadm's `list_service`, which exits 1).
    ListService,
    /// Anything else: its errors are lbctl's own.
    Other,
}

impl Op {
    pub fn of(cmd: &Command) -> Op {
        match cmd {
            Command::AddService(_) => Op::AddService,
            Command::EditService(_) => Op::EditService,
            Command::DeleteService(_) => Op::DeleteService,
            Command::Zero(_) => Op::Zero,
            Command::AddReal { .. } => Op::AddDest,
            Command::EditReal { .. } => Op::EditDest,
            Command::DeleteReal { .. } => Op::DeleteDest,
            Command::List {
                target: ListTarget::Service(_),
                ..
            } => Op::ListService,
            _ => Op::Other,
        }
    }
}

/// libipvs's `ipvs_strerror` for the errors of lbctl's tables that stand
/// for the kernel's: the errno IPVS returns for the operation, worded by
/// libipvs's table. `None` for lbctl's own errors.
pub fn ipvs_strerror(op: Op, e: &Error) -> Option<&'static str> {
    Some(match e {
        // -EEXIST of IPVS_CMD_NEW_SERVICE.
        Error::ServiceExists(_) => "Service already exists",
        // -ESRCH: the service of the command is not there.
        Error::NoService(_) => match op {
            Op::AddDest | Op::EditDest | Op::DeleteDest => "Service not defined",
            _ => "No such service",
        },
        // -EEXIST of ip_vs_add_dest, -ENOENT of ip_vs_edit_dest/del_dest.
        Error::RealExists(..) => "Destination already exists",
        Error::NoReal(..) => "No such destination",
        // -ERANGE of ip_vs_add_dest/edit_dest: not in libipvs's table, so
        // strerror's text.
        Error::ThresholdRange { .. } => "Numerical result out of range",
        // -EINVAL of ip_vs_new_dest: an IPv6 real that is not unicast.
        Error::RealNotUnicast(_) => {
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        }
        // A full table: the kernel's allocation fails (-ENOMEM).
        Error::TooManyServices(_)
        | Error::TooManyReals(_)
        | Error::TooManyDests(_)
        | Error::ListPoolFull(_) => "Memory allocation problem",
        _ => return None,
    })
}

/// What to print on standard error and the exit status for a command that
/// failed when applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The whole text, each line with its newline.
    pub text: String,
    pub status: u8,
}

/// The [`Failure`] of a command of operation `op` that failed with `e`:
/// ipvsadm's line for IPVS's refusals (and, for a full table, which table
/// on a second line), else lbctl's message.
pub fn failure(op: Op, e: &(dyn std::error::Error + 'static)) -> Failure {
    if let Some(lib) = e.downcast_ref::<Error>()
        && let Some(message) = ipvs_strerror(op, lib)
    {
        let mut text = format!("{message}\n");
        if message == "Memory allocation problem" {
            text.push_str(&format!("lbctl: {}\n", chain(lib)));
        }
        return Failure {
            text,
            status: if op == Op::ListService { 1 } else { 255 },
        };
    }
    if let Some(RestoreError::Parse { error, .. }) = e.downcast_ref::<RestoreError>() {
        // `-R` input refused before anything was applied: the line, and the
        // status the line's error has on a command line.
        return Failure {
            text: format!("lbctl: {}\n", chain(e)),
            status: error.exit_code() as u8,
        };
    }
    if let Some(cli) = e.downcast_ref::<CliError>() {
        return Failure {
            text: cli.render("lbctl"),
            status: cli.exit_code() as u8,
        };
    }
    Failure {
        text: format!("lbctl: {}\n", chain(e)),
        status: 1,
    }
}

/// An error and its sources, `: `-separated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

/// One command line of `-R` input, read and checked before any is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A command to apply.
    Apply(Command),
    /// A line that parses but that IPVS refuses when it is applied (an
    /// unknown scheduler): in its turn it fails with this error, as in
    /// ipvsadm, and the next lines are applied.
    Refused(CliError),
}

/// `-R`'s loop over `steps`, as ipvsadm's `restore_table`: each command is
/// applied in turn; a failing one's message goes to `stderr` and the next
/// ones are applied. The exit status is the last line's (0 when it
/// succeeded, whatever failed before it: ipvsadm keeps only the last
/// `process_options` result).
pub fn restore(
    steps: impl IntoIterator<Item = Step>,
    mut apply: impl FnMut(Command) -> Result<(), Box<dyn std::error::Error>>,
    stderr: &mut dyn Write,
) -> u8 {
    let mut status = 0;
    for step in steps {
        let failed = match step {
            Step::Apply(cmd) => {
                let op = Op::of(&cmd);
                apply(cmd).err().map(|e| failure(op, &*e))
            }
            Step::Refused(e) => Some(Failure {
                text: e.render("lbctl"),
                status: e.exit_code() as u8,
            }),
        };
        status = match failed {
            Some(f) => {
                // A message that cannot be written changes nothing more.
                let _ = stderr.write_all(f.text.as_bytes());
                f.status
            }
            None => 0,
        };
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Proto, RealId, ServiceId, Thresholds};

    fn svc() -> ServiceId {
        ServiceId {
            proto: Proto::Tcp,
            addr: "203.0.113.10".parse().unwrap(),
            port: 80,
        }
    }

    fn real() -> RealId {
        RealId {
            addr: "198.51.100.11".parse().unwrap(),
            port: 80,
        }
    }

    fn text(op: Op, e: Error) -> (String, u8) {
        let f = failure(op, &e);
        (f.text, f.status)
    }

    /// libipvs's `ipvs_strerror` table, row by row, for each operation
    /// lbctl's tables refuse as IPVS does: the text alone, exit 255.
    #[test]
    fn kernel_refusals_are_worded_as_libipvs_words_them() {
        let s = svc();
        let r = real();
        let k = |m: &str| (format!("{m}\n"), 255u8);
        assert_eq!(
            text(Op::AddService, Error::ServiceExists(s)),
            k("Service already exists")
        );
        for op in [Op::EditService, Op::DeleteService, Op::Zero] {
            assert_eq!(
                text(op, Error::NoService(s)),
                k("No such service"),
                "{op:?}"
            );
        }
        for op in [Op::AddDest, Op::EditDest, Op::DeleteDest] {
            assert_eq!(
                text(op, Error::NoService(s)),
                k("Service not defined"),
                "{op:?}"
            );
        }
        assert_eq!(
            text(Op::AddDest, Error::RealExists(s, r)),
            k("Destination already exists")
        );
        for op in [Op::EditDest, Op::DeleteDest] {
            assert_eq!(
                text(op, Error::NoReal(s, r)),
                k("No such destination"),
                "{op:?}"
            );
        }
        let t = Thresholds { upper: 1, lower: 2 };
        assert_eq!(
            text(
                Op::AddDest,
                Error::ThresholdRange {
                    upper: t.upper,
                    lower: t.lower
                }
            ),
            k("Numerical result out of range")
        );
        // `-L -t` of a missing service: list_service exits 1.
        assert_eq!(
            text(Op::ListService, Error::NoService(s)),
            ("No such service\n".into(), 1)
        );
    }

    #[test]
    fn a_full_table_is_a_memory_allocation_problem_and_says_which() {
        let (t, status) = text(Op::AddService, Error::TooManyServices(4));
        assert_eq!(status, 255);
        assert_eq!(
            t,
            "Memory allocation problem\nlbctl: too many services (at most 4)\n"
        );
        for e in [
            Error::TooManyReals(65536),
            Error::TooManyDests(8),
            Error::ListPoolFull(64),
        ] {
            let (t, status) = text(Op::AddDest, e);
            assert!(t.starts_with("Memory allocation problem\nlbctl: "), "{t}");
            assert_eq!(status, 255);
        }
    }

    #[test]
    fn lbctls_own_refusals_keep_its_words() {
        let (t, status) = text(
            Op::AddDest,
            Error::Invalid(
                "real server 198.51.100.11 is not on a directly connected network".into(),
            ),
        );
        assert_eq!(
            t,
            "lbctl: real server 198.51.100.11 is not on a directly connected network\n"
        );
        assert_eq!(status, 1);
        assert_eq!(
            failure(Op::AddService, &CliError::SchedulerNotFound("x".into())),
            Failure {
                text: "Scheduler or persistence engine not found\n".into(),
                status: 255
            }
        );
    }

    /// A failing line in the middle: its message, the next lines applied,
    /// the status of the last line (0); a failing last line gives 255.
    #[test]
    fn restore_applies_every_line_and_returns_the_last_lines_status() {
        let cmds = |n: usize| {
            (0..n)
                .map(|_| Step::Apply(Command::Clear))
                .collect::<Vec<_>>()
        };
        let run = |steps: Vec<Step>, fail_at: &[usize]| {
            let mut applied = Vec::new();
            let mut err = Vec::new();
            let mut i = 0;
            let status = restore(
                steps,
                |_| {
                    i += 1;
                    applied.push(i);
                    if fail_at.contains(&i) {
                        Err(Box::new(Error::ServiceExists(svc())))
                    } else {
                        Ok(())
                    }
                },
                &mut err,
            );
            (status, applied, String::from_utf8(err).unwrap())
        };
        let (status, applied, err) = run(cmds(3), &[2]);
        assert_eq!((status, applied), (0, vec![1, 2, 3]));
        assert_eq!(err, "Service already exists\n");
        let (status, applied, err) = run(cmds(3), &[1, 3]);
        assert_eq!((status, applied), (255, vec![1, 2, 3]));
        assert_eq!(err, "Service already exists\nService already exists\n");
        // A line IPVS refuses fails in its turn; the others are applied.
        let mut steps = cmds(1);
        steps.push(Step::Refused(CliError::SchedulerNotFound("x".into())));
        let (status, applied, err) = run(steps.clone(), &[]);
        assert_eq!((status, applied), (255, vec![1]));
        assert_eq!(err, "Scheduler or persistence engine not found\n");
        steps.push(Step::Apply(Command::Clear));
        assert_eq!(run(steps, &[]).0, 0);
        assert_eq!(run(Vec::new(), &[]).0, 0);
    }
}

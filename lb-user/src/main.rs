//! `lbctl`: ipvsadm's command line for the XDP load balancer.
//!
//! Like ipvsadm, it talks straight to the dataplane's tables (the pinned
//! maps) and exits; no daemon is needed.

use std::{io::Write, ops::ControlFlow, process::ExitCode, time::Duration};

use lb_user::{
    Pins, Sizes, Table,
    attach::{self, Mode},
    cli::{self, Command, FwmarkCmd, ListTarget, SysctlCmd, XdpMode},
    format,
    pins::pin_dir,
};

/// `--rate` measures over this window (ipvsadm reads the kernel's 2 s
/// estimator; we sample the counters twice).
const RATE_WINDOW: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let mut argv = std::env::args();
    // ipvsadm names itself by its argv[0] in `-h` and in "Try `... -h'".
    let program = argv.next().unwrap_or_else(|| "lbctl".into());
    let args: Vec<String> = argv.collect();
    let cmd = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}", e.render(&program));
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    if let Command::Drain(spec) = cmd {
        return drain(&spec);
    }
    let op = cli::Op::of(&cmd);
    match run(cmd, &program) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            // ipvsadm's message and status where IPVS would refuse the
            // command, lbctl's own otherwise (docs/SEMANTICS.md §8.6).
            let f = cli::failure(op, &*e);
            eprint!("{}", f.text);
            ExitCode::from(f.status)
        }
    }
}

/// `lbctl drain`: its own exit status (3 on timeout), and the tables opened
/// for each look only (`lb_user::drain`).
fn drain(spec: &lb_user::drain::DrainSpec) -> ExitCode {
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout().lock();
    let mut tables = lb_user::drain::Pinned(open);
    match lb_user::drain::drain(spec, &mut tables, &mut stdout, tty, lb_user::drain::POLL) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lbctl: {}", cli::chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn open() -> Result<Table, lb_user::Error> {
    Ok(Table::new(Pins::open(&pin_dir(), None)?))
}

fn out(text: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()?;
    Ok(())
}

/// Runs `cmd`; its exit status (that of `-R`'s last line), or the error
/// that stopped it.
fn run(cmd: Command, program: &str) -> Result<u8, Box<dyn std::error::Error>> {
    match cmd {
        Command::Help => out(&cli::usage(program))?,
        Command::Version => out(&cli::version_text())?,
        Command::Print(text) => out(&text)?,
        Command::Completions(shell) => out(&cli::completions(shell))?,
        Command::Manpage => out(&cli::manpage())?,
        Command::Attach {
            iface,
            mode,
            conns,
            templates,
            services,
            reals,
            reset,
        } => {
            let dir = pin_dir();
            let given = conns.is_some() || templates.is_some() || services.is_some();
            let wanted = (given || reals.is_some()).then(|| Sizes {
                conns: conns.unwrap_or(Sizes::DEFAULT.conns),
                templates: templates.unwrap_or(Sizes::DEFAULT.templates),
                services: services.unwrap_or(Sizes::DEFAULT.services),
                reals: reals.unwrap_or(Sizes::DEFAULT.reals),
            });
            // Check the privileges and the interface first: a refused or
            // bad command must change nothing.
            lb_user::pins::require_attach_privileges()?;
            if lb_user::neigh::ifindex(&iface).is_none() {
                return Err(lb_user::Error::NoInterface(iface).into());
            }
            if reset {
                lb_user::pins::reset(&dir)?;
            }
            let mut pins = Pins::open(&dir, wanted)?;
            let sizes = pins.sizes;
            if let (Some(ifindex), Some(mac)) = (
                lb_user::neigh::ifindex(&iface),
                lb_user::neigh::if_mac(&iface),
            ) {
                pins.set_iface(ifindex, mac)?;
            }
            let mut table = Table::new(pins);
            table.resolve_unresolved()?;
            let mode = match mode {
                XdpMode::Native => Mode::Native,
                XdpMode::Generic => Mode::Generic,
            };
            attach::attach(&dir, sizes, &iface, mode, lb_common::PROGRAM_NAME)?;
        }
        Command::Detach { iface } => {
            let dir = pin_dir();
            let mut pins = Pins::open(&dir, None)?; // the lock and the privilege check
            attach::detach(&dir, &iface)?;
            if let Some(ifindex) = lb_user::neigh::ifindex(&iface) {
                pins.clear_iface(ifindex)?;
            }
        }
        Command::Daemon {
            foreground,
            config,
            metrics,
            metrics_public,
        } => {
            // Before the run directory or anything else is made.
            lb_user::pins::require_privileges()?;
            lb_user::daemon::run(lb_user::daemon::Options {
                config,
                foreground,
                metrics,
                metrics_public,
            })?
        }
        Command::DaemonStatus { config } => {
            // What the daemon knows is what `-L` shows: the same rule.
            lb_user::pins::require_privileges()?;
            // ldirectord's status exit codes: 0 running, 1 stale, 3 stopped.
            let (text, code) = lb_user::daemon::status_report(config.as_deref());
            out(&text)?;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Decap(c) => {
            let (text, warnings) = lb_user::decap::run(c)?;
            for w in warnings {
                eprintln!("lbctl: warning: {w}");
            }
            out(&text)?;
        }
        Command::Restore => {
            // Parse everything first: a line that cannot be parsed or that
            // lbctl does not implement changes nothing. Then each line in
            // turn, as ipvsadm: a failing one is reported and the rest go
            // on; the status is the last line's.
            let steps = cli::read_restore(
                std::io::stdin().lock(),
                lb_user::resolve::Resolver::system(),
            )?;
            let mut table = open()?;
            let mut stderr = std::io::stderr().lock();
            return Ok(cli::restore(steps, |c| apply(&mut table, c), &mut stderr));
        }
        other => {
            let mut table = open()?;
            apply(&mut table, other)?;
        }
    }
    Ok(0)
}

/// `-L -c`: each row written as the table is read (a batch at a time),
/// through a buffer, so that a table of millions of entries takes the
/// memory of one batch.
fn list_conns(t: &Table, f: &format::ListFormat) -> Result<(), Box<dyn std::error::Error>> {
    let names = format::names_for(f.numeric);
    let mut o = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut failed = o.write_all(format::conns_heading(f).as_bytes()).err();
    if failed.is_none() {
        let mut line = String::new();
        t.for_each_conn_row(|row| {
            line.clear();
            format::conn_row(&mut line, row, f, names);
            match o.write_all(line.as_bytes()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
    }
    let Some(e) = failed.or_else(|| o.flush().err()) else {
        return Ok(());
    };
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // The reader is gone (`lbctl -L -c | head`): end as ipvsadm does,
        // by SIGPIPE, without a message.
        // SAFETY: restoring a signal's default action, then raising it.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
        }
    }
    Err(e.into())
}

/// The fwmark classifier's rules, one `fwmark add` line each.
fn fwmark_lines(t: &Table) -> Result<String, lb_user::Error> {
    Ok(t.fwmark_rules()?.iter().map(|r| format!("{r}\n")).collect())
}

fn apply(t: &mut Table, cmd: Command) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        Command::AddService(spec) => t.add_service(&spec)?,
        Command::EditService(spec) => t.edit_service(&spec)?,
        Command::DeleteService(id) => t.delete_service(&id)?,
        Command::Clear => t.clear()?,
        Command::AddReal { service, real } => t.add_real(&service, &real)?,
        Command::EditReal { service, real } => t.edit_real(&service, &real)?,
        Command::DeleteReal { service, real } => t.delete_real(&service, &real)?,
        Command::Zero(svc) => t.zero(svc.as_ref())?,
        Command::SetTimeouts(tm) => t.set_timeouts(&tm)?,
        Command::Save { numeric } => {
            // The fwmark classifier's rules first, as `lbctl fwmark add`
            // lines, so that `-R` has them before the services.
            let mut text = fwmark_lines(t)?;
            text.push_str(&format::save(&t.views(None)?, numeric));
            out(&text)?
        }
        Command::Fwmark(FwmarkCmd::List) => out(&fwmark_lines(t)?)?,
        Command::Fwmark(FwmarkCmd::Add(rule)) => t.add_fwmark_rule(&rule)?,
        Command::Fwmark(FwmarkCmd::Del(rule)) => t.delete_fwmark_rule(&rule)?,
        Command::List { target, format: f } => {
            let window = f.rate.then_some(RATE_WINDOW);
            match target {
                ListTarget::All => {
                    let views = t.views(window)?;
                    out(&format::list_services(&views, &f, t.pins.sizes.conns))?;
                }
                ListTarget::Service(id) => {
                    let views = t.views(window)?;
                    let Some(v) = views.iter().find(|v| v.spec.id == id) else {
                        return Err(lb_user::Error::NoService(id).into());
                    };
                    out(&format::list_service(v, &f))?;
                }
                ListTarget::Conns => list_conns(t, &f)?,
                ListTarget::Timeouts => out(&format::timeouts(&t.timeouts()?))?,
            }
        }
        Command::Sysctl(SysctlCmd::List) => out(&format::sysctls(&t.sysctls()?))?,
        Command::Sysctl(SysctlCmd::Show(s)) => {
            let all = t.sysctls()?;
            let v: Vec<(&str, u32)> = all.into_iter().filter(|(n, _)| *n == s.name()).collect();
            out(&format::sysctls(&v))?;
        }
        Command::Sysctl(SysctlCmd::Set(s, v)) => t.set_sysctl(s.name(), v)?,
        Command::Counters => out(&format::counters(&t.counters()?))?,
        Command::Whereis {
            service,
            client,
            port,
        } => out(&lb_user::whereis::format(
            &t.whereis(&service, client, port)?,
        ))?,
        Command::Help
        | Command::Version
        | Command::Print(_)
        | Command::Completions(_)
        | Command::Manpage
        | Command::Restore
        | Command::Attach { .. }
        | Command::Detach { .. }
        | Command::Daemon { .. }
        | Command::DaemonStatus { .. }
        | Command::Decap(_)
        | Command::Drain(_) => {
            return Err(format!("{cmd:?} is not allowed here").into());
        }
    }
    Ok(())
}

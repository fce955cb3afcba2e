//! `lbctl daemon CONFIG`: ldirectord for the XDP load balancer.
//!
//! It reads an unchanged `ldirectord.cf` ([`config`]), checks every real
//! server concurrently, each check bounded by its timeout ([`check`]),
//! tracks their health as ldirectord does ([`health`]) and keeps the
//! dataplane's tables in step through [`Table`], applying only what differs
//! ([`reconcile`]): a real server that fails `failurecount` checks in a row
//! is quiesced (weight 0) or removed, one that passes again gets its weight
//! back, and the fallback server stands in while no real server is up.
//!
//! - SIGHUP, and a changed file with `autoreload=yes` (looked at every
//!   `checkinterval`), reload the configuration: the new file is parsed in
//!   full first; if it is bad the old configuration stays in force.
//! - SIGTERM/SIGINT stop the daemon; services with `cleanstop=yes` are
//!   removed, the others keep forwarding as they are.
//! - One log line per change (real server up/down, quiesced, restored,
//!   deleted, fallback in/out, reload), to standard error, a file or syslog
//!   as `logfile=` says ([`logger`]), with the XDP program's own aya-log
//!   messages ([`xdp_log`]).
//! - `lbctl daemon-status` reads the status file written after every change
//!   ([`status`]); `--metrics ADDR:PORT` serves Prometheus text
//!   ([`metrics`]).
//!
//! The daemon never holds the pin directory's lock between changes (every
//! `lbctl` command takes it): each change opens the pinned maps, applies its
//! operations and closes them. It runs on a current-thread tokio runtime
//! (its namespace is the process's; nothing here calls `setns`), table work
//! on at most 16 of tokio's blocking threads so that a
//! slow next-hop resolution never delays a check. Checks run in bounded
//! slots, identical checks shared, local errors retried ([`runner`]); the
//! metrics endpoint is bound in the background and capped ([`metrics`]), so
//! neither a taken port nor its clients can hold health checking up. It
//! always stays in the foreground (it is meant for systemd or another
//! supervisor, like ldirectord's `supervised=yes`).

pub mod check;
pub mod config;
pub mod health;
pub mod logger;
pub mod metrics;
pub mod neigh_watch;
pub mod reconcile;
pub mod runner;
pub mod status;
pub mod xdp_log;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
    task::JoinHandle,
    time::MissedTickBehavior,
};

use self::{
    check::Job,
    config::{CheckType, Config, ConfigError},
    health::{Health, Outcome, Transition},
    logger::Logger,
    reconcile::{
        Actual, HealthMap, Mode, any_up, apply, plan, plan_stop, read_actual, service_label,
    },
    runner::Runner,
    status::{InstanceLock, Status},
};
use crate::{
    Pins, Table,
    error::Error,
    model::{RealId, ServiceId},
    pins::pin_dir,
};

/// How `lbctl daemon` was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub config: PathBuf,
    /// `--foreground` (the daemon never detaches; without the flag it says
    /// so once).
    pub foreground: bool,
    /// `--metrics ADDR:PORT`.
    pub metrics: Option<SocketAddr>,
    /// `--metrics-public`: allow a non-loopback metrics address.
    pub metrics_public: bool,
}

/// Why the daemon could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error("{what}")]
    Table {
        what: String,
        #[source]
        source: Box<Error>,
    },
}

// ---------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------

/// A real server of a virtual service.
type Member = (ServiceId, RealId);

/// A check result, tagged with the configuration generation it was made for,
/// for every (virtual service, real server) that asks for the same check.
struct CheckResult {
    generation: u64,
    members: Arc<[Member]>,
    outcome: Outcome,
}

struct Daemon {
    config_path: PathBuf,
    pin_dir: PathBuf,
    cfg: Arc<Config>,
    /// The file's text as last read, and its mtime (for `autoreload`).
    text: String,
    mtime: Option<SystemTime>,
    log: Logger,
    health: HealthMap,
    /// The table as last read (after the last change).
    actual: Actual,
    /// The last change failed: try again at the next tick.
    dirty: bool,
    tasks: Vec<JoinHandle<()>>,
    generation: u64,
    tx: mpsc::UnboundedSender<CheckResult>,
    rx: mpsc::UnboundedReceiver<CheckResult>,
    status_path: PathBuf,
    status_tx: watch::Sender<Arc<Status>>,
    started: SystemTime,
    /// The last `fallbackcommand` argument run per service.
    fallback_cmd: BTreeMap<ServiceId, &'static str>,
    /// Fallback commands to run, one after the other.
    fallback_runner: mpsc::UnboundedSender<String>,
    /// aya-log readers of the attached programs.
    xdp_logs: xdp_log::ProgramLogs,
    /// The check tasks' slots and counters.
    runner: Runner,
    /// When the status was last written, and whether check results came
    /// in since (written at most once per [`STATUS_EVERY`] when no real
    /// server changed).
    status_written: Instant,
    status_stale: bool,
    _lock: InstanceLock,
}

/// The signals the daemon handles.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

/// How often check results that changed nothing are written to the status.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Blocking threads of the runtime (table changes, metrics, fallback
/// commands): each opens the pinned maps, so their number is bounded.
const BLOCKING_THREADS: usize = 16;

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(opts: Options) -> Result<(), DaemonError> {
    // Before anything opens a descriptor: checks need one each.
    let nofile = runner::raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .map_err(|e| DaemonError::Setup(format!("starting the runtime: {e}")))?;
    rt.block_on(async {
        // Before the first change: a SIGTERM while the daemon sets up is
        // handled (after the set-up) rather than killing it half-way.
        let sig = |k| signal(k).map_err(|e| DaemonError::Setup(format!("signal handler: {e}")));
        let signals = Signals {
            hup: sig(SignalKind::hangup())?,
            term: sig(SignalKind::terminate())?,
            int: sig(SignalKind::interrupt())?,
        };
        let mut d = Daemon::start(&opts, nofile).await?;
        d.main_loop(signals).await
    })
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Daemon {
    async fn start(
        opts: &Options,
        nofile: Result<(u64, u64), nix::Error>,
    ) -> Result<Daemon, DaemonError> {
        let config_path = std::path::absolute(&opts.config)
            .map_err(|e| DaemonError::Setup(format!("{}: {e}", opts.config.display())))?;
        let text = config::read(&config_path)?;
        let cfg = config::parse(&config_path, &text, crate::resolve::Resolver::system())?;
        if let Some(addr) = &opts.metrics {
            metrics::check_addr(addr, opts.metrics_public).map_err(DaemonError::Setup)?;
        }
        let pin_dir = std::path::absolute(pin_dir())
            .map_err(|e| DaemonError::Setup(format!("pin directory: {e}")))?;
        let status_path = status::status_path(&status::run_dir(), &pin_dir, &config_path);
        let lock = InstanceLock::take(&status_path).map_err(DaemonError::Setup)?;
        let log = Logger::new(cfg.logfile.as_ref());
        let mut xdp_logs = xdp_log::ProgramLogs::new(log.clone());
        xdp_logs.refresh(&pin_dir);
        if !opts.foreground {
            log.log(
                "lbctl daemon stays in the foreground (run it under systemd or another supervisor)",
            );
        }
        let slots = match nofile {
            Ok((old, new)) => {
                if old != new {
                    log.log(&format!(
                        "Raised the limit of open files from {old} to {new} (the hard limit)"
                    ));
                }
                runner::check_slots(new)
            }
            Err(e) => {
                log.log(&format!(
                    "Error: reading or raising the limit of open files: {e}"
                ));
                runner::check_slots(0)
            }
        };
        let runner = Runner::new(slots, log.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let fallback_runner = spawn_command_runner(log.clone());
        let (status_tx, status_rx) = watch::channel(Arc::new(Status {
            pid: std::process::id(),
            config: config_path.clone(),
            pin_dir: pin_dir.clone(),
            started: 0,
            updated: 0,
            services: Vec::new(),
        }));
        let mut d = Daemon {
            mtime: mtime(&config_path),
            config_path,
            pin_dir,
            cfg: Arc::new(cfg),
            text,
            log,
            health: HealthMap::new(),
            actual: Actual::new(),
            dirty: false,
            tasks: Vec::new(),
            generation: 0,
            tx,
            rx,
            status_path,
            status_tx,
            started: SystemTime::now(),
            fallback_cmd: BTreeMap::new(),
            fallback_runner,
            xdp_logs,
            runner,
            status_written: Instant::now(),
            status_stale: false,
            _lock: lock,
        };
        d.log.log(&format!(
            "Starting lbctl daemon v{} with pid {} for {} (pin directory {})",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            d.config_path.display(),
            d.pin_dir.display()
        ));
        d.log_warnings();
        if let Some(addr) = opts.metrics {
            // Binds in the background, retrying: health checking never
            // waits for the endpoint.
            let endpoint =
                metrics::Endpoint::new(status_rx, d.pin_dir.clone(), d.runner.counters.clone());
            tokio::spawn(metrics::serve(addr, endpoint, d.log.clone()));
        }
        // Real servers' MAC changes, followed from here on.
        neigh_watch::start(d.pin_dir.clone(), d.log.clone());
        // ldirectord's ld_start: a real server already in the table with a
        // weight is taken as up, any other as down until a check passes.
        d.actual = d.read_table().await.map_err(|e| DaemonError::Table {
            what: "reading the table".into(),
            source: Box::new(e),
        })?;
        d.init_health();
        if let Err(e) = d
            .reconcile(Mode::Full {
                removed: Vec::new(),
                tag: "start",
            })
            .await
        {
            let _ = std::fs::remove_file(&d.status_path);
            return Err(DaemonError::Table {
                what: "setting up the configured services".into(),
                source: Box::new(e),
            });
        }
        d.spawn_checks();
        Ok(d)
    }

    fn log_warnings(&self) {
        for w in &self.cfg.warnings {
            self.log.log(&format!(
                "Warning: {}:{}: {}",
                self.config_path.display(),
                w.line,
                w.message
            ));
        }
    }

    /// Health of the configured real servers, keeping what is known.
    fn init_health(&mut self) {
        let mut next = HealthMap::new();
        for v in &self.cfg.virtuals {
            for r in &v.reals {
                let key = (v.id(), r.id);
                let h = match self.health.get(&key) {
                    Some(h) => h.clone(),
                    None => {
                        let in_table = self
                            .actual
                            .get(&v.id())
                            .and_then(|s| s.reals.get(&r.id))
                            .is_some_and(|w| *w > 0);
                        Health::new(v.check.kind == CheckType::On || in_table)
                    }
                };
                next.insert(key, h);
            }
        }
        self.health = next;
    }

    async fn read_table(&self) -> Result<Actual, Error> {
        let dir = self.pin_dir.clone();
        tokio::task::spawn_blocking(move || read_actual(&Table::new(Pins::open(&dir, None)?)))
            .await
            .unwrap_or_else(|e| Err(Error::Invalid(format!("table task failed: {e}"))))
    }

    /// Plans and applies the changes `mode` calls for, logs each, and
    /// writes the status.
    async fn reconcile(&mut self, mode: Mode) -> Result<(), Error> {
        let cfg = self.cfg.clone();
        let health = self.health.clone();
        let dir = self.pin_dir.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let mut t = Table::new(Pins::open(&dir, None)?);
            let before = read_actual(&t)?;
            let steps = plan(&cfg, &health, &before, &mode);
            let (done, err) = apply(&mut t, &steps);
            let after = read_actual(&t).unwrap_or(before);
            Ok((done, err, after))
        })
        .await
        .unwrap_or_else(|e| Err(Error::Invalid(format!("table task failed: {e}"))));
        let outcome = match result {
            Ok((done, err, after)) => {
                for l in done {
                    self.log.log(&l);
                }
                self.actual = after;
                match err {
                    Some((what, e)) => {
                        self.log.log(&format!("Error: {what}: {}", chain(&e)));
                        Err(e)
                    }
                    None => Ok(()),
                }
            }
            Err(e) => {
                self.log
                    .log(&format!("Error: opening the table: {}", chain(&e)));
                Err(e)
            }
        };
        self.dirty = outcome.is_err();
        self.fallback_commands();
        self.write_status();
        outcome
    }

    /// (Re)starts one check task per real server of every checked service.
    fn spawn_checks(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.generation += 1;
        // One check per distinct check: a real server that several virtual
        // services check in the same way is checked once per interval, and
        // the result goes to each of them (runner::check_key).
        let mut groups: BTreeMap<String, (Job, Duration, Vec<Member>)> = BTreeMap::new();
        for v in &self.cfg.virtuals {
            if v.check.kind == CheckType::Off {
                continue;
            }
            for r in &v.reals {
                let job = Job {
                    check: v.check.clone(),
                    real: r.clone(),
                    maintenancedir: self.cfg.maintenancedir.clone(),
                };
                groups
                    .entry(runner::check_key(&job, v.checkinterval))
                    .or_insert_with(|| (job, v.checkinterval, Vec::new()))
                    .2
                    .push((v.id(), r.id));
            }
        }
        let reals: usize = groups.values().map(|g| g.2.len()).sum();
        if reals > 0 {
            self.log.log(&format!(
                "Checking {reals} real servers with {} distinct checks (at most {} at once)",
                groups.len(),
                self.runner.slots()
            ));
        }
        for (job, interval, members) in groups.into_values() {
            let what = match &members[..] {
                [(svc, real)] => format!(
                    "{} ({})",
                    crate::addr::addr_port(real.addr, real.port),
                    service_label(svc)
                ),
                m => format!(
                    "{} (checked for {} virtual services)",
                    job.real.check_addr(),
                    m.len()
                ),
            };
            let tx = self.tx.clone();
            let generation = self.generation;
            let members: Arc<[Member]> = members.into();
            let report = move |outcome| {
                tx.send(CheckResult {
                    generation,
                    members: members.clone(),
                    outcome,
                })
                .is_ok()
            };
            self.tasks
                .push(self.runner.spawn(job, what, interval, report));
        }
    }

    async fn main_loop(&mut self, signals: Signals) -> Result<(), DaemonError> {
        let Signals {
            mut hup,
            mut term,
            mut int,
        } = signals;
        let mut tick = tokio::time::interval(self.cfg.checkinterval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut status_tick = tokio::time::interval(STATUS_EVERY);
        status_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let signal_name = loop {
            tokio::select! {
                Some(r) = self.rx.recv() => {
                    let mut batch = vec![r];
                    while let Ok(r) = self.rx.try_recv() {
                        batch.push(r);
                    }
                    self.on_results(batch).await;
                }
                _ = hup.recv() => {
                    self.log.log("Reloading lbctl daemon config on signal");
                    self.reload().await;
                    tick = tokio::time::interval(self.cfg.checkinterval);
                    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                }
                _ = status_tick.tick() => {
                    if self.status_stale {
                        self.write_status();
                    }
                }
                _ = term.recv() => break "TERM",
                _ = int.recv() => break "INT",
                _ = tick.tick() => {
                    self.xdp_logs.refresh(&self.pin_dir);
                    self.xdp_logs.drain();
                    if self.cfg.autoreload && self.file_changed() {
                        self.log.log(&format!(
                            "Configuration file '{}' has changed on disk - reread new configuration",
                            self.config_path.display()
                        ));
                        self.reload().await;
                        tick = tokio::time::interval(self.cfg.checkinterval);
                        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    } else if self.dirty {
                        let _ = self.reconcile(Mode::Health).await;
                    }
                }
            }
        };
        self.stop(signal_name).await;
        Ok(())
    }

    async fn on_results(&mut self, batch: Vec<CheckResult>) {
        let mut changed = false;
        let now = SystemTime::now();
        for (generation, (svc, real), outcome) in batch
            .iter()
            .flat_map(|r| r.members.iter().map(move |m| (r.generation, m, &r.outcome)))
        {
            if generation != self.generation {
                continue;
            }
            let Some(v) = self.cfg.virtual_by_id(svc) else {
                continue;
            };
            let failurecount = v.failurecount;
            let Some(h) = self.health.get_mut(&(*svc, *real)) else {
                continue;
            };
            let detail = &outcome.detail;
            let t = h.record(outcome.clone(), failurecount, now);
            if t == Transition::None {
                continue;
            }
            let rl = format!(
                "{} ({})",
                crate::addr::addr_port(real.addr, real.port),
                service_label(svc)
            );
            match t {
                Transition::None => {}
                Transition::SoftFailure { n, of } => self.log.log(&format!(
                    "Soft failure real server: {rl} failure {n}/{of}: {detail}"
                )),
                Transition::ResetSoftFailures => {
                    self.log.log(&format!("Resetting soft failure count: {rl}"))
                }
                Transition::Down => {
                    self.log.log(&format!("Real server down: {rl}: {detail}"));
                    changed = true;
                }
                Transition::Up => {
                    self.log.log(&format!("Real server up: {rl}: {detail}"));
                    changed = true;
                }
            }
        }
        if changed || self.dirty {
            let _ = self.reconcile(Mode::Health).await;
        } else if self.status_written.elapsed() >= STATUS_EVERY {
            self.write_status();
        } else {
            self.status_stale = true;
        }
    }

    /// Whether the file's content differs from what was last read (looked
    /// at only when its mtime or size changed).
    fn file_changed(&mut self) -> bool {
        let m = mtime(&self.config_path);
        if m == self.mtime {
            return false;
        }
        self.mtime = m;
        match config::read(&self.config_path) {
            Ok(t) => t != self.text,
            // A file that is there but cannot be taken (not UTF-8, too
            // large, a FIFO): reload reports it once.
            Err(_) => m.is_some(),
        }
    }

    async fn reload(&mut self) {
        self.mtime = mtime(&self.config_path);
        let text = match config::read(&self.config_path) {
            Ok(t) => t,
            Err(e) => {
                self.log
                    .log(&format!("Error: {e}; keeping the old configuration"));
                return;
            }
        };
        // A bad file is reported once; autoreload waits for the next edit.
        self.text = text.clone();
        let new = match config::parse(&self.config_path, &text, crate::resolve::Resolver::system())
        {
            Ok(c) => c,
            Err(e) => {
                self.log
                    .log(&format!("Error: {e}; keeping the old configuration"));
                return;
            }
        };
        let removed: Vec<ServiceId> = self
            .cfg
            .virtuals
            .iter()
            .map(|v| v.id())
            .filter(|id| new.virtual_by_id(id).is_none())
            .collect();
        self.cfg = Arc::new(new);
        self.log.retarget(self.cfg.logfile.as_ref());
        self.log_warnings();
        match self.read_table().await {
            Ok(a) => self.actual = a,
            Err(e) => self
                .log
                .log(&format!("Error: reading the table: {}", chain(&e))),
        }
        self.init_health();
        self.fallback_cmd
            .retain(|id, _| removed.iter().all(|r| r != id));
        let _ = self
            .reconcile(Mode::Full {
                removed,
                tag: "reload",
            })
            .await;
        self.spawn_checks();
        self.log.log(&format!(
            "Reloaded configuration {} ({} virtual services)",
            self.config_path.display(),
            self.cfg.virtuals.len()
        ));
    }

    async fn stop(&mut self, signal_name: &str) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let cfg = self.cfg.clone();
        let dir = self.pin_dir.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let mut t = Table::new(Pins::open(&dir, None)?);
            let steps = plan_stop(&cfg, &read_actual(&t)?);
            Ok(apply(&mut t, &steps))
        })
        .await
        .unwrap_or_else(|e| Err(Error::Invalid(format!("table task failed: {e}"))));
        match result {
            Ok((done, err)) => {
                for l in done {
                    self.log.log(&l);
                }
                if let Some((what, e)) = err {
                    self.log.log(&format!("Error: {what}: {}", chain(&e)));
                }
            }
            Err(e) => self
                .log
                .log(&format!("Error: opening the table: {}", chain(&e))),
        }
        let _ = std::fs::remove_file(&self.status_path);
        self.log
            .log(&format!("lbctl daemon terminated on signal: {signal_name}"));
    }

    /// ldirectord's `do_fallback_command`: `start` when a service has no real
    /// server up, `stop` when it has one again (each once per change).
    fn fallback_commands(&mut self) {
        for v in &self.cfg.virtuals {
            let Some(cmd) = &v.fallbackcommand else {
                continue;
            };
            let arg = if any_up(&self.cfg, &v.id(), &self.health) {
                "stop"
            } else {
                "start"
            };
            if self.fallback_cmd.get(&v.id()) == Some(&arg) {
                continue;
            }
            self.fallback_cmd.insert(v.id(), arg);
            let line = format!("{cmd} {arg}");
            self.log.log(&format!("Running fallback command: {line}"));
            let _ = self.fallback_runner.send(line);
        }
    }

    fn build_status(&self) -> Status {
        let mut services = Vec::new();
        for v in &self.cfg.virtuals {
            let id = v.id();
            let have = self.actual.get(&id);
            let reals = v
                .reals
                .iter()
                .map(|r| {
                    let h = self.health.get(&(id, r.id));
                    status::RealStatus {
                        addr: r.id.addr,
                        port: r.id.port,
                        check_port: r.check_port,
                        configured_weight: r.weight,
                        weight: have.and_then(|s| s.reals.get(&r.id).copied()),
                        up: h.is_some_and(|h| h.up),
                        failures: h.map_or(0, |h| h.failures),
                        failurecount: v.failurecount,
                        last_check: h
                            .and_then(|h| h.last.as_ref())
                            .map(|l| status::CheckStatus {
                                at: status::unix(l.at),
                                ok: l.outcome.ok,
                                detail: l.outcome.detail.clone(),
                            }),
                    }
                })
                .collect();
            services.push(status::ServiceStatus {
                proto: id.proto.name().into(),
                addr: id.addr,
                port: id.port,
                scheduler: v.spec.sched.name().into(),
                persistent: v.spec.persistent,
                checktype: v.check.kind.name(),
                service: v.check.service.name().into(),
                present: have.is_some(),
                quiescent: v.quiescent,
                reals,
                fallback: v.fallback.map(|f| status::FallbackStatus {
                    addr: f.addr,
                    port: f.port,
                    weight: have.and_then(|s| s.reals.get(&f).copied()),
                }),
            });
        }
        Status {
            pid: std::process::id(),
            config: self.config_path.clone(),
            pin_dir: self.pin_dir.clone(),
            started: status::unix(self.started),
            updated: status::unix(SystemTime::now()),
            services,
        }
    }

    fn write_status(&mut self) {
        self.status_written = Instant::now();
        self.status_stale = false;
        let s = self.build_status();
        if let Err(e) = status::write(&self.status_path, &s) {
            self.log.log(&format!(
                "Error: writing {}: {e}",
                self.status_path.display()
            ));
        }
        self.status_tx.send_replace(Arc::new(s));
    }
}

/// Runs shell command lines (`fallbackcommand`) one after the other, in
/// the order given, on a blocking thread, logging failures.
fn spawn_command_runner(log: Logger) -> mpsc::UnboundedSender<String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let log = log.clone();
            let _ = tokio::task::spawn_blocking(move || {
                match std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&line)
                    .stdin(std::process::Stdio::null())
                    .status()
                {
                    Ok(s) if s.success() => {}
                    Ok(s) => log.log(&format!("Error: fallback command `{line}' exited with {s}")),
                    Err(e) => log.log(&format!("Error: fallback command `{line}': {e}")),
                }
            })
            .await;
        }
    });
    tx
}

/// An error with its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// `lbctl daemon-status [CONFIG]`: the text to print and the exit status
/// (ldirectord's: 0 running, 1 only stale status files, 3 stopped).
pub fn status_report(config: Option<&Path>) -> (String, i32) {
    let pin = std::path::absolute(pin_dir()).unwrap_or_else(|_| pin_dir());
    let dir = status::run_dir();
    let mut files = status::status_files(&dir, &pin);
    if let Some(c) = config {
        let c = std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf());
        let want = status::status_path(&dir, &pin, &c);
        files.retain(|f| *f == want);
    }
    if files.is_empty() {
        let what = config.map_or(String::new(), |c| format!(" for {}", c.display()));
        return (
            format!(
                "lbctl daemon is stopped{what} (no status in {} for pin directory {})\n",
                dir.display(),
                pin.display()
            ),
            3,
        );
    }
    let now = status::unix(SystemTime::now());
    let mut out = String::new();
    let mut running = false;
    for f in files {
        match status::read(&f) {
            Ok(s) => {
                let alive = status::alive(s.pid);
                running |= alive;
                out.push_str(&status::format(&s, alive, now));
            }
            Err(e) => out.push_str(&format!("{e}\n")),
        }
    }
    (out, if running { 0 } else { 1 })
}

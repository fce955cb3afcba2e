//! A director for `lbctl daemon` at scale, as the scale findings were seen: the load balancer
//! attached in generic mode to a veth whose peer, in a namespace of its own, holds the
//! addresses of the real servers that answer (one `lb-testsrv` on `0.0.0.0:PORT` serves them
//! all), while the real servers that do not answer have addresses nobody holds (the kernel's
//! ARP requests go unanswered).
//!
//! ```text
//!   director namespace                      real servers' namespace
//!   v0 198.51.100.2/24  (lb_xdp, generic) ── v1 198.51.100.11..  (answering), lb-testsrv
//! ```
//!
//! Used by `tests/tests/daemon_scale.rs` and the benchmark's daemon case
//! (`tests/src/bench/daemon.rs`). Only documentation addresses; everything lives in namespaces
//! owned by guards.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    lb::{lbctl_path, wait_for},
    logged_child::LoggedChild,
    netns::{BpfPinDir, Netns, NsChild, Scratch},
};
use anyhow::{Context as _, Result, bail};
use lb_user::{Pins, Table, model::ServiceId};

/// The director's address on its link.
pub const DIRECTOR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The first real server's address; answering reals come first, then silent ones.
pub const FIRST_REAL: u8 = 11;

/// The two namespaces, the pin directory and the server of the answering reals.
pub struct DaemonLab {
    pub lb: Netns,
    pub rs: Netns,
    pub pins: BpfPinDir,
    /// Real servers that answer (ARP and TCP on [`DaemonLab::port`]).
    pub answering: Vec<Ipv4Addr>,
    /// Real servers nobody answers for.
    pub silent: Vec<Ipv4Addr>,
    pub port: u16,
    ports: Vec<u16>,
    server: Option<NsChild>,
    lbctl: PathBuf,
}

impl DaemonLab {
    /// `answering` + `silent` real servers; `srv` is the lb-testsrv binary, listening on
    /// `port` in the real servers' namespace.
    pub fn new(answering: usize, silent: usize, srv: &Path, port: u16) -> Result<DaemonLab> {
        Self::with_ports(answering, silent, srv, &[port])
    }

    /// [`DaemonLab::new`], the server listening on every port of `ports` (the first is
    /// [`DaemonLab::port`]).
    pub fn with_ports(
        answering: usize,
        silent: usize,
        srv: &Path,
        ports: &[u16],
    ) -> Result<DaemonLab> {
        if answering + silent > 200 {
            bail!("at most 200 real servers");
        }
        let lbctl = lbctl_path()?;
        let lb = Netns::new("dlb")?;
        let rs = Netns::new("drs")?;
        let addr = |i: usize| Ipv4Addr::new(198, 51, 100, FIRST_REAL + i as u8);
        let answering: Vec<Ipv4Addr> = (0..answering).map(addr).collect();
        let silent: Vec<Ipv4Addr> = (answering.len()..answering.len() + silent)
            .map(addr)
            .collect();
        lb.ip_batch(&format!(
            "link set lo up\nlink add v0 type veth peer name v1 netns {}\n\
             addr add {DIRECTOR}/24 dev v0\nlink set v0 up\n",
            rs.name()
        ))?;
        let mut batch = String::from("link set lo up\nlink set v1 up\n");
        for a in &answering {
            batch.push_str(&format!("addr add {a}/24 dev v1\n"));
        }
        rs.ip_batch(&batch)?;
        let pins = BpfPinDir::new()?;
        let mut lab = DaemonLab {
            lb,
            rs,
            pins,
            answering,
            silent,
            port: ports.first().copied().context("no port")?,
            ports: ports.to_vec(),
            server: None,
            lbctl,
        };
        lab.lbctl_ok(&[
            "attach",
            "v0",
            "--mode",
            "generic",
            "--conns",
            "16384",
            "--templates",
            "16384",
        ])?;
        lab.start_server(srv)?;
        Ok(lab)
    }

    /// (Re)starts the answering reals' server.
    pub fn start_server(&mut self, srv: &Path) -> Result<()> {
        let bin = srv.to_str().context("lb-testsrv path")?;
        let listen: Vec<String> = self.ports.iter().map(|p| format!("0.0.0.0:{p}")).collect();
        let mut argv = vec![bin, "--name", "rs"];
        for l in &listen {
            argv.extend(["--listen", l.as_str()]);
        }
        let child = self.rs.spawn(&argv)?;
        let port = *self.ports.last().context("no port")?;
        let rs = &self.rs;
        wait_for("the real servers listen", Duration::from_secs(10), || {
            Ok(crate::topo::is_listening(rs, port, false)?.then_some(()))
        })?;
        self.server = Some(child);
        Ok(())
    }

    /// Stops the answering reals' server (their addresses stay: connections are refused).
    pub fn stop_server(&mut self) -> Result<()> {
        if let Some(s) = self.server.take() {
            s.kill()?;
        }
        Ok(())
    }

    /// `lbctl ARGS` in the director's namespace; stdout.
    pub fn lbctl_ok(&self, args: &[&str]) -> Result<String> {
        let o = self
            .lb
            .nsenter_cmd(&self.lbctl)
            .args(args)
            .env("LB_PIN_PATH", self.pins.path())
            .output()?;
        if !o.status.success() {
            bail!(
                "lbctl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// The table: the weight of every (service, real address) pair.
    pub fn weights(&self) -> Result<BTreeMap<(ServiceId, IpAddr), u32>> {
        let t = Table::new(Pins::open(self.pins.path(), None)?);
        Ok(t.configured()?
            .into_iter()
            .flat_map(|(spec, reals)| {
                reals
                    .into_iter()
                    .map(move |r| ((spec.id, r.id.addr), r.weight))
            })
            .collect())
    }

    /// An ldirectord.cf of `virtuals` services (203.0.113.1–250, ports 1000, 1001, …),
    /// each with every answering and silent real server, checked on the lab's port.
    /// `extra` lines go into every virtual (indented by the caller's tab).
    pub fn config(&self, virtuals: usize, checktype: &str, global: &str, extra: &str) -> String {
        let mut s = format!("{global}logfile=\"@LOG@\"\n");
        for v in 0..virtuals {
            s.push_str(&format!(
                "virtual={}:{}\n",
                Ipv4Addr::new(203, 0, 113, 1 + (v % 250) as u8),
                1000 + v / 250
            ));
            for a in self.answering.iter().chain(&self.silent) {
                s.push_str(&format!("\treal={a} gate\n"));
            }
            s.push_str(&format!(
                "\tchecktype={checktype}\n\tcheckport={}\n{extra}",
                self.port
            ));
        }
        s
    }

    /// Like [`DaemonLab::config`], but every virtual service on its own port of the lab's
    /// ports (203.0.113.1, port by port), checked there: no two checks alike.
    pub fn config_distinct(&self, checktype: &str, global: &str) -> String {
        let mut s = format!("{global}logfile=\"@LOG@\"\n");
        for p in &self.ports {
            s.push_str(&format!("virtual=203.0.113.1:{p}\n"));
            for a in self.answering.iter().chain(&self.silent) {
                s.push_str(&format!("\treal={a} gate\n"));
            }
            s.push_str(&format!("\tchecktype={checktype}\n"));
        }
        s
    }

    /// Starts `lbctl daemon --foreground` on `conf` (`@LOG@` becomes its log file) in the
    /// director's namespace; with `nofile`, under that limit of open files (soft, hard).
    pub fn start_daemon(
        &self,
        conf: &str,
        args: &[&str],
        nofile: Option<(u64, u64)>,
    ) -> Result<DaemonProc> {
        let scratch = Scratch::new("dlab")?;
        let dir = &scratch.0;
        let log = dir.join("daemon.log");
        let conf_path = dir.join("ldirectord.cf");
        std::fs::write(
            &conf_path,
            conf.replace("@LOG@", &log.display().to_string()),
        )?;
        let mut cmd = match nofile {
            None => self.lb.nsenter_cmd(&self.lbctl),
            Some((soft, hard)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:{hard}"))
                    .arg("--")
                    .arg("nsenter")
                    .arg(format!("--net={}", self.lb.path().display()))
                    .arg("--")
                    .arg(&self.lbctl);
                c
            }
        };
        cmd.arg("daemon")
            .arg("--foreground")
            .args(args)
            .arg(&conf_path)
            .env("LB_PIN_PATH", self.pins.path())
            .env("LB_RUN_DIR", dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr"))?);
        let child = cmd.spawn().context("spawning lbctl daemon")?;
        let logs = vec![log, dir.join("stderr")];
        Ok(DaemonProc {
            proc: LoggedChild::new(child, "the daemon", logs),
            _dir: scratch,
        })
    }
}

/// A running `lbctl daemon`; killed on drop if still running, its files removed.
pub struct DaemonProc {
    // Declared first, so dropped first: the daemon is killed before its files go.
    proc: LoggedChild,
    _dir: Scratch,
}

/// The daemon's pid (prlimit and nsenter exec lbctl), log (its log file, then its standard
/// error), `running`, `wait_log` and `stop` (SIGTERM and its exit) are its [`LoggedChild`]'s.
impl std::ops::Deref for DaemonProc {
    type Target = LoggedChild;
    fn deref(&self) -> &LoggedChild {
        &self.proc
    }
}

impl std::ops::DerefMut for DaemonProc {
    fn deref_mut(&mut self) -> &mut LoggedChild {
        &mut self.proc
    }
}

//! Debian's real ldirectord (`/usr/sbin/ldirectord`, a perl script, unmodified) driving
//! lbctl as its ipvsadm, for `tests/tests/ldirectord_e2e.rs`.
//!
//! ldirectord runs `/sbin/ipvsadm` or `/usr/sbin/ipvsadm` (the first that exists) and
//! nothing else. [`Ldirectord::start`] never touches the host's file: it starts
//!
//! ```text
//! unshare --mount --propagation private -- sh -c '
//!     mount --bind LBCTL /usr/sbin/ipvsadm      # (and /sbin/ipvsadm if it is another file)
//!     exec nsenter --net=/run/netns/DIRECTOR -- /usr/sbin/ldirectord -d CONF start' \
//!   with LB_PIN_PATH=<the test's pin directory>
//! ```
//!
//! so the bind mount lives in a mount namespace of ldirectord's own, which ends with it, and
//! every `ipvsadm` it runs (through perl's `system`, which passes the environment on) is
//! lbctl on the test's pins, in the director's network namespace. `unshare`, `sh` and
//! `nsenter` all exec, so the child's pid is ldirectord's.
//!
//! ldirectord runs with `-d`, in the scratch directory: it stays in the foreground and logs
//! every line, its debug lines (`DEBUG2: Running system(/sbin/ipvsadm …)`, `Unknown line read
//! from ipvsadm: …`) too, to its standard error, which perl does not buffer (captured in the
//! scratch directory). `-d` also makes it prefer `./ipvsadm`, which the scratch directory does
//! not have, so it runs the ipvsadm lbctl is bound over. `supervised=yes` would keep it
//! attached too, but it logs to stdout, which perl block-buffers into a file: the lines
//! logged after its last command stay unseen. In neither mode does it write a pid file (it
//! only reads `/run/ldirectord.<config name>.pid` to look for another instance, and the
//! configuration's name is unique per start).

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::Signal;

use crate::{
    lb::lbctl_path,
    logged_child::LoggedChild,
    netns::{Netns, Scratch, log, next_id, require_root},
};

/// Debian's ldirectord.
pub const LDIRECTORD: &str = "/usr/sbin/ldirectord";
/// Where ldirectord looks for ipvsadm, in its order.
pub const IPVSADM_PATHS: [&str; 2] = ["/sbin/ipvsadm", "/usr/sbin/ipvsadm"];

/// The shell that binds lbctl (`$1`) over every ipvsadm ldirectord could find (once per
/// file) in the private mount namespace, then execs ldirectord (`-d $3 start`) in the
/// network namespace `$2`.
const LAUNCH: &str = r#"set -e
lbctl=$1; net=$2; conf=$3; bound=
for p in /sbin/ipvsadm /usr/sbin/ipvsadm; do
  if [ -e "$p" ] && ! { [ -n "$bound" ] && [ "$p" -ef "$bound" ]; }; then
    mount --bind "$lbctl" "$p"; bound=$p
  fi
done
[ -n "$bound" ] || { echo "no ipvsadm to put lbctl in place of" >&2; exit 1; }
exec nsenter --net="$net" -- /usr/sbin/ldirectord -d "$conf" start
"#;

/// True when the test can run ldirectord: root, and Debian's ldirectord and ipvsadm
/// installed (`cargo xtask setup`). Otherwise skips loudly, or panics under `CI`.
pub fn require_ldirectord(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    let ipvsadm = IPVSADM_PATHS.iter().any(|p| Path::new(p).exists());
    if Path::new(LDIRECTORD).exists() && ipvsadm {
        return true;
    }
    let why = "needs Debian's ldirectord and ipvsadm (`cargo xtask setup` installs them)";
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}");
    }
    log(format_args!("SKIPPED {test}: {why}"));
    false
}

/// A running ldirectord; killed on drop if a test did not stop it.
pub struct Ldirectord {
    // Declared first, so dropped first: ldirectord is killed before its files go.
    proc: LoggedChild,
    scratch: Scratch,
}

impl Ldirectord {
    /// Writes `conf` to `<scratch>/lbt-ldirectord-<pid>-<n>.cf` and starts ldirectord on it in `director`'s network namespace, with lbctl on `pins` as
    /// its ipvsadm.
    pub fn start(director: &Netns, pins: &Path, conf: &str) -> Result<Ldirectord> {
        let scratch = Scratch::new("ldirectord")?;
        let name = format!("lbt-ldirectord-{}-{}.cf", std::process::id(), next_id());
        let conf_path = scratch.0.join(name);
        std::fs::write(&conf_path, conf)?;
        let log = scratch.0.join("log");
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(LAUNCH)
            .arg("sh")
            .arg(lbctl_path()?)
            .arg(director.path())
            .arg(&conf_path)
            .env("LB_PIN_PATH", pins)
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(scratch.0.join("stdout"))?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("spawning unshare … ldirectord")?;
        let proc = LoggedChild::new(child, "ldirectord", vec![log]);
        Ok(Ldirectord { proc, scratch })
    }

    /// Its configuration file.
    pub fn conf(&self) -> Result<PathBuf> {
        for e in std::fs::read_dir(&self.scratch.0)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "cf") {
                return Ok(p);
            }
        }
        bail!("no configuration in {}", self.scratch.0.display())
    }

    /// Replaces its configuration with `conf` and sends SIGHUP (ldirectord's reload).
    pub fn reload(&mut self, conf: &str) -> Result<()> {
        self.running()?;
        let path = self.conf()?;
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, conf)?;
        std::fs::rename(&tmp, &path)?;
        self.proc.signal(Signal::SIGHUP)
    }

    /// SIGTERM (ldirectord's stop), and its exit; fails if it had already exited.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.running().context("ldirectord had already exited")?;
        self.proc.stop()
    }
}

/// Its pid, log (its standard error: its log and debug lines, perl's warnings, lbctl's
/// messages), `running` and `wait_log` are its [`LoggedChild`]'s; its `stop` is its own.
impl std::ops::Deref for Ldirectord {
    type Target = LoggedChild;
    fn deref(&self) -> &LoggedChild {
        &self.proc
    }
}

impl std::ops::DerefMut for Ldirectord {
    fn deref_mut(&mut self) -> &mut LoggedChild {
        &mut self.proc
    }
}

//! Network-namespace and bpffs guards, modelled on aya's integration-test `NetNsGuard`.
//!
//! Rules (docs/ARCHITECTURE.md §8):
//! - names are unique: a prefix, the pid, a process-wide counter and a short role;
//! - guards clean up in `Drop` and never panic there (failures are logged to stderr);
//! - `setns` is per thread, so code that must run inside a namespace runs on a fresh thread
//!   ([`Netns::run_in`]), never on the caller's thread;
//! - child processes enter the namespace with `nsenter --net` ([`Netns::nsenter_cmd`]), which
//!   switches the network namespace only, so `/sys/fs/bpf` pins stay visible
//!   (`ip netns exec` remounts `/sys` and would hide them).

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};
use nix::unistd::{Pid, geteuid};

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";
/// Prefix of every namespace this crate creates (`ip netns list | grep ^lbt-` finds leftovers).
pub const NETNS_PREFIX: &str = "lbt";
/// The bpffs mount point.
pub const BPF_FS: &str = "/sys/fs/bpf";
/// Prefix of every pin directory this crate creates under [`BPF_FS`].
pub const PIN_DIR_PREFIX: &str = "lb-test";

/// Namespace names are kept below this length (the kernel does not limit them, but they end
/// up in log lines and in `ip` output; keep them readable).
const MAX_NETNS_NAME: usize = 31;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique within this process (shared by namespaces and pin directories).
pub fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Returns true when the test can run privileged operations (effective uid 0).
///
/// Otherwise, when the environment variable `CI` is set, panics with
/// `"{test}: CI must run as root"` (a privilege skip in CI is a failure); else prints
/// `SKIPPED {test}: needs root (CAP_BPF + CAP_NET_ADMIN)` straight to stderr (bypassing the
/// test harness's output capture, so the skip is visible) and returns false.
pub fn require_root(test: &str) -> bool {
    if geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: CI must run as root");
    }
    log(format_args!(
        "SKIPPED {test}: needs root (CAP_BPF + CAP_NET_ADMIN)"
    ));
    false
}

/// Writes one line to the real stderr (not captured by the test harness). Never panics.
pub(crate) fn log(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{args}");
}

/// Renders a command line for error messages.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion and fails (with its stderr and stdout) unless it exits 0.
pub fn run_checked(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            if out.stdout.is_empty() {
                String::new()
            } else {
                format!(
                    "\nstdout: {}",
                    String::from_utf8_lossy(&out.stdout).trim_end()
                )
            }
        );
    }
    Ok(out)
}

/// Runs `cmd` with `input` on its stdin and fails unless it exits 0.
pub(crate) fn run_with_stdin(cmd: &mut Command, input: &str) -> Result<Output> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{what}`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("cannot write the input of `{what}`"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot wait for `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}\ninput:\n{input}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Enters the network namespace open at `ns` on the calling thread.
fn setns_net(ns: &File) -> io::Result<()> {
    // setns only affects the calling thread's network namespace.
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// A child process running inside a [`Netns`]. Cloning shares the same process.
///
/// The namespace guard keeps a handle too and kills and reaps the process when it is dropped,
/// so a test does not have to (and zombies do not accumulate).
#[derive(Clone, Debug)]
pub struct NsChild {
    pid: u32,
    child: Arc<Mutex<Child>>,
}

impl NsChild {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Returns the exit status if the process has exited, without blocking.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        lock(&self.child)
            .try_wait()
            .with_context(|| format!("cannot poll child {}", self.pid))
    }

    /// Sends SIGKILL (if it still runs) and reaps the process.
    pub fn kill(&self) -> Result<ExitStatus> {
        let mut child = lock(&self.child);
        if let Some(status) = child.try_wait().context("cannot poll child")? {
            return Ok(status);
        }
        child
            .kill()
            .with_context(|| format!("cannot kill child {}", self.pid))?;
        child
            .wait()
            .with_context(|| format!("cannot reap child {}", self.pid))
    }

    /// Sends SIGTERM, waits up to `grace` for the process to exit, then SIGKILLs it.
    pub fn terminate(&self, grace: Duration) -> Result<ExitStatus> {
        {
            let mut child = lock(&self.child);
            if let Some(status) = child.try_wait().context("cannot poll child")? {
                return Ok(status);
            }
            let pid = i32::try_from(self.pid).context("pid out of range")?;
            // `pid` is our own unreaped child (try_wait returned None and we hold the
            // lock), so the pid cannot have been reused.
            kill(Pid::from_raw(pid), Signal::SIGTERM).context("cannot send SIGTERM")?;
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill()
    }

    /// Runs `f` with the underlying [`Child`] (e.g. to take its piped stdout).
    pub fn with_child<R>(&self, f: impl FnOnce(&mut Child) -> R) -> R {
        f(&mut lock(&self.child))
    }
}

/// A named network namespace, deleted on drop.
///
/// Created with `ip netns add lbt-<pid>-<n>-<role>`; `lo` is brought up. On drop, every
/// process inside the namespace is killed (children spawned through the guard are also
/// reaped) and the namespace is deleted, which also deletes the veth ends inside it.
#[derive(Debug)]
pub struct Netns {
    name: String,
    path: PathBuf,
    children: Mutex<Vec<NsChild>>,
}

impl Netns {
    /// Creates a namespace whose name ends with `role` (shortened if needed; keep it short,
    /// e.g. `sw`, `cl`, `lb`, `rs1`).
    pub fn new(role: &str) -> Result<Self> {
        let name = Self::unique_name(role);
        run_checked(Command::new("ip").args(["netns", "add", &name]))
            .with_context(|| format!("cannot create network namespace {name}"))?;
        // From here on the guard owns the namespace and deletes it on any error path.
        let ns = Netns {
            path: Path::new(NETNS_RUN_DIR).join(&name),
            name,
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `lbt-<pid>-<n>-<role>`, at most [`MAX_NETNS_NAME`] characters.
    fn unique_name(role: &str) -> String {
        let head = format!("{NETNS_PREFIX}-{}-{}", std::process::id(), next_id());
        let role: String = role
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(MAX_NETNS_NAME.saturating_sub(head.len() + 1))
            .collect();
        if role.is_empty() {
            head
        } else {
            format!("{head}-{role}")
        }
    }

    /// The namespace name (as shown by `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, the bind-mounted namespace file (for `setns`, `nsenter --net=`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command `ip netns exec <name> <argv...>` (not run yet).
    ///
    /// Note: `ip netns exec` remounts `/sys`, so bpffs pins under `/sys/fs/bpf` are not
    /// visible to the command; use [`Netns::nsenter_cmd`] for programs that need them.
    pub fn exec_cmd(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(argv);
        cmd
    }

    /// Runs `argv` inside the namespace (`ip netns exec`) and returns its output; fails with
    /// its stderr unless it exits 0.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        run_checked(&mut self.exec_cmd(argv))
    }

    /// Runs `argv` inside the namespace and returns its output whatever the exit status
    /// (fails only if the process cannot be started).
    pub fn try_exec(&self, argv: &[&str]) -> Result<Output> {
        let mut cmd = self.exec_cmd(argv);
        cmd.stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run `{}`", describe(&cmd)))
    }

    /// Runs `ip -n <name> <args...>`; fails with its stderr unless it exits 0.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        run_checked(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Runs several `ip` commands in one process: `ip -n <name> -batch -` with `commands`
    /// (one per line, without the leading `ip`) on stdin.
    pub fn ip_batch(&self, commands: &str) -> Result<()> {
        run_with_stdin(
            Command::new("ip").args(["-n", &self.name, "-batch", "-"]),
            commands,
        )
        .map(drop)
    }

    /// `nsenter --net=/run/netns/<name> -- <program>`: a command that runs `program` in this
    /// network namespace only (mount namespace untouched, so `/sys/fs/bpf` stays visible).
    ///
    /// Processes started from it yourself are still killed when the guard is dropped (the
    /// guard kills every process in the namespace), but are not reaped by it.
    pub fn nsenter_cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        let mut net = std::ffi::OsString::from("--net=");
        net.push(&self.path);
        cmd.arg(net).arg("--").arg(program);
        cmd
    }

    /// Starts a long-running process `argv` in the namespace (via [`Netns::nsenter_cmd`]),
    /// stdin closed, stdout/stderr inherited. The guard kills and reaps it on drop.
    pub fn spawn(&self, argv: &[&str]) -> Result<NsChild> {
        self.spawn_with(argv, Stdio::inherit, Stdio::inherit)
    }

    /// Like [`Netns::spawn`] with stdout and stderr piped (take them with
    /// [`NsChild::with_child`]).
    pub fn spawn_piped(&self, argv: &[&str]) -> Result<NsChild> {
        self.spawn_with(argv, Stdio::piped, Stdio::piped)
    }

    fn spawn_with(
        &self,
        argv: &[&str],
        stdout: fn() -> Stdio,
        stderr: fn() -> Stdio,
    ) -> Result<NsChild> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| anyhow!("spawn needs a program"))?;
        let mut cmd = self.nsenter_cmd(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(stdout())
            .stderr(stderr());
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot spawn `{}`", describe(&cmd)))?;
        let handle = NsChild {
            pid: child.id(),
            child: Arc::new(Mutex::new(child)),
        };
        lock(&self.children).push(handle.clone());
        Ok(handle)
    }

    /// Runs `f` on a fresh thread that has entered this network namespace and returns its
    /// result. The caller's thread never changes namespace. A panic in `f` is propagated.
    ///
    /// Sockets created inside `f` stay in this namespace when returned to the caller.
    pub fn run_in<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let file = self.open()?;
        let name = &self.name;
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name(format!("in-{name}"))
                .spawn_scoped(scope, move || -> Result<R> {
                    setns_net(&file).with_context(|| format!("setns into {name}"))?;
                    Ok(f())
                })
                .context("cannot spawn a thread")?;
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts `f` on a detached thread inside this namespace (for background load while a
    /// test changes configuration). Join the handle before the guard is dropped.
    pub fn spawn_thread<F, R>(&self, f: F) -> Result<JoinHandle<Result<R>>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let file = self.open()?;
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("in-{name}"))
            .spawn(move || -> Result<R> {
                setns_net(&file).with_context(|| format!("setns into {name}"))?;
                Ok(f())
            })
            .context("cannot spawn a thread")
    }

    fn open(&self) -> Result<File> {
        File::open(&self.path).with_context(|| format!("cannot open {}", self.path.display()))
    }

    /// Writes a sysctl inside the namespace, e.g. `sysctl("net.ipv4.conf.all.arp_ignore", "1")`.
    /// (Network sysctls under `/proc/sys/net` resolve against the writing thread's namespace.)
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        self.run_in(|| fs::write(&path, value))?
            .with_context(|| format!("cannot set {key}={value} in {}", self.name))
    }

    /// Reads a sysctl inside the namespace (trimmed).
    pub fn read_sysctl(&self, key: &str) -> Result<String> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let s = self
            .run_in(|| fs::read_to_string(&path))?
            .with_context(|| format!("cannot read {key} in {}", self.name))?;
        Ok(s.trim().to_owned())
    }

    /// The MAC address of interface `ifname` inside this namespace.
    pub fn mac(&self, ifname: &str) -> Result<[u8; 6]> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mac = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .ok_or_else(|| anyhow!("no link/ether in `ip -o link show {ifname}`: {text}"))?;
        parse_mac(mac)
    }

    /// Pids of the processes (thread-group leaders) whose network namespace is this one,
    /// excluding the current process.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let target = fs::metadata(&self.path)
            .with_context(|| format!("cannot stat {}", self.path.display()))?;
        let me = std::process::id();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").context("cannot list /proc")? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if u32::try_from(pid) == Ok(me) {
                continue;
            }
            // Exited processes (and races) fail to stat: skip them.
            if let Ok(m) = fs::metadata(entry.path().join("ns/net"))
                && m.dev() == target.dev()
                && m.ino() == target.ino()
            {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    /// Kills every process in the namespace (children of the guard are reaped). Called by
    /// `Drop`; safe to call earlier.
    pub fn kill_all(&self) -> Result<()> {
        let children: Vec<NsChild> = std::mem::take(&mut *lock(&self.children));
        for child in &children {
            if let Err(e) = child.kill() {
                log(format_args!("netns {}: {e:#}", self.name));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("processes {pids:?} are still running in {}", self.name);
            }
            for pid in pids {
                // The pid was just seen in this (uniquely named, test-owned) namespace; it
                // may have exited since, which is what we want.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Never panic here (the thread may already be panicking): log and go on.
        if let Err(e) = self.kill_all() {
            log(format_args!("netns {}: {e:#}", self.name));
        }
        if let Err(e) = run_checked(Command::new("ip").args(["netns", "del", &self.name])) {
            log(format_args!("cannot delete netns {}: {e:#}", self.name));
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for byte in &mut mac {
        let part = parts
            .next()
            .ok_or_else(|| anyhow!("short MAC address {s:?}"))?;
        *byte = u8::from_str_radix(part, 16).with_context(|| format!("bad MAC address {s:?}"))?;
    }
    if parts.next().is_some() {
        bail!("long MAC address {s:?}");
    }
    Ok(mac)
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

static BPFFS_MOUNT: Mutex<()> = Mutex::new(());

/// Mounts bpffs on [`BPF_FS`] unless it is mounted there already.
pub fn ensure_bpffs() -> Result<()> {
    let _serialised = lock(&BPFFS_MOUNT);
    if is_bpffs(Path::new(BPF_FS))? {
        return Ok(());
    }
    run_checked(Command::new("mount").args(["-t", "bpf", "bpf", BPF_FS]))
        .with_context(|| format!("cannot mount bpffs on {BPF_FS}"))?;
    Ok(())
}

fn is_bpffs(path: &Path) -> Result<bool> {
    let st = statfs(path).with_context(|| format!("cannot statfs {}", path.display()))?;
    Ok(st.filesystem_type() == BPF_FS_MAGIC)
}

/// A unique directory under `/sys/fs/bpf` (`lb-test-<pid>-<n>`), removed recursively on drop.
///
/// bpffs is mounted first if needed. Use it as the pin root of a test so tests can run in
/// parallel (docs/ARCHITECTURE.md §8: no shared fixed-name pins).
#[derive(Debug)]
pub struct BpfPinDir {
    path: PathBuf,
}

impl BpfPinDir {
    /// Creates the directory.
    pub fn new() -> Result<Self> {
        ensure_bpffs()?;
        let path = Path::new(BPF_FS).join(format!(
            "{PIN_DIR_PREFIX}-{}-{}",
            std::process::id(),
            next_id()
        ));
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(BpfPinDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()/name`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for BpfPinDir {
    fn drop(&mut self) {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log(format_args!("cannot remove {}: {e}", self.path.display())),
        }
    }
}

/// A scratch directory for one test (configurations, logs, status files,
/// sockets) under the system's temporary directory, named
/// `lbt-<role>-<pid>-<n>`, with an empty `run/` inside (for `LB_RUN_DIR`),
/// traversable by any user (as `/run` and `/var/log` are), and removed on
/// drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(role: &str) -> io::Result<Scratch> {
        use std::os::unix::fs::PermissionsExt;
        let p =
            std::env::temp_dir().join(format!("lbt-{role}-{}-{}", std::process::id(), next_id()));
        fs::create_dir_all(p.join("run"))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short() {
        let a = Netns::unique_name("rs1");
        let b = Netns::unique_name("rs1");
        assert_ne!(a, b);
        assert!(a.starts_with("lbt-"));
        assert!(a.ends_with("-rs1"));
        let long = Netns::unique_name("a-very-long-role-name-that-does-not-fit/at all");
        assert!(long.len() <= MAX_NETNS_NAME, "{long}");
        assert!(!long.contains('/') && !long.contains(' '));
    }

    #[test]
    fn mac_round_trip() {
        let mac = parse_mac("02:00:c6:33:64:0b").unwrap();
        assert_eq!(mac, [0x02, 0x00, 0xc6, 0x33, 0x64, 0x0b]);
        assert_eq!(format_mac(&mac), "02:00:c6:33:64:0b");
        assert!(parse_mac("02:00:c6:33:64").is_err());
        assert!(parse_mac("02:00:c6:33:64:0b:01").is_err());
        assert!(parse_mac("02:00:c6:33:64:zz").is_err());
    }

    #[test]
    fn netns_lifecycle() {
        if !require_root("netns_lifecycle") {
            return;
        }
        let ns = Netns::new("unit").unwrap();
        let name = ns.name().to_owned();
        assert!(ns.path().exists());
        // `lo` is up and nothing else exists.
        let out = ns.exec(&["ip", "-o", "link"]).unwrap();
        let links = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(links.contains("lo:") && links.contains("UP"), "{links}");
        assert_eq!(links.lines().count(), 1, "{links}");
        // Failing commands report stderr; try_exec does not fail.
        let err = ns
            .exec(&["ip", "link", "show", "nonexistent0"])
            .unwrap_err();
        assert!(format!("{err:#}").contains("nonexistent0"), "{err:#}");
        assert!(!ns.try_exec(&["false"]).unwrap().status.success());
        // run_in switches the thread, not the caller.
        let ours = fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        let theirs = ns
            .run_in(|| fs::metadata("/proc/thread-self/ns/net").unwrap().ino())
            .unwrap();
        assert_ne!(ours, theirs);
        assert_eq!(theirs, fs::metadata(ns.path()).unwrap().ino());
        assert_eq!(
            fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
            ours
        );
        // sysctls are per namespace.
        ns.sysctl("net.ipv4.conf.all.arp_ignore", "1").unwrap();
        assert_eq!(ns.read_sysctl("net.ipv4.conf.all.arp_ignore").unwrap(), "1");
        // Children are listed and killed on drop; nsenter keeps /sys/fs/bpf visible.
        let child = ns.spawn(&["sleep", "600"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ns.pids().unwrap().contains(&(child.pid() as i32)) {
            assert!(
                Instant::now() < deadline,
                "sleep never entered the namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = ns.nsenter_cmd("ip").args(["-o", "link"]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
        drop(ns);
        assert!(
            child.try_wait().unwrap().is_some(),
            "child survived the guard"
        );
        let list = run_checked(Command::new("ip").args(["netns", "list"])).unwrap();
        assert!(!String::from_utf8_lossy(&list.stdout).contains(&name));
    }

    #[test]
    fn run_in_propagates_panics() {
        if !require_root("run_in_propagates_panics") {
            return;
        }
        let ns = Netns::new("panic").unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ns.run_in(|| panic!("boom")).unwrap();
        }));
        assert!(r.is_err());
    }

    #[test]
    fn pin_dir_lifecycle() {
        if !require_root("pin_dir_lifecycle") {
            return;
        }
        let a = BpfPinDir::new().unwrap();
        let b = BpfPinDir::new().unwrap();
        assert_ne!(a.path(), b.path());
        assert!(is_bpffs(a.path()).unwrap());
        let name = a.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("lb-test-{}-", std::process::id())));
        // bpffs allows sub-directories (pins are files, created by BPF_OBJ_PIN).
        fs::create_dir(a.join("v1")).unwrap();
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists());
    }
}

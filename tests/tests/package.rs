//! The Debian package of `cargo xtask deb` (`$LB_DEB`, which `cargo xtask
//! test` sets): its fields and modes, and installing and removing it in a
//! throwaway root, never the host's.
//!
//! The root ([`PackageRoot`]) lives in a private mount namespace held by one
//! process: a tmpfs with overlays (tmpfs upper directories) over the host's
//! /usr, /etc and /var, /sbin a link to usr/sbin as on the host (merged /usr)
//! or a directory of its own, a bpffs of its own; commands run in it with
//! `nsenter --mount chroot`. Killing the holder ends the namespace and with it
//! every mount and every file the package wrote (docs/DEVELOPING.md, "The
//! Debian package").

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, Result, bail, ensure};
use lb_tests::netns::Scratch;
use lb_tests::require_root;

/// The package to test: `$LB_DEB`, else the one `cargo xtask deb` left in
/// target/deb.
fn deb_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LB_DEB") {
        return Ok(PathBuf::from(p));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/deb");
    let mut debs: Vec<PathBuf> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("lbctl_") && name.ends_with(".deb")
        })
        .collect();
    if debs.len() != 1 {
        bail!(
            "no single lbctl_*.deb in {} (found {debs:?}): build it with `cargo xtask deb` \
             or set LB_DEB (`cargo xtask test` does)",
            dir.display()
        );
    }
    Ok(debs.remove(0))
}

/// lb-user's version as the package carries it (`0.1.0-1`).
fn expected_version() -> String {
    let manifest = include_str!("../../lb-user/Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("lb-user has a version");
    format!("{}-1", version.replace('-', "~"))
}

fn output(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    Ok(out)
}

fn stdout_of(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What installing may not change on the host.
#[derive(Debug, PartialEq)]
struct HostState {
    diversions: Vec<u8>,
    ipvsadm: Option<Vec<u8>>,
    lbctl_exists: bool,
    /// The postinst runs systemd-tmpfiles, which sets it (in the root).
    bpffs_mode: Option<u32>,
}

impl HostState {
    fn now() -> Result<HostState> {
        Ok(HostState {
            diversions: fs::read("/var/lib/dpkg/diversions").unwrap_or_default(),
            ipvsadm: fs::read("/usr/sbin/ipvsadm").ok(),
            lbctl_exists: Path::new("/usr/sbin/lbctl").exists(),
            bpffs_mode: fs::metadata("/sys/fs/bpf").ok().map(|m| m.mode()),
        })
    }
}

/// How /sbin looks in the root.
#[derive(Clone, Copy, PartialEq)]
enum Sbin {
    /// A link to usr/sbin (Debian since bookworm, the host).
    Merged,
    /// A directory of its own, holding ipvsadm (moved from /usr/sbin).
    Split,
}

/// A throwaway root in a private mount namespace (see the module's comment).
struct PackageRoot {
    holder: Child,
    /// The root's path (the same in the namespace and on the host, where it
    /// is an empty directory).
    root: PathBuf,
    _scratch: Scratch,
}

const SETUP: &str = r#"
set -e
R=$1
mount -t tmpfs -o mode=0755 lbt-deb "$R"
for d in usr etc var; do
    mkdir -p "$R/.overlay/$d/upper" "$R/.overlay/$d/work" "$R/$d"
    mount -t overlay overlay \
        -o "lowerdir=/$d,upperdir=$R/.overlay/$d/upper,workdir=$R/.overlay/$d/work" "$R/$d"
done
ln -s usr/bin "$R/bin"
ln -s usr/lib "$R/lib"
ln -s usr/lib64 "$R/lib64"
if [ "$2" = merged ]; then
    ln -s usr/sbin "$R/sbin"
else
    mkdir "$R/sbin"
    for f in ipvsadm ipvsadm-save ipvsadm-restore; do
        cp -a "/usr/sbin/$f" "$R/sbin/$f"
        rm "$R/usr/sbin/$f"
    done
fi
# man-db's trigger (mandb after every dpkg run) takes seconds and checks nothing here.
rm -f "$R/var/lib/man-db/auto-update"
mkdir -p "$R/dev" "$R/proc" "$R/tmp" "$R/run" "$R/root" "$R/sys/fs/bpf"
chmod 1777 "$R/tmp"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount -t bpf bpf "$R/sys/fs/bpf"
echo ready
exec sleep 600
"#;

impl PackageRoot {
    fn new(sbin: Sbin) -> Result<PackageRoot> {
        let scratch = Scratch::new("deb")?;
        let root = scratch.0.join("root");
        fs::create_dir(&root)?;
        let mut unshare = Command::new("unshare");
        unshare
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                SETUP,
                "sh",
            ])
            .arg(&root)
            .arg(if sbin == Sbin::Merged {
                "merged"
            } else {
                "split"
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; the holder dies with this
        // thread even if the test is killed before Drop.
        unsafe {
            unshare.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut holder = unshare.spawn().context("cannot run unshare")?;
        let mut line = String::new();
        let stdout = holder.stdout.take().context("holder's stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let mut this = PackageRoot {
            holder,
            root,
            _scratch: scratch,
        };
        if line.trim() != "ready" {
            let _ = this.holder.kill();
            let mut err = String::new();
            if let Some(mut e) = this.holder.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("setting up the package root failed: {err}");
        }
        Ok(this)
    }

    /// `path` (absolute, in the root) as the host reaches it: through the
    /// holder's /proc root, so in its mount namespace. Links are not
    /// followed across it (read them with `read_link`).
    fn host_path(&self, path: &str) -> PathBuf {
        let inside = self.root.join(path.trim_start_matches('/'));
        Path::new(&format!("/proc/{}/root", self.holder.id())).join(
            inside
                .strip_prefix("/")
                .expect("the scratch directory is absolute"),
        )
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        fs::read(self.host_path(path)).with_context(|| format!("reading {path} in the root"))
    }

    fn link(&self, path: &str) -> Option<PathBuf> {
        fs::read_link(self.host_path(path)).ok()
    }

    fn exists(&self, path: &str) -> bool {
        fs::symlink_metadata(self.host_path(path)).is_ok()
    }

    /// `args` run in the root.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .arg("chroot")
            .arg(&self.root)
            .args(args)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("LD_LIBRARY_PATH");
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        stdout_of(&mut self.command(args))
    }

    /// Copies the package into the root's /tmp; returns its path there.
    fn put_deb(&self) -> Result<&'static str> {
        const IN_ROOT: &str = "/tmp/lbctl.deb";
        fs::copy(deb_path()?, self.host_path(IN_ROOT)).context("copying the package")?;
        Ok(IN_ROOT)
    }

    /// lbctl's diversions, as `dpkg-divert --list` shows them.
    fn diversions(&self) -> Result<Vec<String>> {
        let list = self.run(&["dpkg-divert", "--list"])?;
        let mut ours: Vec<String> = list
            .lines()
            .filter(|l| l.ends_with(" by lbctl"))
            .map(str::to_owned)
            .collect();
        ours.sort();
        Ok(ours)
    }

    /// `/usr/sbin/ipvsadm -L -n` (the name ldirectord runs) on a pin
    /// directory of the root's own bpffs.
    fn ipvsadm_list(&self, program: &str) -> Result<Output> {
        output(
            self.command(&[program, "-L", "-n"])
                .env("LB_PIN_PATH", "/sys/fs/bpf/lbt-deb"),
        )
    }

    /// Asserts that `program` in the root is lbctl: its listing header and
    /// its `--version` naming lbctl.
    fn assert_is_lbctl(&self, program: &str) -> Result<()> {
        let out = self.ipvsadm_list(program)?;
        let listing = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && listing.starts_with("IP Virtual Server version "),
            "{program} -L -n is not lbctl's listing ({}): {listing}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            listing.contains("Prot LocalAddress:Port Scheduler Flags"),
            "{listing}"
        );
        let version = self.run(&[program, "--version"])?;
        ensure!(version.contains("lbctl"), "{program} --version: {version}");
        Ok(())
    }
}

impl Drop for PackageRoot {
    fn drop(&mut self) {
        // The namespace, its mounts and the tmpfs go with the holder.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

const LBCTL_DIVERSIONS: [&str; 3] = [
    "diversion of /sbin/ipvsadm to /sbin/ipvsadm.distrib by lbctl",
    "diversion of /usr/sbin/ipvsadm to /usr/sbin/ipvsadm.distrib by lbctl",
    "diversion of /usr/share/man/man8/ipvsadm.8.gz to /usr/share/man/man8/ipvsadm.distrib.8.gz by lbctl",
];

/// Runs `body` on a fresh root of `sbin` with the package put in it (`body` gets the root,
/// the package's path in it and the host's state before), then checks that the host's
/// diversions and ipvsadm did not change.
fn with_root(
    sbin: Sbin,
    body: impl FnOnce(&PackageRoot, &str, &HostState) -> Result<()>,
) -> Result<()> {
    let host = HostState::now()?;
    {
        let root = PackageRoot::new(sbin)?;
        let deb = root.put_deb()?;
        body(&root, deb, &host)?;
    }
    assert_eq!(
        HostState::now()?,
        host,
        "the host's diversions or ipvsadm changed"
    );
    Ok(())
}

/// None of `paths` exists in `root`.
fn assert_gone(root: &PackageRoot, paths: &[&str]) {
    for gone in paths {
        assert!(!root.exists(gone), "{gone} left behind");
    }
}

/// Debian's ipvsadm on the host (`cargo xtask setup` installs it with
/// ldirectord): the original the package must put back.
fn host_ipvsadm() -> Result<(Vec<u8>, Vec<u8>)> {
    let program = fs::read("/usr/sbin/ipvsadm").context(
        "Debian's ipvsadm is not installed (run `cargo xtask setup`, which installs ldirectord)",
    )?;
    let man = fs::read("/usr/share/man/man8/ipvsadm.8.gz").unwrap_or_default();
    Ok((program, man))
}

#[test]
fn package_fields_and_modes() -> Result<()> {
    let deb = deb_path()?;
    let field = |name: &str| -> Result<String> {
        Ok(
            stdout_of(Command::new("dpkg-deb").arg("--field").arg(&deb).arg(name))?
                .trim()
                .to_owned(),
        )
    };
    assert_eq!(field("Package")?, "lbctl");
    assert_eq!(field("Version")?, expected_version());
    let arch = stdout_of(Command::new("dpkg").arg("--print-architecture"))?;
    assert_eq!(field("Architecture")?, arch.trim());
    assert_eq!(field("Section")?, "admin");
    assert_eq!(field("Priority")?, "optional");
    assert_eq!(field("Provides")?, "ipvsadm");
    assert!(
        field("Depends")?.starts_with("libc6"),
        "{}",
        field("Depends")?
    );
    assert!(field("Maintainer")?.contains('@'));
    assert!(field("Installed-Size")?.parse::<u64>()? > 1000);
    let description = field("Description")?;
    assert!(
        description.contains("diverts /usr/sbin/ipvsadm"),
        "{description}"
    );

    // Every member root:root; directories 0755; files 0644 but lbctl 0755.
    let contents = stdout_of(Command::new("dpkg-deb").arg("--contents").arg(&deb))?;
    let mut seen = Vec::new();
    for line in contents.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (words[0], words[1], words[5]);
        assert_eq!(owner, "root/root", "{line}");
        let expected = match mode.chars().next() {
            Some('d') => "drwxr-xr-x",
            Some('l') => "lrwxrwxrwx",
            _ if path == "./usr/sbin/lbctl" => "-rwxr-xr-x",
            _ => "-rw-r--r--",
        };
        assert_eq!(mode, expected, "{line}");
        let target = line.split_once(" -> ").map(|(_, t)| t);
        seen.push((path.trim_start_matches('.').to_owned(), target));
    }
    for (path, target) in [
        ("/usr/sbin/lbctl", None),
        ("/usr/sbin/ipvsadm", Some("lbctl")),
        ("/usr/share/man/man8/lbctl.8.gz", None),
        ("/usr/share/man/man8/ipvsadm.8.gz", Some("lbctl.8.gz")),
        ("/usr/share/bash-completion/completions/lbctl", None),
        ("/usr/share/zsh/vendor-completions/_lbctl", None),
        ("/usr/share/fish/vendor_completions.d/lbctl.fish", None),
        ("/usr/lib/systemd/system/lbctl-daemon.service", None),
        ("/usr/lib/systemd/system/lbctl-attach@.service", None),
        ("/usr/lib/sysusers.d/lbctl.conf", None),
        ("/usr/lib/tmpfiles.d/lbctl.conf", None),
        ("/usr/share/doc/lbctl/copyright", None),
        ("/usr/share/doc/lbctl/changelog.Debian.gz", None),
        ("/usr/share/doc/lbctl/README.md", None),
    ] {
        assert!(
            seen.iter().any(|(p, t)| p == path && *t == target),
            "{path} ({target:?}) not in the package:\n{contents}"
        );
    }
    assert!(
        !seen.iter().any(|(p, _)| p.starts_with("/sbin")),
        "/sbin is /usr/sbin: {contents}"
    );

    // The maintainer scripts: executable, root's, `set -e`.
    let mut ctrl = Command::new("dpkg-deb")
        .arg("--ctrl-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()?;
    let tar = Command::new("tar")
        .args(["-tvf", "-"])
        .stdin(ctrl.stdout.take().context("dpkg-deb's stdout")?)
        .output()?;
    assert!(ctrl.wait()?.success() && tar.status.success());
    let members = String::from_utf8_lossy(&tar.stdout);
    for script in ["preinst", "postinst", "postrm"] {
        assert!(
            members
                .lines()
                .any(|l| l.starts_with("-rwxr-xr-x root/root")
                    && l.ends_with(&format!("./{script}"))),
            "{script} is not 0755 root:root:\n{members}"
        );
        let text = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../contrib/debian/{script}")),
        )?;
        assert!(text.starts_with("#!/bin/sh\n") && text.contains("\nset -e\n"));
    }
    Ok(())
}

/// Installing diverts Debian's ipvsadm and puts lbctl in its place (its man
/// page, completions and units where they belong); installing again (an
/// upgrade) keeps that; removing puts Debian's ipvsadm back, byte for byte.
#[test]
fn install_takes_ipvsadms_place_and_remove_gives_it_back() -> Result<()> {
    if !require_root("install_takes_ipvsadms_place_and_remove_gives_it_back") {
        return Ok(());
    }
    let (ipvsadm, ipvsadm_man) = host_ipvsadm()?;
    with_root(Sbin::Merged, |root, deb, _| {
        assert_eq!(root.read("/usr/sbin/ipvsadm")?, ipvsadm);
        root.run(&["dpkg", "-i", deb])?;

        assert_eq!(root.diversions()?, LBCTL_DIVERSIONS);
        assert_eq!(root.link("/usr/sbin/ipvsadm"), Some(PathBuf::from("lbctl")));
        root.assert_is_lbctl("/usr/sbin/ipvsadm")?;
        root.assert_is_lbctl("/sbin/ipvsadm")?;
        root.assert_is_lbctl("ipvsadm")?;
        assert_eq!(root.read("/usr/sbin/ipvsadm.distrib")?, ipvsadm);
        assert_eq!(
            root.read("/usr/share/man/man8/ipvsadm.distrib.8.gz")?,
            ipvsadm_man
        );
        assert_eq!(
            root.link("/usr/share/man/man8/ipvsadm.8.gz"),
            Some(PathBuf::from("lbctl.8.gz"))
        );
        let man = root.run(&["zcat", "/usr/share/man/man8/lbctl.8.gz"])?;
        assert!(man.contains("\n.TH lbctl 8 "), "{man}");
        for completion in [
            "/usr/share/bash-completion/completions/lbctl",
            "/usr/share/zsh/vendor-completions/_lbctl",
            "/usr/share/fish/vendor_completions.d/lbctl.fish",
        ] {
            let text = String::from_utf8(root.read(completion)?)?;
            assert!(text.contains("lbctl"), "{completion}: {text}");
        }
        let unit = String::from_utf8(root.read("/usr/lib/systemd/system/lbctl-daemon.service")?)?;
        assert!(
            unit.contains("\nExecStart=/usr/sbin/lbctl daemon "),
            "{unit}"
        );
        // md5sums agree with what was unpacked.
        assert_eq!(root.run(&["dpkg", "--verify", "lbctl"])?, "");

        // An upgrade (the same version again) keeps lbctl in ipvsadm's place.
        root.run(&["dpkg", "-i", deb])?;
        assert_eq!(root.diversions()?, LBCTL_DIVERSIONS);
        root.assert_is_lbctl("/usr/sbin/ipvsadm")?;
        assert_eq!(root.read("/usr/sbin/ipvsadm.distrib")?, ipvsadm);

        root.run(&["dpkg", "-r", "lbctl"])?;
        assert_eq!(root.diversions()?, Vec::<String>::new());
        assert_eq!(root.read("/usr/sbin/ipvsadm")?, ipvsadm);
        assert_eq!(root.read("/usr/share/man/man8/ipvsadm.8.gz")?, ipvsadm_man);
        assert_gone(
            root,
            &[
                "/usr/sbin/ipvsadm.distrib",
                "/usr/sbin/lbctl",
                "/usr/share/man/man8/ipvsadm.distrib.8.gz",
                "/usr/share/man/man8/lbctl.8.gz",
            ],
        );
        ensure!(
            root.run(&["dpkg-query", "-W", "-f", "${Status}", "ipvsadm"])?
                == "install ok installed"
        );
        Ok(())
    })
}

/// Debian's ipvsadm ships /sbin/ipvsadm, which is /usr/sbin/ipvsadm on a
/// merged /usr: an upgrade of ipvsadm while lbctl is installed must go to
/// the diverted name, not over lbctl (and comes back on removal).
#[test]
fn ipvsadm_upgraded_under_lbctl_goes_aside() -> Result<()> {
    if !require_root("ipvsadm_upgraded_under_lbctl_goes_aside") {
        return Ok(());
    }
    host_ipvsadm()?;
    with_root(Sbin::Merged, |root, deb, _| {
        root.run(&["dpkg", "-i", deb])?;
        // A newer ipvsadm, as Debian's: /sbin/ipvsadm.
        root.run(&[
            "sh",
            "-c",
            "set -e; mkdir -p /tmp/ipvsadm/DEBIAN /tmp/ipvsadm/sbin
             printf '#!/bin/sh\\necho newer ipvsadm\\n' > /tmp/ipvsadm/sbin/ipvsadm
             chmod 0755 /tmp/ipvsadm/sbin/ipvsadm
             printf 'Package: ipvsadm\\nVersion: 1:9.99-1\\nArchitecture: all\\n' > /tmp/ipvsadm/DEBIAN/control
             printf 'Maintainer: lb-tests <lb-tests@localhost>\\nDescription: newer\\n' >> /tmp/ipvsadm/DEBIAN/control
             dpkg-deb --root-owner-group --build /tmp/ipvsadm /tmp/ipvsadm.deb >/dev/null
             dpkg -i /tmp/ipvsadm.deb",
        ])?;
        root.assert_is_lbctl("/usr/sbin/ipvsadm")?;
        root.assert_is_lbctl("/sbin/ipvsadm")?;
        assert_eq!(root.run(&["/usr/sbin/ipvsadm.distrib"])?, "newer ipvsadm\n");

        root.run(&["dpkg", "-r", "lbctl"])?;
        assert_eq!(root.run(&["/usr/sbin/ipvsadm"])?, "newer ipvsadm\n");
        assert_eq!(root.diversions()?, Vec::<String>::new());
        Ok(())
    })
}

/// A diversion of ipvsadm that is not lbctl's (here a local one, as an
/// operator makes by hand): installing stops before changing anything, says
/// which diversion and how to remove it, and leaves neither the package nor
/// a diversion of its own; once the operator removes it, installing works.
#[test]
fn install_refuses_a_diversion_that_is_not_lbctls() -> Result<()> {
    if !require_root("install_refuses_a_diversion_that_is_not_lbctls") {
        return Ok(());
    }
    let (ipvsadm, _) = host_ipvsadm()?;
    with_root(Sbin::Merged, |root, deb, _| {
        root.run(&[
            "dpkg-divert",
            "--local",
            "--rename",
            "--divert",
            "/usr/sbin/ipvsadm.orig",
            "/usr/sbin/ipvsadm",
        ])?;
        let local = root.run(&["dpkg-divert", "--list", "*ipvsadm*"])?;
        assert_eq!(
            local,
            "local diversion of /usr/sbin/ipvsadm to /usr/sbin/ipvsadm.orig\n"
        );

        let refused = output(&mut root.command(&["dpkg", "-i", deb]))?;
        let says = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "dpkg -i succeeded: {says}");
        assert!(
            says.contains("lbctl: /usr/sbin/ipvsadm has a local diversion, not lbctl's:\n")
                && says
                    .contains("  local diversion of /usr/sbin/ipvsadm to /usr/sbin/ipvsadm.orig\n")
                && says.contains("  dpkg-divert --local --remove --rename /usr/sbin/ipvsadm\n"),
            "{says}"
        );
        // Not installed, not half-installed: dpkg forgot it or knows it as
        // not installed.
        let status = output(&mut root.command(&["dpkg-query", "-W", "-f=${Status}", "lbctl"]))?;
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(
            status.is_empty() || status.ends_with(" not-installed"),
            "lbctl's status after the refusal: {status:?}"
        );
        assert_eq!(
            root.run(&["dpkg-divert", "--list", "*ipvsadm*"])?,
            local,
            "the local diversion changed"
        );
        assert_eq!(root.read("/usr/sbin/ipvsadm.orig")?, ipvsadm);
        assert_gone(root, &["/usr/sbin/ipvsadm", "/usr/sbin/lbctl"]);

        root.run(&[
            "dpkg-divert",
            "--local",
            "--remove",
            "--rename",
            "/usr/sbin/ipvsadm",
        ])?;
        root.run(&["dpkg", "-i", deb])?;
        assert_eq!(root.diversions()?, LBCTL_DIVERSIONS);
        assert_eq!(root.read("/usr/sbin/ipvsadm.distrib")?, ipvsadm);
        root.assert_is_lbctl("/usr/sbin/ipvsadm")
    })
}

/// Without Debian's ipvsadm: lbctl is ipvsadm while installed (and satisfies
/// ldirectord's `Depends: ipvsadm`), and nothing is left at ipvsadm's names
/// after removal.
#[test]
fn install_without_ipvsadm() -> Result<()> {
    if !require_root("install_without_ipvsadm") {
        return Ok(());
    }
    with_root(Sbin::Merged, |root, deb, host| {
        if host.ipvsadm.is_some() {
            // ldirectord depends on it.
            root.run(&["dpkg", "--purge", "--force-depends", "ipvsadm"])?;
        }
        assert!(!root.exists("/usr/sbin/ipvsadm"));
        root.run(&["dpkg", "-i", deb])?;
        assert_eq!(root.diversions()?, LBCTL_DIVERSIONS);
        root.assert_is_lbctl("/usr/sbin/ipvsadm")?;
        assert!(!root.exists("/usr/sbin/ipvsadm.distrib"));

        // `Provides: ipvsadm`: lbctl is what satisfies ldirectord now.
        let ldirectord = root.command(&["dpkg-query", "-W", "ldirectord"]).output()?;
        if ldirectord.status.success() {
            let refused = output(&mut root.command(&["dpkg", "--purge", "lbctl"]))?;
            let says = String::from_utf8_lossy(&refused.stderr);
            assert!(
                !refused.status.success() && says.contains("ldirectord depends on ipvsadm"),
                "{says}"
            );
        }
        root.run(&["dpkg", "--purge", "--force-depends", "lbctl"])?;
        assert_eq!(root.diversions()?, Vec::<String>::new());
        assert_gone(
            root,
            &[
                "/usr/sbin/ipvsadm",
                "/usr/sbin/ipvsadm.distrib",
                "/usr/share/man/man8/ipvsadm.8.gz",
            ],
        );
        Ok(())
    })
}

/// /sbin not merged into /usr/sbin: Debian's /sbin/ipvsadm goes aside and
/// /sbin/ipvsadm is lbctl (ldirectord looks there first); removal puts the
/// original back and leaves no link.
#[test]
fn install_with_sbin_not_merged() -> Result<()> {
    if !require_root("install_with_sbin_not_merged") {
        return Ok(());
    }
    let (ipvsadm, _) = host_ipvsadm()?;
    with_root(Sbin::Split, |root, deb, _| {
        assert!(!root.exists("/usr/sbin/ipvsadm"));
        root.run(&["dpkg", "-i", deb])?;
        assert_eq!(root.diversions()?, LBCTL_DIVERSIONS);
        assert_eq!(
            root.link("/sbin/ipvsadm"),
            Some(PathBuf::from("/usr/sbin/lbctl"))
        );
        root.assert_is_lbctl("/sbin/ipvsadm")?;
        root.assert_is_lbctl("/usr/sbin/ipvsadm")?;
        assert_eq!(root.read("/sbin/ipvsadm.distrib")?, ipvsadm);

        root.run(&["dpkg", "-r", "lbctl"])?;
        assert_eq!(root.diversions()?, Vec::<String>::new());
        assert_eq!(root.read("/sbin/ipvsadm")?, ipvsadm);
        assert!(!root.exists("/sbin/ipvsadm.distrib"));
        assert!(!root.exists("/usr/sbin/ipvsadm"));
        Ok(())
    })
}

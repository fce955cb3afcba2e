//! `cargo xtask deb`: the Debian package `lbctl` from the release build,
//! staged by hand and packed by `dpkg-deb --root-owner-group --build` (no
//! cargo-deb, which every fresh CI machine would have to compile first;
//! docs/DEVELOPING.md, "The Debian package"). The layout, version and control
//! file are in the library's `debian` module.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use xtask::debian::{self, Control, layout};

use crate::cmd::{self, step};
use crate::tasks::Built;

/// Builds the package from `built`'s lbctl; returns the `.deb`'s absolute path.
pub fn build(root: &Path, built: &Built) -> Result<PathBuf> {
    for tool in ["dpkg-deb", "dpkg", "strip", "gzip", "md5sum"] {
        if cmd::which(tool).is_none() {
            bail!(
                "{tool} is not installed: the Debian package needs it (dpkg, binutils, gzip, coreutils)"
            );
        }
    }
    let manifest = root.join(debian::USER_MANIFEST);
    let text =
        fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let version = debian::debian_version(&text)
        .with_context(|| format!("the version of {}", manifest.display()))?;
    let arch = cmd::stdout(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned();
    step(format!(
        "building the Debian package {} {version} ({arch})",
        debian::DEB_PACKAGE
    ));

    let dir = root.join(debian::DEB_DIR);
    let stage = dir.join("debian").join(debian::DEB_PACKAGE);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    let stage = Stage::new(stage)?;

    // The program, without its debug info (as dh_strip does; the BPF object
    // it embeds is data, not debug info).
    let lbctl = stage.path(layout::LBCTL)?;
    let mut strip = Command::new("strip");
    strip
        .args(["--remove-section=.comment", "--remove-section=.note"])
        .arg("--strip-unneeded")
        .arg("-o")
        .arg(&lbctl)
        .arg(&built.lbctl);
    cmd::run(&mut strip)?;
    stage.mode(&lbctl, 0o755)?;
    stage.link("lbctl", layout::IPVSADM)?;

    // lbctl(8) and the completions, as lbctl itself makes them.
    let lbctl_says = |args: &[&str]| cmd::stdout(Command::new(&built.lbctl).args(args));
    let man = gzip(lbctl_says(&["manpage"])?.as_bytes())?;
    stage.file(&format!("{}/{}", layout::MAN_DIR, layout::MAN), &man)?;
    stage.link(
        layout::MAN,
        &format!("{}/{}", layout::MAN_DIR, layout::IPVSADM_MAN),
    )?;
    for (shell, path) in [
        ("bash", layout::BASH_COMPLETION),
        ("zsh", layout::ZSH_COMPLETION),
        ("fish", layout::FISH_COMPLETION),
    ] {
        stage.file(path, lbctl_says(&["completions", shell])?.as_bytes())?;
    }

    // The systemd units, lbctl's service user and its pin directory.
    let contrib = root.join(debian::SYSTEMD_CONTRIB);
    let mut entries: Vec<_> = fs::read_dir(&contrib)
        .with_context(|| format!("reading {}", contrib.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    let mut units = 0;
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = fs::read_to_string(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let dest = if name.ends_with(".service") {
            units += 1;
            format!("{}/{name}", layout::UNITS)
        } else if name.ends_with(".sysusers") {
            layout::SYSUSERS.to_owned()
        } else if name.ends_with(".tmpfiles") {
            layout::TMPFILES.to_owned()
        } else {
            bail!(
                "{}: not a unit, sysusers or tmpfiles file: where does it go?",
                entry.path().display()
            );
        };
        stage.file(&dest, debian::packaged_unit(&name, &text)?.as_bytes())?;
    }
    if units == 0 {
        bail!("no systemd unit in {}", contrib.display());
    }

    // /usr/share/doc/lbctl.
    let contrib = root.join(debian::DEBIAN_CONTRIB);
    let read = |p: PathBuf| fs::read(&p).with_context(|| format!("reading {}", p.display()));
    stage.file(
        &format!("{}/copyright", layout::DOC),
        &read(contrib.join("copyright"))?,
    )?;
    stage.file(
        &format!("{}/README.md", layout::DOC),
        &read(root.join("README.md"))?,
    )?;
    let maintainer = debian::maintainer(
        std::env::var("DEBFULLNAME").ok().as_deref(),
        std::env::var("DEBEMAIL").ok().as_deref(),
    );
    let time = build_time(root);
    let changelog = debian::changelog(&version, &maintainer, time);
    stage.file(
        &format!("{}/changelog.Debian.gz", layout::DOC),
        &gzip(changelog.as_bytes())?,
    )?;

    // DEBIAN/: md5sums and Installed-Size first (they describe the tree only).
    let (sizes, others, files) = stage.inventory()?;
    let mut md5 = Command::new("md5sum");
    md5.current_dir(&stage.root).arg("--").args(&files);
    let md5sums = cmd::stdout(&mut md5)?;
    // dpkg-shlibdeps finds the package's root by its DEBIAN/.
    stage.dir(&stage.root.join("DEBIAN"))?;
    let depends = depends(&dir, &lbctl)?;
    let control = Control {
        version: &version,
        architecture: &arch,
        maintainer: &maintainer,
        installed_size_kib: debian::installed_size_kib(sizes, others),
        depends: &depends,
    }
    .render();
    stage.file("DEBIAN/control", control.as_bytes())?;
    stage.file("DEBIAN/md5sums", md5sums.as_bytes())?;
    for script in debian::MAINTAINER_SCRIPTS {
        let path = stage.file(&format!("DEBIAN/{script}"), &read(contrib.join(script))?)?;
        stage.mode(&path, 0o755)?;
    }

    let deb = dir.join(format!("{}_{version}_{arch}.deb", debian::DEB_PACKAGE));
    // One package in DEB_DIR: the tests take it when LB_DEB is not set.
    for old in fs::read_dir(&dir)? {
        let old = old?.path();
        let name = old.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&format!("{}_", debian::DEB_PACKAGE)) && name.ends_with(".deb") {
            fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    let mut dpkg_deb = Command::new("dpkg-deb");
    dpkg_deb
        .args(["--root-owner-group", "--build"])
        .arg(&stage.root)
        .arg(&deb)
        .env("SOURCE_DATE_EPOCH", time.to_string());
    cmd::stdout(&mut dpkg_deb)?;
    step(format!("Debian package is {}", deb.display()));
    Ok(deb)
}

/// The package's `Depends`: dpkg-shlibdeps' answer for lbctl when it is
/// installed (dpkg-dev), else [`debian::FALLBACK_DEPENDS`]. `lbctl` is the
/// staged one (dpkg-shlibdeps wants it in a tree with a DEBIAN/).
fn depends(dir: &Path, lbctl: &Path) -> Result<String> {
    if cmd::which("dpkg-shlibdeps").is_none() {
        step(format!(
            "dpkg-shlibdeps is not installed (dpkg-dev): Depends: {}",
            debian::FALLBACK_DEPENDS
        ));
        return Ok(debian::FALLBACK_DEPENDS.to_owned());
    }
    // dpkg-shlibdeps reads debian/control for the package it analyses.
    let control = dir.join("debian/control");
    fs::write(
        &control,
        format!(
            "Source: {0}\n\nPackage: {0}\nArchitecture: any\n",
            debian::DEB_PACKAGE
        ),
    )
    .with_context(|| format!("writing {}", control.display()))?;
    let mut shlibdeps = Command::new("dpkg-shlibdeps");
    shlibdeps
        .current_dir(dir)
        .arg("-O")
        .arg("-e")
        .arg(lbctl)
        // cargo run sets it for xtask; lbctl needs none of its directories.
        .env_remove("LD_LIBRARY_PATH");
    let out = cmd::stdout(&mut shlibdeps)?;
    debian::shlibs_depends(&out)
        .map(str::to_owned)
        .with_context(|| format!("dpkg-shlibdeps printed no shlibs:Depends: {out}"))
}

/// The changelog's date and the members' mtimes: `SOURCE_DATE_EPOCH` if set,
/// else the last commit's time, else now.
fn build_time(root: &Path) -> i64 {
    let from_env = std::env::var("SOURCE_DATE_EPOCH").ok();
    let from_git = || {
        cmd::probe(
            "git",
            &["-C", &root.to_string_lossy(), "log", "-1", "--format=%ct"],
        )
    };
    from_env
        .or_else(from_git)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
}

/// `gzip -9n` (no name, no timestamp: the same bytes every time), as Debian
/// compresses man pages and changelogs.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start gzip")?;
    let mut stdin = child.stdin.take().context("gzip's stdin")?;
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().context("gzip")?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writing to gzip panicked"))?
        .context("writing to gzip")?;
    if !out.status.success() {
        bail!("gzip failed ({})", out.status);
    }
    Ok(out.stdout)
}

/// The staged tree: every directory 0755, every file 0644 unless set.
struct Stage {
    root: PathBuf,
}

impl Stage {
    fn new(root: PathBuf) -> Result<Stage> {
        let stage = Stage { root };
        stage.dir(&stage.root)?;
        Ok(stage)
    }

    /// `rel`'s path in the tree, its parent directories made.
    fn path(&self, rel: &str) -> Result<PathBuf> {
        let path = self.root.join(rel);
        let mut missing = Vec::new();
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| !d.exists()) {
            missing.push(d.to_path_buf());
            dir = d.parent();
        }
        for d in missing.iter().rev() {
            self.dir(d)?;
        }
        Ok(path)
    }

    fn dir(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        self.mode(dir, 0o755)
    }

    fn file(&self, rel: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path(rel)?;
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        self.mode(&path, 0o644)?;
        Ok(path)
    }

    fn link(&self, target: &str, rel: &str) -> Result<()> {
        let path = self.path(rel)?;
        symlink(target, &path).with_context(|| format!("linking {}", path.display()))
    }

    fn mode(&self, path: &Path, mode: u32) -> Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {mode:o} {}", path.display()))
    }

    /// Sizes of the regular files, the number of other entries, and the
    /// regular files' paths relative to the root (for md5sums), outside DEBIAN/.
    fn inventory(&self) -> Result<(Vec<u64>, u64, Vec<PathBuf>)> {
        let (mut sizes, mut others, mut files) = (Vec::new(), 0, Vec::new());
        let mut todo = vec![self.root.clone()];
        while let Some(dir) = todo.pop() {
            for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                let entry = entry?;
                let path = entry.path();
                let rel = path.strip_prefix(&self.root)?.to_path_buf();
                if rel == Path::new("DEBIAN") {
                    continue;
                }
                let meta = fs::symlink_metadata(&path)?;
                if meta.is_dir() {
                    others += 1;
                    todo.push(path);
                } else if meta.is_file() {
                    sizes.push(meta.len());
                    files.push(rel);
                } else {
                    others += 1;
                }
            }
        }
        files.sort();
        Ok((sizes, others, files))
    }
}

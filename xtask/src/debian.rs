//! The Debian package `lbctl` (`cargo xtask deb`): its layout, version,
//! control file and changelog. The building itself (staging, dpkg-deb) is in
//! the xtask binary's `deb.rs`; docs/DEVELOPING.md §7 describes both.

use anyhow::{Context, Result, bail};

/// Env var through which the tests receive the absolute path of the `.deb`.
pub const DEB_ENV: &str = "LB_DEB";
/// The package's name.
pub const DEB_PACKAGE: &str = "lbctl";
/// Debian revision appended to lb-user's version.
pub const DEBIAN_REVISION: &str = "1";
/// Where the package is built: `DEB_DIR/debian/lbctl/` is the staged tree (the
/// layout debhelper and dpkg-shlibdeps expect), `DEB_DIR/lbctl_V_A.deb` the package.
pub const DEB_DIR: &str = "target/deb";
/// The manifest whose version the package carries.
pub const USER_MANIFEST: &str = "lb-user/Cargo.toml";
/// The maintainer scripts, the copyright file.
pub const DEBIAN_CONTRIB: &str = "contrib/debian";
/// The maintainer scripts in [`DEBIAN_CONTRIB`], installed with mode 0755.
pub const MAINTAINER_SCRIPTS: &[&str] = &["preinst", "postinst", "postrm"];
/// systemd units, sysusers.d and tmpfiles.d files.
pub const SYSTEMD_CONTRIB: &str = "contrib/systemd";
/// Where the units in [`SYSTEMD_CONTRIB`] expect lbctl (README's quick start by
/// hand), and where the package puts it.
pub const LOCAL_LBCTL: &str = "/usr/local/sbin/lbctl";
pub const PACKAGED_LBCTL: &str = "/usr/sbin/lbctl";
/// Depends when dpkg-shlibdeps is not installed: lbctl links against glibc
/// and libgcc_s only (Rust's std; `ldd target/release/lbctl`), without
/// version bounds, which dpkg-shlibdeps would compute from the symbols used.
pub const FALLBACK_DEPENDS: &str = "libc6, libgcc-s1";
/// lbctl implements ipvsadm's command line, so it satisfies what depends on
/// the program (ldirectord's `Depends: ipvsadm`); the preinst diverts the
/// real one, if installed, so both can be installed at once.
pub const PROVIDES: &str = "ipvsadm";

/// Files and links of the package, relative to its root.
pub mod layout {
    pub const LBCTL: &str = "usr/sbin/lbctl";
    /// `ipvsadm -> lbctl`: diverted by the preinst.
    pub const IPVSADM: &str = "usr/sbin/ipvsadm";
    pub const MAN_DIR: &str = "usr/share/man/man8";
    pub const MAN: &str = "lbctl.8.gz";
    /// `ipvsadm.8.gz -> lbctl.8.gz`: diverted by the preinst.
    pub const IPVSADM_MAN: &str = "ipvsadm.8.gz";
    pub const BASH_COMPLETION: &str = "usr/share/bash-completion/completions/lbctl";
    pub const ZSH_COMPLETION: &str = "usr/share/zsh/vendor-completions/_lbctl";
    pub const FISH_COMPLETION: &str = "usr/share/fish/vendor_completions.d/lbctl.fish";
    pub const UNITS: &str = "usr/lib/systemd/system";
    pub const SYSUSERS: &str = "usr/lib/sysusers.d/lbctl.conf";
    pub const TMPFILES: &str = "usr/lib/tmpfiles.d/lbctl.conf";
    pub const DOC: &str = "usr/share/doc/lbctl";
}

/// The Debian version of lb-user's Cargo.toml `version`: a semver pre-release
/// sorts before its release in Debian only with `~` (`0.2.0-rc.1` becomes
/// `0.2.0~rc.1`), then `-` [`DEBIAN_REVISION`].
pub fn debian_version(manifest: &str) -> Result<String> {
    let doc: toml::Table = toml::from_str(manifest).context("parsing the manifest")?;
    let version = doc
        .get("package")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .context("the manifest has no [package] version")?;
    let upstream = version.replace('-', "~");
    let ok = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) || !upstream.chars().all(ok) {
        bail!("version {version:?} cannot be a Debian upstream version");
    }
    Ok(format!("{upstream}-{DEBIAN_REVISION}"))
}

/// The `Depends` in dpkg-shlibdeps' `-O` output (`shlibs:Depends=libc6 (>= 2.34), …`).
pub fn shlibs_depends(output: &str) -> Option<&str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

/// What goes into the control file besides the constants.
pub struct Control<'a> {
    pub version: &'a str,
    pub architecture: &'a str,
    pub maintainer: &'a str,
    pub installed_size_kib: u64,
    pub depends: &'a str,
}

const DESCRIPTION: &str = "\
Description: XDP load balancer that takes ipvsadm's place
 lbctl is a layer-4 load balancer with the semantics of Linux Virtual
 Server (IPVS): virtual services, real servers, IPVS's schedulers,
 persistence and thresholds. It runs as an XDP program, before the kernel's
 network stack, instead of in netfilter.
 .
 It takes ipvsadm's command line, messages and listings, so that
 ldirectord, keepalived's notify scripts and operators' scripts drive it
 unchanged: installing this package diverts /usr/sbin/ipvsadm (Debian's
 ipvsadm, if installed, goes to /usr/sbin/ipvsadm.distrib) and makes
 ipvsadm a link to lbctl; removing the package puts ipvsadm back.
 `lbctl daemon` runs ldirectord's health checks itself.
";

impl Control<'_> {
    /// The DEBIAN/control file.
    pub fn render(&self) -> String {
        format!(
            "Package: {DEB_PACKAGE}\n\
             Version: {}\n\
             Architecture: {}\n\
             Maintainer: {}\n\
             Installed-Size: {}\n\
             Depends: {}\n\
             Provides: {PROVIDES}\n\
             Section: admin\n\
             Priority: optional\n\
             {DESCRIPTION}",
            self.version, self.architecture, self.maintainer, self.installed_size_kib, self.depends
        )
    }
}

/// The Maintainer field: `DEBFULLNAME <DEBEMAIL>` when both are set (as
/// Debian's dch reads them), else a placeholder naming the build.
pub fn maintainer(fullname: Option<&str>, email: Option<&str>) -> String {
    match (fullname, email) {
        (Some(n), Some(e)) if !n.trim().is_empty() && !e.trim().is_empty() => {
            format!("{} <{}>", n.trim(), e.trim())
        }
        _ => "lbctl developers <lbctl@localhost>".to_owned(),
    }
}

/// changelog.Debian: one entry for this build, dated `epoch` (seconds).
pub fn changelog(version: &str, maintainer: &str, epoch: i64) -> String {
    format!(
        "{DEB_PACKAGE} ({version}) unstable; urgency=medium\n\n  \
         * Built from the lbctl sources by `cargo xtask deb`.\n\n \
         -- {maintainer}  {}\n",
        rfc2822(epoch)
    )
}

/// `Sun, 06 Dec 2026 15:31:24 +0000` (UTC), as changelogs are dated.
pub fn rfc2822(epoch: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A systemd unit of [`SYSTEMD_CONTRIB`] as the package installs it: lbctl in
/// /usr/sbin instead of /usr/local/sbin. A unit that runs lbctl from
/// anywhere else is refused rather than shipped broken.
pub fn packaged_unit(name: &str, text: &str) -> Result<String> {
    let unit = text.replace(LOCAL_LBCTL, PACKAGED_LBCTL);
    let runs_lbctl = |l: &str| l.starts_with("Exec") && l.contains("lbctl ");
    for line in unit.lines().filter(|l| runs_lbctl(l)) {
        let program = line.split_once('=').map_or("", |(_, v)| v);
        if !program.starts_with(PACKAGED_LBCTL) {
            bail!(
                "{name}: `{line}` does not run {LOCAL_LBCTL}; the package installs lbctl as {PACKAGED_LBCTL}"
            );
        }
    }
    Ok(unit)
}

/// `Installed-Size` as dpkg-gencontrol counts it: each regular file's size
/// rounded up to KiB, 1 KiB for every other entry (directory, link).
pub fn installed_size_kib(file_sizes: impl IntoIterator<Item = u64>, other_entries: u64) -> u64 {
    file_sizes
        .into_iter()
        .map(|s| s.div_ceil(1024))
        .sum::<u64>()
        + other_entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let m = "[package]\nname = \"lb-user\"\nversion = \"0.1.0\"\n";
        assert_eq!(debian_version(m).unwrap(), "0.1.0-1");
        let rc = "[package]\nversion = \"0.2.0-rc.1\"\n";
        assert_eq!(debian_version(rc).unwrap(), "0.2.0~rc.1-1");
        assert!(debian_version("[package]\nname = \"x\"\n").is_err());
        assert!(debian_version("[package]\nversion = \"v1\"\n").is_err());
        assert!(debian_version("[package]\nversion = \"1.0_a\"\n").is_err());
    }

    #[test]
    fn shlibdeps_output() {
        let out = "shlibs:Depends=libc6 (>= 2.34), libgcc-s1 (>= 4.2)\n";
        assert_eq!(
            shlibs_depends(out),
            Some("libc6 (>= 2.34), libgcc-s1 (>= 4.2)")
        );
        assert_eq!(shlibs_depends("shlibs:Depends=\n"), None);
        assert_eq!(shlibs_depends("misc:Depends=x\n"), None);
    }

    #[test]
    fn control_fields() {
        let c = Control {
            version: "0.1.0-1",
            architecture: "amd64",
            maintainer: &maintainer(None, None),
            installed_size_kib: 12,
            depends: FALLBACK_DEPENDS,
        }
        .render();
        for field in [
            "Package: lbctl\n",
            "Version: 0.1.0-1\n",
            "Architecture: amd64\n",
            "Installed-Size: 12\n",
            "Depends: libc6, libgcc-s1\n",
            "Provides: ipvsadm\n",
            "Section: admin\n",
            "Priority: optional\n",
            "Maintainer: lbctl developers <lbctl@localhost>\n",
        ] {
            assert!(c.contains(field), "{field:?} not in\n{c}");
        }
        assert!(c.ends_with('\n'));
        // Every line of the long description is indented; the synopsis is short.
        let desc = c.split_once("Description: ").unwrap().1;
        let (synopsis, long) = desc.split_once('\n').unwrap();
        assert!(synopsis.len() < 80);
        assert!(long.lines().all(|l| l.starts_with(' ') && l.len() < 80));
    }

    #[test]
    fn maintainer_from_env() {
        assert_eq!(
            maintainer(Some("A B"), Some("a@example.org")),
            "A B <a@example.org>"
        );
        assert_eq!(
            maintainer(Some(""), Some("a@example.org")),
            maintainer(None, None)
        );
    }

    #[test]
    fn dates() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_796_571_084), "Sun, 06 Dec 2026 15:31:24 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        let log = changelog("0.1.0-1", "M <m@x>", 0);
        assert!(log.starts_with("lbctl (0.1.0-1) unstable; urgency=medium\n\n  * "));
        assert!(log.ends_with("\n -- M <m@x>  Thu, 01 Jan 1970 00:00:00 +0000\n"));
    }

    #[test]
    fn units_run_the_packaged_lbctl() {
        let unit = "# lbctl in /usr/local/sbin/lbctl\n[Service]\n\
                    ExecStart=/usr/local/sbin/lbctl attach %i\n\
                    ExecReload=/bin/kill -HUP $MAINPID\n";
        let packaged = packaged_unit("a.service", unit).unwrap();
        assert!(packaged.contains("ExecStart=/usr/sbin/lbctl attach %i\n"));
        assert!(!packaged.contains("/usr/local"));
        let elsewhere = "ExecStart=/opt/bin/lbctl attach %i\n";
        assert!(packaged_unit("b.service", elsewhere).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(installed_size_kib([1, 1024, 1025, 0], 3), 1 + 1 + 2 + 3);
    }
}

//! Attaching the XDP program to an interface, and detaching it.
//!
//! The link is pinned (`$LB_PIN_PATH/link_<iface>`), so the program stays
//! attached and forwarding when `lbctl` exits, as IPVS keeps running when
//! ipvsadm exits. Attaching again replaces the program atomically on the same
//! link, reusing the pinned maps: flows and templates survive an upgrade.

use std::path::{Path, PathBuf};

use aya::programs::{
    Xdp, XdpMode,
    links::{FdLink, PinnedLink},
    xdp::XdpLink,
};
use aya::{TestRun, TestRunOptions};

use crate::{
    error::Error,
    neigh,
    pins::{Sizes, load_maps},
};

/// How the program runs on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In the driver (fast; veth and most NICs support it).
    Native,
    /// In the kernel's generic path (works everywhere, slower).
    Generic,
}

pub fn link_pin(dir: &Path, iface: &str) -> PathBuf {
    dir.join(format!("link_{iface}"))
}

fn prog_err(what: impl Into<String>) -> impl FnOnce(aya::programs::ProgramError) -> Error {
    let what = what.into();
    move |source| Error::Program { what, source }
}

/// Loads `program` against the pinned maps in `dir` and attaches it to
/// `iface`, or swaps it into the existing link.
pub fn attach(
    dir: &Path,
    sizes: Sizes,
    iface: &str,
    mode: Mode,
    program: &str,
) -> Result<(), Error> {
    if neigh::ifindex(iface).is_none() {
        return Err(Error::NoInterface(iface.to_string()));
    }
    let mut ebpf = load_maps(dir, sizes)?;
    let prog: &mut Xdp = ebpf
        .program_mut(program)
        .ok_or(Error::MissingMap("program"))?
        .try_into()
        .map_err(prog_err(format!("loading {program}")))?;
    prog.load()
        .map_err(prog_err(format!("verifying {program}")))?;
    attach_loaded(prog, dir, iface, mode)?;
    if program == lb_common::PROGRAM_NAME {
        arm_sweeper(&mut ebpf)?;
    }
    Ok(())
}

/// Attaches a loaded program to `iface` with its link pinned in `dir`
/// (`link_<iface>`), or swaps it into the link already pinned there: the
/// interface never runs without a program. Also used by the decapsulator
/// (`crate::decap`), with its own pin folder.
pub fn attach_loaded(prog: &mut Xdp, dir: &Path, iface: &str, mode: Mode) -> Result<(), Error> {
    let pin = link_pin(dir, iface);
    if pin.exists() {
        // Atomic replacement: the interface never runs without a program.
        let pinned = PinnedLink::from_pin(&pin).map_err(|e| Error::Io {
            what: format!("opening {}: {e}", pin.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        let fd_link: FdLink = pinned.unpin().map_err(|e| Error::Io {
            what: format!("unpinning {}", pin.display()),
            source: e,
        })?;
        let xdp_link = XdpLink::try_from(fd_link).map_err(|e| Error::Io {
            what: format!("link {} is not an XDP link: {e}", pin.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        let id = prog
            .attach_to_link(xdp_link)
            .map_err(prog_err(format!("replacing the program on {iface}")))?;
        pin_link(prog, id, &pin)?;
    } else {
        let flags = match mode {
            Mode::Native => XdpMode::Driver,
            Mode::Generic => XdpMode::Skb,
        };
        let id = prog
            .attach(iface, flags)
            .map_err(prog_err(format!("attaching to {iface}")))?;
        pin_link(prog, id, &pin)?;
    }
    Ok(())
}

/// `XDP_PASS`, what `lb_sweep_arm` answers when the timer runs.
const XDP_PASS: u32 = 2;

/// Arms the sweeper, the program's timer that expires conns (lb-ebpf's
/// `sweep.rs`), by running `lb_sweep_arm` once. The timer then runs on its
/// own, holding the program it calls; arming again (the next attach, an
/// upgrade) hands it to this build's code.
fn arm_sweeper(ebpf: &mut aya::Ebpf) -> Result<(), Error> {
    let prog: &mut Xdp = ebpf
        .program_mut(lb_common::SWEEP_ARM_PROGRAM)
        .ok_or(Error::MissingMap("program"))?
        .try_into()
        .map_err(prog_err("loading the sweeper"))?;
    prog.load().map_err(prog_err("verifying the sweeper"))?;
    // Any frame will do: the program only arms the timer.
    let frame = [0u8; 64];
    let r = prog
        .test_run(TestRunOptions {
            data_in: Some(&frame),
            ..TestRunOptions::default()
        })
        .map_err(prog_err("running the sweeper's arming program"))?;
    if r.return_value != XDP_PASS {
        return Err(Error::Io {
            what: "arming the sweeper (bpf_timer) failed".into(),
            source: std::io::Error::other("lb_sweep_arm did not answer XDP_PASS"),
        });
    }
    Ok(())
}

fn pin_link(prog: &mut Xdp, id: aya::programs::xdp::XdpLinkId, pin: &Path) -> Result<(), Error> {
    let link = prog.take_link(id).map_err(prog_err("taking the link"))?;
    let fd: FdLink = link.try_into().map_err(|e| Error::Io {
        what: format!("the kernel gave no BPF link (too old for bpf_link XDP?): {e}"),
        source: std::io::Error::other("no fd link"),
    })?;
    fd.pin(pin).map_err(|e| Error::Io {
        what: format!("pinning {}", pin.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    match pin.parent() {
        Some(dir) => crate::pins::give_to_dir_owner(dir, pin),
        None => Ok(()),
    }
}

/// Removes the program from `iface`.
pub fn detach(dir: &Path, iface: &str) -> Result<(), Error> {
    let pin = link_pin(dir, iface);
    if !pin.exists() {
        return Err(Error::Invalid(format!(
            "the load balancer is not attached to {iface} (no {})",
            pin.display()
        )));
    }
    let pinned = PinnedLink::from_pin(&pin).map_err(|e| Error::Io {
        what: format!("opening {}", pin.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    let link = pinned.unpin().map_err(|e| Error::Io {
        what: format!("unpinning {}", pin.display()),
        source: e,
    })?;
    // Closing the last reference to the link detaches the program.
    drop(link);
    Ok(())
}

/// Interfaces the program is attached to (from the link pins).
pub fn attached(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("link_"))
                .map(str::to_string)
        })
        .collect();
    out.sort();
    out
}

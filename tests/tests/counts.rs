//! The live connection counts (docs/SEMANTICS.md §6.4) through the real XDP
//! program (`BPF_PROG_TEST_RUN`): ActiveConn/InActConn follow each entry's
//! creation, state changes, removal and expiry (by the packet path, and by
//! the sweeper's timer with nothing in user space running), a full table
//! refuses new flows and keeps its own, and one-packet scheduling keeps no
//! entry. After every step the counts equal the entries in the table.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use lb_common::*;
use lb_tests::fixture::{CLIENT, VIP, real, rs, sid};
use lb_tests::{
    frame::{self, Frame},
    lb::{Dataplane, TEST_SIZES, XDP_DROP, XDP_TX, in_lab, real_of, wait_for},
    require_root,
};
use lb_user::model::{Proto, Sched, ServiceId, ServiceSpec, Timeouts};

fn spec(id: ServiceId, sched: Sched, persistent: Option<u32>, one_packet: bool) -> ServiceSpec {
    ServiceSpec {
        id,
        sched,
        persistent,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet,
    }
}

fn tcp(sport: u16) -> Frame {
    Frame::tcp(CLIENT, VIP)
        .src_mac(frame::DOC_SRC_MAC)
        .dst_mac(frame::DOC_DST_MAC)
        .ports(sport, 80)
}

fn udp(client: Ipv4Addr, sport: u16) -> Frame {
    Frame::udp(client, VIP)
        .src_mac(frame::DOC_SRC_MAC)
        .dst_mac(frame::DOC_DST_MAC)
        .ports(sport, 53)
}

/// (ActiveConn, InActConn) of real `i` of `id`, as `-L` shows them.
fn shown(dp: &Dataplane, id: &ServiceId, i: u8) -> Result<(u64, u64)> {
    let views = dp.table.views(None)?;
    let v = views
        .iter()
        .find(|v| v.spec.id == *id)
        .context("service listed")?;
    let r = v
        .reals
        .iter()
        .find(|r| r.spec.id.addr == rs(i))
        .context("real listed")?;
    Ok((r.active_conns, r.inactive_conns))
}

/// UDP entries expire one second after their last datagram.
fn udp_expires_in_a_second(dp: &mut Dataplane) -> Result<()> {
    dp.table.set_timeouts(&Timeouts {
        tcp: 900,
        tcpfin: 120,
        udp: 1,
    })?;
    Ok(())
}

/// The program's counts equal the entries of the table, slot by slot.
fn consistent(dp: &Dataplane) -> Result<()> {
    let n = dp.table.dest_table()?.len() as u32;
    let kept = dp.table.dest_conns(n)?;
    let walked = dp.table.walked_dest_conns(n)?;
    ensure!(kept == walked, "counts {kept:?} but entries {walked:?}");
    Ok(())
}

/// A one-armed lab with `-A` of `svc` and reals .11 and .12 (.12 added last,
/// so first in the list).
fn with_two_reals(
    svc: ServiceSpec,
    f: impl FnOnce(&mut Dataplane) -> Result<()> + Send,
) -> Result<()> {
    in_lab(move || {
        let mut dp = Dataplane::new()?;
        dp.set_ingress("lab0")?;
        dp.table.add_service(&svc)?;
        dp.table.add_real(&svc.id, &real(11, svc.id.port, 1))?;
        dp.table.add_real(&svc.id, &real(12, svc.id.port, 1))?;
        f(&mut dp)
    })
}

#[test]
fn counts_follow_an_entrys_states_and_its_removal() -> Result<()> {
    if !require_root("counts_follow_an_entrys_states_and_its_removal") {
        return Ok(());
    }
    let id = sid(Proto::Tcp, 80);
    with_two_reals(spec(id, Sched::Rr, None, false), |dp| {
        // SYN: SYN_RECV, active (a new entry starts in the count of its state).
        let r = real_of(&dp.run(&tcp(40000).syn().build())?).context("SYN routed")?;
        assert_eq!(shown(dp, &id, r)?, (1, 0));
        consistent(dp)?;
        // ACK: ESTABLISHED, still active; no count moves.
        dp.run(&tcp(40000).ack().build())?;
        assert_eq!(shown(dp, &id, r)?, (1, 0));
        // FIN: FIN_WAIT, inactive.
        dp.run(&tcp(40000).fin().ack().build())?;
        assert_eq!(shown(dp, &id, r)?, (0, 1));
        consistent(dp)?;
        // The same again changes nothing.
        dp.run(&tcp(40000).fin().ack().build())?;
        assert_eq!(shown(dp, &id, r)?, (0, 1));
        // A SYN reusing the port of the closing entry (conn_reuse_mode=1):
        // the old entry leaves its count, the new one enters its real's.
        let again = real_of(&dp.run(&tcp(40000).syn().build())?).context("SYN routed")?;
        let other = if again == 11 { 12 } else { 11 };
        assert_eq!(shown(dp, &id, again)?, (1, 0));
        assert_eq!(shown(dp, &id, other)?, (0, 0));
        consistent(dp)?;
        // RST of an established flow: CLOSE, inactive.
        dp.run(&tcp(40000).ack().build())?;
        dp.run(&tcp(40000).rst().build())?;
        assert_eq!(shown(dp, &id, again)?, (0, 1));
        consistent(dp)
    })
}

#[test]
fn udp_entries_are_inactive() -> Result<()> {
    if !require_root("udp_entries_are_inactive") {
        return Ok(());
    }
    let id = sid(Proto::Udp, 53);
    with_two_reals(spec(id, Sched::Rr, None, false), |dp| {
        for port in 0..4 {
            real_of(&dp.run(&udp(CLIENT, 50000 + port).build())?).context("routed")?;
        }
        assert_eq!(shown(dp, &id, 11)?, (0, 2));
        assert_eq!(shown(dp, &id, 12)?, (0, 2));
        consistent(dp)
    })
}

#[test]
fn an_expired_entry_leaves_its_count_when_its_flow_comes_back() -> Result<()> {
    if !require_root("an_expired_entry_leaves_its_count_when_its_flow_comes_back") {
        return Ok(());
    }
    let id = sid(Proto::Udp, 53);
    with_two_reals(spec(id, Sched::Rr, None, false), |dp| {
        udp_expires_in_a_second(dp)?;
        let first = real_of(&dp.run(&udp(CLIENT, 50000).build())?).context("routed")?;
        std::thread::sleep(Duration::from_millis(1100));
        // No sweeper here: the packet path finds the expired entry, removes
        // it (and its count) and schedules the datagram afresh.
        let second = real_of(&dp.run(&udp(CLIENT, 50000).build())?).context("routed")?;
        assert_ne!(first, second, "rr schedules the expired flow anew");
        assert_eq!(shown(dp, &id, first)?, (0, 0));
        assert_eq!(shown(dp, &id, second)?, (0, 1));
        consistent(dp)
    })
}

#[test]
fn the_sweeper_expires_entries_and_their_counts_on_its_own() -> Result<()> {
    if !require_root("the_sweeper_expires_entries_and_their_counts_on_its_own") {
        return Ok(());
    }
    let id = sid(Proto::Udp, 53);
    with_two_reals(spec(id, Sched::Rr, None, false), |dp| {
        udp_expires_in_a_second(dp)?;
        dp.arm_sweeper()?;
        for port in 0..100 {
            real_of(&dp.run(&udp(CLIENT, 40000 + port).build())?).context("routed")?;
        }
        assert_eq!(shown(dp, &id, 11)?, (0, 50));
        // Within the timeout plus a sweep, with no packet and no lbctl.
        wait_for(
            "the entries and counts expired",
            Duration::from_secs(5),
            || {
                let gone = dp.table.conn_entries()?.is_empty()
                    && shown(dp, &id, 11)? == (0, 0)
                    && shown(dp, &id, 12)? == (0, 0);
                Ok(gone.then_some(()))
            },
        )?;
        let stats = dp.table.sweeper()?;
        assert!(stats.runs >= 1, "{stats:?}");
        assert_eq!(stats.expired, 100, "{stats:?}");
        consistent(dp)
    })
}

#[test]
fn a_full_table_refuses_new_flows_and_keeps_its_own() -> Result<()> {
    if !require_root("a_full_table_refuses_new_flows_and_keeps_its_own") {
        return Ok(());
    }
    let id = sid(Proto::Udp, 53);
    with_two_reals(spec(id, Sched::Rr, None, false), |dp| {
        let size = TEST_SIZES.conns as usize;
        let client = |i: usize| Ipv4Addr::new(192, 0, 2, (i / 60000) as u8);
        let port = |i: usize| 1024 + (i % 60000) as u16;
        let mut filled = 0;
        for i in 0..size + 64 {
            let r = dp.run(&udp(client(i), port(i)).build())?;
            if r.action == XDP_TX {
                filled += 1;
            } else {
                assert_eq!(r.action, XDP_DROP, "flow {i}");
            }
        }
        // A preallocated hash holds exactly its size: nothing was evicted.
        assert_eq!(filled, size);
        assert_eq!(dp.table.conn_entries()?.len(), size);
        let reasons = dp.reasons()?;
        assert_eq!(reasons[REASON_DROP_CONN_TABLE as usize], 64, "{reasons:?}");
        // The flows in the table still go to their reals.
        let before = dp.reasons()?[REASON_FWD_CONN as usize];
        for i in [0, 1, size / 2, size - 1] {
            assert_eq!(dp.run(&udp(client(i), port(i)).build())?.action, XDP_TX);
        }
        assert_eq!(dp.reasons()?[REASON_FWD_CONN as usize], before + 4);
        let (a, i11) = shown(dp, &id, 11)?;
        let (b, i12) = shown(dp, &id, 12)?;
        assert_eq!((a, b, i11 + i12), (0, 0, size as u64));
        consistent(dp)
    })
}

#[test]
fn one_packet_scheduling_keeps_no_entry() -> Result<()> {
    if !require_root("one_packet_scheduling_keeps_no_entry") {
        return Ok(());
    }
    let id = sid(Proto::Udp, 53);
    with_two_reals(spec(id, Sched::Rr, None, true), |dp| {
        // One client socket: each datagram is scheduled on its own.
        let mut picks = Vec::new();
        for _ in 0..4 {
            picks.push(real_of(&dp.run(&udp(CLIENT, 50000).build())?).context("routed")?);
        }
        assert_eq!(picks, [12, 11, 12, 11]);
        assert!(dp.table.conn_entries()?.is_empty());
        assert_eq!(shown(dp, &id, 11)?, (0, 0));
        let reasons = dp.reasons()?;
        assert_eq!(reasons[REASON_FWD_ONE_PACKET as usize], 4, "{reasons:?}");
        // Each datagram counts as a connection, as IPVS counts it.
        let views = dp.table.views(None)?;
        assert_eq!(views[0].stats.conns, 4);
        consistent(dp)
    })?;
    // With persistence: only the template, so one real for the client.
    with_two_reals(spec(id, Sched::Rr, Some(300), true), |dp| {
        let mut picks = Vec::new();
        for port in 0..4 {
            picks.push(real_of(&dp.run(&udp(CLIENT, 50000 + port).build())?).context("routed")?);
        }
        assert_eq!(picks, [12, 12, 12, 12]);
        assert!(dp.table.conn_entries()?.is_empty());
        assert_eq!(dp.table.template_entries()?.len(), 1);
        Ok(())
    })
}

/// The counting schedulers read the shared counts, so CPUs scheduling at the
/// same moment can both pick the real that was least loaded when they read
/// it; the next picks then see it and even it out. A burst of new
/// connections on two CPUs at once, wlc over two reals of equal weight: the
/// kernel alternates exactly; here the two reals end within a few
/// connections of each other (docs/SEMANTICS.md §6.4).
#[test]
fn a_burst_on_two_cpus_stays_within_a_few_of_the_kernels_balance() -> Result<()> {
    if !require_root("a_burst_on_two_cpus_stays_within_a_few_of_the_kernels_balance") {
        return Ok(());
    }
    let id = sid(Proto::Tcp, 80);
    with_two_reals(spec(id, Sched::Wlc, None, false), |dp| {
        const PER_CPU: u16 = 2000;
        let dp = &*dp;
        std::thread::scope(|s| -> Result<()> {
            let mut runs = Vec::new();
            for cpu in 0..2u16 {
                runs.push(s.spawn(move || -> Result<()> {
                    lb_tests::lb::pin_to_cpu(cpu as usize);
                    for i in 0..PER_CPU {
                        let port = 1024 + cpu * PER_CPU + i;
                        real_of(&dp.run(&tcp(port).syn().build())?).context("routed")?;
                    }
                    Ok(())
                }));
            }
            for r in runs {
                r.join()
                    .map_err(|_| anyhow::anyhow!("a sender panicked"))??;
            }
            Ok(())
        })?;
        let (a, _) = shown(dp, &id, 11)?;
        let (b, _) = shown(dp, &id, 12)?;
        assert_eq!(a + b, 2 * PER_CPU as u64);
        let gap = a.abs_diff(b);
        eprintln!(
            "two CPUs, {} SYNs each: {a} / {b} (the kernel: equal)",
            PER_CPU
        );
        assert!(gap <= 8, "{a} / {b}");
        consistent(dp)
    })
}

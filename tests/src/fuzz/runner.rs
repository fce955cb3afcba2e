//! Runs: the run loop (frames, control-plane changes, counter checkpoints), its report,
//! and the one-frame check used by regression tests.

use std::{
    collections::VecDeque,
    fmt::Write as _,
    time::{Duration, Instant},
};

use anyhow::Result;
use lb_common::{ConnKey, REASON_COUNT, REASON_NAMES, TemplateKey};
use lb_user::model::{RealId, Sched, ServiceSpec};

use super::{
    checker::check,
    config::{
        FLOW_LIMIT, PERSIST_SECS, SERVICES, configure, host_mask, real_addr, real_spec, service_id,
    },
    generator::Gen,
    model::Model,
    rng::Rng,
};
use crate::lb::{Dataplane, in_lab};

/// How to fuzz.
#[derive(Clone, Debug)]
pub struct FuzzConfig {
    pub seed: u64,
    pub frames: u64,
    /// Compare the outcome counters with the model every this many frames
    /// (1: every frame, which names the exact frame of a miscount).
    pub check_every: u64,
    /// A control-plane change (weight, removal, re-add, sysctl) every this
    /// many frames; 0 for none.
    pub control_every: u64,
    /// Stop after this many violations.
    pub max_violations: usize,
    /// Print progress every this many frames (0: never).
    pub progress_every: u64,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        FuzzConfig {
            seed: 1,
            frames: 10_000,
            check_every: 1,
            control_every: 200,
            max_violations: 10,
            progress_every: 0,
        }
    }
}

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Index of the frame in the run (0-based).
    pub index: u64,
    pub what: String,
    pub how: String,
    pub input: Vec<u8>,
    pub action: u32,
    pub output: Vec<u8>,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub frames: u64,
    /// Packets per outcome reason, as the program counted them.
    pub reasons: Vec<u64>,
    pub control_events: u64,
    pub flushes: u64,
    pub violations: Vec<Violation>,
    pub elapsed: Duration,
    /// Time spent in `test_run` alone.
    pub in_test_run: Duration,
    /// Of the frames checked, those of IPv6 per outcome reason (the share
    /// of the run that covers the IPv6 path).
    pub reasons_v6: Vec<u64>,
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses [`hex`] output.
pub fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    s.chunks(2)
        .filter_map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

impl Violation {
    /// The violation with the frame as hex and as test cases to paste.
    pub fn render(&self, seed: u64) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "VIOLATION at frame #{} (seed {seed}): {}",
            self.index, self.what
        );
        let _ = writeln!(s, "  generated as: {}", self.how);
        let _ = writeln!(
            s,
            "  input  ({} bytes): {}",
            self.input.len(),
            hex(&self.input)
        );
        let _ = writeln!(
            s,
            "  output (action {}, {} bytes): {}",
            self.action,
            self.output.len(),
            hex(&self.output)
        );
        let _ = writeln!(
            s,
            "  replay: cargo xtask fuzz --seed {seed} --frames {} --check-every 1",
            self.index + 1
        );
        let name = format!("fuzz_seed_{seed}_frame_{}", self.index);
        let _ = writeln!(s, "  test case (tests/tests/robustness.rs):");
        let _ = writeln!(
            s,
            "    #[test]\n    fn {name}() -> Result<()> {{\n        \
             if !require_root(\"{name}\") {{\n            return Ok(());\n        }}\n        \
             // The frame alone, on a fresh load balancer with the fuzzer's services:\n        \
             fuzz::check_one(&fuzz::unhex(\"{}\"))?;\n        \
             // The run up to it (the outcome may depend on earlier frames):\n        \
             let r = fuzz::run_in_lab(&FuzzConfig {{ seed: {seed}, frames: {}, check_every: 1, ..FuzzConfig::default() }})?;\n        \
             assert!(r.violations.is_empty(), \"{{}}\", r.render());\n        \
             Ok(())\n    }}",
            hex(&self.input),
            self.index + 1
        );
        s
    }
}

impl Report {
    /// A summary: frames, throughput, outcomes, violations.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "fuzz: seed {}, {} frames in {:.2} s ({:.0} frames/s; {:.2} µs per test_run), \
             {} control-plane changes, {} table flushes, {} violation(s)",
            self.seed,
            self.frames,
            secs,
            self.frames as f64 / secs,
            self.in_test_run.as_secs_f64() * 1e6 / (self.frames.max(1) as f64),
            self.control_events,
            self.flushes,
            self.violations.len()
        );
        for (i, n) in self.reasons.iter().enumerate() {
            if *n > 0 {
                let _ = writeln!(s, "  {:<18} {n}", REASON_NAMES[i]);
            }
        }
        let v6: Vec<String> = self
            .reasons_v6
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| format!("{} {n}", REASON_NAMES[i]))
            .collect();
        let _ = writeln!(
            s,
            "  of which IPv6: {} frames ({})",
            self.reasons_v6.iter().sum::<u64>(),
            v6.join(", ")
        );
        for v in &self.violations {
            s.push_str(&v.render(self.seed));
        }
        s
    }
}

pub(super) fn read_counters(dp: &Dataplane) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::with_capacity(REASON_COUNT as usize);
    for i in 0..REASON_COUNT {
        let v = dp.table.pins.stats.get(&i, 0)?;
        out.push(
            v.iter()
                .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes)),
        );
    }
    Ok(out)
}

/// Removes every connection entry and template (model and tables), keeping
/// the configuration.
pub(super) fn flush(dp: &mut Dataplane, model: &mut Model) -> Result<()> {
    let keys: Vec<ConnKey> = dp.table.pins.conns.keys().collect::<Result<_, _>>()?;
    for k in keys {
        let _ = dp.table.pins.conns.remove(&k);
    }
    let keys: Vec<lb_common::NatKey> =
        dp.table.pins.nat_replies.keys().collect::<Result<_, _>>()?;
    for k in keys {
        let _ = dp.table.pins.nat_replies.remove(&k);
    }
    let keys: Vec<TemplateKey> = dp.table.pins.templates.keys().collect::<Result<_, _>>()?;
    for k in keys {
        let _ = dp.table.pins.templates.remove(&k);
    }
    model.flows.clear();
    model.templates.clear();
    Ok(())
}

/// Kinds of control-plane change, in the order they come: 0..=2 weight
/// (or re-add if removed), 3 removal (or re-add), 4/5 `expire_nodest_conn`,
/// 6 `expire_quiescent_template`, 7 `conn_reuse_mode`, 8 `-E` with the
/// other scheduler, 9 `-E` turning persistence off or on (for a port-0
/// service, which must stay persistent: another netmask).
pub(super) const CONTROL_CYCLE: [u64; 12] = [3, 0, 4, 3, 1, 7, 3, 8, 2, 5, 6, 9];

/// One control-plane change, applied to the tables and the model alike;
/// returns what it did.
pub(super) fn control(dp: &mut Dataplane, model: &mut Model, r: &mut Rng) -> Result<String> {
    let with_reals: Vec<usize> = (0..model.svcs.len())
        .filter(|&i| !model.svcs[i].reals.is_empty())
        .collect();
    let si = r.pick(&with_reals);
    let def = &SERVICES[model.svcs[si].def];
    let id = service_id(def);
    let ri = r.upto(model.svcs[si].reals.len());
    let real = model.svcs[si].reals[ri].clone();
    // A fixed cycle of kinds, so that even a short run has each several
    // times: weights, removals (with and without flushing), re-adds,
    // sysctls.
    let kind = CONTROL_CYCLE[(model.control_count % CONTROL_CYCLE.len() as u64) as usize];
    model.control_count += 1;
    match kind {
        0..=2 if real.available => {
            let w = r.pick(&[0, 0, 1, 2, 3]);
            dp.table.edit_real(&id, &real_spec(def, real.last, w))?;
            let m = &mut model.svcs[si].reals[ri];
            if w == 0 && m.weight != 0 && model.expire_quiescent_template {
                m.tmpl_epoch += 1;
            }
            m.weight = w;
            Ok(format!("-e {id:?} {} -w {w}", real_addr(def, real.last)))
        }
        3 if real.available => {
            dp.table.delete_real(
                &id,
                &RealId {
                    addr: real_addr(def, real.last),
                    port: def.port,
                },
            )?;
            let m = &mut model.svcs[si].reals[ri];
            m.available = false;
            if model.expire_nodest_conn {
                m.incarnation += 1;
            }
            Ok(format!("-d {id:?} {}", real_addr(def, real.last)))
        }
        0..=3 => {
            let w = r.pick(&[0, 1, 1, 2]);
            dp.table.add_real(&id, &real_spec(def, real.last, w))?;
            let m = &mut model.svcs[si].reals[ri];
            m.available = true;
            m.weight = w;
            Ok(format!("-a {id:?} {} -w {w}", real_addr(def, real.last)))
        }
        8 | 9 => {
            // `-E` re-sends every setting (ipvsadm does): flip one of them.
            let m = &mut model.svcs[si];
            if kind == 8 {
                m.sched = if m.sched == Sched::Rr {
                    Sched::Wrr
                } else {
                    Sched::Rr
                };
            } else if m.port != 0 {
                m.persistent = !m.persistent;
            } else {
                m.netmask = if m.netmask == host_mask(def.vip) {
                    def.netmask
                } else {
                    host_mask(def.vip)
                };
            }
            let spec = ServiceSpec {
                id,
                sched: m.sched,
                persistent: m.persistent.then_some(PERSIST_SECS),
                netmask: m.netmask,
                one_packet: false,
            };
            dp.table.edit_service(&spec)?;
            Ok(format!(
                "-E {id:?} -s {} {} -M {}",
                spec.sched.name(),
                spec.persistent
                    .map_or("(not persistent)".into(), |p| format!("-p {p}")),
                spec.netmask
            ))
        }
        4 | 5 => {
            model.expire_nodest_conn = !model.expire_nodest_conn;
            let v = u32::from(model.expire_nodest_conn);
            dp.table.set_sysctl("expire_nodest_conn", v)?;
            Ok(format!("expire_nodest_conn={v}"))
        }
        6 => {
            model.expire_quiescent_template = !model.expire_quiescent_template;
            let v = u32::from(model.expire_quiescent_template);
            dp.table.set_sysctl("expire_quiescent_template", v)?;
            Ok(format!("expire_quiescent_template={v}"))
        }
        _ => {
            let v = r.below(4) as u32;
            model.conn_reuse_mode = v;
            dp.table.set_sysctl("conn_reuse_mode", v)?;
            Ok(format!("conn_reuse_mode={v}"))
        }
    }
}

/// Fuzzes the program loaded in `dp`, which must be freshly made and
/// configured with [`configure`], on a thread pinned to one CPU (see
/// [`run_in_lab`]).
pub fn run(dp: &mut Dataplane, cfg: &FuzzConfig) -> Result<Report> {
    let mut model = Model::new();
    let mut generator = Gen::new(cfg.seed);
    // Control-plane choices have their own stream, so that changing how often
    // they happen does not change the frames.
    let mut ctl_rng = Rng::new(cfg.seed ^ 0xc0a7_7201);
    let mut report = Report {
        seed: cfg.seed,
        reasons_v6: vec![0; REASON_COUNT as usize],
        ..Report::default()
    };
    let mut expected = vec![(0u64, 0u64); REASON_COUNT as usize];
    let mut last = read_counters(dp)?;
    let base = last.clone();
    let mut window_start = 0u64;
    let start = Instant::now();
    let mut recent_changes: VecDeque<String> = VecDeque::new();
    let check_every = cfg.check_every.max(1);

    for n in 0..cfg.frames {
        if cfg.control_every > 0 && n > 0 && n % cfg.control_every == 0 {
            let what = control(dp, &mut model, &mut ctl_rng)?;
            report.control_events += 1;
            if recent_changes.len() >= 8 {
                recent_changes.pop_front();
            }
            recent_changes.push_back(format!("before #{n}: {what}"));
        }
        if model.flows.len() > FLOW_LIMIT || model.templates.len() > FLOW_LIMIT {
            flush(dp, &mut model)?;
            report.flushes += 1;
        }
        let g = generator.next();
        let (svc, pkt, plan) = model.expect_for(&g.frame);
        let t0 = Instant::now();
        let r = dp.run(&g.frame)?;
        report.in_test_run += t0.elapsed();
        report.frames += 1;
        let outcome = check(&model, &g.frame, pkt.as_ref(), &plan.expect, &r);
        let mut violated = None;
        match outcome {
            Ok((reason, chosen)) => {
                if g.frame.get(12..14) == Some(&[0x86, 0xdd][..]) {
                    report.reasons_v6[reason as usize] += 1;
                }
                expected[reason as usize].0 += 1;
                expected[reason as usize].1 += g.frame.len() as u64;
                if let (Some(s), Some(p)) = (svc, pkt.as_ref()) {
                    model.commit(s, p, &plan, chosen);
                }
            }
            Err(what) => {
                violated = Some(format!(
                    "{what}; expected {:?}; recent control-plane changes: [{}]",
                    plan.expect,
                    recent_changes
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        let at_checkpoint = (n + 1) % check_every == 0 || n + 1 == cfg.frames;
        if violated.is_some() || at_checkpoint {
            let now = read_counters(dp)?;
            if violated.is_none() {
                let moved: Vec<(u64, u64)> = now
                    .iter()
                    .zip(&last)
                    .map(|(a, b)| (a.0 - b.0, a.1 - b.1))
                    .collect();
                if moved != expected {
                    let show = |v: &[(u64, u64)]| {
                        v.iter()
                            .enumerate()
                            .filter(|(_, c)| c.0 > 0)
                            .map(|(i, c)| format!("{}={}/{}B", REASON_NAMES[i], c.0, c.1))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    violated = Some(format!(
                        "outcome counters over frames #{window_start}..=#{n} moved [{}], \
                         the outcomes imply [{}]",
                        show(&moved),
                        show(&expected)
                    ));
                }
            }
            last = now;
            expected.iter_mut().for_each(|e| *e = (0, 0));
            window_start = n + 1;
        }
        if let Some(what) = violated {
            report.violations.push(Violation {
                index: n,
                what,
                how: g.how,
                input: g.frame,
                action: r.action,
                output: r.frame,
            });
            if report.violations.len() >= cfg.max_violations {
                break;
            }
            // Start afresh so that one miss does not cascade.
            flush(dp, &mut model)?;
            last = read_counters(dp)?;
            expected.iter_mut().for_each(|e| *e = (0, 0));
            window_start = n + 1;
        }
        if cfg.progress_every > 0 && (n + 1) % cfg.progress_every == 0 {
            eprintln!(
                "fuzz: {} frames, {:.1} s, {} violation(s)",
                n + 1,
                start.elapsed().as_secs_f64(),
                report.violations.len()
            );
        }
    }
    report.elapsed = start.elapsed();
    let end = read_counters(dp)?;
    report.reasons = end.iter().zip(&base).map(|(a, b)| a.0 - b.0).collect();
    Ok(report)
}

/// A fresh load balancer in a private lab namespace, configured with the
/// fuzzer's services, fuzzed with `cfg`.
pub fn run_in_lab(cfg: &FuzzConfig) -> Result<Report> {
    let cfg = cfg.clone();
    in_lab(move || {
        let mut dp = Dataplane::new()?;
        dp.set_ingress("lab0")?;
        configure(&mut dp)?;
        run(&mut dp, &cfg)
    })
}

/// Runs one frame on a fresh load balancer with the fuzzer's services and
/// checks it like the fuzzer does (for regression tests of a violation).
pub fn check_one(input: &[u8]) -> Result<()> {
    let input = input.to_vec();
    in_lab(move || {
        let mut dp = Dataplane::new()?;
        dp.set_ingress("lab0")?;
        configure(&mut dp)?;
        let mut model = Model::new();
        let (svc, pkt, plan) = model.expect_for(&input);
        let before = read_counters(&dp)?;
        let r = dp.run(&input)?;
        let after = read_counters(&dp)?;
        let (reason, chosen) = check(&model, &input, pkt.as_ref(), &plan.expect, &r)
            .map_err(|e| anyhow::anyhow!("{e}; expected {:?}", plan.expect))?;
        let moved: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a.0 - b.0).collect();
        let mut want = vec![0; REASON_COUNT as usize];
        want[reason as usize] = 1;
        anyhow::ensure!(
            moved == want,
            "counted under {:?}, expected {}",
            moved,
            REASON_NAMES[reason as usize]
        );
        if let (Some(s), Some(p)) = (svc, pkt.as_ref()) {
            model.commit(s, p, &plan, chosen);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&b)), b);
    }
}

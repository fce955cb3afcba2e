//! The results: a table on stdout, `latest.json` (the schema of issue 6)
//! and `latest.png` (ns per packet per case, the baseline marked).

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result};
use serde_json::json;

use super::{
    control::ControlReport,
    packet::PacketReport,
    scale::Run,
    traffic::{Path as TPath, TrafficReport},
};

/// Targets of issue 6, per case: (case, bound, relative to).
pub const PACKET_TARGETS: [(&str, f64, &str); 5] = [
    ("established", 1.5, "baseline"),
    ("established-tun", 2.0, "baseline"),
    ("pass", 1.2, "baseline"),
    ("new", 3.0, "baseline"),
    ("full", 1.2, "established"),
];

pub struct Report<'a> {
    pub machine: String,
    /// Whose programs were timed.
    pub object: String,
    pub packet: Option<&'a PacketReport>,
    pub control: Option<&'a ControlReport>,
    pub traffic: Option<&'a TrafficReport>,
}

/// One line of the targets: (description, measured, met).
pub fn targets(r: &Report) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    if let Some(p) = r.packet {
        let ns = |c: &str| {
            p.cases
                .iter()
                .find(|x| x.name == c)
                .map(|x| x.ns().median)
                .unwrap_or(f64::NAN)
        };
        let ratio = |c: &str, of: &str| {
            if of == "baseline" {
                p.cases
                    .iter()
                    .find(|x| x.name == c)
                    .map(|x| x.ratio())
                    .unwrap_or(f64::NAN)
            } else {
                ns(c) / ns(of)
            }
        };
        for (case, bound, of) in PACKET_TARGETS {
            let v = ratio(case, of);
            out.push((
                format!("{case} <= {bound} x {of}"),
                format!("{v:.2} x"),
                v <= bound,
            ));
        }
    }
    if let Some(c) = r.control {
        let (a, b) = c.invalidate_us;
        out.push((
            format!(
                "invalidate templates: same at {} and {} templates, < 1 ms",
                c.templates.0, c.templates.1
            ),
            format!("{a:.1} us / {b:.1} us"),
            b < 1000.0 && a < 1000.0 && b <= 2.0 * a.max(1.0),
        ));
        let (k, v) = (&c.conns, &c.services);
        for (what, run, bound_ms) in [
            (
                format!("lbctl -L -c -n, {} conn entries", k.entries),
                &k.list_c,
                3000.0,
            ),
            (
                format!("lbctl -L -n, {} conn entries", k.entries),
                &k.list_n,
                3000.0,
            ),
            (
                format!("lbctl -S -n, {} services x 16 reals", v.services),
                &v.save,
                1000.0,
            ),
            (
                format!("lbctl -L -n, {} services x 16 reals", v.services),
                &v.list,
                1000.0,
            ),
            (
                format!("lbctl -R, {} lines (services and reals)", v.restore_lines),
                &v.restore,
                5000.0 * (v.restore_lines as f64 / 100_000.0).max(0.01),
            ),
        ] {
            out.push((
                format!("{what} < {} s", bound_ms / 1000.0),
                format!("{:.0} ms, peak RSS {} KiB", run.ms, run.rss_kib),
                run.ms < bound_ms,
            ));
        }
    }
    if let Some(c) = r.control {
        for d in c.daemon.iter().filter(|d| d.virtuals >= 1000) {
            out.push((
                format!(
                    "lbctl daemon, {} x {} reals, checkinterval=5 ({}): < 10% of a core",
                    d.virtuals,
                    d.reals / d.virtuals.max(1),
                    d.label
                ),
                format!("{:.1}%", d.cpu_pct),
                d.cpu_pct < 10.0,
            ));
        }
    }
    if let Some(t) = r.traffic {
        for (i, what) in ["1 TCP stream", "4 TCP streams", "short connections/s"]
            .iter()
            .enumerate()
        {
            let v = t.lb_vs_baseline[i];
            out.push((
                format!("{what} through the LB >= 90% of the baseline program"),
                format!("{:.0}%", 100.0 * v),
                v >= 0.9,
            ));
        }
    }
    out
}

pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "machine: {}", r.machine);
    if let Some(p) = r.packet {
        packet_table(&mut s, p, &r.object);
    }
    if let Some(c) = r.control {
        control_table(&mut s, c);
    }
    if let Some(t) = r.traffic {
        traffic_table(&mut s, t);
    }
    let _ = writeln!(s, "\ntargets (issue 6; reported, never asserted):");
    for (what, got, met) in targets(r) {
        let _ = writeln!(
            s,
            "  [{}] {what}: {got}",
            if met { "met   " } else { "MISSED" }
        );
    }
    s
}

fn packet_table(s: &mut String, p: &PacketReport, object: &str) {
    let _ = writeln!(
        s,
        "\nper packet: BPF_PROG_TEST_RUN, one call per frame (repeat=1), {} frames x {} rounds \
         interleaved, CPU {} pinned, steal {:.1}%; programs of {object}",
        p.frames, p.rounds, p.cpu, p.steal_pct
    );
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>9}  path",
        "case", "ns/pkt", "min", "max", "+ns", "x base"
    );
    let base = p
        .cases
        .iter()
        .find(|c| c.name == "baseline")
        .map(|c| c.ns().median)
        .unwrap_or(0.0);
    for c in &p.cases {
        let n = c.ns();
        let _ = writeln!(
            s,
            "{:<12} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.2}  {}",
            c.name,
            n.median,
            n.min,
            n.max,
            n.median - base,
            c.ratio(),
            c.what
        );
    }
    let (fc, fcm, ft, ftm) = p.full_fill;
    let _ = writeln!(
        s,
        "full: CONNS {fc}/{fcm}, TEMPLATES {ft}/{ftm}. Each call's duration includes ~60 ns of \
         timer overhead: compare ratios, or +ns above the baseline."
    );
    let (visited, took) = p.sweep;
    let _ = writeln!(
        s,
        "sweeper: one sweep of the full CONNS ({visited} entries) took {:.1} ms; the next one \
         {:.1} s later ({:.2}% of one CPU)",
        took as f64 / 1e6,
        lb_common::sweep_interval(took) as f64 / 1e9,
        100.0 * took as f64 / lb_common::sweep_interval(took) as f64
    );
    for (name, insns, jited) in &p.insns {
        let _ = writeln!(
            s,
            "{name}: {insns} verified instructions, {jited} bytes JITed"
        );
    }
}

fn control_table(s: &mut String, c: &ControlReport) {
    let _ = writeln!(s, "\ncontrol plane (medians):");
    let _ = writeln!(
        s,
        "  invalidate one quiescent real's templates  {:>9.1} us at {} templates, {:.1} us at {}",
        c.invalidate_us.0, c.templates.0, c.invalidate_us.1, c.templates.1
    );
    let _ = writeln!(
        s,
        "  lbctl -e -w N returned -> first new flow    {:>9.1} us  (lbctl -e itself: {:.1} ms)",
        c.weight_apply_us, c.lbctl_edit_ms
    );
    let _ = writeln!(
        s,
        "  lbctl -L -n, {} services x 16 reals {:>9.1} ms",
        c.listed.0, c.list_ms
    );
    let _ = writeln!(
        s,
        "  Table::add_real, {} dests in DESTS  {:>9.1} ms",
        16 * c.listed.0,
        c.add_real_ms
    );
    let _ = writeln!(
        s,
        "  memory: {:.1} bytes per conn entry, {:.1} bytes per template (memlock / max_entries)",
        c.bytes_per_conn, c.bytes_per_template
    );
    for d in &c.daemon {
        let _ = writeln!(
            s,
            "  lbctl daemon, {} virtuals x {} reals, connect every 5 s ({}): {:.1}% of a core \
             over {:.0} s, RSS {:.0} MB (peak {:.0} MB), installed in {:.1} s",
            d.virtuals,
            d.reals / d.virtuals.max(1),
            d.label,
            d.cpu_pct,
            d.window_s,
            d.rss_mb,
            d.peak_rss_mb,
            d.install_s
        );
    }
    let k = &c.conns;
    let _ = writeln!(
        s,
        "  {} conn entries (filled in {:.1} s); wall time, CPU time, peak RSS of lbctl:",
        k.entries, k.fill_s
    );
    let line = |s: &mut String, what: &str, r: &Run| {
        let _ = writeln!(
            s,
            "    {what:<14} {:>9.1} ms  cpu {:>6.1} user + {:>6.1} sys  {:>9} KiB",
            r.ms, r.user_ms, r.sys_ms, r.rss_kib
        );
    };
    line(s, "lbctl -L -c -n", &k.list_c);
    line(s, "lbctl -L -n", &k.list_n);
    let v = &c.services;
    let _ = writeln!(
        s,
        "  {} services x 16 reals (made through Table in {:.1} s):",
        v.services, v.provision_s
    );
    line(s, "lbctl -S -n", &v.save);
    line(s, "lbctl -L -n", &v.list);
    line(s, "lbctl -R", &v.restore);
}

fn traffic_table(s: &mut String, t: &TrafficReport) {
    let _ = writeln!(
        s,
        "\nreal traffic (DR on veth, {} s runs, median of {} rounds, load average {:.1} -> {:.1}):",
        t.secs, t.rounds, t.load.0, t.load.1
    );
    let _ = writeln!(
        s,
        "  {:<10} {:>12} {:>13} {:>10} {:>7}",
        "path", "1 stream", "4 streams", "conn/s", "failed"
    );
    for (path, pr) in &t.paths {
        let _ = writeln!(
            s,
            "  {:<10} {:>7.2} Gb/s {:>8.2} Gb/s {:>10.0} {:>7}",
            path.name(),
            pr.gbps_1,
            pr.gbps_4,
            pr.cps,
            pr.failed
        );
    }
    let _ = writeln!(
        s,
        "  lb/baseline, median of per-round ratios: {:.0}% / {:.0}% / {:.0}%",
        100.0 * t.lb_vs_baseline[0],
        100.0 * t.lb_vs_baseline[1],
        100.0 * t.lb_vs_baseline[2]
    );
}

fn r1(v: f64) -> f64 {
    if v.is_finite() {
        (v * 10.0).round() / 10.0
    } else {
        0.0
    }
}

fn r3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// The JSON of issue 6, exactly; every section must have run.
pub fn json(r: &Report) -> Result<serde_json::Value> {
    let (Some(p), Some(c), Some(t)) = (r.packet, r.control, r.traffic) else {
        anyhow::bail!("the JSON needs every section");
    };
    let packet: Vec<_> = p
        .cases
        .iter()
        .map(|c| {
            let n = c.ns();
            json!({
                "case": c.name,
                "ns": r1(n.median),
                "ns_min": r1(n.min),
                "ns_max": r1(n.max),
                "ratio": r3(c.ratio()),
            })
        })
        .collect();
    Ok(json!({
        "packet": packet,
        "control": {
            "invalidate_1k_us": r1(c.invalidate_us.0),
            "invalidate_1m_us": r1(c.invalidate_us.1),
            "weight_apply_us": r1(c.weight_apply_us),
            "list_1000_services_ms": r1(c.list_ms),
            "bytes_per_conn": r1(c.bytes_per_conn),
            "bytes_per_template": r1(c.bytes_per_template),
        },
        "traffic": {
            "lb_gbps": r3(t.get(TPath::Lb).gbps_1),
            "baseline_gbps": r3(t.get(TPath::Baseline).gbps_1),
            "direct_gbps": r3(t.get(TPath::Direct).gbps_1),
            "lb_cps": r1(t.get(TPath::Lb).cps),
            "baseline_cps": r1(t.get(TPath::Baseline).cps),
        },
    }))
}

pub fn write(r: &Report, dir: &Path, stem: &str) -> Result<()> {
    let value = json(r)?;
    let p = r.packet.context("no per-packet results")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let j = dir.join(format!("{stem}.json"));
    std::fs::write(&j, serde_json::to_string_pretty(&value)? + "\n")
        .with_context(|| format!("writing {}", j.display()))?;
    let png = dir.join(format!("{stem}.png"));
    chart(p)
        .save(&png)
        .with_context(|| format!("writing {}", png.display()))?;
    eprintln!("==> wrote {} and {}", j.display(), png.display());
    Ok(())
}

// ---- the chart ----------------------------------------------------------

type Rgb = [u8; 3];
const INK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const BAR: Rgb = [70, 120, 190];
const BASE_BAR: Rgb = [150, 150, 150];
const BASE_LINE: Rgb = [200, 40, 40];
const TARGET: Rgb = [235, 140, 0];

/// An RGB raster with a few drawing primitives and an 8x8 bitmap font.
pub struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: [255u8, 255, 255].repeat(w * h),
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = 3 * (y as usize * self.w + x as usize);
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..y0.max(y1) {
            for x in x0.min(x1)..x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    fn hline(&mut self, x0: i64, x1: i64, y: i64, c: Rgb, dash: bool) {
        for x in x0..x1 {
            if !dash || (x / 6) % 2 == 0 {
                self.set(x, y, c);
                self.set(x, y + 1, c);
            }
        }
    }

    /// Text at (x, y) (top left), each font pixel `scale` pixels wide.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let code = if ch.is_ascii() {
                ch as usize
            } else {
                b'?' as usize
            };
            let glyph = font8x8::legacy::BASIC_LEGACY[code];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let gx = x + (i as i64 * 8 + col) * scale;
                        let gy = y + row as i64 * scale;
                        self.rect(gx, gy, gx + scale, gy + scale, c);
                    }
                }
            }
        }
    }

    fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 8 * scale
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let f = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut enc = png::Encoder::new(f, self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.px)?;
        w.finish()?;
        Ok(())
    }
}

/// Bars of the median ns per packet per case, min-max whiskers, the
/// baseline as a dashed line across, each target as an orange tick.
pub fn chart(p: &PacketReport) -> Canvas {
    let (w, h) = (960i64, 560i64);
    let mut cv = Canvas::new(w as usize, h as usize);
    let (left, right, top, bottom) = (80i64, w - 30, 70i64, h - 90);
    cv.text(
        left,
        18,
        "lb-xdp: ns per packet (BPF_PROG_TEST_RUN, repeat=1)",
        2,
        INK,
    );
    cv.text(
        left,
        40,
        &format!(
            "median of {} rounds x {} frames; whiskers min-max; CPU {}",
            p.rounds, p.frames, p.cpu
        ),
        1,
        INK,
    );
    let ymax_data = p
        .cases
        .iter()
        .map(|c| c.ns().max)
        .fold(0.0f64, f64::max)
        .max(1.0);
    let base = p
        .cases
        .iter()
        .find(|c| c.name == "baseline")
        .map(|c| c.ns().median)
        .unwrap_or(0.0);
    let est = p
        .cases
        .iter()
        .find(|c| c.name == "established")
        .map(|c| c.ns().median)
        .unwrap_or(0.0);
    let target_of = |name: &str| -> Option<f64> {
        PACKET_TARGETS
            .iter()
            .find(|t| t.0 == name)
            .map(|t| t.1 * if t.2 == "baseline" { base } else { est })
    };
    let ymax_t = p
        .cases
        .iter()
        .filter_map(|c| target_of(c.name))
        .fold(0.0f64, f64::max);
    let ymax = nice_ceiling(ymax_data.max(ymax_t) * 1.08);
    let step = nice_step(ymax);
    let y_of = |v: f64| bottom - ((v / ymax) * (bottom - top) as f64).round() as i64;
    // Grid and axis labels.
    let mut v = 0.0;
    while v <= ymax + 1e-9 {
        let y = y_of(v);
        cv.hline(left, right, y, GRID, false);
        let label = format!("{v:.0}");
        cv.text(
            left - 10 - Canvas::text_width(&label, 1),
            y - 4,
            &label,
            1,
            INK,
        );
        v += step;
    }
    cv.text(8, top - 12, "ns/packet", 1, INK);
    cv.rect(left, top, left + 2, bottom + 1, INK);
    cv.rect(left, bottom, right, bottom + 2, INK);
    // Bars.
    let n = p.cases.len().max(1) as i64;
    let slot = (right - left) / n;
    let bw = slot * 5 / 9;
    for (i, c) in p.cases.iter().enumerate() {
        let s = c.ns();
        let cx = left + slot * i as i64 + slot / 2;
        let color = if c.name == "baseline" { BASE_BAR } else { BAR };
        cv.rect(cx - bw / 2, y_of(s.median), cx + bw / 2, bottom, color);
        // Whisker.
        cv.rect(cx - 1, y_of(s.max), cx + 1, y_of(s.min) + 1, INK);
        cv.rect(cx - 8, y_of(s.max), cx + 8, y_of(s.max) + 2, INK);
        cv.rect(cx - 8, y_of(s.min), cx + 8, y_of(s.min) + 2, INK);
        if let Some(t) = target_of(c.name) {
            let y = y_of(t);
            cv.rect(cx - bw / 2 - 6, y - 1, cx + bw / 2 + 6, y + 2, TARGET);
        }
        let label = format!("{:.1}", s.median);
        cv.text(
            cx - Canvas::text_width(&label, 1) / 2,
            y_of(s.max) - 14,
            &label,
            1,
            INK,
        );
        let name = c.name;
        let scale = if Canvas::text_width(name, 2) <= slot - 8 {
            2
        } else {
            1
        };
        cv.text(
            cx - Canvas::text_width(name, scale) / 2,
            bottom + 10,
            name,
            scale,
            INK,
        );
        let ratio = format!("x{:.2}", c.ratio());
        cv.text(
            cx - Canvas::text_width(&ratio, 1) / 2,
            bottom + 32,
            &ratio,
            1,
            INK,
        );
    }
    // The baseline, across every bar.
    let yb = y_of(base);
    cv.hline(left, right, yb, BASE_LINE, true);
    cv.text(right - 150, yb - 12, "baseline (limit)", 1, BASE_LINE);
    // Legend.
    let ly = h - 34;
    cv.rect(left, ly, left + 14, ly + 8, BAR);
    cv.text(left + 20, ly, "lb_xdp median", 1, INK);
    cv.rect(left + 160, ly, left + 174, ly + 8, BASE_BAR);
    cv.text(left + 180, ly, "lb_baseline (MAC swap + XDP_TX)", 1, INK);
    cv.rect(left + 450, ly + 3, left + 464, ly + 6, TARGET);
    cv.text(
        left + 470,
        ly,
        "target (issue 6); xN.NN = ratio to baseline",
        1,
        INK,
    );
    cv
}

fn nice_step(max: f64) -> f64 {
    let raw = max / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let n = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

fn nice_ceiling(v: f64) -> f64 {
    let s = nice_step(v);
    (v / s).ceil() * s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(nice_step(600.0), 100.0);
        assert_eq!(nice_step(300.0), 50.0);
        assert_eq!(nice_ceiling(431.0), 500.0);
        assert_eq!(nice_ceiling(280.0), 300.0);
    }
}

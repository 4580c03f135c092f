//! A roofline chart as a standalone SVG (written by hand, no plotting dependency):
//! operational intensity (FLOP/byte) against achieved GFLOP/s on log-log axes, the bandwidth
//! slope and compute peak of each backend's measured roofline, one point per bench row
//! coloured by backend.

use super::run::{BenchRow, RooflineInfo};

const W: f64 = 900.0;
const H: f64 = 600.0;
const L: f64 = 80.0;
const R: f64 = 200.0;
const T: f64 = 40.0;
const B: f64 = 60.0;

fn color(backend: &str) -> &'static str {
    match backend {
        "cuda" => "#2ca02c",
        "wgpu" => "#1f77b4",
        _ => "#d62728",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the chart. `rooflines` holds `(backend, roofline)` pairs (one slope and peak line
/// each); rows without a positive time are left out.
pub fn roofline_svg(rows: &[BenchRow], rooflines: &[(String, RooflineInfo)], title: &str) -> String {
    let pts: Vec<(f64, f64, &BenchRow)> =
        rows.iter().filter(|r| r.median_s > 0.0 && r.gflops > 0.0 && r.flops > 0.0).map(|r| (r.intensity(), r.gflops, r)).collect();
    // Axis ranges in decades, covering the points and the roofline ridges.
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    for (_, r) in rooflines {
        if r.copy_gbps > 0.0 && r.peak_gflops > 0.0 {
            xs.push(r.peak_gflops / r.copy_gbps);
            ys.push(r.peak_gflops);
        }
    }
    let lo_hi = |v: &[f64], dlo: f64, dhi: f64| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi.is_finite() {
            ((lo.log10().floor() - 1.0).min(hi.log10().ceil() - 2.0), hi.log10().ceil() + 1.0)
        } else {
            (dlo, dhi)
        }
    };
    let (x0, x1) = lo_hi(&xs, -2.0, 3.0);
    let (y0, y1) = lo_hi(&ys, -1.0, 4.0);
    let px = |x: f64| L + (x.log10() - x0) / (x1 - x0) * (W - L - R);
    let py = |y: f64| H - B - (y.log10() - y0) / (y1 - y0) * (H - T - B);

    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!("<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"));
    s.push_str(&format!("<text x=\"{}\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">{}</text>\n", (L + W - R) / 2.0, esc(title)));
    // Grid and ticks at every decade.
    for d in (x0 as i64)..=(x1 as i64) {
        let x = px(10f64.powi(d as i32));
        s.push_str(&format!("<line x1=\"{x:.1}\" y1=\"{T}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\n", H - B));
        s.push_str(&format!("<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">1e{d}</text>\n", H - B + 18.0));
    }
    for d in (y0 as i64)..=(y1 as i64) {
        let y = py(10f64.powi(d as i32));
        s.push_str(&format!("<line x1=\"{L}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n", W - R));
        s.push_str(&format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{d}</text>\n", L - 6.0, y + 4.0));
    }
    s.push_str(&format!("<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", W - L - R, H - T - B));
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">operational intensity (FLOP/byte)</text>\n",
        (L + W - R) / 2.0,
        H - 16.0
    ));
    s.push_str(&format!(
        "<text x=\"20\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {})\">achieved GFLOP/s</text>\n",
        (T + H - B) / 2.0,
        (T + H - B) / 2.0
    ));
    // Rooflines: bandwidth slope up to the ridge, then the peak.
    let (xmin, xmax) = (10f64.powf(x0), 10f64.powf(x1));
    for (backend, r) in rooflines {
        if r.copy_gbps <= 0.0 || r.peak_gflops <= 0.0 {
            continue;
        }
        let ridge = r.peak_gflops / r.copy_gbps;
        let start = xmin.max(10f64.powf(y0) / r.copy_gbps);
        let c = color(backend);
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\" points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\"/>\n",
            px(start),
            py(start * r.copy_gbps),
            px(ridge),
            py(r.peak_gflops),
            px(xmax),
            py(r.peak_gflops)
        ));
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\" text-anchor=\"end\">{} peak {:.0} GFLOP/s ({}), copy {:.0} GB/s</text>\n",
            px(xmax) - 4.0,
            py(r.peak_gflops) - 5.0,
            esc(backend),
            r.peak_gflops,
            esc(&r.peak_what),
            r.copy_gbps
        ));
    }
    // Points.
    for (x, y, r) in &pts {
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{}\" fill-opacity=\"0.8\"><title>{} {} {} {}: {:.2} GFLOP/s</title></circle>\n",
            px(*x),
            py(*y),
            color(r.backend),
            esc(r.backend),
            esc(r.op),
            esc(r.dtype),
            esc(&r.shape),
            y
        ));
    }
    // Legend.
    let mut backends: Vec<&str> = pts.iter().map(|p| p.2.backend).collect();
    backends.extend(rooflines.iter().map(|(b, _)| b.as_str()));
    backends.sort();
    backends.dedup();
    for (i, b) in backends.iter().enumerate() {
        let y = T + 20.0 + 20.0 * i as f64;
        s.push_str(&format!("<circle cx=\"{}\" cy=\"{y}\" r=\"5\" fill=\"{}\"/>\n", W - R + 20.0, color(b)));
        s.push_str(&format!("<text x=\"{}\" y=\"{}\">{}</text>\n", W - R + 32.0, y + 4.0, esc(b)));
    }
    s.push_str("</svg>\n");
    s
}

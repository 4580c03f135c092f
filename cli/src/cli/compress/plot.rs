//! The error-vs-speedup SVG of `slimgemm compress`.

use super::*;

fn color(family: &str) -> &'static str {
    match family {
        "csr" => "#1f77b4",
        "2:4" => "#17becf",
        "lowrank" => "#2ca02c",
        "int8" => "#ff7f0e",
        "int4" => "#d62728",
        "binary" => "#9467bd",
        _ => "#7f7f7f",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Error (log x) against speedup over the dense reference (log y): every timed candidate of
/// every layer as a small dot coloured by format, the picks as large ringed dots, the budget
/// as a vertical line, speedup 1 as a horizontal one; candidates over budget (never timed) as
/// rings in a strip below, at their error. Errors of 0 sit on the left edge.
pub(super) fn plot_svg(rows: &[Row], args: &Args, title: &str, device: &str, note: Option<&str>) -> String {
    const W: f64 = 940.0;
    const H: f64 = 620.0;
    const L: f64 = 80.0;
    const R: f64 = 210.0;
    const T: f64 = 60.0;
    const B: f64 = 60.0;
    const STRIP: f64 = 44.0;
    let pb = H - B - STRIP; // bottom of the speedup area
    let metric = args.metric;
    let fam_index = |f: &str| ["dense", "csr", "2:4", "lowrank", "int8", "int4", "binary"].iter().position(|x| *x == f).unwrap_or(0);
    // (error, speedup, family, chosen, tooltip)
    let mut pts: Vec<(f64, f64, &'static str, bool, String)> = Vec::new();
    // (error, family, tooltip)
    let mut over: Vec<(f64, &'static str, String)> = Vec::new();
    for r in rows {
        let p = &r.plan;
        let pick = p.pick_index(args.objective);
        for (i, c) in p.candidates.iter().enumerate() {
            let label = c.variant.label(p.out_features, p.in_features);
            let e = c.error(metric);
            if !c.within_budget {
                if e.is_finite() {
                    over.push((e, c.variant.family_name(), format!("{}: {label} err {e:.3e} (over budget)", p.name)));
                }
                continue;
            }
            let Some(sp) = c.speedup else { continue };
            if sp.is_finite() && sp > 0.0 {
                pts.push((e, sp, c.variant.family_name(), i == pick, format!("{}: {label} err {e:.3e} speedup {sp:.2}", p.name)));
            }
        }
    }
    let budget = args.budget;
    let pos: Vec<f64> = pts.iter().map(|p| p.0).chain(over.iter().map(|o| o.0)).filter(|e| *e > 0.0).collect();
    let emin = pos.iter().copied().fold(budget / 10.0, f64::min);
    let emax = pos.iter().copied().fold(budget * 2.0, f64::max).min(100.0);
    let (x0, x1) = (emin.log10().floor(), emax.log10().ceil());
    let smin = pts.iter().map(|p| p.1).fold(0.5, f64::min);
    let smax = pts.iter().map(|p| p.1).fold(2.0, f64::max);
    let (y0, y1) = ((smin.log10() * 2.0).floor() / 2.0, (smax.log10() * 2.0).ceil() / 2.0);
    let px = |e: f64| {
        let e = if e > 0.0 { e.log10() } else { x0 };
        L + (e.clamp(x0, x1) - x0) / (x1 - x0) * (W - L - R)
    };
    let py = |s: f64| pb - (s.log10() - y0) / (y1 - y0) * (pb - T);
    let mid = (L + W - R) / 2.0;
    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str(&format!("<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"));
    s.push_str(&format!("<text x=\"{mid}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n", esc(title)));
    let sub = match note {
        Some(_) => format!("timed on {device}: CPU / software timings, they say nothing about GPU speed"),
        None => format!("timed on {device}"),
    };
    s.push_str(&format!("<text x=\"{mid}\" y=\"42\" font-size=\"12\" fill=\"#555\" text-anchor=\"middle\">{}</text>\n", esc(&sub)));
    s.push_str(&format!("<rect x=\"{L}\" y=\"{pb}\" width=\"{}\" height=\"{STRIP}\" fill=\"#f4f4f4\"/>\n", W - L - R));
    for d in (x0 as i64)..=(x1 as i64) {
        let x = px(10f64.powi(d as i32));
        s.push_str(&format!("<line x1=\"{x:.1}\" y1=\"{T}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\n", H - B));
        s.push_str(&format!("<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">1e{d}</text>\n", H - B + 18.0));
    }
    let mut y = y0;
    while y <= y1 + 1e-9 {
        let v = 10f64.powf(y);
        let yy = py(v);
        s.push_str(&format!("<line x1=\"{L}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\n", W - R));
        let label = if v >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") };
        let label = if label.contains('.') { label.trim_end_matches('0').trim_end_matches('.').to_string() } else { label };
        s.push_str(&format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}x</text>\n", L - 6.0, yy + 4.0));
        y += 0.5;
    }
    s.push_str(&format!("<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", W - L - R, H - B - T));
    s.push_str(&format!("<line x1=\"{L}\" y1=\"{pb}\" x2=\"{}\" y2=\"{pb}\" stroke=\"black\"/>\n", W - R));
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\">over budget (not timed)</text>\n",
        L + 6.0,
        pb + STRIP - 6.0
    ));
    s.push_str(&format!(
        "<text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">relative {} error (log; 0 on the left edge)</text>\n",
        H - 18.0,
        metric.name()
    ));
    s.push_str(&format!(
        "<text x=\"20\" y=\"{c}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {c})\">speedup over dense (geometric mean over tokens {:?})</text>\n",
        args.tokens,
        c = (T + pb) / 2.0
    ));
    let bx = px(budget);
    s.push_str(&format!("<line x1=\"{bx:.1}\" y1=\"{T}\" x2=\"{bx:.1}\" y2=\"{}\" stroke=\"#d62728\" stroke-dasharray=\"6 3\"/>\n", H - B));
    s.push_str(&format!("<text x=\"{:.1}\" y=\"{}\" fill=\"#d62728\">budget {budget}</text>\n", bx + 4.0, T + 14.0));
    let one = py(1.0);
    s.push_str(&format!("<line x1=\"{L}\" y1=\"{one:.1}\" x2=\"{}\" y2=\"{one:.1}\" stroke=\"black\" stroke-dasharray=\"2 3\"/>\n", W - R));
    s.push_str(&format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">dense</text>\n", W - R - 4.0, one - 4.0));
    for (e, fam, tip) in &over {
        let yy = pb + 8.0 + 4.0 * fam_index(fam) as f64;
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{yy:.1}\" r=\"3\" fill=\"none\" stroke=\"{}\" stroke-opacity=\"0.6\"><title>{}</title></circle>\n",
            px(*e),
            color(fam),
            esc(tip)
        ));
    }
    for chosen in [false, true] {
        for (e, sp, fam, c, tip) in pts.iter().filter(|p| p.3 == chosen) {
            let (r, extra) = if *c { (6.5, " stroke=\"black\" stroke-width=\"1.5\"") } else { (3.0, " fill-opacity=\"0.45\"") };
            s.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{}\"{extra}><title>{}</title></circle>\n",
                px(*e),
                py(*sp),
                color(fam),
                esc(tip)
            ));
        }
    }
    let mut fams: Vec<&str> = pts.iter().map(|p| p.2).chain(over.iter().map(|o| o.1)).collect();
    fams.sort_by_key(|f| fam_index(f));
    fams.dedup();
    let lx = W - R + 18.0;
    for (i, f) in fams.iter().enumerate() {
        let ly = T + 14.0 + 20.0 * i as f64;
        s.push_str(&format!("<circle cx=\"{lx}\" cy=\"{ly}\" r=\"5\" fill=\"{}\"/>\n", color(f)));
        s.push_str(&format!("<text x=\"{}\" y=\"{}\">{}</text>\n", lx + 12.0, ly + 4.0, esc(f)));
    }
    let ly = T + 14.0 + 20.0 * fams.len() as f64 + 10.0;
    s.push_str(&format!("<circle cx=\"{lx}\" cy=\"{ly}\" r=\"6.5\" fill=\"white\" stroke=\"black\" stroke-width=\"1.5\"/>\n"));
    s.push_str(&format!("<text x=\"{}\" y=\"{}\">pick ({})</text>\n", lx + 12.0, ly + 4.0, args.objective.name()));
    s.push_str(&format!("<circle cx=\"{lx}\" cy=\"{}\" r=\"3\" fill=\"#7f7f7f\" fill-opacity=\"0.45\"/>\n", ly + 20.0));
    s.push_str(&format!("<text x=\"{}\" y=\"{}\" fill=\"#555\">other candidate, timed</text>\n", lx + 12.0, ly + 24.0));
    s.push_str(&format!("<circle cx=\"{lx}\" cy=\"{}\" r=\"3\" fill=\"none\" stroke=\"#7f7f7f\"/>\n", ly + 40.0));
    s.push_str(&format!("<text x=\"{}\" y=\"{}\" fill=\"#555\">over budget</text>\n", lx + 12.0, ly + 44.0));
    s.push_str(&format!("<text x=\"{lx}\" y=\"{}\" fill=\"#555\" font-size=\"11\">{} layers</text>\n", ly + 70.0, rows.len()));
    s.push_str("</svg>\n");
    s
}

//! `slimgemm compress`: plans every weight of a dense safetensors model with
//! [`slimgemm::plan::Planner`] on one device, prints a table per layer and totals, and writes
//! the compressed model (safetensors, layout of [`slimgemm::plan::io`]), `report.json` and
//! `plot.svg` (error vs speedup, the picks marked) to the output folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde_json::{json, Value};
use slimgemm::formats::Matrix;
use slimgemm::plan::io::{CompressedWriter, DenseModel, ModelTensor};
use slimgemm::plan::{
    timing_note, DenseReference, DenseTime, ErrorMetric, FormatFamily, LayerPlan, LibraryDense, Objective, PlanOptions, Planner, Timing,
};
use slimgemm::workload::Workload;
use slimgemm::{BackendKind, DType, Device};

use super::{num, print_table, progress};

/// Which dense layer the speedups are relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DenseRef {
    /// The library's own dense layer through `forward` (a dense `Linear`, the library's dense
    /// GEMM): the same code path as the candidates.
    Library,
    /// The bench's dense GEMM baseline: cuBLAS SGEMM / HGEMM on CUDA, the WGSL dense GEMM on
    /// wgpu, faer (one thread) on the CPU; kernel time only.
    Baseline,
}

/// The activation dtype of the planned layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActDtype {
    /// f32 activations.
    F32,
    /// f16 activations.
    F16,
}

/// Parsed `compress` arguments.
#[derive(Debug, Clone)]
pub struct Args {
    /// A `.safetensors` file or a folder of shards.
    pub model: PathBuf,
    /// The error budget.
    pub budget: f64,
    /// What the picks optimize.
    pub objective: Objective,
    /// Which error the budget bounds.
    pub metric: ErrorMetric,
    /// Token counts timed.
    pub tokens: Vec<usize>,
    /// `best`, `cpu`, `wgpu` or `cuda`.
    pub backend: String,
    /// Comma-separated format families.
    pub formats: String,
    /// Calibration activations (safetensors).
    pub calib: Option<PathBuf>,
    /// Rows of the Gaussian calibration activations.
    pub calib_tokens: usize,
    /// Activation dtype.
    pub dtype: ActDtype,
    /// The dense reference of the speedups.
    pub dense: DenseRef,
    /// Most timed runs per measurement.
    pub iters: usize,
    /// The output folder.
    pub out: PathBuf,
}

/// The bench's dense GEMM baseline as a [`DenseReference`] (see [`DenseRef::Baseline`]).
struct BaselineDense;

impl DenseReference for BaselineDense {
    fn describe(&self) -> String {
        "bench dense GEMM baseline (cuBLAS on CUDA, WGSL dense GEMM on wgpu, faer 1 thread on the CPU), kernel only".into()
    }

    fn time(&mut self, dev: &Device, out: usize, inp: usize, tokens: usize, dtype: DType, timing: &Timing) -> slimgemm::Result<DenseTime> {
        // The dense stand-in of a linear layer: X [tokens, in] times the explicit W^T.
        let w = Workload::LowrankLinear { m: out, n: inp, r: 1, batch: tokens, dtype };
        let mut reasons = Vec::new();
        for slot in crate::suite::run::baselines(dev, &w) {
            match slot {
                Ok(mut b) => {
                    let name = b.name();
                    if name.contains("explicit W") || name.starts_with("dense f32 GEMM") {
                        let s = timing.measure(dev, &mut || b.run())?;
                        return Ok(DenseTime { seconds: s, what: name });
                    }
                }
                Err(m) => reasons.push(m.to_string()),
            }
        }
        Err(slimgemm::Error::unavailable(
            dev.kind().name(),
            format!("no dense GEMM baseline for a {out}x{inp} layer on this device ({}); use --dense library", reasons.join("; ")),
        ))
    }
}

fn device(spec: &str) -> Result<Device, String> {
    match spec.trim() {
        "best" => Ok(Device::best()),
        s => {
            let kind: BackendKind = s.parse().map_err(|_| format!("unknown backend `{s}` (expected best, cpu, wgpu or cuda)"))?;
            Device::new(kind).map_err(|e| format!("backend `{s}` was requested but is not available: {e}"))
        }
    }
}

/// Calibration activations by layer: the tensor named like the layer, else the first (by
/// name) 2-D tensor whose width is the layer's input features.
struct Calib {
    by_name: BTreeMap<String, Matrix<f32>>,
}

impl Calib {
    fn open(path: &Path) -> Result<Calib, String> {
        let m = DenseModel::open(path).map_err(|e| format!("--calib: {e}"))?;
        let mut by_name = BTreeMap::new();
        for t in m.tensors() {
            if t.shape.len() == 2 && t.matrix.is_some() {
                by_name.insert(t.name.clone(), m.load_matrix(&t.name).map_err(|e| format!("--calib: {e}"))?);
            }
        }
        if by_name.is_empty() {
            return Err(format!("--calib {}: no 2-D float tensor (expected activations [tokens, in])", path.display()));
        }
        Ok(Calib { by_name })
    }

    fn for_layer(&self, name: &str, inp: usize) -> Option<(&str, &Matrix<f32>)> {
        if let Some((n, m)) = self.by_name.get_key_value(name) {
            if m.cols == inp {
                return Some((n, m));
            }
        }
        self.by_name.iter().find(|(_, m)| m.cols == inp).map(|(n, m)| (n.as_str(), m))
    }
}

/// One planned layer as reported.
struct Row {
    tensor: ModelTensor,
    plan: LayerPlan,
    calib: String,
}

fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn fmt_time(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}

fn fmt_err(e: f64) -> String {
    if e == 0.0 {
        "0".into()
    } else {
        format!("{e:.2e}")
    }
}

/// Runs `compress`.
pub fn compress(args: &Args) -> Result<ExitCode, String> {
    let start = Instant::now();
    let formats = FormatFamily::parse_list(&args.formats).map_err(|e| format!("--formats: {e}"))?;
    let opts = PlanOptions {
        budget: args.budget,
        metric: args.metric,
        formats,
        tokens: args.tokens.clone(),
        dtype: match args.dtype {
            ActDtype::F32 => DType::F32,
            ActDtype::F16 => DType::F16,
        },
        calib_tokens: args.calib_tokens,
        timing: Timing { max_iters: args.iters.max(1), min_iters: 3.min(args.iters.max(1)), ..Timing::default() },
        ..PlanOptions::default()
    };
    opts.validate().map_err(|e| e.to_string())?;
    let model = DenseModel::open(&args.model).map_err(|e| format!("cannot read the model {}: {e}", args.model.display()))?;
    let tensors = model.tensors();
    let n_weights = tensors.iter().filter(|t| t.matrix.is_some()).count();
    if n_weights == 0 {
        let list: Vec<String> = tensors.iter().take(8).map(|t| format!("{} {} {:?}", t.name, t.dtype, t.shape)).collect();
        return Err(format!(
            "{}: no weight to compress: no 2-D float tensor (or 3-D / 4-D conv weight) among its {} tensors ({}{})",
            args.model.display(),
            tensors.len(),
            list.join(", "),
            if tensors.len() > 8 { ", ..." } else { "" }
        ));
    }
    let calib = args.calib.as_deref().map(Calib::open).transpose()?;
    let dev = device(&args.backend)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create --out {}: {e}", args.out.display()))?;
    // The model is memory-mapped: never overwrite its own files.
    let out_dir = std::fs::canonicalize(&args.out).map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    let in_dir = std::fs::canonicalize(&args.model).map_err(|e| e.to_string())?;
    let in_dir = if in_dir.is_file() { in_dir.parent().map(Path::to_path_buf).unwrap_or_default() } else { in_dir };
    if out_dir == in_dir {
        return Err(format!("--out {} is the model's own folder: choose another folder", args.out.display()));
    }

    let mut planner = Planner::new(&dev, opts.clone()).map_err(|e| e.to_string())?;
    planner = match args.dense {
        DenseRef::Library => planner,
        DenseRef::Baseline => {
            planner.with_dense_reference(Box::new(BaselineDense)).with_extra_dense_reference(Box::new(LibraryDense::new()))
        }
    };
    let note = timing_note(&dev);
    eprintln!(
        "compress: {} ({} weights of {} tensors) on {} [{}], timer: {}",
        args.model.display(),
        n_weights,
        tensors.len(),
        dev.name(),
        dev.kind().name(),
        dev.backend().timer_name()
    );
    if let Some(n) = &note {
        eprintln!("compress: note: {n}");
    }

    let pb = progress(n_weights, "compress");
    let mut rows: Vec<Row> = Vec::new();
    let mut weight_map: BTreeMap<String, String> = BTreeMap::new();
    let shards = model.shard_names();
    for shard in &shards {
        let mut writer = CompressedWriter::new();
        for t in tensors.iter().filter(|t| &t.shard == shard) {
            let Some((out, inp)) = t.matrix else {
                writer.copy_tensor(&model, &t.name).map_err(|e| e.to_string())?;
                continue;
            };
            pb.set_message(format!("{} [{out}x{inp}]", t.name));
            let w = model.load_matrix(&t.name).map_err(|e| format!("{}: {e}", t.name))?;
            let given = calib.as_ref().and_then(|c| c.for_layer(&t.name, inp));
            let calib_desc = match (&calib, given) {
                (_, Some((n, m))) => format!("--calib tensor '{n}' ({} tokens)", m.rows),
                (Some(_), None) => format!("gaussian ({} tokens): --calib has no tensor of width {inp}", opts.calib_tokens),
                (None, None) => format!("gaussian ({} tokens)", opts.calib_tokens),
            };
            let mut plan = planner.plan(&t.name, &w, given.map(|g| g.1)).map_err(|e| format!("layer {}: {e}", t.name))?;
            let c = plan.pick(args.objective).clone();
            let pw = plan.take_weight(args.objective).ok_or_else(|| format!("layer {}: the pick has no weight", t.name))?;
            writer.add_layer(&t.name, &pw, &t.shape, Some((c.weight_err, c.output_err))).map_err(|e| e.to_string())?;
            for c in &mut plan.candidates {
                c.weight = None;
            }
            rows.push(Row { tensor: t.clone(), plan, calib: calib_desc });
            pb.inc(1);
        }
        for (k, v) in [
            ("slimgemm.budget", args.budget.to_string()),
            ("slimgemm.metric", args.metric.name().to_string()),
            ("slimgemm.objective", args.objective.name().to_string()),
            ("slimgemm.device", format!("{} ({})", dev.name(), dev.kind().name())),
        ] {
            writer.set_metadata(k, &v);
        }
        for n in writer.tensor_names() {
            weight_map.insert(n, shard.clone());
        }
        writer.write(args.out.join(shard)).map_err(|e| e.to_string())?;
    }
    pb.finish_and_clear();
    if shards.len() > 1 {
        let index = json!({ "metadata": { "slimgemm.layout": slimgemm::plan::io::LAYOUT_VERSION }, "weight_map": weight_map });
        write(&args.out.join("model.safetensors.index.json"), &serde_json::to_string_pretty(&index).unwrap_or_default())?;
    }

    print_rows(&rows, args, &dev, note.as_deref(), &planner);
    let wall = start.elapsed().as_secs_f64();
    let report = report(&rows, args, &dev, note.as_deref(), &planner, wall, tensors.len());
    write(&args.out.join("report.json"), &serde_json::to_string_pretty(&report).unwrap_or_default())?;
    let title = format!(
        "{}: {} layers, budget {} ({} error), {} on {}",
        args.model.file_name().map_or_else(|| args.model.display().to_string(), |f| f.to_string_lossy().into_owned()),
        rows.len(),
        args.budget,
        args.metric.name(),
        args.objective.name(),
        dev.kind().name()
    );
    write(&args.out.join("plot.svg"), &plot_svg(&rows, args, &title, &dev.name(), note.as_deref()))?;
    println!(
        "wrote {} ({} shard{}), report.json, plot.svg in {} ({:.1} s)",
        if shards.len() == 1 { shards[0].clone() } else { "the compressed shards".into() },
        shards.len(),
        if shards.len() == 1 { "" } else { "s" },
        args.out.display(),
        wall
    );
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Per token count: (dense seconds, picked seconds), summed over layers (NaN if any is
/// missing).
fn totals(rows: &[Row], objective: Objective, tokens: usize) -> (Vec<f64>, Vec<f64>) {
    let mut dense = vec![0f64; tokens];
    let mut pick = vec![0f64; tokens];
    for r in rows {
        let p = r.plan.pick(objective);
        for i in 0..tokens {
            dense[i] += r.plan.dense.get(i).map_or(f64::NAN, |d| d.seconds);
            pick[i] += p.times.as_ref().and_then(|t| t.get(i).copied()).unwrap_or(f64::NAN);
        }
    }
    (dense, pick)
}

fn print_rows(rows: &[Row], args: &Args, dev: &Device, note: Option<&str>, planner: &Planner) {
    let tokens = &args.tokens;
    let mut header: Vec<String> = ["layer", "shape", "pick", "out err", "w err", "bytes", "/dense"].map(String::from).to_vec();
    for t in tokens {
        header.push(format!("t@{t}"));
    }
    for t in tokens {
        header.push(format!("x@{t}"));
    }
    let mut table = Vec::new();
    let (mut dense_bytes, mut pick_bytes) = (0u64, 0u64);
    for r in rows {
        let p = &r.plan;
        let c = p.pick(args.objective);
        let db = p.candidates[0].bytes.unwrap_or(0);
        let cb = c.bytes.unwrap_or(db);
        dense_bytes += db;
        pick_bytes += cb;
        let mut row = vec![
            p.name.clone(),
            format!("{}x{}", p.out_features, p.in_features),
            c.variant.label(p.out_features, p.in_features),
            fmt_err(c.output_err),
            fmt_err(c.weight_err),
            fmt_bytes(cb),
            format!("{:.2}", cb as f64 / db.max(1) as f64),
        ];
        let times = c.times.clone().unwrap_or_default();
        for i in 0..tokens.len() {
            row.push(times.get(i).map_or("-".into(), |s| fmt_time(*s)));
        }
        for i in 0..tokens.len() {
            row.push(match (times.get(i), p.dense.get(i)) {
                (Some(s), Some(d)) => format!("{:.2}", d.seconds / s),
                _ => "-".into(),
            });
        }
        table.push(row);
    }
    let (dense, pick) = totals(rows, args.objective, tokens.len());
    let mut total = vec![
        "TOTAL".to_string(),
        format!("{} layers", rows.len()),
        String::new(),
        String::new(),
        String::new(),
        fmt_bytes(pick_bytes),
        format!("{:.2}", pick_bytes as f64 / dense_bytes.max(1) as f64),
    ];
    total.extend(pick.iter().map(|s| fmt_time(*s)));
    total.extend(dense.iter().zip(&pick).map(|(d, s)| format!("{:.2}", d / s)));
    table.push(total);
    println!(
        "slimgemm compress: budget {} on the {} error, objective {}, {} activations, device {} [{}]",
        args.budget,
        args.metric.name(),
        args.objective.name(),
        if args.dtype == ActDtype::F16 { "f16" } else { "f32" },
        dev.name(),
        dev.kind().name()
    );
    println!("dense reference (x@T = dense time / pick time at T tokens): {}", planner.dense_references()[0]);
    if let Some(r) = rows.first() {
        for (i, d) in r.plan.dense.iter().enumerate() {
            println!("  first layer, {} tokens: {} = {}", tokens[i], d.what, fmt_time(d.seconds));
        }
    }
    if let Some(n) = note {
        println!("NOTE: {n}");
    }
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    print_table(&h, &table);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *counts.entry(r.plan.pick(args.objective).variant.family_name()).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("picks: {}", counts.join(", "));
}

fn report(rows: &[Row], args: &Args, dev: &Device, note: Option<&str>, planner: &Planner, wall: f64, n_tensors: usize) -> Value {
    let tokens = &args.tokens;
    let layers: Vec<Value> = rows
        .iter()
        .map(|r| {
            let p = &r.plan;
            let cand = |c: &slimgemm::plan::Candidate| {
                json!({
                    "variant": c.variant.to_string(),
                    "label": c.variant.label(p.out_features, p.in_features),
                    "format": c.variant.family_name(),
                    "weight_err": num(c.weight_err),
                    "output_err": num(c.output_err),
                    "within_budget": c.within_budget,
                    "bytes": c.bytes,
                    "times_s": c.times.as_ref().map(|t| t.iter().map(|s| num(*s)).collect::<Vec<_>>()),
                    "speedup": c.speedup.map(num),
                    "note": c.note,
                })
            };
            json!({
                "name": p.name,
                "shard": r.tensor.shard,
                "source_dtype": r.tensor.dtype,
                "orig_shape": r.tensor.shape,
                "shape": [p.out_features, p.in_features],
                "calibration": r.calib,
                "pick": cand(p.pick(args.objective)),
                "fastest": p.candidates[p.fastest].variant.to_string(),
                "smallest": p.candidates[p.smallest].variant.to_string(),
                "dense": p.dense.iter().map(|d| json!({"what": d.what, "seconds": num(d.seconds)})).collect::<Vec<_>>(),
                "extra_dense": p.extra_dense.iter().map(|v| v.iter().map(|d| json!({"what": d.what, "seconds": num(d.seconds)})).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "candidates": p.candidates.iter().map(cand).collect::<Vec<_>>(),
                "notes": p.notes,
                "error_evaluations": p.evaluations,
                "forward_timings": p.timed,
                "seconds": num(p.seconds),
            })
        })
        .collect();
    let (dense, pick) = totals(rows, args.objective, tokens.len());
    let dense_bytes: u64 = rows.iter().map(|r| r.plan.candidates[0].bytes.unwrap_or(0)).sum();
    let pick_bytes: u64 = rows.iter().map(|r| r.plan.pick(args.objective).bytes.unwrap_or(0)).sum();
    json!({
        "tool": "slimgemm compress",
        "version": env!("CARGO_PKG_VERSION"),
        "model": args.model.display().to_string(),
        "out": args.out.display().to_string(),
        "device": {"backend": dev.kind().name(), "name": dev.name(), "timer": dev.backend().timer_name()},
        "timing_note": note,
        "budget": args.budget,
        "metric": args.metric.name(),
        "objective": args.objective.name(),
        "tokens": tokens,
        "dtype": if args.dtype == ActDtype::F16 { "f16" } else { "f32" },
        "formats": planner.options().formats.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "calibration": match &args.calib { Some(p) => p.display().to_string(), None => format!("gaussian N(0,1), {} tokens", args.calib_tokens) },
        "dense_reference": planner.dense_references()[0],
        "extra_dense_references": planner.dense_references()[1..].to_vec(),
        "times_are": "median seconds of forward (PlannedLinear / Linear::forward as a user calls it, output allocation and, for CSR and 2:4, the device transposes included) per token count",
        "layers": layers,
        "copied_tensors": n_tensors - rows.len(),
        "totals": {
            "layers": rows.len(),
            "dense_bytes": dense_bytes,
            "compressed_bytes": pick_bytes,
            "bytes_ratio": num(pick_bytes as f64 / dense_bytes.max(1) as f64),
            "per_tokens": tokens.iter().enumerate().map(|(i, t)| json!({
                "tokens": t, "dense_s": num(dense[i]), "compressed_s": num(pick[i]), "speedup": num(dense[i] / pick[i])
            })).collect::<Vec<_>>(),
            "picks": rows.iter().fold(BTreeMap::<String, usize>::new(), |mut m, r| { *m.entry(r.plan.pick(args.objective).variant.family_name().to_string()).or_default() += 1; m }),
        },
        "wall_s": num(wall),
    })
}

mod plot;
#[allow(unused_imports)]
use plot::*;

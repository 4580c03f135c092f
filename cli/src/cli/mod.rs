//! The command-line tool: argument parsing, backend selection and table printing shared by
//! the subcommands.

mod bench;
mod compress;
mod info;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use slimgemm::{BackendKind, Device};

/// GPU kernels for compressed linear algebra: sparse, low-rank, quantized and binary GEMM
/// on CUDA, WGSL (wgpu) and a CPU reference.
#[derive(Debug, Parser)]
#[command(name = "slimgemm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Lists every backend found (CPU, each wgpu adapter, each CUDA device) or why it is absent,
    /// the CUDA driver / NVRTC / vendor library versions and files loaded, and what has been
    /// verified on hardware.
    Info {
        /// Print only the "verified on hardware" table, as Markdown.
        #[arg(long)]
        status_markdown: bool,
    },
    /// Runs every op x dtype at small, ragged and realistic shapes on each backend and compares
    /// with the CPU reference (the CPU itself with independent dense formulations).
    Verify {
        /// cpu, wgpu, cuda (comma-separated) or all. A backend named explicitly must be present.
        #[arg(long, default_value = "all")]
        backend: String,
        /// Only these ops (comma-separated op names).
        #[arg(long, value_delimiter = ',')]
        op: Vec<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Which cases: `verify` (every op x dtype at small, ragged and realistic shapes) or
        /// `small` (the cases of at most 4 MFLOP: ragged shapes of every op, for
        /// compute-sanitizer runs).
        #[arg(long, value_enum, default_value_t = VerifySuite::Verify)]
        suite: VerifySuite,
    },
    /// Compiles every CUDA kernel with NVRTC for each architecture (no GPU needed).
    CheckKernels {
        /// Architectures, comma-separated (default: the CI list, sm_75,sm_80,sm_89,sm_90).
        #[arg(long, value_delimiter = ',')]
        arch: Vec<String>,
    },
    /// Times each workload of a suite on each backend with its baselines and roofline.
    Bench {
        /// cpu, wgpu, cuda (comma-separated) or all. A backend named explicitly must be present.
        #[arg(long, default_value = "all")]
        backend: String,
        /// Only these ops (comma-separated op names).
        #[arg(long, value_delimiter = ',')]
        op: Vec<String>,
        /// Which workloads.
        #[arg(long, value_enum, default_value_t = SuiteName::Quick)]
        suite: SuiteName,
        /// DLMC directory for `--suite dlmc` (default: $SLIMGEMM_DLMC_DIR).
        #[arg(long)]
        dlmc: Option<std::path::PathBuf>,
        /// For `--suite dlmc`: only these sparsities (comma-separated, e.g. 0.9,0.98).
        #[arg(long, value_delimiter = ',')]
        sparsity: Vec<f64>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Writes a roofline chart (SVG) to this file.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
        /// Timed runs per row and per baseline (median reported).
        #[arg(long, default_value_t = 50)]
        iters: usize,
        /// Untimed warm-up runs (default: iters / 10, at least 1).
        #[arg(long)]
        warmup: Option<usize>,
        /// Only the first N workloads (after the --op and --sparsity filters).
        #[arg(long)]
        limit: Option<usize>,
        /// Skip the CPU reference check of rows above this many GFLOP.
        #[arg(long, default_value_t = 20.0)]
        check_max_gflop: f64,
    },
    /// Plans every weight of a dense safetensors model (a file or a folder of shards): for each
    /// 2-D weight (and conv weight, reshaped) the fastest (or smallest) compressed format within
    /// the error budget, timed on this device; writes the compressed model, report.json and
    /// plot.svg to --out.
    Compress {
        /// A .safetensors file, or a folder of shards (the dense weights of a Hugging Face model).
        model: std::path::PathBuf,
        /// The error budget: largest relative error allowed per layer (e.g. 0.02).
        #[arg(long, allow_hyphen_values = true)]
        budget: f64,
        /// What the picks optimize within the budget.
        #[arg(long, value_enum, default_value_t = ObjectiveArg::Speed)]
        objective: ObjectiveArg,
        /// Which relative error the budget bounds: of the layer's output on the calibration
        /// activations, or of the weight.
        #[arg(long, value_enum, default_value_t = MetricArg::Output)]
        metric: MetricArg,
        /// Token counts (rows of x) each candidate is timed at (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,64")]
        tokens: Vec<usize>,
        /// best, cpu, wgpu or cuda: the one device candidates are timed on.
        #[arg(long, default_value = "best")]
        backend: String,
        /// Format families to try, comma-separated: csr, 2:4, lowrank, int8, int4, binary, all,
        /// default (all but binary).
        #[arg(long, default_value = "default")]
        formats: String,
        /// Calibration activations (safetensors): per layer the tensor named like the layer,
        /// else the first [tokens, in] tensor of the layer's width; Gaussian otherwise.
        #[arg(long)]
        calib: Option<std::path::PathBuf>,
        /// Rows of the Gaussian calibration activations.
        #[arg(long, default_value_t = 64)]
        calib_tokens: usize,
        /// Activation dtype of the compressed layers.
        #[arg(long, value_enum, default_value_t = compress::ActDtype::F32)]
        dtype: compress::ActDtype,
        /// The dense layer the speedups are relative to.
        #[arg(long, value_enum, default_value_t = compress::DenseRef::Library)]
        dense: compress::DenseRef,
        /// Most timed runs per measurement (median reported).
        #[arg(long, default_value_t = 25)]
        iters: usize,
        /// Output folder: the compressed safetensors shard(s), report.json, plot.svg.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// `--objective` of `compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ObjectiveArg {
    /// The best speedup over the dense layer.
    Speed,
    /// The fewest bytes on the device.
    Size,
}

/// `--metric` of `compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MetricArg {
    /// Relative error of the layer's output on the calibration activations.
    Output,
    /// Relative Frobenius error of the weight.
    Weight,
}

/// Case lists of `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VerifySuite {
    /// Every op x dtype at small, ragged and realistic shapes.
    Verify,
    /// The cases of at most 4 MFLOP (every op, ragged shapes): for compute-sanitizer.
    Small,
}

/// Workload suites of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SuiteName {
    /// A handful per op (minutes on a CPU or lavapipe).
    Quick,
    /// The workloads of the literature (LLM, BERT, ResNet shapes); for GPUs.
    Full,
    /// Every matrix of a DLMC directory.
    Dlmc,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Info { status_markdown } => info::info(status_markdown),
        Cmd::Verify { backend, op, json, suite } => verify::verify(&backend, &op, json, suite),
        Cmd::CheckKernels { arch } => info::check_kernels(&arch),
        Cmd::Bench { backend, op, suite, dlmc, sparsity, json, plot, iters, warmup, limit, check_max_gflop } => {
            let opts = crate::suite::run::BenchOptions {
                iters: iters.max(1),
                warmup: warmup.unwrap_or((iters / 10).max(1)),
                check_max_flops: check_max_gflop * 1e9,
                ..Default::default()
            };
            bench::bench(&bench::Args { backend, op, suite, dlmc, sparsity, json, plot, limit, opts })
        }
        Cmd::Compress { model, budget, objective, metric, tokens, backend, formats, calib, calib_tokens, dtype, dense, iters, out } => {
            compress::compress(&compress::Args {
                model,
                budget,
                objective: match objective {
                    ObjectiveArg::Speed => slimgemm::plan::Objective::Speed,
                    ObjectiveArg::Size => slimgemm::plan::Objective::Size,
                },
                metric: match metric {
                    MetricArg::Output => slimgemm::plan::ErrorMetric::Output,
                    MetricArg::Weight => slimgemm::plan::ErrorMetric::Weight,
                },
                tokens,
                backend,
                formats,
                calib,
                calib_tokens,
                dtype,
                dense,
                iters,
                out,
            })
        }
    };
    match res {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("slimgemm: error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// A backend that is not present, with the reason.
type Absent = (BackendKind, String);

/// The devices a `--backend` value selects, and the absent ones with their reasons. Fails if
/// a backend named explicitly is absent or the value is not understood.
fn select_backends(spec: &str) -> Result<(Vec<Device>, Vec<Absent>), String> {
    let all = [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda];
    let (kinds, explicit): (Vec<BackendKind>, bool) = if spec.trim() == "all" {
        (all.to_vec(), false)
    } else {
        let mut v = Vec::new();
        for s in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let k: BackendKind = s.parse().map_err(|_| format!("unknown backend `{s}` (expected cpu, wgpu, cuda or all)"))?;
            if !v.contains(&k) {
                v.push(k);
            }
        }
        if v.is_empty() {
            return Err("--backend is empty (expected cpu, wgpu, cuda or all)".into());
        }
        (v, true)
    };
    let mut devices = Vec::new();
    let mut absent = Vec::new();
    for k in kinds {
        match Device::new(k) {
            Ok(d) => devices.push(d),
            Err(e) if explicit => return Err(format!("backend `{}` was requested but is not available: {e}", k.name())),
            Err(e) => absent.push((k, e.to_string())),
        }
    }
    Ok((devices, absent))
}

/// Checks `--op` names against the op list.
fn check_ops(ops: &[String]) -> Result<(), String> {
    for o in ops {
        if let Err(e) = o.parse::<slimgemm::Op>() {
            return Err(e.to_string());
        }
    }
    Ok(())
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(what.to_string());
    pb
}

/// Prints a table with left-aligned columns.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w.get(i).copied().unwrap_or(0))).collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.iter().map(|s| s.to_string()).collect());
    line(w.iter().map(|&n| "-".repeat(n)).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Formats a float for tables (`-` for NaN).
fn sci(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.2e}")
    }
}

/// JSON number or null for non-finite values.
fn num(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
}

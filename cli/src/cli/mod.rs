//! The command-line tool: argument parsing, backend selection and table printing shared by
//! the subcommands.

mod bench;
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

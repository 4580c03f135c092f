//! The DLMC suite: every matrix of a Deep Learning Matrix Collection directory (`.smtx` or
//! `.smtx.gz`, e.g. `shared/data/dlmc`), as the A of `C = A B` with N in {128, 256} and, for
//! convolution layers, N = batch x H*W from `rn50_batchsizes.txt`; and the per-sparsity
//! geometric-mean speedups over each baseline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Workload;
use slimgemm::formats::Csr;
use slimgemm::DType;
use slimgemm::{Error, Result};

/// Batch size of the conv-layer rows (N = batch x output H*W).
pub const CONV_BATCH: usize = 1;
/// The fixed N values of every matrix.
pub const FIXED_N: [usize; 2] = [128, 256];

/// One matrix of the collection.
#[derive(Debug, Clone)]
pub struct DlmcMatrix {
    /// Layer name (file name without `.smtx[.gz]`).
    pub name: String,
    /// Nominal sparsity from the directory name (e.g. 0.9), or the measured one.
    pub sparsity: f64,
    /// The file.
    pub path: PathBuf,
}

/// Loads a DLMC matrix with random values (deterministic for `seed`).
fn load_smtx(path: &Path, seed: u64) -> Result<Csr<f32>> {
    Csr::<f32>::load_smtx(path, seed)
}

/// Every `.smtx` / `.smtx.gz` file under `dir` (recursively), sorted by path, with its
/// sparsity taken from a parent directory named like `0.9`.
pub fn list(dir: &Path) -> Result<Vec<DlmcMatrix>> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.to_string_lossy().ends_with(".smtx") || p.to_string_lossy().ends_with(".smtx.gz") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| {
            let fname = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
            let name = fname.trim_end_matches(".gz").trim_end_matches(".smtx").to_string();
            let sparsity = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|s| s.to_string_lossy().parse::<f64>().ok())
                .filter(|s| (0.0..1.0).contains(s))
                .unwrap_or(f64::NAN);
            DlmcMatrix { name, sparsity, path }
        })
        .collect())
}

/// `layer -> output H*W` from `rn50_batchsizes.txt` in `dir` or any parent up to 3 levels.
pub fn batch_sizes(dir: &Path) -> BTreeMap<String, usize> {
    let mut d = Some(dir);
    for _ in 0..4 {
        let Some(cur) = d else { break };
        if let Ok(text) = std::fs::read_to_string(cur.join("rn50_batchsizes.txt")) {
            return text
                .lines()
                .filter_map(|l| {
                    let (name, n) = l.split_once(',')?;
                    Some((name.trim().to_string(), n.trim().parse().ok()?))
                })
                .collect();
        }
        d = cur.parent();
    }
    BTreeMap::new()
}

/// The suite's workloads: each matrix at N in [`FIXED_N`] and, for conv layers (H*W > 1),
/// N = [`CONV_BATCH`] x H*W; f32 SpMM. Matrices whose sparsity lies outside `sparsities`
/// (when given) are skipped.
pub fn workloads(dir: &Path, sparsities: Option<&[f64]>) -> Result<Vec<(DlmcMatrix, Workload)>> {
    let sizes = batch_sizes(dir);
    let mut out = Vec::new();
    let matrices = list(dir)?;
    if matrices.is_empty() {
        return Err(Error::parse(dir.display().to_string(), "no .smtx or .smtx.gz file found"));
    }
    for (i, m) in matrices.into_iter().enumerate() {
        if let Some(keep) = sparsities {
            if !keep.iter().any(|s| (s - m.sparsity).abs() < 1e-6) {
                continue;
            }
        }
        let a = load_smtx(&m.path, 0xD1C + i as u64)?;
        if a.nnz() == 0 {
            continue;
        }
        let mut ns: Vec<usize> = FIXED_N.to_vec();
        if let Some(&hw) = sizes.get(&m.name) {
            if hw > 1 && !ns.contains(&(CONV_BATCH * hw)) {
                ns.push(CONV_BATCH * hw);
            }
        }
        for n in ns {
            out.push((m.clone(), Workload::Spmm { a: a.clone(), n, dtype: DType::F32, beta: 0.0 }));
        }
    }
    Ok(out)
}

/// Geometric mean of positive values (NaN if none).
pub fn geomean(xs: &[f64]) -> f64 {
    let v: Vec<f64> = xs.iter().copied().filter(|x| *x > 0.0 && x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp()
}

/// One line of the DLMC summary: at one sparsity, the geometric-mean speedup of one backend
/// over one baseline (baseline time / our time) across `count` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedupSummary {
    /// Backend of our rows.
    pub backend: String,
    /// Nominal sparsity.
    pub sparsity: f64,
    /// Baseline name.
    pub baseline: String,
    /// Geometric-mean speedup.
    pub geomean: f64,
    /// Rows that had a time for this baseline.
    pub count: usize,
}

/// Groups `(backend, sparsity, baseline, speedup)` samples into per-sparsity geometric means.
pub fn summarize(samples: &[(String, f64, String, f64)]) -> Vec<SpeedupSummary> {
    let mut groups: BTreeMap<(String, i64, String), Vec<f64>> = BTreeMap::new();
    for (backend, s, base, r) in samples {
        groups.entry((backend.clone(), (s * 1000.0).round() as i64, base.clone())).or_default().push(*r);
    }
    groups
        .into_iter()
        .map(|((backend, s, baseline), rs)| SpeedupSummary {
            backend,
            sparsity: s as f64 / 1000.0,
            baseline,
            geomean: geomean(&rs),
            count: rs.len(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smtx_and_geomean() {
        let dir = std::env::temp_dir().join(format!("slimgemm-dlmc-{}", std::process::id()));
        let sub = dir.join("0.5");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("layer_a.smtx"), "2, 3, 3\n0 2 3\n0 2 1\n").unwrap();
        std::fs::write(dir.join("rn50_batchsizes.txt"), "layer_a,49\n").unwrap();
        let w = workloads(&dir, None).unwrap();
        assert_eq!(w.len(), 3, "N = 128, 256 and 49");
        let Workload::Spmm { a, .. } = &w[0].1 else { panic!("spmm expected") };
        assert_eq!((a.rows, a.cols, a.nnz()), (2, 3, 3));
        assert_eq!(w[0].0.sparsity, 0.5);
        std::fs::write(sub.join("bad.smtx"), "2, 3, 3\n0 2 3\n0 2\n").unwrap();
        assert!(workloads(&dir, None).is_err(), "nnz mismatch must be rejected");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!((geomean(&[2.0, 8.0]) - 4.0).abs() < 1e-12);
        let s = summarize(&[("cpu".into(), 0.9, "b".into(), 2.0), ("cpu".into(), 0.9, "b".into(), 0.5)]);
        assert_eq!(s.len(), 1);
        assert!((s[0].geomean - 1.0).abs() < 1e-12 && s[0].count == 2);
    }
}

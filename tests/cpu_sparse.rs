//! CPU reference of the sparse family (spmm, spmm_t, sddmm) through `Device::cpu()`, checked
//! against the dense formulations of `slimgemm::naive` (densify, then an f64 matmul), plus
//! the host CSR constructors and the DLMC `.smtx` loader.
//!
//! Tolerance: `slimgemm::compare::tolerance(dtype)` (f32 2e-4, f16 1e-2, relative to the
//! largest reference magnitude). The f16 reference input is the f16 data widened to f32, so
//! only output rounding and f16 accumulation order differ.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use slimgemm::compare::{errors, tolerance};
use slimgemm::formats::sparse::{load_smtx_pattern, parse_smtx, SmtxPattern};
use slimgemm::formats::{Csr, Matrix};
use slimgemm::{naive, DType, Device, Float};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn assert_close(got: &[f32], want: &[f32], dtype: DType, what: &str) {
    let e = errors(got, want);
    assert!(e.max_rel <= tolerance(dtype), "{what} ({dtype}): {e:?} exceeds tolerance {}", tolerance(dtype));
}

/// Runs spmm on the CPU device with `T` data and compares with `naive::spmm`.
#[allow(clippy::too_many_arguments)]
fn check_spmm<T: Float>(a: &Csr<f32>, n: usize, alpha: f32, beta: f32, c0: &Matrix<f32>, seed: u64) {
    let dev = Device::cpu();
    let a_t: Csr<T> = a.cast();
    let b_t = Matrix::<T>::random(a.cols, n, seed).unwrap();
    let c_t: Matrix<T> = c0.cast();
    // The reference sees exactly the values the device sees.
    let (a32, b32, c32) = (a_t.cast::<f32>(), b_t.to_f32(), c_t.to_f32());
    let want = naive::spmm(&a32, &b32, alpha, beta, &c32);
    let da = dev.upload_csr(&a_t).unwrap();
    let db = dev.upload_matrix(&b_t).unwrap();
    let mut dc = dev.upload_matrix(&c_t).unwrap();
    dev.spmm(&da, &db, &mut dc, alpha, beta).unwrap();
    let got = dev.download_f32(&dc).unwrap();
    assert_eq!((got.rows, got.cols), (a.rows, n));
    assert!(got.data.iter().all(|x| x.is_finite()), "non-finite output");
    assert_close(&got.data, &want, T::DTYPE, &format!("spmm {}x{}x{n} alpha {alpha} beta {beta}", a.rows, a.cols));
}

fn check_spmm_t<T: Float>(a: &Csr<f32>, n: usize, seed: u64) {
    let dev = Device::cpu();
    let a_t: Csr<T> = a.cast();
    let b_t = Matrix::<T>::random(a.rows, n, seed).unwrap();
    let want = naive::spmm_t(&a_t.cast(), &b_t.to_f32());
    let da = dev.upload_csr(&a_t).unwrap();
    let db = dev.upload_matrix(&b_t).unwrap();
    // C is overwritten: start from NaN so that a stale read would show.
    let mut dc = dev.upload_matrix(&Matrix::<T>::new(a.cols, n, vec![T::from_f32(f32::NAN); a.cols * n]).unwrap()).unwrap();
    dev.spmm_t(&da, &db, &mut dc).unwrap();
    let got = dev.download_f32(&dc).unwrap();
    assert_eq!((got.rows, got.cols), (a.cols, n));
    assert!(got.data.iter().all(|x| x.is_finite()), "spmm_t left stale NaN in C");
    assert_close(&got.data, &want, T::DTYPE, &format!("spmm_t {}x{}x{n}", a.rows, a.cols));
}

fn check_sddmm<T: Float>(a: &Csr<f32>, kd: usize, alpha: f32, beta: f32, seed: u64) {
    let dev = Device::cpu();
    let a_t: Csr<T> = a.cast();
    let x = Matrix::<T>::random(a.rows, kd, seed).unwrap();
    let y = Matrix::<T>::random(a.cols, kd, seed + 1).unwrap();
    let want = naive::sddmm(&a_t.cast(), &x.to_f32(), &y.to_f32(), alpha, beta);
    let mut da = dev.upload_csr(&a_t).unwrap();
    let (dx, dy) = (dev.upload_matrix(&x).unwrap(), dev.upload_matrix(&y).unwrap());
    dev.sddmm(&mut da, &dx, &dy, alpha, beta).unwrap();
    let got: Vec<f32> = dev.download_csr_values::<T>(&da).unwrap().iter().map(|v| v.to_f32()).collect();
    assert_eq!(got.len(), a.nnz());
    assert_close(&got, &want, T::DTYPE, &format!("sddmm {}x{} kd {kd} alpha {alpha} beta {beta}", a.rows, a.cols));
}

/// A CSR matrix with empty first, middle and last rows.
fn with_empty_rows() -> Csr<f32> {
    // rows 0, 3 and 5 empty; 6 x 9.
    let indptr = vec![0, 0, 3, 4, 4, 9, 9];
    let indices = vec![0, 4, 8, 2, 1, 2, 3, 5, 7];
    let data = (0..9).map(|i| (i as f32 - 4.5) / 5.0).collect();
    Csr::new(6, 9, indptr, indices, data).unwrap()
}

#[test]
fn spmm_alpha_beta_f32_f16() {
    let shapes = [(1, 1, 1), (1, 7, 3), (13, 1, 5), (37, 29, 11), (61, 97, 33), (64, 64, 16), (129, 31, 1)];
    for (s, &(m, k, n)) in shapes.iter().enumerate() {
        let a = Csr::<f32>::random(m, k, 0.3, s as u64).unwrap();
        if a.nnz() == 0 {
            continue;
        }
        let c0 = Matrix::<f32>::random(m, n, 100 + s as u64).unwrap();
        for &(alpha, beta) in &[(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25), (1.0, -1.0), (0.0, 3.0)] {
            check_spmm::<f32>(&a, n, alpha, beta, &c0, s as u64 + 7);
            check_spmm::<slimgemm::f16>(&a, n, alpha, beta, &c0, s as u64 + 7);
        }
    }
    let a = with_empty_rows();
    let c0 = Matrix::<f32>::random(6, 5, 3).unwrap();
    check_spmm::<f32>(&a, 5, 1.5, 0.5, &c0, 1);
    check_spmm::<slimgemm::f16>(&a, 5, 1.5, 0.5, &c0, 1);
}

#[test]
fn spmm_beta_zero_ignores_nan_in_c() {
    for &(m, k, n) in &[(1, 1, 1), (6, 9, 5), (31, 33, 7)] {
        let a = if m == 6 { with_empty_rows() } else { Csr::<f32>::random(m, k, if m * k == 1 { 1.0 } else { 0.5 }, 9).unwrap() };
        let nan = Matrix::new(m, n, vec![f32::NAN; m * n]).unwrap();
        // naive::spmm ignores C when beta == 0, so the reference is NaN-free.
        check_spmm::<f32>(&a, n, 1.0, 0.0, &nan, 4);
        check_spmm::<slimgemm::f16>(&a, n, -0.5, 0.0, &nan, 4);
    }
}

#[test]
fn spmm_beta_nonzero_reads_c() {
    // With beta != 0 the old C matters: a zero A gives beta * C exactly.
    let dev = Device::cpu();
    let a = Csr::<f32>::new(2, 3, vec![0, 1, 1], vec![2], vec![0.0]).unwrap();
    let b = Matrix::<f32>::random(3, 4, 1).unwrap();
    let c = Matrix::<f32>::random(2, 4, 2).unwrap();
    let (da, db) = (dev.upload_csr(&a).unwrap(), dev.upload_matrix(&b).unwrap());
    let mut dc = dev.upload_matrix(&c).unwrap();
    dev.spmm(&da, &db, &mut dc, 1.0, 2.0).unwrap();
    let got = dev.download_matrix::<f32>(&dc).unwrap();
    let want: Vec<f32> = c.data.iter().map(|x| 2.0 * x).collect();
    assert_eq!(got.data, want);
}

#[test]
fn spmm_t_f32_f16() {
    for (s, &(m, k, n)) in [(1, 1, 1), (1, 13, 2), (17, 1, 3), (37, 29, 11), (97, 61, 33), (31, 129, 1)].iter().enumerate() {
        let a = Csr::<f32>::random(m, k, 0.25, 50 + s as u64).unwrap();
        if a.nnz() == 0 {
            continue;
        }
        check_spmm_t::<f32>(&a, n, s as u64);
        check_spmm_t::<slimgemm::f16>(&a, n, s as u64);
    }
    check_spmm_t::<f32>(&with_empty_rows(), 4, 3);
    check_spmm_t::<slimgemm::f16>(&with_empty_rows(), 4, 3);
}

#[test]
fn sddmm_alpha_beta_f32_f16() {
    for (s, &(m, n, kd)) in [(1, 1, 1), (1, 9, 5), (13, 1, 3), (37, 29, 11), (61, 97, 33), (33, 31, 64)].iter().enumerate() {
        let a = Csr::<f32>::random(m, n, 0.3, 80 + s as u64).unwrap();
        if a.nnz() == 0 {
            continue;
        }
        for &(alpha, beta) in &[(1.0, 0.0), (0.5, 1.0), (-1.0, 0.5), (0.0, 2.0)] {
            check_sddmm::<f32>(&a, kd, alpha, beta, s as u64);
            check_sddmm::<slimgemm::f16>(&a, kd, alpha, beta, s as u64);
        }
    }
    check_sddmm::<f32>(&with_empty_rows(), 7, 2.0, -1.0, 5);
}

#[test]
fn sddmm_beta_zero_ignores_nan_values() {
    let dev = Device::cpu();
    let mut a = with_empty_rows();
    a.data.iter_mut().for_each(|v| *v = f32::NAN);
    let x = Matrix::<f32>::random(6, 5, 1).unwrap();
    let y = Matrix::<f32>::random(9, 5, 2).unwrap();
    let want = naive::sddmm(&a, &x, &y, 1.0, 0.0);
    assert!(want.iter().all(|v| v.is_finite()));
    let mut da = dev.upload_csr(&a).unwrap();
    dev.sddmm(&mut da, &dev.upload_matrix(&x).unwrap(), &dev.upload_matrix(&y).unwrap(), 1.0, 0.0).unwrap();
    let got = dev.download_csr_values::<f32>(&da).unwrap();
    assert_close(&got, &want, DType::F32, "sddmm beta 0 over NaN values");
}

/// Sizes of the property tests: 1, primes, and sizes that are no multiple of 8/16/32.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(2), Just(3), Just(7), Just(13), Just(17), Just(31), Just(33), Just(47), 1usize..70]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn prop_spmm(m in dim(), k in dim(), n in dim(), density in 0.0f64..=1.0, alpha in -2.0f32..2.0,
                 beta in prop_oneof![Just(0.0f32), -1.0f32..1.0], seed in 0u64..1000, half in any::<bool>()) {
        let a = Csr::<f32>::random(m, k, density, seed).unwrap();
        let c0 = Matrix::<f32>::random(m, n, seed + 1).unwrap();
        if half {
            check_spmm::<slimgemm::f16>(&a, n, alpha, beta, &c0, seed + 2);
        } else {
            check_spmm::<f32>(&a, n, alpha, beta, &c0, seed + 2);
        }
    }

    #[test]
    fn prop_spmm_t(m in dim(), k in dim(), n in dim(), density in 0.0f64..=1.0, seed in 0u64..1000, half in any::<bool>()) {
        let a = Csr::<f32>::random(m, k, density, seed).unwrap();
        prop_assume!(a.nnz() > 0);
        if half { check_spmm_t::<slimgemm::f16>(&a, n, seed) } else { check_spmm_t::<f32>(&a, n, seed) }
    }

    #[test]
    fn prop_sddmm(m in dim(), n in dim(), kd in dim(), density in 0.0f64..=1.0, alpha in -2.0f32..2.0,
                  beta in prop_oneof![Just(0.0f32), -1.0f32..1.0], seed in 0u64..1000, half in any::<bool>()) {
        let a = Csr::<f32>::random(m, n, density, seed).unwrap();
        prop_assume!(a.nnz() > 0);
        if half { check_sddmm::<slimgemm::f16>(&a, kd, alpha, beta, seed) } else { check_sddmm::<f32>(&a, kd, alpha, beta, seed) }
    }

    #[test]
    fn prop_from_dense_keeps_largest(m in dim(), k in dim(), sparsity in 0.0f64..=1.0, seed in 0u64..1000, coarse in any::<bool>()) {
        let mut w = Matrix::<f32>::random(m, k, seed).unwrap();
        if coarse {
            // Many ties: magnitudes in {0, 0.25, 0.5, 0.75, 1}.
            w.data.iter_mut().for_each(|x| *x = (*x * 4.0).round() / 4.0);
        }
        check_pruning(&w, sparsity);
    }
}

/// Checks magnitude pruning: the kept count, the kept values, and that every kept entry
/// outranks every dropped one (larger magnitude, or equal magnitude and earlier position).
fn check_pruning(w: &Matrix<f32>, sparsity: f64) {
    let total = w.rows * w.cols;
    let keep = ((1.0 - sparsity) * total as f64).round() as usize;
    let a = Csr::from_dense(w, sparsity).unwrap();
    assert_eq!(a.nnz(), keep, "sparsity {sparsity} of {total}");
    let dense = a.to_dense();
    let mut kept = vec![false; total];
    for i in 0..a.rows {
        for p in a.indptr[i] as usize..a.indptr[i + 1] as usize {
            let pos = i * a.cols + a.indices[p] as usize;
            kept[pos] = true;
            assert_eq!(a.data[p], w.data[pos], "kept value changed");
        }
    }
    let rank = |p: usize| (w.data[p].abs(), std::cmp::Reverse(p));
    let worst_kept = (0..total).filter(|&p| kept[p]).map(rank).min_by(|x, y| x.partial_cmp(y).unwrap());
    let best_dropped = (0..total).filter(|&p| !kept[p]).map(rank).max_by(|x, y| x.partial_cmp(y).unwrap());
    if let (Some(wk), Some(bd)) = (worst_kept, best_dropped) {
        assert!(wk > bd, "kept {wk:?} ranks below dropped {bd:?}");
    }
    for (p, &k) in kept.iter().enumerate() {
        if !k {
            assert_eq!(dense.data[p], 0.0);
        }
    }
}

#[test]
fn from_dense_examples() {
    let w = Matrix::new(2, 3, vec![0.1f32, -5.0, 2.0, -0.5, 3.0, 0.2]).unwrap();
    // Keep 3 of 6: -5, 3, 2.
    let a = Csr::from_dense(&w, 0.5).unwrap();
    assert_eq!(a.indptr, vec![0, 2, 3]);
    assert_eq!(a.indices, vec![1, 2, 1]);
    assert_eq!(a.data, vec![-5.0, 2.0, 3.0]);
    assert_eq!(Csr::from_dense(&w, 0.0).unwrap().nnz(), 6);
    assert_eq!(Csr::from_dense(&w, 1.0).unwrap().nnz(), 0);
    // Ties: all equal magnitude, keep 2 -> the first two in row-major order.
    let t = Matrix::new(2, 2, vec![1.0f32, -1.0, 1.0, -1.0]).unwrap();
    let a = Csr::from_dense(&t, 0.5).unwrap();
    assert_eq!((a.indptr.clone(), a.indices.clone()), (vec![0, 2, 2], vec![0, 1]));
    check_pruning(&Matrix::<f32>::random(61, 97, 3).unwrap(), 0.9);
    assert_eq!(Csr::from_dense(&w.cast::<slimgemm::f16>(), 0.5).unwrap().nnz(), 3);
}

#[test]
fn random_csr_is_canonical_and_nonzero() {
    for &(m, k, d) in &[(1, 1, 1.0), (13, 31, 0.5), (64, 33, 0.05), (7, 7, 0.0)] {
        let a = Csr::<slimgemm::f16>::random(m, k, d, 11).unwrap();
        Csr::new(a.rows, a.cols, a.indptr.clone(), a.indices.clone(), a.data.clone()).unwrap();
        assert!(a.data.iter().all(|v| v.to_f32() != 0.0 && v.to_f32().abs() <= 1.0));
        assert_eq!(a, Csr::<slimgemm::f16>::random(m, k, d, 11).unwrap(), "not deterministic");
    }
    assert_eq!(Csr::<f32>::random(5, 5, 1.0, 1).unwrap().nnz(), 25);
}

/// The pattern of tests/data/small.smtx: 5 x 7, rows 1 empty.
fn small_pattern() -> SmtxPattern {
    SmtxPattern { rows: 5, cols: 7, indptr: vec![0, 2, 2, 5, 6, 8], indices: vec![1, 4, 0, 3, 6, 2, 5, 6] }
}

#[test]
fn smtx_fixture_plain_gz_and_sniffed() {
    for f in ["small.smtx", "small.smtx.gz", "small_gz_no_ext.smtx"] {
        let p = load_smtx_pattern(data_dir().join(f)).unwrap();
        assert_eq!(p, small_pattern(), "{f}");
        let a = Csr::<f32>::load_smtx(data_dir().join(f), 42).unwrap();
        assert_eq!((a.rows, a.cols, a.indptr.clone(), a.indices.clone()), (5, 7, p.indptr.clone(), p.indices.clone()));
        assert!(a.data.iter().all(|&v| v != 0.0 && (-1.0..1.0).contains(&v)), "{:?}", a.data);
        // Deterministic by seed, different across seeds.
        assert_eq!(a, Csr::<f32>::load_smtx(data_dir().join(f), 42).unwrap());
        assert_ne!(a.data, Csr::<f32>::load_smtx(data_dir().join(f), 43).unwrap().data);
        let h = Csr::<slimgemm::f16>::load_smtx(data_dir().join(f), 42).unwrap();
        assert!(h.data.iter().all(|v| v.to_f32() != 0.0));
    }
    // The same text through the reader API, with CRLF line ends and no trailing newline.
    let text = "5, 7, 8\r\n0 2 2 5 6 8\r\n1 4 0 3 6 2 5 6";
    assert_eq!(parse_smtx(text.as_bytes(), "crlf").unwrap(), small_pattern());
    // Trailing blank lines are fine.
    let text = "5,7,8\n0 2 2 5 6 8\n1 4 0 3 6 2 5 6\n\n  \n";
    assert_eq!(parse_smtx(text.as_bytes(), "blank").unwrap(), small_pattern());
    // nnz = 0 with an empty (or absent) third line.
    let p = parse_smtx("2, 3, 0\n0 0 0\n".as_bytes(), "empty").unwrap();
    assert_eq!((p.rows, p.cols, p.nnz()), (2, 3, 0));
}

#[test]
fn smtx_loaded_matrix_multiplies_like_naive() {
    let a = Csr::<f32>::load_smtx(data_dir().join("small.smtx.gz"), 1).unwrap();
    let c0 = Matrix::<f32>::random(5, 3, 2).unwrap();
    check_spmm::<f32>(&a, 3, 1.0, 0.5, &c0, 3);
}

/// The shared DLMC directory: `SLIMGEMM_DLMC_DIR`, else `../shared/data/dlmc` next to the
/// crate. `None` (with a printed reason) if absent, a failure if `CI` is set.
fn dlmc_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SLIMGEMM_DLMC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dlmc"));
    if dir.join("dlmc.csv").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the DLMC data is missing at {} (set SLIMGEMM_DLMC_DIR)", dir.display());
    }
    eprintln!("skipping DLMC test: no dlmc.csv in {} (set SLIMGEMM_DLMC_DIR)", dir.display());
    None
}

struct CsvRow {
    file: PathBuf,
    level: String,
    rows: usize,
    cols: usize,
    nnz: usize,
}

fn read_dlmc_csv(dir: &Path) -> Vec<CsvRow> {
    let text = std::fs::read_to_string(dir.join("dlmc.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("dlmc.csv has no `{name}` column"));
    let (ip, ir, ic, inz) = (col("path"), col("nrows"), col("ncols"), col("nnz"));
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        // `dlmc/rn50/magnitude_pruning/0.7/x.smtx`, stored gzip-compressed.
        let rel = f[ip].strip_prefix("dlmc/").unwrap_or(f[ip]);
        let plain = dir.join(rel);
        let gz = dir.join(format!("{rel}.gz"));
        let file = if gz.is_file() { gz } else { plain };
        let level = Path::new(rel).parent().and_then(|p| p.file_name()).unwrap().to_string_lossy().into_owned();
        let num = |i: usize| f[i].trim().parse::<f64>().unwrap_or_else(|_| panic!("bad number {:?} in {line}", f[i])) as usize;
        out.push(CsvRow { file, level, rows: num(ir), cols: num(ic), nnz: num(inz) });
    }
    out
}

#[test]
fn dlmc_real_files_match_csv() {
    let Some(dir) = dlmc_dir() else { return };
    let rows = read_dlmc_csv(&dir);
    assert_eq!(rows.len(), 270, "the subset holds 54 matrices x 5 sparsity levels");
    let mut levels: Vec<&str> = rows.iter().map(|r| r.level.as_str()).collect();
    levels.sort();
    levels.dedup();
    assert_eq!(levels, ["0.7", "0.8", "0.9", "0.95", "0.98"]);
    for level in levels {
        let mut at: Vec<&CsvRow> = rows.iter().filter(|r| r.level == level).collect();
        at.sort_by_key(|r| r.nnz);
        // Smallest, a middle one and the largest of each level.
        for r in [at[0], at[1], at[at.len() / 2], at[at.len() - 1]] {
            let a = Csr::<f32>::load_smtx(&r.file, 7).unwrap_or_else(|e| panic!("{}: {e}", r.file.display()));
            assert_eq!((a.rows, a.cols, a.nnz()), (r.rows, r.cols, r.nnz), "{}", r.file.display());
            let want = 1.0 - r.nnz as f64 / (r.rows * r.cols) as f64;
            let lv: f64 = level.parse().unwrap();
            assert!((a.sparsity() - want).abs() < 1e-12 && (a.sparsity() - lv).abs() < 0.01, "{}", r.file.display());
        }
    }
    // One real pattern through the device, against naive.
    let small = rows.iter().filter(|r| r.level == "0.9").min_by_key(|r| r.nnz).unwrap();
    let a = Csr::<f32>::load_smtx(&small.file, 1).unwrap();
    let c0 = Matrix::<f32>::random(a.rows, 9, 2).unwrap();
    check_spmm::<f32>(&a, 9, 1.0, 0.0, &c0, 3);
    check_spmm_t::<f32>(&a, 9, 4);
    check_sddmm::<f32>(&a, 9, 1.0, 0.0, 5);
}

#[test]
fn large_shapes_take_the_threaded_path() {
    // Over 2^20 multiply-adds: the reference splits rows over threads; the result must not
    // change (odd sizes so that the row ranges are uneven).
    let a = Csr::<f32>::random(257, 301, 0.3, 17).unwrap();
    assert!(a.nnz() * 61 > 1 << 20 && a.nnz() * 53 > 1 << 20);
    let c0 = Matrix::<f32>::random(257, 61, 18).unwrap();
    check_spmm::<f32>(&a, 61, 0.75, 0.5, &c0, 19);
    check_spmm::<slimgemm::f16>(&a, 61, 1.0, 0.0, &c0, 19);
    check_sddmm::<f32>(&a, 53, 1.5, -0.5, 20);
    check_sddmm::<slimgemm::f16>(&a, 53, 1.0, 0.0, 20);
    check_spmm_t::<f32>(&a, 61, 21);
}

#[test]
fn dlmc_every_file_parses_and_matches_csv() {
    let Some(dir) = dlmc_dir() else { return };
    for r in read_dlmc_csv(&dir) {
        let p = load_smtx_pattern(&r.file).unwrap_or_else(|e| panic!("{}: {e}", r.file.display()));
        assert_eq!((p.rows, p.cols, p.nnz()), (r.rows, r.cols, r.nnz), "{}", r.file.display());
    }
}

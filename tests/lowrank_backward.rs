//! `lowrank_backward`: the CPU reference against the independent dense formulation of
//! `slimgemm::naive` (through the explicit `W = U V^T` and `dW = dY^T X`) and against finite
//! differences of the loss `<dY, X V U^T>`; its overwrite / accumulate contract (`beta = 0`
//! never reads dU and dV, which start as NaN; `beta = 1` adds; dX is always overwritten and
//! optional); the WGSL kernels against the CPU reference for f32 and f16 over ragged shapes,
//! each of dX, dU, dV judged separately with `slimgemm::compare::tolerance(dtype)`; and every
//! class of bad operand.

use crate::common;

use crate::common::expect;
use slimgemm::formats::{LowRank, Matrix};
use slimgemm::{f16, DType, Device, Error, Float, Result, Tensor};

/// Host inputs of one case, rounded to `T`.
struct Case {
    lr: LowRank<f32>,
    x: Matrix<f32>,
    dy: Matrix<f32>,
    du0: Matrix<f32>,
    dv0: Matrix<f32>,
}

fn case((b, n, m, r): (usize, usize, usize, usize), seed: u64, dtype: DType) -> Case {
    let round = |mat: Matrix<f32>| if dtype == DType::F16 { mat.cast::<f16>().to_f32() } else { mat };
    let lr = LowRank::<f32>::random(m, n, r, seed).unwrap();
    let (u, v) = (round(lr.u_matrix()), round(lr.v_matrix()));
    Case {
        lr: LowRank::new(m, n, r, u.data, v.data).unwrap(),
        x: round(Matrix::random(b, n, seed + 1).unwrap()),
        dy: round(Matrix::random(b, m, seed + 2).unwrap()),
        du0: round(Matrix::random(m, r, seed + 3).unwrap()),
        dv0: round(Matrix::random(n, r, seed + 4).unwrap()),
    }
}

fn up<T: Float>(dev: &Device, m: &Matrix<f32>) -> Tensor {
    dev.upload_matrix(&m.cast::<T>()).unwrap()
}

/// Runs the op on `dev` in dtype `T`; dU/dV start as `du0`/`dv0` (NaN when `beta == 0`), dX
/// as NaN. Returns `(dX, dU, dV)` as f32 (dX is `None` when not asked for).
fn run<T: Float>(dev: &Device, c: &Case, beta: f32, want_dx: bool) -> (Option<Matrix<f32>>, Matrix<f32>, Matrix<f32>) {
    let lr = LowRank::<T>::new(
        c.lr.m,
        c.lr.n,
        c.lr.r,
        c.lr.u.iter().map(|&x| T::from_f32(x)).collect(),
        c.lr.v.iter().map(|&x| T::from_f32(x)).collect(),
    )
    .unwrap();
    let nan = |m: &Matrix<f32>| Matrix::new(m.rows, m.cols, vec![f32::NAN; m.data.len()]).unwrap();
    let dl = dev.upload_lowrank(&lr).unwrap();
    let (x, dy) = (up::<T>(dev, &c.x), up::<T>(dev, &c.dy));
    let mut dx = up::<T>(dev, &nan(&c.x));
    let init = |m: &Matrix<f32>| if beta == 0.0 { up::<T>(dev, &nan(m)) } else { up::<T>(dev, m) };
    let (mut du, mut dv) = (init(&c.du0), init(&c.dv0));
    dev.lowrank_backward(&dl, &x, &dy, if want_dx { Some(&mut dx) } else { None }, &mut du, &mut dv, beta).unwrap();
    let dx = want_dx.then(|| dev.download_f32(&dx).unwrap());
    (dx, dev.download_f32(&du).unwrap(), dev.download_f32(&dv).unwrap())
}

fn mat(rows: usize, cols: usize, data: Vec<f32>) -> Matrix<f32> {
    Matrix::new(rows, cols, data).unwrap()
}

#[test]
fn cpu_matches_the_dense_formulation() {
    let cpu = Device::cpu();
    for (i, &shape) in [(1, 1, 1, 1), (5, 7, 13, 3), (31, 61, 97, 17), (2, 129, 33, 64)].iter().enumerate() {
        for beta in [0.0, 0.5, 1.0] {
            let c = case(shape, 10 + i as u64, DType::F32);
            let (b, n, m, r) = shape;
            let (ndx, ndu, ndv) = slimgemm::naive::lowrank_backward(&c.lr, &c.x, &c.dy, beta, &c.du0, &c.dv0);
            let (dx, du, dv) = run::<f32>(&cpu, &c, beta, true);
            let what = format!("{shape:?} beta={beta}");
            common::assert_close(&format!("dX {what}"), &dx.unwrap(), &mat(b, n, ndx), DType::F32);
            common::assert_close(&format!("dU {what}"), &du, &mat(m, r, ndu), DType::F32);
            common::assert_close(&format!("dV {what}"), &dv, &mat(n, r, ndv), DType::F32);
        }
    }
}

/// The loss `L = sum(dY * (X V U^T))` has exactly the gradients the op computes; central
/// differences of L (in f64) check the formulas themselves, independently of both codes.
#[test]
fn cpu_matches_finite_differences() {
    let (b, n, m, r) = (3, 5, 4, 2);
    let c = case((b, n, m, r), 77, DType::F32);
    let loss = |u: &[f64], v: &[f64], x: &[f64]| -> f64 {
        let mut l = 0.0;
        for i in 0..b {
            for j in 0..m {
                let y: f64 = (0..r).map(|q| (0..n).map(|k| x[i * n + k] * v[k * r + q]).sum::<f64>() * u[j * r + q]).sum();
                l += c.dy.data[i * m + j] as f64 * y;
            }
        }
        l
    };
    let f64s = |s: &[f32]| s.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (u, v, x) = (f64s(&c.lr.u), f64s(&c.lr.v), f64s(&c.x.data));
    let h = 1e-4;
    let numeric = |which: usize, p: usize| {
        let (mut a, mut bb) = ((u.clone(), v.clone(), x.clone()), (u.clone(), v.clone(), x.clone()));
        let (pa, pb) = match which {
            0 => (&mut a.0, &mut bb.0),
            1 => (&mut a.1, &mut bb.1),
            _ => (&mut a.2, &mut bb.2),
        };
        pa[p] += h;
        pb[p] -= h;
        (loss(&a.0, &a.1, &a.2) - loss(&bb.0, &bb.1, &bb.2)) / (2.0 * h)
    };
    let (dx, du, dv) = run::<f32>(&Device::cpu(), &c, 0.0, true);
    let dx = dx.unwrap();
    for (which, got) in [(0, &du.data), (1, &dv.data), (2, &dx.data)] {
        for (p, &g) in got.iter().enumerate() {
            let want = numeric(which, p);
            assert!((g as f64 - want).abs() < 1e-3 * (1.0 + want.abs()), "operand {which} element {p}: {g} vs {want}");
        }
    }
}

#[test]
fn overwrite_accumulate_and_optional_dx() {
    let cpu = Device::cpu();
    let c = case((7, 6, 5, 3), 5, DType::F32);
    // beta = 0: NaN starting values are never read.
    let (dx0, du0, dv0) = run::<f32>(&cpu, &c, 0.0, true);
    assert!(dx0.as_ref().unwrap().data.iter().chain(&du0.data).chain(&dv0.data).all(|v| v.is_finite()));
    // beta = 1 adds the old values exactly (up to f32 rounding).
    let (_, du1, dv1) = run::<f32>(&cpu, &c, 1.0, true);
    for (got, (g0, old)) in du1.data.iter().zip(du0.data.iter().zip(&c.du0.data)) {
        assert!((got - (g0 + old)).abs() <= 1e-5 * (1.0 + got.abs()));
    }
    for (got, (g0, old)) in dv1.data.iter().zip(dv0.data.iter().zip(&c.dv0.data)) {
        assert!((got - (g0 + old)).abs() <= 1e-5 * (1.0 + got.abs()));
    }
    // Without dX the factor gradients are the same.
    let (none, du2, dv2) = run::<f32>(&cpu, &c, 0.0, false);
    assert!(none.is_none());
    assert_eq!((du2.data, dv2.data), (du0.data, dv0.data));
}

fn check_against_cpu<T: Float>(dev: &Device, shape: (usize, usize, usize, usize), beta: f32, want_dx: bool, seed: u64) {
    let c = case(shape, seed, T::DTYPE);
    let (gx, gu, gv) = run::<T>(dev, &c, beta, want_dx);
    let (wx, wu, wv) = run::<T>(&Device::cpu(), &c, beta, want_dx);
    let what = format!("{} lowrank_backward (b, n, m, r) = {shape:?} beta={beta}", dev.kind().name());
    if want_dx {
        common::assert_close(&format!("dX {what}"), &gx.unwrap(), &wx.unwrap(), T::DTYPE);
    }
    common::assert_close(&format!("dU {what}"), &gu, &wu, T::DTYPE);
    common::assert_close(&format!("dV {what}"), &gv, &wv, T::DTYPE);
}

fn gpu_cases(dev: &Device) {
    let shapes = [(1, 1, 1, 1), (3, 7, 13, 3), (13, 31, 7, 5), (33, 61, 97, 17), (65, 129, 33, 64), (129, 33, 65, 1), (200, 96, 80, 70)];
    for (i, &shape) in shapes.iter().enumerate() {
        let beta = [0.0, 0.5, 1.0][i % 3];
        let want_dx = i % 4 != 1;
        check_against_cpu::<f32>(dev, shape, beta, want_dx, 100 + i as u64);
        check_against_cpu::<f16>(dev, shape, beta, want_dx, 200 + i as u64);
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_cpu() {
    let Some(dev) = common::wgpu_device() else { return };
    gpu_cases(&dev);
}

#[test]
fn cuda_matches_cpu() {
    let Some(dev) = common::cuda_device() else { return };
    gpu_cases(&dev);
}

// ---------------------------------------------------------------- bad operands

fn t(dev: &Device, rows: usize, cols: usize, dtype: DType) -> Tensor {
    dev.zeros(rows, cols, dtype).unwrap()
}

/// `m = 6, n = 4, r = 2` factors on a fresh CPU device.
fn factors(dtype: DType) -> (Device, slimgemm::DeviceLowRank) {
    let dev = Device::cpu();
    let lr = match dtype {
        DType::F16 => dev.upload_lowrank(&LowRank::<f16>::random(6, 4, 2, 1).unwrap()),
        _ => dev.upload_lowrank(&LowRank::<f32>::random(6, 4, 2, 1).unwrap()),
    };
    (dev, lr.unwrap())
}

#[test]
fn bad_shapes_dtypes_and_beta() {
    let (dev, lr) = factors(DType::F32);
    let f = DType::F32;
    let h = DType::F16;
    let (x, dy) = (t(&dev, 3, 4, f), t(&dev, 3, 6, f));
    let (mut dx, mut du, mut dv) = (t(&dev, 3, 4, f), t(&dev, 6, 2, f), t(&dev, 4, 2, f));
    dev.lowrank_backward(&lr, &x, &dy, Some(&mut dx), &mut du, &mut dv, 0.0).unwrap();
    let op = "lowrank_backward";
    expect(dev.lowrank_backward(&lr, &t(&dev, 3, 5, f), &dy, None, &mut du, &mut dv, 0.0), "Shape", &[op, "X is [3, 5], expected [3, 4]"]);
    expect(dev.lowrank_backward(&lr, &x, &t(&dev, 2, 6, f), None, &mut du, &mut dv, 0.0), "Shape", &["dY is [2, 6], expected [3, 6]"]);
    expect(dev.lowrank_backward(&lr, &x, &t(&dev, 3, 5, f), None, &mut du, &mut dv, 0.0), "Shape", &["dY is [3, 5], expected [3, 6]"]);
    expect(
        dev.lowrank_backward(&lr, &x, &dy, Some(&mut t(&dev, 4, 3, f)), &mut du, &mut dv, 0.0),
        "Shape",
        &["dX is [4, 3], expected [3, 4]"],
    );
    expect(dev.lowrank_backward(&lr, &x, &dy, None, &mut t(&dev, 6, 3, f), &mut dv, 0.0), "Shape", &["dU is [6, 3], expected [6, 2]"]);
    expect(dev.lowrank_backward(&lr, &x, &dy, None, &mut du, &mut t(&dev, 6, 2, f), 0.0), "Shape", &["dV is [6, 2], expected [4, 2]"]);
    expect(dev.lowrank_backward(&lr, &t(&dev, 3, 4, h), &dy, None, &mut du, &mut dv, 0.0), "DType", &["X is f16, expected f32"]);
    expect(dev.lowrank_backward(&lr, &x, &t(&dev, 3, 6, h), None, &mut du, &mut dv, 0.0), "DType", &["dY is f16, expected f32"]);
    expect(dev.lowrank_backward(&lr, &x, &dy, Some(&mut t(&dev, 3, 4, h)), &mut du, &mut dv, 0.0), "DType", &["dX is f16, expected f32"]);
    expect(dev.lowrank_backward(&lr, &x, &dy, None, &mut t(&dev, 6, 2, h), &mut dv, 0.0), "DType", &["dU is f16, expected f32"]);
    expect(dev.lowrank_backward(&lr, &x, &dy, None, &mut du, &mut t(&dev, 4, 2, h), 0.0), "DType", &["dV is f16, expected f32"]);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        expect(dev.lowrank_backward(&lr, &x, &dy, None, &mut du, &mut dv, bad), "Shape", &["beta = ", "must be finite"]);
    }
    // f16 factors with f32 operands.
    let (d16, lr16) = factors(DType::F16);
    expect(
        d16.lowrank_backward(&lr16, &t(&d16, 3, 4, f), &t(&d16, 3, 6, h), None, &mut t(&d16, 6, 2, h), &mut t(&d16, 4, 2, h), 0.0),
        "DType",
        &["X is f32, expected f16"],
    );
}

#[test]
fn operands_of_another_device() {
    let (dev, lr) = factors(DType::F32);
    let other = Device::cpu();
    let f = DType::F32;
    let operand = |r: Result<()>| match r {
        Err(Error::WrongDevice { operand, .. }) => operand,
        other => panic!("expected WrongDevice, got {other:?}"),
    };
    let mk = |d: &Device| (t(d, 3, 4, f), t(d, 3, 6, f), t(d, 3, 4, f), t(d, 6, 2, f), t(d, 4, 2, f));
    let (x, dy, mut dx, mut du, mut dv) = mk(&dev);
    let (ox, ody, mut odx, mut odu, mut odv) = mk(&other);
    assert_eq!(operand(other.lowrank_backward(&lr, &ox, &ody, None, &mut odu, &mut odv, 0.0)), "U");
    assert_eq!(operand(dev.lowrank_backward(&lr, &ox, &dy, None, &mut du, &mut dv, 0.0)), "X");
    assert_eq!(operand(dev.lowrank_backward(&lr, &x, &ody, None, &mut du, &mut dv, 0.0)), "dY");
    assert_eq!(operand(dev.lowrank_backward(&lr, &x, &dy, Some(&mut odx), &mut du, &mut dv, 0.0)), "dX");
    assert_eq!(operand(dev.lowrank_backward(&lr, &x, &dy, Some(&mut dx), &mut odu, &mut dv, 0.0)), "dU");
    assert_eq!(operand(dev.lowrank_backward(&lr, &x, &dy, None, &mut du, &mut odv, 0.0)), "dV");
}

/// The workload path (`slimgemm::workload`, what `slimgemm verify` and the op harness run):
/// the `lowrank_backward` rows of `verify_cases` and `ragged_cases` on the CPU against the
/// dense formulation, and on wgpu against the CPU reference.
#[test]
fn workload_rows_verify() {
    use slimgemm::workload::{expected, ragged_cases, verify_case, verify_cases};
    let mut rows: Vec<_> = verify_cases().unwrap().into_iter().filter(|w| w.op() == slimgemm::Op::LowrankBackward).collect();
    rows.extend(ragged_cases(3, 12).unwrap().into_iter().filter(|w| w.op() == slimgemm::Op::LowrankBackward));
    assert!(rows.len() >= 24);
    let mut devs = vec![Device::cpu()];
    #[cfg(feature = "wgpu")]
    devs.extend(common::wgpu_device());
    devs.extend(common::cuda_device());
    for dev in &devs {
        for w in &rows {
            let want = expected(dev.kind(), w).unwrap();
            let row = verify_case(dev, w, &want);
            assert!(row.pass, "{row:?}");
        }
    }
}

//! Smoke test of the foundation: every op on the CPU device against simple expectations.
use slimgemm::formats::{Csr, Matrix};
use slimgemm::{DType, Device};

#[test]
fn spmm_cpu_matches_dense() {
    let dev = Device::cpu();
    let a = Csr::<f32>::random(37, 29, 0.2, 3).unwrap();
    let b = Matrix::<f32>::random(29, 11, 4).unwrap();
    let (da, db) = (dev.upload_csr(&a).unwrap(), dev.upload_matrix(&b).unwrap());
    let mut dc = dev.zeros(37, 11, DType::F32).unwrap();
    dev.spmm(&da, &db, &mut dc, 1.0, 0.0).unwrap();
    let c = dev.download_matrix::<f32>(&dc).unwrap();
    let ad = a.to_dense();
    let mut want = vec![0f32; 37 * 11];
    for i in 0..37 {
        for j in 0..11 {
            want[i * 11 + j] = (0..29).map(|k| ad.get(i, k) * b.get(k, j)).sum();
        }
    }
    let e = slimgemm::compare::errors(&c.data, &want);
    assert!(e.max_rel < 1e-5, "{e:?}");
}

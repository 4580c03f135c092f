//! `spmm_t` reads the CSC-ordered copy of a CSR matrix's values cached at upload; `sddmm`
//! rewrites the values and must refresh that copy. On every backend present: sddmm, then
//! spmm_t, compared with the dense formulation of the updated matrix (f32 and f16, ragged
//! shapes, empty rows, beta = 0 and beta != 0, and a second round).

use crate::common;

use slimgemm::formats::{Csr, Matrix};
use slimgemm::{f16, Device, Float};

fn devices() -> Vec<Device> {
    let mut v = vec![Device::cpu()];
    v.extend(common::wgpu_device());
    v.extend(common::cuda_device());
    v
}

fn case<T: Float>(dev: &Device, (m, n, kd, nb): (usize, usize, usize, usize), seed: u64) {
    let a = Csr::<f32>::random(m, n, 0.3, seed).unwrap().cast::<T>();
    let mut da = dev.upload_csr(&a).unwrap();
    let mut pattern = a.clone();
    for round in 0..2u64 {
        let x = Matrix::<f32>::random(m, kd, seed + 10 * round + 1).unwrap().cast::<T>();
        let y = Matrix::<f32>::random(n, kd, seed + 10 * round + 2).unwrap().cast::<T>();
        let beta = if round == 0 { 0.0 } else { 0.5 };
        dev.sddmm(&mut da, &dev.upload_matrix(&x).unwrap(), &dev.upload_matrix(&y).unwrap(), 1.5, beta).unwrap();
        pattern.data = dev.download_csr_values::<T>(&da).unwrap();
        let b = Matrix::<f32>::random(m, nb, seed + 10 * round + 3).unwrap().cast::<T>();
        let mut dc = dev.upload_matrix(&Matrix::<f32>::random(n, nb, 9).unwrap().cast::<T>()).unwrap();
        dev.spmm_t(&da, &dev.upload_matrix(&b).unwrap(), &mut dc).unwrap();
        let got = dev.download_f32(&dc).unwrap();
        let want = slimgemm::naive::spmm_t(&pattern.cast::<f32>(), &b.to_f32());
        let want = Matrix::new(n, nb, want).unwrap();
        common::assert_close(&format!("{} spmm_t after sddmm round {round} {m}x{n} k{kd} n{nb}", dev.kind().name()), &got, &want, T::DTYPE);
    }
}

#[test]
fn spmm_t_sees_the_values_sddmm_wrote() {
    for dev in devices() {
        for (i, &s) in [(1, 1, 1, 1), (13, 31, 7, 5), (33, 17, 64, 12), (97, 61, 3, 33), (5, 129, 20, 4)].iter().enumerate() {
            case::<f32>(&dev, s, 10 + i as u64);
            case::<f16>(&dev, s, 20 + i as u64);
        }
    }
}

#[test]
fn matrix_without_stored_values() {
    for dev in devices() {
        let a = Csr::<f32>::new(2, 3, vec![0, 0, 0], vec![], vec![]).unwrap();
        let mut da = dev.upload_csr(&a).unwrap();
        let x = dev.upload_matrix(&Matrix::<f32>::random(2, 4, 1).unwrap()).unwrap();
        let y = dev.upload_matrix(&Matrix::<f32>::random(3, 4, 2).unwrap()).unwrap();
        dev.sddmm(&mut da, &x, &y, 1.0, 0.0).unwrap();
        let mut c = dev.upload_matrix(&Matrix::<f32>::new(3, 2, vec![7.0; 6]).unwrap()).unwrap();
        dev.spmm_t(&da, &dev.upload_matrix(&Matrix::<f32>::random(2, 2, 3).unwrap()).unwrap(), &mut c).unwrap();
        assert_eq!(dev.download_matrix::<f32>(&c).unwrap().data, vec![0.0; 6], "{}", dev.kind().name());
    }
}

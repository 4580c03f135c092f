//! Helpers of the checkpoint tests (`formats_checkpoint`, `formats_checkpoint_errors`):
//! safetensors tensors written with the `safetensors` crate, a quantized layer in plain arrays
//! with its GPTQ / AWQ encodings and an independent float dequantization, error matching.
#![cfg(feature = "hf")]
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::{serialize, Dtype};
use slimgemm::Error;

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn scale(&mut self) -> f16 {
        f16::from_f32(0.001 + self.below(1000) as f32 * 1e-4)
    }
}

/// One safetensors tensor: dtype, shape, little-endian bytes.
pub struct T(pub Dtype, pub Vec<usize>, pub Vec<u8>);

pub fn i32s(shape: &[usize], v: &[i32]) -> T {
    T(Dtype::I32, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
pub fn f16s(shape: &[usize], v: &[f16]) -> T {
    T(Dtype::F16, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
pub fn bf16s(shape: &[usize], v: &[bf16]) -> T {
    T(Dtype::BF16, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
pub fn f32s(shape: &[usize], v: &[f32]) -> T {
    T(Dtype::F32, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

pub fn st(tensors: Vec<(String, T)>) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        tensors.iter().map(|(n, T(d, s, b))| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    serialize(views, None).unwrap()
}

pub fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slimgemm-ckpt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn write(d: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(d.join(name), bytes).unwrap();
}

pub fn config(q: &str) -> String {
    format!(r#"{{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "quantization_config": {q}}}"#)
}

#[track_caller]
pub fn err_has<T: std::fmt::Debug>(r: slimgemm::Result<T>, kind: &str, needles: &[&str]) {
    let e = r.expect_err("expected an error");
    let k = match &e {
        Error::Parse { .. } => "Parse",
        Error::Format { .. } => "Format",
        Error::Shape { .. } => "Shape",
        Error::Io(_) => "Io",
        _ => "other",
    };
    let msg = e.to_string();
    assert_eq!(k, kind, "error kind of `{msg}`");
    for n in needles {
        assert!(msg.contains(n), "message `{msg}` should mention `{n}`");
    }
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A quantized layer in plain arrays: codes `q[k][n]`, zero points and scales per group
/// `[groups][n]`, the group of each input channel, and a bias.
pub struct Layer {
    pub k: usize,
    pub n: usize,
    pub group: usize,
    pub q: Vec<Vec<u8>>,
    pub z: Vec<Vec<u8>>,
    pub s: Vec<Vec<f16>>,
    pub g_idx: Vec<usize>,
    pub bias: Vec<f16>,
}

impl Layer {
    /// Random codes; zero points in `zmin..=15`; `act_order` assigns channels to groups
    /// through a random permutation (exactly `group` per group).
    pub fn random(k: usize, n: usize, group: usize, zmin: u8, act_order: bool, rng: &mut Rng) -> Layer {
        let groups = k / group;
        let q = (0..k).map(|_| (0..n).map(|_| rng.below(16) as u8).collect()).collect();
        let z = (0..groups).map(|_| (0..n).map(|_| zmin + rng.below(16 - zmin as u64) as u8).collect()).collect();
        let s = (0..groups).map(|_| (0..n).map(|_| rng.scale()).collect()).collect();
        let mut order: Vec<usize> = (0..k).collect();
        if act_order {
            for i in (1..k).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let mut g_idx = vec![0; k];
        for (i, &ch) in order.iter().enumerate() {
            g_idx[ch] = i / group;
        }
        let bias = (0..n).map(|_| f16::from_f32(rng.below(200) as f32 / 64.0 - 1.5)).collect();
        Layer { k, n, group, q, z, s, g_idx, bias }
    }

    /// Independent float formulation: `W[j, k] = (q[k][j] - z[g_idx[k]][j]) * s[g_idx[k]][j]`.
    pub fn expect(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.n * self.k];
        for j in 0..self.n {
            for kk in 0..self.k {
                let g = self.g_idx[kk];
                w[j * self.k + kk] = (self.q[kk][j] as f32 - self.z[g][j] as f32) * self.s[g][j].to_f32();
            }
        }
        w
    }

    pub fn scales(&self) -> Vec<f16> {
        self.s.iter().flatten().copied().collect()
    }

    /// GPTQ tensors; `v1` stores `zero - 1`.
    pub fn gptq(&self, prefix: &str, v1: bool, with_g_idx: bool, with_bias: bool) -> Vec<(String, T)> {
        let (k, n, groups) = (self.k, self.n, self.k / self.group);
        let mut qweight = vec![0u32; k / 8 * n];
        for kk in 0..k {
            for j in 0..n {
                qweight[(kk / 8) * n + j] |= (self.q[kk][j] as u32) << (4 * (kk % 8));
            }
        }
        let mut qzeros = vec![0u32; groups * n / 8];
        for g in 0..groups {
            for j in 0..n {
                let stored = if v1 { self.z[g][j] - 1 } else { self.z[g][j] } as u32;
                qzeros[g * (n / 8) + j / 8] |= stored << (4 * (j % 8));
            }
        }
        let as_i32 = |v: Vec<u32>| v.into_iter().map(|x| x as i32).collect::<Vec<_>>();
        let mut out = vec![
            (format!("{prefix}.qweight"), i32s(&[k / 8, n], &as_i32(qweight))),
            (format!("{prefix}.qzeros"), i32s(&[groups, n / 8], &as_i32(qzeros))),
            (format!("{prefix}.scales"), f16s(&[groups, n], &self.scales())),
        ];
        if with_g_idx {
            out.push((format!("{prefix}.g_idx"), i32s(&[k], &self.g_idx.iter().map(|&g| g as i32).collect::<Vec<_>>())));
        }
        if with_bias {
            out.push((format!("{prefix}.bias"), f16s(&[n], &self.bias)));
        }
        out
    }

    /// AWQ GEMM tensors: packed along N, nibble slot `i` holding column `8 c + [0, 2, 4, 6, 1, 3, 5, 7][i]`.
    pub fn awq(&self, prefix: &str) -> Vec<(String, T)> {
        const ORDER: [usize; 8] = [0, 2, 4, 6, 1, 3, 5, 7];
        let slot = |j: usize| ORDER.iter().position(|&c| c == j % 8).unwrap();
        let (k, n, groups) = (self.k, self.n, self.k / self.group);
        let mut qweight = vec![0u32; k * n / 8];
        for kk in 0..k {
            for j in 0..n {
                qweight[kk * (n / 8) + j / 8] |= (self.q[kk][j] as u32) << (4 * slot(j));
            }
        }
        let mut qzeros = vec![0u32; groups * n / 8];
        for g in 0..groups {
            for j in 0..n {
                qzeros[g * (n / 8) + j / 8] |= (self.z[g][j] as u32) << (4 * slot(j));
            }
        }
        let as_i32 = |v: Vec<u32>| v.into_iter().map(|x| x as i32).collect::<Vec<_>>();
        vec![
            (format!("{prefix}.qweight"), i32s(&[k, n / 8], &as_i32(qweight))),
            (format!("{prefix}.qzeros"), i32s(&[groups, n / 8], &as_i32(qzeros))),
            (format!("{prefix}.scales"), f16s(&[groups, n], &self.scales())),
        ]
    }
}

pub const GPTQ_64: &str = r#"{"quant_method": "gptq", "bits": 4, "group_size": 64, "desc_act": false, "sym": false}"#;

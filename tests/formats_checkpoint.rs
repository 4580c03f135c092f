//! Hugging Face GPTQ / AWQ checkpoints: single-file and sharded folders written with the
//! `safetensors` crate, GPTQ v1 and v2 zeros, act-order, AWQ, dense tensors and biases, each
//! dequantization against an independent float formulation written here; and every bad
//! checkpoint class (a clear error, never a panic).
#![cfg(feature = "hf")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::{serialize, Dtype};
use slimgemm::formats::checkpoint::{Checkpoint, QuantConfig, QuantMethod};
use slimgemm::formats::quant::GptqFormat;
use slimgemm::formats::{Int4Weights, Matrix};
use slimgemm::{Device, Error};

// ------------------------------------------------------------------ helpers

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn scale(&mut self) -> f16 {
        f16::from_f32(0.001 + self.below(1000) as f32 * 1e-4)
    }
}

/// One safetensors tensor: dtype, shape, little-endian bytes.
struct T(Dtype, Vec<usize>, Vec<u8>);

fn i32s(shape: &[usize], v: &[i32]) -> T {
    T(Dtype::I32, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
fn f16s(shape: &[usize], v: &[f16]) -> T {
    T(Dtype::F16, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
fn bf16s(shape: &[usize], v: &[bf16]) -> T {
    T(Dtype::BF16, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
fn f32s(shape: &[usize], v: &[f32]) -> T {
    T(Dtype::F32, shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn st(tensors: Vec<(String, T)>) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        tensors.iter().map(|(n, T(d, s, b))| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    serialize(views, None).unwrap()
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slimgemm-ckpt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(d: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(d.join(name), bytes).unwrap();
}

fn config(q: &str) -> String {
    format!(r#"{{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "quantization_config": {q}}}"#)
}

#[track_caller]
fn err_has<T: std::fmt::Debug>(r: slimgemm::Result<T>, kind: &str, needles: &[&str]) {
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

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A quantized layer in plain arrays: codes `q[k][n]`, zero points and scales per group
/// `[groups][n]`, the group of each input channel, and a bias.
struct Layer {
    k: usize,
    n: usize,
    group: usize,
    q: Vec<Vec<u8>>,
    z: Vec<Vec<u8>>,
    s: Vec<Vec<f16>>,
    g_idx: Vec<usize>,
    bias: Vec<f16>,
}

impl Layer {
    /// Random codes; zero points in `zmin..=15`; `act_order` assigns channels to groups
    /// through a random permutation (exactly `group` per group).
    fn random(k: usize, n: usize, group: usize, zmin: u8, act_order: bool, rng: &mut Rng) -> Layer {
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
    fn expect(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.n * self.k];
        for j in 0..self.n {
            for kk in 0..self.k {
                let g = self.g_idx[kk];
                w[j * self.k + kk] = (self.q[kk][j] as f32 - self.z[g][j] as f32) * self.s[g][j].to_f32();
            }
        }
        w
    }

    fn scales(&self) -> Vec<f16> {
        self.s.iter().flatten().copied().collect()
    }

    /// GPTQ tensors; `v1` stores `zero - 1`.
    fn gptq(&self, prefix: &str, v1: bool, with_g_idx: bool, with_bias: bool) -> Vec<(String, T)> {
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
    fn awq(&self, prefix: &str) -> Vec<(String, T)> {
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

const GPTQ_64: &str = r#"{"quant_method": "gptq", "bits": 4, "group_size": 64, "desc_act": false, "sym": false}"#;

// ------------------------------------------------------------------ good checkpoints

#[test]
fn gptq_v1_single_file_with_dense_tensors_and_bias() {
    let mut rng = Rng(1);
    let l = Layer::random(256, 16, 64, 1, false, &mut rng);
    let p = "model.layers.0.self_attn.q_proj";
    let mut t = l.gptq(p, true, true, true);
    let emb: Vec<f16> = (0..80).map(|i| f16::from_f32(i as f32 / 8.0 - 5.0)).collect();
    let norm: Vec<bf16> = (0..16).map(|i| bf16::from_f32(1.0 + i as f32 / 128.0)).collect();
    let head: Vec<f32> = (0..80).map(|i| (i as f32).sin()).collect();
    t.push(("model.embed_tokens.weight".into(), f16s(&[5, 16], &emb)));
    t.push(("model.norm.weight".into(), bf16s(&[16], &norm)));
    t.push(("lm_head.weight".into(), f32s(&[5, 16], &head)));
    let d = dir("v1");
    write(&d, "model.safetensors", &st(t));
    write(&d, "config.json", config(GPTQ_64).as_bytes());
    let c = Checkpoint::open(&d).unwrap();
    assert_eq!(
        c.config(),
        Some(&QuantConfig { method: QuantMethod::Gptq(GptqFormat::V1), bits: 4, group_size: 64, desc_act: false, sym: false })
    );
    assert_eq!(c.quantized_layers(), vec![p.to_string()]);
    assert_eq!(c.tensor_names().len(), 8);
    assert_eq!(c.tensor_info(&format!("{p}.qweight")), Some(("I32".to_string(), vec![32, 16])));
    let layer = c.load_layer(p).unwrap();
    assert_eq!(layer.name, p);
    assert_eq!((layer.weight.n, layer.weight.k, layer.weight.group), (16, 256, 64));
    assert!(layer.weight.perm.is_none() && layer.weight.mins.is_none());
    assert_eq!(bits(&layer.weight.dequantize().data), bits(&l.expect()));
    assert_eq!(layer.bias.unwrap(), l.bias.iter().map(|b| b.to_f32()).collect::<Vec<_>>());
    // Ready to upload (the plain form is supported on devices).
    Device::cpu().upload_int4(&layer.weight).unwrap();

    let e = c.load_matrix("model.embed_tokens.weight").unwrap();
    assert_eq!((e.rows, e.cols), (5, 16));
    assert_eq!(e.data, emb.iter().map(|v| v.to_f32()).collect::<Vec<_>>());
    let nrm = c.load_matrix("model.norm.weight").unwrap();
    assert_eq!((nrm.rows, nrm.cols), (1, 16));
    assert_eq!(nrm.data, norm.iter().map(|v| v.to_f32()).collect::<Vec<_>>());
    assert_eq!(c.load_matrix("lm_head.weight").unwrap(), Matrix::new(5, 16, head).unwrap());
    err_has(c.load_matrix(&format!("{p}.qweight")), "Format", &["dtype I32", "expected F32, F16 or BF16"]);
    err_has(c.load_matrix("nope"), "Parse", &["no tensor named 'nope'"]);
    assert!(format!("{c:?}").contains("model.safetensors"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn gptq_v2_zeros_from_quantize_config_json() {
    let mut rng = Rng(2);
    // v2 can store zero point 0 (classic GPTQ cannot).
    let mut l = Layer::random(128, 24, 32, 0, false, &mut rng);
    l.z[0][0] = 0;
    l.z[1][5] = 15;
    let p = "model.layers.3.mlp.down_proj";
    let d = dir("v2");
    write(&d, "model.safetensors", &st(l.gptq(p, false, false, false)));
    write(&d, "config.json", br#"{"model_type": "llama"}"#);
    write(&d, "quantize_config.json", br#"{"bits": 4, "group_size": 32, "desc_act": false, "sym": true, "checkpoint_format": "gptq_v2"}"#);
    let c = Checkpoint::open(&d).unwrap();
    assert_eq!(c.config().unwrap().method, QuantMethod::Gptq(GptqFormat::V2));
    let layer = c.load_layer(p).unwrap();
    assert!(layer.bias.is_none());
    assert_eq!(bits(&layer.weight.dequantize().data), bits(&l.expect()));
    assert_eq!(layer.weight.zeros[0], 0);
    // The same tensors read as classic v1 are off by one zero point (and 15 + 1 is refused).
    let v1 = Checkpoint::from_parts(
        Some(config(r#"{"bits": 4, "group_size": 32}"#).as_bytes()),
        None,
        vec![("model.safetensors".into(), std::fs::read(d.join("model.safetensors")).unwrap())],
    )
    .unwrap();
    err_has(v1.load_layer(p), "Format", &["stores 15", "zero point 16"]);
    // GPTQModel's older key `format` is read too.
    let q = QuantConfig::from_json(br#"{"bits": 4, "group_size": 128, "format": "gptq_v2"}"#, "q").unwrap().unwrap();
    assert_eq!(q.method, QuantMethod::Gptq(GptqFormat::V2));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn gptq_act_order_sorts_channels_into_a_permutation() {
    let mut rng = Rng(3);
    let l = Layer::random(128, 8, 32, 1, true, &mut rng);
    assert!(l.g_idx.windows(2).any(|w| w[0] > w[1]), "g_idx is not monotone");
    let p = "model.layers.0.self_attn.o_proj";
    let c = Checkpoint::from_parts(
        Some(config(r#"{"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": true}"#).as_bytes()),
        None,
        vec![("model.safetensors".into(), st(l.gptq(p, true, true, true)))],
    )
    .unwrap();
    assert!(c.config().unwrap().desc_act);
    let w = c.load_layer(p).unwrap().weight;
    let perm = w.perm.clone().expect("act-order sets perm");
    // Groups are contiguous in stored order, and the sort is stable.
    for cc in 0..w.k {
        assert_eq!(l.g_idx[perm[cc] as usize], cc / w.group, "stored column {cc}");
        if cc % w.group != 0 {
            assert!(perm[cc - 1] < perm[cc], "stable within a group");
        }
        assert_eq!(w.original_column(cc), perm[cc] as usize);
    }
    // dequantize() (original order) equals dequantize-with-g_idx exactly.
    assert_eq!(bits(&w.dequantize().data), bits(&l.expect()));
    // Y = X W^T = X[:, perm] W_stored^T.
    let x = Matrix::<f32>::random(3, w.k, 4).unwrap();
    let wd = w.dequantize();
    for i in 0..3 {
        for j in 0..w.n {
            let a: f64 = (0..w.k).map(|kk| x.get(i, kk) as f64 * wd.get(j, kk) as f64).sum();
            let b: f64 = (0..w.k).map(|cc| x.get(i, perm[cc] as usize) as f64 * w.dequant(j, cc) as f64).sum();
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "({i}, {j}): {a} vs {b}");
        }
    }
    // to_gptq writes the act-order tensors back exactly.
    let g = w.to_gptq().unwrap();
    assert_eq!(g.g_idx, l.g_idx.iter().map(|&v| v as i32).collect::<Vec<_>>());
    let back = Int4Weights::from_gptq_format(
        &g.qweight,
        &g.qzeros,
        &g.scales.iter().map(|s| s.to_f32()).collect::<Vec<_>>(),
        Some(&g.g_idx),
        w.k,
        w.n,
        w.group,
        GptqFormat::V1,
    )
    .unwrap();
    assert_eq!(back, w);
    // The classic converter still refuses act-order; devices take it: a Linear layer made from
    // the checkpoint's layer gathers X's columns through perm on the device, and equals X times
    // the weight dequantized with g_idx (the file's own convention), plus the bias.
    err_has(Int4Weights::from_gptq(&g.qweight, &g.qzeros, &g.scales, Some(&g.g_idx), w.k, w.n, w.group), "Format", &["act-order"]);
    err_has(w.to_awq(), "Format", &["act-order"]);
    let dev = Device::cpu();
    let layer = slimgemm::Linear::from_quant_linear(&dev, c.load_layer(p).unwrap(), slimgemm::DType::F32).unwrap();
    let y = dev.download_f32(&layer.forward(&dev.upload_matrix(&x).unwrap()).unwrap()).unwrap();
    let gi = l.expect();
    for i in 0..3 {
        for j in 0..w.n {
            let dot: f64 = (0..w.k).map(|kk| x.get(i, kk) as f64 * gi[j * w.k + kk] as f64).sum();
            let want = dot + l.bias[j].to_f64();
            let got = y.get(i, j) as f64;
            assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "({i}, {j}): {got} vs {want}");
        }
    }
}

#[test]
fn awq_gemm_checkpoint() {
    let mut rng = Rng(4);
    let l = Layer::random(256, 32, 128, 0, false, &mut rng);
    let p = "model.layers.1.mlp.gate_proj";
    let c = Checkpoint::from_parts(
        Some(config(r#"{"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": true, "version": "GEMM"}"#).as_bytes()),
        None,
        vec![("model.safetensors".into(), st(l.awq(p)))],
    )
    .unwrap();
    assert_eq!(c.config().unwrap().method, QuantMethod::Awq);
    assert!(!c.config().unwrap().sym);
    let w = c.load_layer(p).unwrap().weight;
    assert_eq!((w.n, w.k, w.group), (32, 256, 128));
    assert_eq!(bits(&w.dequantize().data), bits(&l.expect()));
    // AutoAWQ's own quant_config.json keys.
    let q =
        QuantConfig::from_json(br#"{"zero_point": true, "q_group_size": 64, "w_bit": 4, "version": "GEMM", "quant_method": "awq"}"#, "q")
            .unwrap()
            .unwrap();
    assert_eq!((q.method, q.group_size), (QuantMethod::Awq, 64));
}

/// Two layers spread over two shards (a layer's tensors split between them) plus dense tensors.
fn sharded(d: &Path) -> (Layer, Layer) {
    let mut rng = Rng(5);
    let l0 = Layer::random(128, 16, 64, 1, true, &mut rng);
    let l1 = Layer::random(64, 8, 64, 1, false, &mut rng);
    let mut t0 = l0.gptq("model.layers.0.self_attn.k_proj", true, true, true);
    let t1 = l1.gptq("model.layers.1.self_attn.v_proj", true, true, false);
    let rest: Vec<(String, T)> = t0.drain(2..).collect(); // scales, g_idx, bias go to shard 2
    let mut s1 = t0;
    s1.extend(t1);
    let mut s2 = rest;
    s2.push(("model.norm.weight".into(), f32s(&[4], &[1.0, 2.0, 3.0, 4.0])));
    let mut map = HashMap::new();
    for (name, file) in s1
        .iter()
        .map(|(n, _)| (n.clone(), "model-00001-of-00002.safetensors"))
        .chain(s2.iter().map(|(n, _)| (n.clone(), "model-00002-of-00002.safetensors")))
    {
        map.insert(name, file);
    }
    write(d, "model-00001-of-00002.safetensors", &st(s1));
    write(d, "model-00002-of-00002.safetensors", &st(s2));
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    write(d, "model.safetensors.index.json", index.to_string().as_bytes());
    write(d, "config.json", config(r#"{"quant_method": "gptq", "bits": 4, "group_size": 64, "desc_act": true}"#).as_bytes());
    (l0, l1)
}

#[test]
fn sharded_checkpoint() {
    let d = dir("sharded");
    let (l0, l1) = sharded(&d);
    let c = Checkpoint::open(&d).unwrap();
    assert_eq!(c.quantized_layers(), vec!["model.layers.0.self_attn.k_proj".to_string(), "model.layers.1.self_attn.v_proj".to_string()]);
    let a = c.load_layer("model.layers.0.self_attn.k_proj").unwrap();
    assert_eq!(bits(&a.weight.dequantize().data), bits(&l0.expect()));
    assert!(a.weight.perm.is_some() && a.bias.is_some());
    let b = c.load_layer("model.layers.1.self_attn.v_proj").unwrap();
    assert_eq!(bits(&b.weight.dequantize().data), bits(&l1.expect()));
    assert!(b.weight.perm.is_none(), "a trivial g_idx needs no perm");
    assert_eq!(c.load_matrix("model.norm.weight").unwrap().data, vec![1.0, 2.0, 3.0, 4.0]);

    // Bad shard indexes.
    let idx = std::fs::read_to_string(d.join("model.safetensors.index.json")).unwrap();
    std::fs::remove_file(d.join("model-00002-of-00002.safetensors")).unwrap();
    err_has(Checkpoint::open(&d), "Parse", &["model-00002-of-00002.safetensors", "cannot be opened"]);
    write(&d, "model.safetensors.index.json", idx.replace("model-00002-of-00002", "../model-00002-of-00002").as_bytes());
    err_has(Checkpoint::open(&d), "Parse", &["not a plain file name"]);
    write(&d, "model.safetensors.index.json", idx.replace("model-00002-of-00002", "model-00001-of-00002").as_bytes());
    err_has(Checkpoint::open(&d), "Parse", &["the index puts tensor", "does not have it"]);
    write(&d, "model.safetensors.index.json", br#"{"metadata": {}}"#);
    err_has(Checkpoint::open(&d), "Parse", &["no 'weight_map'"]);
    write(&d, "model.safetensors.index.json", br#"{"weight_map": {"a": 3}}"#);
    err_has(Checkpoint::open(&d), "Parse", &["weight_map['a'] is 3"]);
    write(&d, "model.safetensors.index.json", b"{not json");
    err_has(Checkpoint::open(&d), "Parse", &["invalid JSON"]);
    std::fs::remove_file(d.join("model.safetensors.index.json")).unwrap();
    err_has(Checkpoint::open(&d), "Parse", &["neither model.safetensors.index.json nor model.safetensors"]);
    std::fs::remove_dir_all(&d).unwrap();
}

// ------------------------------------------------------------------ bad checkpoints

fn one(cfg: &str, tensors: Vec<(String, T)>) -> slimgemm::Result<Checkpoint> {
    Checkpoint::from_parts(Some(config(cfg).as_bytes()), None, vec![("model.safetensors".into(), st(tensors))])
}

#[test]
fn unsupported_configs_are_named() {
    let q = |s: &str| QuantConfig::from_json(config(s).as_bytes(), "config.json");
    err_has(q(r#"{"bits": 8, "group_size": 128}"#), "Format", &["bits = 8", "only 4-bit"]);
    err_has(q(r#"{"bits": 3, "group_size": 128}"#), "Format", &["bits = 3"]);
    err_has(q(r#"{"bits": 4, "group_size": -1}"#), "Format", &["group_size = -1", "not supported"]);
    err_has(q(r#"{"bits": 4, "group_size": 100}"#), "Format", &["group_size = 100"]);
    err_has(q(r#"{"bits": 4, "group_size": 128, "quant_method": "bitsandbytes"}"#), "Format", &["quant_method 'bitsandbytes'"]);
    err_has(q(r#"{"bits": 4, "group_size": 128, "checkpoint_format": "marlin"}"#), "Format", &["checkpoint_format 'marlin'"]);
    err_has(q(r#"{"bits": 4, "group_size": 128, "quant_method": "awq", "version": "gemv"}"#), "Format", &["AWQ version 'gemv'"]);
    err_has(q(r#"{"bits": 4, "group_size": 128, "desc_act": "yes"}"#), "Parse", &["'desc_act'", "true or false"]);
    err_has(q(r#"{"bits": "4", "group_size": 128}"#), "Parse", &["'bits'", "integer"]);
    err_has(q(r#"{"group_size": 128}"#), "Parse", &["no 'bits'"]);
    err_has(q(r#"{"bits": 4}"#), "Parse", &["no 'group_size'"]);
    err_has(q(r#""gptq""#), "Parse", &["quantization_config is \"gptq\""]);
    err_has(QuantConfig::from_json(b"[1, 2]", "c"), "Parse", &["not a JSON object"]);
    err_has(QuantConfig::from_json(b"{", "config.json"), "Parse", &["config.json", "invalid JSON"]);
    assert_eq!(QuantConfig::from_json(br#"{"model_type": "llama"}"#, "c").unwrap(), None);
}

#[test]
fn configs_contradicting_tensors_are_errors() {
    let mut rng = Rng(6);
    let l = Layer::random(256, 16, 64, 1, false, &mut rng);
    let p = "m.l";
    // Tensors made for group 64, config says 128: scales have 4 groups, 2 expected.
    let c = one(r#"{"bits": 4, "group_size": 128}"#, l.gptq(p, true, true, false)).unwrap();
    err_has(c.load_layer(p), "Format", &["'m.l.scales' has shape [4, 16]", "group_size 128", "[2, 16]"]);
    // K = 8 * 12 = 96 is no multiple of 64.
    let c = one(
        GPTQ_64,
        vec![
            (format!("{p}.qweight"), i32s(&[12, 8], &[0; 96])),
            (format!("{p}.qzeros"), i32s(&[1, 1], &[0])),
            (format!("{p}.scales"), f16s(&[1, 8], &[f16::ONE; 8])),
        ],
    )
    .unwrap();
    err_has(c.load_layer(p), "Format", &["K = 96", "group_size 64"]);
    // N not a multiple of 8.
    let c = one(
        GPTQ_64,
        vec![
            (format!("{p}.qweight"), i32s(&[8, 12], &[0; 96])),
            (format!("{p}.qzeros"), i32s(&[1, 1], &[0])),
            (format!("{p}.scales"), f16s(&[1, 12], &[f16::ONE; 12])),
        ],
    )
    .unwrap();
    err_has(c.load_layer(p), "Format", &["N = 12"]);
    // qzeros of the wrong shape, g_idx of the wrong length or range, bias of the wrong length.
    let mut t = l.gptq(p, true, true, true);
    t[1] = (format!("{p}.qzeros"), i32s(&[4, 1], &[0; 4]));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["qzeros' has shape [4, 1]", "[4, 2]"]);
    let mut t = l.gptq(p, true, true, true);
    t[3] = (format!("{p}.g_idx"), i32s(&[255], &[0; 255]));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["g_idx' has shape [255]", "[256]"]);
    let mut t = l.gptq(p, true, true, true);
    let mut gi: Vec<i32> = l.g_idx.iter().map(|&g| g as i32).collect();
    gi[9] = 4;
    t[3] = (format!("{p}.g_idx"), i32s(&[256], &gi));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["g_idx[9] = 4", "out of range"]);
    // An act-order g_idx with uneven groups.
    let mut t = l.gptq(p, true, true, true);
    gi[9] = 1;
    t[3] = (format!("{p}.g_idx"), i32s(&[256], &gi));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["assigns 63 input channels to group 0", "group_size = 64"]);
    let mut t = l.gptq(p, true, true, true);
    t[4] = (format!("{p}.bias"), f16s(&[8], &[f16::ONE; 8]));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["bias' has shape [8]", "[16]"]);
    // Wrong dtypes, missing tensors, a 1-D qweight, non-finite scales.
    let mut t = l.gptq(p, true, true, true);
    t[0] = (format!("{p}.qweight"), f32s(&[32, 16], &[0.0; 512]));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["'m.l.qweight' has dtype F32", "expected I32"]);
    let mut t = l.gptq(p, true, true, true);
    t.remove(2);
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Parse", &["no tensor named 'm.l.scales'"]);
    let mut t = l.gptq(p, true, true, true);
    t[0] = (format!("{p}.qweight"), i32s(&[512], &[0; 512]));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["qweight' has shape [512]", "2-D"]);
    let mut t = l.gptq(p, true, true, true);
    let mut sc = l.scales();
    sc[3] = f16::NAN;
    t[2] = (format!("{p}.scales"), f16s(&[4, 16], &sc));
    err_has(one(GPTQ_64, t).unwrap().load_layer(p), "Format", &["scale [0, 3] is NaN", "finite"]);
    // A quantized layer without a quantization config.
    let c = Checkpoint::from_parts(None, None, vec![("model.safetensors".into(), st(l.gptq(p, true, true, true)))]).unwrap();
    assert!(c.config().is_none());
    err_has(c.load_layer(p), "Format", &["no quantization_config"]);
}

#[test]
fn bad_safetensors_bytes_never_panic() {
    let mut rng = Rng(7);
    let l = Layer::random(64, 8, 64, 1, false, &mut rng);
    let good = st(l.gptq("x", true, true, true));
    for len in 0..good.len() {
        let r = Checkpoint::from_parts(Some(config(GPTQ_64).as_bytes()), None, vec![("model.safetensors".into(), good[..len].to_vec())]);
        err_has(r, "Parse", &["model.safetensors", "invalid safetensors file"]);
    }
    let mut garbage = good.clone();
    garbage[8] = b'[';
    err_has(Checkpoint::from_parts(None, None, vec![("model.safetensors".into(), garbage)]), "Parse", &["invalid safetensors file"]);
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    err_has(Checkpoint::from_parts(None, None, vec![("model.safetensors".into(), huge)]), "Parse", &["invalid safetensors file"]);
    // A zero dim makes a valid empty tensor whatever the other dims are (the fuzzer's find in
    // GGUF, checked here for safetensors): loading it is an error, not an overflow panic.
    let empty = st(vec![("e".into(), T(Dtype::F32, vec![0, 1 << 40, 1 << 40], vec![])), ("z".into(), T(Dtype::F32, vec![0, 4], vec![]))]);
    let c = Checkpoint::from_parts(None, None, vec![("model.safetensors".into(), empty)]).unwrap();
    err_has(c.load_matrix("e"), "Format", &["shape [0, 1099511627776, 1099511627776] is too large"]);
    err_has(c.load_matrix("z"), "Shape", &["zero dimension"]);
    // In-memory shard bookkeeping.
    err_has(Checkpoint::from_parts(None, None, vec![]), "Parse", &["0 shards given without an index"]);
    err_has(
        Checkpoint::from_parts(
            None,
            Some(br#"{"weight_map": {"x.qweight": "b.safetensors"}}"#),
            vec![("a.safetensors".into(), good.clone())],
        ),
        "Parse",
        &["shard 'b.safetensors'", "not among the shards given"],
    );
    let c = Checkpoint::from_parts(
        Some(config(GPTQ_64).as_bytes()),
        Some(br#"{"weight_map": {"x.qweight": "a.safetensors", "x.qzeros": "a.safetensors", "x.scales": "a.safetensors"}}"#),
        vec![("a.safetensors".into(), good)],
    )
    .unwrap();
    // Only the indexed tensors are visible (g_idx and bias are not in the map).
    assert_eq!(c.tensor_names(), vec!["x.qweight", "x.qzeros", "x.scales"]);
    assert_eq!(bits(&c.load_layer("x").unwrap().weight.dequantize().data), bits(&l.expect()));
}

/// Regenerates the checkpoint fuzz seeds (the input layout of fuzz/fuzz_targets/checkpoint.rs):
/// `SLIMGEMM_WRITE_SEEDS=fuzz/corpus cargo test --features hf --no-default-features --test library -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = PathBuf::from(std::env::var("SLIMGEMM_WRITE_SEEDS").expect("set SLIMGEMM_WRITE_SEEDS"));
    let dir = root.join("checkpoint");
    std::fs::create_dir_all(&dir).unwrap();
    let part = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u16).to_le_bytes());
        out.extend_from_slice(b);
    };
    let mut rng = Rng(8);
    // GPTQ act-order, one shard.
    let l = Layer::random(64, 8, 32, 1, true, &mut rng);
    let mut s = vec![1u8];
    part(&mut s, config(r#"{"bits": 4, "group_size": 32, "desc_act": true}"#).as_bytes());
    s.extend(st(l.gptq("l", true, true, true)));
    std::fs::write(dir.join("seed-gptq-act-order"), s).unwrap();
    // AWQ, one shard.
    let l = Layer::random(32, 8, 32, 0, false, &mut rng);
    let mut s = vec![1u8];
    part(&mut s, config(r#"{"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemm"}"#).as_bytes());
    s.extend(st(l.awq("l")));
    std::fs::write(dir.join("seed-awq"), s).unwrap();
    // GPTQ v2 over two shards with an index, plus a dense tensor.
    let l = Layer::random(32, 8, 32, 0, false, &mut rng);
    let mut t = l.gptq("l", false, true, false);
    let b: Vec<(String, T)> = t.drain(2..).chain([("n".to_string(), bf16s(&[2], &[bf16::ONE, bf16::ZERO]))]).collect();
    let index = r#"{"weight_map": {"l.qweight": "a.safetensors", "l.qzeros": "a.safetensors", "l.scales": "b.safetensors", "l.g_idx": "b.safetensors", "n": "b.safetensors"}}"#;
    let mut s = vec![7u8];
    part(&mut s, config(r#"{"bits": 4, "group_size": 32, "checkpoint_format": "gptq_v2"}"#).as_bytes());
    part(&mut s, index.as_bytes());
    part(&mut s, &st(t));
    s.extend(st(b));
    std::fs::write(dir.join("seed-sharded-v2"), s).unwrap();
}

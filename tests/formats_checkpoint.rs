//! Hugging Face GPTQ / AWQ checkpoints: single-file and sharded folders written with the
//! `safetensors` crate, GPTQ v1 and v2 zeros, act-order, AWQ, dense tensors and biases, each
//! dequantization against an independent float formulation (tests/checkpoint_util). The
//! bad checkpoint classes are in `formats_checkpoint_errors`.
#![cfg(feature = "hf")]

use std::collections::HashMap;
use std::path::Path;

use half::{bf16, f16};
use slimgemm::formats::checkpoint::{Checkpoint, QuantConfig, QuantMethod};
use slimgemm::formats::quant::GptqFormat;
use slimgemm::formats::{Int4Weights, Matrix};
use slimgemm::Device;

use crate::checkpoint_util::*;

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

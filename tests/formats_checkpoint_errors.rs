//! Every bad Hugging Face GPTQ / AWQ checkpoint class: a clear error, never a panic; and the
//! checkpoint fuzz seeds.
#![cfg(feature = "hf")]

use std::path::PathBuf;

use half::{bf16, f16};
use safetensors::Dtype;
use slimgemm::formats::checkpoint::{Checkpoint, QuantConfig};

use crate::checkpoint_util::*;

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

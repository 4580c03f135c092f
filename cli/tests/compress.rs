//! `slimgemm compress` end to end: models written here (safetensors by hand: F32, F16, BF16,
//! a conv weight, biases and non-float tensors) with layers of known structure get the
//! predicted picks within budget; the table, `report.json`, `plot.svg` and the compressed model
//! are written; the model reloads (biases attached, other tensors copied) and reproduces the
//! reported errors; sharded folders round-trip; bad input is a clear error (exit status 2).
//! `bert_base_block_cpu` runs one BERT-base encoder block (768x768 x4, 3072x768, 768x3072) on
//! the CPU and prints its wall time; `bert_base_full` (ignored: minutes) runs all 12 blocks on
//! the CPU and on wgpu.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use slimgemm::formats::{Csr, LowRank, Matrix};
use slimgemm::plan::io::CompressedModel;
use slimgemm::plan::{gaussian_activations, PlanOptions, Planner};
use slimgemm::{f16, DType, Device};

/// Runs the `slimgemm` binary (`$SLIMGEMM_BIN` if set: a copy that a concurrent build cannot
/// replace during the long runs).
fn slimgemm(args: &[&str]) -> Output {
    let bin = std::env::var("SLIMGEMM_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_slimgemm").to_string());
    Command::new(bin).args(args).output().expect("the slimgemm binary runs")
}

/// `slimgemm compress <model> <flags> --out <out>`.
fn compress(model: &Path, flags: &[&str], out: &Path) -> Output {
    let mut args = vec!["compress", model.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.extend(["--out", out.to_str().unwrap()]);
    slimgemm(&args)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slimgemm-compress-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tensor to write: name, safetensors dtype, shape, little-endian bytes.
struct T(String, &'static str, Vec<usize>, Vec<u8>);

fn f32s(name: &str, shape: &[usize], v: &[f32]) -> T {
    T(name.into(), "F32", shape.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
fn f16s(name: &str, shape: &[usize], v: &[f32]) -> T {
    T(name.into(), "F16", shape.to_vec(), v.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect())
}
fn bf16s(name: &str, shape: &[usize], v: &[f32]) -> T {
    T(name.into(), "BF16", shape.to_vec(), v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect())
}

/// Writes a safetensors file (header JSON padded to 8 bytes, then the data).
fn write_safetensors(path: &Path, tensors: &[T]) {
    let mut header = serde_json::Map::new();
    let mut off = 0usize;
    for T(name, dtype, shape, data) in tensors {
        header.insert(name.clone(), serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + data.len()]}));
        off += data.len();
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    for t in tensors {
        bytes.extend(&t.3);
    }
    std::fs::write(path, bytes).unwrap();
}

fn low_rank(m: usize, n: usize, r: usize, seed: u64) -> Vec<f32> {
    LowRank::<f32>::random(m, n, r, seed).unwrap().to_dense().unwrap().data
}

fn sparse(m: usize, n: usize, density: f64, seed: u64) -> Vec<f32> {
    let g = gaussian_activations(m, n, seed).unwrap();
    let mask = Csr::<f32>::random(m, n, density, seed + 1).unwrap().to_dense();
    g.data.iter().zip(&mask.data).map(|(v, k)| if *k != 0.0 { *v } else { 0.0 }).collect()
}

fn gaussian(m: usize, n: usize, seed: u64) -> Vec<f32> {
    gaussian_activations(m, n, seed).unwrap().data
}

/// The small model: an exactly rank-6 layer (F32, with bias), a 1% dense layer (F16), a
/// Gaussian layer (BF16), a conv weight [16, 8, 3, 3], a norm vector and an integer tensor.
fn small_model(path: &Path) {
    write_safetensors(
        path,
        &[
            f32s("enc.lowrank.weight", &[128, 192], &low_rank(128, 192, 6, 1)),
            f32s("enc.lowrank.bias", &[128], &(0..128).map(|i| i as f32 * 0.01).collect::<Vec<_>>()),
            f16s("enc.sparse.weight", &[128, 192], &sparse(128, 192, 0.01, 2)),
            bf16s("enc.gauss.weight", &[128, 256], &gaussian(128, 256, 3)),
            f32s("conv.weight", &[16, 8, 3, 3], &gaussian(16, 72, 4)),
            f32s("norm.weight", &[128], &[1.0; 128]),
            T("ids".into(), "I64", vec![2], [7i64, 9].iter().flat_map(|x| x.to_le_bytes()).collect()),
        ],
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

fn layer<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["layers"].as_array().unwrap().iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("no layer {name} in the report"))
}

/// `‖x Ŵᵀ + b − (x Wᵀ + b)‖ / ‖x Wᵀ + b‖` with Ŵ the reloaded layer run on `dev`, W dense.
fn reloaded_output_err(dev: &Device, l: &slimgemm::plan::io::CompressedLayer, w: &Matrix<f32>, x: &Matrix<f32>) -> f64 {
    let y = dev.download_f32(&l.to_device(dev, DType::F32).unwrap().forward(&dev.upload_matrix(x).unwrap()).unwrap()).unwrap();
    let bias = l.bias.clone().unwrap_or_else(|| vec![0.0; w.rows]);
    let (mut num, mut den) = (0f64, 0f64);
    for i in 0..x.rows {
        for (j, b) in bias.iter().enumerate() {
            let mut s = 0f64;
            for k in 0..x.cols {
                s += x.data[i * x.cols + k] as f64 * w.data[j * w.cols + k] as f64;
            }
            let got = y.data[i * w.rows + j] as f64 - *b as f64;
            num += (got - s).powi(2);
            den += s * s;
        }
    }
    (num / den).sqrt()
}

#[test]
fn compress_small_model_cpu_size() {
    let dir = tmp("small");
    let model = dir.join("model.safetensors");
    small_model(&model);
    let out = dir.join("out");
    let o = compress(
        &model,
        &["--budget", "0.02", "--objective", "size", "--backend", "cpu", "--tokens", "1,8", "--calib-tokens", "32", "--iters", "3"],
        &out,
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "compress failed: {}\n{stdout}", stderr(&o));
    for s in ["enc.lowrank.weight", "lowrank(r=6)", "TOTAL", "t@8", "say nothing about GPU speed", "picks:"] {
        assert!(stdout.contains(s), "`{s}` missing from the output:\n{stdout}");
    }
    let r = report(&out);
    assert_eq!(r["layers"].as_array().unwrap().len(), 4, "{r:#}");
    assert_eq!(r["device"]["backend"], "cpu");
    assert!(r["timing_note"].as_str().unwrap().contains("say nothing about GPU speed"));
    assert_eq!(r["copied_tensors"], 3);
    for l in r["layers"].as_array().unwrap() {
        let e = l["pick"]["output_err"].as_f64().unwrap();
        assert!(e <= 0.02, "{}: pick error {e} > budget", l["name"]);
        assert_eq!(l["pick"]["within_budget"], true);
    }
    assert_eq!(layer(&r, "enc.lowrank.weight")["pick"]["variant"], "lowrank(r=6)");
    assert_eq!(layer(&r, "enc.sparse.weight")["pick"]["format"], "csr");
    assert_eq!(layer(&r, "enc.gauss.weight")["pick"]["format"], "int8");
    assert_eq!(layer(&r, "enc.gauss.weight")["source_dtype"], "BF16");
    assert_eq!(layer(&r, "conv.weight")["shape"], serde_json::json!([16, 72]));
    assert!(layer(&r, "conv.weight")["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().starts_with("int4:")));
    let svg = std::fs::read_to_string(out.join("plot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("pick (size)") && svg.contains("budget 0.02"), "{svg}");

    // The compressed model reloads and reproduces the reported errors.
    let m = CompressedModel::open(out.join("model.safetensors")).unwrap();
    assert_eq!(m.layers().len(), 4);
    assert_eq!(m.other_tensors(), ["enc.lowrank.bias", "ids", "norm.weight"]);
    assert_eq!(m.metadata("slimgemm.budget"), Some("0.02"));
    let lr = m.layer("enc.lowrank.weight").unwrap();
    assert_eq!(lr.bias.as_ref().map(Vec::len), Some(128));
    assert_eq!(m.layer("conv.weight").unwrap().orig_shape, [16, 8, 3, 3]);
    let planner = Planner::new(&Device::cpu(), PlanOptions { calib_tokens: 32, ..PlanOptions::default() }).unwrap();
    let src = slimgemm::plan::io::DenseModel::open(&model).unwrap();
    let mut devs = vec![Device::cpu()];
    devs.extend(Device::wgpu().ok());
    for l in m.layers() {
        let w = src.load_matrix(&l.name).unwrap();
        let x = planner.calibration(w.cols).unwrap();
        let want = layer(&r, &l.name)["pick"]["output_err"].as_f64().unwrap();
        assert_eq!(l.output_err, Some(want));
        for dev in &devs {
            let e = reloaded_output_err(dev, l, &w, &x);
            assert!((e - want).abs() <= 1e-4 + 1e-3 * want, "{} on {}: reloaded error {e}, reported {want}", l.name, dev.kind().name());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compress_small_model_wgpu_speed() {
    let Ok(dev) = Device::wgpu() else {
        assert!(std::env::var("SLIMGEMM_REQUIRE_WGPU").map_or(true, |v| v != "1"), "SLIMGEMM_REQUIRE_WGPU=1 but no adapter");
        eprintln!("skipping: no wgpu adapter");
        return;
    };
    let dir = tmp("wgpu");
    let model = dir.join("model.safetensors");
    small_model(&model);
    let out = dir.join("out");
    let o = compress(
        &model,
        &["--budget", "0.05", "--backend", "wgpu", "--tokens", "4", "--formats", "all", "--dense", "baseline", "--iters", "3"],
        &out,
    );
    assert!(o.status.success(), "compress failed: {}", stderr(&o));
    let r = report(&out);
    assert_eq!(r["device"]["backend"], "wgpu");
    assert_eq!(r["objective"], "speed");
    assert!(r["dense_reference"].as_str().unwrap().contains("baseline"));
    if dev.name().to_ascii_lowercase().contains("llvmpipe") {
        assert!(r["timing_note"].as_str().unwrap().contains("software adapter"));
    }
    for l in r["layers"].as_array().unwrap() {
        assert!(l["pick"]["output_err"].as_f64().unwrap() <= 0.05);
        assert!(l["dense"][0]["what"].as_str().unwrap().contains("WGSL dense GEMM"), "{}", l["dense"]);
        assert!(l["extra_dense"][0][0]["what"].as_str().unwrap().starts_with("library dense"));
        assert!(l["candidates"].as_array().unwrap().iter().any(|c| c["format"] == "binary"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compress_sharded_folder_round_trips() {
    let dir = tmp("shards");
    let src = dir.join("model");
    std::fs::create_dir_all(&src).unwrap();
    write_safetensors(&src.join("model-00001-of-00002.safetensors"), &[f32s("a.weight", &[32, 64], &low_rank(32, 64, 2, 5))]);
    write_safetensors(
        &src.join("model-00002-of-00002.safetensors"),
        &[f32s("b.weight", &[32, 64], &gaussian(32, 64, 6)), f32s("b.bias", &[32], &[0.5; 32])],
    );
    let index = serde_json::json!({"weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors", "b.bias": "model-00002-of-00002.safetensors"}});
    std::fs::write(src.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let out = dir.join("out");
    let o = compress(&src, &["--budget", "0.1", "--backend", "cpu", "--tokens", "2"], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in
        ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json", "report.json", "plot.svg"]
    {
        assert!(out.join(f).is_file(), "{f} not written");
    }
    let m = CompressedModel::open(&out).unwrap();
    assert_eq!(m.layers().len(), 2);
    assert_eq!(m.layer("a.weight").unwrap().weight.variant().unwrap().to_string(), "lowrank(r=2)");
    assert_eq!(m.layer("b.weight").unwrap().bias.as_deref(), Some(&[0.5f32; 32][..]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--calib`: the tensor named like the layer, else one of the layer's width, else Gaussian.
#[test]
fn compress_with_calibration_file() {
    let dir = tmp("calib");
    let model = dir.join("model.safetensors");
    small_model(&model);
    let calib = dir.join("acts.safetensors");
    write_safetensors(
        &calib,
        &[f32s("enc.gauss.weight", &[16, 256], &gaussian(16, 256, 9)), f32s("width192", &[8, 192], &gaussian(8, 192, 10))],
    );
    let out = dir.join("out");
    let o = compress(&model, &["--budget", "0.05", "--backend", "cpu", "--tokens", "1", "--calib", calib.to_str().unwrap()], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&out);
    let c = |n: &str| layer(&r, n)["calibration"].as_str().unwrap().to_string();
    assert_eq!(c("enc.gauss.weight"), "--calib tensor 'enc.gauss.weight' (16 tokens)");
    assert_eq!(c("enc.sparse.weight"), "--calib tensor 'width192' (8 tokens)");
    assert!(c("conv.weight").starts_with("gaussian") && c("conv.weight").contains("no tensor of width 72"), "{}", c("conv.weight"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compress_bad_input_is_a_clear_error() {
    let dir = tmp("bad");
    let model = dir.join("m.safetensors");
    small_model(&model);
    let out = dir.join("out");
    let run = |args: &[&str]| {
        let mut a = vec!["compress"];
        a.extend_from_slice(args);
        let o = slimgemm(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?} should fail with status 2: {}", stderr(&o));
        stderr(&o)
    };
    let (m, d) = (model.to_str().unwrap(), out.to_str().unwrap());
    for b in ["0", "-0.5", "nan"] {
        let e = run(&[m, "--budget", b, "--backend", "cpu", "--out", d]);
        assert!(e.contains("budget"), "{e}");
    }
    let e = run(&[m, "--budget", "0.02", "--formats", "csr,int3", "--backend", "cpu", "--out", d]);
    assert!(e.contains("unknown format `int3`"), "{e}");
    let e = run(&[m, "--budget", "0.02", "--backend", "tpu", "--out", d]);
    assert!(e.contains("unknown backend"), "{e}");
    let missing = dir.join("missing.safetensors");
    let e = run(&[missing.to_str().unwrap(), "--budget", "0.02", "--backend", "cpu", "--out", d]);
    assert!(e.contains("cannot read the model") && e.contains("missing.safetensors"), "{e}");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
    let e = run(&[junk.to_str().unwrap(), "--budget", "0.02", "--backend", "cpu", "--out", d]);
    assert!(e.contains("not a valid safetensors file"), "{e}");
    let vectors = dir.join("vectors.safetensors");
    write_safetensors(&vectors, &[f32s("norm.weight", &[8], &[1.0; 8]), f32s("norm.bias", &[8], &[0.0; 8])]);
    let e = run(&[vectors.to_str().unwrap(), "--budget", "0.02", "--backend", "cpu", "--out", d]);
    assert!(e.contains("no weight to compress") && e.contains("norm.weight"), "{e}");
    let e = run(&[m, "--budget", "0.02", "--backend", "cpu", "--out", dir.to_str().unwrap()]);
    assert!(e.contains("the model's own folder"), "{e}");
    let e = run(&[m, "--budget", "0.02", "--backend", "cpu", "--calib", missing.to_str().unwrap(), "--out", d]);
    assert!(e.contains("--calib"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One encoder block of BERT-base shapes, with structure so that every family shows up: q and
/// k low rank (64) plus 1% noise, v and o Gaussian, the intermediate 90% sparse, the output
/// layer Gaussian; biases and a LayerNorm copied.
fn bert_block(i: usize, seed: u64) -> Vec<T> {
    let p = |s: &str| format!("encoder.layer.{i}.{s}");
    let noisy_low_rank = |m: usize, n: usize, s: u64| -> Vec<f32> {
        let a = low_rank(m, n, 64, s);
        let scale = (a.iter().map(|v| v * v).sum::<f32>() / a.len() as f32).sqrt();
        a.iter().zip(gaussian(m, n, s + 7)).map(|(v, g)| v / scale + 0.01 * g).collect()
    };
    vec![
        bf16s(&p("attention.self.query.weight"), &[768, 768], &noisy_low_rank(768, 768, seed)),
        bf16s(&p("attention.self.key.weight"), &[768, 768], &noisy_low_rank(768, 768, seed + 1)),
        bf16s(&p("attention.self.value.weight"), &[768, 768], &gaussian(768, 768, seed + 2)),
        bf16s(&p("attention.output.dense.weight"), &[768, 768], &gaussian(768, 768, seed + 3)),
        bf16s(&p("intermediate.dense.weight"), &[3072, 768], &sparse(3072, 768, 0.1, seed + 4)),
        bf16s(&p("output.dense.weight"), &[768, 3072], &gaussian(768, 3072, seed + 5)),
        f32s(&p("output.dense.bias"), &[768], &[0.0; 768]),
        f32s(&p("output.LayerNorm.weight"), &[768], &[1.0; 768]),
    ]
}

fn run_bert(name: &str, blocks: usize, backend: &str, extra: &[&str]) -> (f64, serde_json::Value, PathBuf) {
    let dir = tmp(name);
    let model = dir.join("bert.safetensors");
    let mut tensors = Vec::new();
    for i in 0..blocks {
        tensors.extend(bert_block(i, 100 + 10 * i as u64));
    }
    write_safetensors(&model, &tensors);
    let out = dir.join("out");
    let mut args = vec!["compress", model.to_str().unwrap(), "--budget", "0.02", "--backend", backend, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let t = Instant::now();
    let o = slimgemm(&args);
    let wall = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", stderr(&o));
    println!("{}", String::from_utf8_lossy(&o.stdout));
    println!("slimgemm compress, {blocks} BERT-base block(s) on {backend}: {wall:.1} s");
    let r = report(&out);
    for l in r["layers"].as_array().unwrap() {
        assert!(l["pick"]["output_err"].as_f64().unwrap() <= 0.02, "{}", l["name"]);
    }
    (wall, r, dir)
}

#[test]
fn bert_base_block_cpu() {
    let (_, r, dir) = run_bert("bert1", 1, "cpu", &["--tokens", "1,16", "--calib-tokens", "32", "--iters", "3"]);
    assert_eq!(r["layers"].as_array().unwrap().len(), 6);
    let fmt = |n: &str| layer(&r, &format!("encoder.layer.0.{n}"))["pick"]["format"].as_str().unwrap().to_string();
    assert_eq!(fmt("attention.self.query.weight"), "lowrank", "{r:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// All 12 blocks on the CPU and on wgpu (minutes): `cargo test --release -p slimgemm-cli --test
/// compress -- --ignored --nocapture`. With `SLIMGEMM_COMPRESS_PLOT=path`, the wgpu run's plot
/// is copied there (how docs/compress.svg was made).
#[test]
#[ignore]
fn bert_base_full() {
    let mut walls = Vec::new();
    for backend in ["cpu", "wgpu"] {
        if backend == "wgpu" && Device::wgpu().is_err() {
            continue;
        }
        let (wall, r, dir) = run_bert(&format!("bert12-{backend}"), 12, backend, &[]);
        assert_eq!(r["layers"].as_array().unwrap().len(), 72);
        if let (Ok(p), "wgpu") = (std::env::var("SLIMGEMM_COMPRESS_PLOT"), backend) {
            std::fs::copy(dir.join("out/plot.svg"), p).unwrap();
        }
        walls.push((backend, wall));
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("wall times: {walls:?}");
}

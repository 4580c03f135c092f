//! GGUF encoders against ggml golden bytes, every bad-file class, the optional Python `gguf`
//! cross-check and the fuzz regressions (the reader and the types are in `formats_gguf.rs`).

use crate::gguf_util::*;
use half::f16;
use slimgemm::formats::gguf::{GgmlType, GgufArray, GgufFile, GgufTensor, GgufValue, GgufWriter};
use slimgemm::formats::quant::{quantize_gguf_q4_0, quantize_gguf_q4_k, quantize_gguf_q8_0};
use slimgemm::formats::{Int4Weights, Int8Weights, Matrix};
use slimgemm::Error;

// ------------------------------------------------------------------ encoders

/// Golden inputs: eight super-blocks (2048 values) of different character.
fn golden_inputs() -> Vec<f32> {
    let mut rng = Lcg(2024);
    let mut x = Vec::with_capacity(2048);
    for sb in 0..8 {
        for e in 0..256 {
            let u = rng.f32();
            x.push(match sb {
                0 => u,
                1 => u * 0.01,
                2 => u + 0.5,
                3 => 0.0,
                4 if e / 32 % 2 == 0 => 3.0,
                4 => u * 100.0,
                5 if e == 7 => 40.0,
                5 => u,
                6 => u * 0.5 - 1.0,
                _ => u * 1e-6,
            });
        }
    }
    x
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &v| (h ^ v as u64).wrapping_mul(0x100000001b3))
}

/// Writes the golden inputs as raw f32 for ggml's reference quantizers (see
/// `GGML_ORACLE.md`-style notes in the test below): `SLIMGEMM_DUMP_GOLDEN=path cargo test ... dump_golden_inputs -- --ignored`.
#[test]
#[ignore]
fn dump_golden_inputs() {
    let path = std::env::var("SLIMGEMM_DUMP_GOLDEN").expect("set SLIMGEMM_DUMP_GOLDEN");
    std::fs::write(path, golden_inputs().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

// Produced by ggml's own `quantize_row_q4_K_ref` / `quantize_row_q8_0_ref` (ggml-org/ggml
// d99724f2, built with -O2 -ffp-contract=off) on `golden_inputs()`.
const GOLDEN_Q4K_FNV: u64 = 0xd4e0_6caa_5bce_0006;
const GOLDEN_Q8_0_FNV: u64 = 0xd9cf_a62f_b485_9bfc;
const GOLDEN_Q4K_SB0: &str = concat!(
    "3f18fd23f9fffcfefefdfffddafe7aa816758c54ef970294afd3c4ea1dfedf1f60d3b8708d549511b2a95a1d38eb0053",
    "191f7e96d061b51d0da808eaf5aba4cd237c020da13a990492639b00e2f67c88a4987a7ec7df2b0ca72ed8c96cfa469e",
    "d800ec7cbfcf784a15c7d9040a851b87a089a3619f0c1c21fdfd21bf1120ba8f1be0140cabfb3d6dad75d4b26289904b",
);

fn hex(b: &[u8]) -> String {
    b.iter().map(|v| format!("{v:02x}")).collect()
}

#[test]
fn encoders_match_ggml_reference_golden_bytes() {
    let x = golden_inputs();
    let q4k = quantize_gguf_q4_k(&x, 1, 2048).unwrap();
    let q8 = quantize_gguf_q8_0(&x, 1, 2048).unwrap();
    assert_eq!((q4k.len(), q8.len()), (8 * 144, 64 * 34));
    assert_eq!(hex(&q4k[..144]), GOLDEN_Q4K_SB0);
    assert_eq!(fnv1a(&q4k), GOLDEN_Q4K_FNV, "Q4_K bytes differ from ggml's reference");
    assert_eq!(fnv1a(&q8), GOLDEN_Q8_0_FNV, "Q8_0 bytes differ from ggml's reference");
    // Super-block 3 is all zero: d = dmin = 0, all codes 0.
    assert!(q4k[3 * 144..4 * 144].iter().all(|&b| b == 0));
}

/// With `SLIMGEMM_GGML_ORACLE` pointing at a program that reads raw f32 on stdin and writes
/// ggml's reference bytes on stdout (`oracle q4_K N` / `oracle q8_0 N`; see fuzz/README.md),
/// compares the encoders on many random inputs. Skips (with a note) otherwise.
#[test]
fn encoders_match_a_ggml_oracle_when_present() {
    let Ok(oracle) = std::env::var("SLIMGEMM_GGML_ORACLE") else {
        eprintln!("skipping: SLIMGEMM_GGML_ORACLE is not set (the golden-bytes test still covers the encoders)");
        return;
    };
    let mut rng = Lcg(7);
    let n = 256 * 4000;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let u = rng.f32();
            match (i / 256) % 5 {
                0 => u,
                1 => u * 1e-4,
                2 => u * 300.0 + 5.0,
                3 if i % 97 == 0 => u * 50.0,
                _ => u * u * u,
            }
        })
        .collect();
    let run = |ty: &str| -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new(&oracle)
            .args([ty, &n.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let input: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out.stdout
    };
    let ours = quantize_gguf_q4_k(&x, 1, n).unwrap();
    let theirs = run("q4_K");
    let bad = ours.chunks(144).zip(theirs.chunks(144)).filter(|(a, b)| a != b).count();
    assert_eq!(bad, 0, "{bad} of {} Q4_K super-blocks differ from ggml", n / 256);
    assert_eq!(quantize_gguf_q8_0(&x, 1, n).unwrap(), run("q8_0"));
}

#[test]
fn q8_0_encoder_hand_checked_and_round_trip() {
    // amax 127 gives d = 1 exactly: q = round half away from zero.
    let mut x = [0f32; 32];
    for (i, v) in [(0, 127.0), (1, -2.5), (2, 2.5), (3, 0.49), (4, -126.6), (5, 0.5)] {
        x[i] = v;
    }
    let b = quantize_gguf_q8_0(&x, 1, 32).unwrap();
    assert_eq!(&b[..2], &[0x00, 0x3C]); // f16 1.0
    assert_eq!(&b[2..8], &[127u8, (-3i8) as u8, 3, 0, (-127i8) as u8, 1]);
    // All zero: d = 0, q = 0.
    assert_eq!(quantize_gguf_q8_0(&[0.0; 32], 1, 32).unwrap(), vec![0u8; 34]);

    let m = Matrix::<f32>::random(5, 256, 9).unwrap();
    let q = Int8Weights::from_gguf_q8_0(&quantize_gguf_q8_0(&m.data, 5, 256).unwrap(), 5, 256).unwrap();
    for (blk, (xs, ys)) in m.data.chunks(32).zip(q.dequantize().data.chunks(32)).enumerate() {
        let d = q.scales[blk];
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (a, b) in xs.iter().zip(ys) {
            // Half a step plus the f16 rounding of d (relative 2^-11, times at most 127 steps).
            assert!((a - b).abs() <= 0.5 * d + amax * 2f32.powi(-11) * 1.01, "block {blk}: {a} vs {b} (d = {d})");
        }
    }
    // Int8Weights::quantize (f32 scales) on the same data is within half a step.
    let q2 = Int8Weights::quantize(&m, 32).unwrap();
    for (p, (a, b)) in m.data.iter().zip(q2.dequantize().data).enumerate() {
        assert!((a - b).abs() <= 0.5 * q2.scales[p / 32] * 1.0001, "{a} vs {b}");
    }
    assert!(Int8Weights::quantize(&m, 48).is_err());
    assert!(quantize_gguf_q8_0(&m.data, 5, 255).is_err());
}

#[test]
fn q4_k_encoder_round_trip_error() {
    let m = Matrix::<f32>::random(4, 512, 17).unwrap();
    let bytes = quantize_gguf_q4_k(&m.data, 4, 512).unwrap();
    let w = Int4Weights::from_gguf_q4_k(&bytes, 4, 512).unwrap();
    let y = w.dequantize();
    let groups = 512 / 32;
    let mins = w.mins.as_ref().unwrap();
    for (p, (a, b)) in m.data.iter().zip(&y.data).enumerate() {
        let g = (p / 512) * groups + (p % 512) / 32;
        // Each value is within one step of the grid scale * [0, 15] - min (the 6-bit scales
        // and mins are rounded, so the nearest code can sit up to about one step away).
        assert!((a - b).abs() <= w.scales[g] * 1.01 + 1e-6, "element {p}: {a} vs {b} (scale {}, min {})", w.scales[g], mins[g]);
    }
    let rms = |v: &[f32]| (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    let err: Vec<f32> = m.data.iter().zip(&y.data).map(|(a, b)| a - b).collect();
    // Uniform 4-bit quantization of U(-1, 1) has relative RMS error (2 / 15) / sqrt(12) / sqrt(1 / 3) = 0.067.
    assert!(rms(&err) < 0.07 * rms(&m.data), "relative RMS error {}", rms(&err) / rms(&m.data));
    // Through the writer and reader.
    let mut wr = GgufWriter::new();
    wr.add_matrix("w", &m, GgmlType::Q4_K).unwrap().add_matrix("w0", &m, GgmlType::Q4_0).unwrap();
    let f = GgufFile::from_bytes(wr.to_bytes().unwrap()).unwrap();
    assert_eq!(f.load("w").unwrap(), GgufTensor::Int4(w));
    assert_eq!(f.tensor_bytes("w0").unwrap(), quantize_gguf_q4_0(&m.data, 4, 512).unwrap().as_slice());
    assert!(quantize_gguf_q4_k(&m.data[..256], 1, 128).is_err());
    assert!(quantize_gguf_q4_k(&[f32::NAN; 256], 1, 256).is_err());
}

// ------------------------------------------------------------------ bad files

fn small_valid() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.name", GgufValue::String("x".into())).unwrap();
    w.add_metadata("arr", GgufValue::Array(GgufArray::U32(vec![1, 2, 3]))).unwrap();
    w.add_matrix("a", &Matrix::<f32>::random(2, 32, 1).unwrap(), GgmlType::Q8_0).unwrap();
    w.add_matrix("b", &Matrix::<f32>::random(1, 3, 1).unwrap(), GgmlType::F32).unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn every_truncation_is_an_error() {
    let full = small_valid();
    GgufFile::from_bytes(full.clone()).unwrap();
    for len in 0..full.len() {
        // The last tensor's trailing padding is not data: cutting only padding is still valid.
        let r = GgufFile::from_bytes(full[..len].to_vec());
        let f_end = GgufFile::from_bytes(full.clone()).unwrap();
        let b = f_end.tensor_info("b").unwrap();
        let needed = f_end.data_offset() + (b.offset + b.n_bytes) as usize;
        if len >= needed {
            assert!(r.is_ok(), "cut at {len} (only padding removed) should parse");
        } else {
            assert!(matches!(r, Err(Error::Parse { .. })), "cut at {len}: {r:?}");
        }
    }
}

fn one_tensor(version: u32, dims: &[u64], ty: u32, offset: u64, data_len: usize) -> Vec<u8> {
    let mut r = Raw::header(version, 1, 0);
    r.tensor("t", dims, ty, offset).pad(32).bytes(&vec![0; data_len]);
    r.0
}

#[test]
fn bad_headers_are_clear_errors() {
    let p = |b: Vec<u8>| GgufFile::from_bytes(b);
    parse_err(p(b"GGU".to_vec()), &["truncated"]);
    parse_err(p(b"GGML\x03\0\0\0".to_vec()), &["bad magic", "GGML"]);
    parse_err(p(one_tensor(1, &[4], 0, 0, 16)), &["version 1 is not supported"]);
    parse_err(p(one_tensor(4, &[4], 0, 0, 16)), &["unsupported GGUF version 4"]);
    parse_err(p(one_tensor(0, &[4], 0, 0, 16)), &["unsupported GGUF version 0"]);
    parse_err(p(one_tensor(0x0300_0000, &[4], 0, 0, 16)), &["byte-swapped", "big-endian"]);
    // Absurd counts: more items than bytes could hold (no allocation by them).
    parse_err(p(Raw::header(3, u64::MAX, 0).0), &["tensor count", "impossible"]);
    parse_err(p(Raw::header(3, 0, 1 << 60).0), &["metadata count", "impossible"]);
    parse_err(p(Raw::header(3, 1 << 40, 0).bytes(&[0; 100]).0.clone()), &["tensor count"]);
    // String length past the end.
    let mut r = Raw::header(3, 0, 1);
    r.u64(u64::MAX - 3).bytes(b"key and some more bytes");
    parse_err(p(r.0), &["metadata key 0 length", "impossible"]);
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(8).u64(1000).bytes(b"short");
    parse_err(p(r.0), &["metadata 'k' string length = 1000", "impossible"]);
    // Array length past the end, for several element sizes.
    for (ty, elem) in [(0u32, 1u64), (10, 8), (8, 8), (9, 12)] {
        let mut r = Raw::header(3, 0, 1);
        r.str("k").u32(9).u32(ty).u64(u64::MAX / elem).bytes(&[0; 64]);
        parse_err(p(r.0), &["array length", "impossible"]);
    }
    // Nesting deeper than 8.
    let mut r = Raw::header(3, 0, 1);
    r.str("deep").u32(9);
    for _ in 0..9 {
        r.u32(9).u64(1);
    }
    r.u32(0).u64(0);
    parse_err(p(r.0), &["nested deeper than 8"]);
    // Unknown value types, duplicate and empty keys, non-UTF-8.
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(13).u64(0);
    parse_err(p(r.0), &["value type 13", "unknown"]);
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(9).u32(77).u64(0);
    parse_err(p(r.0), &["array element type 77"]);
    let mut r = Raw::header(3, 0, 2);
    r.str("k").u32(0).u8(1).str("k").u32(0).u8(2);
    parse_err(p(r.0), &["duplicate metadata key 'k'"]);
    let mut r = Raw::header(3, 0, 1);
    r.str("").u32(0).u8(1);
    parse_err(p(r.0), &["key 0 is empty"]);
    let mut r = Raw::header(3, 0, 1);
    r.u64(2).bytes(&[0xC3, 0x28]).u32(0).u8(1);
    parse_err(p(r.0), &["not UTF-8"]);
    // Alignment: wrong type, not a power of two.
    let mut r = Raw::header(3, 0, 1);
    r.str("general.alignment").u32(10).u64(64);
    parse_err(p(r.0), &["general.alignment has value type 10", "uint32"]);
    let mut r = Raw::header(3, 0, 1);
    r.str("general.alignment").u32(4).u32(48);
    parse_err(p(r.0), &["48 is not a power of two"]);
    let mut r = Raw::header(3, 0, 1);
    r.str("general.alignment").u32(4).u32(0);
    parse_err(p(r.0), &["0 is not a power of two"]);
}

#[test]
fn bad_tensor_infos_are_clear_errors() {
    let p = |b: Vec<u8>| GgufFile::from_bytes(b);
    // Valid baseline.
    GgufFile::from_bytes(one_tensor(3, &[4, 2], 0, 0, 32)).unwrap();
    parse_err(p(one_tensor(3, &[4, 2], 0, 0, 31)), &["tensor 't'", "spans data bytes 0..32", "31 bytes"]);
    parse_err(p(one_tensor(3, &[4, 2], 0, 64, 64)), &["spans data bytes 64..96"]);
    parse_err(p(one_tensor(3, &[4], 0, u64::MAX - 31, 16)), &["spans data bytes"]);
    parse_err(p(one_tensor(3, &[4, 2], 0, 8, 64)), &["offset 8 is not a multiple of the alignment 32"]);
    parse_err(p(one_tensor(3, &[4], 4, 0, 16)), &["ggml type id 4", "unknown or was removed"]);
    parse_err(p(one_tensor(3, &[4], 99, 0, 16)), &["ggml type id 99"]);
    parse_err(p(one_tensor(3, &[1, 1, 1, 1, 1], 0, 0, 16)), &["5 dims", "at most 4"]);
    parse_err(p(one_tensor(3, &[1 << 32, 1 << 32], 0, 0, 16)), &["overflow"]);
    parse_err(p(one_tensor(3, &[u64::MAX], 0, 0, 16)), &["int64 limit"]);
    parse_err(p(one_tensor(3, &[1 << 62, 2], 0, 0, 16)), &["overflow"]);
    parse_err(p(one_tensor(3, &[48], 8, 0, 64)), &["ne[0] = 48", "block size 32", "q8_0"]);
    // A zero dim parses (0 bytes) but does not load as a matrix.
    let f = GgufFile::from_bytes(one_tensor(3, &[0, 5], 0, 0, 0)).unwrap();
    parse_err(f.load("t"), &["no elements"]);
    // Overlap and duplicate names.
    let mut r = Raw::header(3, 2, 0);
    r.tensor("a", &[16], 0, 0).tensor("b", &[8], 0, 32).pad(32).bytes(&[0; 96]);
    parse_err(p(r.0), &["'a' (bytes 0..64)", "'b' (bytes 32..64)", "overlap"]);
    let mut r = Raw::header(3, 2, 0);
    r.tensor("a", &[8], 0, 0).tensor("a", &[8], 0, 32).pad(32).bytes(&[0; 64]);
    parse_err(p(r.0), &["duplicate tensor name 'a'"]);
    let mut r = Raw::header(3, 1, 0);
    r.tensor("", &[8], 0, 0).pad(32).bytes(&[0; 32]);
    parse_err(p(r.0), &["empty name"]);
    // Data section start past the end (header not padded).
    let mut r = Raw::header(3, 1, 0);
    r.tensor("t", &[0], 0, 0);
    parse_err(p(r.0), &["data section should start"]);
    // Scales that are not finite are rejected at load.
    let mut blk = vec![0x00, 0x7C]; // f16 +inf
    blk.extend([0u8; 32]);
    let mut w = GgufWriter::new();
    w.add_tensor("q", &[32, 1], GgmlType::Q8_0, blk).unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    format_err(f.load("q"), &["scale d = inf"]);
}

// ------------------------------------------------------------------ Python gguf (optional)

/// Cross-checks with Python's `gguf` package when it is importable (skips with a reason
/// otherwise): Python reads and dequantizes a file we wrote, and we read a file Python wrote.
#[test]
fn python_gguf_cross_check_when_available() {
    let probe = "import gguf, numpy; from gguf import quants; quants.quantize; quants.dequantize; gguf.GGUFReader; gguf.GGUFWriter";
    let ok = std::process::Command::new("python3").args(["-c", probe]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("skipping: python3 with a current `gguf` package (and numpy) is not available (pip install gguf)");
        return;
    }
    let dir = tmp_dir("py");
    let ours = dir.join("ours.gguf");
    let m = Matrix::<f32>::random(3, 512, 21).unwrap();
    let mut w = GgufWriter::new();
    w.add_metadata("general.name", GgufValue::String("slim".into())).unwrap();
    w.add_metadata("toks", GgufValue::Array(GgufArray::String(vec!["a".into(), "bc".into()]))).unwrap();
    for (name, ty) in [
        ("f32", GgmlType::F32),
        ("f16", GgmlType::F16),
        ("bf16", GgmlType::BF16),
        ("q4_0", GgmlType::Q4_0),
        ("q8_0", GgmlType::Q8_0),
        ("q4_k", GgmlType::Q4_K),
    ] {
        w.add_matrix(name, &m, ty).unwrap();
    }
    w.write(&ours).unwrap();
    let theirs = dir.join("theirs.gguf");
    let script = r#"
import sys, numpy as np, gguf
from gguf import quants
ours, theirs, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
r = gguf.GGUFReader(ours)
assert bytes(r.fields['general.name'].parts[-1]).decode() == 'slim'
for t in r.tensors:
    x = quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
    x.tofile(f"{outdir}/{t.name}.f32")
rng = np.random.default_rng(3)
x = (rng.random((2, 64), dtype=np.float32) * 2 - 1).astype(np.float32)
x.tofile(f"{outdir}/in.f32")
wr = gguf.GGUFWriter(theirs, 'llama')
wr.add_uint32('n.u32', 7)
wr.add_array('n.arr', [1, 2, 3])
wr.add_tensor('q8', quants.quantize(x, gguf.GGMLQuantizationType.Q8_0), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
wr.add_tensor('q4', quants.quantize(x, gguf.GGMLQuantizationType.Q4_0), raw_dtype=gguf.GGMLQuantizationType.Q4_0)
wr.add_tensor('h', x.astype(np.float16))
wr.write_header_to_file(); wr.write_kv_data_to_file(); wr.write_tensors_to_file(); wr.close()
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, ours.to_str().unwrap(), theirs.to_str().unwrap(), dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let f = GgufFile::open(&ours).unwrap();
    let read_f32 = |p: std::path::PathBuf| -> Vec<f32> {
        std::fs::read(p).unwrap().chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    };
    for name in ["f32", "f16", "bf16", "q4_0", "q8_0", "q4_k"] {
        let py = read_f32(dir.join(format!("{name}.f32")));
        assert_eq!(bits(&f.load(name).unwrap().to_f32().data), bits(&py), "{name}: slimgemm and gguf-py disagree");
    }
    let g = GgufFile::open(&theirs).unwrap();
    assert_eq!(g.get("n.u32"), Some(&GgufValue::U32(7)));
    assert_eq!(g.get("general.architecture").and_then(|v| v.as_str()), Some("llama"));
    let x = read_f32(dir.join("in.f32"));
    assert_eq!(g.tensor_bytes("q8").unwrap(), quantize_gguf_q8_0(&x, 2, 64).unwrap().as_slice(), "Q8_0 encoder vs gguf-py");
    assert_eq!(g.tensor_bytes("q4").unwrap(), quantize_gguf_q4_0(&x, 2, 64).unwrap().as_slice(), "Q4_0 encoder vs gguf-py");
    let h = g.load_matrix("h").unwrap();
    assert_eq!((h.rows, h.cols), (2, 64));
    assert_eq!(bits(&h.data), bits(&x.iter().map(|&v| f16::from_f32(v).to_f32()).collect::<Vec<_>>()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regenerates the GGUF fuzz seeds: `SLIMGEMM_WRITE_SEEDS=fuzz/corpus cargo test
/// --no-default-features --test library -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = std::path::PathBuf::from(std::env::var("SLIMGEMM_WRITE_SEEDS").expect("set SLIMGEMM_WRITE_SEEDS"));
    let dir = root.join("gguf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("seed-hand.gguf"), hand_file()).unwrap();
    let m = Matrix::<f32>::random(2, 256, 1).unwrap();
    let mut w = GgufWriter::new().with_version(2).unwrap().with_alignment(16).unwrap();
    w.add_metadata("general.architecture", GgufValue::String("llama".into())).unwrap();
    w.add_tensor("q4_k", &[256, 1], GgmlType::Q4_K, quantize_gguf_q4_k(&m.data[..256], 1, 256).unwrap()).unwrap();
    w.add_tensor("q8_0", &[32, 1], GgmlType::Q8_0, quantize_gguf_q8_0(&m.data[..32], 1, 32).unwrap()).unwrap();
    w.add_tensor("q4_0", &[32, 2], GgmlType::Q4_0, quantize_gguf_q4_0(&m.data[..64], 2, 32).unwrap()).unwrap();
    w.add_matrix("bf16", &Matrix { rows: 2, cols: 4, data: m.data[..8].to_vec() }, GgmlType::BF16).unwrap();
    std::fs::write(dir.join("seed-quant.gguf"), w.to_bytes().unwrap()).unwrap();
}

/// Inputs the fuzzer found (tests/data/fuzz-seeds/gguf) and hand-made relatives: the fuzz
/// target's body must not panic on them.
#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-seeds/gguf");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        n += 1;
        let Ok(f) = GgufFile::from_bytes(bytes) else { continue };
        for t in f.tensors() {
            let _ = (t.rows(), t.cols(), t.n_elements());
            if let (Ok(a), Ok(b)) = (f.load(&t.name), f.dequantize(&t.name)) {
                assert_eq!(bits(&a.to_f32().data), bits(&b.data));
            }
        }
    }
    assert!(n >= 1);
    // crash-zero-dim-overflow: a zero dim made the file's size 0 while ne[1] * ne[2]
    // overflowed in rows(). Such dims are now rejected at parse.
    parse_err(GgufFile::from_bytes(one_tensor(3, &[0, 1 << 40, 1 << 40], 0, 0, 0)), &["overflow the element count"]);
    let f = GgufFile::from_bytes(one_tensor(3, &[0, 1 << 40, 1 << 20], 0, 0, 0)).unwrap();
    assert_eq!((f.tensors()[0].rows(), f.tensors()[0].n_elements()), (1 << 60, 0));
    parse_err(f.load("t"), &["no elements"]);
}

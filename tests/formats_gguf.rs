//! GGUF: the reader against hand-assembled files, the writer against the same bytes, every
//! supported tensor type against an independent float formulation and against ggml's
//! reference dequantizers (bit for bit), the encoders against ggml's reference quantizers
//! (golden bytes), and every bad-file class (a clear error, never a panic).

use crate::gguf_util::*;
use half::f16;
use slimgemm::formats::gguf::{dequantize_gguf, GgmlType, GgufFile, GgufTensor, GgufValue, GgufWriter};
use slimgemm::formats::{Int4Offsets, Int4Weights, Int8Weights, Matrix};
use slimgemm::{Device, Error};

// ------------------------------------------------------------------ the small hand file

#[test]
fn reader_parses_a_hand_assembled_v3_file() {
    let f = GgufFile::from_bytes(hand_file()).unwrap();
    assert_eq!((f.version(), f.alignment()), (3, 32));
    let md = f.metadata();
    assert_eq!(md.len(), 15);
    for ((k, v), (wk, wv)) in md.iter().zip(hand_metadata()) {
        assert_eq!((k.as_str(), v), (wk, &wv));
    }
    assert_eq!(f.get("general.name").and_then(|v| v.as_str()), Some("tiny llama"));
    assert_eq!(f.get("k.u32").and_then(|v| v.as_u64()), Some(4_000_000_000));
    assert_eq!(f.get("k.i8").and_then(|v| v.as_i64()), Some(-10));
    assert_eq!(f.get("k.i8").and_then(|v| v.as_u64()), None);
    assert_eq!(f.get("k.f32").and_then(|v| v.as_f64()), Some(1.5));
    assert_eq!(f.get("k.bool").and_then(|v| v.as_bool()), Some(true));
    assert_eq!(f.get("tokens").and_then(|v| v.as_array()).map(|a| a.len()), Some(3));
    assert!(f.get("missing").is_none());

    let t = f.tensors();
    assert_eq!(t.len(), 2);
    assert_eq!((t[0].name.as_str(), t[0].dims.as_slice(), t[0].ty, t[0].offset, t[0].n_bytes), ("a", &[3u64, 2][..], GgmlType::F32, 0, 24));
    assert_eq!((t[1].name.as_str(), t[1].dims.as_slice(), t[1].ty, t[1].offset, t[1].n_bytes), ("b", &[4u64][..], GgmlType::F16, 32, 8));
    assert_eq!((t[0].rows(), t[0].cols(), t[0].n_elements()), (2, 3, 6));
    assert_eq!((t[1].rows(), t[1].cols()), (1, 4));
    // Header: 24 + the kv and tensor infos, padded to 32.
    assert_eq!(f.data_offset() % 32, 0);

    let a = f.load_matrix("a").unwrap();
    assert_eq!((a.rows, a.cols, a.data.clone()), (2, 3, vec![1.0, -2.0, 0.5, 3.25, -0.125, 1e-3]));
    let b = f.load_matrix("b").unwrap();
    // f16 0x3555 = 1 + 0x155/1024 times 2^-2; 0x0001 = 2^-24 (the smallest subnormal).
    assert_eq!(b.data, vec![1.0, -2.0, (1.0 + 341.0 / 1024.0) / 4.0, 2f32.powi(-24)]);
    assert_eq!(f.tensor_bytes("b").unwrap(), &[0x00, 0x3C, 0x00, 0xC0, 0x55, 0x35, 0x01, 0x00]);
    parse_err(f.load("nope"), &["no tensor named 'nope'"]);
}

#[test]
fn writer_reproduces_the_hand_assembled_bytes() {
    let mut w = GgufWriter::new();
    for (k, v) in hand_metadata() {
        w.add_metadata(k, v).unwrap();
    }
    let a: Vec<u8> = [1.0f32, -2.0, 0.5, 3.25, -0.125, 1e-3].iter().flat_map(|v| v.to_le_bytes()).collect();
    w.add_tensor("a", &[3, 2], GgmlType::F32, a).unwrap();
    let b: Vec<u8> = [0x3C00u16, 0xC000, 0x3555, 0x0001].iter().flat_map(|v| v.to_le_bytes()).collect();
    w.add_tensor("b", &[4], GgmlType::F16, b).unwrap();
    assert_eq!(w.to_bytes().unwrap(), hand_file());

    // The writer's own checks.
    assert!(w.add_metadata("k.u8", GgufValue::U8(1)).is_err(), "duplicate key");
    assert!(w.add_metadata("", GgufValue::U8(1)).is_err(), "empty key");
    assert!(w.add_metadata("general.alignment", GgufValue::U64(64)).is_err(), "alignment must be u32");
    assert!(w.add_tensor("a", &[1], GgmlType::F32, vec![0; 4]).is_err(), "duplicate tensor");
    format_err(w.add_tensor("c", &[3], GgmlType::F32, vec![0; 8]), &["needs 12 bytes, got 8"]);
    format_err(w.add_tensor("c", &[16], GgmlType::Q8_0, vec![]), &["not a multiple of the block size 32"]);
    format_err(w.add_tensor("c", &[1, 1, 1, 1, 1], GgmlType::F32, vec![0; 4]), &["5 dims"]);
    assert!(GgufWriter::new().with_version(1).is_err());
    assert!(GgufWriter::new().with_alignment(48).is_err());
}

#[test]
fn version_2_and_a_custom_alignment_round_trip() {
    let mut w = GgufWriter::new().with_version(2).unwrap().with_alignment(64).unwrap();
    w.add_metadata("general.architecture", GgufValue::String("llama".into())).unwrap();
    let m1 = Matrix::<f32>::random(3, 5, 1).unwrap();
    let m2 = Matrix::<f32>::random(2, 7, 2).unwrap();
    w.add_matrix("x", &m1, GgmlType::F32).unwrap().add_matrix("y", &m2, GgmlType::F32).unwrap();
    let bytes = w.to_bytes().unwrap();
    assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!((f.version(), f.alignment()), (2, 64));
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(f.tensor_info("y").unwrap().offset, 64); // 60 bytes of x padded to 64
    assert_eq!(f.load_matrix("x").unwrap(), m1);
    assert_eq!(f.load_matrix("y").unwrap(), m2);
    assert_eq!(f.get("general.alignment"), Some(&GgufValue::U32(64)));
}

#[test]
fn open_memory_maps_a_written_file() {
    let dir = tmp_dir("open");
    let path = dir.join("m.gguf");
    let mut w = GgufWriter::new();
    let m = Matrix::<f32>::random(4, 64, 3).unwrap();
    w.add_matrix("w", &m, GgmlType::Q8_0).unwrap().add_matrix("d", &m, GgmlType::BF16).unwrap();
    w.write(&path).unwrap();
    let f = GgufFile::open(&path).unwrap();
    let g = GgufFile::from_bytes(std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(f.load("w").unwrap(), g.load("w").unwrap());
    assert_eq!(f.load("d").unwrap(), g.load("d").unwrap());
    assert!(format!("{f:?}").contains("m.gguf"));
    // Missing and empty files.
    assert!(matches!(GgufFile::open(dir.join("missing.gguf")), Err(Error::Io(_))));
    std::fs::write(dir.join("empty.gguf"), b"").unwrap();
    parse_err(GgufFile::open(dir.join("empty.gguf")), &["truncated", "magic"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------ dense types

#[test]
fn f32_f16_bf16_load_exactly() {
    let f16_bits: [u16; 8] = [0x0000, 0x8000, 0x3C00, 0xBC00, 0x7BFF, 0x0400, 0x03FF, 0x3E00]; // 0, -0, 1, -1, 65504, 2^-14, max subnormal, 1.5
    let f16_want = [0.0f32, -0.0, 1.0, -1.0, 65504.0, 2f32.powi(-14), 1023.0 * 2f32.powi(-24), 1.5];
    let bf16_bits: [u16; 8] = [0x3F80, 0xC049, 0x0000, 0x7F7F, 0x0001, 0x4000, 0xBF00, 0x3E80]; // 1, -3.140625, 0, max, min subnormal, 2, -0.5, 0.25
    let bf16_want = [1.0f32, -3.140625, 0.0, f32::from_bits(0x7F7F_0000), f32::from_bits(0x0001_0000), 2.0, -0.5, 0.25];
    let f32_vals = [1.0f32, -0.0, f32::MIN_POSITIVE, 3.4e38, -1e-45, 0.1, 7.0, -7.5];
    let mut w = GgufWriter::new();
    w.add_tensor("h", &[4, 2], GgmlType::F16, f16_bits.iter().flat_map(|b| b.to_le_bytes()).collect()).unwrap();
    w.add_tensor("b", &[2, 2, 2], GgmlType::BF16, bf16_bits.iter().flat_map(|b| b.to_le_bytes()).collect()).unwrap();
    w.add_tensor("f", &[8], GgmlType::F32, f32_vals.iter().flat_map(|b| b.to_le_bytes()).collect()).unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let h = f.load_matrix("h").unwrap();
    assert_eq!((h.rows, h.cols), (2, 4));
    assert_eq!(bits(&h.data), bits(&f16_want));
    let b = f.load_matrix("b").unwrap();
    assert_eq!((b.rows, b.cols), (4, 2), "rows = ne1 * ne2");
    assert_eq!(bits(&b.data), bits(&bf16_want));
    let x = f.load_matrix("f").unwrap();
    assert_eq!((x.rows, x.cols), (1, 8));
    assert_eq!(bits(&x.data), bits(&f32_vals));
    // The reference dequantizer agrees, and f32 -> f16 / bf16 encoding in add_matrix rounds to nearest even.
    assert_eq!(bits(&dequantize_gguf(GgmlType::F16, f.tensor_bytes("h").unwrap(), 8).unwrap()), bits(&f16_want));
    let mut w = GgufWriter::new();
    let m = Matrix { rows: 1, cols: 3, data: vec![1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11), 1.0 + 2f32.powi(-8)] };
    w.add_matrix("h", &m, GgmlType::F16).unwrap().add_matrix("b", &m, GgmlType::BF16).unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.load_matrix("h").unwrap().data, vec![1.0, 1.0 + 2.0 * 2f32.powi(-10), 1.0 + 2f32.powi(-8)]);
    assert_eq!(f.load_matrix("b").unwrap().data, vec![1.0, 1.0, 1.0]);
}

// ------------------------------------------------------------------ quantized types

/// Q4_0 rows of random blocks with hand-chosen scales.
fn random_q4_0(n: usize, k: usize, rng: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n * k / 32 {
        out.extend_from_slice(&rng.f16(true).to_le_bytes());
        out.extend((0..16).map(|_| rng.byte()));
    }
    out
}

#[test]
fn q4_0_matches_ggml_and_a_float_formulation() {
    let mut rng = Lcg(11);
    let (n, k) = (3, 96);
    let bytes = random_q4_0(n, k, &mut rng);
    let mut w = GgufWriter::new();
    w.add_tensor("q", &[k as u64, n as u64], GgmlType::Q4_0, bytes.clone()).unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let GgufTensor::Int4(q) = f.load("q").unwrap() else { panic!("Q4_0 loads as Int4Weights") };
    assert_eq!((q.n, q.k, q.group, q.mins.is_none(), q.perm.is_none()), (n, k, 32, true, true));
    // Independent: element e of block b: byte 2 + e % 16, low nibble for e < 16, times d.
    let mut want = Vec::new();
    for blk in bytes.chunks(18) {
        let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
        for e in 0..32 {
            let byte = blk[2 + e % 16];
            let nib = if e < 16 { byte & 15 } else { byte >> 4 };
            want.push((nib as f32 - 8.0) * d);
        }
    }
    assert_eq!(bits(&q.dequantize().data), bits(&want));
    assert_eq!(bits(&dequantize_gguf(GgmlType::Q4_0, &bytes, n * k).unwrap()), bits(&want));
    assert_eq!(bits(&f.dequantize("q").unwrap().data), bits(&want));
}

#[test]
fn q8_0_hand_block_and_random_blocks_match_ggml() {
    // One block, d = 0.5 (0x3800): x = 0.5 q.
    let mut blk = vec![0x00, 0x38];
    let qs: Vec<i8> = (0..32).map(|i| (i * 8 - 128) as i8).collect();
    blk.extend(qs.iter().map(|&q| q as u8));
    let w = Int8Weights::from_gguf_q8_0(&blk, 1, 32).unwrap();
    assert_eq!((w.n, w.k, w.group, w.scales.clone()), (1, 32, 32, vec![0.5]));
    let want: Vec<f32> = qs.iter().map(|&q| q as f32 * 0.5).collect();
    assert_eq!(w.dequantize().data, want);
    assert_eq!(w.dequant(0, 0), -64.0);

    let mut rng = Lcg(5);
    let (n, k) = (4, 128);
    let mut bytes = Vec::new();
    for _ in 0..n * k / 32 {
        bytes.extend_from_slice(&rng.f16(true).to_le_bytes());
        bytes.extend((0..32).map(|_| rng.byte()));
    }
    let mut wr = GgufWriter::new();
    wr.add_tensor("q", &[k as u64, n as u64], GgmlType::Q8_0, bytes.clone()).unwrap();
    let f = GgufFile::from_bytes(wr.to_bytes().unwrap()).unwrap();
    let GgufTensor::Int8(q) = f.load("q").unwrap() else { panic!("Q8_0 loads as Int8Weights") };
    let want: Vec<f32> = bytes
        .chunks(34)
        .flat_map(|b| {
            let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
            b[2..].iter().map(move |&v| v as i8 as f32 * d)
        })
        .collect();
    assert_eq!(bits(&q.dequantize().data), bits(&want));
    assert_eq!(bits(&dequantize_gguf(GgmlType::Q8_0, &bytes, n * k).unwrap()), bits(&want));
}

/// Packs eight 6-bit (scale, min) pairs as the GGUF spec lays them out: sub-blocks 0..4 in the
/// low 6 bits of bytes 0..4 (scales) and 4..8 (mins); sub-blocks 4..8 as nibbles of bytes
/// 8..12 (scale low, min high) with their top 2 bits in bits 6..8 of bytes 0..4 (scales) and
/// 4..8 (mins).
fn pack_q4k_scales(sc: [u8; 8], m: [u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4);
    }
    s
}

/// A Q4_K super-block with the given parts; `codes[e]` is element e's 4-bit code.
fn q4k_block(d: f16, dmin: f16, sc: [u8; 8], m: [u8; 8], codes: &[u8; 256]) -> Vec<u8> {
    let mut out = d.to_le_bytes().to_vec();
    out.extend_from_slice(&dmin.to_le_bytes());
    out.extend_from_slice(&pack_q4k_scales(sc, m));
    // Element e is in chunk e / 64; byte 32 (e / 64) + e % 32; low nibble if e % 64 < 32.
    let mut qs = [0u8; 128];
    for (e, &c) in codes.iter().enumerate() {
        let byte = &mut qs[32 * (e / 64) + e % 32];
        *byte |= if e % 64 < 32 { c } else { c << 4 };
    }
    out.extend_from_slice(&qs);
    out
}

/// Independent float formulation: element e of a super-block is `(d * sc) * q - (dmin * m)`
/// with the sub-block `e / 32`'s chosen scale and min.
fn q4k_expect(d: f16, dmin: f16, sc: [u8; 8], m: [u8; 8], codes: &[u8; 256]) -> Vec<f32> {
    (0..256)
        .map(|e| {
            let j = e / 32;
            let scale = d.to_f32() * sc[j] as f32;
            let min = dmin.to_f32() * m[j] as f32;
            scale * codes[e] as f32 - min
        })
        .collect()
}

#[test]
fn q4_k_hand_block_matches_the_spec() {
    // Scales and mins that use all 6 bits (top bits set for sub-blocks 4..8).
    let sc = [1, 2, 63, 40, 17, 63, 32, 5];
    let m = [0, 63, 1, 33, 48, 2, 31, 60];
    let codes: [u8; 256] = std::array::from_fn(|e| ((e * 7 + e / 32) % 16) as u8);
    let (d, dmin) = (f16::from_f32(0.0625), f16::from_f32(0.03125));
    let blk = q4k_block(d, dmin, sc, m, &codes);
    assert_eq!(blk.len(), 144);
    let w = Int4Weights::from_gguf_q4_k(&blk, 1, 256).unwrap();
    assert_eq!((w.n, w.k, w.group, w.symmetric, w.zeros.len()), (1, 256, 32, false, 0));
    let Int4Offsets::Mins(mins) = w.offsets() else { panic!("Q4_K has float minimums") };
    assert_eq!(mins, &m.map(|v| v as f32 * 0.03125));
    assert_eq!(w.scales, sc.map(|v| v as f32 * 0.0625));
    for (e, &c) in codes.iter().enumerate() {
        assert_eq!(w.q(0, e), c as u32);
    }
    let want = q4k_expect(d, dmin, sc, m, &codes);
    assert_eq!(bits(&w.dequantize().data), bits(&want));
    assert_eq!(bits(&dequantize_gguf(GgmlType::Q4_K, &blk, 256).unwrap()), bits(&want));
    // Hand-checked elements: e = 0 (sub-block 0, code 0): 0 - 0 = 0; e = 40 (sub-block 1, code
    // (280 + 1) % 16 = 9): 0.125 * 9 - 63 / 32 = -0.84375.
    assert_eq!((want[0], want[40]), (0.0, 0.125 * 9.0 - 63.0 / 32.0));
}

#[test]
fn q4_k_random_blocks_match_ggml_bit_for_bit() {
    let mut rng = Lcg(99);
    let (n, k) = (3, 512);
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for _ in 0..n * k / 256 {
        let sc: [u8; 8] = std::array::from_fn(|_| rng.byte() & 63);
        let m: [u8; 8] = std::array::from_fn(|_| rng.byte() & 63);
        let codes: [u8; 256] = std::array::from_fn(|_| rng.byte() & 15);
        let (d, dmin) = (rng.f16(false), rng.f16(true));
        bytes.extend(q4k_block(d, dmin, sc, m, &codes));
        want.extend(q4k_expect(d, dmin, sc, m, &codes));
    }
    let mut wr = GgufWriter::new();
    wr.add_tensor("q", &[k as u64, n as u64], GgmlType::Q4_K, bytes.clone()).unwrap();
    let f = GgufFile::from_bytes(wr.to_bytes().unwrap()).unwrap();
    let GgufTensor::Int4(w) = f.load("q").unwrap() else { panic!("Q4_K loads as Int4Weights") };
    assert_eq!(bits(&w.dequantize().data), bits(&want));
    assert_eq!(bits(&dequantize_gguf(GgmlType::Q4_K, &bytes, n * k).unwrap()), bits(&want));
    // On devices: gemm_w4a16 dequantizes q * s - min in registers; the CPU reference equals
    // x times ggml's dequantization (f64 sums of the same f32 products).
    let dev = Device::cpu();
    let x = Matrix::<f32>::random(2, k, 3).unwrap();
    let mut y = dev.zeros(2, n, slimgemm::DType::F32).unwrap();
    dev.gemm_w4a16(&dev.upload_matrix(&x).unwrap(), &dev.upload_int4(&w).unwrap(), &mut y).unwrap();
    let y = dev.download_f32(&y).unwrap();
    for i in 0..2 {
        for j in 0..n {
            let want: f64 = (0..k).map(|kk| x.get(i, kk) as f64 * want[j * k + kk] as f64).sum();
            assert_eq!(y.get(i, j), want as f32, "({i}, {j})");
        }
    }
}

#[test]
fn unsupported_types_are_named() {
    let mut w = GgufWriter::new();
    w.add_tensor("q5", &[256, 1], GgmlType::Q5_K, vec![0; 176]).unwrap();
    w.add_tensor("i32", &[2], GgmlType::I32, vec![0; 8]).unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.tensor_info("q5").unwrap().ty, GgmlType::Q5_K);
    format_err(f.load("q5"), &["'q5'", "q5_K (ggml type 13)", "cannot load"]);
    format_err(f.load("i32"), &["i32 (ggml type 26)"]);
    format_err(f.dequantize("q5"), &["q5_K"]);
    format_err(f.load_matrix("q5"), &["q5_K"]);
    assert!(dequantize_gguf(GgmlType::Q8_0, &[0; 34], 31).is_err());
    assert!(dequantize_gguf(GgmlType::Q8_0, &[0; 33], 32).is_err());
    for &t in GgmlType::ALL {
        assert_eq!(GgmlType::from_id(t.id()), Some(t));
    }
    for removed in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000] {
        assert_eq!(GgmlType::from_id(removed), None);
    }
}

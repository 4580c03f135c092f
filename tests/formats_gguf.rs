//! GGUF: the reader against hand-assembled files, the writer against the same bytes, every
//! supported tensor type against an independent float formulation and against ggml's
//! reference dequantizers (bit for bit), the encoders against ggml's reference quantizers
//! (golden bytes), and every bad-file class (a clear error, never a panic).

use half::f16;
use slimgemm::formats::gguf::{dequantize_gguf, GgmlType, GgufArray, GgufFile, GgufTensor, GgufValue, GgufWriter};
use slimgemm::formats::quant::{quantize_gguf_q4_0, quantize_gguf_q4_k, quantize_gguf_q8_0};
use slimgemm::formats::{Int4Offsets, Int4Weights, Int8Weights, Matrix};
use slimgemm::{Device, Error};

// ------------------------------------------------------------------ helpers

/// A hand assembler of GGUF bytes, independent of the library's writer.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }
    /// Header: magic, version, tensor count, kv count.
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw::default();
        r.bytes(b"GGUF").u32(version).u64(n_tensors).u64(n_kv);
        r
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn pad(&mut self, align: usize) -> &mut Self {
        while self.0.len() % align != 0 {
            self.0.push(0);
        }
        self
    }
}

/// Deterministic values in [-1, 1), exact in f32 (k / 2^23 - 1).
struct Lcg(u64);
impl Lcg {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / 8_388_608.0 - 1.0
    }
    fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }
    /// A finite f16 with a moderate exponent (as real scales have).
    fn f16(&mut self, neg: bool) -> f16 {
        let mag = 0.001 + (self.f32() + 1.0) * 0.05;
        f16::from_f32(if neg && self.next_u64() & 1 == 1 { -mag } else { mag })
    }
}

#[track_caller]
fn parse_err<T: std::fmt::Debug>(r: slimgemm::Result<T>, needles: &[&str]) {
    match r {
        Err(e @ Error::Parse { .. }) => {
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "message `{msg}` should mention `{n}`");
            }
        }
        other => panic!("expected a parse error mentioning {needles:?}, got {other:?}"),
    }
}

#[track_caller]
fn format_err<T: std::fmt::Debug>(r: slimgemm::Result<T>, needles: &[&str]) {
    match r {
        Err(e @ Error::Format { .. }) => {
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "message `{msg}` should mention `{n}`");
            }
        }
        other => panic!("expected a format error mentioning {needles:?}, got {other:?}"),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn tmp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("slimgemm-gguf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ------------------------------------------------------------------ the small hand file

/// A v3 file with one metadata pair of every value type (arrays included, one nested) and
/// two tensors (F32 [3, 2] at 0, F16 [4] at 32), default alignment 32.
fn hand_file() -> Vec<u8> {
    let mut r = Raw::header(3, 2, 15);
    r.str("k.u8").u32(0).u8(200);
    r.str("k.i8").u32(1).u8(0xF6); // -10
    r.str("k.u16").u32(2).bytes(&60000u16.to_le_bytes());
    r.str("k.i16").u32(3).bytes(&(-300i16).to_le_bytes());
    r.str("k.u32").u32(4).u32(4_000_000_000);
    r.str("k.i32").u32(5).bytes(&(-70000i32).to_le_bytes());
    r.str("k.f32").u32(6).bytes(&1.5f32.to_le_bytes());
    r.str("k.bool").u32(7).u8(1);
    r.str("general.name").u32(8).str("tiny llama");
    r.str("k.u64").u32(10).u64(1 << 40);
    r.str("k.i64").u32(11).bytes(&(-5i64).to_le_bytes());
    r.str("k.f64").u32(12).bytes(&0.1f64.to_le_bytes());
    r.str("tokens").u32(9).u32(8).u64(3).str("<s>").str("").str("héllo");
    r.str("k.arr_u8").u32(9).u32(0).u64(4).bytes(&[1, 2, 3, 4]);
    // Array of 2 arrays: [i32 [7, -7]], [bool [1, 0, 1]].
    r.str("k.nested").u32(9).u32(9).u64(2);
    r.u32(5).u64(2).bytes(&7i32.to_le_bytes()).bytes(&(-7i32).to_le_bytes());
    r.u32(7).u64(3).bytes(&[1, 0, 1]);
    r.tensor("a", &[3, 2], 0, 0);
    r.tensor("b", &[4], 1, 32);
    r.pad(32);
    for v in [1.0f32, -2.0, 0.5, 3.25, -0.125, 1e-3] {
        r.bytes(&v.to_le_bytes());
    }
    r.pad(32); // 24 bytes of "a", padded to 32
    for h in [0x3C00u16, 0xC000, 0x3555, 0x0001] {
        r.bytes(&h.to_le_bytes());
    }
    r.pad(32);
    r.0
}

fn hand_metadata() -> Vec<(&'static str, GgufValue)> {
    vec![
        ("k.u8", GgufValue::U8(200)),
        ("k.i8", GgufValue::I8(-10)),
        ("k.u16", GgufValue::U16(60000)),
        ("k.i16", GgufValue::I16(-300)),
        ("k.u32", GgufValue::U32(4_000_000_000)),
        ("k.i32", GgufValue::I32(-70000)),
        ("k.f32", GgufValue::F32(1.5)),
        ("k.bool", GgufValue::Bool(true)),
        ("general.name", GgufValue::String("tiny llama".into())),
        ("k.u64", GgufValue::U64(1 << 40)),
        ("k.i64", GgufValue::I64(-5)),
        ("k.f64", GgufValue::F64(0.1)),
        ("tokens", GgufValue::Array(GgufArray::String(vec!["<s>".into(), "".into(), "héllo".into()]))),
        ("k.arr_u8", GgufValue::Array(GgufArray::U8(vec![1, 2, 3, 4]))),
        ("k.nested", GgufValue::Array(GgufArray::Array(vec![GgufArray::I32(vec![7, -7]), GgufArray::Bool(vec![true, false, true])]))),
    ]
}

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
/// --no-default-features --test formats_gguf -- --ignored write_fuzz_seeds`.
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

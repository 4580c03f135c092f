//! Helpers shared by the GGUF test files.
#![allow(dead_code)]

use half::f16;
use slimgemm::formats::gguf::{GgufArray, GgufValue};
use slimgemm::Error;

// ------------------------------------------------------------------ helpers

/// A hand assembler of GGUF bytes, independent of the library's writer.
#[derive(Default)]
pub struct Raw(pub Vec<u8>);

impl Raw {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }
    /// Header: magic, version, tensor count, kv count.
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw::default();
        r.bytes(b"GGUF").u32(version).u64(n_tensors).u64(n_kv);
        r
    }
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    pub fn pad(&mut self, align: usize) -> &mut Self {
        while self.0.len() % align != 0 {
            self.0.push(0);
        }
        self
    }
}

/// Deterministic values in [-1, 1), exact in f32 (k / 2^23 - 1).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / 8_388_608.0 - 1.0
    }
    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }
    /// A finite f16 with a moderate exponent (as real scales have).
    pub fn f16(&mut self, neg: bool) -> f16 {
        let mag = 0.001 + (self.f32() + 1.0) * 0.05;
        f16::from_f32(if neg && self.next_u64() & 1 == 1 { -mag } else { mag })
    }
}

#[track_caller]
pub fn parse_err<T: std::fmt::Debug>(r: slimgemm::Result<T>, needles: &[&str]) {
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
pub fn format_err<T: std::fmt::Debug>(r: slimgemm::Result<T>, needles: &[&str]) {
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

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

pub fn tmp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("slimgemm-gguf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A v3 file with one metadata pair of every value type (arrays included, one nested) and
/// two tensors (F32 [3, 2] at 0, F16 [4] at 32), default alignment 32.
pub fn hand_file() -> Vec<u8> {
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

pub fn hand_metadata() -> Vec<(&'static str, GgufValue)> {
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

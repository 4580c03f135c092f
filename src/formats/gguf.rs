//! GGUF (ggml) model files: a memory-mapped reader of GGUF versions 2 and 3, a small writer,
//! and reference dequantizers bit-exact to ggml's `dequantize_row_*`.
//!
//! Layout (ggml `docs/gguf.md`, little-endian): magic `GGUF`, `u32` version, `u64` tensor
//! count, `u64` metadata count; the metadata key/value pairs (key: `u64` length + UTF-8
//! bytes; `u32` value type; value); the tensor infos (name, `u32` n_dims, n_dims `u64` dims
//! with `ne[0]` the fastest, `u32` ggml type, `u64` offset into the data section); padding
//! to `general.alignment` (default 32); the data section. A 2-D tensor with
//! `dims = [ne0, ne1]` is a row-major `[ne1, ne0]` matrix: for a linear layer `ne0 = k` (input
//! features) and `ne1 = n` (output channels).
//!
//! Every header field is checked before it is used (counts and lengths against the bytes
//! left, sizes with checked arithmetic, offsets against the data section, tensors against
//! each other), so a bad file is an [`Error::Parse`] naming the problem, never a panic or an
//! allocation sized by an unchecked field.
//!
//! ```
//! use slimgemm::formats::gguf::{GgmlType, GgufFile, GgufTensor, GgufValue, GgufWriter};
//! use slimgemm::formats::Matrix;
//! # fn main() -> slimgemm::Result<()> {
//! let w = Matrix::<f32>::random(4, 64, 1)?; // [n = 4, k = 64]
//! let mut wr = GgufWriter::new();
//! wr.add_metadata("general.name", GgufValue::String("demo".into()))?;
//! wr.add_matrix("blk.0.w", &w, GgmlType::Q8_0)?;
//! let file = GgufFile::from_bytes(wr.to_bytes()?)?;
//! assert_eq!(file.get("general.name").and_then(|v| v.as_str()), Some("demo"));
//! let GgufTensor::Int8(q) = file.load("blk.0.w")? else { unreachable!() };
//! assert_eq!((q.n, q.k, q.group), (4, 64, 32));
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::path::Path;

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::formats::quant::{q4k_scale_min, quantize_gguf_q4_0, quantize_gguf_q4_k, quantize_gguf_q8_0};
use crate::formats::{Int4Weights, Int8Weights, Matrix};

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section and of every tensor when `general.alignment` is absent.
pub const GGUF_DEFAULT_ALIGNMENT: u64 = 32;
/// Most dimensions a ggml tensor has.
pub const GGUF_MAX_DIMS: usize = 4;
/// Deepest nesting of metadata arrays the reader accepts (the spec allows arrays of arrays;
/// ggml itself reads none).
pub const GGUF_MAX_ARRAY_DEPTH: usize = 8;
/// The metadata key holding the alignment (a `u32`, a power of two).
pub const GGUF_KEY_ALIGNMENT: &str = "general.alignment";

macro_rules! ggml_types {
    ($($(#[$doc:meta])* $v:ident = $id:literal, $name:literal, $blck:literal, $size:literal;)*) => {
        /// A ggml tensor type (`enum ggml_type` of ggml.h), with its block geometry.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum GgmlType {
            $($(#[$doc])* $v,)*
        }

        impl GgmlType {
            /// Every type this reader knows (ids 4, 5, 31..=33 and 36..=38 were removed from
            /// ggml and are rejected).
            pub const ALL: &'static [GgmlType] = &[$(GgmlType::$v),*];

            /// The type of a ggml type id, or `None` for an unknown or removed id.
            pub fn from_id(id: u32) -> Option<GgmlType> {
                match id {
                    $($id => Some(GgmlType::$v),)*
                    _ => None,
                }
            }
            /// The ggml type id stored in GGUF tensor infos.
            pub fn id(self) -> u32 {
                match self { $(GgmlType::$v => $id,)* }
            }
            /// ggml's name of the type (`ggml_type_name`: `f32`, `q4_0`, `q4_K`, ...).
            pub fn name(self) -> &'static str {
                match self { $(GgmlType::$v => $name,)* }
            }
            /// Elements per block (`ggml_blck_size`); `ne[0]` must be a multiple of it.
            pub fn block_size(self) -> u64 {
                match self { $(GgmlType::$v => $blck,)* }
            }
            /// Bytes per block (`ggml_type_size`).
            pub fn type_size(self) -> u64 {
                match self { $(GgmlType::$v => $size,)* }
            }
        }
    };
}

ggml_types! {
    /// 32-bit float.
    F32 = 0, "f32", 1, 4;
    /// IEEE half.
    F16 = 1, "f16", 1, 2;
    /// 32 elements: f16 `d`, 16 bytes of nibbles; `x = d (q - 8)`.
    Q4_0 = 2, "q4_0", 32, 18;
    /// 32 elements: f16 `d`, f16 `m`, 16 bytes of nibbles.
    Q4_1 = 3, "q4_1", 32, 20;
    /// 32 elements, 5-bit.
    Q5_0 = 6, "q5_0", 32, 22;
    /// 32 elements, 5-bit with minimum.
    Q5_1 = 7, "q5_1", 32, 24;
    /// 32 elements: f16 `d`, 32 int8; `x = d q`.
    Q8_0 = 8, "q8_0", 32, 34;
    /// 32 elements, int8 with sum.
    Q8_1 = 9, "q8_1", 32, 36;
    /// 256-element super-block, 2-bit.
    Q2_K = 10, "q2_K", 256, 84;
    /// 256-element super-block, 3-bit.
    Q3_K = 11, "q3_K", 256, 110;
    /// 256-element super-block, 4-bit with 6-bit scales and minimums.
    Q4_K = 12, "q4_K", 256, 144;
    /// 256-element super-block, 5-bit.
    Q5_K = 13, "q5_K", 256, 176;
    /// 256-element super-block, 6-bit.
    Q6_K = 14, "q6_K", 256, 210;
    /// 256-element super-block, 8-bit (intermediate type).
    Q8_K = 15, "q8_K", 256, 292;
    /// i-quant.
    IQ2_XXS = 16, "iq2_xxs", 256, 66;
    /// i-quant.
    IQ2_XS = 17, "iq2_xs", 256, 74;
    /// i-quant.
    IQ3_XXS = 18, "iq3_xxs", 256, 98;
    /// i-quant.
    IQ1_S = 19, "iq1_s", 256, 50;
    /// i-quant.
    IQ4_NL = 20, "iq4_nl", 32, 18;
    /// i-quant.
    IQ3_S = 21, "iq3_s", 256, 110;
    /// i-quant.
    IQ2_S = 22, "iq2_s", 256, 82;
    /// i-quant.
    IQ4_XS = 23, "iq4_xs", 256, 136;
    /// 8-bit integer.
    I8 = 24, "i8", 1, 1;
    /// 16-bit integer.
    I16 = 25, "i16", 1, 2;
    /// 32-bit integer.
    I32 = 26, "i32", 1, 4;
    /// 64-bit integer.
    I64 = 27, "i64", 1, 8;
    /// 64-bit float.
    F64 = 28, "f64", 1, 8;
    /// i-quant.
    IQ1_M = 29, "iq1_m", 256, 56;
    /// bfloat16.
    BF16 = 30, "bf16", 1, 2;
    /// Ternary.
    TQ1_0 = 34, "tq1_0", 256, 54;
    /// Ternary.
    TQ2_0 = 35, "tq2_0", 256, 66;
    /// Microscaling FP4.
    MXFP4 = 39, "mxfp4", 32, 17;
    /// NVFP4.
    NVFP4 = 40, "nvfp4", 64, 36;
    /// 1-bit.
    Q1_0 = 41, "q1_0", 128, 18;
    /// 2-bit.
    Q2_0 = 42, "q2_0", 64, 18;
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (ggml type {})", self.name(), self.id())
    }
}

/// Metadata value type ids (`gguf_metadata_value_type`).
mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// `uint8` (type 0).
    U8(u8),
    /// `int8` (type 1).
    I8(i8),
    /// `uint16` (type 2).
    U16(u16),
    /// `int16` (type 3).
    I16(i16),
    /// `uint32` (type 4).
    U32(u32),
    /// `int32` (type 5).
    I32(i32),
    /// `float32` (type 6).
    F32(f32),
    /// `bool` (type 7): one byte, 0 false, anything else true.
    Bool(bool),
    /// UTF-8 string (type 8).
    String(String),
    /// Array (type 9).
    Array(GgufArray),
    /// `uint64` (type 10).
    U64(u64),
    /// `int64` (type 11).
    I64(i64),
    /// `float64` (type 12).
    F64(f64),
}

/// A metadata array: one element type, stored compactly.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufArray {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `int8` elements.
    I8(Vec<i8>),
    /// `uint16` elements.
    U16(Vec<u16>),
    /// `int16` elements.
    I16(Vec<i16>),
    /// `uint32` elements.
    U32(Vec<u32>),
    /// `int32` elements.
    I32(Vec<i32>),
    /// `float32` elements.
    F32(Vec<f32>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// String elements.
    String(Vec<String>),
    /// Nested arrays (each with its own element type).
    Array(Vec<GgufArray>),
    /// `uint64` elements.
    U64(Vec<u64>),
    /// `int64` elements.
    I64(Vec<i64>),
    /// `float64` elements.
    F64(Vec<f64>),
}

impl GgufArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            GgufArray::U8(v) => v.len(),
            GgufArray::I8(v) => v.len(),
            GgufArray::U16(v) => v.len(),
            GgufArray::I16(v) => v.len(),
            GgufArray::U32(v) => v.len(),
            GgufArray::I32(v) => v.len(),
            GgufArray::F32(v) => v.len(),
            GgufArray::Bool(v) => v.len(),
            GgufArray::String(v) => v.len(),
            GgufArray::Array(v) => v.len(),
            GgufArray::U64(v) => v.len(),
            GgufArray::I64(v) => v.len(),
            GgufArray::F64(v) => v.len(),
        }
    }
    /// True if the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The element type id.
    pub fn elem_type(&self) -> u32 {
        match self {
            GgufArray::U8(_) => vt::U8,
            GgufArray::I8(_) => vt::I8,
            GgufArray::U16(_) => vt::U16,
            GgufArray::I16(_) => vt::I16,
            GgufArray::U32(_) => vt::U32,
            GgufArray::I32(_) => vt::I32,
            GgufArray::F32(_) => vt::F32,
            GgufArray::Bool(_) => vt::BOOL,
            GgufArray::String(_) => vt::STRING,
            GgufArray::Array(_) => vt::ARRAY,
            GgufArray::U64(_) => vt::U64,
            GgufArray::I64(_) => vt::I64,
            GgufArray::F64(_) => vt::F64,
        }
    }
}

impl GgufValue {
    /// The metadata value type id (0..=12).
    pub fn type_id(&self) -> u32 {
        match self {
            GgufValue::U8(_) => vt::U8,
            GgufValue::I8(_) => vt::I8,
            GgufValue::U16(_) => vt::U16,
            GgufValue::I16(_) => vt::I16,
            GgufValue::U32(_) => vt::U32,
            GgufValue::I32(_) => vt::I32,
            GgufValue::F32(_) => vt::F32,
            GgufValue::Bool(_) => vt::BOOL,
            GgufValue::String(_) => vt::STRING,
            GgufValue::Array(_) => vt::ARRAY,
            GgufValue::U64(_) => vt::U64,
            GgufValue::I64(_) => vt::I64,
            GgufValue::F64(_) => vt::F64,
        }
    }
    /// The value as a `u64` if it is an integer >= 0 of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v as u64),
            GgufValue::U16(v) => Some(v as u64),
            GgufValue::U32(v) => Some(v as u64),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    /// The value as an `i64` if it is an integer of any width that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            GgufValue::U64(v) => i64::try_from(v).ok(),
            GgufValue::I8(v) => Some(v as i64),
            GgufValue::I16(v) => Some(v as i64),
            GgufValue::I32(v) => Some(v as i64),
            GgufValue::I64(v) => Some(v),
            _ => self.as_u64().map(|v| v as i64),
        }
    }
    /// The value as an `f64` if it is a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => None,
        }
    }
    /// The value if it is a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(v) => Some(v),
            _ => None,
        }
    }
    /// The value if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }
    /// The value if it is an array.
    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// Tensor name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// ggml dims, `ne[0]` first (the fastest-varying, a row's length), at most 4.
    pub dims: Vec<u64>,
    /// Element type.
    pub ty: GgmlType,
    /// Byte offset of the data from the start of the data section (a multiple of the
    /// alignment).
    pub offset: u64,
    /// Byte size of the data (`elements / block_size * type_size`).
    pub n_bytes: u64,
}

impl GgufTensorInfo {
    /// Number of elements (the product of the dims; 1 for no dims; saturating, though a
    /// parsed file's dims never overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }
    /// Row length `ne[0]` (K of a linear layer's weight; 1 for no dims).
    pub fn cols(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }
    /// Number of rows, ggml's `ggml_nrows`: the product of `ne[1..]` (N of a linear layer's
    /// weight; 1 for a 1-D tensor).
    pub fn rows(&self) -> u64 {
        self.dims.iter().skip(1).fold(1u64, |a, &d| a.saturating_mul(d))
    }
}

/// A tensor loaded from a GGUF file in its slimgemm format.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufTensor {
    /// F32, F16 or BF16 data as an f32 matrix `[rows, ne0]` (exact conversion).
    Dense(Matrix<f32>),
    /// Q4_0 (integer zero points 8, group 32) or Q4_K (float minimums, group 32).
    Int4(Int4Weights),
    /// Q8_0 (group 32).
    Int8(Int8Weights),
}

impl GgufTensor {
    /// The tensor as f32 `[rows, ne0]` (dequantizing quantized ones; bit-exact to ggml).
    pub fn to_f32(&self) -> Matrix<f32> {
        match self {
            GgufTensor::Dense(m) => m.clone(),
            GgufTensor::Int4(w) => w.dequantize(),
            GgufTensor::Int8(w) => w.dequantize(),
        }
    }
}

/// File bytes, memory-mapped or owned (shared with the checkpoint reader).
pub(crate) enum Storage {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    /// Maps `file` read-only (an empty file becomes an empty owned buffer: not every platform
    /// maps zero bytes). The caller's contract: the file is not modified while mapped.
    pub(crate) fn map(file: &std::fs::File) -> Result<Storage> {
        if file.metadata()?.len() == 0 {
            return Ok(Storage::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only; the documented contract of the public openers is that
        // the file is not modified while mapped. Every read is bounds-checked against the
        // map's length.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(file) }?;
        Ok(Storage::Mmap(map))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file: header, metadata and tensor infos, with the bytes kept
/// memory-mapped (or owned, for [`GgufFile::from_bytes`]). Loading a tensor copies its bytes
/// once, into the result.
pub struct GgufFile {
    source: String,
    storage: Storage,
    version: u32,
    alignment: u64,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<GgufTensorInfo>,
    data_start: usize,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("source", &self.source)
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A bounds-checked little-endian reader over the header.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    src: &'a str,
}

impl<'a> Cursor<'a> {
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::parse(self.src, msg)
    }
    fn left(&self) -> usize {
        self.b.len() - self.pos
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(self.err(format!(
                "truncated: {what} needs {n} bytes at offset {} but the file has {} bytes",
                self.pos,
                self.b.len()
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("length checked"))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }
    /// A count or length that must fit in the bytes left, each item taking at least
    /// `min_size` bytes.
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let fits = usize::try_from(n).ok().and_then(|n| n.checked_mul(min_size)).is_some_and(|bytes| bytes <= self.left());
        if !fits {
            return Err(self.err(format!(
                "{what} = {n} at offset {at} is impossible: it needs at least {min_size} bytes each but only {} bytes are left",
                self.left()
            )));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let n = self.count(&format!("{what} length"), 1)?;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| self.err(format!("{what} at offset {at} is not UTF-8: {e}")))
    }
}

fn min_value_size(ty: u32) -> usize {
    match ty {
        vt::U8 | vt::I8 | vt::BOOL => 1,
        vt::U16 | vt::I16 => 2,
        vt::U32 | vt::I32 | vt::F32 => 4,
        vt::U64 | vt::I64 | vt::F64 | vt::STRING => 8,
        _ => 12, // array: u32 type + u64 length
    }
}

fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<GgufArray> {
    if depth >= GGUF_MAX_ARRAY_DEPTH {
        return Err(c.err(format!("metadata '{key}': arrays nested deeper than {GGUF_MAX_ARRAY_DEPTH} levels")));
    }
    let at = c.pos;
    let ty = c.u32("array element type")?;
    if ty > vt::F64 {
        return Err(c.err(format!("metadata '{key}': array element type {ty} at offset {at} is unknown (valid: 0..=12)")));
    }
    let n = c.count(&format!("metadata '{key}' array length"), min_value_size(ty))?;
    macro_rules! prim {
        ($variant:ident, $t:ty) => {{
            let bytes = c.take(n * std::mem::size_of::<$t>(), "array")?;
            GgufArray::$variant(bytes.chunks_exact(std::mem::size_of::<$t>()).map(|b| <$t>::from_le_bytes(b.try_into().unwrap())).collect())
        }};
    }
    Ok(match ty {
        vt::U8 => GgufArray::U8(c.take(n, "array")?.to_vec()),
        vt::I8 => prim!(I8, i8),
        vt::U16 => prim!(U16, u16),
        vt::I16 => prim!(I16, i16),
        vt::U32 => prim!(U32, u32),
        vt::I32 => prim!(I32, i32),
        vt::F32 => prim!(F32, f32),
        vt::U64 => prim!(U64, u64),
        vt::I64 => prim!(I64, i64),
        vt::F64 => prim!(F64, f64),
        vt::BOOL => GgufArray::Bool(c.take(n, "array")?.iter().map(|&b| b != 0).collect()),
        vt::STRING => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(c.string(&format!("metadata '{key}' string element"))?);
            }
            GgufArray::String(v)
        }
        _ => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            GgufArray::Array(v)
        }
    })
}

fn read_value(c: &mut Cursor<'_>, key: &str, ty: u32, at: usize) -> Result<GgufValue> {
    Ok(match ty {
        vt::U8 => GgufValue::U8(c.arr::<1>("value")?[0]),
        vt::I8 => GgufValue::I8(c.arr::<1>("value")?[0] as i8),
        vt::U16 => GgufValue::U16(u16::from_le_bytes(c.arr("value")?)),
        vt::I16 => GgufValue::I16(i16::from_le_bytes(c.arr("value")?)),
        vt::U32 => GgufValue::U32(u32::from_le_bytes(c.arr("value")?)),
        vt::I32 => GgufValue::I32(i32::from_le_bytes(c.arr("value")?)),
        vt::F32 => GgufValue::F32(f32::from_le_bytes(c.arr("value")?)),
        vt::BOOL => GgufValue::Bool(c.arr::<1>("value")?[0] != 0),
        vt::STRING => GgufValue::String(c.string(&format!("metadata '{key}' string"))?),
        vt::ARRAY => GgufValue::Array(read_array(c, key, 0)?),
        vt::U64 => GgufValue::U64(u64::from_le_bytes(c.arr("value")?)),
        vt::I64 => GgufValue::I64(i64::from_le_bytes(c.arr("value")?)),
        vt::F64 => GgufValue::F64(f64::from_le_bytes(c.arr("value")?)),
        _ => return Err(c.err(format!("metadata '{key}': value type {ty} at offset {at} is unknown (valid: 0..=12)"))),
    })
}

/// Byte size of a tensor of `ty` with `dims`, checking `ne[0] % block_size == 0` and
/// overflow.
fn tensor_bytes_of(ty: GgmlType, dims: &[u64]) -> std::result::Result<u64, String> {
    let ne0 = dims.first().copied().unwrap_or(1);
    if ne0 % ty.block_size() != 0 {
        return Err(format!("row length ne[0] = {ne0} is not a multiple of the block size {} of {ty}", ty.block_size()));
    }
    // Every partial product (zero dims aside) must fit, so that rows(), cols() and
    // n_elements() of any sub-shape cannot overflow either.
    dims.iter()
        .filter(|&&d| d != 0)
        .try_fold(1u64, |a, &d| a.checked_mul(d).filter(|&p| p <= i64::MAX as u64))
        .ok_or_else(|| format!("dims {dims:?} overflow the element count (even ignoring zero dims, at most 2^63 - 1)"))?;
    let elems: u64 = dims.iter().product();
    (elems / ty.block_size()).checked_mul(ty.type_size()).ok_or_else(|| format!("dims {dims:?} of {ty} overflow the byte size"))
}

impl GgufFile {
    /// Memory-maps and parses a GGUF file (versions 2 and 3, little-endian).
    ///
    /// The file must not be modified while the returned value lives (memory-mapping's usual
    /// contract: a concurrent writer could change tensor bytes under a reader).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)?;
        Self::parse(path.display().to_string(), Storage::map(&file)?)
    }

    /// Parses a GGUF image held in memory (the same checks as [`GgufFile::open`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        Self::parse("<GGUF bytes>".to_string(), Storage::Owned(bytes))
    }

    fn parse(source: String, storage: Storage) -> Result<GgufFile> {
        let b = storage.bytes();
        let mut c = Cursor { b, pos: 0, src: &source };
        let magic = c.arr::<4>("the magic")?;
        if magic != GGUF_MAGIC {
            return Err(
                c.err(format!("bad magic {:?} (bytes {magic:02x?}); a GGUF file starts with \"GGUF\"", String::from_utf8_lossy(&magic)))
            );
        }
        let version = c.u32("the version")?;
        match version {
            2 | 3 => {}
            1 => {
                return Err(c.err("GGUF version 1 is not supported (only versions 2 and 3; re-convert the model with a current llama.cpp)"))
            }
            v if v != 0 && v & 0xFFFF == 0 => {
                return Err(c.err(format!("version {v:#010x} looks byte-swapped: big-endian GGUF files are not supported")))
            }
            v => return Err(c.err(format!("unsupported GGUF version {v} (supported: 2 and 3)"))),
        }
        let n_tensors = c.count("tensor count", 24)?;
        let n_kv = c.count("metadata count", 13)?;

        let mut metadata = Vec::with_capacity(n_kv);
        let mut keys = HashSet::with_capacity(n_kv);
        for i in 0..n_kv {
            let key = c.string(&format!("metadata key {i}"))?;
            if key.is_empty() {
                return Err(c.err(format!("metadata key {i} is empty")));
            }
            if !keys.insert(key.clone()) {
                return Err(c.err(format!("duplicate metadata key '{key}'")));
            }
            let at = c.pos;
            let ty = c.u32("value type")?;
            let value = read_value(&mut c, &key, ty, at)?;
            metadata.push((key, value));
        }

        let alignment = match metadata.iter().find(|(k, _)| k == GGUF_KEY_ALIGNMENT) {
            None => GGUF_DEFAULT_ALIGNMENT,
            Some((_, GgufValue::U32(a))) if a.is_power_of_two() => *a as u64,
            Some((_, GgufValue::U32(a))) => return Err(c.err(format!("{GGUF_KEY_ALIGNMENT} = {a} is not a power of two"))),
            Some((_, v)) => return Err(c.err(format!("{GGUF_KEY_ALIGNMENT} has value type {} but must be a uint32 (type 4)", v.type_id()))),
        };

        let mut tensors: Vec<GgufTensorInfo> = Vec::with_capacity(n_tensors);
        let mut names = HashSet::with_capacity(n_tensors);
        for i in 0..n_tensors {
            let name = c.string(&format!("tensor {i} name"))?;
            if name.is_empty() {
                return Err(c.err(format!("tensor {i} has an empty name")));
            }
            if !names.insert(name.clone()) {
                return Err(c.err(format!("duplicate tensor name '{name}'")));
            }
            let n_dims = c.u32("n_dims")?;
            if n_dims as usize > GGUF_MAX_DIMS {
                return Err(c.err(format!("tensor '{name}' has {n_dims} dims (at most {GGUF_MAX_DIMS})")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let d = c.u64("a dim")?;
                if d > i64::MAX as u64 {
                    return Err(c.err(format!("tensor '{name}' has dim {d}, larger than ggml's int64 limit")));
                }
                dims.push(d);
            }
            let at = c.pos;
            let id = c.u32("tensor type")?;
            let ty = GgmlType::from_id(id).ok_or_else(|| {
                c.err(format!("tensor '{name}' has ggml type id {id} at offset {at}, which is unknown or was removed from ggml"))
            })?;
            let offset = c.u64("tensor offset")?;
            if offset % alignment != 0 {
                return Err(c.err(format!("tensor '{name}' offset {offset} is not a multiple of the alignment {alignment}")));
            }
            let n_bytes = tensor_bytes_of(ty, &dims).map_err(|m| c.err(format!("tensor '{name}': {m}")))?;
            tensors.push(GgufTensorInfo { name, dims, ty, offset, n_bytes });
        }

        // The data section starts at the next multiple of the alignment.
        let header_end = c.pos as u64;
        let data_start = header_end.div_ceil(alignment).checked_mul(alignment).filter(|&s| s <= b.len() as u64);
        let data_start = match data_start {
            Some(s) => s as usize,
            None if tensors.is_empty() => b.len(),
            None => {
                return Err(c.err(format!(
                    "truncated: the data section should start at offset {} (header end {header_end} aligned to {alignment}) \
                     but the file has {} bytes",
                    header_end.div_ceil(alignment).saturating_mul(alignment),
                    b.len()
                )))
            }
        };
        let data_len = (b.len() - data_start) as u64;
        for t in &tensors {
            let end = t.offset.checked_add(t.n_bytes);
            if end.is_none_or(|e| e > data_len) {
                return Err(c.err(format!(
                    "tensor '{}' ({}, dims {:?}) spans data bytes {}..{} but the data section has {data_len} bytes \
                     (offset past the end, or a truncated file)",
                    t.name,
                    t.ty,
                    t.dims,
                    t.offset,
                    t.offset as u128 + t.n_bytes as u128
                )));
            }
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| tensors[i].offset);
        for w in order.windows(2) {
            let (a, b2) = (&tensors[w[0]], &tensors[w[1]]);
            if a.offset + a.n_bytes > b2.offset {
                return Err(c.err(format!(
                    "tensors '{}' (bytes {}..{}) and '{}' (bytes {}..{}) overlap",
                    a.name,
                    a.offset,
                    a.offset + a.n_bytes,
                    b2.name,
                    b2.offset,
                    b2.offset + b2.n_bytes
                )));
            }
        }
        Ok(GgufFile { source, storage, version, alignment, metadata, tensors, data_start })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The alignment of the data section and the tensors.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }
    /// Byte offset of the data section in the file.
    pub fn data_offset(&self) -> usize {
        self.data_start
    }
    /// Every metadata key/value pair, in file order.
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        &self.metadata
    }
    /// The metadata value of `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }
    /// The info of tensor `name`.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    fn info_or_err(&self, name: &str) -> Result<&GgufTensorInfo> {
        self.tensor_info(name).ok_or_else(|| Error::parse(&self.source, format!("no tensor named '{name}'")))
    }

    /// The raw bytes of tensor `name` (borrowed from the map; checked at open).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let t = self.info_or_err(name)?;
        let start = self.data_start + t.offset as usize;
        Ok(&self.storage.bytes()[start..start + t.n_bytes as usize])
    }

    /// `(rows, cols)` of a tensor as a matrix, both within usize and at least 1.
    fn matrix_shape(&self, t: &GgufTensorInfo) -> Result<(usize, usize)> {
        let (rows, cols) = (usize::try_from(t.rows()), usize::try_from(t.cols()));
        match (rows, cols) {
            (Ok(r), Ok(c)) if r > 0 && c > 0 => Ok((r, c)),
            _ => Err(Error::parse(&self.source, format!("tensor '{}' with dims {:?} has no elements or is too large", t.name, t.dims))),
        }
    }

    /// Loads tensor `name` in its slimgemm format: F32 / F16 / BF16 as a [`Matrix<f32>`]
    /// `[rows, ne0]` (rows = the product of `ne[1..]`), Q4_0 and Q4_K as [`Int4Weights`]
    /// `[n = rows, k = ne0]`, Q8_0 as [`Int8Weights`]. Other types are an [`Error::Format`]
    /// naming the type. The bytes are read once from the map, into the result.
    pub fn load(&self, name: &str) -> Result<GgufTensor> {
        let t = self.info_or_err(name)?;
        let (rows, cols) = self.matrix_shape(t)?;
        let bytes = self.tensor_bytes(name)?;
        Ok(match t.ty {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
                crate::formats::checked_elems("GgufFile::load", "tensor", &[rows, cols])?;
                GgufTensor::Dense(Matrix { rows, cols, data: dequantize_gguf(t.ty, bytes, rows * cols)? })
            }
            GgmlType::Q4_0 => GgufTensor::Int4(Int4Weights::from_gguf_q4_0(bytes, rows, cols)?),
            GgmlType::Q4_K => GgufTensor::Int4(Int4Weights::from_gguf_q4_k(bytes, rows, cols)?),
            GgmlType::Q8_0 => GgufTensor::Int8(Int8Weights::from_gguf_q8_0(bytes, rows, cols)?),
            ty => return Err(unsupported(name, ty)),
        })
    }

    /// Loads an F32 / F16 / BF16 tensor as an f32 matrix `[rows, ne0]`; other types are an
    /// error (use [`GgufFile::load`] or [`GgufFile::dequantize`]).
    pub fn load_matrix(&self, name: &str) -> Result<Matrix<f32>> {
        match self.load(name)? {
            GgufTensor::Dense(m) => Ok(m),
            _ => Err(Error::format(
                "GGUF",
                format!(
                    "tensor '{name}' is {}, not a dense float tensor; use GgufFile::load or GgufFile::dequantize",
                    self.info_or_err(name)?.ty
                ),
            )),
        }
    }

    /// Tensor `name` dequantized to f32 `[rows, ne0]` by [`dequantize_gguf`] (the ggml
    /// reference), for every type [`GgufFile::load`] supports.
    pub fn dequantize(&self, name: &str) -> Result<Matrix<f32>> {
        let t = self.info_or_err(name)?;
        let (rows, cols) = self.matrix_shape(t)?;
        let n = crate::formats::checked_elems("GgufFile::dequantize", "tensor", &[rows, cols])?;
        Ok(Matrix { rows, cols, data: dequantize_gguf(t.ty, self.tensor_bytes(name)?, n)? })
    }
}

fn unsupported(name: &str, ty: GgmlType) -> Error {
    Error::format(
        "GGUF",
        format!("tensor '{name}' has type {ty}, which slimgemm cannot load (supported: f32, f16, bf16, q4_0, q8_0, q4_K)"),
    )
}

/// Dequantizes `n` elements of ggml type `ty` from `bytes`, mirroring ggml's
/// `dequantize_row_*` (and the F16 / BF16 to F32 conversions) operation for operation:
/// - F32: the values; F16: exact widening; BF16: `bits << 16`;
/// - Q4_0: `((q & 15) - 8) * d` for the low nibble (element `j`) and the high nibble
///   (element `j + 16`) of byte `j`;
/// - Q8_0: `q * d`;
/// - Q4_K: per 64-element chunk, `d1 * (q & 15) - m1` then `d2 * (q >> 4) - m2` with
///   `d1 = d * sc`, `m1 = dmin * m` from `get_scale_min_k4` (one f32 multiply, one f32
///   subtract: no fused multiply-add).
///
/// Fails if `n` is not a multiple of the block size, `bytes` has the wrong length, or the type
/// is not one of these.
pub fn dequantize_gguf(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>> {
    const OP: &str = "dequantize_gguf";
    let (bs, ts) = (ty.block_size() as usize, ty.type_size() as usize);
    if n % bs != 0 {
        return Err(Error::shape(OP, format!("{n} elements is not a multiple of the block size {bs} of {ty}")));
    }
    let want = (n / bs).checked_mul(ts).ok_or_else(|| Error::shape(OP, format!("{n} elements of {ty} overflow the byte size")))?;
    if bytes.len() != want {
        return Err(Error::shape(OP, format!("{} bytes for {n} elements of {ty}, expected {want}", bytes.len())));
    }
    let mut y = Vec::with_capacity(n);
    match ty {
        GgmlType::F32 => y.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()))),
        GgmlType::F16 => y.extend(bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::BF16 => y.extend(bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q4_0 => {
            for blk in bytes.chunks_exact(ts) {
                let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                let qs = &blk[2..18];
                let mut out = [0f32; 32];
                for j in 0..16 {
                    let x0 = (qs[j] & 0x0F) as i32 - 8;
                    let x1 = (qs[j] >> 4) as i32 - 8;
                    out[j] = x0 as f32 * d;
                    out[j + 16] = x1 as f32 * d;
                }
                y.extend_from_slice(&out);
            }
        }
        GgmlType::Q8_0 => {
            for blk in bytes.chunks_exact(ts) {
                let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                y.extend(blk[2..34].iter().map(|&q| (q as i8) as f32 * d));
            }
        }
        GgmlType::Q4_K => {
            for blk in bytes.chunks_exact(ts) {
                let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                let min = f16::from_le_bytes([blk[2], blk[3]]).to_f32();
                let scales: &[u8; 12] = blk[4..16].try_into().unwrap();
                let mut q = &blk[16..144];
                let mut is = 0;
                for _ in 0..4 {
                    let (sc, m) = q4k_scale_min(is, scales);
                    let (d1, m1) = (d * sc as f32, min * m as f32);
                    let (sc, m) = q4k_scale_min(is + 1, scales);
                    let (d2, m2) = (d * sc as f32, min * m as f32);
                    y.extend(q[..32].iter().map(|&b| d1 * (b & 0xF) as f32 - m1));
                    y.extend(q[..32].iter().map(|&b| d2 * (b >> 4) as f32 - m2));
                    q = &q[32..];
                    is += 2;
                }
            }
        }
        ty => return Err(Error::format("GGUF", format!("cannot dequantize type {ty} (supported: f32, f16, bf16, q4_0, q8_0, q4_K)"))),
    }
    Ok(y)
}

/// Builds a GGUF file (version 3 by default, little-endian): metadata in insertion order,
/// tensor data laid out in insertion order at offsets padded to the alignment, as ggml's
/// writer does. The alignment is `general.alignment` if that key is set (a `u32` power of
/// two), else 32.
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    version: Option<u32>,
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<(GgufTensorInfo, Vec<u8>)>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_array(out: &mut Vec<u8>, a: &GgufArray) {
    out.extend_from_slice(&a.elem_type().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        GgufArray::U8(v) => out.extend_from_slice(v),
        GgufArray::I8(v) => le!(v),
        GgufArray::U16(v) => le!(v),
        GgufArray::I16(v) => le!(v),
        GgufArray::U32(v) => le!(v),
        GgufArray::I32(v) => le!(v),
        GgufArray::F32(v) => le!(v),
        GgufArray::U64(v) => le!(v),
        GgufArray::I64(v) => le!(v),
        GgufArray::F64(v) => le!(v),
        GgufArray::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
        GgufArray::String(v) => v.iter().for_each(|s| put_str(out, s)),
        GgufArray::Array(v) => v.iter().for_each(|a| put_array(out, a)),
    }
}

fn put_value(out: &mut Vec<u8>, v: &GgufValue) {
    out.extend_from_slice(&v.type_id().to_le_bytes());
    match v {
        GgufValue::U8(x) => out.push(*x),
        GgufValue::I8(x) => out.push(*x as u8),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(*x as u8),
        GgufValue::String(s) => put_str(out, s),
        GgufValue::Array(a) => put_array(out, a),
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

fn array_depth(a: &GgufArray) -> usize {
    match a {
        GgufArray::Array(v) => 1 + v.iter().map(array_depth).max().unwrap_or(0),
        _ => 1,
    }
}

impl GgufWriter {
    /// An empty version-3 file.
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// Sets the version written (2 or 3; they share the layout).
    pub fn with_version(mut self, version: u32) -> Result<GgufWriter> {
        if !matches!(version, 2 | 3) {
            return Err(Error::format("GGUF", format!("cannot write GGUF version {version} (2 or 3)")));
        }
        self.version = Some(version);
        Ok(self)
    }

    /// Sets `general.alignment` (a power of two).
    pub fn with_alignment(mut self, alignment: u32) -> Result<GgufWriter> {
        if !alignment.is_power_of_two() {
            return Err(Error::format("GGUF", format!("alignment {alignment} is not a power of two")));
        }
        self.metadata.retain(|(k, _)| k != GGUF_KEY_ALIGNMENT);
        self.metadata.push((GGUF_KEY_ALIGNMENT.into(), GgufValue::U32(alignment)));
        Ok(self)
    }

    fn alignment(&self) -> u64 {
        match self.metadata.iter().find(|(k, _)| k == GGUF_KEY_ALIGNMENT) {
            Some((_, GgufValue::U32(a))) => *a as u64,
            _ => GGUF_DEFAULT_ALIGNMENT,
        }
    }

    /// Adds a metadata pair. Fails on a duplicate or empty key, on arrays nested deeper than
    /// the reader accepts, and on a `general.alignment` that is not a `u32` power of two.
    pub fn add_metadata(&mut self, key: impl Into<String>, value: GgufValue) -> Result<&mut GgufWriter> {
        let key = key.into();
        if key.is_empty() || self.metadata.iter().any(|(k, _)| *k == key) {
            return Err(Error::format("GGUF", format!("metadata key '{key}' is empty or already present")));
        }
        if let GgufValue::Array(a) = &value {
            if array_depth(a) > GGUF_MAX_ARRAY_DEPTH {
                return Err(Error::format("GGUF", format!("metadata '{key}': arrays nested deeper than {GGUF_MAX_ARRAY_DEPTH}")));
            }
        }
        if key == GGUF_KEY_ALIGNMENT && !matches!(value, GgufValue::U32(a) if a.is_power_of_two()) {
            return Err(Error::format("GGUF", format!("{GGUF_KEY_ALIGNMENT} must be a u32 power of two, got {value:?}")));
        }
        self.metadata.push((key, value));
        Ok(self)
    }

    /// Adds a tensor from raw ggml bytes with ggml `dims` (`ne[0]` first). Fails on an empty
    /// or duplicate name, more than 4 dims, a row length not a multiple of the type's block
    /// size, or a byte length that does not match.
    pub fn add_tensor(&mut self, name: impl Into<String>, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> Result<&mut GgufWriter> {
        let name = name.into();
        if name.is_empty() || self.tensors.iter().any(|(t, _)| t.name == name) {
            return Err(Error::format("GGUF", format!("tensor name '{name}' is empty or already present")));
        }
        if dims.len() > GGUF_MAX_DIMS {
            return Err(Error::format("GGUF", format!("tensor '{name}' has {} dims (at most {GGUF_MAX_DIMS})", dims.len())));
        }
        let n_bytes = tensor_bytes_of(ty, dims).map_err(|m| Error::format("GGUF", format!("tensor '{name}': {m}")))?;
        if data.len() as u64 != n_bytes {
            return Err(Error::format("GGUF", format!("tensor '{name}' ({ty}, dims {dims:?}) needs {n_bytes} bytes, got {}", data.len())));
        }
        self.tensors.push((GgufTensorInfo { name, dims: dims.to_vec(), ty, offset: 0, n_bytes }, data));
        Ok(self)
    }

    /// Adds the matrix `m` `[rows, cols]` (GGUF dims `[cols, rows]`) encoded as `ty`: F32,
    /// F16 and BF16 (round to nearest even), or Q4_0 / Q8_0 / Q4_K through
    /// [`quantize_gguf_q4_0`], [`quantize_gguf_q8_0`], [`quantize_gguf_q4_k`] (ggml's
    /// reference quantizers).
    pub fn add_matrix(&mut self, name: impl Into<String>, m: &Matrix<f32>, ty: GgmlType) -> Result<&mut GgufWriter> {
        let len = crate::formats::checked_elems("GgufWriter::add_matrix", "matrix", &[m.rows, m.cols])?;
        if m.data.len() != len {
            return Err(Error::shape("GgufWriter::add_matrix", format!("matrix data has {} elements, expected {len}", m.data.len())));
        }
        let data = match ty {
            GgmlType::F32 => m.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => m.data.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
            GgmlType::BF16 => m.data.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect(),
            GgmlType::Q4_0 => quantize_gguf_q4_0(&m.data, m.rows, m.cols)?,
            GgmlType::Q8_0 => quantize_gguf_q8_0(&m.data, m.rows, m.cols)?,
            GgmlType::Q4_K => quantize_gguf_q4_k(&m.data, m.rows, m.cols)?,
            ty => return Err(Error::format("GGUF", format!("cannot encode type {ty} (supported: f32, f16, bf16, q4_0, q8_0, q4_K)"))),
        };
        self.add_tensor(name, &[m.cols as u64, m.rows as u64], ty, data)
    }

    /// The file image.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let align = self.alignment();
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&self.version.unwrap_or(3).to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        for (t, _) in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += t.n_bytes.div_ceil(align) * align;
        }
        let pad = |out: &mut Vec<u8>| out.resize((out.len() as u64).div_ceil(align) as usize * align as usize, 0);
        if !self.tensors.is_empty() {
            pad(&mut out);
        }
        for (_, data) in &self.tensors {
            out.extend_from_slice(data);
            pad(&mut out);
        }
        Ok(out)
    }

    /// Writes the file image to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        std::fs::write(path, self.to_bytes()?)?;
        Ok(())
    }
}

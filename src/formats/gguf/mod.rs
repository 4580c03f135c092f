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

mod reader;
mod writer;
pub use reader::{dequantize_gguf, GgufFile};
pub use writer::GgufWriter;

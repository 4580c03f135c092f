//! Safetensors in and out of the planner (feature `hf`): [`DenseModel`] reads the dense
//! weights of a Hugging Face model (one `.safetensors` file or a folder of shards),
//! [`CompressedWriter`] writes the planned layers, [`CompressedModel`] loads them back as
//! [`Weight`]s that [`CompressedLayer::to_device`] turns into running layers.
//!
//! # Which tensors are weights
//!
//! A tensor is a weight (one planner row) when its dtype is F32, F16, BF16 or F64 and it is
//! 2-D `[out, in]`, or 3-D / 4-D with a name ending in `weight` (convolutions `[out, in, kh,
//! kw]`, reshaped to `[out, in·kh·kw]`: the im2col GEMM's weight). Every other tensor (biases,
//! norms, integer tensors) is copied unchanged.
//!
//! # Layout of a compressed file (version 1)
//!
//! A compressed model is one or more ordinary safetensors files. A layer named `N` (the
//! name of the source weight, e.g. `encoder.layer.0.attention.self.query.weight`) is
//! described by the header metadata entry `slimgemm.layer.N`, a JSON object:
//!
//! ```json
//! {"format": "int4", "variant": "int4(g128,sym)", "shape": [768, 768], "orig_shape": [768, 768],
//!  "group": 128, "symmetric": true, "weight_err": 0.061, "output_err": 0.062}
//! ```
//!
//! (`rank` for low rank, `nnz` for CSR; the errors are the planner's, absent when unknown), and
//! by these tensors, all row-major little-endian, `out` and `in` from `shape`:
//!
//! | format | tensors |
//! |---|---|
//! | `dense` | `N` F32 `[out, in]` |
//! | `csr` | `N.csr.indptr` U32 `[out + 1]`, `N.csr.indices` U32 `[nnz]`, `N.csr.values` F32 `[nnz]` (scipy / torch CSR) |
//! | `2:4` | `N.sparse24.values` F32 `[out, in / 2]`, `N.sparse24.meta` U32 `[out, ceil(in / 32)]` (see [`crate::formats::sparse24`]) |
//! | `lowrank` | `N.lowrank.u` F32 `[out, r]`, `N.lowrank.v` F32 `[in, r]`, `W = U Vᵀ` |
//! | `int8` | `N.int8.q` I8 `[out, in]`, `N.int8.scales` F32 `[out]`, `W = scale_j q` |
//! | `int4` | `N.int4.qweight` U32 `[out, in / 8]` (column `c` at bits `4 (c % 8)` of word `c / 8`), `N.int4.scales` F32 `[out, in / g]`, `N.int4.zeros` U8 `[out, in / g]`, `W = (q − zero) scale` |
//! | `binary` | `N.binary.bits` U32 `[out, ceil(in / 32)]` (bit 1 = −1, column `c` at bit `c % 32` of word `c / 32`), `N.binary.alpha` F32 `[out]`, `W = alpha_j sign` |
//!
//! The file's metadata also holds `slimgemm.layout = "1"` (and whatever the writer adds, e.g.
//! the CLI's budget and device). A bias is the copied tensor `P.bias` of a layer named
//! `P.weight`, if it is 1-D with `out` float values. Conv layers keep `orig_shape` for the
//! caller to know how to reshape its input (im2col order `[in, kh, kw]` per output row).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, Metadata, View};
use safetensors::SafeTensors;
use serde_json::{json, Value};

use super::{PlannedLinear, Variant};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::binary::BitMatrix;
use crate::formats::gguf::Storage;
use crate::formats::{BinaryWeights, Csr, Int4Weights, Int8Matrix, LowRank, Matrix, Sparse24};
use crate::layer::Weight;

/// The layout version written to `slimgemm.layout`.
pub const LAYOUT_VERSION: &str = "1";

/// Metadata key prefix of a layer's description.
pub const LAYER_KEY: &str = "slimgemm.layer.";

struct Shard {
    path: String,
    storage: Storage,
    meta: Metadata,
    data_start: usize,
}

impl Shard {
    fn open(path: &Path) -> Result<Shard> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::parse(&name, format!("cannot open: {e}")))?;
        let storage = Storage::map(&file)?;
        let (n, meta) =
            SafeTensors::read_metadata(storage.bytes()).map_err(|e| Error::parse(&name, format!("not a valid safetensors file: {e}")))?;
        Ok(Shard { path: name, storage, meta, data_start: 8 + n })
    }

    fn file_name(&self) -> String {
        Path::new(&self.path).file_name().map_or_else(|| self.path.clone(), |f| f.to_string_lossy().into_owned())
    }

    fn raw(&self, name: &str) -> Result<(Dtype, &[usize], &[u8])> {
        let info = self.meta.info(name).ok_or_else(|| Error::parse(&self.path, format!("no tensor named '{name}'")))?;
        let (s, e) = info.data_offsets;
        // read_metadata checked that the offsets tile the data section exactly.
        Ok((info.dtype, &info.shape, &self.storage.bytes()[self.data_start + s..self.data_start + e]))
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.meta.tensors().into_keys().collect();
        v.sort();
        v
    }
}

/// The `.safetensors` files of `path`: the file itself, or in a folder the shards named by
/// `model.safetensors.index.json` if present, else every `*.safetensors` file (sorted).
fn shard_paths(path: &Path) -> Result<Vec<PathBuf>> {
    let src = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| Error::parse(&src, format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let index = path.join("model.safetensors.index.json");
    if index.is_file() {
        let json: Value = serde_json::from_slice(&std::fs::read(&index)?)
            .map_err(|e| Error::parse(index.display().to_string(), format!("invalid JSON: {e}")))?;
        let Some(Value::Object(map)) = json.get("weight_map") else {
            return Err(Error::parse(index.display().to_string(), "no 'weight_map' object"));
        };
        let mut files: Vec<String> = Vec::new();
        for (t, f) in map {
            let Value::String(f) = f else {
                return Err(Error::parse(index.display().to_string(), format!("weight_map['{t}'] is not a file name")));
            };
            if f.is_empty() || f.contains(['/', '\\']) || f == ".." || f == "." {
                return Err(Error::parse(index.display().to_string(), format!("weight_map['{t}'] = '{f}' is not a plain file name")));
            }
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
        files.sort();
        return Ok(files.into_iter().map(|f| path.join(f)).collect());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::parse(&src, format!("cannot list the folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::parse(src, "the folder holds no .safetensors file"));
    }
    Ok(files)
}

fn floats(name: &str, dtype: Dtype, b: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => b.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => b.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(),
        d => return Err(Error::format("safetensors tensor", format!("'{name}' has dtype {d:?}, expected F32, F16, BF16 or F64"))),
    })
}

fn is_float(d: Dtype) -> bool {
    matches!(d, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64)
}

/// One tensor of a [`DenseModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTensor {
    /// Its name.
    pub name: String,
    /// File name of the shard holding it.
    pub shard: String,
    /// Safetensors dtype name (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// `[out, in]` if it is a weight (see the [module docs](self)), else `None`.
    pub matrix: Option<(usize, usize)>,
}

/// The dense weights of a model: one safetensors file or a folder of shards (see
/// [`DenseModel::open`]), memory-mapped.
pub struct DenseModel {
    source: String,
    shards: Vec<Shard>,
    /// Tensor name -> shard index.
    index: BTreeMap<String, usize>,
}

impl std::fmt::Debug for DenseModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenseModel")
            .field("source", &self.source)
            .field("shards", &self.shard_names())
            .field("tensors", &self.index.len())
            .finish()
    }
}

impl DenseModel {
    /// Opens a `.safetensors` file, or a folder: the shards of `model.safetensors.index.json`
    /// if present, else every `*.safetensors` file in it. The files are memory-mapped and must
    /// not change while the model lives. A tensor name present in two shards is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<DenseModel> {
        let path = path.as_ref();
        let mut shards = Vec::new();
        for p in shard_paths(path)? {
            shards.push(Shard::open(&p)?);
        }
        let mut index = BTreeMap::new();
        for (i, s) in shards.iter().enumerate() {
            for n in s.names() {
                if let Some(j) = index.insert(n.clone(), i) {
                    return Err(Error::parse(&s.path, format!("tensor '{n}' is also in {}", shards[j].path)));
                }
            }
        }
        Ok(DenseModel { source: path.display().to_string(), shards, index })
    }

    /// The path it was opened from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// File names of the shards, in order.
    pub fn shard_names(&self) -> Vec<String> {
        self.shards.iter().map(Shard::file_name).collect()
    }

    /// Every tensor, by shard, then name.
    pub fn tensors(&self) -> Vec<ModelTensor> {
        let mut out = Vec::with_capacity(self.index.len());
        for s in &self.shards {
            for name in s.names() {
                if let Some(info) = s.meta.info(&name) {
                    let shape = info.shape.clone();
                    let weight = is_float(info.dtype)
                        && shape.iter().all(|&d| d >= 1)
                        && (shape.len() == 2 || ((3..=4).contains(&shape.len()) && name.ends_with("weight")));
                    let matrix = weight.then(|| (shape[0], shape[1..].iter().product()));
                    out.push(ModelTensor { name, shard: s.file_name(), dtype: format!("{:?}", info.dtype), shape, matrix });
                }
            }
        }
        out
    }

    fn shard_of(&self, name: &str) -> Result<&Shard> {
        let i = *self.index.get(name).ok_or_else(|| Error::parse(&self.source, format!("no tensor named '{name}'")))?;
        Ok(&self.shards[i])
    }

    /// A float tensor as an f32 matrix `[shape[0], product of the rest]` (F16, BF16 and F64
    /// converted; a 1-D tensor is one row).
    pub fn load_matrix(&self, name: &str) -> Result<Matrix<f32>> {
        let (dtype, shape, b) = self.shard_of(name)?.raw(name)?;
        let data = floats(name, dtype, b)?;
        let (rows, cols) = match shape {
            [] => (1, 1),
            [c] => (1, *c),
            [r, rest @ ..] => (*r, rest.iter().product()),
        };
        Matrix::new(rows, cols, data)
    }
}

mod writer;
pub use writer::*;

//! Safetensors in and out of the planner (feature `hf`): [`DenseModel`] reads the dense
//! weights of a Hugging Face model (one `.safetensors` file or a folder of shards),
//! [`CompressedWriter`] writes the planned layers, [`CompressedModel`] loads them back as
//! [`PlannedWeight`]s that [`CompressedLayer::to_device`] turns into running layers.
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

use super::{PlannedLinear, PlannedWeight, Variant};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::binary::BitMatrix;
use crate::formats::gguf::Storage;
use crate::formats::{BinaryWeights, Csr, Int4Weights, Int8Matrix, LowRank, Matrix, Sparse24};

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

// ---------------------------------------------------------------------------------------
// Writing

struct OwnedTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn le<T: bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    // Every target slimgemm supports is little-endian (as safetensors requires).
    bytemuck::cast_slice(v).to_vec()
}

/// Collects compressed layers and copied tensors, then writes one safetensors file in the
/// layout of the [module docs](self).
#[derive(Default)]
pub struct CompressedWriter {
    tensors: BTreeMap<String, OwnedTensor>,
    metadata: HashMap<String, String>,
}

impl std::fmt::Debug for CompressedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressedWriter").field("tensors", &self.tensors.keys().collect::<Vec<_>>()).finish()
    }
}

impl CompressedWriter {
    /// An empty file.
    pub fn new() -> CompressedWriter {
        CompressedWriter::default()
    }

    fn put(&mut self, name: String, dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> Result<()> {
        if self.tensors.contains_key(&name) {
            return Err(Error::format("compressed model", format!("tensor '{name}' written twice")));
        }
        self.tensors.insert(name, OwnedTensor { dtype, shape, data });
        Ok(())
    }

    /// Adds the layer `name` (its weight in any planned format) with its original tensor shape
    /// and, if known, the planner's `(weight error, output error)`.
    pub fn add_layer(&mut self, name: &str, weight: &PlannedWeight, orig_shape: &[usize], errors: Option<(f64, f64)>) -> Result<()> {
        let (out, inp) = weight.shape();
        let variant = weight.variant();
        let mut info = json!({
            "format": variant.family_name(),
            "variant": variant.to_string(),
            "shape": [out, inp],
            "orig_shape": orig_shape,
        });
        let t = |s: &str| format!("{name}.{s}");
        match weight {
            PlannedWeight::Dense(m) => self.put(name.to_string(), Dtype::F32, vec![out, inp], le(&m.data))?,
            PlannedWeight::Csr(c) => {
                info["nnz"] = json!(c.nnz());
                self.put(t("csr.indptr"), Dtype::U32, vec![out + 1], le(&c.indptr))?;
                self.put(t("csr.indices"), Dtype::U32, vec![c.nnz()], le(&c.indices))?;
                self.put(t("csr.values"), Dtype::F32, vec![c.nnz()], le(&c.data))?;
            }
            PlannedWeight::Sparse24(s) => {
                self.put(t("sparse24.values"), Dtype::F32, vec![out, inp / 2], le(s.values()))?;
                self.put(t("sparse24.meta"), Dtype::U32, vec![out, Sparse24::<f32>::meta_stride(inp)], le(s.meta()))?;
            }
            PlannedWeight::LowRank(l) => {
                info["rank"] = json!(l.r);
                self.put(t("lowrank.u"), Dtype::F32, vec![out, l.r], le(&l.u))?;
                self.put(t("lowrank.v"), Dtype::F32, vec![inp, l.r], le(&l.v))?;
            }
            PlannedWeight::Int8(q) => {
                self.put(t("int8.q"), Dtype::I8, vec![out, inp], le(&q.q))?;
                self.put(t("int8.scales"), Dtype::F32, vec![out], le(&q.scales))?;
            }
            PlannedWeight::Int4(q) => {
                if q.mins.is_some() || q.perm.is_some() {
                    return Err(Error::format(
                        "compressed model",
                        format!("layer '{name}': int4 weights with float minimums or an act-order permutation are not part of layout {LAYOUT_VERSION}"),
                    ));
                }
                info["group"] = json!(q.group);
                info["symmetric"] = json!(q.symmetric);
                let g = inp / q.group;
                self.put(t("int4.qweight"), Dtype::U32, vec![out, inp / 8], le(&q.qweight))?;
                self.put(t("int4.scales"), Dtype::F32, vec![out, g], le(&q.scales))?;
                self.put(t("int4.zeros"), Dtype::U8, vec![out, g], q.zeros.clone())?;
            }
            PlannedWeight::Binary(b) => {
                self.put(t("binary.bits"), Dtype::U32, vec![out, b.bits.words], le(&b.bits.bits))?;
                self.put(t("binary.alpha"), Dtype::F32, vec![out], le(&b.alpha))?;
            }
        }
        if let Some((we, oe)) = errors {
            info["weight_err"] = finite(we);
            info["output_err"] = finite(oe);
        }
        self.metadata.insert(format!("{LAYER_KEY}{name}"), info.to_string());
        Ok(())
    }

    /// Copies the tensor `name` of `model` unchanged (dtype, shape, bytes).
    pub fn copy_tensor(&mut self, model: &DenseModel, name: &str) -> Result<()> {
        let (dtype, shape, b) = model.shard_of(name)?.raw(name)?;
        self.put(name.to_string(), dtype, shape.to_vec(), b.to_vec())
    }

    /// Adds a metadata entry (e.g. the budget the layers were planned with).
    pub fn set_metadata(&mut self, key: &str, value: &str) {
        self.metadata.insert(key.to_string(), value.to_string());
    }

    /// Names of the tensors added so far.
    pub fn tensor_names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// Writes the file (metadata `slimgemm.layout` included).
    pub fn write(mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.metadata.insert("slimgemm.layout".into(), LAYOUT_VERSION.into());
        safetensors::serialize_to_file(self.tensors.iter(), Some(self.metadata), path)
            .map_err(|e| Error::parse(path.display().to_string(), format!("cannot write safetensors: {e}")))
    }
}

fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

// ---------------------------------------------------------------------------------------
// Loading

/// One layer of a [`CompressedModel`].
#[derive(Debug, Clone)]
pub struct CompressedLayer {
    /// The layer's name (the source weight's tensor name).
    pub name: String,
    /// The weight in its planned format.
    pub weight: PlannedWeight,
    /// The bias (the copied `P.bias` of a layer named `P.weight`), if any.
    pub bias: Option<Vec<f32>>,
    /// The source tensor's shape (`[out, in, kh, kw]` for a convolution).
    pub orig_shape: Vec<usize>,
    /// The planner's weight error, if recorded.
    pub weight_err: Option<f64>,
    /// The planner's output error, if recorded.
    pub output_err: Option<f64>,
}

impl CompressedLayer {
    /// Uploads the layer (weight and bias) to `dev` for activations of `dtype`.
    pub fn to_device(&self, dev: &Device, dtype: DType) -> Result<PlannedLinear> {
        PlannedLinear::new(dev, &self.weight, self.bias.as_deref(), dtype)
    }
}

/// A compressed model written by [`CompressedWriter`] (the CLI's `slimgemm compress`),
/// loaded into host memory.
#[derive(Debug, Clone)]
pub struct CompressedModel {
    source: String,
    layers: Vec<CompressedLayer>,
    others: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl CompressedModel {
    /// Loads a compressed `.safetensors` file or a folder of them (every `*.safetensors`, or
    /// the shards of its index). Every layer's tensors are checked (dtype, shape, and the
    /// format's own validation); a file without `slimgemm.layout` or with a newer layout is an
    /// error.
    pub fn open(path: impl AsRef<Path>) -> Result<CompressedModel> {
        let path = path.as_ref();
        let mut shards = Vec::new();
        for p in shard_paths(path)? {
            shards.push(Shard::open(&p)?);
        }
        let mut metadata = BTreeMap::new();
        let mut entries: Vec<(usize, String, Value)> = Vec::new();
        for (i, s) in shards.iter().enumerate() {
            let meta = s.meta.metadata().clone().unwrap_or_default();
            match meta.get("slimgemm.layout").map(String::as_str) {
                Some(LAYOUT_VERSION) => {}
                Some(v) => return Err(Error::parse(&s.path, format!("slimgemm layout {v}, this version reads layout {LAYOUT_VERSION}"))),
                None => return Err(Error::parse(&s.path, "no 'slimgemm.layout' metadata: not a model written by slimgemm compress")),
            }
            for (k, v) in meta {
                if let Some(name) = k.strip_prefix(LAYER_KEY) {
                    let info: Value =
                        serde_json::from_str(&v).map_err(|e| Error::parse(&s.path, format!("metadata '{k}': invalid JSON: {e}")))?;
                    entries.push((i, name.to_string(), info));
                } else {
                    metadata.insert(k, v);
                }
            }
        }
        entries.sort_by(|a, b| a.1.cmp(&b.1));
        let mut layer_tensors = std::collections::HashSet::new();
        let mut layers = Vec::with_capacity(entries.len());
        for (i, name, info) in entries {
            let (weight, used) = read_layer(&shards[i], &name, &info)?;
            layer_tensors.extend(used);
            let num = |k: &str| info.get(k).and_then(Value::as_f64);
            let orig_shape = info
                .get("orig_shape")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
                .unwrap_or_else(|| vec![weight.shape().0, weight.shape().1]);
            layers.push(CompressedLayer {
                name,
                weight,
                bias: None,
                orig_shape,
                weight_err: num("weight_err"),
                output_err: num("output_err"),
            });
        }
        let mut others = Vec::new();
        let mut other_shard = HashMap::new();
        for (i, s) in shards.iter().enumerate() {
            for n in s.names() {
                if !layer_tensors.contains(&n) {
                    other_shard.insert(n.clone(), i);
                    others.push(n);
                }
            }
        }
        others.sort();
        for l in &mut layers {
            let Some(prefix) = l.name.strip_suffix(".weight") else { continue };
            let bname = format!("{prefix}.bias");
            let Some(&i) = other_shard.get(&bname) else { continue };
            let (dtype, shape, b) = shards[i].raw(&bname)?;
            if is_float(dtype) && shape == [l.weight.shape().0] {
                l.bias = Some(floats(&bname, dtype, b)?);
            }
        }
        Ok(CompressedModel { source: path.display().to_string(), layers, others, metadata })
    }

    /// The path it was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The layers, sorted by name.
    pub fn layers(&self) -> &[CompressedLayer] {
        &self.layers
    }

    /// The layer `name`.
    pub fn layer(&self, name: &str) -> Option<&CompressedLayer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Names of the copied (non-layer) tensors.
    pub fn other_tensors(&self) -> &[String] {
        &self.others
    }

    /// A metadata entry that is not a layer description (e.g. `slimgemm.layout`).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }
}

/// Reads one layer's tensors; returns the weight and the tensor names used.
fn read_layer(s: &Shard, name: &str, info: &Value) -> Result<(PlannedWeight, Vec<String>)> {
    let bad = |msg: String| Error::format("compressed model", format!("{}: layer '{name}': {msg}", s.path));
    let shape = info.get("shape").and_then(Value::as_array).ok_or_else(|| bad("metadata has no 'shape'".into()))?;
    let dims: Vec<usize> = shape.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect();
    let [out, inp] = dims[..] else { return Err(bad(format!("'shape' is {shape:?}, expected [out, in]"))) };
    let format = info.get("format").and_then(Value::as_str).ok_or_else(|| bad("metadata has no 'format'".into()))?;
    let mut used = Vec::new();
    let mut get = |suffix: &str, want: Dtype, want_shape: &[usize]| -> Result<&[u8]> {
        let tname = if suffix.is_empty() { name.to_string() } else { format!("{name}.{suffix}") };
        let (dtype, shape, b) = s.raw(&tname).map_err(|_| bad(format!("tensor '{tname}' is missing")))?;
        if dtype != want || shape != want_shape {
            return Err(bad(format!("tensor '{tname}' is {dtype:?} {shape:?}, expected {want:?} {want_shape:?}")));
        }
        used.push(tname);
        Ok(b)
    };
    let f32s = |b: &[u8]| -> Vec<f32> { b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() };
    let u32s = |b: &[u8]| -> Vec<u32> { b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() };
    let usize_of = |k: &str| info.get(k).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| bad(format!("metadata has no '{k}'")));
    let w = match format {
        "dense" => PlannedWeight::Dense(Matrix::new(out, inp, f32s(get("", Dtype::F32, &[out, inp])?))?),
        "csr" => {
            let nnz = usize_of("nnz")?;
            let indptr = u32s(get("csr.indptr", Dtype::U32, &[out + 1])?);
            let indices = u32s(get("csr.indices", Dtype::U32, &[nnz])?);
            let values = f32s(get("csr.values", Dtype::F32, &[nnz])?);
            PlannedWeight::Csr(Csr::new(out, inp, indptr, indices, values)?)
        }
        "2:4" => {
            let values = f32s(get("sparse24.values", Dtype::F32, &[out, inp / 2])?);
            let meta = u32s(get("sparse24.meta", Dtype::U32, &[out, Sparse24::<f32>::meta_stride(inp)])?);
            PlannedWeight::Sparse24(Sparse24::new(out, inp, values, meta)?)
        }
        "lowrank" => {
            let r = usize_of("rank")?;
            let u = f32s(get("lowrank.u", Dtype::F32, &[out, r])?);
            let v = f32s(get("lowrank.v", Dtype::F32, &[inp, r])?);
            PlannedWeight::LowRank(LowRank::new(out, inp, r, u, v)?)
        }
        "int8" => {
            let q: Vec<i8> = get("int8.q", Dtype::I8, &[out, inp])?.iter().map(|&b| b as i8).collect();
            let scales = f32s(get("int8.scales", Dtype::F32, &[out])?);
            PlannedWeight::Int8(Int8Matrix::new(out, inp, q, scales)?)
        }
        "int4" => {
            let g = usize_of("group")?;
            if g == 0 || inp % g != 0 || inp % 8 != 0 {
                return Err(bad(format!("group {g} does not divide in = {inp} (or in is no multiple of 8)")));
            }
            let qweight = u32s(get("int4.qweight", Dtype::U32, &[out, inp / 8])?);
            let scales = f32s(get("int4.scales", Dtype::F32, &[out, inp / g])?);
            let zeros = get("int4.zeros", Dtype::U8, &[out, inp / g])?.to_vec();
            PlannedWeight::Int4(Int4Weights::new(out, inp, g, qweight, scales, zeros)?)
        }
        "binary" => {
            let words = inp.div_ceil(32);
            let bits = u32s(get("binary.bits", Dtype::U32, &[out, words])?);
            let alpha = f32s(get("binary.alpha", Dtype::F32, &[out])?);
            PlannedWeight::Binary(BinaryWeights::new(BitMatrix::new(out, inp, bits)?, alpha)?)
        }
        f => return Err(bad(format!("unknown format '{f}' (layout {LAYOUT_VERSION} has dense, csr, 2:4, lowrank, int8, int4, binary)"))),
    };
    if let Some(v) = info.get("variant").and_then(Value::as_str) {
        let got = w.variant();
        if got.to_string() != v && !matches!(got, Variant::Int4 { .. }) {
            return Err(bad(format!("metadata says variant {v}, the tensors hold {got}")));
        }
    }
    Ok((w, used))
}

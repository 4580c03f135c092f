//! Hugging Face GPTQ / AWQ checkpoints: a folder with `config.json` (or
//! `quantize_config.json`) and `model.safetensors`, or shards listed in
//! `model.safetensors.index.json` (`weight_map`: tensor name -> shard file).
//!
//! Quantized linear layers are the prefixes with a `<prefix>.qweight` tensor (e.g.
//! `model.layers.0.self_attn.q_proj`), next to `.qzeros`, `.scales`, and optionally `.g_idx`
//! and `.bias`; [`Checkpoint::load_layer`] returns each as [`Int4Weights`] (ready for
//! [`crate::Device::upload_int4`] on every backend, act-order included) plus the bias
//! (`crate::Linear::from_quant_linear` makes a layer of both). Dense F32 / F16 / BF16
//! tensors load as [`Matrix<f32>`].
//!
//! | method | `qweight` | `qzeros` | `scales` | zero point |
//! |---|---|---|---|---|
//! | GPTQ (`checkpoint_format: gptq`) | i32 `[K/8, N]` | i32 `[K/g, N/8]` | `[K/g, N]` | stored + 1 |
//! | GPTQ v2 (`gptq_v2`) | same | same | same | stored |
//! | AWQ (`version: gemm`) | i32 `[K, N/8]`, AWQ nibble order | i32 `[K/g, N/8]` | `[K/g, N]` | stored |
//!
//! Act-order GPTQ (`desc_act: true`, a non-monotone `g_idx`) is supported: see
//! [`Int4Weights::from_gptq_format`]. Only 4-bit weights with group size 32, 64 or 128 are
//! supported; anything else is a clear error. Every header and config field is checked
//! against the tensors before use; bad files are [`Error::Parse`] or [`Error::Format`],
//! never a panic.
//!
//! ```no_run
//! use slimgemm::formats::Checkpoint;
//! # fn main() -> slimgemm::Result<()> {
//! let ckpt = Checkpoint::open("path/to/Llama-GPTQ")?;
//! for prefix in ckpt.quantized_layers() {
//!     let layer = ckpt.load_layer(&prefix)?;
//!     println!("{prefix}: n = {}, k = {}, act-order: {}", layer.weight.n, layer.weight.k, layer.weight.perm.is_some());
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::formats::gguf::Storage;
use crate::formats::quant::GptqFormat;
use crate::formats::{Int4Weights, Matrix};

/// The quantization method of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantMethod {
    /// GPTQ (AutoGPTQ / GPTQModel), with its zero-point format.
    Gptq(GptqFormat),
    /// AWQ (AutoAWQ GEMM layout).
    Awq,
}

/// The `quantization_config` of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantConfig {
    /// GPTQ (v1 or v2 zeros) or AWQ.
    pub method: QuantMethod,
    /// Bits per weight (always 4 here: other widths are rejected).
    pub bits: u32,
    /// Group size along K: 32, 64 or 128.
    pub group_size: usize,
    /// GPTQ act-order (`desc_act`); informative, `g_idx` decides.
    pub desc_act: bool,
    /// Symmetric quantization (GPTQ `sym`; AWQ `!zero_point`); informative, the stored zero
    /// points decide.
    pub sym: bool,
}

fn cfg_err(source: &str, msg: impl Into<String>) -> Error {
    Error::parse(source, msg)
}

fn get_bool(obj: &serde_json::Map<String, Value>, key: &str, default: bool, source: &str) -> Result<bool> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(cfg_err(source, format!("quantization config '{key}' is {v}, expected true or false"))),
    }
}

fn get_str<'a>(obj: &'a serde_json::Map<String, Value>, keys: &[&str], source: &str) -> Result<Option<&'a str>> {
    for k in keys {
        match obj.get(*k) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s)),
            Some(v) => return Err(cfg_err(source, format!("quantization config '{k}' is {v}, expected a string"))),
        }
    }
    Ok(None)
}

fn get_int(obj: &serde_json::Map<String, Value>, keys: &[&str], source: &str) -> Result<Option<i64>> {
    for k in keys {
        match obj.get(*k) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                return v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| cfg_err(source, format!("quantization config '{k}' is {v}, expected an integer")))
            }
        }
    }
    Ok(None)
}

impl QuantConfig {
    /// Parses the quantization config out of a `config.json` (its `quantization_config`
    /// object) or a `quantize_config.json` (the top-level object, recognized by `bits` or
    /// `w_bit`). `Ok(None)` if the JSON has neither (an unquantized model). `source` names
    /// the file in errors.
    ///
    /// Keys: `quant_method` (`gptq` or `awq`; absent means `gptq`), `bits` (AutoAWQ's
    /// `w_bit`), `group_size` (`q_group_size`), `desc_act`, `sym`, AWQ's `zero_point` and
    /// `version` (`gemm` only), GPTQ's `checkpoint_format` (or `format`: `gptq` or
    /// `gptq_v2`). Unsupported values (bits other than 4, group size -1 or other than 32 /
    /// 64 / 128, other methods, formats or versions) are errors naming the value.
    pub fn from_json(json: &[u8], source: &str) -> Result<Option<QuantConfig>> {
        let v: Value = serde_json::from_slice(json).map_err(|e| cfg_err(source, format!("invalid JSON: {e}")))?;
        let Value::Object(top) = v else {
            return Err(cfg_err(source, "the top level is not a JSON object"));
        };
        let obj = match top.get("quantization_config") {
            Some(Value::Object(q)) => q,
            Some(Value::Null) | None if top.contains_key("bits") || top.contains_key("w_bit") => &top,
            Some(Value::Null) | None => return Ok(None),
            Some(other) => return Err(cfg_err(source, format!("quantization_config is {other}, expected an object"))),
        };
        let method = get_str(obj, &["quant_method"], source)?.unwrap_or("gptq").to_ascii_lowercase();
        let bits = get_int(obj, &["bits", "w_bit"], source)?.ok_or_else(|| cfg_err(source, "quantization config has no 'bits'"))?;
        if bits != 4 {
            return Err(Error::format("quantization config", format!("{source}: bits = {bits} is not supported (only 4-bit weights)")));
        }
        let group = get_int(obj, &["group_size", "q_group_size"], source)?
            .ok_or_else(|| cfg_err(source, "quantization config has no 'group_size'"))?;
        if group == -1 {
            return Err(Error::format(
                "quantization config",
                format!("{source}: group_size = -1 (one group over all of K) is not supported; re-quantize with group_size 32, 64 or 128"),
            ));
        }
        if !matches!(group, 32 | 64 | 128) {
            return Err(Error::format("quantization config", format!("{source}: group_size = {group} is not supported (32, 64 or 128)")));
        }
        let desc_act = get_bool(obj, "desc_act", false, source)?;
        let (method, sym) = match method.as_str() {
            "gptq" => {
                let format = match get_str(obj, &["checkpoint_format", "format"], source)?.map(|s| s.to_ascii_lowercase()) {
                    None => GptqFormat::V1,
                    Some(f) if f == "gptq" => GptqFormat::V1,
                    Some(f) if f == "gptq_v2" => GptqFormat::V2,
                    Some(f) => {
                        return Err(Error::format(
                            "quantization config",
                            format!("{source}: GPTQ checkpoint_format '{f}' is not supported (gptq or gptq_v2)"),
                        ))
                    }
                };
                (QuantMethod::Gptq(format), get_bool(obj, "sym", true, source)?)
            }
            "awq" => {
                if let Some(ver) = get_str(obj, &["version"], source)? {
                    if !ver.eq_ignore_ascii_case("gemm") {
                        return Err(Error::format(
                            "quantization config",
                            format!("{source}: AWQ version '{ver}' is not supported (only the GEMM layout, version 'gemm')"),
                        ));
                    }
                }
                (QuantMethod::Awq, !get_bool(obj, "zero_point", true, source)?)
            }
            m => return Err(Error::format("quantization config", format!("{source}: quant_method '{m}' is not supported (gptq or awq)"))),
        };
        Ok(Some(QuantConfig { method, bits: bits as u32, group_size: group as usize, desc_act, sym }))
    }
}

/// One quantized linear layer: `y = x W^T + bias` with `W` `[n, k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLinear {
    /// The layer prefix (e.g. `model.layers.0.self_attn.q_proj`).
    pub name: String,
    /// The weight (with `perm` set for act-order GPTQ).
    pub weight: Int4Weights,
    /// The bias `[n]`, if the checkpoint has `<prefix>.bias`.
    pub bias: Option<Vec<f32>>,
}

struct Shard {
    name: String,
    storage: Storage,
    meta: Metadata,
    data_start: usize,
}

impl Shard {
    fn parse(name: String, storage: Storage) -> Result<Shard> {
        let (n, meta) =
            SafeTensors::read_metadata(storage.bytes()).map_err(|e| Error::parse(&name, format!("invalid safetensors file: {e}")))?;
        Ok(Shard { name, storage, meta, data_start: 8 + n })
    }
}

/// An opened safetensors checkpoint (memory-mapped shards) with its quantization config.
pub struct Checkpoint {
    source: String,
    config: Option<QuantConfig>,
    shards: Vec<Shard>,
    /// Tensor name -> shard index.
    index: BTreeMap<String, usize>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("source", &self.source)
            .field("config", &self.config)
            .field("shards", &self.shards.iter().map(|s| &s.name).collect::<Vec<_>>())
            .field("tensors", &self.index.len())
            .finish()
    }
}

fn shard_name_ok(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']) && !name.contains('\0')
}

/// The shard file names of an index JSON's `weight_map`, and the map itself.
fn parse_index(json: &[u8], source: &str) -> Result<(Vec<String>, BTreeMap<String, String>)> {
    let v: Value = serde_json::from_slice(json).map_err(|e| Error::parse(source, format!("invalid JSON: {e}")))?;
    let Some(Value::Object(map)) = v.get("weight_map") else {
        return Err(Error::parse(source, "no 'weight_map' object"));
    };
    let mut files = Vec::new();
    let mut out = BTreeMap::new();
    for (tensor, file) in map {
        let Value::String(file) = file else {
            return Err(Error::parse(source, format!("weight_map['{tensor}'] is {file}, expected a file name")));
        };
        if !shard_name_ok(file) {
            return Err(Error::parse(
                source,
                format!("weight_map['{tensor}'] = '{file}' is not a plain file name in the checkpoint folder"),
            ));
        }
        if !files.contains(file) {
            files.push(file.clone());
        }
        out.insert(tensor.clone(), file.clone());
    }
    Ok((files, out))
}

impl Checkpoint {
    /// Opens a checkpoint folder: `config.json` (its `quantization_config`; else
    /// `quantize_config.json`; neither means unquantized), then `model.safetensors.index.json`
    /// and every shard it names, or else `model.safetensors`. Shards are memory-mapped and must
    /// not be modified while the checkpoint lives.
    pub fn open(dir: impl AsRef<Path>) -> Result<Checkpoint> {
        let dir = dir.as_ref();
        let read_opt = |name: &str| -> Result<Option<Vec<u8>>> {
            match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let mut config = None;
        if let Some(b) = read_opt("config.json")? {
            config = QuantConfig::from_json(&b, &dir.join("config.json").display().to_string())?;
        }
        if config.is_none() {
            if let Some(b) = read_opt("quantize_config.json")? {
                config = QuantConfig::from_json(&b, &dir.join("quantize_config.json").display().to_string())?;
            }
        }
        let index_path = dir.join("model.safetensors.index.json");
        let (shards, map) = match read_opt("model.safetensors.index.json")? {
            Some(json) => {
                let src = index_path.display().to_string();
                let (files, map) = parse_index(&json, &src)?;
                let mut shards = Vec::with_capacity(files.len());
                for f in files {
                    let path = dir.join(&f);
                    let file = std::fs::File::open(&path).map_err(|e| {
                        Error::parse(&src, format!("the index names shard '{f}', which cannot be opened ({}): {e}", path.display()))
                    })?;
                    shards.push(Shard::parse(path.display().to_string(), Storage::map(&file)?)?);
                }
                (shards, Some(map))
            }
            None => {
                let path = dir.join("model.safetensors");
                let file = std::fs::File::open(&path).map_err(|e| {
                    Error::parse(
                        dir.display().to_string(),
                        format!("neither model.safetensors.index.json nor model.safetensors can be opened in the folder: {e}"),
                    )
                })?;
                (vec![Shard::parse(path.display().to_string(), Storage::map(&file)?)?], None)
            }
        };
        Self::assemble(dir.display().to_string(), config, shards, map)
    }

    /// Builds a checkpoint from in-memory parts (the same checks as [`Checkpoint::open`]):
    /// `config_json` as a `config.json` or `quantize_config.json`, an optional index JSON, and
    /// the shards as `(file name, bytes)`. Without an index there must be exactly one shard.
    pub fn from_parts(config_json: Option<&[u8]>, index_json: Option<&[u8]>, shards: Vec<(String, Vec<u8>)>) -> Result<Checkpoint> {
        let config = match config_json {
            Some(b) => QuantConfig::from_json(b, "<config.json>")?,
            None => None,
        };
        let map = match index_json {
            Some(json) => {
                let (files, map) = parse_index(json, "<index.json>")?;
                if let Some(f) = files.iter().find(|f| !shards.iter().any(|(n, _)| n == *f)) {
                    return Err(Error::parse("<index.json>", format!("the index names shard '{f}', which is not among the shards given")));
                }
                Some(map)
            }
            None if shards.len() != 1 => {
                return Err(Error::parse("<checkpoint>", format!("{} shards given without an index (exactly one expected)", shards.len())))
            }
            None => None,
        };
        let shards = shards.into_iter().map(|(n, b)| Shard::parse(n, Storage::Owned(b))).collect::<Result<Vec<_>>>()?;
        Self::assemble("<checkpoint>".into(), config, shards, map)
    }

    fn assemble(
        source: String,
        config: Option<QuantConfig>,
        shards: Vec<Shard>,
        map: Option<BTreeMap<String, String>>,
    ) -> Result<Checkpoint> {
        let mut index = BTreeMap::new();
        match map {
            None => {
                for name in shards[0].meta.tensors().into_keys() {
                    index.insert(name, 0);
                }
            }
            Some(map) => {
                let by_file: HashMap<&str, usize> = shards
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (Path::new(&s.name).file_name().and_then(|f| f.to_str()).unwrap_or(&s.name), i))
                    .collect();
                for (tensor, file) in map {
                    let i = *by_file.get(file.as_str()).ok_or_else(|| Error::parse(&source, format!("shard '{file}' is missing")))?;
                    if shards[i].meta.info(&tensor).is_none() {
                        return Err(Error::parse(
                            &shards[i].name,
                            format!("the index puts tensor '{tensor}' in this shard, which does not have it"),
                        ));
                    }
                    index.insert(tensor, i);
                }
            }
        }
        Ok(Checkpoint { source, config, shards, index })
    }

    /// The quantization config (`None` for an unquantized checkpoint).
    pub fn config(&self) -> Option<&QuantConfig> {
        self.config.as_ref()
    }

    /// Every tensor name, sorted.
    pub fn tensor_names(&self) -> Vec<&str> {
        self.index.keys().map(|s| s.as_str()).collect()
    }

    /// A tensor's safetensors dtype name (`F16`, `I32`, ...) and shape.
    pub fn tensor_info(&self, name: &str) -> Option<(String, Vec<usize>)> {
        let shard = &self.shards[*self.index.get(name)?];
        shard.meta.info(name).map(|i| (format!("{:?}", i.dtype), i.shape.clone()))
    }

    /// The prefixes of every quantized linear layer (those with a `<prefix>.qweight`), sorted.
    pub fn quantized_layers(&self) -> Vec<String> {
        self.index.keys().filter_map(|n| n.strip_suffix(".qweight")).map(str::to_string).collect()
    }

    /// `(dtype, shape, bytes)` of a tensor, borrowed from its shard.
    fn raw(&self, name: &str) -> Result<(Dtype, &[usize], &[u8])> {
        let i = *self.index.get(name).ok_or_else(|| Error::parse(&self.source, format!("no tensor named '{name}'")))?;
        let shard = &self.shards[i];
        let info = shard.meta.info(name).ok_or_else(|| Error::parse(&shard.name, format!("no tensor named '{name}'")))?;
        let (s, e) = info.data_offsets;
        // read_metadata checked that the offsets tile the data section exactly.
        let bytes = &shard.storage.bytes()[shard.data_start + s..shard.data_start + e];
        Ok((info.dtype, &info.shape, bytes))
    }

    fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// A float tensor (F32, F16 or BF16; exact conversion) with its shape.
    fn floats(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let (dtype, shape, b) = self.raw(name)?;
        let data = match dtype {
            Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::F16 => b.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::BF16 => b.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            d => return Err(Error::format("checkpoint", format!("tensor '{name}' has dtype {d:?}, expected F32, F16 or BF16"))),
        };
        Ok((shape.to_vec(), data))
    }

    /// An int32 tensor (I32; U32 reinterpreted; I64 narrowed with a range check) with its shape.
    fn ints(&self, name: &str) -> Result<(Vec<usize>, Vec<i32>)> {
        let (dtype, shape, b) = self.raw(name)?;
        let data = match dtype {
            Dtype::I32 | Dtype::U32 => b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::I64 => b
                .chunks_exact(8)
                .map(|c| {
                    let v = i64::from_le_bytes(c.try_into().unwrap());
                    i32::try_from(v).map_err(|_| Error::format("checkpoint", format!("tensor '{name}' holds {v}, out of the int32 range")))
                })
                .collect::<Result<_>>()?,
            d => return Err(Error::format("checkpoint", format!("tensor '{name}' has dtype {d:?}, expected I32"))),
        };
        Ok((shape.to_vec(), data))
    }

    /// Loads a dense F32 / F16 / BF16 tensor as an f32 matrix: `[shape[0], product of the
    /// rest]` (a 1-D tensor is one row; a 0-D one is `[1, 1]`).
    pub fn load_matrix(&self, name: &str) -> Result<Matrix<f32>> {
        let (shape, data) = self.floats(name)?;
        // A zero dim lets the other dims be anything in a valid file: multiply checked.
        let product = |d: &[usize]| d.iter().try_fold(1usize, |a, &x| a.checked_mul(x));
        let (rows, cols) = match shape.as_slice() {
            [] => (Some(1), Some(1)),
            [c] => (Some(1), Some(*c)),
            [r, rest @ ..] => (Some(*r), product(rest)),
        };
        let (Some(rows), Some(cols)) = (rows, cols) else {
            return Err(Error::format("checkpoint", format!("tensor '{name}' of shape {shape:?} is too large")));
        };
        Matrix::new(rows, cols, data)
    }

    /// Loads the quantized linear layer `prefix` (`<prefix>.qweight`, `.qzeros`, `.scales`,
    /// optional `.g_idx` and `.bias`) with the checkpoint's method, format and group size,
    /// checking every tensor's dtype and shape against each other and the config.
    pub fn load_layer(&self, prefix: &str) -> Result<QuantLinear> {
        let cfg = self.config.as_ref().ok_or_else(|| {
            Error::format("checkpoint", format!("layer '{prefix}' has a qweight but the checkpoint has no quantization_config"))
        })?;
        let group = cfg.group_size;
        let t = |s: &str| format!("{prefix}.{s}");
        let (qw_shape, qweight) = self.ints(&t("qweight"))?;
        let (qz_shape, qzeros) = self.ints(&t("qzeros"))?;
        let (sc_shape, scales) = self.floats(&t("scales"))?;
        let two_d = |what: &str, s: &[usize]| -> Result<(usize, usize)> {
            match *s {
                [a, b] if a > 0 && b > 0 => Ok((a, b)),
                _ => Err(Error::format("checkpoint", format!("'{prefix}.{what}' has shape {s:?}, expected 2-D and non-empty"))),
            }
        };
        let (a, b) = two_d("qweight", &qw_shape)?;
        let (k, n) = match cfg.method {
            QuantMethod::Gptq(_) => (a.checked_mul(8), Some(b)),
            QuantMethod::Awq => (Some(a), b.checked_mul(8)),
        };
        let (Some(k), Some(n)) = (k, n) else {
            return Err(Error::format("checkpoint", format!("'{prefix}.qweight' shape {qw_shape:?} is too large")));
        };
        crate::formats::checked_elems("Checkpoint::load_layer", "weight", &[n, k])?;
        let layout = match cfg.method {
            QuantMethod::Gptq(_) => "GPTQ qweight [K/8, N]",
            QuantMethod::Awq => "AWQ qweight [K, N/8]",
        };
        if k % group != 0 || n % 8 != 0 {
            return Err(Error::format(
                "checkpoint",
                format!(
                    "'{prefix}': {layout} of shape {qw_shape:?} gives K = {k}, N = {n}, which contradicts the config's group_size {group} \
                     (K must be a multiple of it) or has N not a multiple of 8"
                ),
            ));
        }
        let groups = k / group;
        let want_sc = [groups, n];
        let want_qz = [groups, n / 8];
        if sc_shape != want_sc {
            return Err(Error::format(
                "checkpoint",
                format!(
                    "'{prefix}.scales' has shape {sc_shape:?} but {layout} {qw_shape:?} (K = {k}, N = {n}) with the config's group_size {group} \
                     needs [K/group, N] = {want_sc:?}"
                ),
            ));
        }
        if qz_shape != want_qz {
            return Err(Error::format(
                "checkpoint",
                format!("'{prefix}.qzeros' has shape {qz_shape:?}, expected [K/group, N/8] = {want_qz:?} (K = {k}, N = {n}, group_size {group})"),
            ));
        }
        let weight = match cfg.method {
            QuantMethod::Gptq(format) => {
                let g_idx = if self.has(&t("g_idx")) {
                    let (gs, gi) = self.ints(&t("g_idx"))?;
                    if gs != [k] {
                        return Err(Error::format("checkpoint", format!("'{prefix}.g_idx' has shape {gs:?}, expected [K] = [{k}]")));
                    }
                    Some(gi)
                } else {
                    None
                };
                Int4Weights::from_gptq_format(&qweight, &qzeros, &scales, g_idx.as_deref(), k, n, group, format)?
            }
            QuantMethod::Awq => Int4Weights::from_awq_f32(&qweight, &qzeros, &scales, k, n, group)?,
        };
        let bias = if self.has(&t("bias")) {
            let (bs, bias) = self.floats(&t("bias"))?;
            if bs != [n] {
                return Err(Error::format("checkpoint", format!("'{prefix}.bias' has shape {bs:?}, expected [N] = [{n}]")));
            }
            Some(bias)
        } else {
            None
        };
        Ok(QuantLinear { name: prefix.to_string(), weight, bias })
    }
}

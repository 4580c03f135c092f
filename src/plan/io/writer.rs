//! Writing a compressed model (layout v1) and reading it back.

use super::*;

pub(super) struct OwnedTensor {
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

pub(super) fn le<T: bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    // Every target slimgemm supports is little-endian (as safetensors requires).
    bytemuck::cast_slice(v).to_vec()
}

/// Collects compressed layers and copied tensors, then writes one safetensors file in the
/// layout of the [module docs](crate::plan::io).
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
    /// and, if known, the planner's `(weight error, output error)`. Weight-only int8
    /// ([`Weight::Int8WeightOnly`]) is not part of the layout: an error.
    pub fn add_layer(&mut self, name: &str, weight: &Weight, orig_shape: &[usize], errors: Option<(f64, f64)>) -> Result<()> {
        let (out, inp) = weight.shape();
        let not_in_layout =
            |what: &str| Error::format("compressed model", format!("layer '{name}': {what} are not part of layout {LAYOUT_VERSION}"));
        let mut info = json!({ "shape": [out, inp], "orig_shape": orig_shape });
        let t = |s: &str| format!("{name}.{s}");
        match weight {
            Weight::Dense(m) => self.put(name.to_string(), Dtype::F32, vec![out, inp], le(&m.data))?,
            Weight::Csr(c) => {
                info["nnz"] = json!(c.nnz());
                self.put(t("csr.indptr"), Dtype::U32, vec![out + 1], le(&c.indptr))?;
                self.put(t("csr.indices"), Dtype::U32, vec![c.nnz()], le(&c.indices))?;
                self.put(t("csr.values"), Dtype::F32, vec![c.nnz()], le(&c.data))?;
            }
            Weight::Sparse24(s) => {
                self.put(t("sparse24.values"), Dtype::F32, vec![out, inp / 2], le(s.values()))?;
                self.put(t("sparse24.meta"), Dtype::U32, vec![out, Sparse24::<f32>::meta_stride(inp)], le(s.meta()))?;
            }
            Weight::LowRank(l) => {
                info["rank"] = json!(l.r);
                self.put(t("lowrank.u"), Dtype::F32, vec![out, l.r], le(&l.u))?;
                self.put(t("lowrank.v"), Dtype::F32, vec![inp, l.r], le(&l.v))?;
            }
            Weight::Int8(q) => {
                self.put(t("int8.q"), Dtype::I8, vec![out, inp], le(&q.q))?;
                self.put(t("int8.scales"), Dtype::F32, vec![out], le(&q.scales))?;
            }
            Weight::Int4(q) => {
                if q.mins.is_some() || q.perm.is_some() {
                    return Err(not_in_layout("int4 weights with float minimums or an act-order permutation"));
                }
                info["group"] = json!(q.group);
                info["symmetric"] = json!(q.symmetric);
                let g = inp / q.group;
                self.put(t("int4.qweight"), Dtype::U32, vec![out, inp / 8], le(&q.qweight))?;
                self.put(t("int4.scales"), Dtype::F32, vec![out, g], le(&q.scales))?;
                self.put(t("int4.zeros"), Dtype::U8, vec![out, g], q.zeros.clone())?;
            }
            Weight::Binary(b) => {
                self.put(t("binary.bits"), Dtype::U32, vec![out, b.bits.words], le(&b.bits.bits))?;
                self.put(t("binary.alpha"), Dtype::F32, vec![out], le(&b.alpha))?;
            }
            Weight::Int8WeightOnly(_) => return Err(not_in_layout("weight-only int8 weights")),
        }
        // Every format with tensors above has a variant.
        let variant = weight.variant()?;
        info["format"] = json!(variant.family_name());
        info["variant"] = json!(variant.to_string());
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

pub(super) fn finite(x: f64) -> Value {
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
    pub weight: Weight,
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
pub(super) fn read_layer(s: &Shard, name: &str, info: &Value) -> Result<(Weight, Vec<String>)> {
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
        "dense" => Weight::Dense(Matrix::new(out, inp, f32s(get("", Dtype::F32, &[out, inp])?))?),
        "csr" => {
            let nnz = usize_of("nnz")?;
            let indptr = u32s(get("csr.indptr", Dtype::U32, &[out + 1])?);
            let indices = u32s(get("csr.indices", Dtype::U32, &[nnz])?);
            let values = f32s(get("csr.values", Dtype::F32, &[nnz])?);
            Weight::Csr(Csr::new(out, inp, indptr, indices, values)?)
        }
        "2:4" => {
            let values = f32s(get("sparse24.values", Dtype::F32, &[out, inp / 2])?);
            let meta = u32s(get("sparse24.meta", Dtype::U32, &[out, Sparse24::<f32>::meta_stride(inp)])?);
            Weight::Sparse24(Sparse24::new(out, inp, values, meta)?)
        }
        "lowrank" => {
            let r = usize_of("rank")?;
            let u = f32s(get("lowrank.u", Dtype::F32, &[out, r])?);
            let v = f32s(get("lowrank.v", Dtype::F32, &[inp, r])?);
            Weight::LowRank(LowRank::new(out, inp, r, u, v)?)
        }
        "int8" => {
            let q: Vec<i8> = get("int8.q", Dtype::I8, &[out, inp])?.iter().map(|&b| b as i8).collect();
            let scales = f32s(get("int8.scales", Dtype::F32, &[out])?);
            Weight::Int8(Int8Matrix::new(out, inp, q, scales)?)
        }
        "int4" => {
            let g = usize_of("group")?;
            if g == 0 || inp % g != 0 || inp % 8 != 0 {
                return Err(bad(format!("group {g} does not divide in = {inp} (or in is no multiple of 8)")));
            }
            let qweight = u32s(get("int4.qweight", Dtype::U32, &[out, inp / 8])?);
            let scales = f32s(get("int4.scales", Dtype::F32, &[out, inp / g])?);
            let zeros = get("int4.zeros", Dtype::U8, &[out, inp / g])?.to_vec();
            Weight::Int4(Int4Weights::new(out, inp, g, qweight, scales, zeros)?)
        }
        "binary" => {
            let words = inp.div_ceil(32);
            let bits = u32s(get("binary.bits", Dtype::U32, &[out, words])?);
            let alpha = f32s(get("binary.alpha", Dtype::F32, &[out])?);
            Weight::Binary(BinaryWeights::new(BitMatrix::new(out, inp, bits)?, alpha)?)
        }
        f => return Err(bad(format!("unknown format '{f}' (layout {LAYOUT_VERSION} has dense, csr, 2:4, lowrank, int8, int4, binary)"))),
    };
    if let Some(v) = info.get("variant").and_then(Value::as_str) {
        let got = w.variant()?;
        if got.to_string() != v && !matches!(got, Variant::Int4 { .. }) {
            return Err(bad(format!("metadata says variant {v}, the tensors hold {got}")));
        }
    }
    Ok((w, used))
}

//! Writing a GGUF file (tests, examples, round trips).

use super::reader::tensor_bytes_of;
use super::*;

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

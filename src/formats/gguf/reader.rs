//! Reading a GGUF file: the parser (header, metadata, tensor infos, alignment), tensor
//! loading into slimgemm formats, and the ggml-exact reference dequantizers.

use super::*;

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
pub(super) fn tensor_bytes_of(ty: GgmlType, dims: &[u64]) -> std::result::Result<u64, String> {
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

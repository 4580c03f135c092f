//! Device-resident data: untyped [`Buffer`]s, dense [`Tensor`]s and the device forms of the
//! compressed formats. Obtain them from a [`crate::Device`] (`upload_*`, `zeros`), pass them
//! to its ops, read them back with `download_*`. Their fields are private so that a handle
//! can never disagree with the memory behind it.

use crate::dtype::DType;

/// `pub fn field(&self) -> T { self.field }` for each listed (documented) field of a device
/// handle: the handles keep their fields private to the crate and expose them read-only.
macro_rules! field_getters {
    ($ty:ident { $($(#[$doc:meta])* $field:ident: $t:ty,)* }) => {
        impl $ty {
            $($(#[$doc])* pub fn $field(&self) -> $t { self.$field })*
        }
    };
}

/// Backend-specific storage behind a [`Buffer`] (candle's pattern: one variant per backend,
/// uninhabited where the backend is not compiled in).
#[derive(Debug)]
pub enum Storage {
    /// Host memory of the CPU reference backend.
    Cpu(crate::cpu::CpuStorage),
    /// A wgpu buffer.
    Wgpu(crate::wgpu::WgpuStorage),
    /// A CUDA device allocation.
    Cuda(crate::cuda::CudaStorage),
}

impl Storage {
    /// The backend this storage belongs to.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Storage::Cpu(_) => "cpu",
            Storage::Wgpu(_) => "wgpu",
            Storage::Cuda(_) => "cuda",
        }
    }
}

/// A flat device buffer of `len` elements of one [`DType`], owned by one device.
#[derive(Debug)]
pub struct Buffer {
    pub(crate) storage: Storage,
    pub(crate) dtype: DType,
    pub(crate) len: usize,
    pub(crate) device_id: u64,
}

field_getters!(Buffer {
    /// Number of elements.
    len: usize,
});

impl Buffer {
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// True if the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The backend storage (to hand a buffer to other GPU code).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
    /// Mutable access to the backend storage (for the backends).
    pub(crate) fn storage_mut(&mut self) -> &mut Storage {
        &mut self.storage
    }
    /// Id of the device that owns it.
    pub fn device_id(&self) -> u64 {
        self.device_id
    }
}

/// Fails unless a buffer holds exactly `want` elements: the contract a kernel's bounds
/// argument rests on, checked by every launcher (CUDA and WGSL) before it binds the buffer.
pub(crate) fn expect_len(op: &'static str, what: &str, b: &Buffer, want: usize) -> crate::Result<()> {
    if b.len != want {
        return Err(crate::Error::shape(op, format!("{what} holds {} elements, the kernel needs {want}", b.len)));
    }
    Ok(())
}

/// The element count of a transpose of `x` (`[rows, cols]`) into `out`, after checking that
/// both buffers hold exactly that many elements (the launchers' contract for `transpose`).
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub(crate) fn transpose_len(op: &'static str, x: &Tensor, out: &Tensor) -> crate::Result<usize> {
    let (rows, cols) = (x.rows, x.cols);
    let count = rows.checked_mul(cols).ok_or_else(|| crate::Error::shape(op, format!("[{rows}, {cols}] overflows usize")))?;
    expect_len(op, "x", &x.buf, count)?;
    expect_len(op, "out", &out.buf, count)?;
    Ok(count)
}

/// `(b, n, k)` of a dense layer `y [b, n] = x [b, k] W[n, k]^T (+ bias [n])`, after checking
/// that every buffer holds exactly that many elements (the launchers' contract for
/// `dense_linear`).
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub(crate) fn dense_linear_lens(
    op: &'static str,
    w: &Tensor,
    x: &Tensor,
    bias: Option<&Tensor>,
    y: &Tensor,
) -> crate::Result<(usize, usize, usize)> {
    let (b, n, k) = (x.rows, w.rows, w.cols);
    let elems = |what: &str, r: usize, c: usize| {
        r.checked_mul(c).ok_or_else(|| crate::Error::shape(op, format!("{what} [{r}, {c}] overflows usize")))
    };
    expect_len(op, "W", &w.buf, elems("W", n, k)?)?;
    expect_len(op, "x", &x.buf, elems("x", b, k)?)?;
    expect_len(op, "y", &y.buf, elems("y", b, n)?)?;
    if let Some(t) = bias {
        expect_len(op, "bias", &t.buf, n)?;
    }
    Ok((b, n, k))
}

/// Fails unless a buffer holds at least `want` elements (nnz-long arrays keep one unused
/// element when `nnz == 0`; kernels only read positions that `indptr` names).
pub(crate) fn expect_min_len(op: &'static str, what: &str, b: &Buffer, want: usize) -> crate::Result<()> {
    if b.len < want {
        return Err(crate::Error::shape(op, format!("{what} holds {} elements, the kernel needs {want}", b.len)));
    }
    Ok(())
}

/// A dense row-major matrix `[rows, cols]` on a device, f32 or f16.
#[derive(Debug)]
pub struct Tensor {
    pub(crate) buf: Buffer,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

field_getters!(Tensor {
    /// Number of rows.
    rows: usize,
    /// Number of columns.
    cols: usize,
});

impl Tensor {
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.buf.dtype
    }
    /// The buffer behind it.
    pub fn buffer(&self) -> &Buffer {
        &self.buf
    }
    /// Unwraps the buffer (for handing it back to the caller's GPU code).
    pub fn into_buffer(self) -> Buffer {
        self.buf
    }
}

/// A CSR matrix on a device, with the transposed (CSC) pattern and row orderings that the
/// kernels use, computed once at upload.
#[derive(Debug)]
// The CPU reference reads only the CSR arrays; the GPU backends read all of them.
#[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
pub struct DeviceCsr {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) nnz: usize,
    /// `rows + 1` u32 offsets.
    pub(crate) indptr: Buffer,
    /// `nnz` u32 column indices.
    pub(crate) indices: Buffer,
    /// `nnz` values (f32 or f16); one unused element when `nnz == 0`, likewise for the other
    /// `nnz`-long buffers.
    pub(crate) values: Buffer,
    /// `rows` u32 row ids sorted by decreasing row length (row swizzle for load balance).
    pub(crate) row_order: Buffer,
    /// `cols + 1` u32 offsets of the transposed pattern (CSC of A).
    pub(crate) t_indptr: Buffer,
    /// `nnz` u32 row indices of the transposed pattern.
    pub(crate) t_indices: Buffer,
    /// `nnz` u32: position in `values` of each transposed entry.
    pub(crate) t_perm: Buffer,
    /// `nnz` values in CSC order, `t_values[q] = values[t_perm[q]]`, made at upload: the GPU
    /// backends' `spmm_t` (CUDA, wgpu) reads them in order, without a gather per call. Every
    /// backend's `sddmm` (the one op that writes `values`) refreshes this copy after writing.
    pub(crate) t_values: Buffer,
    /// `cols` u32 column ids sorted by decreasing column length.
    pub(crate) t_row_order: Buffer,
    /// The column indices narrowed to u16, two per u32 word (low half first), `ceil(nnz / 2)`
    /// words (at least one): uploaded for the GPU backends when `cols <= 65536` (their `spmm`
    /// reads them: half the index bytes; CUDA's simple kernel excepted); `None` otherwise and
    /// on the CPU. The u32 `indices` stay the API's (download, `sddmm`, the CPU reference).
    pub(crate) indices16: Option<Buffer>,
    /// `t_indices` narrowed likewise (GPU, `rows <= 65536`), for `spmm_t`.
    pub(crate) t_indices16: Option<Buffer>,
    /// Longest row.
    pub(crate) max_row_nnz: usize,
    /// Longest column.
    pub(crate) max_col_nnz: usize,
}

field_getters!(DeviceCsr {
    /// Number of rows (M).
    rows: usize,
    /// Number of columns (K).
    cols: usize,
    /// Number of stored values.
    nnz: usize,
    /// Stored values of the longest row.
    max_row_nnz: usize,
    /// Stored values of the longest column.
    max_col_nnz: usize,
});

impl DeviceCsr {
    /// Checks every buffer's length against the pattern (the kernels' contract).
    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
    pub(crate) fn check_buffers(&self, op: &'static str) -> crate::Result<()> {
        expect_len(op, "A.indptr", &self.indptr, self.rows + 1)?;
        expect_min_len(op, "A.indices", &self.indices, self.nnz)?;
        expect_min_len(op, "A.values", &self.values, self.nnz)?;
        expect_len(op, "A.row_order", &self.row_order, self.rows)?;
        expect_len(op, "A.t_indptr", &self.t_indptr, self.cols + 1)?;
        expect_min_len(op, "A.t_indices", &self.t_indices, self.nnz)?;
        expect_min_len(op, "A.t_perm", &self.t_perm, self.nnz)?;
        expect_len(op, "A.t_row_order", &self.t_row_order, self.cols)?;
        for (what, b) in [("A.indices16", &self.indices16), ("A.t_indices16", &self.t_indices16)] {
            if let Some(b) = b {
                expect_min_len(op, what, b, self.nnz.div_ceil(2))?;
            }
        }
        Ok(())
    }
    /// Value type.
    pub fn dtype(&self) -> DType {
        self.values.dtype
    }
    /// The values buffer.
    pub fn values(&self) -> &Buffer {
        &self.values
    }
}

/// A 2:4 structured-sparse matrix `[rows, cols]` on a device: the layout of
/// [`crate::formats::Sparse24`] (values `[rows, cols / 2]`, metadata `[rows, ceil(cols / 32)]`
/// u32), plus, on backends with sparse tensor cores (CUDA sm_80+, f16), a second copy of the
/// values and metadata in the per-thread fragment order of `mma.sp` (rows padded to 64, K to
/// 64), built once at upload. That copy doubles the device memory of the values.
#[derive(Debug)]
pub struct DeviceSparse24 {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    /// `rows * cols / 2` values (f32 or f16).
    pub(crate) values: Buffer,
    /// `rows * ceil(cols / 32)` u32 metadata words.
    pub(crate) meta: Buffer,
    /// The tensor-core copy, where the backend asked for it.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) mma: Option<DeviceSparse24Mma>,
}

/// The `mma.sp` fragment-ordered copy of a [`DeviceSparse24`] (layout documented on
/// `formats::sparse24::MmaLayout`).
#[derive(Debug)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) struct DeviceSparse24Mma {
    /// `m_tiles * k_steps * 128` u32 (pairs of f16).
    pub(crate) values: Buffer,
    /// `m_tiles * k_steps * 16` u32.
    pub(crate) meta: Buffer,
    /// Tiles of 16 rows (a multiple of 4).
    pub(crate) m_tiles: usize,
    /// Steps of 32 columns (even).
    pub(crate) k_steps: usize,
}

field_getters!(DeviceSparse24 {
    /// Number of rows (M).
    rows: usize,
    /// Number of columns (K, a multiple of 4).
    cols: usize,
});

impl DeviceSparse24 {
    /// Value type.
    pub fn dtype(&self) -> DType {
        self.values.dtype
    }
    /// The values buffer (`rows * cols / 2`).
    pub fn values(&self) -> &Buffer {
        &self.values
    }
    /// The metadata buffer (`rows * ceil(cols / 32)` u32).
    pub fn meta(&self) -> &Buffer {
        &self.meta
    }
    /// True if the tensor-core (`mma.sp`) copy was built at upload.
    pub fn has_mma_layout(&self) -> bool {
        self.mma.is_some()
    }
}

/// Low-rank factors on a device: `U [m, r]`, `V [n, r]`.
#[derive(Debug)]
pub struct DeviceLowRank {
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) r: usize,
    pub(crate) u: Tensor,
    pub(crate) v: Tensor,
}

field_getters!(DeviceLowRank {
    /// Rows of W.
    m: usize,
    /// Columns of W.
    n: usize,
    /// Rank.
    r: usize,
});

impl DeviceLowRank {
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.u.dtype()
    }
    /// `U [m, r]`.
    pub fn u(&self) -> &Tensor {
        &self.u
    }
    /// `V [n, r]`.
    pub fn v(&self) -> &Tensor {
        &self.v
    }
}

/// Int8 rows with per-row f32 scales on a device. Rows are stored with a `stride` that is a
/// multiple of 16 bytes, zero-padded, so kernels may read whole `vec4<u32>` / `int4` vectors.
#[derive(Debug)]
pub struct DeviceInt8Matrix {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) stride: usize,
    /// `rows * stride` i8.
    pub(crate) q: Buffer,
    /// `rows` f32.
    pub(crate) scales: Buffer,
}

field_getters!(DeviceInt8Matrix {
    /// Number of rows.
    rows: usize,
    /// Number of logical columns (K).
    cols: usize,
    /// Row stride in elements (multiple of 16).
    stride: usize,
});

impl DeviceInt8Matrix {
    /// The `rows * stride` i8 buffer (row padding included).
    pub fn q_buffer(&self) -> &Buffer {
        &self.q
    }
}

/// Int4 group-wise weights `[n, k]` on a device (layout of [`crate::formats::Int4Weights`]).
#[derive(Debug)]
pub struct DeviceInt4Weights {
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) group: usize,
    pub(crate) symmetric: bool,
    /// `n * k / 8` u32.
    pub(crate) qweight: Buffer,
    /// `n * k / group` f32.
    pub(crate) scales: Buffer,
    /// `n * k / group` u32 zero points (0..16); in the float-minimum form (`mins` is `Some`),
    /// which has none, a single unused 0 (every backend branches on `mins` first).
    pub(crate) zeros: Buffer,
    /// `n * k / group` f32 float minimums (GGUF Q4_K: `w = q * scale - min`), or `None` for
    /// the integer zero-point form.
    pub(crate) mins: Option<Buffer>,
    /// `k` u32 act-order permutation (stored column `c` is input feature `perm[c]`), or `None`
    /// for the identity.
    pub(crate) perm: Option<Buffer>,
    /// Present when `qweight` holds the tensor-core fragment order of
    /// [`crate::formats::int4_mma`] (`n_pad * k / 8` words) instead of the user's layout.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) mma: Option<DeviceInt4Mma>,
}

/// The extra state of a [`DeviceInt4Weights`] in the tensor-core layout.
#[derive(Debug)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) struct DeviceInt4Mma {
    /// Output channels padded to a multiple of 64.
    pub(crate) n_pad: usize,
    /// `(k / group) * n_pad` u32: f16 scale | zero point << 16, in lane order.
    pub(crate) sz: Buffer,
}

field_getters!(DeviceInt4Weights {
    /// Output channels.
    n: usize,
    /// Input features.
    k: usize,
    /// Group size.
    group: usize,
    /// True if every zero point is 8 (always false in the float-minimum form).
    symmetric: bool,
});

impl DeviceInt4Weights {
    /// True if the codes are stored in the tensor-core fragment order (built at upload by
    /// backends that asked for it; [`crate::Device::download_int4`] still returns the user's
    /// layout).
    pub fn has_mma_layout(&self) -> bool {
        self.mma.is_some()
    }
    /// True for the float-minimum form (GGUF Q4_K, `w = q * scale - min`).
    pub fn has_mins(&self) -> bool {
        self.mins.is_some()
    }
    /// True if the weights carry an act-order permutation (the kernels gather X's columns
    /// through it).
    pub fn has_perm(&self) -> bool {
        self.perm.is_some()
    }
}

/// Weight-only int8 weights `[n, k]` with group-wise f32 scales on a device (layout of
/// [`crate::formats::Int8Weights`]: `w[j, c] = q[j, c] * scales[j, c / group]`). Rows are
/// `k` bytes, a multiple of the group size (32, 64 or 128), so every row starts 16-byte
/// aligned and needs no padding.
#[derive(Debug)]
pub struct DeviceInt8Weights {
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) group: usize,
    /// `n * k` i8 codes, row-major.
    pub(crate) q: Buffer,
    /// `n * k / group` f32 scales.
    pub(crate) scales: Buffer,
}

field_getters!(DeviceInt8Weights {
    /// Output channels.
    n: usize,
    /// Input features.
    k: usize,
    /// Group size.
    group: usize,
});

/// A bit-packed {-1,+1} matrix `[rows, cols]` on a device (LCE convention), `words =
/// ceil(cols / 32)` u32 per row. An NHWC tensor has `rows = n*h*w`, `cols = c`.
#[derive(Debug)]
pub struct DeviceBits {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) words: usize,
    /// `rows * words` u32.
    pub(crate) data: Buffer,
}

field_getters!(DeviceBits {
    /// Number of rows.
    rows: usize,
    /// Number of bits per row.
    cols: usize,
    /// Words per row.
    words: usize,
});

/// Binary linear weights `[n, k]` with per-output-channel `alpha` on a device.
#[derive(Debug)]
pub struct DeviceBinaryWeights {
    pub(crate) bits: DeviceBits,
    /// `n` f32.
    pub(crate) alpha: Buffer,
}

impl DeviceBinaryWeights {
    /// The packed signs `[n, k]`.
    pub fn bits(&self) -> &DeviceBits {
        &self.bits
    }
}

/// A binary conv filter `[c_out, kh, kw, c_in]` on a device.
#[derive(Debug)]
pub struct DeviceBinaryFilter {
    pub(crate) c_out: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) c_in: usize,
    pub(crate) words: usize,
    /// `c_out * kh * kw * words` u32.
    pub(crate) bits: Buffer,
    /// `c_out` f32.
    pub(crate) alpha: Buffer,
    /// `c_out` f32 (zeros when the filter has no bias).
    pub(crate) bias: Buffer,
}

field_getters!(DeviceBinaryFilter {
    /// Output channels.
    c_out: usize,
    /// Kernel height.
    kh: usize,
    /// Kernel width.
    kw: usize,
    /// Input channels.
    c_in: usize,
    /// Words per tap.
    words: usize,
});

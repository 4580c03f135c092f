//! GGUF / ggml block codecs: Q4_0, Q8_0 and Q4_K into and out of slimgemm's weight formats,
//! mirroring ggml's reference quantizers and dequantizers bit for bit.

use super::*;

/// Bytes of one GGUF Q4_0 block (f16 `d` + 16 bytes of nibbles) holding 32 elements.
pub const GGUF_Q4_0_BLOCK_BYTES: usize = 18;

/// Elements per GGUF Q4_0 block.
pub const GGUF_Q4_0_BLOCK: usize = 32;

/// Bytes of one GGUF Q8_0 block (f16 `d` + 32 int8 codes) holding 32 elements.
pub const GGUF_Q8_0_BLOCK_BYTES: usize = 34;

/// Elements per GGUF Q8_0 block.
pub const GGUF_Q8_0_BLOCK: usize = 32;

/// Bytes of one GGUF Q4_K super-block (f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and
/// minimums, 128 bytes of nibbles) holding 256 elements.
pub const GGUF_Q4_K_BLOCK_BYTES: usize = 144;

/// Elements per GGUF Q4_K super-block (8 sub-blocks of 32).
pub const GGUF_Q4_K_BLOCK: usize = 256;

/// Encodes `n` rows of `k` floats as GGUF / ggml Q4_0 bytes, bit-exact to ggml's
/// `quantize_row_q4_0_ref`: per block of 32, `max` is the first value of largest magnitude
/// (sign kept), `d = max / -8`, `id = 1 / d` (0 if `d == 0`), `q = min(15, (int8)(x * id + 8.5))`
/// (truncation), and `d` is stored as f16. Decode with [`Int4Weights::from_gguf_q4_0`].
pub fn quantize_gguf_q4_0(x: &[f32], n: usize, k: usize) -> Result<Vec<u8>> {
    const OP: &str = "quantize_gguf_q4_0";
    check_group(OP, k, GGUF_Q4_0_BLOCK)?;
    let len = crate::formats::checked_elems(OP, "matrix", &[n, k])?;
    check_len(OP, "input", x.len(), len, "n*k")?;
    if let Some(p) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::format("GGUF Q4_0 input", format!("x[{}, {}] = {} is not finite", p / k, p % k, x[p])));
    }
    let mut out = Vec::with_capacity(len / GGUF_Q4_0_BLOCK * GGUF_Q4_0_BLOCK_BYTES);
    for blk in x.chunks_exact(GGUF_Q4_0_BLOCK) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in blk {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        for j in 0..16 {
            // `as i8` truncates toward zero like C's (int8_t) cast for the in-range values here.
            let lo = ((blk[j] * id + 8.5) as i8).min(15) as u8;
            let hi = ((blk[j + 16] * id + 8.5) as i8).min(15) as u8;
            out.push(lo | (hi << 4));
        }
    }
    Ok(out)
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and minimum of sub-block `j` (0..8) of a Q4_K
/// super-block's 12 packed bytes.
pub fn q4k_scale_min(j: usize, s: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even, through the float-add trick (exact
/// for `|x| <= 4194303`, and deterministic beyond, as in ggml's release builds).
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

fn check_finite_input(format: &'static str, x: &[f32], k: usize) -> Result<()> {
    if let Some(p) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(format, format!("x[{}, {}] = {} is not finite", p / k, p % k, x[p])));
    }
    Ok(())
}

/// Encodes `n` rows of `k` floats as GGUF / ggml Q8_0 bytes, bit-exact to ggml's
/// `quantize_row_q8_0_ref`: per block of 32, `amax = max |x|`, `d = amax / 127`,
/// `id = 1 / d` (0 if `d == 0`), `q = roundf(x * id)` (half away from zero), and `d` is stored
/// as f16. Decode with [`Int8Weights::from_gguf_q8_0`].
pub fn quantize_gguf_q8_0(x: &[f32], n: usize, k: usize) -> Result<Vec<u8>> {
    const OP: &str = "quantize_gguf_q8_0";
    check_group(OP, k, GGUF_Q8_0_BLOCK)?;
    let len = crate::formats::checked_elems(OP, "matrix", &[n, k])?;
    check_len(OP, "input", x.len(), len, "n*k")?;
    check_finite_input("GGUF Q8_0 input", x, k)?;
    let mut out = Vec::with_capacity(len / GGUF_Q8_0_BLOCK * GGUF_Q8_0_BLOCK_BYTES);
    for blk in x.chunks_exact(GGUF_Q8_0_BLOCK) {
        // ggml: amax = MAX(amax, fabsf(v)), i.e. `amax > |v| ? amax : |v|`.
        let amax = blk.iter().fold(0f32, |a, v| if a > v.abs() { a } else { v.abs() });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        // `as i8` saturates; the rounded values are within [-127, 127] here.
        out.extend(blk.iter().map(|&v| (v * id).round() as i8 as u8));
    }
    Ok(out)
}

/// ggml's `make_qkx2_quants` (the weighted min-max search of the K-quants), returning
/// `(scale, the_min)` with `the_min = -min >= 0` and filling `l` with the codes. Every float
/// operation is in ggml's order, in f32, without fused multiply-adds.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.iter_mut().for_each(|v| *v = 0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let li = nearest_int(iscale * (x[i] - min));
        l[i] = li.clamp(0, nmax) as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        let diff = if use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let li = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = li as u8;
            let w = weights[i];
            let lf = li as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let dd = sum_w * sum_l2 - sum_l * sum_l;
        if dd > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / dd;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / dd;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                let diff = if use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Encodes `n` rows of `k` floats (`k` a multiple of 256) as GGUF / ggml Q4_K bytes,
/// mirroring ggml's `quantize_row_q4_K_ref` operation for operation (f32, ggml's order, no
/// fused multiply-adds): per sub-block of 32, weights `av_x + |x|` with
/// `av_x = sqrt(sum x^2 / 32)` and ggml's `make_qkx2_quants` search (`nmax 15`, `rmin -1`,
/// `rdelta 0.1`, `nstep 20`, squared error); the eight scales and minimums are quantized to 6
/// bits against their maxima (`d = max_scale / 63`, `dmin = max_min / 63`, stored as f16),
/// and the codes are recomputed from the stored `d * sc` and `dmin * m`. Decode with
/// [`Int4Weights::from_gguf_q4_k`].
///
/// ggml built with `-ffp-contract=fast` on a machine with FMA may contract some of these
/// products into fused multiply-adds and so differ in the last bit of an intermediate; this
/// function follows the C source's unfused semantics.
pub fn quantize_gguf_q4_k(x: &[f32], n: usize, k: usize) -> Result<Vec<u8>> {
    const OP: &str = "quantize_gguf_q4_k";
    if k == 0 || k % GGUF_Q4_K_BLOCK != 0 {
        return Err(Error::shape(OP, format!("K = {k} is not a positive multiple of the Q4_K super-block size 256")));
    }
    let len = crate::formats::checked_elems(OP, "matrix", &[n, k])?;
    check_len(OP, "input", x.len(), len, "n*k")?;
    check_finite_input("GGUF Q4_K input", x, k)?;
    let mut out = Vec::with_capacity(len / GGUF_Q4_K_BLOCK * GGUF_Q4_K_BLOCK_BYTES);
    let mut l = [0u8; 256];
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    for xb in x.chunks_exact(GGUF_Q4_K_BLOCK) {
        let mut mins = [0f32; 8];
        let mut scales = [0f32; 8];
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for j in 0..8 {
            let xs = &xb[32 * j..32 * (j + 1)];
            let mut sum_x2 = 0f32;
            for &v in xs {
                sum_x2 += v * v;
            }
            let av_x = (sum_x2 / 32.0).sqrt();
            for (w, &v) in weights.iter_mut().zip(xs) {
                *w = av_x + v.abs();
            }
            let (sc, mn) = make_qkx2_quants(15, xs, &weights, &mut l[32 * j..32 * (j + 1)], &mut laux, -1.0, 0.1, 20, false);
            scales[j] = sc;
            mins[j] = mn;
            if sc > max_scale {
                max_scale = sc;
            }
            if mn > max_min {
                max_min = mn;
            }
        }
        let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
        let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
        let mut sm = [0u8; 12];
        for j in 0..8 {
            // C: `uint8_t ls = nearest_int(...)` wraps modulo 256, then MIN(63, ls).
            let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
            let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
            if j < 4 {
                sm[j] = ls;
                sm[j + 4] = lm;
            } else {
                sm[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                sm[j - 4] |= (ls >> 4) << 6;
                sm[j] |= (lm >> 4) << 6;
            }
        }
        let d16 = f16::from_f32(max_scale / 63.0);
        let dmin16 = f16::from_f32(max_min / 63.0);
        for j in 0..8 {
            let (sc, m) = q4k_scale_min(j, &sm);
            let d = d16.to_f32() * sc as f32;
            if d == 0.0 {
                continue;
            }
            let dm = dmin16.to_f32() * m as f32;
            for ii in 0..32 {
                l[32 * j + ii] = nearest_int((xb[32 * j + ii] + dm) / d).clamp(0, 15) as u8;
            }
        }
        out.extend_from_slice(&d16.to_le_bytes());
        out.extend_from_slice(&dmin16.to_le_bytes());
        out.extend_from_slice(&sm);
        for c in 0..4 {
            for t in 0..32 {
                out.push(l[64 * c + t] | (l[64 * c + t + 32] << 4));
            }
        }
    }
    Ok(out)
}

impl Int4Weights {
    /// Converts a GGUF / ggml Q4_0 tensor of `n` rows of `k` elements (GGUF `ne = [k, n]`):
    /// each row is `k / 32` blocks of 18 bytes, an f16 `d` (little-endian) then 16 bytes where
    /// byte `j` holds element `j` in its low nibble and element `j + 16` in its high nibble;
    /// `x = d * (q - 8)`. The result has group 32, scale `d` and zero point 8.
    pub fn from_gguf_q4_0(bytes: &[u8], n: usize, k: usize) -> Result<Int4Weights> {
        const OP: &str = "Int4Weights::from_gguf_q4_0";
        check_group(OP, k, GGUF_Q4_0_BLOCK)?;
        crate::formats::checked_elems(OP, "weight", &[n, k])?;
        let blocks = k / GGUF_Q4_0_BLOCK;
        let want = n * blocks * GGUF_Q4_0_BLOCK_BYTES;
        if bytes.len() != want {
            return Err(Error::shape(
                OP,
                format!("GGUF Q4_0 data has {} bytes, expected n * (k/32) blocks * 18 bytes = {n} * {blocks} * 18 = {want}", bytes.len()),
            ));
        }
        let kw = k / 8;
        let mut qweight = vec![0u32; n * kw];
        let mut scales = vec![0f32; n * blocks];
        for j in 0..n {
            for b in 0..blocks {
                let blk = &bytes[(j * blocks + b) * GGUF_Q4_0_BLOCK_BYTES..][..GGUF_Q4_0_BLOCK_BYTES];
                let d = f16::from_le_bytes([blk[0], blk[1]]);
                if !d.is_finite() {
                    return Err(Error::format("GGUF Q4_0", format!("block {b} of row {j} has scale d = {d} (must be finite)")));
                }
                scales[j * blocks + b] = d.to_f32();
                for (t, &byte) in blk[2..].iter().enumerate() {
                    for (kk, q) in [(b * 32 + t, byte & 0xF), (b * 32 + t + 16, byte >> 4)] {
                        qweight[j * kw + kk / 8] |= (q as u32) << (4 * (kk % 8));
                    }
                }
            }
        }
        Int4Weights::new(n, k, GGUF_Q4_0_BLOCK, qweight, scales, vec![8; n * blocks])
    }

    /// Converts a GGUF / ggml Q4_K tensor of `n` rows of `k` elements (GGUF `ne = [k, n]`,
    /// `k` a multiple of 256) into the float-minimum form with group 32.
    ///
    /// Each row is `k / 256` super-blocks of 144 bytes: f16 `d`, f16 `dmin`, 12 bytes packing
    /// eight 6-bit (scale, min) pairs (ggml's `get_scale_min_k4`: sub-block `j < 4` has
    /// `sc = s[j] & 63`, `m = s[j + 4] & 63`; `j >= 4` has
    /// `sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4)`, `m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)`),
    /// then 128 bytes of nibbles: for each 64-element chunk, 32 bytes whose low nibbles are
    /// the chunk's first sub-block and high nibbles its second. `x = (d * sc) * q - dmin * m`.
    /// The result's scale is `d * sc` and minimum `dmin * m`, each computed in f32 exactly as
    /// ggml's `dequantize_row_q4_K` does, so [`Int4Weights::dequantize`] is bit-exact to it.
    /// An infinite or NaN `d` or `dmin` is an error.
    pub fn from_gguf_q4_k(bytes: &[u8], n: usize, k: usize) -> Result<Int4Weights> {
        const OP: &str = "Int4Weights::from_gguf_q4_k";
        if k == 0 || k % GGUF_Q4_K_BLOCK != 0 {
            return Err(Error::shape(OP, format!("K = {k} is not a positive multiple of the Q4_K super-block size 256")));
        }
        let len = crate::formats::checked_elems(OP, "weight", &[n, k])?;
        let sblocks = len / GGUF_Q4_K_BLOCK;
        let want = sblocks * GGUF_Q4_K_BLOCK_BYTES;
        if bytes.len() != want {
            return Err(Error::shape(
                OP,
                format!(
                    "GGUF Q4_K data has {} bytes, expected n * (k/256) super-blocks * 144 bytes = {n} * {} * 144 = {want}",
                    bytes.len(),
                    k / 256
                ),
            ));
        }
        let mut qweight = vec![0u32; len / 8];
        let mut scales = Vec::with_capacity(len / 32);
        let mut mins = Vec::with_capacity(len / 32);
        // Super-blocks are consecutive along each row and rows are consecutive, so super-block
        // `b` covers the flat elements `256 b .. 256 (b + 1)` and words `32 b .. 32 (b + 1)`.
        for (b, blk) in bytes.chunks_exact(GGUF_Q4_K_BLOCK_BYTES).enumerate() {
            let d = f16::from_le_bytes([blk[0], blk[1]]);
            let dmin = f16::from_le_bytes([blk[2], blk[3]]);
            if !d.is_finite() || !dmin.is_finite() {
                let spr = k / GGUF_Q4_K_BLOCK;
                return Err(Error::format(
                    "GGUF Q4_K",
                    format!("super-block {} of row {} has d = {d}, dmin = {dmin} (both must be finite)", b % spr, b / spr),
                ));
            }
            let (d, dmin) = (d.to_f32(), dmin.to_f32());
            let sm: &[u8; 12] = blk[4..16].try_into().expect("12 bytes");
            for j in 0..8 {
                let (sc, m) = q4k_scale_min(j, sm);
                scales.push(d * sc as f32);
                mins.push(dmin * m as f32);
            }
            let qs = &blk[16..];
            let words = &mut qweight[b * 32..(b + 1) * 32];
            for e in 0..GGUF_Q4_K_BLOCK {
                let byte = qs[(e / 64) * 32 + e % 32];
                let q = if e % 64 < 32 { byte & 0xF } else { byte >> 4 };
                words[e / 8] |= (q as u32) << (4 * (e % 8));
            }
        }
        Int4Weights::with_mins(n, k, 32, qweight, scales, mins)
    }
}

impl Int8Weights {
    /// Converts a GGUF / ggml Q8_0 tensor of `n` rows of `k` elements (GGUF `ne = [k, n]`):
    /// each row is `k / 32` blocks of 34 bytes, an f16 `d` (little-endian) then 32 int8 codes;
    /// `x = q * d`. The result has group 32 and scale `d` (an infinite or NaN `d` is an error).
    pub fn from_gguf_q8_0(bytes: &[u8], n: usize, k: usize) -> Result<Int8Weights> {
        const OP: &str = "Int8Weights::from_gguf_q8_0";
        check_group(OP, k, GGUF_Q8_0_BLOCK)?;
        let len = crate::formats::checked_elems(OP, "weight", &[n, k])?;
        let blocks = len / GGUF_Q8_0_BLOCK;
        let want = blocks * GGUF_Q8_0_BLOCK_BYTES;
        if bytes.len() != want {
            return Err(Error::shape(
                OP,
                format!("GGUF Q8_0 data has {} bytes, expected n * (k/32) blocks * 34 bytes = {n} * {} * 34 = {want}", bytes.len(), k / 32),
            ));
        }
        let mut q = Vec::with_capacity(len);
        let mut scales = Vec::with_capacity(blocks);
        for (b, blk) in bytes.chunks_exact(GGUF_Q8_0_BLOCK_BYTES).enumerate() {
            let d = f16::from_le_bytes([blk[0], blk[1]]);
            if !d.is_finite() {
                return Err(Error::format(
                    "GGUF Q8_0",
                    format!("block {} of row {} has scale d = {d} (must be finite)", b % (k / 32), b / (k / 32)),
                ));
            }
            scales.push(d.to_f32());
            q.extend(blk[2..].iter().map(|&v| v as i8));
        }
        Int8Weights::new(n, k, GGUF_Q8_0_BLOCK, q, scales)
    }
}

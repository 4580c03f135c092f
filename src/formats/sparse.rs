//! Compressed sparse row matrices (scipy / torch layout) and their loaders.

use std::io::{BufRead, Read};
use std::path::Path;

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::formats::Matrix;

/// A CSR matrix: row `i` holds `indices[indptr[i]..indptr[i+1]]` with values `data[..]`.
/// Canonical: indices sorted within a row, no duplicates (checked by [`Csr::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Csr<T> {
    /// Number of rows (M).
    pub rows: usize,
    /// Number of columns (K).
    pub cols: usize,
    /// `rows + 1` row offsets, monotone, `indptr[rows] == nnz`.
    pub indptr: Vec<u32>,
    /// Column index of each stored value, `< cols`.
    pub indices: Vec<u32>,
    /// The stored values.
    pub data: Vec<T>,
}

impl<T: Float> Csr<T> {
    /// Builds a CSR matrix, checking every invariant: `indptr` has `rows + 1` entries, starts
    /// at 0, is monotone and ends at `nnz`; indices are `< cols`, sorted and unique per row;
    /// `data.len() == indices.len()`.
    pub fn new(rows: usize, cols: usize, indptr: Vec<u32>, indices: Vec<u32>, data: Vec<T>) -> Result<Self> {
        validate_pattern(rows, cols, &indptr, &indices)?;
        if data.len() != indices.len() {
            return Err(Error::format(
                "CSR",
                format!("data has {} values but indices has {} entries (nnz mismatch)", data.len(), indices.len()),
            ));
        }
        Ok(Csr { rows, cols, indptr, indices, data })
    }

    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Fraction of zeros, `1 - nnz / (rows * cols)`.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.nnz() as f64 / (self.rows as f64 * self.cols as f64)
    }

    /// Magnitude pruning: keeps the `round((1 - sparsity) * rows * cols)` entries of largest
    /// magnitude (ties broken by position: the earlier row-major entry wins; NaN counts as
    /// the largest magnitude), drops the rest.
    pub fn from_dense(m: &Matrix<T>, sparsity: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&sparsity) {
            return Err(Error::shape("Csr::from_dense", format!("sparsity {sparsity} must lie in [0, 1]")));
        }
        let total = check_matrix("Csr::from_dense", m)?;
        let keep = (((1.0 - sparsity) * total as f64).round() as usize).min(total);
        let mags: Vec<f32> = m.data.iter().map(|x| x.to_f32().abs()).collect();
        // Larger magnitude first, then smaller position: a total order, so the selected set
        // is exactly the `keep` first entries of the sorted order.
        let by_rank = |&a: &usize, &b: &usize| mags[b].total_cmp(&mags[a]).then(a.cmp(&b));
        let mut order: Vec<usize> = (0..total).collect();
        if keep < total {
            order.select_nth_unstable_by(keep, by_rank);
        }
        let mut mask = vec![false; total];
        for &i in &order[..keep] {
            mask[i] = true;
        }
        Self::from_mask(m, &mask)
    }

    /// Keeps the entries of `m` where `mask` is true.
    pub fn from_mask(m: &Matrix<T>, mask: &[bool]) -> Result<Self> {
        check_matrix("Csr::from_mask", m)?;
        if mask.len() != m.data.len() {
            return Err(Error::shape("Csr::from_mask", format!("mask has {} entries, matrix has {}", mask.len(), m.data.len())));
        }
        let mut indptr = Vec::with_capacity(m.rows + 1);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        indptr.push(0u32);
        for i in 0..m.rows {
            for j in 0..m.cols {
                if mask[i * m.cols + j] {
                    indices.push(j as u32);
                    data.push(m.data[i * m.cols + j]);
                }
            }
            indptr.push(u32::try_from(indices.len()).map_err(|_| Error::shape("Csr::from_mask", "more than 2^32 non-zeros"))?);
        }
        Csr::new(m.rows, m.cols, indptr, indices, data)
    }

    /// A random matrix with each entry kept with probability `density`, values uniform in
    /// [-1, 1) and never exactly zero; deterministic for a seed. Rows may be empty.
    pub fn random(rows: usize, cols: usize, density: f64, seed: u64) -> Result<Self> {
        use rand::{Rng, SeedableRng};
        crate::formats::checked_elems("Csr::random", "matrix", &[rows, cols])?;
        if !(0.0..=1.0).contains(&density) {
            return Err(Error::shape("Csr::random", format!("density {density} must lie in [0, 1]")));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut indptr = Vec::with_capacity(rows + 1);
        indptr.push(0u32);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for _ in 0..rows {
            for j in 0..cols {
                if rng.random_bool(density) {
                    indices.push(j as u32);
                    data.push(random_nonzero::<T>(&mut rng));
                }
            }
            // rows * cols <= MAX_ELEMENTS < u32::MAX (checked above).
            indptr.push(indices.len() as u32);
        }
        Csr::new(rows, cols, indptr, indices, data)
    }

    /// The dense matrix with zeros where nothing is stored.
    pub fn to_dense(&self) -> Matrix<T> {
        let mut data = vec![T::default(); self.rows * self.cols];
        for i in 0..self.rows {
            for p in self.indptr[i] as usize..self.indptr[i + 1] as usize {
                data[i * self.cols + self.indices[p] as usize] = self.data[p];
            }
        }
        Matrix { rows: self.rows, cols: self.cols, data }
    }

    /// The same pattern with values converted to another float type.
    pub fn cast<U: Float>(&self) -> Csr<U> {
        Csr {
            rows: self.rows,
            cols: self.cols,
            indptr: self.indptr.clone(),
            indices: self.indices.clone(),
            data: self.data.iter().map(|x| U::from_f32(x.to_f32())).collect(),
        }
    }
}

/// Checks that a host matrix's data length matches its shape; returns the element count.
fn check_matrix<T>(op: &'static str, m: &Matrix<T>) -> Result<usize> {
    let total = crate::formats::checked_elems(op, "matrix", &[m.rows, m.cols])?;
    if m.data.len() != total {
        return Err(Error::shape(
            op,
            format!("matrix data has {} elements, expected rows*cols = {}*{} = {total}", m.data.len(), m.rows, m.cols),
        ));
    }
    Ok(total)
}

/// Checks the CSR pattern invariants (see [`Csr::new`]).
pub fn validate_pattern(rows: usize, cols: usize, indptr: &[u32], indices: &[u32]) -> Result<()> {
    crate::formats::checked_elems("CSR", "matrix", &[rows, cols])?;
    if cols > u32::MAX as usize || rows > u32::MAX as usize {
        return Err(Error::format("CSR", format!("{rows}x{cols} exceeds u32 index range")));
    }
    if indptr.len() != rows + 1 {
        return Err(Error::format("CSR", format!("indptr has {} entries, expected rows + 1 = {}", indptr.len(), rows + 1)));
    }
    if indptr[0] != 0 {
        return Err(Error::format("CSR", format!("indptr[0] is {}, expected 0", indptr[0])));
    }
    if indptr[rows] as usize != indices.len() {
        return Err(Error::format(
            "CSR",
            format!("indptr[rows] = {} but there are {} indices (nnz mismatch)", indptr[rows], indices.len()),
        ));
    }
    // Monotonicity first (with indptr[rows] == nnz it bounds every row slice below).
    for i in 0..rows {
        let (s, e) = (indptr[i], indptr[i + 1]);
        if e < s {
            return Err(Error::format("CSR", format!("indptr is not monotone: indptr[{i}] = {s} > indptr[{}] = {e}", i + 1)));
        }
    }
    for i in 0..rows {
        let (s, e) = (indptr[i], indptr[i + 1]);
        let row = &indices[s as usize..e as usize];
        for (p, &j) in row.iter().enumerate() {
            if j as usize >= cols {
                return Err(Error::format("CSR", format!("row {i}: column index {j} out of range, expected < cols = {cols}")));
            }
            if p > 0 && row[p - 1] >= j {
                return Err(Error::format(
                    "CSR",
                    format!("row {i}: column indices not sorted and unique ({} then {j}), expected strictly increasing", row[p - 1]),
                ));
            }
        }
    }
    Ok(())
}

/// The sparsity pattern of a DLMC `.smtx` file (no values: DLMC stores none).
///
/// The layout, checked on every file of the DLMC ResNet-50 subset:
/// line 1 `nrows, ncols, nnz` (comma-separated); line 2 the `nrows + 1` row offsets
/// (space-separated, CSR `indptr`); line 3 the `nnz` column indices (space-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtxPattern {
    /// Number of rows (M).
    pub rows: usize,
    /// Number of columns (K).
    pub cols: usize,
    /// `rows + 1` row offsets, starting at 0, monotone, ending at `nnz`.
    pub indptr: Vec<u32>,
    /// `nnz` column indices, sorted and unique within each row, each `< cols`.
    pub indices: Vec<u32>,
}

impl SmtxPattern {
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// A CSR matrix with this pattern and random values, uniform in [-1, 1) and never zero
    /// (also after rounding to `T`), deterministic for a seed.
    pub fn with_random_values<T: Float>(&self, seed: u64) -> Result<Csr<T>> {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let data = (0..self.nnz()).map(|_| random_nonzero::<T>(&mut rng)).collect();
        Csr::new(self.rows, self.cols, self.indptr.clone(), self.indices.clone(), data)
    }
}

/// A value uniform in [-1, 1) that is non-zero in `T` (values that round to zero are drawn
/// again; after a few tries 0.5 is used, which keeps the stream deterministic).
fn random_nonzero<T: Float>(rng: &mut impl rand::Rng) -> T {
    for _ in 0..8 {
        let v = T::from_f32(rng.random_range(-1.0f32..1.0));
        if v.to_f32() != 0.0 {
            return v;
        }
    }
    T::from_f32(0.5)
}

/// Largest number of elements reserved up front from a header count: anything beyond grows
/// with the data actually read, so a lying header cannot make us allocate absurd sizes.
const RESERVE_CAP: usize = 1 << 20;

/// Longest accepted header line in bytes.
const MAX_HEADER_BYTES: u64 = 4096;

impl<T: Float> Csr<T> {
    /// Loads a DLMC `.smtx` file, plain or gzip-compressed (`.smtx.gz`; detected by the gzip
    /// magic bytes, whatever the extension), and fills its pattern with random non-zero values
    /// uniform in [-1, 1), deterministic for `seed`. Malformed files give [`Error::Parse`]
    /// naming the file and line; see [`parse_smtx`].
    pub fn load_smtx(path: impl AsRef<Path>, seed: u64) -> Result<Csr<T>> {
        load_smtx_pattern(path)?.with_random_values(seed)
    }
}

/// Reads the pattern of a DLMC `.smtx` or `.smtx.gz` file (gzip detected by its magic bytes).
pub fn load_smtx_pattern(path: impl AsRef<Path>) -> Result<SmtxPattern> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::parse(name.clone(), format!("cannot open: {e}")))?;
    let mut reader = std::io::BufReader::new(file);
    let gz = {
        let head = reader.fill_buf().map_err(|e| Error::parse(name.clone(), format!("cannot read: {e}")))?;
        head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
    };
    if gz {
        parse_smtx(std::io::BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)), &name)
    } else {
        parse_smtx(reader, &name)
    }
}

/// Parses the DLMC `.smtx` text layout from `reader`; `name` (a file name or description)
/// goes into error messages.
///
/// Checks: the header has exactly three non-negative integers `nrows, ncols, nnz` with
/// `nrows, ncols >= 1`, both within `u32`, `nrows * ncols` within
/// [`crate::formats::MAX_ELEMENTS`] and `nnz <= nrows * ncols`; line 2 has exactly
/// `nrows + 1` offsets starting at 0, monotone, ending at `nnz`; line 3 has exactly `nnz`
/// indices, each `< ncols`, strictly increasing within a row; nothing but whitespace follows.
/// Every violation is an [`Error::Parse`] saying the line and what was expected. Memory is
/// reserved by the data actually read, never by the header's counts alone.
pub fn parse_smtx(reader: impl BufRead, name: &str) -> Result<SmtxPattern> {
    let mut tok = Tokens { reader, name, line: 1 };
    let (rows, cols, nnz) = parse_header(&mut tok)?;

    // Line 2: row offsets.
    tok.line = 2;
    let mut indptr: Vec<u32> = Vec::with_capacity((rows + 1).min(RESERVE_CAP));
    if !tok.start_line()? {
        return Err(tok.err(format!("missing line 2 (expected nrows + 1 = {} row offsets); the file is truncated", rows + 1)));
    }
    while let Some(v) = tok.next_u64()? {
        let k = indptr.len();
        if k == rows + 1 {
            return Err(tok.err(format!("more than nrows + 1 = {} row offsets", rows + 1)));
        }
        let prev = indptr.last().copied().unwrap_or(0) as u64;
        if k == 0 && v != 0 {
            return Err(tok.err(format!("first row offset is {v}, expected 0")));
        }
        if v < prev {
            return Err(tok.err(format!("row offsets not monotone: offset {k} is {v} < offset {} = {prev}", k - 1)));
        }
        if v > nnz as u64 {
            return Err(tok.err(format!("row offset {k} is {v}, larger than nnz = {nnz} from line 1")));
        }
        indptr.push(v as u32);
    }
    if indptr.len() != rows + 1 {
        return Err(tok.err(format!("found {} row offsets, expected nrows + 1 = {}", indptr.len(), rows + 1)));
    }
    if indptr[rows] as usize != nnz {
        return Err(tok.err(format!("last row offset is {}, expected nnz = {nnz} from line 1 (nnz mismatch)", indptr[rows])));
    }

    // Line 3: column indices, checked row by row.
    tok.line = 3;
    let mut indices: Vec<u32> = Vec::with_capacity(nnz.min(RESERVE_CAP));
    let has_line3 = tok.start_line()?;
    if !has_line3 && nnz > 0 {
        return Err(tok.err(format!("missing line 3 (expected nnz = {nnz} column indices); the file is truncated")));
    }
    if has_line3 {
        let mut row = 0usize;
        while let Some(j) = tok.next_u64()? {
            let p = indices.len();
            if p == nnz {
                return Err(tok.err(format!("more than nnz = {nnz} column indices")));
            }
            while indptr[row + 1] as usize <= p {
                row += 1;
            }
            if j >= cols as u64 {
                return Err(tok.err(format!("column index {j} (entry {p}, row {row}) out of range, expected < ncols = {cols}")));
            }
            if p > indptr[row] as usize && indices[p - 1] as u64 >= j {
                return Err(tok.err(format!(
                    "row {row}: column indices not strictly increasing ({} then {j}); expected sorted, no duplicates",
                    indices[p - 1]
                )));
            }
            indices.push(j as u32);
        }
    }
    if indices.len() != nnz {
        return Err(
            tok.err(format!("found {} column indices, expected nnz = {nnz} (the file is truncated or nnz is wrong)", indices.len()))
        );
    }

    // Only whitespace may follow.
    tok.line = 4;
    while tok.start_line()? {
        if let Some(v) = tok.next_u64()? {
            return Err(tok.err(format!("unexpected data ({v}) after line 3; expected end of file")));
        }
        tok.line += 1;
    }
    Ok(SmtxPattern { rows, cols, indptr, indices })
}

fn parse_header(tok: &mut Tokens<'_, impl BufRead>) -> Result<(usize, usize, usize)> {
    let mut raw = Vec::new();
    let read = (&mut tok.reader).take(MAX_HEADER_BYTES).read_until(b'\n', &mut raw);
    read.map_err(|e| tok.io(e))?;
    if raw.is_empty() {
        return Err(tok.err("empty file; expected header `nrows, ncols, nnz`"));
    }
    if raw.last() != Some(&b'\n') && raw.len() as u64 == MAX_HEADER_BYTES {
        return Err(tok.err(format!("header longer than {MAX_HEADER_BYTES} bytes; expected `nrows, ncols, nnz`")));
    }
    let text = String::from_utf8_lossy(&raw);
    let fields: Vec<&str> = text.trim().split(',').map(str::trim).collect();
    if fields.len() != 3 {
        return Err(tok.err(format!(
            "header `{}` has {} comma-separated fields, expected 3 (`nrows, ncols, nnz`)",
            text.trim(),
            fields.len()
        )));
    }
    let mut vals = [0u64; 3];
    for (k, (f, what)) in fields.iter().zip(["nrows", "ncols", "nnz"]).enumerate() {
        vals[k] = f.parse::<u64>().map_err(|_| tok.err(format!("{what} = `{f}` is not a non-negative integer")))?;
    }
    let [rows, cols, nnz] = vals;
    for (v, what) in [(rows, "nrows"), (cols, "ncols")] {
        if v == 0 || v > u32::MAX as u64 {
            return Err(tok.err(format!("{what} = {v}, expected 1..={}", u32::MAX)));
        }
    }
    let total = rows
        .checked_mul(cols)
        .filter(|&t| t <= crate::formats::MAX_ELEMENTS as u64)
        .ok_or_else(|| tok.err(format!("matrix {rows}x{cols} is too large (at most {} elements)", crate::formats::MAX_ELEMENTS)))?;
    if nnz > total {
        return Err(tok.err(format!("nnz = {nnz} exceeds nrows * ncols = {total}")));
    }
    Ok((rows as usize, cols as usize, nnz as usize))
}

/// A streaming tokenizer of whitespace-separated non-negative integers, one line at a time,
/// reading bytes straight from the reader (no line is ever held in memory).
struct Tokens<'n, R> {
    reader: R,
    name: &'n str,
    line: usize,
}

impl<R: BufRead> Tokens<'_, R> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::parse(self.name, format!("line {}: {msg}", self.line))
    }

    fn io(&self, e: std::io::Error) -> Error {
        // A corrupt gzip stream reads as InvalidInput / InvalidData.
        self.err(format!("read error ({e})"))
    }

    /// The buffered bytes (empty at end of stream).
    fn fill(&mut self) -> Result<&[u8]> {
        let (name, line) = (self.name, self.line);
        loop {
            match self.reader.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::parse(name, format!("line {line}: read error ({e})"))),
            }
        }
        // Cannot fail: the loop above saw a successful fill and nothing was consumed since.
        self.reader.fill_buf().map_err(|e| Error::parse(name, format!("line {line}: read error ({e})")))
    }

    /// True if the stream has more bytes (the current line exists).
    fn start_line(&mut self) -> Result<bool> {
        Ok(!self.fill()?.is_empty())
    }

    /// The next integer of the current line, or `None` at its end (consuming the newline).
    fn next_u64(&mut self) -> Result<Option<u64>> {
        // Skip blanks; a newline or the end of the stream ends the line.
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let skip = buf.iter().take_while(|&&c| matches!(c, b' ' | b'\t' | b'\r')).count();
            if skip < buf.len() && buf[skip] == b'\n' {
                self.reader.consume(skip + 1);
                return Ok(None);
            }
            let found = skip < buf.len();
            self.reader.consume(skip);
            if found {
                break;
            }
        }
        // The token: digits up to the next blank, newline or end of stream.
        let mut v: u64 = 0;
        let mut text = String::new();
        let mut bad = false;
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                break;
            }
            let len = buf.iter().take_while(|&&c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n')).count();
            for &c in &buf[..len] {
                if text.len() < 24 {
                    text.push(c as char);
                }
                match c {
                    b'0'..=b'9' if !bad => match v.checked_mul(10).and_then(|v| v.checked_add((c - b'0') as u64)) {
                        Some(n) if n <= u32::MAX as u64 => v = n,
                        _ => bad = true,
                    },
                    _ => bad = true,
                }
            }
            let ended = len < buf.len();
            self.reader.consume(len);
            if ended {
                break;
            }
        }
        if bad {
            let digits = text.bytes().all(|c| c.is_ascii_digit());
            return Err(if digits {
                self.err(format!("number `{text}` exceeds u32 range"))
            } else {
                self.err(format!("`{text}` is not a non-negative integer"))
            });
        }
        Ok(Some(v))
    }
}

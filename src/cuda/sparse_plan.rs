//! Which CSR SpMM kernel `spmm` / `spmm_t` launch (`spmm_tiled_*` of cuda/spmm.cu or the
//! simple `spmm_*` of cuda/sparse.cu): a pure function of N and the operands' alignment,
//! unit-tested here together with a host emulation of the tiled kernel's tile arithmetic
//! (reverse-offset alignment, masking, the element-wise last vector). The u16 index copy it
//! reads is packed at upload (`ops::sparse::pack_u16`).

/// Threads per block of the sparse kernels (`__launch_bounds__(128)`; `SPMM_TILED_BLOCK` of
/// cuda/spmm.cu).
pub(crate) const BLOCK: usize = 128;

/// Entries of a row that one lane of `spmm_tiled` stages with one vector load.
pub(crate) const TILE_VEC: usize = 4;

/// Sub-warp width for `units` work items per row: the next power of two, within 8..=32.
pub(crate) fn subwarp(units: usize) -> usize {
    units.next_power_of_two().clamp(8, 32)
}

/// What the selection looks at: N and which operands allow vector loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpmmFacts {
    /// Columns of B and C.
    pub n: usize,
    /// B is aligned to 4 elements (16 bytes f32, 8 bytes f16).
    pub b_aligned: bool,
    /// A's values (CSR or CSC order) are aligned to 4 elements.
    pub values_aligned: bool,
    /// The u32 indices are 16-byte aligned.
    pub idx32_aligned: bool,
    /// A u16 copy of the indices exists (at most 65536 rows of B) and is 8-byte aligned.
    pub idx16: bool,
    /// `SLIMGEMM_KERNEL=simple`.
    pub simple: bool,
}

/// The chosen kernel and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpmmPlan {
    /// `spmm_tiled_*` (Sputnik-style) rather than the simple `spmm_*`.
    pub tiled: bool,
    /// Output columns per lane: 4 (vector loads of B) or 1.
    pub v: usize,
    /// Lanes per output row: 8, 16 or 32.
    pub sw: usize,
    /// The tiled kernel reads the u16 copy of the indices.
    pub idx16: bool,
}

/// The selection. V = 4 when N % 4 == 0 and B is aligned (else 1: N = 1, odd N, N % 4 != 0,
/// misaligned B); the sub-warp covers N / V columns (8..=32 lanes). The tiled kernel whenever
/// its 4-entry vector loads of A are legal (values aligned and one aligned index array, u16
/// preferred: half the index bytes), unless `SLIMGEMM_KERNEL=simple`.
pub(crate) fn spmm_plan(f: SpmmFacts) -> SpmmPlan {
    let v = if f.n % 4 == 0 && f.b_aligned { 4 } else { 1 };
    let sw = subwarp(f.n.div_ceil(v));
    let tiled = !f.simple && f.values_aligned && (f.idx16 || f.idx32_aligned);
    SpmmPlan { tiled, v, sw, idx16: tiled && f.idx16 }
}

impl SpmmPlan {
    /// The kernel's module (NVRTC source): `spmm` (cuda/spmm.cu) or `sparse` (cuda/sparse.cu).
    pub(crate) fn module(&self) -> &'static str {
        if self.tiled {
            "spmm"
        } else {
            "sparse"
        }
    }

    /// The kernel's name in its module for dtype suffix `t` (`f32`, `f16`).
    pub(crate) fn name(&self, t: &str) -> String {
        let (v, sw) = (self.v, self.sw);
        if self.tiled {
            format!("spmm_tiled_{t}_{}_v{v}_w{sw}", if self.idx16 { "i16" } else { "i32" })
        } else {
            format!("spmm_{t}_v{v}_w{sw}")
        }
    }

    /// Grid of `out_rows` output rows of `n` columns: x over sub-warps (BLOCK / SW rows per
    /// block), y over column slabs of SW * V.
    pub(crate) fn grid(&self, out_rows: usize, n: usize) -> (usize, usize, usize) {
        (out_rows.div_ceil(BLOCK / self.sw), n.div_ceil(self.sw * self.v), 1)
    }

    /// Entries per tile of the tiled kernel (one vector per lane).
    pub(crate) fn tile(&self) -> usize {
        TILE_VEC * self.sw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(n: usize) -> SpmmFacts {
        SpmmFacts { n, b_aligned: true, values_aligned: true, idx32_aligned: true, idx16: true, simple: false }
    }

    #[test]
    fn vector_width_and_subwarp_follow_n() {
        for (n, v, sw) in [(1, 1, 8), (3, 1, 8), (4, 4, 8), (6, 1, 8), (7, 1, 8), (33, 1, 32), (64, 4, 16), (68, 4, 32), (196, 4, 32)] {
            let p = spmm_plan(facts(n));
            assert_eq!((p.tiled, p.v, p.sw, p.idx16), (true, v, sw, true), "N = {n}");
        }
        // Misaligned B: V = 1 even with N % 4 == 0.
        let p = spmm_plan(SpmmFacts { b_aligned: false, ..facts(64) });
        assert_eq!((p.v, p.sw), (1, 32));
    }

    #[test]
    fn index_width_and_fallbacks() {
        let p = spmm_plan(SpmmFacts { idx16: false, ..facts(8) });
        assert!(p.tiled && !p.idx16);
        assert_eq!((p.module(), p.name("f32").as_str()), ("spmm", "spmm_tiled_f32_i32_v4_w8"));
        assert_eq!(spmm_plan(facts(8)).name("f16"), "spmm_tiled_f16_i16_v4_w8");
        // Simple kernel: forced, misaligned values, or no aligned index array.
        for f in [
            SpmmFacts { simple: true, ..facts(8) },
            SpmmFacts { values_aligned: false, ..facts(8) },
            SpmmFacts { idx16: false, idx32_aligned: false, ..facts(8) },
        ] {
            let p = spmm_plan(f);
            assert!(!p.tiled && !p.idx16, "{f:?}");
            assert_eq!((p.module(), p.name("f32").as_str()), ("sparse", "spmm_f32_v4_w8"));
        }
        // u32 misaligned but a u16 copy: still tiled, on u16.
        let p = spmm_plan(SpmmFacts { idx32_aligned: false, ..facts(5) });
        assert_eq!(p.name("f16"), "spmm_tiled_f16_i16_v1_w8");
        assert_eq!(p.grid(100, 5), (7, 1, 1));
        assert_eq!(spmm_plan(facts(196)).grid(256, 196), (64, 2, 1));
    }

    /// The tiled kernel's arithmetic for one row [start, end) of a matrix of nnz entries, as
    /// cuda/spmm.cu `spmm_tiled_body` / `spmm_fetch4` do it: each lane's prefetch registers
    /// (the entry ids they hold; `None` for the zeros of an element-wise load past `end`), the
    /// sub-warp's stage (lane l writes slots [4 l, 4 l + 4) every tile) and the U-entry steps
    /// with their `ok` predicate. Returns every global read of A (entry, vector?) and the
    /// staged entries that reach an FMA, in order.
    fn emulate_row(start: usize, end: usize, nnz: usize, sw: usize, u: usize) -> (Vec<(usize, bool)>, Vec<Option<usize>>) {
        let tk = TILE_VEC * sw;
        let mut reads = Vec::new();
        let mut used = Vec::new();
        let base = start & !3;
        let last = if start < end { end } else { base };
        // spmm_fetch4: lane registers for entries [p, p + 4).
        let fetch = |p: usize, regs: &mut [Option<usize>; 4], reads: &mut Vec<(usize, bool)>| {
            if p + 4 <= nnz {
                reads.push((p, true));
                *regs = [Some(p), Some(p + 1), Some(p + 2), Some(p + 3)];
            } else {
                for (e, r) in regs.iter_mut().enumerate() {
                    *r = if p + e < end { Some(p + e) } else { None };
                    if p + e < end {
                        reads.push((p + e, false));
                    }
                }
            }
        };
        let mut regs = vec![[None; 4]; sw];
        for (lane, r) in regs.iter_mut().enumerate() {
            if base + 4 * lane < last {
                fetch(base + 4 * lane, r, &mut reads);
            }
        }
        let mut stage = vec![None; tk];
        let mut t0 = base;
        while t0 < last {
            for (lane, r) in regs.iter_mut().enumerate() {
                stage[4 * lane..4 * lane + 4].copy_from_slice(r);
                let pn = t0 + tk + 4 * lane;
                if pn < end {
                    fetch(pn, r, &mut reads);
                }
            }
            let lo = start.saturating_sub(t0);
            let hi = (end - t0).min(tk);
            let mut j0 = lo & !(u - 1);
            while j0 < hi {
                assert!(j0 + u <= tk, "step reads past the stage");
                used.extend((j0..j0 + u).filter(|j| (lo..hi).contains(j)).map(|j| stage[j]));
                j0 += u;
            }
            t0 += tk;
        }
        (reads, used)
    }

    #[test]
    fn tiled_rows_use_each_entry_once_and_read_in_bounds() {
        for sw in [8, 16, 32] {
            for u in [8, 16] {
                for nnz in [1usize, 2, 3, 4, 5, 31, 64, 130, 259] {
                    for start in 0..nnz.min(40) {
                        for end in (start..=nnz).filter(|e| *e < start + 3 || *e + 3 > nnz || e % 7 == 0) {
                            let (reads, used) = emulate_row(start, end, nnz, sw, u);
                            assert_eq!(used, (start..end).map(Some).collect::<Vec<_>>(), "sw {sw} u {u} nnz {nnz} row [{start}, {end})");
                            for &(p, vector) in &reads {
                                if vector {
                                    assert!(p % 4 == 0 && p + 4 <= nnz, "vector at {p} of {nnz}");
                                } else {
                                    assert!(p < end, "element {p} of row [{start}, {end})");
                                }
                            }
                            // Every entry of the row is read (the staging covers it).
                            for q in start..end {
                                assert!(reads.iter().any(|&(p, v)| if v { (p..p + 4).contains(&q) } else { p == q }), "entry {q} not read");
                            }
                        }
                    }
                }
            }
        }
    }
}

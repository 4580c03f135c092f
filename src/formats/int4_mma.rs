//! The tensor-core ("Marlin-class") device layout of [`Int4Weights`]: the packed 4-bit codes
//! re-laid out once at upload into the per-thread fragment order of `mma.sync m16n8k16` (B
//! operand, f16), so that a warp loads one 512-byte block per 16 x 64 piece of the weight with
//! one 16-byte load per lane and dequantizes in registers with no shuffles. It is an internal
//! detail of the CUDA backend (sm_80+): [`crate::Device::download_int4`] gives back the user's
//! layout ([`from_mma`] is the exact inverse of [`to_mma`]).
//!
//! # Layout
//!
//! `W [n, k]` (n output channels, k input features, row-major codes `q(j, c)` of
//! [`Int4Weights::q`]) is cut into column blocks of [`MMA_N`] = 64 output channels (n padded
//! with zero codes to `n_pad`, a multiple of 64) and steps of 16 input features. Block `nb`,
//! step `s` is 32 lanes x 4 words (512 bytes) at word `((nb * (k / 16) + s) * 32 + lane) * 4 +
//! w`. Lane `l` has `g = l / 4`, `t = l % 4` (the `groupID` / `threadID_in_group` of the PTX
//! fragment tables); its word `w` holds the codes of the two n8 tiles `2w` and `2w + 1` of the
//! block, column `g` of each, rows `2t, 2t + 1, 2t + 8, 2t + 9` of the step: nibble `i` (bits
//! `4i..4i+3`) is column `nb * 64 + 8 * (2w + ((i >> 1) & 1)) + g`, input feature
//! `16 s + 2t + (i >> 2) + 8 (i & 1)` ([`nibble_coords`]). So `word & 0x000F000F` are the two
//! codes of register `b0` of tile `2w` (rows `2t`, `2t + 1`: the low and high f16 of the
//! register), `word & 0x00F000F0` those of `b1` (rows `2t + 8`, `2t + 9`), and `word >> 8` the
//! same for tile `2w + 1`: OR-ed into the f16 `0x6400` (1024) they give `1024 + q` and
//! `1024 + 16 q` exactly (Marlin's LOP3 dequantization).
//!
//! Scales and zero points of the kernel: `sz[(gi * (n_pad / 64) + nb) * 64 + 8 g + tile]` (u32)
//! for group `gi` holds, for column `nb * 64 + 8 tile + g`, the scale as f16 in the low 16 bits
//! and the zero point (0..=15) in the high 16 bits (padded columns: 0). A lane reads its 8
//! columns' values of a group as 32 consecutive bytes. The f32 scales and the zero points of the
//! user's layout are uploaded too (the f32 kernels use them and `download_int4` returns them).

use half::f16;

use super::Int4Weights;

/// Output channels per column block of the layout.
pub const MMA_N: usize = 64;
/// Input features per step of the layout.
pub const MMA_K: usize = 16;

/// Largest scale magnitude the layout takes: `15 * scale` (the largest dequantized weight)
/// must stay a finite f16.
pub const MAX_SCALE: f32 = 4096.0;
/// Smallest non-zero scale magnitude (the smallest normal f16): below it the f16 scale of the
/// tensor-core kernel would lose relative precision.
pub const MIN_SCALE: f32 = 6.103_515_6e-5;

/// The tensor-core layout of one weight (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Int4MmaLayout {
    /// Output channels padded to a multiple of [`MMA_N`].
    pub n_pad: usize,
    /// `n_pad * k / 8` words in fragment order.
    pub qweight: Vec<u32>,
    /// `(k / group) * n_pad` words: f16 scale | zero point << 16, in lane order.
    pub sz: Vec<u32>,
}

/// True if `w` can take the tensor-core layout: integer zero points (no float minimums), no
/// act-order permutation, `k` a multiple of 16 (always: `group | k`), and every scale zero or
/// of magnitude in [`MIN_SCALE`, `MAX_SCALE`] (finite as f16, with 15 x scale finite).
pub fn eligible(w: &Int4Weights) -> bool {
    w.mins.is_none()
        && w.perm.is_none()
        && w.k % MMA_K == 0
        && w.scales.iter().all(|&s| s == 0.0 || (s.is_finite() && (MIN_SCALE..=MAX_SCALE).contains(&s.abs())))
}

/// Column and input feature of nibble `i` of word `w` of lane `lane` in block `nb`, step `s`:
/// `(column, feature)` (column may be a padding column `>= n`).
pub fn nibble_coords(nb: usize, s: usize, lane: usize, w: usize, i: usize) -> (usize, usize) {
    let (g, t) = (lane / 4, lane % 4);
    let tile = 2 * w + ((i >> 1) & 1);
    (nb * MMA_N + 8 * tile + g, MMA_K * s + 2 * t + (i >> 2) + 8 * (i & 1))
}

/// Index of word `w` of lane `lane` in block `nb`, step `s` of a layout with `k` features.
pub fn word_index(k: usize, nb: usize, s: usize, lane: usize, w: usize) -> usize {
    ((nb * (k / MMA_K) + s) * 32 + lane) * 4 + w
}

/// Re-lays out `w` (which must be [`eligible`]; the codes are taken as stored, so the
/// permutation, if any, is the caller's concern).
pub fn to_mma(w: &Int4Weights) -> Int4MmaLayout {
    let (n, k) = (w.n, w.k);
    let n_pad = n.div_ceil(MMA_N) * MMA_N;
    let mut q = vec![0u32; n_pad * k / 8];
    for nb in 0..n_pad / MMA_N {
        for s in 0..k / MMA_K {
            for lane in 0..32 {
                for wi in 0..4 {
                    let mut word = 0u32;
                    for i in 0..8 {
                        let (col, c) = nibble_coords(nb, s, lane, wi, i);
                        if col < n {
                            word |= w.q(col, c) << (4 * i);
                        }
                    }
                    q[word_index(k, nb, s, lane, wi)] = word;
                }
            }
        }
    }
    let groups = k / w.group;
    let nblocks = n_pad / MMA_N;
    let mut sz = vec![0u32; groups * n_pad];
    for gi in 0..groups {
        for nb in 0..nblocks {
            for g in 0..8 {
                for tile in 0..8 {
                    let col = nb * MMA_N + 8 * tile + g;
                    if col < n {
                        let s = f16::from_f32(w.scales[col * groups + gi]).to_bits() as u32;
                        let z = w.zeros[col * groups + gi] as u32;
                        sz[(gi * nblocks + nb) * 64 + 8 * g + tile] = s | (z << 16);
                    }
                }
            }
        }
    }
    Int4MmaLayout { n_pad, qweight: q, sz }
}

/// The user's packed codes (`[n, k / 8]` words, element `c` of row `j` at bits `4 (c % 8)` of
/// word `j * k / 8 + c / 8`) from the fragment-ordered words of an `n x k` weight.
pub fn from_mma(n: usize, k: usize, q: &[u32]) -> Vec<u32> {
    let n_pad = n.div_ceil(MMA_N) * MMA_N;
    assert_eq!(q.len(), n_pad * k / 8, "fragment-ordered words of an {n} x {k} weight");
    let mut out = vec![0u32; n * k / 8];
    for nb in 0..n_pad / MMA_N {
        for s in 0..k / MMA_K {
            for lane in 0..32 {
                for wi in 0..4 {
                    let word = q[word_index(k, nb, s, lane, wi)];
                    for i in 0..8 {
                        let (col, c) = nibble_coords(nb, s, lane, wi, i);
                        if col < n {
                            out[col * (k / 8) + c / 8] |= ((word >> (4 * i)) & 0xF) << (4 * (c % 8));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, k: usize, group: usize, seed: u64) -> Int4Weights {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let qweight = (0..n * k / 8).map(|_| rng.random::<u32>()).collect();
        let groups = k / group;
        let scales = (0..n * groups).map(|_| rng.random_range(0.001f32..0.1)).collect();
        let zeros = (0..n * groups).map(|_| rng.random_range(0u8..16)).collect();
        Int4Weights::new(n, k, group, qweight, scales, zeros).unwrap()
    }

    #[test]
    fn every_code_has_one_place() {
        // The map (nb, s, lane, w, i) -> (column, feature) is a bijection onto the padded
        // weight: every (column < n_pad, feature < k) exactly once.
        let (n_pad, k) = (128, 64);
        let mut seen = vec![0u8; n_pad * k];
        for nb in 0..n_pad / MMA_N {
            for s in 0..k / MMA_K {
                for lane in 0..32 {
                    for w in 0..4 {
                        for i in 0..8 {
                            let (col, c) = nibble_coords(nb, s, lane, w, i);
                            assert!(col < n_pad && c < k);
                            seen[col * k + c] += 1;
                        }
                    }
                }
            }
        }
        assert!(seen.iter().all(|&v| v == 1));
    }

    #[test]
    fn fragment_registers_match_the_ptx_tables() {
        // mma.sync m16n8k16 B fragment (PTX ISA): b0 holds rows 2t, 2t + 1 of column g, b1 rows
        // 2t + 8, 2t + 9 (low half first). Word w: nibbles (0, 4) = b0 and (1, 5) = b1 of tile
        // 2w; (2, 6) and (3, 7) those of tile 2w + 1.
        for lane in 0..32 {
            let (g, t) = (lane / 4, lane % 4);
            for w in 0..4 {
                for (tile, lo_hi) in [(2 * w, [(0, 4), (1, 5)]), (2 * w + 1, [(2, 6), (3, 7)])] {
                    for (reg, &(a, b)) in lo_hi.iter().enumerate() {
                        assert_eq!(nibble_coords(0, 0, lane, w, a), (8 * tile + g, 2 * t + 8 * reg));
                        assert_eq!(nibble_coords(0, 0, lane, w, b), (8 * tile + g, 2 * t + 1 + 8 * reg));
                    }
                }
            }
        }
    }

    #[test]
    fn round_trip_gives_the_users_layout() {
        for &(n, k, group) in &[(1, 32, 32), (7, 64, 32), (64, 128, 64), (65, 256, 128), (130, 128, 32), (33, 384, 128)] {
            let w = random(n, k, group, (n * 1000 + k) as u64);
            assert!(eligible(&w));
            let l = to_mma(&w);
            assert_eq!(l.n_pad % MMA_N, 0);
            assert_eq!(l.qweight.len(), l.n_pad * k / 8);
            assert_eq!(l.sz.len(), (k / group) * l.n_pad);
            assert_eq!(from_mma(n, k, &l.qweight), w.qweight, "{n} x {k} g{group}");
            // Every code is where nibble_coords says, and scale / zero of each column and group
            // are where the kernel reads them.
            let nblocks = l.n_pad / MMA_N;
            for nb in 0..nblocks {
                for s in 0..k / MMA_K {
                    for lane in 0..32 {
                        for wi in 0..4 {
                            let word = l.qweight[word_index(k, nb, s, lane, wi)];
                            for i in 0..8 {
                                let (col, c) = nibble_coords(nb, s, lane, wi, i);
                                let want = if col < n { w.q(col, c) } else { 0 };
                                assert_eq!((word >> (4 * i)) & 0xF, want);
                                let tile = 2 * wi + ((i >> 1) & 1);
                                let e = l.sz[((c / group) * nblocks + nb) * 64 + 8 * (lane / 4) + tile];
                                if col < n {
                                    let gi = col * (k / group) + c / group;
                                    assert_eq!(f16::from_bits(e as u16), f16::from_f32(w.scales[gi]));
                                    assert_eq!(e >> 16, w.zeros[gi] as u32);
                                } else {
                                    assert_eq!(e, 0);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn eligibility() {
        let mut w = random(8, 64, 32, 1);
        assert!(eligible(&w));
        w.scales[3] = 5000.0;
        assert!(!eligible(&w));
        w.scales[3] = 1e-6;
        assert!(!eligible(&w));
        w.scales[3] = 0.0;
        assert!(eligible(&w));
        w.scales[3] = -0.5;
        assert!(eligible(&w));
        let p = w.clone().with_perm((0..64u32).rev().collect()).unwrap();
        assert!(!eligible(&p));
    }
}

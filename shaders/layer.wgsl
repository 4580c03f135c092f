// Layer kernels (launch plumbing of slimgemm::Linear, not ops): a tiled transpose, written
// once for f32 and f16. The host prepends the prelude (shaders/common.wgsl) and a dtype
// snippet (shaders/dtype_f32.wgsl or dtype_f16.wgsl, of which only `F16` is used here).
//
// Layout: binding 0 is the parameter block (TransposeParams, mirrored by the struct of
// src/wgpu/layer.rs); x and out are bound as 32-bit words (f16: two halves per word, element
// e in half (e & 1) of word (e >> 1), low half first).
//
// out[j, i] = x[i, j] for x [rows, cols] and out [cols, rows], copied as bits (no float
// conversion: exact for every value, NaN payloads and negative zero included).
//
// Work split: one workgroup of 256 invocations (32 x 8) per 32 x 32 tile of x. The tile is
// read row by row (neighbouring invocations read neighbouring elements of x), kept in
// workgroup memory with one padding column (33 words per row: the column reads of the write
// phase hit distinct banks), and written row by row of out (neighbouring invocations write
// neighbouring elements). f16 output words hold two elements; the word whose first (even)
// element e lies in a tile is written, whole, by that tile's invocation of e. Its second
// element e + 1 is out[j, i + 1] (taken from the tile when row i + 1 of x is in it, else read
// from x) or, when i is the last column of out, out[j + 1, 0] = x[0, j + 1] (read from x).
// So every output word is written exactly once, and no two invocations share one.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// x holds rows * cols elements and out cols * rows (whole words: ceil(count / 2) for f16),
// rows * cols < 2^32, tiles == ceil(rows / 32) * ceil(cols / 32), tiles_c == ceil(cols / 32).
// x is read at (i, j) with i < rows and j < cols only: element i * cols + j < rows * cols.
// out is written at e = j * rows + i with j < cols, i < rows, so e < rows * cols. The second
// element's reads: (i + 1, j) with i + 1 < rows; (0, j + 1) with e + 1 < rows * cols and
// i == rows - 1, so e + 1 == (j + 1) * rows and j + 1 < cols. Tile slots are
// r * 33 + c with r, c < 32 (< 1056).

// `TransposeParams`: generated from the Rust struct of the same name (src/wgpu/layer.rs).

@group(0) @binding(0) var<uniform> p: TransposeParams;
@group(0) @binding(1) var<storage, read> x_w: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_w: array<u32>;

const T: u32 = 32u;
const TP: u32 = 33u; // padded row of the tile
const ROWS_PER_PASS: u32 = 8u;

// Element bits: f32 as its word; f16 as the 16 bits of its half, zero-extended.
var<workgroup> tile: array<u32, 1056>; // [T][TP]

// The bits of element `e` of x.
fn load_bits(e: u32) -> u32 {
    if F16 {
        return (x_w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
    }
    return x_w[e];
}

@compute @workgroup_size(256)
fn transpose(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= p.tiles {
        return;
    }
    let i0 = (g / p.tiles_c) * T; // first row of x in this tile
    let j0 = (g % p.tiles_c) * T; // first column of x
    let tx = li % T;
    let ty = li / T;
    for (var r = ty; r < T; r += ROWS_PER_PASS) {
        let i = i0 + r;
        let j = j0 + tx;
        if i < p.rows && j < p.cols {
            tile[r * TP + tx] = load_bits(i * p.cols + j);
        }
    }
    workgroupBarrier();
    // Row c of the out tile: out[j0 + c, i0 + tx] = tile[tx][c].
    for (var c = ty; c < T; c += ROWS_PER_PASS) {
        let j = j0 + c;
        let i = i0 + tx;
        if j < p.cols && i < p.rows {
            let e = j * p.rows + i;
            let v = tile[tx * TP + c];
            if !F16 {
                out_w[e] = v;
            } else if (e & 1u) == 0u {
                var hi = 0u;
                if e + 1u < p.rows * p.cols {
                    if i + 1u < p.rows {
                        if tx + 1u < T {
                            hi = tile[(tx + 1u) * TP + c];
                        } else {
                            hi = load_bits((i + 1u) * p.cols + j);
                        }
                    } else {
                        hi = load_bits(j + 1u);
                    }
                }
                out_w[e >> 1u] = v | (hi << 16u);
            }
        }
    }
}

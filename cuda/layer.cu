// Layer kernels: launch plumbing of slimgemm::Linear, not ops (src/cuda/layer.rs). The dense
// linear layer runs on the GEMMs of lowrank.cu; this file holds the transpose the CSR and 2:4
// layers need around their SpMM (x -> x^T, then y^T -> y).
//
// transpose_<f32|f16>: out[j, i] = x[i, j] for x [rows, cols] and out [cols, rows], each
// element's bits copied (exact for every value). A block of 256 threads (32 x 8) moves one
// 32 x 32 tile: it reads the tile row by row of x (a warp reads 32 consecutive elements),
// keeps it in shared memory as 32-bit words with one padding column ([32][33]: the column
// reads of the write phase fall in 32 distinct banks, for f16 too since halves are widened to
// words), and writes it row by row of out (a warp writes 32 consecutive elements). Each
// thread moves 4 elements each way. Tiles are numbered linearly over blockIdx.x, row-major
// over (ceil(rows / 32), tiles_c = ceil(cols / 32)).
//
// Contract (checked by the host): rows, cols >= 1; x and out hold rows * cols elements
// (< 2^31); tiles_c == ceil(cols / 32); gridDim.x == ceil(rows / 32) * tiles_c;
// blockDim.x == 256. Elements are read at (i, j) and written at (j, i) only for i < rows and
// j < cols; offsets are computed in 64 bits.

template <typename T>
__device__ __forceinline__ void transpose_body(int rows, int cols, int tiles_c, const T* __restrict__ x, T* __restrict__ out) {
    __shared__ u32 tile[32][33];
    const long long i0 = (long long)(blockIdx.x / tiles_c) * 32;
    const long long j0 = (long long)(blockIdx.x % tiles_c) * 32;
    const int tx = threadIdx.x & 31;
    const int ty = threadIdx.x >> 5;
#pragma unroll
    for (int r = ty; r < 32; r += 8) {
        const long long i = i0 + r, j = j0 + tx;
        if (i < rows && j < cols) tile[r][tx] = (u32)x[i * cols + j];
    }
    __syncthreads();
#pragma unroll
    for (int c = ty; c < 32; c += 8) {
        const long long j = j0 + c, i = i0 + tx;
        if (j < cols && i < rows) out[j * rows + i] = (T)tile[tx][c];
    }
}

// f32 and f16 moved as their bits (u32 / unsigned short), so no float conversion touches them.
extern "C" __global__ void __launch_bounds__(256) transpose_f32(int rows, int cols, int tiles_c, const u32* __restrict__ x, u32* __restrict__ out) {
    transpose_body<u32>(rows, cols, tiles_c, x, out);
}
extern "C" __global__ void __launch_bounds__(256)
    transpose_f16(int rows, int cols, int tiles_c, const unsigned short* __restrict__ x, unsigned short* __restrict__ out) {
    transpose_body<unsigned short>(rows, cols, tiles_c, x, out);
}

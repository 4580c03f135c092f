//! Every test of the library other than the op harness (`tests/ops.rs`), in one test binary:
//! one link instead of twenty, and a fraction of the disk (Cargo.toml sets `autotests = false`
//! and names the two test targets). Each module is one file of `tests/`, named by what it
//! covers; `cargo test --test library cpu_sparse::` runs one of them.

mod checkpoint_util;
mod common;
mod gguf_util;

// The CPU reference against the dense formulations of `slimgemm::naive`, per family.
mod cpu_binary;
mod cpu_lowrank;
mod cpu_quant;
mod cpu_sparse;

// Bad input at the public boundary: the error variant and message, never a panic.
mod bad_input_quant_binary;
mod bad_input_sparse24;
mod bad_input_sparse_lowrank;

// Ops and APIs beyond the harness's workloads.
mod layer;
mod lowrank_backward;
mod plan;
mod smoke;
mod sparse24;
mod spmm_t_cached;
mod w8a8_dyn;

// Model files.
mod formats_checkpoint;
mod formats_checkpoint_errors;
mod formats_gguf;
mod formats_gguf_files;

// Backend-specific: kernel compilation, bring-your-own device buffers, the examples.
mod cuda_byo;
mod cuda_compile;
mod examples;
mod wgpu_byo;

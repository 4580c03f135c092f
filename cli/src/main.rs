//! `slimgemm`: list the backends (`info`), check every op against the CPU reference
//! (`verify`), compile the CUDA kernels with NVRTC (`check-kernels`) and benchmark
//! (`bench`). Run `slimgemm --help`.

fn main() -> std::process::ExitCode {
    slimgemm_cli::cli::main()
}

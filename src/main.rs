//! `slimgemm`: list the backends (`info`), check every op against the CPU reference
//! (`verify`), compile the CUDA kernels with NVRTC (`check-kernels`) and benchmark
//! (`bench`). Run `slimgemm --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

#!/usr/bin/env bash
# Type-checks slimgemm-candle's `cuda` feature (candle CUDA tensors through slimgemm, in place)
# on a machine without a CUDA toolkit: `cargo check` with a stand-in `nvcc`
# (scripts/fake-cuda/bin/nvcc) that reports CUDA 12.9 and writes empty outputs, which is all
# candle-kernels' and cudarc's build scripts need when nothing is linked. It proves that
# slimgemm builds in the cudarc configuration candle's `cuda` imposes (`dynamic-linking`,
# `cuda-version-from-build-system`) and that the glue type-checks against candle's real API.
# With a real toolkit, build and run the example instead:
#   cargo run --release -p slimgemm-candle --features cuda --example candle_linear
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fake="$PWD/scripts/fake-cuda"
chmod +x "$fake/bin/nvcc"
# Its own target dir: candle's CUDA build and cudarc's linking mode differ from the tests'.
PATH="$fake/bin:$PATH" CUDA_HOME="$fake" CUDA_COMPUTE_CAP=90 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/candle-cuda-check" \
  cargo check -p slimgemm-candle --features cuda --all-targets
echo "check-candle-cuda: slimgemm-candle --features cuda type-checks"

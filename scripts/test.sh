#!/usr/bin/env bash
# The test command of slimgemm: installs what the tests need when it is missing (Mesa's
# software Vulkan driver for the WGSL tests, NVRTC for compiling the CUDA kernels), then runs
# every test. Works on a fresh Debian/Ubuntu machine with only Rust, gcc and python3/pip.
#
#   bash scripts/test.sh              # all tests
#   bash scripts/test.sh --test cli   # extra arguments go to `cargo test`
#
# Set SLIMGEMM_REQUIRE_WGPU=1 / SLIMGEMM_REQUIRE_NVRTC=1 (as CI does) to make the WGSL and
# NVRTC tests fail instead of skipping when their dependency is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "test.sh: need root to run: $*" >&2
    return 1
  fi
}

# 1. Mesa lavapipe (a Vulkan device on the CPU) for the wgpu backend's tests.
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: no lavapipe ICD under /usr/share/vulkan/icd.d: installing mesa-vulkan-drivers"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mesa-vulkan-drivers libvulkan1
  else
    echo "test.sh: warning: no lavapipe ICD and no apt-get; install Mesa's Vulkan drivers by hand" >&2
  fi
fi

# 2. NVRTC 12 or 13 (libnvrtc.so.12 / .13) for compiling the CUDA kernels (no GPU needed).
# slimgemm finds pip's NVIDIA wheels by itself (site-packages/nvidia/*/lib: cuda_nvrtc/lib for
# nvidia-cuda-nvrtc-cu12, cu13/lib for CUDA 13's nvidia-cuda-nvrtc); the folder also goes on
# LD_LIBRARY_PATH so that every process of the tests loads the same NVRTC.
nvrtc_lib_dir() {
  python3 - <<'PY' 2>/dev/null || true
import glob, os, site, sys
roots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        if any(os.path.exists(os.path.join(d, f"libnvrtc.so.{v}")) for v in (13, 12)):
            print(d)
            raise SystemExit
PY
}
have_system_nvrtc() {
  ldconfig -p 2>/dev/null | grep -Eq 'libnvrtc\.so\.1[23]( |$)' && return 0
  for d in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }} /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -e "$d/libnvrtc.so.13" ] || [ -e "$d/libnvrtc.so.12" ] && return 0
  done
  return 1
}
if ! have_system_nvrtc; then
  dir="$(nvrtc_lib_dir)"
  if [ -z "$dir" ] && command -v python3 >/dev/null 2>&1; then
    echo "test.sh: neither libnvrtc.so.13 nor libnvrtc.so.12 found: installing nvidia-cuda-nvrtc-cu12 from PyPI"
    python3 -m pip install -q nvidia-cuda-nvrtc-cu12 \
      || python3 -m pip install -q --break-system-packages nvidia-cuda-nvrtc-cu12 \
      || echo "test.sh: warning: pip install of NVRTC failed" >&2
    dir="$(nvrtc_lib_dir)"
  fi
  if [ -n "$dir" ]; then
    export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "test.sh: NVRTC from $dir"
  fi
fi

# 3. The real pruned matrices of the DLMC subset, when this checkout sits next to them.
for d in ../shared/data/dlmc shared/data/dlmc; do
  if [ -d "$d" ] && [ -z "${SLIMGEMM_DLMC_DIR:-}" ]; then
    SLIMGEMM_DLMC_DIR="$(cd "$d" && pwd)"
    export SLIMGEMM_DLMC_DIR
    echo "test.sh: SLIMGEMM_DLMC_DIR=$SLIMGEMM_DLMC_DIR"
  fi
done

# Lavapipe's window-system code warns without a runtime dir; give it one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi

# 4. Every test (dev profile: opt-level 1, dependencies optimized).
cargo test --workspace --features hf "$@"

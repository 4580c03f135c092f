//! Run-time compilation of the kernel sources with NVRTC, cached per process (and optionally
//! on disk), plus [`check_kernels`] which compiles every source for a list of architectures
//! without needing a GPU; and the search for the CUDA libraries (driver, NVRTC, cuBLAS,
//! cuBLASLt, cuSPARSE, cuDNN) of CUDA 12 or 13, with the versions that were loaded.
//!
//! NVRTC behaviour (checked with NVRTC 12.9 from the `nvidia-cuda-nvrtc-cu12` wheel):
//! `--gpu-architecture=sm_XY` compiles to a CUBIN for that exact GPU *and* keeps the PTX
//! (`nvrtcGetPTX` works); `--gpu-architecture=compute_XY` produces PTX only (CUBIN size 0).
//! We compile with `sm_XY` and load the CUBIN (no driver JIT, no PTX-ISA/driver version
//! mismatch); if the CUBIN is missing we fall back to the PTX. `cuda_fp16.h` is *not* shipped
//! with that NVRTC (no include directory in the wheel), so the kernels include no header:
//! f16 conversions are inline PTX (`cvt.f32.f16`, `cvt.rn.f16.f32`) in `cuda/common.cuh`.
//! NVRTC 13 no longer targets sm_70 and older; the kernels are built for sm_75 and newer.
//! NVRTC 13.0 (the `nvidia-cuda-nvrtc` 13.0.88 wheel, `nvidia/cu13/lib`) compiles every
//! kernel for sm_75, sm_80, sm_89 and sm_90 (checked); unlike the CUDA 12 wheel its
//! `libnvrtc.so.13` has no RUNPATH, so it finds `libnvrtc-builtins.so.13.0` only on the loader's
//! path or when loaded beforehand ([`find_library`] does that).
//!
//! CUDA 12 and 13. cudarc 0.19 is built with its `cuda-13000` bindings: its loader then tries
//! `lib<name>.so`, `lib<name>.so.13`, `.12`, `.11`, `.10`, `.9` and `.1` (see
//! [`library_names`]), so NVRTC, cuBLAS and cuBLASLt of either CUDA 12 or 13 load, as do
//! cuSPARSE (`.so.12` in both: CUDA 13 ships cuSPARSE 12.6+) and cuDNN 9. Checked against
//! cudarc's bindings: every driver, NVRTC, cuBLAS, cuBLASLt and cuSPARSE function that
//! slimgemm and its baselines call is bound with the same name and signature for CUDA 12.0
//! through 13.x, except `cuEventElapsedTime_v2` (CUDA events, i.e. `bench` timing), which
//! needs a driver of CUDA 12.8 or newer ([`driver_note`]); cuDNN's bindings follow the cuDNN
//! version (9), not CUDA's. Where the dynamic loader finds none of the names,
//! [`find_library`] looks in the usual folders itself (CUDA toolkits, Python `nvidia-*`
//! wheels in virtual environments, `SLIMGEMM_CUDA_LIB_DIRS`) and loads the library by path,
//! after which cudarc's load by name finds it (glibc matches the name against the `SONAME` of
//! loaded libraries).

use std::collections::HashMap;
use std::ffi::{c_char, CString};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::nvrtc::{result as nv, sys as nvsys};

use super::libs::find_library;
use super::KernelCheck;
use crate::error::{Error, Result};

/// The shared header prepended to every kernel source.
pub(crate) const COMMON: &str = include_str!("../../cuda/common.cuh");

/// Every kernel family source: `(name, text)`.
pub const KERNEL_SOURCES: &[(&str, &str)] = &[
    ("sparse", include_str!("../../cuda/sparse.cu")),
    ("spmm", include_str!("../../cuda/spmm.cu")),
    ("lowrank", include_str!("../../cuda/lowrank.cu")),
    ("quant", include_str!("../../cuda/quant.cu")),
    ("quant_tc", include_str!("../../cuda/quant_tc.cu")),
    ("sparse_tc", include_str!("../../cuda/sparse_tc.cu")),
    ("binary", include_str!("../../cuda/binary.cu")),
    ("layer", include_str!("../../cuda/layer.cu")),
];

/// A compiled kernel family: CUBIN for the exact arch when NVRTC produced one, and the PTX.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub cubin: Option<Vec<u8>>,
    pub ptx: String,
}

/// The error of every entry point that needs NVRTC where it cannot be loaded: names the
/// file names and folders searched.
pub(crate) fn unavailable_nvrtc() -> Error {
    let s = find_library("nvrtc");
    let why = match &s.found {
        Some(path) => format!(
            "NVRTC was found at {path} but cudarc could not load it by any of the names {}; it is needed to compile the kernels",
            s.names.join(", ")
        ),
        None => format!("{}; it is needed to compile the kernels (no GPU needed)", s.not_found()),
    };
    Error::unavailable("cuda", why)
}

/// True if the NVRTC library can be loaded (probed with a plain dlopen, so that cudarc's
/// lazy loader, which panics when the library is absent, is never reached without it).
/// Searches the usual folders itself ([`find_library`]) when the dynamic loader finds none.
pub(crate) fn nvrtc_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| find_library("nvrtc").found.is_some() && super::libs::culib_present("nvrtc"))
}

/// The version `(major, minor)` of the NVRTC library loaded (`nvrtcVersion`), loading it
/// first if needed.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    if !nvrtc_present() {
        return Err(unavailable_nvrtc());
    }
    let (mut major, mut minor) = (0i32, 0i32);
    // SAFETY: NVRTC is loadable (checked above); both pointers are valid for writes.
    let r = unsafe { nvsys::nvrtcVersion(&mut major, &mut minor) };
    if r != nvsys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::backend("cuda", format!("nvrtcVersion failed: {r:?}")));
    }
    Ok((major, minor))
}

/// The full source of a family: the common header then the family's kernels.
pub(crate) fn full_source(family: &str) -> Result<String> {
    let (_, src) = KERNEL_SOURCES
        .iter()
        .find(|(n, _)| *n == family)
        .ok_or_else(|| Error::backend("cuda", format!("no kernel source named `{family}`")))?;
    Ok(format!("{COMMON}\n#line 1 \"{family}.cu\"\n{src}"))
}

fn cstr_lossy(v: &[c_char]) -> String {
    let bytes: Vec<u8> = v.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Destroys an NVRTC program when dropped.
struct Program(nvsys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by `create_program` and is destroyed once, here.
        let _ = unsafe { nv::destroy_program(self.0) };
    }
}

/// The NVRTC options of every kernel compile, after `--gpu-architecture`. Part of the disk
/// cache key.
///
/// `--fmad=true`: multiply-adds contract into FMAs. The float GEMM / SpMM / SDDMM / low-rank
/// accumulations want that (faster, and one rounding instead of two: within the f32 `2e-4`
/// and f16 `1e-2` tolerances). The results that must equal the CPU reference bit for bit
/// (`quantize_rows_i8`'s scaling and rounding, the w8a8 dequantization `(sx sw) acc`, the
/// xnor epilogue `alpha dot + bias` and its threshold compare) are written with
/// `__fmul_rn` / `__fadd_rn` / `__fdiv_rn`, which are never contracted, whatever this flag.
/// `--prec-div=true`, `--prec-sqrt=true`, `--ftz=false`: IEEE-rounded division and square
/// root, denormals kept (`__fdiv_rn(127, amax)` must match the CPU for tiny `amax`).
pub(crate) const NVRTC_OPTIONS: &[&str] = &["--std=c++17", "--fmad=true", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"];

/// Compiles `source` for `arch` (`sm_XY` or `compute_XY`). Errors carry NVRTC's log.
pub(crate) fn compile(name: &str, source: &str, arch: &str) -> Result<Compiled> {
    if !nvrtc_present() {
        return Err(unavailable_nvrtc());
    }
    let src = CString::new(source).map_err(|_| Error::backend("cuda", format!("kernel source `{name}` contains a NUL byte")))?;
    let cname = CString::new(format!("{name}.cu")).map_err(|_| Error::backend("cuda", "kernel name contains a NUL byte"))?;
    // `src` and `cname` outlive the program: locals drop in reverse order of declaration, so
    // `prog` (declared after them) is destroyed first, at every return below. (NVRTC copies
    // both during nvrtcCreateProgram anyway; nothing relies on that.)
    let prog =
        Program(nv::create_program(&src, Some(&cname)).map_err(|e| Error::backend("cuda", format!("nvrtcCreateProgram({name}): {e:?}")))?);
    let mut options = vec![format!("--gpu-architecture={arch}")];
    options.extend(NVRTC_OPTIONS.iter().map(|o| o.to_string()));
    // SAFETY: `prog` is a live program (destroyed only when `prog` drops, below); the
    // options are valid strings for the duration of the call.
    let res = unsafe { nv::compile_program(prog.0, &options) };
    // SAFETY: `prog` is live.
    let log = unsafe { nv::get_program_log(prog.0) }.map(|l| cstr_lossy(&l)).unwrap_or_default();
    if let Err(e) = res {
        return Err(Error::backend("cuda", format!("NVRTC failed to compile {name}.cu for {arch} ({e:?}):\n{log}")));
    }
    // SAFETY: `prog` is live and compiled.
    let ptx = unsafe { nv::get_ptx(prog.0) }.map_err(|e| Error::backend("cuda", format!("nvrtcGetPTX({name}, {arch}): {e:?}")))?;
    let ptx = cstr_lossy(&ptx);
    let mut size = 0usize;
    // SAFETY: `prog` is live and compiled; `size` is a valid out pointer.
    let r = unsafe { nvsys::nvrtcGetCUBINSize(prog.0, &mut size) };
    let cubin = if r == nvsys::nvrtcResult::NVRTC_SUCCESS && size > 0 {
        let mut buf = vec![0u8; size];
        // SAFETY: `prog` is live; `buf` holds exactly the `size` bytes NVRTC reported.
        let r = unsafe { nvsys::nvrtcGetCUBIN(prog.0, buf.as_mut_ptr() as *mut c_char) };
        (r == nvsys::nvrtcResult::NVRTC_SUCCESS).then_some(buf)
    } else {
        None
    };
    Ok(Compiled { cubin, ptx })
}

/// FNV-1a, stable across Rust versions (keys of the on-disk cache).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

type CacheKey = (&'static str, String);

fn process_cache() -> &'static Mutex<HashMap<CacheKey, Arc<Compiled>>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Arc<Compiled>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The compiled family for `arch`: from the process cache, else from the disk cache
/// (`SLIMGEMM_PTX_CACHE` directory, keyed by a hash of source + arch + NVRTC version +
/// options), else
/// compiled now (and stored in both).
pub(crate) fn compiled(family: &'static str, arch: &str) -> Result<Arc<Compiled>> {
    let key = (family, arch.to_string());
    let lock = || process_cache().lock().map_err(|_| Error::backend("cuda", "kernel cache lock poisoned"));
    if let Some(c) = lock()?.get(&key) {
        return Ok(c.clone());
    }
    // Compiled without holding the lock, so that different families / archs compile in
    // parallel; a rare duplicate compile of the same key is harmless.
    let source = full_source(family)?;
    let disk = std::env::var_os("SLIMGEMM_PTX_CACHE").map(std::path::PathBuf::from);
    let version = nvrtc_version()?;
    let hash = fnv1a(&[source.as_bytes(), arch.as_bytes(), format!("{version:?}").as_bytes(), NVRTC_OPTIONS.join(" ").as_bytes()]);
    let stem = format!("{family}-{arch}-{hash:016x}");
    let from_disk = disk.as_ref().and_then(|dir| {
        let ptx = std::fs::read_to_string(dir.join(format!("{stem}.ptx"))).ok()?;
        let cubin = std::fs::read(dir.join(format!("{stem}.cubin"))).ok();
        Some(Compiled { cubin, ptx })
    });
    let c = match from_disk {
        Some(c) => Arc::new(c),
        None => {
            let c = Arc::new(compile(family, &source, arch)?);
            if let Some(dir) = &disk {
                // The disk cache is an optimisation: failures to write it are ignored.
                if std::fs::create_dir_all(dir).is_ok() {
                    if let Some(cubin) = &c.cubin {
                        let _ = std::fs::write(dir.join(format!("{stem}.cubin")), cubin);
                    }
                    let _ = std::fs::write(dir.join(format!("{stem}.ptx")), &c.ptx);
                }
            }
            c
        }
    };
    Ok(lock()?.entry(key).or_insert(c).clone())
}

/// Compiles every kernel source for each architecture (e.g. `sm_75`, `sm_80`, `sm_89`,
/// `sm_90`) with NVRTC (no GPU needed). One row per source and arch; `ok == false` rows
/// carry NVRTC's log. Errors with [`Error::Unavailable`] if NVRTC cannot be loaded.
pub fn check_kernels(archs: &[&str]) -> Result<Vec<KernelCheck>> {
    if !nvrtc_present() {
        return Err(unavailable_nvrtc());
    }
    // One thread per arch (NVRTC compiles independent programs concurrently); results land
    // in the process cache, so a later launch or `kernel_ptx` for the same arch reuses them.
    let per_arch: Vec<Vec<KernelCheck>> = std::thread::scope(|scope| {
        let handles: Vec<_> = archs
            .iter()
            .map(|&arch| {
                scope.spawn(move || {
                    KERNEL_SOURCES
                        .iter()
                        .map(|(name, _)| match compiled(name, arch) {
                            Ok(c) => KernelCheck {
                                kernel: name.to_string(),
                                arch: arch.to_string(),
                                ok: true,
                                message: format!(
                                    "PTX {} bytes, CUBIN {}",
                                    c.ptx.len(),
                                    c.cubin.as_ref().map(|b| format!("{} bytes", b.len())).unwrap_or_else(|| "none".into())
                                ),
                            },
                            Err(e) => KernelCheck { kernel: name.to_string(), arch: arch.to_string(), ok: false, message: e.to_string() },
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(archs)
            .map(|(h, &arch)| {
                h.join().unwrap_or_else(|_| {
                    KERNEL_SOURCES
                        .iter()
                        .map(|(name, _)| KernelCheck {
                            kernel: name.to_string(),
                            arch: arch.to_string(),
                            ok: false,
                            message: "the NVRTC compile thread panicked".into(),
                        })
                        .collect()
                })
            })
            .collect()
    });
    Ok(per_arch.into_iter().flatten().collect())
}

/// The PTX of one kernel family compiled for `arch` (e.g. `sm_80`), from the process cache
/// (compiled on first use). Needs NVRTC, not a GPU.
pub fn kernel_ptx(family: &str, arch: &str) -> Result<String> {
    let fam = KERNEL_SOURCES
        .iter()
        .map(|(n, _)| *n)
        .find(|n| *n == family)
        .ok_or_else(|| Error::backend("cuda", format!("no kernel source named `{family}`")))?;
    Ok(compiled(fam, arch)?.ptx.clone())
}

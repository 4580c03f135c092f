//! Run-time compilation of the kernel sources with NVRTC, cached per process (and optionally
//! on disk), plus [`check_kernels`] which compiles every source for a list of architectures
//! without needing a GPU.
//!
//! NVRTC behaviour (checked with NVRTC 12.9 from the `nvidia-cuda-nvrtc-cu12` wheel):
//! `--gpu-architecture=sm_XY` compiles to a CUBIN for that exact GPU *and* keeps the PTX
//! (`nvrtcGetPTX` works); `--gpu-architecture=compute_XY` produces PTX only (CUBIN size 0).
//! We compile with `sm_XY` and load the CUBIN (no driver JIT, no PTX-ISA/driver version
//! mismatch); if the CUBIN is missing we fall back to the PTX. `cuda_fp16.h` is *not* shipped
//! with that NVRTC (no include directory in the wheel), so the kernels include no header:
//! f16 conversions are inline PTX (`cvt.f32.f16`, `cvt.rn.f16.f32`) in `cuda/common.cuh`.

use std::collections::HashMap;
use std::ffi::{c_char, CString};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::nvrtc::{result as nv, sys as nvsys};

use super::KernelCheck;
use crate::error::{Error, Result};

/// The shared header prepended to every kernel source.
pub(crate) const COMMON: &str = include_str!("../../cuda/common.cuh");

/// Every kernel family source: `(name, text)`.
pub const KERNEL_SOURCES: &[(&str, &str)] = &[
    ("sparse", include_str!("../../cuda/sparse.cu")),
    ("lowrank", include_str!("../../cuda/lowrank.cu")),
    ("quant", include_str!("../../cuda/quant.cu")),
    ("binary", include_str!("../../cuda/binary.cu")),
];

/// A compiled kernel family: CUBIN for the exact arch when NVRTC produced one, and the PTX.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub cubin: Option<Vec<u8>>,
    pub ptx: String,
}

fn unavailable_nvrtc() -> Error {
    Error::unavailable("cuda", "NVRTC not found (libnvrtc.so.12 / libnvrtc.so not on the library path); it is needed to compile the kernels")
}

/// True if the NVRTC library can be loaded (probed with a plain dlopen, so that cudarc's
/// lazy loader, which panics when the library is absent, is never reached without it).
pub(crate) fn nvrtc_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: `is_culib_present` only tries to dlopen candidate library names and drops them.
    *PRESENT.get_or_init(|| unsafe { nvsys::is_culib_present() })
}

/// NVRTC's version `(major, minor)`.
pub(crate) fn nvrtc_version() -> Result<(i32, i32)> {
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

/// Compiles `source` for `arch` (`sm_XY` or `compute_XY`). Errors carry NVRTC's log.
pub(crate) fn compile(name: &str, source: &str, arch: &str) -> Result<Compiled> {
    if !nvrtc_present() {
        return Err(unavailable_nvrtc());
    }
    let src = CString::new(source).map_err(|_| Error::backend("cuda", format!("kernel source `{name}` contains a NUL byte")))?;
    let cname = CString::new(format!("{name}.cu")).map_err(|_| Error::backend("cuda", "kernel name contains a NUL byte"))?;
    let prog = Program(nv::create_program(&src, Some(&cname)).map_err(|e| Error::backend("cuda", format!("nvrtcCreateProgram({name}): {e:?}")))?);
    let options = [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
        // Exact IEEE division and square root, no flush-to-zero: quantize_rows_i8 must round
        // exactly like the CPU reference.
        "--fmad=true".to_string(),
        "--prec-div=true".to_string(),
        "--ftz=false".to_string(),
    ];
    // SAFETY: `prog` is a live program; `src` and `cname` outlive it (dropped after `prog`).
    let res = unsafe { nv::compile_program(prog.0, &options) };
    // SAFETY: as above.
    let log = unsafe { nv::get_program_log(prog.0) }.map(|l| cstr_lossy(&l)).unwrap_or_default();
    if let Err(e) = res {
        return Err(Error::backend("cuda", format!("NVRTC failed to compile {name}.cu for {arch} ({e:?}):\n{log}")));
    }
    // SAFETY: compiled program.
    let ptx = unsafe { nv::get_ptx(prog.0) }.map_err(|e| Error::backend("cuda", format!("nvrtcGetPTX({name}, {arch}): {e:?}")))?;
    let ptx = cstr_lossy(&ptx);
    let mut size = 0usize;
    // SAFETY: compiled program, valid out pointer.
    let r = unsafe { nvsys::nvrtcGetCUBINSize(prog.0, &mut size) };
    let cubin = if r == nvsys::nvrtcResult::NVRTC_SUCCESS && size > 0 {
        let mut buf = vec![0u8; size];
        // SAFETY: `buf` holds exactly the `size` bytes NVRTC reported.
        let r = unsafe { nvsys::nvrtcGetCUBIN(prog.0, buf.as_mut_ptr() as *mut c_char) };
        (r == nvsys::nvrtcResult::NVRTC_SUCCESS).then_some(buf)
    } else {
        None
    };
    drop(src);
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
/// (`SLIMGEMM_PTX_CACHE` directory, keyed by a hash of source + arch + NVRTC version), else
/// compiled now (and stored in both).
pub(crate) fn compiled(family: &'static str, arch: &str) -> Result<Arc<Compiled>> {
    let key = (family, arch.to_string());
    let mut cache = process_cache().lock().map_err(|_| Error::backend("cuda", "kernel cache lock poisoned"))?;
    if let Some(c) = cache.get(&key) {
        return Ok(c.clone());
    }
    let source = full_source(family)?;
    let disk = std::env::var_os("SLIMGEMM_PTX_CACHE").map(std::path::PathBuf::from);
    let version = nvrtc_version()?;
    let hash = fnv1a(&[source.as_bytes(), arch.as_bytes(), format!("{version:?}").as_bytes()]);
    let stem = format!("{family}-{arch}-{hash:016x}");
    if let Some(dir) = &disk {
        let ptx = std::fs::read_to_string(dir.join(format!("{stem}.ptx"))).ok();
        let cubin = std::fs::read(dir.join(format!("{stem}.cubin"))).ok();
        if let Some(ptx) = ptx {
            let c = Arc::new(Compiled { cubin, ptx });
            cache.insert(key, c.clone());
            return Ok(c);
        }
    }
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
    cache.insert(key, c.clone());
    Ok(c)
}

/// Compiles every kernel source for each architecture (e.g. `sm_75`, `sm_80`, `sm_89`,
/// `sm_90`) with NVRTC (no GPU needed). One row per source and arch; `ok == false` rows
/// carry NVRTC's log. Errors with [`Error::Unavailable`] if NVRTC cannot be loaded.
pub fn check_kernels(archs: &[&str]) -> Result<Vec<KernelCheck>> {
    if !nvrtc_present() {
        return Err(unavailable_nvrtc());
    }
    let mut rows = Vec::new();
    for &arch in archs {
        for (name, _) in KERNEL_SOURCES {
            let row = match full_source(name).and_then(|s| compile(name, &s, arch)) {
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
            };
            rows.push(row);
        }
    }
    Ok(rows)
}

//! Finding the CUDA libraries (CUDA 12 or 13: the driver, NVRTC and the vendor libraries of
//! the baselines) wherever a machine keeps them, and reporting the versions loaded.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::nvrtc::nvrtc_version;
use crate::error::{Error, Result};

/// The CUDA libraries that slimgemm (driver, NVRTC) and its vendor baselines (the rest) load
/// at run time: `(stem, what)`, the stem being the file name without `lib` and `.so…`, as
/// cudarc names them.
pub const CUDA_LIBRARIES: &[(&str, &str)] = &[
    ("cuda", "CUDA driver"),
    ("nvrtc", "NVRTC"),
    ("cublas", "cuBLAS"),
    ("cublasLt", "cuBLASLt"),
    ("cusparse", "cuSPARSE"),
    ("cudnn", "cuDNN"),
    ("cusparseLt", "cuSPARSELt"),
];

/// Every file name tried for a library, in the order of cudarc's loader with CUDA 13
/// bindings: `lib<stem>.so`, then Windows-style variants, then `lib<stem>.so.13`, `.12`,
/// `.11`, `.10`, `.9`, `.1`, `.0` (cuSPARSELt's SONAME): CUDA 13 and 12 libraries both load. (slimgemm's own list: cudarc
/// has one only in its `dynamic-loading` mode, and a build with candle's `cuda` links
/// dynamically instead.)
pub fn library_names(stem: &str) -> Vec<String> {
    use std::env::consts::{DLL_PREFIX as P, DLL_SUFFIX as S};
    let bits = if cfg!(target_pointer_width = "32") { "32" } else { "64" };
    let mut v: Vec<String> = vec![format!("{P}{stem}{S}"), format!("{P}{stem}{bits}{S}")];
    for major in ["13", "12", "11", "10", "9"] {
        v.push(format!("{P}{stem}{bits}_{major}{S}"));
    }
    v.push(format!("{P}{stem}{bits}_130{S}"));
    v.push(format!("{P}{stem}{bits}_13_0{S}"));
    for major in ["13", "12", "11", "10", "9", "1", "0"] {
        v.push(format!("{P}{stem}{S}.{major}"));
    }
    let mut unique: Vec<String> = Vec::with_capacity(v.len());
    for n in v {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    unique
}

/// True if the dynamic loader opens one of [`library_names`] (opened and closed again, as
/// cudarc's `is_culib_present` does, in whatever linking mode cudarc was built).
pub(crate) fn culib_present(stem: &str) -> bool {
    library_names(stem).iter().any(|n| {
        // SAFETY: loading a CUDA library runs its initializers, which is what cudarc's own
        // load by the same name does; no symbol is used and the handle is dropped at once.
        unsafe { libloading::Library::new(n) }.is_ok()
    })
}

/// The names of [`library_names`] a Linux library can have (`lib<stem>.so`, `lib<stem>.so.N`),
/// for messages.
fn unix_names(stem: &str, names: &[String]) -> Vec<String> {
    let base = format!("lib{stem}.so");
    names
        .iter()
        .filter(|n| **n == base || n.strip_prefix(&format!("{base}.")).is_some_and(|v| v.chars().all(|c| c.is_ascii_digit())))
        .cloned()
        .collect()
}

/// The folders (glob patterns: `*` matches within one path component) where [`find_library`]
/// looks itself when the dynamic loader finds none of the names, in order:
/// `$SLIMGEMM_CUDA_LIB_DIRS` (colon-separated), the CUDA toolkit of `$CUDA_HOME` /
/// `$CUDA_PATH` / `$CUDA_ROOT` / `$CUDA_TOOLKIT_ROOT_DIR` and `/usr/local/cuda*`, the driver
/// folder of NVIDIA containers, conda's `lib`, and the `nvidia/*/lib` folders of Python
/// packages (`nvidia-*-cu12` and CUDA 13 `nvidia-*` wheels) in `$VIRTUAL_ENV`, `$CONDA_PREFIX`,
/// `~/.venv`, `~/.local`, pyenv versions, `/opt/*` and `/opt/*/.venv`, `/usr/local`, `/usr`.
pub fn library_dir_patterns() -> Vec<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let mut v: Vec<String> = Vec::new();
    if let Some(dirs) = env("SLIMGEMM_CUDA_LIB_DIRS") {
        v.extend(dirs.split(':').filter(|d| !d.is_empty()).map(str::to_string));
    }
    let mut toolkits: Vec<String> =
        ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT", "CUDA_TOOLKIT_ROOT_DIR"].iter().filter_map(|k| env(k)).collect();
    toolkits.extend(["/usr/local/cuda".to_string(), "/usr/local/cuda-*".to_string()]);
    for t in &toolkits {
        for sub in ["lib64", "lib", "targets/*-linux/lib"] {
            v.push(format!("{t}/{sub}"));
        }
    }
    v.extend(["/usr/local/nvidia/lib64".to_string(), "/usr/local/nvidia/lib".to_string()]);
    let home = env("HOME");
    let mut prefixes: Vec<String> = Vec::new();
    prefixes.extend(env("VIRTUAL_ENV"));
    if let Some(c) = env("CONDA_PREFIX") {
        v.push(format!("{c}/lib"));
        prefixes.push(c);
    }
    if let Some(h) = &home {
        prefixes.extend([format!("{h}/.venv"), format!("{h}/.local"), format!("{h}/.pyenv/versions/*")]);
    }
    prefixes.extend(["/opt/*/.venv", "/opt/*", "/opt/conda/envs/*", "/usr/local", "/usr"].map(String::from));
    for p in &prefixes {
        for site in ["site-packages", "dist-packages"] {
            v.push(format!("{p}/lib/python3*/{site}/nvidia/*/lib"));
        }
    }
    v.push("/usr/lib/python3/dist-packages/nvidia/*/lib".to_string());
    let mut out: Vec<String> = Vec::new();
    for p in v {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// True if `name` matches `pat`, where `*` matches any run of characters.
fn wild_match(pat: &str, name: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if name.len() < first.len() + last.len() || !name.starts_with(first) || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The existing folders a glob pattern of [`library_dir_patterns`] names (at most `limit`,
/// sorted within each wildcard so that the order is stable).
pub(crate) fn expand_dir_pattern(pattern: &str, limit: usize) -> Vec<std::path::PathBuf> {
    use std::path::PathBuf;
    let mut current: Vec<PathBuf> = vec![if pattern.starts_with('/') { PathBuf::from("/") } else { PathBuf::from(".") }];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if comp.contains('*') {
                let Ok(rd) = std::fs::read_dir(dir) else { continue };
                let mut names: Vec<String> = rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
                names.sort();
                for n in names.into_iter().filter(|n| wild_match(comp, n)) {
                    let p = dir.join(n);
                    if p.is_dir() && next.len() < limit {
                        next.push(p);
                    }
                }
            } else {
                let p = dir.join(comp);
                if p.is_dir() && next.len() < limit {
                    next.push(p);
                }
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current
}

/// The first `dir/name` that is a file, trying every name in each folder in turn.
pub(crate) fn first_in_dirs(dirs: &[std::path::PathBuf], names: &[String]) -> Option<std::path::PathBuf> {
    dirs.iter().flat_map(|d| names.iter().map(move |n| d.join(n))).find(|p| p.is_file())
}

/// Where a CUDA library was searched for, and where it was found.
#[derive(Debug, Clone)]
pub struct LibrarySearch {
    /// The stem (`nvrtc`, `cublas`, …).
    pub stem: String,
    /// Every file name tried ([`library_names`]).
    pub names: Vec<String>,
    /// The folder patterns slimgemm looked in itself ([`library_dir_patterns`]), after the
    /// dynamic loader's own search (`LD_LIBRARY_PATH`, `ld.so.cache`, `/lib`, `/usr/lib`).
    pub dirs: Vec<String>,
    /// The file loaded (its path where known, else the name the loader opened), or `None`.
    pub found: Option<String>,
}

impl LibrarySearch {
    /// The "not found" message: the names and the folders searched.
    pub fn not_found(&self) -> String {
        let what = CUDA_LIBRARIES.iter().find(|(s, _)| *s == self.stem).map(|(_, w)| *w).unwrap_or(&self.stem);
        let unix = unix_names(&self.stem, &self.names);
        let others = self.names.len() - unix.len();
        let ld = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        format!(
            "{what} not found: tried {}{} through the dynamic loader (LD_LIBRARY_PATH={}, ld.so.cache, /lib, /usr/lib), \
             then in {}; put the folder that holds it on LD_LIBRARY_PATH or SLIMGEMM_CUDA_LIB_DIRS",
            unix.join(", "),
            if others > 0 { format!(" (and {others} Windows-style variants)") } else { String::new() },
            if ld.is_empty() { "unset".to_string() } else { ld },
            self.dirs.join(", "),
        )
    }
}

#[cfg(target_os = "linux")]
mod dl {
    use std::ffi::{c_char, c_int, c_void, CStr, CString};

    extern "C" {
        fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
        fn dlerror() -> *mut c_char;
    }
    // As libloading (cudarc's loader) opens libraries: lazy binding, local symbols.
    const RTLD_LAZY: c_int = 1;
    const RTLD_LOCAL: c_int = 0;

    /// Opens a shared library by name or path and keeps it loaded for the life of the process
    /// (never closed), so that a later dlopen by its SONAME (cudarc's) finds it.
    pub fn open_and_keep(name: &str) -> Result<(), String> {
        let c = CString::new(name).map_err(|_| format!("{name}: contains a NUL byte"))?;
        // SAFETY: `c` is a valid NUL-terminated string; dlopen runs the library's initializers,
        // which is what loading a CUDA library by cudarc would do too. The handle is
        // deliberately never closed.
        let h = unsafe { dlopen(c.as_ptr(), RTLD_LAZY | RTLD_LOCAL) };
        if h.is_null() {
            // SAFETY: dlerror returns NULL or a valid C string owned by the loader, read at once.
            let e = unsafe { dlerror() };
            let msg = if e.is_null() { "unknown error".to_string() } else { unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned() };
            return Err(msg);
        }
        Ok(())
    }

    /// The path of a loaded library whose file name starts with `lib<stem>.so` (from
    /// `/proc/self/maps`).
    pub fn loaded_path(stem: &str) -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let base = format!("lib{stem}.so");
        maps.lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.rsplit('/').next().is_some_and(|f| f.starts_with(&base)))
            .map(str::to_string)
    }
}

/// Finds and loads a CUDA library of CUDA 12 or 13 (`stem` as in [`CUDA_LIBRARIES`]): first
/// through the dynamic loader by each of [`library_names`], then by path in the folders of
/// [`library_dir_patterns`]. A library found is kept loaded, so that cudarc's own load by
/// name succeeds afterwards. Cached per process; never panics.
pub fn find_library(stem: &str) -> LibrarySearch {
    static CACHE: OnceLock<Mutex<HashMap<String, LibrarySearch>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(s) = cache.lock().ok().and_then(|c| c.get(stem).cloned()) {
        return s;
    }
    let names = library_names(stem);
    let dirs = library_dir_patterns();
    let found = search_and_load(stem, &names, &dirs);
    let s = LibrarySearch { stem: stem.to_string(), names, dirs, found };
    if let Ok(mut c) = cache.lock() {
        c.insert(stem.to_string(), s.clone());
    }
    s
}

#[cfg(target_os = "linux")]
fn search_and_load(stem: &str, names: &[String], dirs: &[String]) -> Option<String> {
    // cuBLAS needs cuBLASLt (DT_NEEDED): load it first so that a cuBLAS found by path links.
    if stem == "cublas" {
        let _ = find_library("cublasLt");
    }
    for n in names {
        if dl::open_and_keep(n).is_ok() {
            return Some(dl::loaded_path(stem).unwrap_or_else(|| n.clone()));
        }
    }
    let mut seen = 0usize;
    for pat in dirs {
        let found_dirs = expand_dir_pattern(pat, 64);
        seen += found_dirs.len();
        if let Some(path) = first_in_dirs(&found_dirs, names) {
            // Helpers the library opens by name at run time, which the loader would not find
            // outside its path (NVRTC 13's wheel has no RUNPATH): loaded first, by path.
            if let Some(dir) = path.parent() {
                load_companions(dir, stem);
            }
            let p = path.to_string_lossy().into_owned();
            if dl::open_and_keep(&p).is_ok() {
                return Some(dl::loaded_path(stem).unwrap_or(p));
            }
        }
        if seen > 512 {
            break;
        }
    }
    None
}

/// The file-name prefixes of the libraries that `stem` opens by name at run time from its
/// own folder: NVRTC its builtins (`libnvrtc-builtins.so.13.0`), cuDNN 9 its sub-libraries
/// (`libcudnn_graph.so.9`, `libcudnn_ops.so.9`, …).
pub(crate) fn companion_prefixes(stem: &str) -> &'static [&'static str] {
    match stem {
        "nvrtc" => &["libnvrtc-builtins.so."],
        "cudnn" => &["libcudnn_"],
        _ => &[],
    }
}

/// Loads, by path and kept loaded, the companions of `stem` found in `dir` (see
/// [`companion_prefixes`]); in several passes, since some need others (DT_NEEDED by SONAME).
#[cfg(target_os = "linux")]
fn load_companions(dir: &std::path::Path, stem: &str) {
    let prefixes = companion_prefixes(stem);
    if prefixes.is_empty() {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut todo: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p)) && n.contains(".so") && !n.contains(".alt."))
        .map(|n| dir.join(n).to_string_lossy().into_owned())
        .collect();
    todo.sort();
    while !todo.is_empty() {
        let before = todo.len();
        todo.retain(|p| dl::open_and_keep(p).is_err());
        if todo.len() == before {
            break;
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn search_and_load(stem: &str, _names: &[String], _dirs: &[String]) -> Option<String> {
    // Elsewhere only cudarc's own search by name.
    culib_present(stem).then(|| stem.to_string())
}

/// A CUDA version number as the driver and toolkit encode it (`1000 major + 10 minor`, e.g.
/// 13000 = 13.0, 12080 = 12.8) as `(major, minor)`.
pub fn decode_cuda_version(v: i32) -> (i32, i32) {
    (v / 1000, (v % 1000) / 10)
}

/// The CUDA version the driver supports (`cuDriverGetVersion`, which needs no `cuInit` and no
/// GPU), or why it cannot be read (no driver library).
pub fn driver_version() -> Result<(i32, i32)> {
    if !culib_present("cuda") {
        let s = find_library("cuda");
        return Err(Error::unavailable("cuda", format!("no CUDA driver: {}", s.not_found())));
    }
    let r = std::panic::catch_unwind(|| {
        let mut v = 0i32;
        // SAFETY: the driver library is loadable (checked above); `v` is a valid out pointer.
        let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
        (r, v)
    });
    match r {
        Ok((cudarc::driver::sys::CUresult::CUDA_SUCCESS, v)) => Ok(decode_cuda_version(v)),
        Ok((e, _)) => Err(Error::backend("cuda", format!("cuDriverGetVersion failed: {e:?}"))),
        Err(_) => Err(Error::unavailable("cuda", "the CUDA driver library has no cuDriverGetVersion")),
    }
}

/// A warning about the driver version, if any: cudarc's CUDA-13 bindings time with
/// `cuEventElapsedTime_v2`, which drivers older than CUDA 12.8 lack (`bench` would fail).
pub fn driver_note(driver: (i32, i32)) -> Option<String> {
    (driver < (12, 8)).then(|| {
        format!(
            "driver supports CUDA {}.{} < 12.8: kernels run, but `bench` timing needs cuEventElapsedTime_v2 (CUDA 12.8+ driver)",
            driver.0, driver.1
        )
    })
}

/// What the CUDA backend loads, for `slimgemm info`: one line each for the driver and NVRTC
/// (version and file, or why absent).
pub fn runtime_report() -> Vec<String> {
    let mut out = Vec::new();
    match driver_version() {
        Ok(v) => {
            let path = find_library("cuda").found.unwrap_or_else(|| "libcuda".into());
            out.push(format!("driver: CUDA {}.{} (cuDriverGetVersion; {path})", v.0, v.1));
            out.extend(driver_note(v));
        }
        Err(e) => out.push(format!("driver: absent: {e}")),
    }
    match nvrtc_version() {
        Ok(v) => {
            let path = find_library("nvrtc").found.unwrap_or_else(|| "libnvrtc".into());
            out.push(format!("nvrtc: {}.{} (nvrtcVersion; {path})", v.0, v.1));
        }
        Err(e) => out.push(format!("nvrtc: absent: {e}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_cover_cuda_12_and_13() {
        let n = library_names("nvrtc");
        let pos = |x: &str| n.iter().position(|s| s == x).unwrap_or_else(|| panic!("{x} missing from {n:?}"));
        assert!(pos("libnvrtc.so.13") < pos("libnvrtc.so.12"), "CUDA 13 is tried before 12: {n:?}");
        pos("libnvrtc.so");
        for (stem, want) in [
            ("cublas", "libcublas.so.13"),
            ("cublas", "libcublas.so.12"),
            ("cublasLt", "libcublasLt.so.13"),
            ("cublasLt", "libcublasLt.so.12"),
        ] {
            assert!(library_names(stem).iter().any(|s| s == want), "{want} missing for {stem}");
        }
        // cuSPARSE keeps SONAME .12 in CUDA 13 (version 12.6+); cuDNN 9 is .9; the driver .1.
        assert!(library_names("cusparse").iter().any(|s| s == "libcusparse.so.12"));
        assert!(library_names("cudnn").iter().any(|s| s == "libcudnn.so.9"));
        assert!(library_names("cuda").iter().any(|s| s == "libcuda.so.1"));
        assert!(library_names("cusparseLt").iter().any(|s| s == "libcusparseLt.so.0"));
        let unix = unix_names("nvrtc", &n);
        assert!(unix.iter().all(|s| s == "libnvrtc.so" || s.starts_with("libnvrtc.so.")), "{unix:?}");
        assert!(unix.len() >= 7 && unix.len() < n.len(), "{unix:?} of {n:?}");
    }

    #[test]
    fn dir_patterns_cover_toolkits_and_python_wheels() {
        let p = library_dir_patterns();
        for want in [
            "/usr/local/cuda/lib64",
            "/usr/local/cuda-*/lib64",
            "/usr/local/cuda/targets/*-linux/lib",
            "/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib",
            "/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
            "/usr/lib/python3/dist-packages/nvidia/*/lib",
        ] {
            assert!(p.iter().any(|x| x == want), "{want} missing from {p:?}");
        }
        if let Ok(h) = std::env::var("HOME") {
            assert!(p.contains(&format!("{h}/.venv/lib/python3*/site-packages/nvidia/*/lib")));
        }
    }

    #[test]
    fn wildcards() {
        assert!(wild_match("python3*", "python3.12"));
        assert!(wild_match("cuda-*", "cuda-13.0"));
        assert!(!wild_match("cuda-*", "cuda"));
        assert!(wild_match("*-linux", "x86_64-linux"));
        assert!(wild_match("a*b*c", "aXbYc"));
        assert!(!wild_match("a*b*c", "aXcYb"));
        assert!(wild_match("*", "anything"));
        assert!(wild_match("exact", "exact") && !wild_match("exact", "exact2"));
    }

    #[test]
    fn finds_wheel_libraries_in_a_venv_tree() {
        let root = std::env::temp_dir().join(format!("slimgemm-libsearch-{}", std::process::id()));
        let site = root.join("opt/torch/.venv/lib/python3.12/site-packages/nvidia");
        for (dir, file) in [("cu13/lib", "libnvrtc.so.13"), ("cu13/lib", "libcublas.so.13"), ("cudnn/lib", "libcudnn.so.9")] {
            std::fs::create_dir_all(site.join(dir)).unwrap();
            std::fs::write(site.join(dir).join(file), b"").unwrap();
        }
        std::fs::create_dir_all(site.join("empty")).unwrap(); // no lib folder: skipped
        let pat = format!("{}/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib", root.display());
        let dirs = expand_dir_pattern(&pat, 64);
        assert_eq!(dirs, vec![site.join("cu13/lib"), site.join("cudnn/lib")]);
        assert_eq!(first_in_dirs(&dirs, &library_names("nvrtc")), Some(site.join("cu13/lib/libnvrtc.so.13")));
        assert_eq!(first_in_dirs(&dirs, &library_names("cudnn")), Some(site.join("cudnn/lib/libcudnn.so.9")));
        assert_eq!(first_in_dirs(&dirs, &library_names("cusparse")), None);
        assert!(expand_dir_pattern(&format!("{}/nowhere/*/lib", root.display()), 64).is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn companions_of_nvrtc_and_cudnn() {
        assert_eq!(companion_prefixes("nvrtc"), &["libnvrtc-builtins.so."]);
        assert_eq!(companion_prefixes("cudnn"), &["libcudnn_"]);
        assert!(companion_prefixes("cublas").is_empty());
    }

    #[test]
    fn not_found_lists_names_and_folders() {
        let s = LibrarySearch {
            stem: "nvrtc".into(),
            names: library_names("nvrtc"),
            dirs: vec!["/usr/local/cuda/lib64".into(), "/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib".into()],
            found: None,
        };
        let m = s.not_found();
        for want in [
            "NVRTC not found",
            "libnvrtc.so.13",
            "libnvrtc.so.12",
            "LD_LIBRARY_PATH",
            "/usr/local/cuda/lib64",
            "nvidia/*/lib",
            "SLIMGEMM_CUDA_LIB_DIRS",
        ] {
            assert!(m.contains(want), "`{want}` missing from: {m}");
        }
    }

    #[test]
    fn versions_decode_and_driver_note() {
        assert_eq!(decode_cuda_version(13000), (13, 0));
        assert_eq!(decode_cuda_version(12080), (12, 8));
        assert_eq!(decode_cuda_version(12090), (12, 9));
        assert_eq!(decode_cuda_version(11040), (11, 4));
        assert!(driver_note((12, 4)).is_some_and(|n| n.contains("12.8")));
        assert!(driver_note((12, 8)).is_none() && driver_note((13, 0)).is_none());
    }

    #[test]
    fn runtime_report_names_driver_and_nvrtc_versions() {
        let r = runtime_report();
        assert!(r.iter().any(|l| l.starts_with("driver: ")), "{r:?}");
        let nv = r.iter().find(|l| l.starts_with("nvrtc: ")).expect("an nvrtc line");
        match nvrtc_version() {
            Ok((major, minor)) => {
                assert!(major == 12 || major == 13, "NVRTC {major}.{minor}");
                assert!(nv.starts_with(&format!("nvrtc: {major}.{minor} (nvrtcVersion; ")), "{nv}");
                assert!(find_library("nvrtc").found.is_some_and(|p| p.contains("libnvrtc.so")));
            }
            Err(e) => {
                assert!(std::env::var("SLIMGEMM_REQUIRE_NVRTC").map(|v| v != "1").unwrap_or(true), "NVRTC required: {e}");
                assert!(nv.contains("libnvrtc.so.13") && nv.contains("libnvrtc.so.12"), "{nv}");
            }
        }
    }
}

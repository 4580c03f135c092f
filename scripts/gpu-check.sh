#!/usr/bin/env bash
# The GPU check of slimgemm: in one call, is every kernel right on this machine's hardware,
# is it clean under compute-sanitizer, and how fast is it next to the vendor libraries.
#
# Run from the project root, on a machine with an NVIDIA GPU (it also runs, and says what it
# skipped and why, on a machine without one):
#
#   cargo build --release -p slimgemm-cli --bin slimgemm && bash scripts/gpu-check.sh
#   source .device/env.sh; bash scripts/gpu-check.sh --out gpu-report --budget 420   # from a bundle
#
# Options:
#   --out DIR        where everything goes (default gpu-report/); summary.md is the report
#   --budget SECONDS the whole run's time (default 480; 60 with --tiny). Each step is
#                    time-boxed with `timeout`: a step that overruns is cut and reported.
#   --bin PATH       the slimgemm binary (default: $SLIMGEMM_BIN, .device/bin/slimgemm,
#                    target/release/slimgemm)
#   --dlmc DIR       DLMC matrices (default: $SLIMGEMM_DLMC_DIR, .device/dlmc,
#                    ../shared/data/dlmc, shared/data/dlmc)
#   --tiny           the CI mode: verify --suite small, a 1-row bench, no sanitizer, no full
#                    or DLMC suite
#
# Steps: (1) `slimgemm info` and nvidia-smi; (2) `verify --json` on CUDA and on wgpu (Vulkan);
# (3) compute-sanitizer memcheck and racecheck over `verify --backend cuda --suite small`;
# (4) `bench --suite quick` on CUDA and wgpu with every vendor baseline, then as much of
# `--suite full` and `--suite dlmc` (CUDA) as the budget leaves; (5) summary.md.
#
# Exit status: 0 when everything that ran passed; 1 when a verify row, a sanitizer check or a
# bench row's check failed (or a verify step errored); 2 when nothing failed but a verify or
# sanitizer step was cut by its time box or had no budget left; 64 on bad arguments.
set -uo pipefail

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

out=gpu-report
budget=""
bin="${SLIMGEMM_BIN:-}"
dlmc="${SLIMGEMM_DLMC_DIR:-}"
tiny=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --budget) budget="${2:?--budget needs seconds}"; shift 2 ;;
    --budget=*) budget="${1#--budget=}"; shift ;;
    --bin) bin="${2:?--bin needs a path}"; shift 2 ;;
    --bin=*) bin="${1#--bin=}"; shift ;;
    --dlmc) dlmc="${2:?--dlmc needs a folder}"; shift 2 ;;
    --dlmc=*) dlmc="${1#--dlmc=}"; shift ;;
    --tiny) tiny=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done
[ -n "$budget" ] || { [ "$tiny" = 1 ] && budget=60 || budget=480; }
case "$budget" in ''|*[!0-9]*) echo "gpu-check: --budget must be whole seconds, got '$budget'" >&2; exit 64 ;; esac

if [ -z "$bin" ]; then
  for b in .device/bin/slimgemm target/release/slimgemm; do
    [ -x "$b" ] && { bin="$b"; break; }
  done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "gpu-check: no slimgemm binary (looked at --bin, \$SLIMGEMM_BIN, .device/bin/slimgemm, target/release/slimgemm)." >&2
  echo "  build it: cargo build --release -p slimgemm-cli --bin slimgemm   (or bash scripts/device-bundle)" >&2
  exit 64
fi
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
command -v timeout >/dev/null 2>&1 || { echo "gpu-check: needs coreutils' timeout" >&2; exit 64; }

mkdir -p "$out" || exit 64
out="$(cd "$out" && pwd)"
rm -f "$out"/steps.tsv "$out"/facts.tsv "$out"/*.jsonl "$out"/*.err "$out"/*.log "$out"/summary.md
start=$(date +%s)
reserve=$([ "$tiny" = 1 ] && echo 3 || echo 15) # seconds kept for the summary
export SLIMGEMM_PTX_CACHE="${SLIMGEMM_PTX_CACHE:-${TMPDIR:-/tmp}/slimgemm-ptx-cache}"
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi

log() { echo "gpu-check: $*" >&2; }
left() { echo $((budget - ($(date +%s) - start))); }
fact() { printf '%s\t%s\n' "$1" "$2" >>"$out/facts.tsv"; }
# step NAME STATUS SECONDS BOX NOTE: one row of steps.tsv (tabs and newlines in NOTE flattened)
step_row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$(printf '%s' "$5" | tr '\t\n' '  ')" >>"$out/steps.tsv"; }
skip() { log "skip $1: $2"; step_row "$1" skipped 0 0 "$2"; }

# run NAME CAP STDOUT -- CMD...: runs CMD with stdout to $out/STDOUT and stderr to
# $out/NAME.err, time-boxed to min(CAP, budget left - reserve). Sets $rc.
run() {
  local name="$1" cap="$2" stdout="$3"
  shift 4
  local avail=$(($(left) - reserve))
  local box=$((cap < avail ? cap : avail))
  if [ "$box" -lt 3 ]; then
    skip "$name" "no budget left (${avail}s of ${budget}s after the earlier steps)"
    rc=125
    return
  fi
  log "$name (time box ${box}s): $*"
  local t0
  t0=$(date +%s)
  timeout --kill-after=10 "$box" "$@" >"$out/$stdout" 2>"$out/$name.err"
  rc=$?
  local dur=$(($(date +%s) - t0))
  case $rc in
    0) step_row "$name" ok "$dur" "$box" "" ;;
    124 | 137) step_row "$name" cut "$dur" "$box" "cut by its ${box}s time box; the output before the cut is kept" ;;
    *) step_row "$name" "rc=$rc" "$dur" "$box" "$(grep -v '^\s*$' "$out/$name.err" | tail -n 3)" ;;
  esac
  log "$name: rc=$rc after ${dur}s"
}

# Caps per step: a share of the budget, at least a floor (the budget left still bounds each).
cap() { local share=$1 floor=$2 c=$((budget * $1 / 100)); echo $((c > floor ? c : floor)); }

# ---------------------------------------------------------------------------------------
# 1. The machine: slimgemm info, nvidia-smi, tool versions, commit.
fact mode "$([ "$tiny" = 1 ] && echo tiny || echo full)"
fact budget_s "$budget"
fact binary "$bin"
fact date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fact host "$(uname -n) ($(uname -m), $(uname -r))"
commit="${SLIMGEMM_COMMIT:-}"
if [ -z "$commit" ] && git rev-parse --git-dir >/dev/null 2>&1; then
  commit="$(git rev-parse HEAD 2>/dev/null)"
  [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit+uncommitted-changes"
fi
fact commit "${commit:-unknown (no .git and no SLIMGEMM_COMMIT)}"
fact version "$("$bin" --version 2>&1 | head -n 1)"

run info "$(cap 10 20)" info.txt -- "$bin" info
if command -v nvidia-smi >/dev/null 2>&1; then
  q=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,compute_cap,power.limit,pci.bus_id
  if ! timeout 30 nvidia-smi --query-gpu="$q" --format=csv >"$out/gpu.csv" 2>"$out/nvidia-smi.err"; then
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >"$out/gpu.csv" 2>>"$out/nvidia-smi.err"
  fi
  timeout 30 nvidia-smi >"$out/nvidia-smi.txt" 2>>"$out/nvidia-smi.err"
  fact nvidia_smi "$(tail -n +2 "$out/gpu.csv" | head -n 4 | tr '\n' ';')"
else
  fact nvidia_smi "absent: nvidia-smi is not on PATH (no NVIDIA driver installed here)"
fi
sanitizer=""
for s in "$(command -v compute-sanitizer 2>/dev/null)" /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [ -n "$s" ] && [ -x "$s" ] && { sanitizer="$s"; break; }
done
nvcc="$(command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
fact nvcc "$([ -n "$nvcc" ] && "$nvcc" --version 2>/dev/null | grep -i release | head -n 1 || echo 'absent (not needed: slimgemm compiles with NVRTC)')"
fact compute_sanitizer "$([ -n "$sanitizer" ] && echo "$sanitizer: $("$sanitizer" --version 2>/dev/null | grep -i version | head -n 1)" || echo 'absent: not on PATH, nor in /usr/local/cuda*/bin')"
fact ld_library_path "${LD_LIBRARY_PATH:-unset}"

cuda_ok=0
wgpu_ok=0
cuda_why=""
wgpu_why=""
if grep -q '^cuda: \[0\]' "$out/info.txt" 2>/dev/null; then
  cuda_ok=1
else
  cuda_why="CUDA absent: $(grep -m1 '^cuda: absent' "$out/info.txt" 2>/dev/null | sed 's/^cuda: absent: //')"
  [ "$cuda_why" = "CUDA absent: " ] && cuda_why="CUDA absent: \`slimgemm info\` listed no CUDA device (see info.txt / info.err)"
fi
if grep -q '^wgpu: Device::wgpu() picks' "$out/info.txt" 2>/dev/null; then
  wgpu_ok=1
  fact wgpu_adapter "$(grep -m1 '^wgpu: Device::wgpu() picks' "$out/info.txt" | sed 's/^wgpu: Device::wgpu() picks //')"
else
  wgpu_why="wgpu absent: $(grep -m1 '^wgpu: Device::wgpu() fails' "$out/info.txt" 2>/dev/null | sed 's/^wgpu: Device::wgpu() fails: //')"
fi
fact cuda_available "$cuda_ok"
fact cuda_reason "$cuda_why"
fact wgpu_available "$wgpu_ok"
fact wgpu_reason "$wgpu_why"

# ---------------------------------------------------------------------------------------
# 2. verify: every op x dtype against the CPU reference, on CUDA and on wgpu.
vsuite=verify
[ "$tiny" = 1 ] && vsuite=small
if [ "$cuda_ok" = 1 ]; then
  run verify-cuda "$(cap 18 30)" verify-cuda.jsonl -- "$bin" verify --backend cuda --suite "$vsuite" --json
else
  skip verify-cuda "$cuda_why"
fi
if [ "$wgpu_ok" = 1 ]; then
  run verify-wgpu "$(cap 12 20)" verify-wgpu.jsonl -- "$bin" verify --backend wgpu --suite "$vsuite" --json
else
  skip verify-wgpu "$wgpu_why"
fi

# ---------------------------------------------------------------------------------------
# 3. compute-sanitizer over the small verify list.
for tool in memcheck racecheck; do
  if [ "$cuda_ok" != 1 ]; then
    skip "sanitizer-$tool" "$cuda_why"
  elif [ -z "$sanitizer" ]; then
    skip "sanitizer-$tool" "compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"
  elif [ "$tiny" = 1 ]; then
    skip "sanitizer-$tool" "tiny mode: the sanitizers run in the full check only"
  else
    extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check no)
    run "sanitizer-$tool" "$(cap 18 30)" "sanitizer-$tool.jsonl" -- "$sanitizer" --tool "$tool" ${extra[@]+"${extra[@]}"} --print-limit 100 \
      --error-exitcode 99 --log-file "$out/sanitizer-$tool.log" "$bin" verify --backend cuda --suite small --json
  fi
done

# ---------------------------------------------------------------------------------------
# 4. bench: quick on every GPU backend with every baseline, then full and DLMC on CUDA.
backends=""
[ "$cuda_ok" = 1 ] && backends="cuda"
[ "$wgpu_ok" = 1 ] && backends="${backends:+$backends,}wgpu"
if [ -z "$backends" ]; then
  skip bench-quick "no GPU backend: $cuda_why; $wgpu_why"
elif [ "$tiny" = 1 ]; then
  run bench-quick "$(cap 40 10)" bench-quick.jsonl -- "$bin" bench --suite quick --backend "$backends" --json --limit 1 --iters 3 --warmup 1
else
  iters=50
  [ "$cuda_ok" = 1 ] || iters=10 # a software adapter: the timings mean nothing, keep it short
  run bench-quick "$(cap 20 60)" bench-quick.jsonl -- "$bin" bench --suite quick --backend "$backends" --json --iters "$iters"
fi
if [ -z "$dlmc" ]; then
  for d in .device/dlmc ../shared/data/dlmc shared/data/dlmc; do
    [ -d "$d" ] && { dlmc="$d"; break; }
  done
fi
if [ "$tiny" = 1 ]; then
  skip bench-full "tiny mode: one quick row only"
  skip bench-dlmc "tiny mode: one quick row only"
elif [ "$cuda_ok" != 1 ]; then
  skip bench-full "$cuda_why (the full and DLMC suites are sized for a CUDA GPU)"
  skip bench-dlmc "$cuda_why (the full and DLMC suites are sized for a CUDA GPU)"
else
  # Full gets a bit over half of what is left, DLMC the rest (and what full leaves unused).
  share=$((($(left) - reserve) * 55 / 100))
  run bench-full "$share" bench-full.jsonl -- "$bin" bench --suite full --backend cuda --json --iters 20 --check-max-gflop 2
  if [ -z "$dlmc" ] || [ ! -d "$dlmc" ]; then
    skip bench-dlmc "no DLMC folder (--dlmc, \$SLIMGEMM_DLMC_DIR, .device/dlmc, ../shared/data/dlmc, shared/data/dlmc)"
  else
    fact dlmc "$dlmc"
    run bench-dlmc "$budget" bench-dlmc.jsonl -- "$bin" bench --suite dlmc --dlmc "$dlmc" --backend cuda --json --iters 20 \
      --sparsity 0.7,0.9,0.98 --check-max-gflop 2
  fi
fi

# ---------------------------------------------------------------------------------------
# 5. summary.md
fact total_s "$(($(date +%s) - start))"
if command -v python3 >/dev/null 2>&1; then
  python3 - "$out" <<'PY'
import collections, json, math, os, sys

out = sys.argv[1]
def read(name):
    p = os.path.join(out, name)
    return open(p, errors="replace").read() if os.path.exists(p) else ""
facts = {}
for line in read("facts.tsv").splitlines():
    k, _, v = line.partition("\t")
    facts[k] = v
steps = [l.split("\t") for l in read("steps.tsv").splitlines() if l.strip()]
steps = [s + [""] * (5 - len(s)) for s in steps]
status = {s[0]: s for s in steps}
def jsonl(name):
    rows = []
    for l in read(name).splitlines():
        l = l.strip()
        if l.startswith("{"):
            try:
                rows.append(json.loads(l))
            except ValueError:
                pass
    return rows
def md(s):
    return str(s).replace("|", "\\|").replace("\n", " ")
def short(s, n=300):
    s = md(s)
    return s if len(s) <= n else s[:n] + " ... (in full in info.txt)"
def ran(prefix, names, skipped):
    """(name, status) of each step `prefix-name` that ran; a skipped one gets the report lines
    skipped(name, why) instead, one that never started nothing."""
    for name in names:
        st = status.get(f"{prefix}-{name}")
        if st is None:
            continue
        if st[1] == "skipped":
            L.extend(skipped(name, md(st[4])))
            continue
        yield name, st

failures, incomplete = [], []
L = []
L.append("# slimgemm GPU check")
L.append("")
L.append(f"- date: {facts.get('date_utc', '?')}; host: {facts.get('host', '?')}; mode: {facts.get('mode')}, budget {facts.get('budget_s')} s, took {facts.get('total_s')} s")
L.append(f"- slimgemm: {facts.get('version', '?')}, commit `{facts.get('commit', '?')}`, binary `{facts.get('binary')}`")
L.append(f"- GPU (nvidia-smi: name, driver, memory, max SM clock, max memory clock, compute capability, power limit, bus): {facts.get('nvidia_smi', '?')}")
info = read("info.txt").splitlines()
for prefix, label in [("cuda driver:", "CUDA driver"), ("cuda nvrtc:", "NVRTC")]:
    line = next((l for l in info if l.startswith(prefix)), None)
    L.append(f"- {label}: {short(line[len(prefix):].strip()) if line else '? (see info.txt)'}")
libs = [l[len("cuda library "):] for l in info if l.startswith("cuda library ")]
if libs:
    L.append("- vendor libraries: " + "; ".join(short(l, 160) for l in libs))
devs = [l[len("cuda: "):] for l in info if l.startswith("cuda: [")]
L.append("- CUDA devices: " + ("; ".join(md(d) for d in devs) if devs else short(facts.get("cuda_reason", "none"))))
adapter = facts.get("wgpu_adapter") or ""
software = "Cpu)" in adapter or "llvmpipe" in adapter.lower()
L.append(f"- wgpu adapter: {short(adapter or facts.get('wgpu_reason', '?'))}" + (" (a software adapter: wgpu timings here mean nothing)" if software else ""))
L.append(f"- nvcc: {md(facts.get('nvcc', '?'))}; compute-sanitizer: {md(facts.get('compute_sanitizer', '?'))}")
L.append(f"- LD_LIBRARY_PATH: `{facts.get('ld_library_path', '')}`")
L.append("")
L.append("## Steps")
L.append("")
L.append("| step | status | seconds | time box | note (skipped: why) |")
L.append("|---|---|---|---|---|")
for name, st, dur, box, note in [s[:5] for s in steps]:
    L.append(f"| {name} | {st} | {dur} | {box} | {md(note)} |")
L.append("")

# Verify
L.append("## Verify (every op x dtype vs the CPU reference)")
L.append("")
for be, st in ran("verify", ["cuda", "wgpu"], lambda be, why: [f"- **{be}: skipped**: {why}"]):
    rows = jsonl(f"verify-{be}.jsonl")
    bad = [r for r in rows if not r.get("pass")]
    L.append(f"- **{be}**: {len(rows) - len(bad)} of {len(rows)} rows pass (step: {st[1]}, {st[2]} s)")
    if st[1] != "ok":
        (incomplete if st[1] == "cut" else failures).append(f"verify {be}: step {st[1]}")
    if bad:
        failures.append(f"verify {be}: {len(bad)} failing row(s)")
    per = collections.OrderedDict()
    for r in rows:
        k = (r.get("op"), r.get("dtype"))
        p, f = per.get(k, (0, 0))
        per[k] = (p + 1, f) if r.get("pass") else (p, f + 1)
    if per:
        L.append("")
        L.append(f"| {be}: op | dtype | pass | fail |")
        L.append("|---|---|---|---|")
        for (op, dt), (p, f) in per.items():
            L.append(f"| {op} | {dt} | {p} | {f}{' **FAIL**' if f else ''} |")
        L.append("")
    for r in bad[:40]:
        L.append(f"  - FAIL {r.get('op')} {r.get('dtype')} {r.get('shape')}: max rel err {r.get('max_rel_err')} (tol {r.get('tol')}) {md(r.get('error') or '')}")
L.append("")

# Sanitizers
L.append("## compute-sanitizer (over `verify --backend cuda --suite small`)")
L.append("")
L.append("| tool | status | errors | verify rows pass | note |")
L.append("|---|---|---|---|---|")
import re
for tool, st in ran("sanitizer", ["memcheck", "racecheck"], lambda tool, why: [f"| {tool} | skipped | - | - | {why} |"]):
    log = read(f"sanitizer-{tool}.log")
    errs = [int(x) for x in re.findall(r"ERROR SUMMARY:\s*(\d+)\s+error", log)]
    race = re.findall(r"RACECHECK SUMMARY:\s*(\d+) hazards? displayed \((\d+) errors?, (\d+) warnings?\)", log)
    n = max(errs) if errs else None
    note = st[4]
    if race:
        h, e, w = (int(x) for x in race[-1])
        n = max(n or 0, e)
        note = f"racecheck: {h} hazards ({e} errors, {w} warnings) {note}"
    rows = jsonl(f"sanitizer-{tool}.jsonl")
    good = sum(1 for r in rows if r.get("pass"))
    L.append(f"| {tool} | {st[1]} | {n if n is not None else '? (no summary line)'} | {good} of {len(rows)} | {md(note)} |")
    if n:
        failures.append(f"{tool}: {n} error(s)")
    if st[1] == "cut":
        incomplete.append(f"{tool}: cut by its time box")
    elif st[1] != "ok" and not n:
        failures.append(f"{tool}: step {st[1]}")
    if good < len(rows):
        failures.append(f"{tool}: {len(rows) - good} verify row(s) failed under the sanitizer")
L.append("")
L.append("Details: `sanitizer-<tool>.log`.")
L.append("")

# Bench
def fmt_t(s):
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    return f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} us"
L.append("## Bench")
L.append("")
L.append("Ratios are baseline time / slimgemm time (> 1: slimgemm is faster), measured in the same run.")
L.append("")
for suite, st in ran("bench", ["quick", "full", "dlmc"], lambda suite, why: [f"### {suite}: skipped", "", why, ""]):
    rows = jsonl(f"bench-{suite}.jsonl")
    data = [r for r in rows if r.get("kind") == "row"]
    errs = [r for r in rows if "error" in r and r.get("kind") is None]
    roofs = [r for r in rows if r.get("kind") == "roofline"]
    L.append(f"### {suite}: {len(data)} rows, {len(errs)} errors (step: {st[1]}, {st[2]} s{'; ' + md(st[4]) if st[4] else ''})")
    L.append("")
    for r in roofs:
        L.append(f"- roofline {r.get('backend')}: copy {r.get('copy_gbps') or 0:.1f} GB/s, peak {r.get('peak_gflops') or 0:.1f} GFLOP/s ({md(r.get('peak_what'))}) on {md(r.get('device'))}")
    if roofs:
        L.append("")
    if data:
        L.append("| op | dtype | shape | backend | median | % roofline | check | vs baselines | vs slimgemm CUDA |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in data:
            vs = []
            for b in r.get("baselines") or []:
                if b.get("ratio") is not None:
                    vs.append(f"{b['ratio']:.2f}x {b.get('name')}")
                else:
                    vs.append(f"{b.get('name')}: {b.get('note') or 'missing'}")
            chk = r.get("check") or {}
            c = chk.get("status", "?")
            if c == "fail":
                failures.append(f"bench {suite}: {r.get('op')} {r.get('dtype')} {r.get('shape')} on {r.get('backend')} disagrees with the CPU reference")
                c = f"**FAIL** ({chk.get('max_rel_err')})"
            elif c == "skipped":
                c = "skipped"
            pct = r.get("pct_roofline")
            vc = r.get("vs_cuda")
            L.append(f"| {r.get('op')} | {r.get('dtype')} | {md(r.get('shape'))} | {r.get('backend')} | {fmt_t(r.get('median_s'))} | "
                     f"{'-' if pct is None else f'{pct:.1f}%'} | {c} | {md('; '.join(vs)) or '-'} | {'-' if vc is None else f'{vc:.2f}x'} |")
        L.append("")
    for r in errs:
        failures.append(f"bench {suite}: {r.get('op')} {r.get('dtype')} {r.get('shape')} on {r.get('backend')}: error")
        L.append(f"- ERROR {r.get('op')} {r.get('dtype')} {md(r.get('shape'))} on {r.get('backend')}: {md(r.get('error'))}")
    if errs:
        L.append("")
    if suite == "dlmc" and data:
        g = collections.defaultdict(list)
        for r in data:
            for b in r.get("baselines") or []:
                if b.get("ratio"):
                    g[(r.get("backend"), r.get("sparsity"), b.get("name"))].append(b["ratio"])
        if g:
            L.append("")
            L.append("| backend | sparsity | baseline | geomean speedup | rows |")
            L.append("|---|---|---|---|---|")
            for (be, sp, name), v in sorted(g.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0, kv[0][2])):
                gm = math.exp(sum(math.log(x) for x in v) / len(v))
                L.append(f"| {be} | {sp} | {md(name)} | {gm:.2f}x | {len(v)} |")
        L.append("")

code = 1 if failures else (2 if incomplete else 0)
L.append("## Result")
L.append("")
if failures:
    L.append("**FAIL**: " + "; ".join(md(f) for f in failures[:30]) + (f" (and {len(failures) - 30} more)" if len(failures) > 30 else ""))
elif incomplete:
    L.append("**INCOMPLETE** (nothing failed): " + "; ".join(md(f) for f in incomplete))
else:
    ran = [s[0] for s in steps if s[1] == "ok"]
    L.append("**PASS**: every step that ran passed (" + ", ".join(ran) + "); skipped steps and why are in the Steps table.")
L.append("")
L.append(f"Exit status: {code}. Files: `info.txt`, `gpu.csv`, `verify-*.jsonl`, `sanitizer-*.log`, `bench-*.jsonl`, `steps.tsv`, `*.err`.")
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
open(os.path.join(out, "exit-status"), "w").write(f"{code}\n")
PY
  [ -s "$out/exit-status" ] || echo 1 >"$out/exit-status"
else
  # No python3: a plain summary from the step table and grep counts.
  {
    echo "# slimgemm GPU check (plain summary: python3 not found)"
    echo
    sed 's/^/- /' "$out/facts.tsv"
    echo
    echo "## Steps"
    echo
    echo "| step | status | seconds | time box | note (skipped: why) |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$out/steps.tsv"
    echo
    for f in "$out"/verify-*.jsonl "$out"/sanitizer-*.jsonl; do
      [ -f "$f" ] && echo "- $(basename "$f"): $(grep -c '"pass":true' "$f") pass, $(grep -c '"pass":false' "$f") fail"
    done
    for f in "$out"/sanitizer-*.log; do
      [ -f "$f" ] && echo "- $(basename "$f"): $(grep -h 'ERROR SUMMARY' "$f" | tail -n 1)"
    done
  } >"$out/summary.md"
  code=0
  cat "$out"/verify-*.jsonl "$out"/sanitizer-*.jsonl 2>/dev/null | grep -q '"pass":false' && code=1
  grep -hE 'ERROR SUMMARY: [1-9]' "$out"/sanitizer-*.log >/dev/null 2>&1 && code=1
  awk -F'\t' '$1 ~ /^(verify|sanitizer)/ && $2 ~ /^rc=/ { bad = 1 } END { exit !bad }' "$out/steps.tsv" && code=1
  echo "$code" >"$out/exit-status"
fi
code=$(cat "$out/exit-status")
log "summary: $out/summary.md (exit status $code)"
sed -n '/^## Result/,$p' "$out/summary.md" >&2
exit "$code"

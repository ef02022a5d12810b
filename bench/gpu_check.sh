#!/usr/bin/env bash
# GPU readiness check for w2sprobe, one prepared script, at most 8 minutes on one GPU:
#   1. install the cuML extra matching the installed torch's CUDA (gpu = cuml-cu13 for CUDA 13,
#      gpu-cu12 = cuml-cu12 for CUDA 12; see pyproject.toml), plus faiss-cpu and nnsight when
#      missing, never touching torch (it is pinned to the installed version);      <= 120 s
#   2. run the tests marked gpu (tests/test_gpu.py: CUDA/cuML kNN = CPU neighbours, CUDA/cuML
#      logistic = CPU optimum, bf16 extraction = fp32 within tolerance);             <= 120 s
#   3. run the GPU benchmarks (bench/gpu_bench.py: extraction / bare forward, kNN torch-CUDA vs
#      cuML vs faiss-cpu at 100k x 4096, logistic torch-CUDA vs cuML).               <= 240 s
# Results: $OUT (when set, e.g. on a lent device machine) else bench/out/:
#   gpu_check.txt (summary), gpu_tests.log, gpu_bench.json, gpu_install.log.
#
# Usage: bash bench/gpu_check.sh [--dry-run] [--quick]
#   --dry-run  print what would run and exit 0 (also what happens without a CUDA device)
#   --quick    smaller benchmark sizes
# Environment: PYTHON (default python3); W2SPROBE_WHEELS=DIR installs from wheels in DIR only
# (a machine without a package index: pip download them elsewhere and carry DIR along).
set -u
cd "$(dirname "$0")/.." || exit 1

PY="${PYTHON:-python3}"
RESULTS="${OUT:-bench/out}"
DRY=0
QUICK=""
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        --quick) QUICK="--quick" ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown option '$arg' (use --dry-run, --quick)" >&2; exit 2 ;;
    esac
done

# torch's version, the CUDA it was built for, and whether a CUDA device is usable.
info=$("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda or "none", int(torch.cuda.is_available()))' 2>/dev/null) \
    || info="missing none 0"
read -r TORCH_VERSION TORCH_CUDA HAS_CUDA <<<"$info"
case "$TORCH_CUDA" in
    13.*) EXTRA=gpu ;;
    12.*) EXTRA=gpu-cu12 ;;
    *) EXTRA="" ;;
esac
# The extra's requirement, read from pyproject.toml so the script and the package never disagree.
CUML_REQ=""
if [ -n "$EXTRA" ]; then
    CUML_REQ=$("$PY" -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['$EXTRA']))" 2>/dev/null)
fi
# The other GPU-check needs, with the project's own version ranges.
EXTRAS_REQ="faiss-cpu>=1.8 nnsight>=0.8,<0.9"

plan() {
    echo "gpu_check plan (torch $TORCH_VERSION, built for CUDA $TORCH_CUDA; results in $RESULTS/):"
    if [ -n "$EXTRA" ]; then
        echo "  1. install extra '$EXTRA': $CUML_REQ (skipped if cuml imports), and when missing: $EXTRAS_REQ;"
    else
        echo "  1. install: no cuML extra for CUDA '$TORCH_CUDA' (cuML tests and benchmarks would skip);"
    fi
    echo "     pip -c torch==$TORCH_VERSION (torch is never replaced)${W2SPROBE_WHEELS:+, wheels from $W2SPROBE_WHEELS only}"
    echo "  2. $PY -m pytest -m gpu tests/test_gpu.py -rs   (timeout 120 s) -> $RESULTS/gpu_tests.log"
    echo "  3. $PY bench/gpu_bench.py ${QUICK:+$QUICK }--out $RESULTS/gpu_bench.json   (timeout 240 s)"
    "$PY" bench/gpu_bench.py ${QUICK:+"$QUICK"} --dry-run --out "$RESULTS/gpu_bench.json" 2>/dev/null | sed 's/^/     /'
}

if [ "$DRY" = 1 ] || [ "$HAS_CUDA" != 1 ]; then
    plan
    if [ "$DRY" = 1 ]; then
        echo "gpu_check: dry run: nothing installed or run."
    else
        echo "gpu_check: skipped: no CUDA device (torch $TORCH_VERSION, torch.cuda.is_available() is False)."
    fi
    exit 0
fi

mkdir -p "$RESULTS"
started=$(date +%s)
summary="$RESULTS/gpu_check.txt"
{
    echo "w2sprobe gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "torch $TORCH_VERSION (CUDA $TORCH_CUDA)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
} >"$summary"
plan | tee -a "$summary"

# ---- 1. install ---------------------------------------------------------------------------
constraints=$(mktemp)
echo "torch==$TORCH_VERSION" >"$constraints"
pip_args=(-m pip install -q --disable-pip-version-check --retries 1 --timeout 15 -c "$constraints")
if [ -n "${W2SPROBE_WHEELS:-}" ]; then
    pip_args+=(--no-index --find-links "$W2SPROBE_WHEELS")
fi
install() {  # install "$@" (one group), give up after the group's share of the 120 s
    echo "+ pip install ${*:2} (timeout $1 s)" >>"$RESULTS/gpu_install.log"
    if timeout "$1" "$PY" "${pip_args[@]}" "${@:2}" >>"$RESULTS/gpu_install.log" 2>&1; then
        echo "install ok: ${*:2}" | tee -a "$summary"
    else
        echo "install FAILED (see gpu_install.log): ${*:2}" | tee -a "$summary"
    fi
}
if "$PY" -c 'import cuml' 2>/dev/null; then
    echo "install: cuml already importable" | tee -a "$summary"
elif [ -n "$CUML_REQ" ]; then
    # shellcheck disable=SC2086  # the requirement list is meant to split into words
    install 90 $CUML_REQ
fi
missing=""
"$PY" -c 'import faiss' 2>/dev/null || missing="$missing faiss-cpu>=1.8"
"$PY" -c 'import nnsight' 2>/dev/null || missing="$missing nnsight>=0.8,<0.9"
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    install 30 $missing
fi
"$PY" - <<'EOF' | tee -a "$summary"
import importlib.util
for name in ("cuml", "faiss", "nnsight"):
    print(f"available: {name}: {'yes' if importlib.util.find_spec(name) else 'no (its tests/benchmarks skip)'}")
EOF

# ---- 2. tests marked gpu ------------------------------------------------------------------
set -o pipefail
PYTHONUNBUFFERED=1 timeout 120 "$PY" -m pytest -m gpu tests/test_gpu.py -rs -p no:cacheprovider \
    2>&1 | tee "$RESULTS/gpu_tests.log"
tests_rc=$?
echo "tests: exit $tests_rc; $(grep -E '(passed|failed|skipped|error)' "$RESULTS/gpu_tests.log" | tail -1)" \
    | tee -a "$summary"

# ---- 3. benchmarks --------------------------------------------------------------------------
PYTHONUNBUFFERED=1 timeout 240 "$PY" bench/gpu_bench.py ${QUICK:+"$QUICK"} --out "$RESULTS/gpu_bench.json" \
    2>&1 | grep -v "it/s]" | tail -60
bench_rc=$?
echo "benchmarks: exit $bench_rc (124 = ran out of its 240 s; finished sections are in gpu_bench.json)" \
    | tee -a "$summary"
echo "total: $(( $(date +%s) - started )) s; results in $RESULTS/" | tee -a "$summary"
rm -f "$constraints"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]

#!/usr/bin/env bash
# One short run on a CUDA machine: the test suite on the GPU, the Hessian, surface and optimizer benchmarks on
# the GPU, and the host-synchronization check of the per-step paths; one JSON of timings at the end.
#
#   bash benchmarks/gpu_check.sh [OUT.json]          (default: $OUT/gpu_check.json, else ./gpu_check.json)
#
# Environment: PYTHON (default python3; needs a CUDA build of torch), GPU_CHECK_BUDGET_S (default 460: the whole
# run stays under 8 minutes on one H100), GPU_CHECK_WORKERS (pytest-xdist workers, default 8), GPU_CHECK_DEVICE
# (default cuda; cpu runs every step on the CPU: a dry run of the script itself, not a GPU check),
# GPU_CHECK_TESTS (what pytest runs, default the tests folder).
# Without CUDA it says so, writes {"cuda": false, ...} and exits 0. With CUDA it exits 1 when a step failed or
# ran out of time (the JSON still holds every step's status). Step budgets and what each measures:
# docs/benchmarks/gpu.md.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
JSON="${1:-${OUT:-.}/gpu_check.json}"
BUDGET="${GPU_CHECK_BUDGET_S:-460}"
WORKERS="${GPU_CHECK_WORKERS:-8}"
DEV="${GPU_CHECK_DEVICE:-cuda}"
TESTS="${GPU_CHECK_TESTS:-$ROOT/tests}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$(dirname "$JSON")"

if [[ "$DEV" == cuda* ]] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    why="$("$PY" -c 'import torch; print(f"torch {torch.__version__}, torch.cuda.is_available() is False")' 2>&1 | tail -1)"
    echo "gpu_check: no CUDA device ($why): nothing to check here"
    printf '{"cuda": false, "reason": "%s"}\n' "${why//[\"\\]/}" > "$JSON"
    exit 0
fi

LOGS="$(mktemp -d)"
START=$(date +%s)
STEPS="$LOGS/steps.tsv"
: > "$STEPS"
FAILED=0

# step NAME LIMIT_S COMMAND...: runs COMMAND with at most LIMIT_S seconds (less when the budget is nearly spent)
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - ($(date +%s) - START)))
    if ((left < limit)); then limit=$left; fi
    if ((limit < 10)); then
        echo "gpu_check: $name skipped (budget spent)"
        printf '%s\t%s\t%s\n' "$name" "skipped (budget spent)" "0" >> "$STEPS"
        FAILED=1
        return
    fi
    echo "gpu_check: $name (at most ${limit} s) ..."
    local t0 t1 rc
    t0=$(date +%s%N)
    timeout --signal=INT --kill-after=10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
    rc=$?
    t1=$(date +%s%N)
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(((t1 - t0) / 1000000))" >> "$STEPS"  # milliseconds
    if ((rc != 0)); then
        FAILED=1
        echo "gpu_check: $name failed (exit status $rc); last lines:"
        tail -n 15 "$LOGS/$name.log"
    else
        tail -n 1 "$LOGS/$name.log"
    fi
}

# the cheapest and most telling step first: host synchronizations on the per-step paths
step sync_check 45 "$PY" "$ROOT/benchmarks/sync_check.py" --device "$DEV" --json "$LOGS/sync_check.json"
XDIST=()
if "$PY" -c 'import xdist' 2>/dev/null; then XDIST=(-n "$WORKERS"); fi
# shellcheck disable=SC2086  # GPU_CHECK_TESTS may name several paths
step tests 210 env BASINSCOPE_TEST_DEVICE="$DEV" "$PY" -m pytest -q -m "not slow" ${XDIST[@]+"${XDIST[@]}"} \
    -p no:cacheprovider $TESTS
step hessian 75 "$PY" "$ROOT/benchmarks/bench_hessian.py" --device "$DEV" --parts hvp,native --threads 4 \
    --json "$LOGS/hessian.json"
step surface 45 "$PY" "$ROOT/benchmarks/bench_surface.py" --device "$DEV" --parts inprocess --resolution 11 \
    --repeats 2 --json "$LOGS/surface.json"
step optim 75 "$PY" "$ROOT/benchmarks/bench_optim.py" --device "$DEV" --reps 2 --json "$LOGS/optim.json"

"$PY" - "$LOGS" "$JSON" "$START" << 'EOF'
import json, sys, time
from pathlib import Path

import torch

logs, out, start = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
cuda = torch.cuda.is_available()
result = {
    "cuda": cuda,
    "device": torch.cuda.get_device_name(0) if cuda else "cpu (dry run: GPU_CHECK_DEVICE=cpu)",
    "torch": torch.__version__,
    "cuda_version": torch.version.cuda,
    "wall_seconds": round(time.time() - start, 1),
    "steps": {},
}
for line in (logs / "steps.tsv").read_text().splitlines():
    name, rc, ms = line.split("\t")
    row = {"exit_status": rc, "seconds": int(ms) / 1000}
    log = logs / f"{name}.log"
    if log.is_file():
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        row["last_line"] = lines[-1] if lines else ""
    data = logs / f"{name}.json"
    if data.is_file():
        row["results"] = json.loads(data.read_text())
    result["steps"][name] = row
result["ok"] = all(r["exit_status"] == "0" for r in result["steps"].values())
out.write_text(json.dumps(result, indent=1))
print(f"gpu_check: {'all steps passed' if result['ok'] else 'FAILED'} in {result['wall_seconds']} s; timings: {out}")
EOF
exit "$FAILED"

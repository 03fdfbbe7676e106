#!/usr/bin/env bash
# Everything the H200 should tell us about issue 15, in at most 9 minutes.
#
#   bash bench/gpu_run.sh prepare [PAYLOAD]   # here (with PyPI): data + wheels -> PAYLOAD
#   bash bench/gpu_run.sh run OUT [PAYLOAD]   # on the GPU machine: figures as JSON under OUT
#   bash bench/gpu_run.sh dry-run OUT         # on a CPU: the same steps, tiny, in seconds
#
# PAYLOAD (default runs/gpu_payload, ignored by git) holds the stockmark data and the wheels the
# device image lacks (pydantic and its three helpers; the image has torch 2.11, transformers 5.17,
# no pydantic and no internet). Carry it with the working tree (device.run carry=[PAYLOAD]).
#
# Steps, each under its own time limit so that a crash or a hang in one loses none of the others:
#   train-<variant>.json  bench/train_throughput.py, one variant per process: the naive
#                         baseline, packed, packed-compile, packed-flex-compile (Qwen2-0.5B shape)
#   real-data.json        from scratch on the stockmark data, 90/10 split, a set number of epochs,
#                         held-out word-level F1, tokens/s without the compile warm-up
#   infer.json            bench/infer_throughput.py: 0.5B shape, 64 new tokens, records/s of
#                         today's path, dynamic vs static cache, batch 64 and 256
#   summary.json          every JSON above in one file, plus each step's exit status and seconds
#   run.log               everything printed
# At most 8 files: what the device tool brings back from OUT.
set -uo pipefail

MODE="${1:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"

case "$MODE" in
prepare)
    PAYLOAD="${2:-$ROOT/runs/gpu_payload}"
    mkdir -p "$PAYLOAD/data" "$PAYLOAD/wheels"
    DATA="${MMM_SHARED_DATA:-$ROOT/../shared/data}/stockmark-ner-ja/ner.jsonl"
    cp "$DATA" "$PAYLOAD/data/ner.jsonl" || exit 1
    PIP="${PIP:-$PY -m pip}"
    for spec in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
        typing-inspection==0.4.5; do
        $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "$PAYLOAD/wheels" "$spec" || exit 1
    done
    du -sh "$PAYLOAD"
    exit 0
    ;;
run | dry-run) ;;
*)
    sed -n '2,8p' "$0"
    exit 2
    ;;
esac

OUT="${2:?usage: gpu_run.sh $MODE OUT [PAYLOAD]}"
PAYLOAD="${3:-$ROOT/runs/gpu_payload}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/run.log"
STATUS="$(mktemp)"
WORK="$(mktemp -d)"
cd "$ROOT" || exit 1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ "$MODE" = run ]; then
    if ! "$PY" -c "import pydantic" 2>/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --target "$WORK/site" "$PAYLOAD"/wheels/*.whl >>"$LOG" 2>&1 || {
            echo "could not install the wheels of $PAYLOAD/wheels" | tee -a "$LOG"
        }
        export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    DATA="$PAYLOAD/data/ner.jsonl"
    BUDGET=530  # seconds for all steps; each step's limit is also capped by what is left
    TRAIN_ARGS=(--max-minutes 1.0 --max-steps 40)
    VARIANTS=(baseline packed packed-compile packed-flex-compile)
    LIMITS=(75 75 100 100)
    REAL_ARGS=(--real-epochs 3)
    REAL_LIMIT=150
    INFER_ARGS=(--shape 0.5b --records 1024 --new-tokens 64 --batches 64,256 --caches dynamic,static)
    INFER_LIMIT=130
else
    DATA="${MMM_SHARED_DATA:-$ROOT/../shared/data}/stockmark-ner-ja/ner.jsonl"
    BUDGET=600
    TRAIN_ARGS=(--smoke)
    VARIANTS=(baseline packed)
    LIMITS=(120 120)
    REAL_ARGS=(--smoke --real-epochs 1)
    REAL_LIMIT=240
    INFER_ARGS=(--shape tiny --records 8 --new-tokens 4 --batches 4 --caches dynamic,static)
    INFER_LIMIT=120
fi
T0=$(date +%s)

# step NAME LIMIT COMMAND...: run under min(LIMIT, what is left of BUDGET); note status and time
step() {
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET - ($(date +%s) - T0)))
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped, ${left}s left of the budget" | tee -a "$LOG"
        echo "$name skipped 0" >>"$STATUS"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
    local t=$(date +%s)
    timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $(($(date +%s) - t))s" | tee -a "$LOG"
    echo "$name $rc $(($(date +%s) - t))" >>"$STATUS"
}

{ nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"; \
  "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"; \
} >>"$LOG" 2>&1

for i in "${!VARIANTS[@]}"; do
    v="${VARIANTS[$i]}"
    step "train-$v" "${LIMITS[$i]}" "$PY" bench/train_throughput.py "${TRAIN_ARGS[@]}" \
        --variants "$v" --no-write --json "$OUT/train-$v.json"
done
step real-data "$REAL_LIMIT" "$PY" bench/train_throughput.py "${REAL_ARGS[@]}" --variants "" \
    --real-data --data "$DATA" --work-dir "$WORK/real" --no-write --json "$OUT/real-data.json"
step infer "$INFER_LIMIT" "$PY" bench/infer_throughput.py "${INFER_ARGS[@]}" --data "$DATA" \
    --json "$OUT/infer.json"

"$PY" - "$OUT" "$STATUS" "$MODE" <<'PYEOF' >>"$LOG" 2>&1
import json, sys
from pathlib import Path
out, status, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
steps = {}
for line in status.read_text().splitlines():
    name, rc, seconds = line.split()
    steps[name] = {"exit": rc, "seconds": int(seconds)}
    path = out / f"{name}.json"
    if path.is_file():
        steps[name]["figures"] = json.loads(path.read_text())
(out / "summary.json").write_text(json.dumps({"mode": mode, "steps": steps}, indent=2) + "\n")
print(json.dumps({k: {"exit": v["exit"], "seconds": v["seconds"]} for k, v in steps.items()}))
PYEOF
echo "done in $(($(date +%s) - T0))s; results under $OUT" | tee -a "$LOG"
rm -rf "$WORK" "$STATUS"

#!/usr/bin/env bash
# The one script a GPU session runs on the device machine (training/README.md, "On a GPU"):
#
#   run(command="BUDGET_S=480 bash training/device-run.sh", carry=[".cache/pack"], timeout_s=600)
#
# Trains train_v2.py from the shipped ONNX (pipelines/train-v2-gpu.yaml) for BUDGET_S seconds of
# wall time (loading included; the step count is fitted to it after warm-up), then exports the
# float ONNX. Everything lands in $OUT, which the device tool brings back even when the command
# is killed at its limit: ckpt.pt (written every minute), log.jsonl, train.log, model/model.onnx,
# model/card.json. A progress line is printed every few seconds.
#
# Environment:
#   BUDGET_S  training wall-clock budget in seconds (default 480; keep 60+ s under timeout_s)
#   BENCH=N   only time N steps (after 2 warm-up steps) and exit
#   EXTRA     more train_v2.py flags, e.g. EXTRA='--set batch=2048 --set lr=0.0008'
#   PY        python with PyTorch (default python3)
# Resume: a checkpoint at .cache/resume/ckpt.pt (carried) or .cache/device-work/ckpt.pt (left by
# an earlier call on a machine still warm) is continued instead of starting from the ONNX.
set -uo pipefail
OUT=${OUT:-.cache/device-out}
PY=${PY:-python3}
BUDGET_S=${BUDGET_S:-480}
EXTRA=${EXTRA:-}
CONFIG=pipelines/train-v2-gpu.yaml
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" .cache/device-work

if [ ! -f .cache/pack/train.bin ]; then
  echo "no .cache/pack/train.bin: run training/pack.py on the dev box and carry .cache/pack" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
$PY -c "import torch, onnx, PIL; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'onnx', onnx.__version__)" || exit 3

if [ -n "${BENCH:-}" ]; then
  # shellcheck disable=SC2086
  $PY training/train_v2.py --config $CONFIG --bench "$BENCH" $EXTRA 2>&1 | tee "$OUT/bench.log"
  exit "${PIPESTATUS[0]}"
fi

for previous in .cache/device-work/ckpt.pt .cache/resume/ckpt.pt; do
  if [ -f "$previous" ] && [ ! -f "$OUT/ckpt.pt" ]; then
    cp "$previous" "$OUT/ckpt.pt" && echo "resuming from $previous"
  fi
done

# shellcheck disable=SC2086
$PY training/train_v2.py --config $CONFIG --set "work=$OUT" --set "time_budget_s=$BUDGET_S" $EXTRA 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
[ -f "$OUT/ckpt.pt" ] || { echo "no checkpoint written (train_v2.py exit $status)" >&2; exit 4; }
cp "$OUT/ckpt.pt" .cache/device-work/ckpt.pt
$PY training/export.py --checkpoint "$OUT/ckpt.pt" --name model --out "$OUT" 2>&1 | tee -a "$OUT/train.log"
ls -la "$OUT" "$OUT/model"
exit "$status"

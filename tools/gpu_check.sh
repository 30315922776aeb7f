#!/usr/bin/env bash
# The GPU path in one command, for a machine with a CUDA device:
#   1. every chapter's smoke profile with backend=torch, device=cuda (papermill);
#   2. a timing of the heaviest paper-profile experiment on the GPU, for at most
#      $BUDGET seconds: finished grid points are stored as they complete, so the time per
#      point and the expected total are printed even when the budget ends the run.
# Usage: tools/gpu_check.sh [heaviest-experiment]   (outputs under ${OUT:-gpu-check}/)
set -uo pipefail
cd "$(dirname "$0")/.."
heaviest=${1:-figG_gia_restoration}
out=${OUT:-gpu-check}
budget=${BUDGET:-300}
mkdir -p "$out"
export NFD_RESULTS="$out/results" NFD_LEDGER="$out/ledger" MPLBACKEND=Agg
python - <<'PY' || exit 1
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PY
status=0
for nb in book/*.ipynb; do
  name=$(basename "$nb")
  t0=$(date +%s)
  if papermill --cwd book -p profile smoke -p backend torch -p device cuda "$nb" "$out/$name" \
       --no-progress-bar > "$out/${name%.ipynb}.log" 2>&1; then
    printf '%-28s smoke on cuda: ok   %4d s\n' "$name" "$(( $(date +%s) - t0 ))"
  else
    printf '%-28s smoke on cuda: FAILED (see %s)\n' "$name" "$out/${name%.ipynb}.log"; status=1
  fi
done
echo "timing $heaviest (paper profile, torch on cuda, budget ${budget} s)"
t0=$(date +%s)
timeout "$budget" python -m nfdlib run "$heaviest" --set profile=paper --set backend=torch \
  --set device=cuda --json "$out/$heaviest.json" > "$out/$heaviest.log" 2>&1
rc=$?
python - "$out/results/$heaviest" "$(( $(date +%s) - t0 ))" "$rc" <<'PY'
import json, sys
from pathlib import Path
folder, seconds, rc = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
done = sorted(folder.glob("*/points/*.json"))
print(f"{len(done)} grid points finished in {seconds} s (exit {rc}: {'complete' if rc == 0 else 'budget reached' if rc == 124 else 'error'})")
if done:
    print(f"{seconds / len(done):.1f} s per point on this GPU")
PY
exit $status

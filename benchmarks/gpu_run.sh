#!/usr/bin/env bash
# The one prepared GPU run: exact resume, throughput and time to quality against the posts'
# own loops, chapters 01-10 in full mode (chapter 00 trains its toys on the CPU wherever it
# runs), then each speed option alone and all together, all on one device, written to $OUT.
# The device tool lends one call of at most 10 minutes, so the run has a budget
# (GPU_RUN_SECONDS, default 560): the parts run in the order of their worth, each within its
# own limit and the time left, and a part that finds too little left is skipped and logged.
# Results are packed into $OUT after every part (the tool returns at most 8 files), so a run
# cut off still returns what it did; `--parts` runs only the named parts, for a second call.
# To prove it end to end without a GPU:
#
#     OUT=/tmp/gpu GPU_RUN_SECONDS=3600 bash benchmarks/gpu_run.sh --device cpu --smoke
#
# The device machine's python3 has torch, torchvision, matplotlib and tqdm, but none of the
# Jupyter packages that run a notebook. Download their wheels here first, and carry them
# and the offline data in the device tool's call (`carry: [".gpu-wheels", "data"]`):
#
#     pip download --dest .gpu-wheels --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
#       nbclient nbformat ipykernel ipywidgets
#     bash benchmarks/gpu_run.sh            # on the device; OUT is set there
set -uo pipefail
DEVICE=cuda SMOKE="" PARTS="" BUDGET=${GPU_RUN_SECONDS:-560}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --parts) PARTS=" $2 "; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
: "${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
WORK=$(mktemp -d)
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
if [ -d "$ROOT/.gpu-wheels" ]; then
  python -m pip install -q --no-index --find-links "$ROOT/.gpu-wheels" nbclient nbformat \
    ipykernel ipywidgets >>"$OUT/gpu_run.log" 2>&1
fi
export GAN_RESULTS_DIR="$WORK" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu_run.log"; }
pack() {  # results files into one archive, the executed notebooks into two (16 MiB a file)
  tar czf "$OUT/gpu_results.tar.gz" -C "$WORK" --exclude=./notebooks .
  local half
  for half in 0 1; do
    ls "$WORK"/notebooks/*.ipynb 2>/dev/null | awk -v h=$half 'NR % 2 == h' |
      sed "s|^$WORK/||" | tar czf "$OUT/gpu_notebooks_$half.tar.gz" -C "$WORK" -T -
  done
}
part() {  # part NAME SECONDS command...: run within its limit and the budget, log how it ended
  local name=$1 limit=$2 left=$((BUDGET - SECONDS)); shift 2
  if [ -n "$PARTS" ] && [[ "$PARTS" != *" $name "* ]]; then return; fi
  if [ "$left" -lt 20 ]; then log "skip $name: ${left}s of the ${BUDGET}s budget left"; return; fi
  if [ "$limit" -gt "$left" ]; then limit=$left; fi
  log "start $name (limit ${limit}s)"
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" >>"$OUT/gpu_run.log" 2>&1
  log "end $name: exit $? after $((SECONDS - t0))s"
  pack
}
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee -a "$OUT/gpu_run.log"
if [ -n "$SMOKE" ]; then
  RC="--steps 4"; TP="--steps 3 --warmup 2 --repeats 1"; TTQ="--steps 20 --eval-every 10 --cap 30"
  NB="--smoke"
else
  RC=""; TP="--seconds 1 --warmup 20 --repeats 2"; TTQ="--cap 40 --eval-every 50"; NB=""
fi
part resume 60 python resume_check.py --device "$DEVICE" $RC --save resume-$DEVICE
part resume-deterministic 60 python resume_check.py --device "$DEVICE" $RC --deterministic \
  --save resume-$DEVICE-deterministic
part throughput 90 python throughput.py --device "$DEVICE" $TP --save throughput-$DEVICE
part notebooks 360 python notebooks.py $NB --only 01 02 03 04 05 06 07 08 09 10 --timeout 280 \
  --keep "$WORK/notebooks" --save notebooks-$DEVICE
part time-to-quality 150 python time_to_quality.py --device "$DEVICE" $TTQ --runs dcgan post-002 \
  --save time-to-quality-$DEVICE
part throughput-all 120 python throughput.py --device "$DEVICE" $TP --models mlp lenet-deconv dcgan \
  --bf16 --channels-last --cudnn-benchmark --compile --save throughput-$DEVICE-all
for option in bf16 channels-last cudnn-benchmark compile; do
  part "throughput-$option" 60 python throughput.py --device "$DEVICE" $TP --models mlp dcgan \
    --$option --save "throughput-$DEVICE-$option"
done
part time-to-quality-all 90 python time_to_quality.py --device "$DEVICE" $TTQ --runs dcgan \
  --bf16 --channels-last --cudnn-benchmark --save time-to-quality-$DEVICE-all
log "done after ${SECONDS}s: $(tar tzf "$OUT/gpu_results.tar.gz" | grep -c json) results files"

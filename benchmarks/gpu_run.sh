#!/usr/bin/env bash
# The one prepared GPU run: every chapter in full mode, throughput and time to quality
# against the posts' own loops with each speed option alone and all together, and exact
# resume, all on one device, written to $OUT (results files, executed notebooks, a log).
# It is sized to finish in under 8 minutes on an H100/H200; each part has its own limit,
# so one that hangs cannot take the rest down. The device tool returns at most 8 files, so
# everything but the log is packed into $OUT/gpu_results.tar.gz. To prove it end to end
# without a GPU:
#
#     OUT=/tmp/gpu bash benchmarks/gpu_run.sh --device cpu --smoke
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
DEVICE=cuda SMOKE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
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
part() {  # part NAME SECONDS command...: run with a time limit, log how it ended
  local name=$1 limit=$2; shift 2
  log "start $name (limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@" >>"$OUT/gpu_run.log" 2>&1
  log "end $name: exit $? after $(( SECONDS - t0 ))s"
}
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee -a "$OUT/gpu_run.log"
if [ -n "$SMOKE" ]; then
  TP="--steps 3 --warmup 2 --repeats 1"; TTQ="--steps 20 --eval-every 10 --cap 30"; NB="--smoke"
else
  TP="--seconds 1 --warmup 20 --repeats 2"; TTQ="--cap 40 --eval-every 50"; NB=""
fi
part resume 60 python resume_check.py --device "$DEVICE" --save resume-$DEVICE
part throughput 120 python throughput.py --device "$DEVICE" $TP --save throughput-$DEVICE
part throughput-all 120 python throughput.py --device "$DEVICE" $TP --models mlp lenet-deconv dcgan \
  --bf16 --channels-last --cudnn-benchmark --compile --save throughput-$DEVICE-all
for option in bf16 channels-last cudnn-benchmark compile; do
  part "throughput-$option" 60 python throughput.py --device "$DEVICE" $TP --models mlp dcgan \
    --$option --save "throughput-$DEVICE-$option"
done
part time-to-quality 150 python time_to_quality.py --device "$DEVICE" $TTQ --runs dcgan post-002 \
  --save time-to-quality-$DEVICE
part time-to-quality-all 90 python time_to_quality.py --device "$DEVICE" $TTQ --runs dcgan \
  --bf16 --channels-last --cudnn-benchmark --save time-to-quality-$DEVICE-all
part notebooks 300 python notebooks.py $NB --timeout 280 --keep "$WORK/notebooks" \
  --save notebooks-$DEVICE
tar czf "$OUT/gpu_results.tar.gz" -C "$WORK" .
log "done: $(tar tzf "$OUT/gpu_results.tar.gz" | wc -l) entries in $OUT/gpu_results.tar.gz"

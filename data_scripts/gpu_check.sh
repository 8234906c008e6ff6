#!/usr/bin/env bash
# Every GPU figure of the course in one run (about 9 minutes on an H100, more with the colab step), most important
# first: the colab profile under a T4's memory and its data simulated on the GPU; the training step at the paper's
# size in both memory layouts; overlap-tile inference against MONAI; on the cpu profile's simulated
# dataset, two learning curves (the cpu profile's model and the paper's) with held-out Dice; the compiled training
# step; the small profiles; the CLI end to end (train, evaluate, score).
#   OUT=folder bash data_scripts/gpu_check.sh        (prints everything and keeps a copy in $OUT/gpu_check.log)
set -u
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
exec > >(tee "$OUT/gpu_check.log") 2>&1
step() { echo; echo "### $(date +%T) $*"; }

step environment
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
DATA=$($PY -c "from mvgtutor.paths import data_root; print(data_root())")/shrec-sim-cpu
MVGTUTOR_PROFILE=cpu timeout 200 $PY -m mvgtutor simulate --default > "$OUT/simulate.log" 2>&1 &  # CPU, meanwhile
SIMULATE=$!  # wait for this PID only: a bare `wait` would also wait for the tee above, which never ends

step "colab profile as on a T4 (memory capped to a T4's, fp16), then its data simulated on this GPU"
timeout 240 $PY -m mvgtutor bench --profiles colab --steps 5 --inference-size 128 --inference-batch 64 \
    || echo "bench colab failed or timed out"
( time MVGTUTOR_PROFILE=colab MVGTUTOR_DATA_DIR="$OUT/data" timeout 300 $PY -m mvgtutor simulate --default ) \
    || echo "colab simulation failed or timed out"
step "training step at paper size (C=256, Ln=12, P3DA, batch 72, bf16): channels-first, then channels-last"
timeout 150 $PY -m mvgtutor bench --profiles paper --memory-format channels_first --steps 5 --inference-size 128 \
    --inference-batch 64 --no-memory-estimate || echo "bench channels_first failed or timed out"
timeout 120 $PY -m mvgtutor bench --profiles paper --memory-format channels_last --steps 5 --inference-size 128 \
    --inference-batch 64 --no-flops --no-memory-estimate || echo "bench channels_last failed or timed out"
step "overlap-tile inference vs MONAI sliding_window_inference (paper-size model, fp32, 128^3)"
timeout 120 $PY data_scripts/bench_inference.py --size 128 --profile paper --batch 64 --repeats 2 || echo "failed"

wait $SIMULATE; cat "$OUT/simulate.log"
step "learning curves on the cpu dataset (both at once on the one GPU: wall times are shared)"
timeout 150 $PY data_scripts/learning_curve.py --profile cpu --data $DATA --seconds ${CPU_MODEL_SECONDS:-100} \
    --every 500 --label "[cpu model] " & CURVES="$!"
timeout 150 $PY data_scripts/learning_curve.py --profile cpu --data $DATA --seconds ${CPU_MODEL_SECONDS:-100} \
    --every 500 --set lr=3e-3 --label "[cpu model, lr 3e-3] " & CURVES="$CURVES $!"
timeout 150 $PY data_scripts/learning_curve.py --profile paper --data $DATA --batch 16 --seconds ${PAPER_SECONDS:-100} \
    --every 200 --label "[paper model] " & CURVES="$CURVES $!"
wait $CURVES
step "training step at paper size, compiled (torch.compile, channels-last; compile time is in the warm-up)"
timeout 150 $PY -m mvgtutor bench --profiles paper --memory-format channels_last --compile --steps 5 \
    --inference-size 64 --no-flops --no-memory-estimate || echo "compiled bench failed or timed out"
step "test and cpu profiles on the GPU"
timeout 60 $PY -m mvgtutor bench --profiles test cpu --steps 5 --inference-size 128 --no-flops --no-memory-estimate \
    || echo "failed"
step "CLI end to end on $DATA: train the paper-size model 4 epochs, evaluate model_3, score"
timeout 120 $PY -m mvgtutor train --data $DATA --out /tmp/gpu_run --profile paper --epochs 4 --quiet || echo "train failed"
$PY -c "import json; [print(e) for e in json.load(open('/tmp/gpu_run/history.json'))]"
timeout 90 $PY -m mvgtutor evaluate --run /tmp/gpu_run --data $DATA --tomogram model_3 --out /tmp/pred.mrc > /dev/null \
    && timeout 60 $PY -m mvgtutor score --pred /tmp/pred.mrc --truth $DATA/model_3/class_mask.mrc --json \
    | $PY -c "import json, sys; s = json.load(sys.stdin); print('scored: mIoU', s['miou'], 'mean Dice', s['mean_dice'])"

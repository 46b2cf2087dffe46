#!/usr/bin/env bash
# The GPU measurements in one short run, on a machine with torch and transformers but no
# network: TRL and its `datasets` come as wheels in .whl/, the HH pairs and the tokenizer
# in .gpu/ (see docs/benchmarks.md). Results go to $OUT (or ./gpu-results). The wheels go
# to a folder named site-packages: dill (under `datasets`) pickles modules from any other
# folder by value, which fails on pyarrow's types.
#   bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site-packages .whl/*.whl && export PYTHONPATH=/tmp/site-packages || exit 1
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)" | tee -a "$OUT/device.txt"
DATA=.gpu/hh-rlhf-harmless-dev.jsonl
MODEL="--data $DATA --model qwen2.5-0.5b-shaped --tokenizer .gpu/tokenizer --max-length 1024"
COMMON="$MODEL --test-pairs 200"
timeout 200 python3 benchmarks/train_vs_trl.py $COMMON --steps 40 --warmup 8 \
  --json-out "$OUT/train.json" 2>&1 | tee "$OUT/train.txt" | grep -v -i warn
timeout 90 python3 benchmarks/score_vs_pipeline.py $MODEL --rows 1000 2>&1 \
  | tee "$OUT/score.txt" | grep -v -i warn
timeout 150 python3 benchmarks/train_vs_trl.py $COMMON --steps 30 --warmup 6 \
  --gradient-checkpointing --json-out "$OUT/train_ckpt.json" 2>&1 | tee "$OUT/train_ckpt.txt" \
  | grep -v -i warn

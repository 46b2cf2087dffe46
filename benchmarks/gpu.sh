#!/usr/bin/env bash
# The GPU measurements in one short run, on a machine with torch and transformers but no
# network: TRL and its `datasets` come as wheels in .whl/, the HH pairs and the tokenizer
# in .gpu/ (see docs/benchmarks.md). Results go to $OUT (or ./gpu-results). The wheels go
# to a folder named site-packages: dill (under `datasets`) pickles modules from any other
# folder by value, which fails on pyarrow's types.
#   bash benchmarks/gpu.sh               # all the comparisons
#   bash benchmarks/gpu.sh train train_16k  # some of them
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site-packages .whl/*.whl && export PYTHONPATH=/tmp/site-packages || exit 1
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)" | tee -a "$OUT/device.txt"
WANTED="$*"
DATA=.gpu/hh-rlhf-harmless-dev.jsonl
COMMON="--settings matched --data $DATA --model qwen2.5-0.5b-shaped --tokenizer .gpu/tokenizer --max-length 1024 --test-pairs 200 --steps 30 --warmup 6"
wanted() { [[ -z "$WANTED" || " $WANTED " == *" $1 "* ]] && echo "== $1"; }
bench() {  # NAME TIMEOUT ARGS...: one comparison, its table on the console, all of it in $OUT
  local name=$1 limit=$2; shift 2
  wanted "$name" || return
  timeout "$limit" python3 benchmarks/train_vs_trl.py $COMMON "$@" --json-out "$OUT/$name.json" \
    > "$OUT/$name.txt" 2>&1
  grep -E "^(trainer|trl |prefhub |prefhub /)|compiled|failed|Error" "$OUT/$name.txt" | head -20
}
bench train 250 --profile-steps 3                 # the product's defaults against TRL's
bench train_ckpt 150 --gradient-checkpointing     # both with gradient checkpointing
bench train_eager 80 --only prefhub --compile off # what compiling the layers adds
if wanted score; then  # the scorer against transformers' pipeline, same model and rows
  timeout 90 python3 benchmarks/score_vs_pipeline.py --data $DATA --model qwen2.5-0.5b-shaped \
    --tokenizer .gpu/tokenizer --max-length 1024 --rows 1000 2>&1 | tee "$OUT/score.txt" \
    | grep -v -i warn
fi
bench train_16k 150 --only prefhub --tokens-per-batch 16384 --steps 20 --warmup 4  # more work for each step
# Several GPUs: both trainers on every GPU, each GPU with the 16 pairs a step it had alone.
GPUS=$(nvidia-smi -L | wc -l)
if [ "$GPUS" -ge 2 ]; then
  bench train_gpus 400 --processes "$GPUS" --batch-size $((16 * GPUS))
  bench train_gpus_ckpt 300 --processes "$GPUS" --batch-size $((16 * GPUS)) --gradient-checkpointing
elif wanted train_gpus; then
  echo "one GPU here: the several-GPU comparison (train_gpus) needs two or more"
fi

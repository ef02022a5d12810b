#!/bin/bash
# The committed views (docs/results/views/): sst2, cola and tweet_eval_hate with the demo's
# models (weak minilm, strong mpnet), modest sizes so the whole script runs in minutes on 2 cores.
#   bash bench/views.sh [OUT=docs/results/views] [CACHE=cache]
set -euo pipefail
OUT=${1:-docs/results/views}
CACHE=${2:-cache}
for dataset in sst2 cola tweet_eval_hate; do
  nice w2sprobe view --dataset "$dataset" --weak minilm --strong mpnet \
    --n-train 1000 --n-val 200 --n-test 200 --data-dir "${W2SPROBE_DATA_DIR:-../shared/data}" \
    --cache-dir "$CACHE" --top 15 --align --out "$OUT/$dataset"
done

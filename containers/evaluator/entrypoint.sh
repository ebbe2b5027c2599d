#!/bin/sh
# evaluate TASK under the evaluation container contract (docs/evaluation.md): the predictions in /input
# (/input/predictions.csv, or /input/<case_id>/ folders; /input/predictions.json describes them), the ground truth
# read-only at /opt/ml/input/data/ground_truth (its manifest at /opt/ml/input/data/dataset.json); writes
# /output/metrics.json. The task is the first argument, else $SPINEBENCH_TASK.
set -eu
task=${1:-${SPINEBENCH_TASK:?usage: TASK_ID (or set SPINEBENCH_TASK)}}
predictions=/input
if [ -f /input/predictions.csv ]; then predictions=/input/predictions.csv; fi
exec python3 -m evaluators.cli evaluate "$task" --predictions "$predictions" \
  --ground-truth /opt/ml/input/data/ground_truth --output /output/metrics.json --quiet

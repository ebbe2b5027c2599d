#!/bin/sh
# evaluate TASK: predictions mounted at /predictions (a CSV file or PRED/<case_id>/ folders), the dataset (or its
# ground_truth/ folder) at /dataset, both read-only; writes /output/metrics.json.
set -eu
task=${1:?usage: TASK_ID [PREDICTIONS_PATH]}
predictions=${2:-/predictions}
exec python3 -m evaluators.cli evaluate "$task" --predictions "$predictions" --ground-truth /dataset \
  --output /output/metrics.json --quiet

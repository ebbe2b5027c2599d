"""The preset each method is trained with by default in the background (`make run`, `spinebench bootstrap`): the
cheapest preset that beats its task's trivial reference (``baselines.references``) on the bundled data, within a
background budget of about 45 minutes on two CPU cores for all methods together.

- ``aasce-cobb``: ``standard``. In baselines/RESULTS.md (mean over three training seeds) all nine methods
  beat the training mean with it, seg4reg only on average (worse under one of the three seeds); rotated-proposals
  (rerun after its stage two moved onto the shared features) under each seed, though on the bundled data one run
  was level with the mean (SMAPE 31.17 against 31.35; 49 s to train and predict, 1.56 GB peak memory). They train
  in 12-345 s each on a CPU (about 14 minutes together); ``tiny`` stops on the all-zero heatmap plateau and
  predicts near-constant angles.
- ``lumbosacral-ct``: ``standard``. On the bundled data (10 training volumes, 6 test volumes; CPU, one thread, beside
  a CI run) the 3D U-Net, the semi-cGAN and the Fewshot-GAN trained and predicted in 1 min 42 s, 4 min 03 s and
  5 min 00 s (peak resident memory at most 1.39 GB) and reached mean Dice 0.72, 0.75 and 0.69 against the intensity
  thresholds' 0.24; ``tiny`` stayed below the reference on the benchmark's tiny sets (RESULTS.md).
- The other CT and labelling tasks: ``tiny``. Their ``standard`` presets need a GPU or hours of CPU time
  (RESULTS.md), so they do not fit the budget; a ``tiny`` run that does not beat the reference is shown on the
  baselines page and the leaderboard as not ranked, with both numbers, rather than ranked as the method.
"""

from __future__ import annotations

DEFAULT_PRESETS: dict[str, str] = {"aasce-cobb": "standard", "lumbosacral-ct": "standard"}
FALLBACK_PRESET = "tiny"

#: (task, method) left out of the background set, with the reason shown on the baselines page. They still run by
#: hand: `spinebench baselines run TASK METHOD --phase CHALLENGE/PHASE --preset PRESET`.
NOT_BY_DEFAULT: dict[tuple[str, str], str] = {
    ("aasce-cobb", "keypoint-fusion"): (
        "Not trained in the background: its standard preset (four networks on full-size radiographs) held 6.6 GB "
        "of memory while training on the bundled 40 radiographs, above the 4 GB the background set allows on a "
        "small machine. Run it by hand on a machine with 8 GB or more."
    ),
}


def default_preset(task: str) -> str:
    return DEFAULT_PRESETS.get(task, FALLBACK_PRESET)


def excluded_reason(task: str, method: str) -> str:
    """Why a method is not in the background set ('' when it is)."""
    return NOT_BY_DEFAULT.get((task, method), "")

"""SpineBench baselines: a torch reimplementation of every method in the CSI 2019 proceedings (no Django).

Contract every method module follows (`baselines/<family>/<module>.py`):

- ``TASK``: the task id from ``evaluators.tasks`` the method solves.
- ``PAPER``: a one-line reference (authors, title, proceedings section), in our own words.
- ``Config``: a dataclass of every setting; ``PRESETS = {"tiny": Config(...), "standard": Config(...),
  "paper": Config(...)}`` (tiny: CPU seconds for tests; standard: at most ~10 minutes on 2 CPU cores;
  paper: the published settings, for a GPU).
- ``train(*, data_dir, config, device, progress=True) -> dict``: trains on a SpineBench training dataset folder
  (docs/formats.md; it reads inputs and ground truth) and returns a checkpoint dict of plain tensors/values
  (``{"state": ..., "losses": [...], ...}``); the loss history is returned so tests can see it fall.
- ``predict(*, checkpoint, data_dir, config, device, progress=True) -> dict[case_id, prediction]``: reads only
  ``inputs/`` of the dataset folder (never ``ground_truth/``) and returns in-memory predictions in the task's
  format (docs/formats.md), which ``evaluators.formats.write_predictions`` writes.
  Where it replaces its own output for a case by a fallback (the training mean, zeros, box corners, ...), it calls
  ``baselines.report.note_fallback(case_id, name)``; ``baselines.api.predict`` writes the resulting run report
  (per case the method or the fallback used; constant or mostly-fallback runs marked degenerate) beside the
  predictions, so that no fallback poses as the method.

Each family package (``baselines/<family>/__init__.py``) lists its methods in ``METHODS``:
``{method_name: (module_path, {config overrides for this variant})}``. ``baselines.registry`` collects them.
"""

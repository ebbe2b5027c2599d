"""`python tests/harness/worker_entry.py worker -Q ...`: a Celery worker of the spinebench app with the test hooks of
hooks.py installed in every process that runs tasks (after Django is set up there)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "platform"), str(REPO)]

from celery import signals  # noqa: E402 - importable only once the repository is on sys.path (above)

from tests.harness import hooks  # noqa: E402 - likewise

signals.worker_process_init.connect(hooks.install_from_environment, weak=False)

if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", "-A", "spinebench", *sys.argv[1:]]
    sys.exit(main())

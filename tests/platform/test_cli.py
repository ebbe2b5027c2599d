"""The `spinebench` console command: parser, challenge/dataset import, a baseline run, and the embedded SQLite path
(in-process tasks) end to end in a fresh process, plus `check --deploy` of the production settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from spinebench import cli
from spinebench.datasets.models import Dataset
from spinebench.submissions.models import Submission
from tests.harness.celery_worker import Worker

from .aasce_data import TRAIN_ANGLES, write_aasce_dataset
from .factories import ChallengeFactory, PhaseFactory

REPO = Path(__file__).resolve().parents[2]


def test_parser_has_every_subcommand():
    parser = cli.build_parser()
    choices = parser._subparsers._group_actions[0].choices
    assert {"bootstrap", "challenge", "datasets", "evaluate", "phantoms", "baselines"} <= set(choices)
    args = parser.parse_args(["baselines", "run", "aasce-cobb", "seg4reg", "--phase", "aasce-2019/test"])
    assert args.preset == "tiny" and args.device == "auto" and args.func is cli._baselines_run


@pytest.mark.parametrize("argv, said", [
    (["--queues", "scoring"], "not scoring"),
    (["--queues", "containers-gpu,baselines"], "not baselines"),
    (["--broker", "redis://127.0.0.1:6379/0"], "RabbitMQ --broker URL"),
    (["--token", ""], "give --token"),
], ids=["a queue that needs the database", "one of two", "a Redis broker", "no token"])
def test_worker_refuses_what_a_remote_host_cannot_do(argv, said, capsys, monkeypatch):
    """`spinebench worker` runs only container queues, on RabbitMQ, with a worker token; it says so and exits 2
    (before starting anything) otherwise."""
    monkeypatch.delenv("SPINEBENCH_WORKER_TOKEN", raising=False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    defaults = {"--server": "https://site.example", "--token": "secret", "--broker": "amqp://u:p@127.0.0.1/v"}
    options = dict(zip(argv[::2], argv[1::2]))
    merged = [part for key, value in {**defaults, **options}.items() for part in (key, value)]
    assert cli.main(["worker", *merged]) == 2
    assert said in capsys.readouterr().err


def test_unavailable_package_command_says_so(capsys, monkeypatch):
    monkeypatch.setattr(cli, "PACKAGE_COMMANDS", (("phantoms", "phantoms.no_such_cli"),))
    assert cli.main(["phantoms"]) == 2
    assert "spinebench phantoms: unavailable (phantoms.no_such_cli could not be imported" in capsys.readouterr().err


@pytest.mark.django_db
def test_challenge_import_reports_the_wrong_key(tmp_path, capsys):
    (tmp_path / "challenge.yaml").write_text("challenge: {slug: x, titel: X}\n")
    assert cli.main(["challenge", "import", str(tmp_path)]) == 2
    assert "challenge.yaml: challenge: unknown key 'titel'" in capsys.readouterr().err


@pytest.mark.django_db
def test_datasets_import_spinebench_layout(tmp_path):
    challenge = ChallengeFactory(slug="imp")
    source = write_aasce_dataset(tmp_path / "src", TRAIN_ANGLES, split="train")
    assert cli.main(["datasets", "import", "spinebench", str(source), "--challenge", "imp", "--split", "train"]) == 0
    dataset = Dataset.objects.get(challenge=challenge, slug="train")
    assert dataset.root == Path(settings.DATASETS_ROOT) / "imp" / "train" and dataset.cases.count() == 2
    assert cli.main(["datasets", "import", "spinebench", str(source), "--challenge", "imp", "--split", "test"]) == 2


@pytest.mark.slow
@pytest.mark.django_db
def test_baselines_run_submits_a_scored_baseline(eager_tasks, django_capture_on_commit_callbacks, capsys):
    phase = PhaseFactory()
    # The inputs of the factories' datasets are tiny blank images; generate a learnable training split instead.
    import phantoms
    from spinebench.datasets.services import link_phase_datasets, register_dataset

    folder = phantoms.generate(
        "aasce-cobb", out=Path(settings.DATASETS_ROOT) / "gen" / "train", cases=3, seed=0, small=True, progress=False
    )
    link_phase_datasets(
        phase=phase, training_dataset=register_dataset(challenge=phase.challenge, slug="gen-train", folder=folder)
    )
    with django_capture_on_commit_callbacks(execute=True):
        code = cli.main(
            [
                "baselines",
                "run",
                "aasce-cobb",
                "scg-net",
                "--phase",
                f"{phase.challenge.slug}/{phase.slug}",
                "--device",
                "cpu",
            ]
        )
    assert code == 0, capsys.readouterr()
    baseline = Submission.objects.get(phase=phase, is_baseline=True)
    assert baseline.baseline_method == "scg-net" and baseline.status == "succeeded"
    # The factory's test inputs are identical blank images: the method predicts one thing for all of them, and its
    # run report says so; the row is scored but not ranked as the method.
    assert baseline.degenerate_reason.startswith("Every one of the 3 cases got the same prediction")
    assert baseline.evaluation.rank is None and baseline.fallback_share == 0.0


def run(args, env, timeout=600):
    return subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout
    )


@pytest.mark.slow
def test_embedded_sqlite_path_in_a_fresh_process(tmp_path):
    """DATABASE_URL and CELERY_BROKER_URL unset: SQLite and the folder broker under the var dir; import the AASCE
    bundle (small), submit a CSV as a participant: the submission waits in the queue (nothing runs in the
    submitting process) until a worker on the folder broker scores and ranks it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "DATASETS_ROOT")
    }
    env.update(
        SPINEBENCH_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=os.pathsep.join([str(REPO / "platform"), str(REPO)])
    )
    spinebench = [sys.executable, "-c", "import sys; from spinebench.cli import main; sys.exit(main())"]
    result = run(spinebench + ["bootstrap", "--small", "--max-cases", "3", "--no-baselines"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "var" / "db.sqlite3").is_file()
    script = """
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from spinebench.challenges.models import Phase
from spinebench.challenges.services import register
from spinebench.submissions.services import create_submission
from evaluators.formats import load_ground_truth
phase = Phase.objects.get(challenge__slug="aasce-2019", slug="test")
user = User.objects.create_user("embedded")
register(phase.challenge, user)
truth = load_ground_truth("aasce-cobb", phase.dataset.ground_truth_dir)
rows = "case_id,pt,mt,tl\\n" + "".join(f"{c},{v['angles'][0]+1},{v['angles'][1]+1},{v['angles'][2]+1}\\n" for c, v in
truth.items())
s = create_submission(phase=phase, user=user, upload=SimpleUploadedFile("p.csv", rows.encode()))
s.refresh_from_db()
print("SUBMITTED", s.pk, s.status)
"""
    result = run([sys.executable, "manage.py", "shell", "-c", script], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SUBMITTED 1 queued" in result.stdout
    assert len(list((tmp_path / "var" / "broker" / "queue").glob("*.scoring.msg"))) == 1
    worker = Worker(env=env, log=tmp_path / "worker.log", queues=["scoring"])
    worker.start()
    try:
        script = """
import time
from spinebench.submissions.models import Submission
deadline = time.monotonic() + 120
while Submission.objects.get(pk=1).status not in ("succeeded", "failed") and time.monotonic() < deadline:
    time.sleep(0.2)
s = Submission.objects.get(pk=1)
print("RESULT", s.status, s.evaluation.rank, round(s.evaluation.aggregates["mae_pt"], 6))
"""
        result = run([sys.executable, "manage.py", "shell", "-c", script], env)
    finally:
        worker.stop()
    assert result.returncode == 0, result.stderr[-3000:] + worker.tail()
    assert "RESULT succeeded 1 1.0" in result.stdout


@pytest.mark.slow
def test_production_settings_pass_check_deploy(tmp_path):
    env = {
        # The browser tests' harness allows sync ORM calls from async code in this process; a deployment never does.
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "spinebench.settings.production",
        "SECRET_KEY": "x7#Kp2!vQ9@mR4$wL8^zT1&nB6*cY3(hJ5)dF0_gS2-aE7+uI9=oP4~eW1|rN6?",
        "ALLOWED_HOSTS": "spinebench.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SPINEBENCH_VAR_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)]),
    }
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout

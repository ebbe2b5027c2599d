"""`spinebench backup` / `restore` / `verify-storage`: a round trip restores rows and files exactly (PostgreSQL in
process, SQLite in a fresh process), a damaged backup is refused before anything changes, and the storage check
names changed and missing files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from spinebench import backups, cli
from spinebench.challenges.models import Phase
from tests.conftest import require_service

from .factories import PhaseFactory

REPO = Path(__file__).resolve().parents[2]


def _dataset_file(phase) -> Path:
    return phase.dataset.root / "ground_truth" / "angles.csv"


@pytest.mark.django_db(transaction=True)
def test_postgresql_round_trip_restores_rows_and_files(tmp_path, capsys):
    require_service("PostgreSQL", connection.vendor == "postgresql", why="set DATABASE_URL=postgres://...")
    phase = PhaseFactory()
    truth = _dataset_file(phase)
    original = truth.read_bytes()
    assert cli.main(["backup", str(tmp_path / "backups")]) == 0
    (folder,) = (tmp_path / "backups").iterdir()
    manifest = backups.read_manifest(folder)
    assert manifest["database"]["engine"] == "postgresql"
    relative = f"datasets/{truth.relative_to(settings.DATASETS_ROOT).as_posix()}"
    assert manifest["files"][relative]["sha256"] == backups.sha256_of(truth)

    # Damage the site: a row deleted, a file changed, a stray file added.
    Phase.objects.filter(pk=phase.pk).delete()
    truth.write_text("case_id,pt,mt,tl\n", encoding="utf-8")
    stray = Path(settings.MEDIA_ROOT) / "stray.bin"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x")

    assert cli.main(["restore", str(folder), "--yes"]) == 0
    assert Phase.objects.filter(slug=phase.slug, challenge__slug=phase.challenge.slug).exists()
    assert truth.read_bytes() == original and not stray.exists()


@pytest.mark.slow  # a fresh process migrates and loads a whole site: about a minute
def test_sqlite_round_trip_in_a_fresh_process(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "DATASETS_ROOT")
    }
    env.update(
        SPINEBENCH_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=os.pathsep.join([str(REPO / "platform"), str(REPO)])
    )
    spinebench = [sys.executable, "-c", "import sys; from spinebench.cli import main; sys.exit(main())"]

    def run(args):
        result = subprocess.run(
            args, cwd=REPO, env=env, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=300
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return result.stdout

    (tmp_path / "var").mkdir()
    run([sys.executable, "manage.py", "migrate", "--verbosity", "0"])
    run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User; User.objects.create_user('kept')",
        ]
    )
    upload = tmp_path / "var" / "media" / "submissions" / "1" / "upload.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("case_id,pt,mt,tl\n", encoding="utf-8")
    run(spinebench + ["backup", str(tmp_path / "backups")])
    (folder,) = (tmp_path / "backups").iterdir()
    run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User; User.objects.all().delete()",
        ]
    )
    upload.write_text("tampered", encoding="utf-8")
    run(spinebench + ["restore", str(folder), "--yes"])
    out = run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "print('USERS', list(User.objects.values_list('username', flat=True)))",
        ]
    )
    assert "USERS ['kept']" in out
    assert upload.read_text(encoding="utf-8") == "case_id,pt,mt,tl\n"


@pytest.mark.django_db
def test_a_damaged_backup_is_refused_before_anything_changes(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "backup"
    (folder / "media").mkdir(parents=True)
    (folder / "datasets").mkdir()
    (folder / "database.dump").write_bytes(b"not what the manifest says")
    (folder / "media" / "a.csv").write_text("a", encoding="utf-8")
    engine = "postgresql" if connection.vendor == "postgresql" else "sqlite"
    manifest = {
        "format": 1,
        "created": "2026-01-01",
        "database": {"engine": engine, "file": "database.dump", "sha256": "00"},
        "files": {
            "media/a.csv": {"size": 1, "sha256": backups.sha256_of(folder / "media" / "a.csv")},
            "media/gone.csv": {"size": 1, "sha256": "00"},
        },
    }
    (folder / "manifest.json").write_text(
        json.dumps(manifest),
        encoding="utf-8",
    )
    restored = []
    monkeypatch.setattr(backups, "_restore_database", lambda dump: restored.append(dump))
    assert cli.main(["restore", str(folder), "--yes"]) == 1
    err = capsys.readouterr().err
    assert "backup is damaged, nothing was restored" in err
    assert "database.dump: checksum differs from the manifest" in err and "media/gone.csv: missing" in err
    assert restored == []


@pytest.mark.django_db
def test_verify_storage_names_changed_and_missing_files(tmp_path, capsys):
    phase = PhaseFactory()
    manifest = tmp_path / "storage.json"
    assert cli.main(["verify-storage", "--update", "--manifest", str(manifest)]) == 0
    assert cli.main(["verify-storage", "--manifest", str(manifest)]) == 0
    truth = _dataset_file(phase)
    truth.write_text("changed", encoding="utf-8")
    image = next((phase.dataset.root / "inputs").rglob("image.png"))
    image.unlink()
    capsys.readouterr()
    assert cli.main(["verify-storage", "--manifest", str(manifest)]) == 1
    out = capsys.readouterr().out
    root = Path(settings.DATASETS_ROOT)
    assert f"CHANGED datasets/{truth.relative_to(root).as_posix()}" in out
    assert f"MISSING datasets/{image.relative_to(root).as_posix()}" in out
    assert "1 changed, 1 missing" in out

"""The `spinebench` console command.

    spinebench bootstrap [--small] [--max-cases N] [--no-baselines] [--methods M,...] [--preset P]
    spinebench bootstrap [--small] [--max-cases N] [--no-baselines] [--methods M,...]
    spinebench serve [--host H] [--port P] [--scoring-concurrency N] [--torch-threads N] [--gpu]
    spinebench worker --server URL --token TOKEN --queues containers-gpu [--broker AMQP_URL] [--concurrency N]
    spinebench challenge import BUNDLE_DIR [--no-generate] [--small] [--max-cases N] [--force]
    spinebench datasets import LAYOUT PATH --challenge SLUG --split train|test [--task TASK] [--name NAME]
    spinebench baselines list|train|predict ...          (baselines.cli)
    spinebench baselines run TASK METHOD --phase CHALLENGE/PHASE [--preset tiny] [--device auto] [--checkpoint PATH]
    spinebench backup OUT_DIR | restore BACKUP_DIR [--yes] | verify-storage [--manifest PATH] [--update]
    spinebench evaluate ...                               (evaluators.cli)
    spinebench phantoms ...                               (phantoms.cli)

The package CLIs are imported lazily; one that is not installed yet leaves its subcommand printing that it is
unavailable. Django is set up only for the commands that need the database (settings: DJANGO_SETTINGS_MODULE,
default spinebench.settings.local).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"
PACKAGE_COMMANDS = (("evaluate", "evaluators.cli"), ("phantoms", "phantoms.cli"), ("baselines", "baselines.cli"))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinebench.settings.local")
    import django

    import spinebench.celery  # noqa: F401 - the app must be the current one before any task is dispatched

    django.setup()
    from django.conf import settings

    # The embedded defaults keep the SQLite file and the storage roots under var/: make them on first use.
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and str(database["NAME"]) != ":memory:":
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    for root in (settings.MEDIA_ROOT, settings.DATASETS_ROOT, settings.STATIC_ROOT):
        Path(root).mkdir(parents=True, exist_ok=True)


def _unavailable(name: str, module: str, error: Exception):
    def run(args) -> int:
        print(f"spinebench {name}: unavailable ({module} could not be imported: {error})", file=sys.stderr)
        return 2

    return run


def _add_package_commands(subparsers) -> None:
    for name, module_name in PACKAGE_COMMANDS:
        try:
            module = importlib.import_module(module_name)
            # A dry run on a scratch parser first: a package half landed must not leave a broken subcommand behind.
            module.register(argparse.ArgumentParser().add_subparsers())
        except Exception as error:
            parser = subparsers.add_parser(name, help=f"(unavailable: {module_name} not usable)")
            parser.set_defaults(func=_unavailable(name, module_name, error))
            continue
        commands = module.register(subparsers)
        if name == "baselines":
            _add_baselines_run(commands)


# ------------------------------------------------------------------------------------------------ baselines run


def _add_baselines_run(commands) -> None:
    parser = commands.add_parser("run", help="train a baseline on a challenge's training data and submit it to a phase")
    parser.add_argument("task", help="task id, e.g. aasce-cobb")
    parser.add_argument("method", help="method name (see `spinebench baselines list`)")
    parser.add_argument("--phase", required=True, help="CHALLENGE/PHASE, e.g. aasce-2019/test")
    parser.add_argument("--preset", default="tiny", help="tiny | standard | paper (default tiny)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]")
    parser.add_argument("--checkpoint", type=Path, help="reuse this checkpoint (trained into it when missing)")
    parser.set_defaults(func=_baselines_run)


def _find_phase(spec: str):
    from spinebench.challenges.models import Phase

    challenge, _, phase = spec.partition("/")
    found = Phase.objects.filter(challenge__slug=challenge, slug=phase).select_related("challenge").first()
    if found is None:
        raise SystemExit(f"error: no phase {spec!r} (expected CHALLENGE/PHASE, e.g. aasce-2019/test)")
    return found


def _baselines_run(args) -> int:
    setup_django()
    from baselines.registry import UnknownMethodError
    from spinebench.submissions.baseline_runs import BaselineRunError, run_baseline

    phase = _find_phase(args.phase)
    if phase.task != args.task:
        print(f"error: phase {args.phase} is for task {phase.task}, not {args.task}", file=sys.stderr)
        return 2
    try:
        submission = run_baseline(
            phase=phase, method=args.method, preset=args.preset, device=args.device, checkpoint=args.checkpoint
        )
    except (BaselineRunError, UnknownMethodError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    submission.refresh_from_db()
    print(f"submission {submission.pk}: {submission.status} {submission.error_message}".rstrip())
    return 0 if submission.status != "failed" else 1


# ------------------------------------------------------------------------------------------ challenge / datasets


def _challenge_import(args) -> int:
    setup_django()
    from spinebench.datasets.bundles import BundleError, ImportOptions, import_bundle

    options = ImportOptions(generate=not args.no_generate, small=args.small, max_cases=args.max_cases, force=args.force)
    try:
        challenge = import_bundle(args.bundle_dir, options)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"challenge {challenge.slug}: {challenge.phases.count()} phase(s), {challenge.datasets.count()} dataset(s)")
    return 0


def _datasets_import(args) -> int:
    setup_django()
    import shutil

    from spinebench.challenges.models import Challenge
    from spinebench.datasets import services

    challenge = Challenge.objects.filter(slug=args.challenge).first()
    if challenge is None:
        print(f"error: no challenge {args.challenge!r}", file=sys.stderr)
        return 2
    name = args.name or args.split
    out = services.default_folder(challenge_slug=challenge.slug, slug=name)
    source = Path(args.path)
    try:
        if args.layout == "spinebench":
            if not (source / "dataset.json").is_file():
                raise services.DatasetError(f"{source}: not a SpineBench dataset folder (no dataset.json)")
            if source.resolve() != out.resolve():
                if out.exists():
                    shutil.rmtree(out)
                shutil.copytree(source, out)
        else:
            task = args.task or _single_task(challenge)
            services.import_external(layout=args.layout, src=source, out=out, task=task, split=args.split, force=True)
        dataset = services.register_dataset(
            challenge=challenge, slug=name, folder=out, task=args.task, split=args.split
        )
    except (services.DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"dataset {dataset}: {dataset.cases.count()} case(s) in {dataset.root}")
    return 0


def _single_task(challenge) -> str:
    tasks = sorted(set(challenge.phases.values_list("task", flat=True)))
    if len(tasks) != 1:
        raise ValueError(f"challenge {challenge.slug} has tasks {tasks or 'none'}; pass --task")
    return tasks[0]


# ---------------------------------------------------------------------------------------------------- bootstrap


def _bootstrap(args) -> int:
    """Migrate, import every bundled challenge (generating its data), then queue the baseline runs for the
    background baselines worker: nothing here waits for training. Every bundle failure is reported in a summary
    and makes the exit status non-zero; the other bundles are still imported."""
    setup_django()
    from django.core.management import call_command

    from spinebench.datasets.bundles import ImportOptions, import_bundle

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    options = ImportOptions(generate=not args.no_generate, small=args.small, max_cases=args.max_cases)
    challenges, failures = [], []
    for bundle in sorted(path.parent for path in BUNDLES_DIR.glob("*/challenge.yaml")):
        try:
            challenges.append(import_bundle(bundle, options))
            print(f"imported {bundle.name}")
        except Exception as error:  # one broken bundle must not stop the others
            failures.append(f"bundle {bundle.name}: {type(error).__name__}: {error}")
            print(f"bundle {bundle.name} not imported: {error}", file=sys.stderr)
    from spinebench.submissions.baseline_runs import sweep_expired_runs
    from spinebench.submissions.tasks import sweep_time_limits

    sweep_time_limits()  # fail what outlived its time limit while nothing was running
    sweep_expired_runs()  # baseline runs stopped with the last `make run` go back to the queue
    queued = (
        []
        if args.no_baselines
        else _queue_baselines(challenges, methods=args.methods, preset=args.preset, device=args.device)
    )
    print(
        f"bootstrap: {len(challenges)} challenge(s) imported, {len(queued)} baseline run(s) queued for the "
        "baselines worker (state and progress on each challenge's baselines page)"
    )
    if failures:
        print(f"bootstrap: {len(failures)} failure(s):", file=sys.stderr)
        for line in failures:
            print(f"  - {line}", file=sys.stderr)
        return 1
    return 0


def _queue_baselines(challenges, *, methods: str | None, preset: str | None, device: str) -> list:
    """Queue a run for each CSV test phase (hidden labels, data present) of the bundled challenges and each
    registered method of its task that has no run of this preset yet."""
    try:
        from spinebench.submissions.baseline_runs import queue_runs
    except ImportError as error:
        print(f"baselines unavailable ({error}); no baseline runs queued", file=sys.stderr)
        return []
    phases = [
        phase
        for challenge in challenges
        for phase in challenge.phases.filter(submission_kind="csv").select_related("dataset_link__dataset")
        if phase.dataset is not None and phase.dataset.is_hidden and phase.dataset.exists()
    ]
    wanted = set(methods.split(",")) if methods else None
    return queue_runs(phases=phases, methods=wanted, preset=preset, device=device)


# ------------------------------------------------------------------------------------------------------ backups


def _backup(args) -> int:
    setup_django()
    from tqdm import tqdm

    from spinebench.backups import BackupError, create_backup

    with tqdm(desc="backup", unit="file") as bar:
        try:
            folder = create_backup(args.out, progress=lambda _name: bar.update(1))
        except BackupError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(f"backup written to {folder}")
    return 0


def _restore(args) -> int:
    setup_django()
    from spinebench.backups import BackupError, restore_backup, verify_backup

    try:
        if not args.yes:
            problems = verify_backup(args.folder)
            print(f"{args.folder}: {'intact' if not problems else 'DAMAGED: ' + '; '.join(problems[:10])}")
            print("restore replaces the database and every stored file; run again with --yes to do it")
            return 0 if not problems else 1
        restored = restore_backup(args.folder)
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"restored {restored['database']} and {restored['files']} file(s) from {args.folder}")
    return 0


def _verify_storage(args) -> int:
    setup_django()
    from spinebench.backups import BackupError, verify_storage, write_storage_manifest

    if args.update:
        print(f"storage manifest written to {write_storage_manifest(args.manifest)}")
        return 0
    try:
        report = verify_storage(args.manifest)
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for label, paths in (("CHANGED", report.changed), ("MISSING", report.missing)):
        for path in paths:
            print(f"{label} {path}")
    print(f"{len(report.changed)} changed, {len(report.missing)} missing, {len(report.added)} added since the manifest")
    return 0 if report.intact else 1


# -------------------------------------------------------------------------------------------------------- serve


def _serve(args) -> int:
    setup_django()  # makes var/, the storage roots and the broker folders before any child needs them
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)  # a no-op after bootstrap; serve also runs alone

    from spinebench.submissions.baseline_runs import redispatch_queued
    from spinebench.workers.serve import serve

    # The previous run's baselines go on where they stopped (a run its worker had reserved at Ctrl-C included).
    resumed = redispatch_queued()
    if resumed:
        print(f"serve: {resumed} queued baseline run(s) dispatched to the baselines worker", flush=True)

    status = serve(
        host=args.host,
        port=args.port,
        scoring_concurrency=args.scoring_concurrency,
        torch_threads=args.torch_threads,
        gpu=args.gpu,
        stop_timeout=args.stop_timeout,
        beat_schedule=str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
    )
    # Everything this process started has exited. Leave at once: the interpreter's teardown of the libraries the
    # command line imported (torch, through the baselines commands) takes seconds after a Ctrl-C otherwise.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _add_serve(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the site: web server, celery beat, a scoring/containers worker and a baselines worker"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address the web server binds (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
    serve.add_argument(
        "--scoring-concurrency", type=int, default=2, help="processes of the scoring/containers worker (default 2)"
    )
    serve.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="threads torch may use in the baselines worker (default: half the cores)",
    )
    serve.add_argument("--gpu", action="store_true", help="the scoring worker also consumes containers-gpu")
    serve.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        help="seconds workers get to finish their current task on Ctrl-C (default 30)",
    )
    serve.set_defaults(func=_serve)


REMOTE_QUEUES = ("containers-cpu", "containers-gpu")


def _worker(args) -> int:
    """A remote container worker host: a Celery worker on the RabbitMQ queue(s) of its user, with no database and no
    shared disk (settings.remote_worker); everything else comes through the site's worker-token API."""
    queues = [queue.strip() for queue in args.queues.split(",") if queue.strip()]
    wrong = sorted(set(queues) - set(REMOTE_QUEUES))
    if not queues or wrong:
        print(f"spinebench worker: a remote worker consumes {' and/or '.join(REMOTE_QUEUES)} only "
              f"(the other queues need the site's database){'; not ' + ', '.join(wrong) if wrong else ''}",
              file=sys.stderr)
        return 2
    token = args.token or os.environ.get("SPINEBENCH_WORKER_TOKEN", "")
    broker = args.broker or os.environ.get("CELERY_BROKER_URL", "")
    if not token or not broker.startswith(("amqp://", "amqps://", "pyamqp://")):
        print("spinebench worker: give --token (or SPINEBENCH_WORKER_TOKEN) and a RabbitMQ --broker URL "
              "(or CELERY_BROKER_URL) whose user may use only this worker's queue (docs/workers.md)", file=sys.stderr)
        return 2
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CACHE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="spinebench.settings.remote_worker", SPINEBENCH_JOB_SERVER=args.server,
               SPINEBENCH_WORKER_TOKEN=token, CELERY_BROKER_URL=broker)
    if args.dir:
        env["SPINEBENCH_WORKER_DIR"] = str(Path(args.dir).resolve())
    import socket

    argv = [sys.executable, "-m", "celery", "-A", "spinebench", "worker", "-Q", ",".join(queues),
            "-n", f"{args.name}@{socket.gethostname()}", "--concurrency", str(args.concurrency),
            "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)  # the worker replaces this process: signals reach it directly
    return 0  # not reached


def _add_worker(subparsers) -> None:
    worker = subparsers.add_parser(
        "worker", help="run a remote container worker host: no database, no shared disk (docs/workers.md)")
    worker.add_argument("--server", required=True, help="the site's address, e.g. https://spinebench.example.org")
    worker.add_argument("--token", default="", help="a worker token (default: SPINEBENCH_WORKER_TOKEN)")
    worker.add_argument("--queues", default="containers-gpu", help="containers-gpu and/or containers-cpu")
    worker.add_argument("--broker", default="", help="RabbitMQ URL of this worker's user (default: CELERY_BROKER_URL)")
    worker.add_argument("--concurrency", type=int, default=1, help="container jobs run at once (default 1)")
    worker.add_argument("--dir", default="", help="this host's scratch folder (default: SPINEBENCH_WORKER_DIR)")
    worker.add_argument("--name", default="remote", help="the worker's node name before @host (default remote)")
    worker.set_defaults(func=_worker)


# --------------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spinebench", description="SpineBench: spine-imaging challenges")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bootstrap = subparsers.add_parser(
        "bootstrap", help="migrate, import the bundled challenges, generate data, queue the baseline runs"
    )
    bootstrap.add_argument("--small", action="store_true", help="generate small images (fast demo)")
    bootstrap.add_argument("--max-cases", type=int, help="cap the cases of each generated dataset")
    bootstrap.add_argument("--no-generate", action="store_true", help="use only dataset folders that already exist")
    bootstrap.add_argument("--no-baselines", action="store_true", help="do not queue the baseline methods")
    bootstrap.add_argument("--methods", help="comma-separated method names to queue (default: all registered)")
    bootstrap.add_argument("--preset", help="baseline preset to queue (default: each task's, baselines/defaults.py)")
    bootstrap.add_argument("--device", default="auto", help="device for the baselines (auto, cpu, cuda)")
    bootstrap.set_defaults(func=_bootstrap)

    challenge = subparsers.add_parser("challenge", help="challenge bundles").add_subparsers(
        dest="challenge_command", required=True
    )
    importer = challenge.add_parser("import", help="create or update a challenge from a bundle folder (challenge.yaml)")
    importer.add_argument("bundle_dir", type=Path)
    importer.add_argument("--no-generate", action="store_true", help="do not generate/import missing dataset folders")
    importer.add_argument("--small", action="store_true", help="generate small images")
    importer.add_argument("--max-cases", type=int, help="cap the cases of each generated dataset")
    importer.add_argument("--force", action="store_true", help="regenerate dataset folders that exist")
    importer.set_defaults(func=_challenge_import)

    datasets = subparsers.add_parser("datasets", help="datasets").add_subparsers(dest="datasets_command", required=True)
    dataset_import = datasets.add_parser("import", help="import a dataset folder into a challenge")
    dataset_import.add_argument(
        "layout",
        help="spinebench (a SpineBench folder) or a phantoms.importers layout: spineweb16, verse, dicom-series, image",
    )
    dataset_import.add_argument("path", help="the folder (or file) to import")
    dataset_import.add_argument("--challenge", required=True, help="challenge slug")
    dataset_import.add_argument("--split", required=True, choices=["train", "test"])
    dataset_import.add_argument("--task", help="task id (default: the challenge's only task)")
    dataset_import.add_argument("--name", help="dataset name inside the challenge (default: the split)")
    dataset_import.set_defaults(func=_datasets_import)

    backup = subparsers.add_parser("backup", help="dump the database and copy every stored file, with checksums")
    backup.add_argument("out", type=Path, help="folder that receives the new backup folder")
    backup.set_defaults(func=_backup)
    restore = subparsers.add_parser("restore", help="check a backup's checksums, then replace the database and files")
    restore.add_argument("folder", type=Path, help="a backup folder written by `spinebench backup`")
    restore.add_argument("--yes", action="store_true", help="really replace the database and stored files")
    restore.set_defaults(func=_restore)
    verify = subparsers.add_parser("verify-storage", help="report stored files whose checksum changed")
    verify.add_argument(
        "--manifest", type=Path, help="a storage manifest or backup folder (default var/storage-manifest.json)"
    )
    verify.add_argument("--update", action="store_true", help="record the current checksums as the manifest")
    verify.set_defaults(func=_verify_storage)

    _add_serve(subparsers)
    _add_worker(subparsers)
    _add_package_commands(subparsers)
    _add_client(subparsers)
    return parser


def _add_client(subparsers) -> None:
    client = subparsers.add_parser(
        "client", add_help=False, help="the participants' command-line client (as spinebench-client; client/)"
    )
    client.add_argument("arguments", nargs=argparse.REMAINDER)
    client.set_defaults(func=_run_client)


def _run_client(args) -> int:
    try:
        from spinebench_client.cli import main as client_main
    except ImportError:
        print("spinebench client: the client is not installed (pip install -e client/, which make install does)",
              file=sys.stderr)
        return 2
    return client_main(args.arguments, prog="spinebench client")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

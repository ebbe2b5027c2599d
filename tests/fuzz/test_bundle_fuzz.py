"""Fuzzing the bundle reader (spinebench.challenges.bundles.load_bundle: YAML, then the declarative schema) as an
uploaded bundle would reach it, under both profiles: a clear BundleError or a validated bundle, never another
exception, never a message that quotes megabytes, bounded time and memory; a bundle the untrusted profile accepts
names no server folder and no organizer. Examples per run: mutated shipped bundles 150, raw YAML text 150, alias
bombs (fixed) 3."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from spinebench.challenges.bundle_schema import TRUSTED, BundleError, untrusted_profile
from spinebench.challenges.bundles import BUNDLE_FILE, load_bundle

from .budget import EXAMPLES, bounded_memory, fuzz_settings

BUNDLES = Path(__file__).resolve().parents[2] / "platform" / "spinebench" / "bundles"
SHIPPED = yaml.safe_load((BUNDLES / "aasce-2019" / BUNDLE_FILE).read_text(encoding="utf-8"))
MESSAGE_MAX = 2000  # one refusal names keys and quotes at most a few short values

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["../../etc", "/var/lib", "secret", "x" * 5000, "2026-01-31T23:59:00Z"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "path",
        "import",
        "organizers",
        "generate",
        "cases",
        "seed",
        "phases",
        "datasets",
        "leaderboard",
        "primary_metric",
        "slug",
        "title",
        "description_file",
        "rankng",
        "task",
        "real",
        "container",
    ]
)


def paths_in(node, prefix=()):
    """Every (path, mapping) of the nested bundle, to pick a place to mutate."""
    found = [(prefix, node)] if isinstance(node, dict) else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        found += paths_in(child, (*prefix, key))
    return found


@st.composite
def mutated_bundles(draw):
    bundle = copy.deepcopy(SHIPPED)
    for _ in range(draw(st.integers(1, 4))):
        places = paths_in(bundle)
        _, mapping = places[draw(st.integers(0, len(places) - 1))]
        action = draw(st.sampled_from(["set", "delete", "replace"]))
        if action == "delete" and mapping:
            mapping.pop(draw(st.sampled_from(sorted(mapping, key=str))))
        elif action == "replace" and mapping:
            mapping[draw(st.sampled_from(sorted(mapping, key=str)))] = draw(values)
        else:
            mapping[draw(keys)] = draw(values)
    return bundle


def read(folder: Path, text: str, profile):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUNDLE_FILE).write_text(text, encoding="utf-8")
    try:
        return load_bundle(folder, profile=profile)
    except BundleError as refusal:
        assert len(str(refusal)) < MESSAGE_MAX, str(refusal)[:300]
        return None


def names_no_server_path_nor_organizers(bundle: dict) -> bool:
    datasets = bundle.get("datasets") or {}
    return not bundle["challenge"].get("organizers") and all(
        "path" not in spec and "path" not in (spec.get("import") or {}) for spec in datasets.values()
    )


@pytest.mark.parametrize("profile_name", ["trusted", "untrusted"])
@fuzz_settings(EXAMPLES // 2)
@given(bundle=mutated_bundles())
def test_mutated_bundle_is_refused_clearly_or_validated(profile_name, bundle, tmp_path_factory):
    profile = TRUSTED if profile_name == "trusted" else untrusted_profile()
    with bounded_memory():
        result = read(tmp_path_factory.mktemp("bundle"), yaml.safe_dump(bundle, allow_unicode=True), profile)
    if result is not None and profile_name == "untrusted":
        assert names_no_server_path_nor_organizers(result)


@fuzz_settings(EXAMPLES)
@given(
    text=st.lists(
        st.sampled_from(
            list("abc:-&*[]{}!,'\"\n #|>%@`?~\t0123456789")
            + ["challenge:", "phases:", "&a", "*a", "!!python/object", "\n  - "]
        ),
        max_size=60,
    ).map("".join)
)
def test_raw_yaml_is_refused_clearly_or_validated(text, tmp_path_factory):
    with bounded_memory():
        read(tmp_path_factory.mktemp("raw"), text, untrusted_profile())


BILLION_LAUGHS = (
    "\n".join(
        [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
        + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    )
    + "\n"
)


@pytest.mark.parametrize(
    "text",
    [
        BILLION_LAUGHS + "challenge: {title: t, slug: ab}\nphases: *l8\n",  # 9^9 phases once expanded
        "challenge: &c {title: t, slug: ab, description: *c}\n",  # a mapping that contains itself
        BILLION_LAUGHS.replace("l8: &l8", "l8: &l8").replace("l0: &l0", "challenge: {title: t, slug: ab}\nl0: &l0"),
    ],
    ids=["billion-laughs-phases", "self-containing-alias", "bomb-in-unknown-keys"],
)
def test_alias_bombs_are_refused_at_once(text, tmp_path):
    with bounded_memory():
        assert read(tmp_path, text, untrusted_profile()) is None


@pytest.mark.parametrize("text", ["str: 1\n", "a[: 1\n", "none:\n", "challenge: {title: t, slug: ab, int: 2}\n"])
def test_keys_named_like_pydantic_union_tags_are_named_in_the_refusal(text, tmp_path):
    """The fuzzer found it: pydantic's union-member tags (`str`, `int`, `literal[...]`) were stripped from every error
    location, so an uploaded key called `str` left an empty location and an IndexError instead of a refusal."""
    key = text.split(":")[0] if text.startswith(("str", "a[", "none")) else "int"
    with pytest.raises(BundleError, match=rf"unknown key '{key.replace('[', '[[]')}'"):
        folder = tmp_path / "bundle"
        folder.mkdir()
        (folder / BUNDLE_FILE).write_text(text, encoding="utf-8")
        load_bundle(folder, profile=untrusted_profile())

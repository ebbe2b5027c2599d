"""Public/private splits of a test set: the draw is reproducible from its seed, independent of the order of the
case ids, and both parts hold cases; explicit public ids are checked against the case list."""

import pytest

from evaluators.splits import draw_public_cases, split_parts

CASES = [f"case_{n:02d}" for n in range(20)]


def test_the_same_seed_draws_the_same_cases_whatever_the_order():
    first = draw_public_cases(CASES, fraction=0.3, seed="s3cret")
    again = draw_public_cases(list(reversed(CASES)), fraction=0.3, seed="s3cret")
    assert first == again and len(first) == 6 and set(first) < set(CASES)
    others = {tuple(draw_public_cases(CASES, fraction=0.3, seed=f"seed-{n}")) for n in range(10)}
    assert len(others) > 1  # the seed decides the draw


@pytest.mark.parametrize("fraction, expected", [(0.01, 1), (0.5, 10), (0.99, 19)])
def test_both_parts_keep_at_least_one_case(fraction, expected):
    public = draw_public_cases(CASES, fraction=fraction, seed="x")
    assert len(public) == expected
    parts = split_parts(CASES, public=public)
    assert len(parts["public"]) + len(parts["private"]) == len(CASES) and parts["private"]


@pytest.mark.parametrize(
    "public, message",
    [(["case_00", "nope"], "public: not cases of the test set: nope"), (CASES, "the private part would hold no case")],
)
def test_bad_public_ids_are_refused_by_name(public, message):
    with pytest.raises(ValueError, match=message):
        split_parts(CASES, public=public)


@pytest.mark.parametrize("kwargs, field", [({"fraction": 1.0, "seed": "x"}, "fraction"),
                                           ({"fraction": 0.5, "seed": ""}, "seed")])
def test_bad_draw_arguments_name_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        draw_public_cases(CASES, **kwargs)

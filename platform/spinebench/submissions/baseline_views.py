"""The baselines page of a challenge: every baseline run on its visible phases, with state, preset, progress,
training time, peak memory, fallback share, the degenerate flag and the failure reason. The run table is also
served alone (`?fragment=runs`) so the page refreshes it live with htmx while runs are active."""

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path

from django.http import Http404
from django.shortcuts import get_object_or_404, render

from spinebench.challenges.models import Challenge
from spinebench.challenges.permissions import visible_challenges, visible_phases

from .models import BaselineRun
from .status import ACTIVE


def baselines_page(request, challenge):
    challenge = get_object_or_404(visible_challenges(request.user), slug=challenge)
    phases = list(visible_phases(challenge, request.user))
    if not phases and not challenge.phases.exists():
        raise Http404
    runs = (
        BaselineRun.objects.filter(phase__in=phases)
        .select_related("phase", "submission__evaluation")
        .order_by("phase__order", "phase_id", "method", "-created")
    )
    context = {
        "challenge": challenge,
        "not_by_default": _not_by_default(phases),
        "runs": _latest_per_method(runs),
        "papers": _papers(),
        "live": any(run.status in ACTIVE for run in runs),
    }
    template = "submissions/_baseline_runs.html" if request.GET.get("fragment") == "runs" else "submissions/baselines.html"
    return render(request, template, context)


def _not_by_default(phases) -> list[tuple[str, str]]:
    """(method, reason) of the registered methods of these phases' tasks that the background set leaves out."""
    from baselines.defaults import excluded_reason
    from baselines.registry import METHODS

    tasks = sorted({phase.task for phase in phases})
    return [(method, excluded_reason(task, method)) for task in tasks for method in METHODS.get(task, {})
            if excluded_reason(task, method)]


def _latest_per_method(runs) -> list[BaselineRun]:
    """The newest run of each (phase, method, preset); older attempts are history."""
    seen, latest = set(), []
    for run in runs:
        key = (run.phase_id, run.method, run.preset)
        if key not in seen:
            seen.add(key)
            latest.append(run)
    return latest


@lru_cache(maxsize=1)
def _papers() -> dict[str, str]:
    """method name -> the paper it reimplements (the module's PAPER constant), read from the module's source so the
    web process never imports torch models."""
    from baselines.registry import METHODS

    return {name: _module_constant(spec.module, "PAPER") for methods in METHODS.values()
            for name, spec in methods.items()}


def _module_constant(module: str, name: str) -> str:
    found = importlib.util.find_spec(module)
    if found is None or not found.origin:
        return ""
    for node in ast.parse(Path(found.origin).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == name for target in node.targets):
            try:
                return str(ast.literal_eval(node.value))
            except ValueError:
                return ""
    return ""

"""Template context every page's base layout needs: the installed SpineBench version (footer) and the challenges the
visitor may see (header navigation, queried only when a template reads it)."""

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version


@lru_cache(maxsize=1)
def _version() -> str:
    try:
        return version("spinebench")
    except PackageNotFoundError:  # running from a source tree that was never pip-installed
        return "dev"


def site(request) -> dict:
    from spinebench.access import visible_challenges

    def nav_challenges():
        return list(visible_challenges(request.user).only("slug", "title")[:12])

    return {"spinebench_version": _version(), "nav_challenges": nav_challenges}

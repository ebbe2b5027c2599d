"""What the challenge page's tabs show that belongs to apps above `challenges` (leaderboards, baselines): each such
app registers a context provider for its tab at app-ready time, so the challenge views never import them (the app
order of docs/architecture.md). A provider takes the request, the challenge and the phases the visitor may see and
returns extra template context."""

from __future__ import annotations

from collections.abc import Callable

TabContext = Callable[..., dict]
_PROVIDERS: dict[str, TabContext] = {}


def register_tab_context(tab: str, provider: TabContext) -> None:
    _PROVIDERS[tab] = provider


def tab_context(tab: str, *, request, challenge, phases) -> dict:
    provider = _PROVIDERS.get(tab)
    return provider(request=request, challenge=challenge, phases=phases) if provider else {}

"""Template filters: markdown rendered safely (raw HTML stripped by bleach), metric formatting.

Rendering markdown and cleaning it costs milliseconds a description, on every view of a challenge page or list: the
result is cached, keyed on a hash of the text (and the filter's arguments), so an edited description is rendered
anew and an unchanged one once per cache."""

import hashlib
import html

import bleach
import markdown as markdown_lib
from django import template
from django.core.cache import cache
from django.utils.safestring import mark_safe

register = template.Library()

ALLOWED_TAGS = sorted(
    set(bleach.sanitizer.ALLOWED_TAGS)
    | {
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "code",
        "hr",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "img",
    }
)
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "title"], "abbr": ["title"], "acronym": ["title"]}


#: How long a rendered text stays cached (the key changes with the text: this only bounds memory).
RENDERED_CACHE_SECONDS = 24 * 3600
#: Bumped whenever the rendering rules (tags, extensions, summary rules) change, so old renderings are not served.
RENDERING_VERSION = 1


def _rendered(kind: str, text: str, render, *arguments) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    key = f"rendered:{RENDERING_VERSION}:{kind}:{':'.join(map(str, arguments))}:{digest}"
    found = cache.get(key)
    if found is None:
        found = render()
        cache.set(key, found, RENDERED_CACHE_SECONDS)
    return found


def _markdown_html(text: str) -> str:
    html = markdown_lib.markdown(text, extensions=["tables", "fenced_code"])
    return bleach.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, protocols=["http", "https", "mailto"], strip=True
    )


@register.filter
def markdown(text: str) -> str:
    text = text or ""
    return mark_safe(_rendered("markdown", text, lambda: _markdown_html(text)))  # bleach cleaned it


@register.filter
def summary(text: str, length: int = 240) -> str:
    """Plain text of the first paragraph of a markdown description that is prose (not a heading, table or list, nor
    an introduction ending in a colon), shortened to `length` characters at a word (for the challenge list).

    Plain text, not HTML: markdown and bleach escape `&` and `<`, so the result is unescaped here and the template's
    autoescape escapes it exactly once (it was escaped twice: `&amp;amp;` on the page)."""
    text = text or ""
    return _rendered("summary", text, lambda: _summary_text(text, length), length)


def _summary_text(text: str, length: int) -> str:
    for block in text.split("\n\n"):
        block = block.strip()
        if block and not block.startswith(("#", "|", "```", "-", "*", "1.")) and not block.endswith(":"):
            plain = html.unescape(bleach.clean(markdown_lib.markdown(block), tags=[], strip=True)).replace("\n", " ")
            return plain if len(plain) <= length else plain[: length - 1].rsplit(" ", 1)[0] + " …"
    return ""


@register.filter
def metric(value, places=3):
    if value is None:
        return "—"
    try:
        return f"{float(value):.{int(places)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None

"""Template filters: markdown rendered safely (raw HTML stripped by bleach), metric formatting."""

import html

import bleach
import markdown as markdown_lib
from django import template
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


@register.filter
def markdown(text: str) -> str:
    html = markdown_lib.markdown(text or "", extensions=["tables", "fenced_code"])
    return mark_safe(
        bleach.clean(
            html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, protocols=["http", "https", "mailto"], strip=True
        )
    )


@register.filter
def summary(text: str, length: int = 240) -> str:
    """Plain text of the first paragraph of a markdown description that is prose (not a heading, table or list, nor
    an introduction ending in a colon), shortened to `length` characters at a word (for the challenge list).

    Plain text, not HTML: markdown and bleach escape `&` and `<`, so the result is unescaped here and the template's
    autoescape escapes it exactly once (it was escaped twice: `&amp;amp;` on the page)."""
    for block in (text or "").split("\n\n"):
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

"""The design system's rules on the templates themselves: one base layout, no page with its own header, nothing inline
that a strict Content-Security-Policy would refuse, and the stats include point kept on the phase page."""

import re
from pathlib import Path

import pytest

PLATFORM = Path(__file__).resolve().parents[2] / "platform" / "spinebench"
TEMPLATES = sorted(path for path in PLATFORM.rglob("templates/**/*.html"))
PAGES = [path for path in TEMPLATES if path.name != "base.html" and "components" not in path.parts
         and not path.name.startswith("_")]


def test_templates_are_found():
    assert len(PAGES) >= 8 and any(path.name == "phase.html" for path in PAGES)


@pytest.mark.parametrize("path", PAGES, ids=lambda path: str(path.relative_to(PLATFORM)))
def test_every_page_extends_the_one_base_and_builds_no_header(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{% extends "base.html" %}'), path
    assert "<header" not in text and "<html" not in text and "<nav class=\"navbar" not in text


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: str(path.relative_to(PLATFORM)))
def test_nothing_inline_for_a_strict_csp(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>"
    assert "<style" not in text and not re.search(r"\sstyle=", text), "inline style"
    assert not re.search(r"\son[a-z]+=", text), "inline event handler"


def test_phase_page_keeps_the_statistics_include():
    text = (PLATFORM / "templates" / "leaderboards" / "phase.html").read_text(encoding="utf-8")
    assert '{% include "leaderboards/_statistics.html" %}' in text
    assert (PLATFORM / "templates" / "leaderboards" / "_statistics.html").is_file()

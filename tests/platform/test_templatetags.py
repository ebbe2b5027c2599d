"""Challenge summaries on the list page were escaped twice (`&amp;amp;`): markdown and bleach escape `&`, then the
template's autoescape escaped the result again. The summary filter now returns plain text, escaped once."""

import pytest
from django.template import Context, Template

from spinebench.challenges.templatetags.spinebench import summary

from .factories import ChallengeFactory

pytestmark = pytest.mark.django_db


def render_summary(description: str) -> str:
    return Template("{% load spinebench %}{{ text|summary }}").render(Context({"text": description}))


@pytest.mark.parametrize(
    ("description", "plain", "html"),
    [
        ("Cobb angles & vertebra labels.", "Cobb angles & vertebra labels.", "Cobb angles &amp; vertebra labels."),
        ('Scores: 1 < 2 and "quoted".', 'Scores: 1 < 2 and "quoted".', "Scores: 1 &lt; 2 and &quot;quoted&quot;."),
        ("AT&amp;T data", "AT&T data", "AT&amp;T data"),  # an entity in the source is one character, escaped once
        (
            "Some **bold** and <script>alert(1)</script> text",
            "Some bold and alert(1) text",
            "Some bold and alert(1) text",
        ),
        ("Literal &lt;b&gt; tag", "Literal <b> tag", "Literal &lt;b&gt; tag"),
    ],
)
def test_summary_is_plain_text_escaped_once(description, plain, html):
    assert summary(description) == plain
    assert render_summary(description) == html


def test_challenge_list_shows_an_ampersand_once(client):
    ChallengeFactory(description="# Title\n\nSegmentation & labelling of the spine.")
    page = client.get("/").content.decode()
    assert "Segmentation &amp; labelling of the spine." in page
    assert "&amp;amp;" not in page


def test_a_description_is_rendered_once_and_again_when_it_changes(monkeypatch):
    """Rendered markdown is cached keyed on the text: the same text is converted once, an edited one anew."""
    from spinebench.challenges.templatetags import spinebench as filters

    calls = []
    convert = filters.markdown_lib.markdown
    monkeypatch.setattr(filters.markdown_lib, "markdown", lambda text, **kw: calls.append(text) or convert(text, **kw))
    text = "# Cached heading 7f3\nSome *text*."
    first = filters.markdown(text)
    assert filters.markdown(text) == first
    assert "<h1>Cached heading 7f3</h1>" in first and "<em>text</em>" in first
    assert calls == [text]
    edited = filters.markdown(text.replace("*text*", "**text**"))
    assert "<strong>text</strong>" in edited and len(calls) == 2
    cleaned = filters.markdown("<script>alert(1)</script> x 7f3")
    assert "<script" not in cleaned and "<p>x 7f3</p>" in cleaned  # still cleaned
    assert "<script" not in filters.markdown("<script>alert(1)</script> x 7f3")  # and so from the cache

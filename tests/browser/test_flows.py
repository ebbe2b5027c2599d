"""Main flows in a real browser (Chromium): the public reading path and a new participant's whole path from sign-up
to a ranked CSV, with axe-core on every main page, the keyboard path in, phone width and dark mode."""

from __future__ import annotations

import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from spinebench.submissions.services import create_submission
from tests.platform.aasce_data import HIDDEN_ANGLES, TRAIN_ANGLES, predictions_csv
from tests.platform.factories import ChallengeFactory, PhaseFactory, RegistrationFactory

from .conftest import assert_accessible, has_no_horizontal_scroll, settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NEAR = {case: (a + 1.0, b + 1.0, c + 1.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}
FAR = {case: (a + 9.0, b + 9.0, c + 9.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}


@pytest.fixture
def aasce(eager_tasks):
    """An AASCE challenge with an open test phase (limit 3) that already has one ranked participant, and a second
    challenge so the list has something to filter out."""
    challenge = ChallengeFactory(
        slug="aasce-2019", title="AASCE 2019", description="Estimate the three **Cobb angles** of each radiograph."
    )
    phase = PhaseFactory(challenge=challenge, slug="test", title="Test", submission_limit=3)
    rival = RegistrationFactory(challenge=challenge, user__username="rival").user
    upload = SimpleUploadedFile("predictions.csv", predictions_csv(FAR), content_type="text/csv")
    submission = create_submission(phase=phase, user=rival, upload=upload)
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    ChallengeFactory(slug="fracture-ct", title="Vertebral fractures", description="Grade fractures in CT.")
    return phase


def test_public_flow_browse_filter_leaderboard_phase(page, live_server, aasce):
    page.goto("/challenges/")
    expect(page.get_by_role("heading", name="Challenges", level=1)).to_be_visible()
    assert_accessible(page)
    results = page.locator("#challenge-results")
    expect(results.get_by_role("link", name="Vertebral fractures")).to_be_visible()

    # live filtering with htmx: typing narrows the list without a page load, and the address keeps the filter
    page.get_by_label("Search").fill("cobb")
    expect(results.get_by_role("link", name="Vertebral fractures")).to_have_count(0)
    expect(results.get_by_role("link", name="AASCE 2019")).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=cobb"))

    results.get_by_role("link", name="AASCE 2019").click()
    expect(page.get_by_role("heading", name="AASCE 2019", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Phases", exact=True).click()  # htmx swaps the panel and pushes ?tab=phases
    expect(page).to_have_url(re.compile(r"tab=phases"))
    expect(page.locator("#phases")).to_contain_text("open now")
    assert_accessible(page)
    page.get_by_role("link", name="Leaderboards", exact=True).click()
    expect(page.locator("#tab-leaderboards")).to_contain_text("rival")
    page.get_by_role("link", name="Baselines", exact=True).click()
    expect(page.locator("#baselines")).to_contain_text("seg4reg")
    assert_accessible(page)

    page.get_by_role("link", name="Phases", exact=True).click()
    page.locator("#phases").get_by_role("link", name="Test").click()
    expect(page.get_by_role("heading", name=re.compile("^Test"), level=1)).to_be_visible()
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("rival")
    expect(page.locator("#facts-upload")).to_be_visible()
    expect(page.locator("#phase-facts")).to_contain_text("case_id,pt,mt,tl")
    expect(page.locator("#phase-facts")).to_contain_text("3 per 24 h")
    assert_accessible(page)

    # a ranked submission's page is public
    rows.first.get_by_role("link", name="rival").click()
    expect(page.locator("#status")).to_have_text("succeeded")
    assert_accessible(page)


def test_participant_flow_signup_join_download_submit_ranked(page, live_server, aasce):
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    assert_accessible(page)
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Email").fill("newcomer@example.org")
    page.locator("#id_password1").fill("a-Long-pass-9")
    page.locator("#id_password2").fill("a-Long-pass-9")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#user-menu")).to_have_text("newcomer")

    page.goto("/challenges/aasce-2019/")
    page.get_by_role("button", name="Join AASCE 2019").click()
    expect(page.get_by_role("status")).to_contain_text("You are registered for AASCE 2019")
    assert_accessible(page)

    page.get_by_role("link", name="Data", exact=True).click()
    with page.expect_download() as download_info:
        page.locator("#tab-data").get_by_role("link", name=re.compile("Download the training data")).click()
    archive = zipfile.ZipFile(download_info.value.path())
    angles_csv = next(name for name in archive.namelist() if name.endswith("ground_truth/angles.csv"))
    assert set(TRAIN_ANGLES) <= {line.split(",")[0] for line in archive.read(angles_csv).decode().splitlines()[1:]}

    page.goto("/challenges/aasce-2019/phases/test/")
    expect(page.locator("#quota")).to_contain_text("3 of 3")
    page.get_by_role("link", name="Submit").first.click()
    expect(page.get_by_role("heading", name="Submit to Test")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("File").set_input_files(
        {"name": "predictions.csv", "mimeType": "text/csv", "buffer": predictions_csv(NEAR)}
    )
    page.get_by_label("Comment").fill("first try")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#status")).to_have_text("succeeded")
    expect(page.locator("#rank")).to_have_text("1")
    assert_accessible(page)

    page.get_by_role("link", name="Test", exact=True).first.click()
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("newcomer")
    expect(rows.nth(1)).to_contain_text("rival")
    expect(page.locator("#quota")).to_contain_text("2 of 3")


def test_keyboard_skip_link_and_focus(page, live_server, aasce):
    page.goto("/challenges/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    outline = page.evaluate(
        "(() => { const a = document.querySelector('#challenge-results a'); a.focus(); "
        "return getComputedStyle(a).outlineStyle; })()"
    )
    assert outline == "solid"


def test_login_page_is_accessible(page, live_server, aasce):
    page.goto("/accounts/login/")
    assert_accessible(page)
    page.get_by_label("Username").fill("rival")
    page.locator("#id_password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-menu")).to_have_text("rival")


@pytest.mark.parametrize(
    "path", ["/challenges/", "/challenges/aasce-2019/?tab=phases", "/challenges/aasce-2019/phases/test/"]
)
def test_phone_width_and_dark_mode(phone_context, browser, live_server, aasce, path):
    page = phone_context.new_page()
    page.goto(path)
    page.wait_for_load_state("networkidle")
    assert has_no_horizontal_scroll(page), f"{path} scrolls sideways at phone width"
    expect(page.get_by_role("button", name="Toggle navigation")).to_be_visible()
    page.get_by_role("button", name="Toggle navigation").click()
    expect(page.get_by_role("link", name="API", exact=True)).to_be_visible()

    dark = browser.new_context(color_scheme="dark", base_url=live_server.url)
    try:
        dark_page = dark.new_page()
        dark_page.goto(path)
        assert dark_page.evaluate("document.documentElement.dataset.bsTheme") == "dark"
        assert_accessible(dark_page)  # colour contrast holds in dark mode too
        settle(dark_page)
    finally:
        dark.close()


STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"


def test_pages_and_live_parts_work_under_a_strict_content_security_policy(page, live_server, aasce):
    """No inline script, style or handler anywhere: Bootstrap's menus and htmx's live filter keep working when the
    browser refuses everything inline (the policy the site's CSP middleware can then send)."""
    refused = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )

    def with_csp(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route("**/*", with_csp)
    page.goto("/challenges/")
    page.get_by_label("Search").fill("fractures")
    expect(page.locator("#challenge-results").get_by_role("link", name="AASCE 2019")).to_have_count(0)
    page.get_by_role("button", name="Challenges").click()  # Bootstrap's dropdown (its script, no inline code)
    expect(page.get_by_role("link", name="All challenges")).to_be_visible()
    for path in (
        "/challenges/aasce-2019/?tab=phases",
        "/challenges/aasce-2019/phases/test/",
        "/accounts/signup/",
        "/algorithms/",
    ):
        page.goto(path)
        assert_accessible(page)
    assert refused == []


def test_reading_without_javascript(browser, live_server, aasce):
    """Pages read fully with JavaScript off: tabs are links, the filter is a GET form, the phone menu stays open."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}, base_url=live_server.url
    )
    try:
        page = context.new_page()
        page.goto("/challenges/")
        page.get_by_label("Search").fill("cobb")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"q=cobb"))
        expect(page.locator("#challenge-results").get_by_role("link", name="Vertebral fractures")).to_have_count(0)
        expect(page.get_by_role("link", name="Log in")).to_be_visible()  # the collapsed menu is open without JS
        page.locator("#challenge-results").get_by_role("link", name="AASCE 2019").click()
        page.get_by_role("link", name="Leaderboards", exact=True).click()
        expect(page).to_have_url(re.compile(r"tab=leaderboards"))
        expect(page.locator("#tab-leaderboards")).to_contain_text("rival")
        page.locator("#tab-leaderboards").get_by_role("link", name="Test").click()
        expect(page.locator("#leaderboard tbody tr")).to_have_count(1)
        settle(page)
    finally:
        context.close()


def test_case_viewer_of_a_training_submission(page, live_server, settings, eager_tasks):
    """A participant opens one case of their training-phase submission: the radiograph with the Cobb lines loads and
    the page passes axe."""
    from spinebench.datasets.services import register_dataset
    from tests.platform.aasce_landmarks import TILTS, landmark_dataset, rectangle_landmarks

    challenge = ChallengeFactory(slug="viewer", title="Viewer")
    folder = settings.DATASETS_ROOT / "viewer" / "train"
    landmark_dataset(folder, {"case_a": rectangle_landmarks(TILTS), "case_b": rectangle_landmarks(TILTS[::-1])})
    train = register_dataset(challenge=challenge, slug="train", folder=folder)
    phase = PhaseFactory(
        challenge=challenge,
        slug="training",
        title="Training",
        dataset=train,
        training_dataset=train,
        show_case_results=True,
    )
    user = RegistrationFactory(challenge=challenge, user__username="viewer").user
    upload = SimpleUploadedFile("p.csv", predictions_csv({"case_a": (24.0, 9.0, 14.0), "case_b": (20.0, 8.0, 12.0)}))
    submission = create_submission(phase=phase, user=user, upload=upload)

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("viewer")
    page.locator("#id_password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.goto(submission.get_absolute_url())
    page.locator("#cases").get_by_role("link", name="case_a").click()
    expect(page.get_by_role("heading", name="Case case_a")).to_be_visible()
    expect(page.locator("#case-angles")).to_contain_text("T6–T12")
    image = page.locator("#case-image")
    expect(image).to_be_visible()
    # Functions, not expression strings: the page's strict CSP forbids eval, and a string expression is eval'd there.
    page.wait_for_function("() => document.querySelector('#case-image').complete")
    assert image.evaluate("img => img.naturalWidth") > 200
    assert_accessible(page)
    page.get_by_role("link", name="case_b →").click()
    expect(page.get_by_role("heading", name="Case case_b")).to_be_visible()

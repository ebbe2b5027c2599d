"""The CT case viewer in a real browser: the participant opens a training case from the submission's per-case table,
moving the axial slider swaps the slice picture live (a new server-drawn PNG, no page load), and axe-core finds no
serious or critical violation on the viewer; at phone width nothing scrolls sideways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.platform.viewer_data import viewer_world

from .conftest import assert_accessible, has_no_horizontal_scroll, settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def log_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.locator("#id_password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-menu")).to_have_text(user.username)


def test_ct_viewer_slider_changes_the_slice(page, phone_context, live_server, eager_tasks):
    world = viewer_world("metastatic-body-ct")
    submission = world["training"]
    case_id = min(submission.evaluation.case_metrics)
    log_in(page, world["participant"])

    page.goto(submission.get_absolute_url())
    page.locator("#cases").get_by_role("link", name=case_id).click()
    expect(page.get_by_role("heading", name=f"Case {case_id}", level=1)).to_be_visible()
    settle(page)
    assert_accessible(page)

    image = page.locator("#slice-axial")
    before = image.get_attribute("src")
    first_pixels = image.screenshot()
    slider = page.get_by_label(re.compile("^Axial slice"))
    start = int(slider.input_value())
    slider.focus()
    with page.expect_response(re.compile(r"/slices/axial/\d+\.png")) as response:
        page.keyboard.press("ArrowLeft" if start > 0 else "ArrowRight")
    assert response.value.status == 200 and response.value.header_value("content-type") == "image/png"
    expect(image).not_to_have_attribute("src", before)
    moved = int(slider.input_value())
    assert moved == (start - 1 if start > 0 else start + 1)
    assert f"/slices/axial/{moved}.png" in image.get_attribute("src")
    expect(page.locator("#output-axial")).to_have_text(str(moved))
    assert page.url.endswith(f"/cases/{case_id}/")  # no page load: the form was not submitted
    settle(page)
    assert image.evaluate("element => element.complete && element.naturalWidth") == 384
    assert image.screenshot() != first_pixels
    assert_accessible(page)

    # phone width: the three planes stack, nothing scrolls sideways
    phone = phone_context.new_page()
    log_in(phone, world["participant"])
    phone.goto(page.url)
    expect(phone.locator("#slice-sagittal")).to_be_visible()
    settle(phone)
    assert has_no_horizontal_scroll(phone)

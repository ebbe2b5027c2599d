"""Regenerate the README's screenshots (docs/screenshots/*.png) from a real browser session, the same kind the browser
tests run: Debian's Chromium driven by Playwright against a live server of the bootstrapped site.

    spinebench bootstrap --small --max-cases 8 --methods seg4reg     # once: data, challenges, one tiny baseline
    python docs/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

It uses the database of the current settings (SPINEBENCH_VAR_DIR / DATABASE_URL, like `make run`), adds a demo
participant `demo` with two submissions of its own (a training-phase CSV that is the labels scaled by a few per
cent, and a
test-phase CSV that predicts the training mean for every case, so no hidden label is used), serves the site on an
ephemeral 127.0.0.1 port in this process and photographs the main pages at desktop and phone width, light and dark.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "platform"), str(REPO)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spinebench.settings.local")
# Playwright's sync API runs an event loop in this thread; the ORM calls here are plain blocking set-up calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHALLENGE = "aasce-2019"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def demo_participant(password: str):
    """The `demo` user (with a verified example.org address), registered for the AASCE challenge, with one scored
    submission on its training and test phases (created once; later runs reuse them)."""
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from evaluators.formats import load_ground_truth
    from spinebench.accounts.email_links import mark_verified
    from spinebench.challenges.models import Challenge
    from spinebench.challenges.services import register
    from spinebench.submissions.models import Submission
    from spinebench.submissions.services import create_submission

    user, _ = get_user_model().objects.get_or_create(username="demo")
    user.set_password(password)
    user.email = "demo@example.org"
    user.save()
    mark_verified(user=user, email=user.email)  # as after its link was followed: no "verify your email" banner
    challenge = Challenge.objects.get(slug=CHALLENGE)
    register(challenge, user)
    training = challenge.phases.get(slug="training")
    test = challenge.phases.get(slug="test")
    truth = load_ground_truth("aasce-cobb", training.dataset.root)
    angles = {case: list(value["angles"]) for case, value in truth.items()}
    mean = [sum(values[k] for values in angles.values()) / len(angles) for k in range(3)]

    def csv(rows: dict) -> SimpleUploadedFile:
        lines = ["case_id,pt,mt,tl"] + [f"{case},{pt:.2f},{mt:.2f},{tl:.2f}" for case, (pt, mt, tl) in rows.items()]
        return SimpleUploadedFile("predictions.csv", ("\n".join(lines) + "\n").encode(), content_type="text/csv")

    made = {}
    for phase, rows in (
        (
            training,
            {
                case: [a * (1.08 if i % 2 else 0.93) + 0.6, b * 0.94 + 0.4, c * 1.1]
                for i, (case, (a, b, c)) in enumerate(angles.items())
            },
        ),
        (test, {case: mean for case in test.dataset.case_ids()}),
    ):
        existing = Submission.objects.filter(phase=phase, creator=user, status="succeeded").first()
        made[phase.slug] = existing or create_submission(phase=phase, user=user, upload=csv(rows), comment="demo")
    return user, made


def demo_organizer(password: str):
    """The `host` user (verified address), a co-organizer of the AASCE challenge: what its console looks like."""
    from django.contrib.auth import get_user_model

    from spinebench.accounts.email_links import mark_verified
    from spinebench.challenges.models import Challenge

    user, _ = get_user_model().objects.get_or_create(username="host")
    user.set_password(password)
    user.email = "host@example.org"
    user.save()
    mark_verified(user=user, email=user.email)
    Challenge.objects.get(slug=CHALLENGE).organizers.add(user)
    return user


def serve():
    """The site on an ephemeral 127.0.0.1 port, static files from the installed packages (as whitenoise would)."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    thread = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    return thread, f"http://127.0.0.1:{thread.port}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from playwright.sync_api import sync_playwright

    password = secrets.token_urlsafe(16)
    _, made = demo_participant(password)
    demo_organizer(password)
    thread, base = serve()
    args.out.mkdir(parents=True, exist_ok=True)
    shots = []

    def shoot(page, name: str, *, full_page: bool = True) -> None:
        path = args.out / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        shots.append(path)

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
            desktop = browser.new_context(viewport=DESKTOP, base_url=base, color_scheme="light")
            page = desktop.new_page()
            page.goto("/challenges/")
            shoot(page, "challenges")
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill("demo")
            page.locator("#id_password").fill(password)
            page.get_by_role("button", name="Log in").click()
            page.goto(f"/challenges/{CHALLENGE}/?tab=phases")
            shoot(page, "challenge-phases")
            page.goto(f"/challenges/{CHALLENGE}/?tab=baselines")
            shoot(page, "challenge-baselines", full_page=False)
            page.goto(f"/challenges/{CHALLENGE}/phases/test/")
            shoot(page, "leaderboard")
            page.goto(made["training"].get_absolute_url())
            shoot(page, "submission-bland-altman", full_page=False)
            made["training"].refresh_from_db()
            case = sorted(made["training"].evaluation.case_metrics)[2]
            page.goto(f"{made['training'].get_absolute_url()}cases/{case}/")
            page.wait_for_function("document.querySelector('#case-image').complete")
            shoot(page, "case-viewer", full_page=False)
            page.goto("/api/docs/")
            page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
            shoot(page, "api-docs", full_page=False)

            page.goto("/dashboard/")
            shoot(page, "dashboard", full_page=False)
            page.goto(f"/challenges/{CHALLENGE}/phases/test/history/")
            shoot(page, "leaderboard-history", full_page=False)

            from django.urls import reverse

            console = browser.new_context(viewport=DESKTOP, base_url=base, color_scheme="light")
            page = console.new_page()
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill("host")
            page.locator("#id_password").fill(password)
            page.get_by_role("button", name="Log in").click()
            page.goto(reverse("organizers:overview", args=[CHALLENGE]))
            shoot(page, "organizer-console", full_page=False)
            page.goto(reverse("organizer_evaluation:monitor", args=[CHALLENGE]))
            shoot(page, "organizer-monitor", full_page=False)

            dark = browser.new_context(viewport=DESKTOP, base_url=base, color_scheme="dark")
            page = dark.new_page()
            page.goto(f"/challenges/{CHALLENGE}/phases/test/")
            shoot(page, "leaderboard-dark", full_page=False)

            phone = browser.new_context(
                viewport=PHONE, base_url=base, is_mobile=True, has_touch=True, device_scale_factor=2
            )
            page = phone.new_page()
            page.goto("/challenges/")
            shoot(page, "phone-challenges", full_page=False)
            page.goto(f"/challenges/{CHALLENGE}/phases/test/")
            page.get_by_role("button", name="Toggle navigation").click()
            page.wait_for_timeout(400)  # the menu's opening transition
            shoot(page, "phone-phase-menu", full_page=False)
            browser.close()
    finally:
        thread.terminate()
    for path in shots:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

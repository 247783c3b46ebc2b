"""The DPO console in a real browser: Debian's headless chromium driven by Playwright (never
``playwright install``: the browser is the system's). Sign in with the keyboard, open a case,
watch the countdown tick, fill the risk worksheet, render the draft, approve it, screenshot.

The screenshot lands in pytest's tmp dir (printed), and in $ACCESS_AUDIT_SCREENSHOT_DIR when set.
The fixtures ``served`` and ``browser`` are in conftest.py (the other browser tests use them too).
"""

from __future__ import annotations

import re

import pytest
from api_helpers import keep_screenshots

from access_audit.api.auth import Role

pytestmark = pytest.mark.integration


def test_dpo_approves_a_notification_in_the_console(served, browser, tmp_path):
    base, env = served
    case_id = env.case_ids["export"]
    page = browser.new_page(viewport={"width": 1366, "height": 768})  # a laptop screen
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # sign in with the keyboard only: the token field has focus, Enter submits
    page.goto(f"{base}/console/cases")
    assert page.url.startswith(f"{base}/login?next=")
    # autofocus lands on the token field (wait for it: on a loaded machine it can trail the load event)
    page.wait_for_function("document.activeElement && document.activeElement.id === 'token'")
    page.keyboard.type(env.tokens[Role.dpo.value])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/cases")
    # the first Tab reaches the skip link, which is visible and outlined when focused
    page.keyboard.press("Tab")
    focused = page.evaluate("() => [document.activeElement.textContent, "
                            "getComputedStyle(document.activeElement).outlineStyle]")
    assert focused == ["Skip to content", "solid"]

    # the open cases, each clock counting down live, coloured by how near the deadline is
    urgent = page.locator(".countdown[data-due]").first
    assert "due-6h" in (urgent.get_attribute("class") or "")
    first = urgent.text_content()
    page.wait_for_timeout(1300)
    assert urgent.text_content() != first  # it ticks
    assert re.fullmatch(r"1h 59m \d\ds left", urgent.text_content() or "")

    # open the case (its title is script-shaped text: shown as text)
    page.get_by_role("link", name=case_id).click()
    page.wait_for_url(f"{base}/console/cases/{case_id}")
    assert page.locator("h1").inner_text().endswith("<script>alert('case')</script> Mass export by bob")
    clock = page.locator('.countdown[data-clock="gdpr.authority"]')
    assert "due-later" in (clock.get_attribute("class") or "")
    assert re.fullmatch(r"1d 1[78]h \d+m left", clock.inner_text())

    # the risk worksheet
    form = page.locator("#worksheet")
    form.locator("#ws-ident").select_option("maximum")
    form.locator("#ws-cons").select_option("serious")
    form.get_by_label("financial").check()
    form.locator("#ws-ind").fill("3")
    form.get_by_role("button", name="Record the assessment").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*done=assessment.*"))
    assert page.get_by_role("status").inner_text() == "Risk assessment recorded."
    assert page.locator("#risk-proposed").inner_text() == "high"

    # render the draft (English), read it
    page.locator("#dr-lang").select_option("en")
    page.locator("#render-draft").click()
    page.wait_for_url(re.compile(r".*done=draft.*"))
    preview = page.locator("#draft-preview")
    assert "Phishing using the exported addresses" in preview.inner_text() and "Zorgwijk B.V." in preview.inner_text()
    assert page.locator("#draft-preview script").count() == 0

    # approve it
    page.locator("#approve").click()
    page.wait_for_url(re.compile(r".*done=approval.*"))
    assert page.get_by_role("status").inner_text() == "Draft approved."
    assert page.locator("#case-state").inner_text() == "approved"
    assert env.repo.get(case_id).state.value == "approved"

    shot = tmp_path / "console-case-approved.png"
    page.screenshot(path=str(shot), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    top = tmp_path / "console-case-top.png"
    page.goto(f"{base}/console/cases/{case_id}")
    page.screenshot(path=str(top))
    keep_screenshots(shot, top)
    assert shot.stat().st_size > 10_000
    assert errors == [], errors  # no script errors, nothing blocked by the CSP


def test_the_api_docs_render_with_nothing_from_outside(served, browser):
    """/docs is Swagger UI from the package: it renders the operations in the browser, under its CSP,
    and the page asks nothing of any other host (the API may run air-gapped)."""
    base, _env = served
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:")) else None)
    page.goto(f"{base}/docs")
    try:
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    except Exception:
        raise AssertionError((errors, outside, page.inner_text("body")[:3000])) from None
    paths = page.locator(".opblock-summary-path").all_text_contents()
    assert "/api/events" in [p.strip() for p in paths] and len(paths) > 30
    assert page.locator(".info .title").first.text_content().startswith("access-audit")
    assert outside == [] and errors == [], (outside, errors)

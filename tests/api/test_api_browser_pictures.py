"""The console's pictures in a real browser (Debian's headless chromium, Playwright; the fixtures
``served`` and ``browser`` are in conftest.py): the activity page's bars and top lists as drawn,
the query behind a bar followed to its events, and the subject report's timeline. Both pages ask
nothing of any other host, fit a 1280-px wide screen, and are screenshot (pytest's tmp dir, and
$ACCESS_AUDIT_SCREENSHOT_DIR when set)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from api_helpers import events, keep_screenshots

from access_audit.api.auth import Role
from access_audit.store.subject_report import purpose_of

pytestmark = pytest.mark.integration
WIDTH = 1280


def _hour(t: datetime) -> str:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat().replace("+00:00", "Z")


def _open(browser: Any, base: str) -> tuple[Any, list[str], list[str]]:
    """A page 1280 px wide that records script errors and every request outside the origin."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 800})
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:")) else None)
    return page, errors, outside


def _sign_in(page: Any, base: str, token: str, path: str) -> None:
    page.goto(f"{base}{path}")
    assert page.url.startswith(f"{base}/login?next=")
    page.locator("#token").fill(token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}{path}")


def _fits(page: Any) -> None:
    """No horizontal scroll at 1280 px: nothing is wider than the window."""
    width = page.evaluate("() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert width <= WIDTH, width


def test_the_activity_page_draws_the_seeded_events_and_a_bar_leads_to_them(served, browser, tmp_path):
    base, env = served
    seeded = events()
    page, errors, outside = _open(browser, base)
    _sign_in(page, base, env.tokens[Role.dpo.value], "/console/activity")

    # the hourly bars: one per hour with events, as many as were seeded in it, drawn to scale
    per_hour = Counter(_hour(e.timestamp) for e in seeded)
    bars = page.locator("#events-hourly a.bar")
    drawn = {b.get_attribute("data-start"): int(b.get_attribute("data-count") or 0) for b in bars.all()}
    assert drawn == dict(per_hour)
    heights = {b.get_attribute("data-start"): b.locator("rect").bounding_box()["height"] for b in bars.all()}
    tallest = max(heights.values())
    assert tallest > 100  # the chart is 140 px high: the busiest hour nearly fills it
    for start, n in per_hour.items():
        assert heights[start] == pytest.approx(tallest * n / max(per_hour.values()), abs=1.5), start
    caption = page.locator("#events-hourly figcaption").inner_text()
    assert f"{len(seeded)} events in all, at most {max(per_hour.values())} in one bar" in caption

    # the top lists: the seeded users, resources and addresses, most events first, with their counts
    for field, value_of in (("user.name", lambda e: e.user.name if e.user else None),
                            ("resource.name", lambda e: e.resource.name if e.resource else None),
                            ("source.ip", lambda e: str(e.source.ip) if e.source and e.source.ip else None)):
        counts = Counter(v for v in map(value_of, seeded) if v is not None)
        expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        rows = page.locator(f"#top-{field.replace('.', '-')} tbody tr")
        shown = [(r.locator("a").inner_text(), int(r.locator(".count").inner_text())) for r in rows.all()]
        assert shown == expected, field
        meters = [float(r.locator("meter").get_attribute("value") or 0) for r in rows.all()]
        assert meters == [n for _, n in expected]
    # the XSS user name is shown as text, not run
    assert '<img src=x onerror="alert(1)">' in page.locator("#top-user-name").inner_text()

    _fits(page)
    for top in page.locator(".top-list").all():  # each list's table stays inside its column
        box, table = top.bounding_box(), top.locator("table").bounding_box()
        assert table["x"] + table["width"] <= box["x"] + box["width"] + 0.5, top.get_attribute("id")
    shot = tmp_path / "console-activity.png"
    page.screenshot(path=str(shot), full_page=True)

    # the busiest bar leads to its events: the search of that hour, as the same signed-in user
    start, n = max(per_hour.items(), key=lambda kv: (kv[1], kv[0]))
    with page.expect_response(lambda r: r.url.startswith(f"{base}/api/events?")) as answer:
        page.locator(f'#events-hourly a.bar[data-start="{start}"]').click()
    assert answer.value.status == 200
    found = answer.value.json()["events"]
    page.wait_for_url(f"{base}/api/events?*")
    want = sorted(e.id for e in seeded if _hour(e.timestamp) == start)
    assert len(found) == n and sorted(d["event"]["id"] for d in found) == want
    assert all(_hour(datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00"))) == start for d in found)

    keep_screenshots(shot)
    assert shot.stat().st_size > 10_000
    assert outside == [] and errors == [], (outside, errors)


def test_the_subject_report_is_a_timeline_of_who_saw_the_subject(served, browser, tmp_path):
    base, env = served
    seeded = sorted((e for e in events() if "c-1" in e.resource.subject_ids), key=lambda e: (e.timestamp, e.id))
    page, errors, outside = _open(browser, base)
    _sign_in(page, base, env.tokens[Role.dpo.value], "/console/activity")

    # from the activity page's form to the report, then again with a purpose (recorded)
    page.locator("#subject-lookup input[name=subject_id]").fill("c-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/subjects/c-1")
    page.locator("#subject-form input[name=purpose]").fill("Art. 15 request 2026-014")
    page.locator("#subject-form button").click()
    page.wait_for_url(f"{base}/console/subjects/c-1?purpose=*")
    assert page.get_by_role("link", name="Subjects").get_attribute("aria-current") == "page"
    assert page.locator("#total").inner_text() == str(len(seeded))

    # every access, oldest first, one below the other, with who, from where, through what, why
    items = page.locator("#timeline li.access")
    assert items.count() == len(seeded)
    boxes = [li.bounding_box() for li in items.all()]
    assert all(a["y"] + a["height"] <= b["y"] for a, b in pairwise(boxes))
    assert len({round(b["x"]) for b in boxes}) == 1  # a vertical timeline
    for li, e in zip(items.all(), seeded, strict=True):
        assert li.get_attribute("data-at") == e.timestamp.isoformat()
        text = li.inner_text()
        assert e.user.name in text and str(e.source.ip) in text and (purpose_of(e) or "none declared") in text
    # each actor has one colour, on its card and on its dots of the timeline
    dot = "(el) => getComputedStyle(el, '::before').backgroundColor"
    colours: dict[str, set[str]] = {}
    for li in items.all():
        colours.setdefault(li.get_attribute("data-user") or "", set()).add(li.evaluate(dot))
    cards = page.locator("article.actor")
    assert [c.get_attribute("data-user") for c in cards.all()] == ["alice", "bob"]
    for c in cards.all():
        swatch = c.locator(".swatch").evaluate("(el) => getComputedStyle(el).backgroundColor")
        assert colours[c.get_attribute("data-user") or ""] == {swatch}
        assert int(c.get_attribute("data-events") or 0) == sum(e.user.name == c.get_attribute("data-user")
                                                                for e in seeded)
    assert len({swatch for s in colours.values() for swatch in s}) == 2
    # the first lookup (without a purpose) is listed for the DPO; this one is recorded with its purpose
    lookups = page.locator("#lookups li")
    assert lookups.count() == 1 and "dpo-person" in lookups.inner_text() and "none given" in lookups.inner_text()
    recs = [r for r in env.store.self_audit(limit=100) if r.get("path") == "/console/subjects/c-1"]  # newest first
    assert [(r["interface"], r["purpose"]) for r in recs] == [("console", "Art. 15 request 2026-014"),
                                                              ("console", None)]

    _fits(page)
    shot = tmp_path / "console-subject-report.png"
    page.screenshot(path=str(shot), full_page=True)
    keep_screenshots(shot)
    assert shot.stat().st_size > 10_000
    assert outside == [] and errors == [], (outside, errors)

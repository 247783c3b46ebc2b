"""Drafts: every template complete in each language, Art. 33(3) (a)-(d) each in its section,
missing elements listed instead of rendered empty, text from the case escaped, sandboxed templates."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from breach_helpers import confirmed_case, submitted_case
from jinja2.exceptions import SecurityError, UndefinedError

from access_audit.breach import drafts
from access_audit.breach.drafts import ART_33_3, KINDS, render
from access_audit.breach.model import SubjectsDecisionKind
from access_audit.breach.workflow import BreachWorkflow

EMPTY_FIELD = re.compile(r"\*\*[^*\n]+:\*\*\s*$", re.M)
ARTICLE = {"en": "Art. 33(3)({})", "nl": "art. 33 lid 3 sub {}"}


def sections(md: str) -> dict[str, str]:
    parts = re.split(r"^## ", md, flags=re.M)
    return {p.splitlines()[0]: p for p in parts[1:]}


def full_case(wf: BreachWorkflow):
    c = submitted_case(wf)
    c = wf.supplement(c.id, "fenna", "Forensic report attached")
    c, _ = wf.draft(c.id, "fenna", "data_subjects", "nl")
    return wf.decide_subjects(c.id, "fenna", SubjectsDecisionKind.communicate, "High risk: BSN exposed",
                              communicated_at=wf.clock.now(), channel="letter by post")


@pytest.mark.parametrize(("kind", "lang"), [(k, lang) for k, langs in KINDS.items() for lang in langs])
def test_every_template_is_complete(wf: BreachWorkflow, kind, lang):
    c = full_case(wf)
    res = render(c, kind, lang, tz=wf.config.tz, now=wf.clock.now())
    assert res.complete and res.missing == [] and res.markdown and res.html
    md = res.markdown
    for bad in ("None", "{{", "}}", "{%", "Not stated", "Niet opgegeven", "[]"):
        assert bad not in md, (bad, md)
    assert not EMPTY_FIELD.search(md), EMPTY_FIELD.findall(md)
    assert c.details.organisation in md and c.details.contact.email in md
    assert "<h1>" in res.html and 'lang="' + lang + '"' in res.html


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_each_article_33_3_element_is_in_its_section(wf: BreachWorkflow, lang):
    c = full_case(wf)
    res = render(c, "authority", lang, tz=wf.config.tz, now=wf.clock.now())
    values, _ = drafts.check(c, "authority", lang, tz=wf.config.tz, now=wf.clock.now())
    secs = sections(res.markdown)
    for letter, keys in ART_33_3.items():
        marker = ARTICLE[lang].format(letter)
        found = [body for head, body in secs.items() if marker in head]
        assert found, f"no section for {marker}"
        body = "".join(found)
        for k in keys:
            shown = values[k] if k != "measures" else values["measures_taken"]
            assert shown and drafts.md_escape(shown) in body, (letter, k)
    # figures the authority asks for, with the Dutch number format
    assert ("tussen 1.900 en 2.100" if lang == "nl" else "between 1,900 and 2,100") in res.markdown
    assert ("Aanvulling 1" if lang == "nl" else "Supplement 1") in res.markdown


def test_dutch_form_sections_in_order(wf: BreachWorkflow):
    res = render(full_case(wf), "authority", "nl", tz=wf.config.tz, now=wf.clock.now())
    heads = [h.split(" (")[0] for h in sections(res.markdown)]
    assert heads == ["1. Contactgegevens", "2. Over het incident", "3. De persoonsgegevens", "4. Gevolgen",
                     "5. Maatregelen", "6. Informeren van betrokkenen", "7. Internationale aspecten",
                     "8. Overige vragen van het meldformulier", "9. Vervolg"]
    assert "27 maart 2026, 10:00 (UTC+01:00, Europe/Amsterdam)" in res.markdown  # awareness, local time


def test_missing_elements_are_listed_not_rendered(wf: BreachWorkflow):
    c = confirmed_case(wf, full=False)
    res = render(c, "authority", "en", tz=wf.config.tz, now=wf.clock.now())
    assert res.markdown is None and res.html is None and not res.complete
    keys = [m.key for m in res.missing]
    assert keys == ["breach_types", "occurred", "detected", "cause", "data_effects", "data_categories",
                    "subject_categories", "subjects", "records", "protection", "likely_consequences", "measures",
                    "cross_border"]
    text = res.missing_text()
    assert "Likely consequences for the data subjects [likely_consequences]" in text
    assert "--set subjects_min=... --set subjects_max=..." in text
    res = render(c, "data_subjects", "nl", tz=wf.config.tz, now=wf.clock.now())
    assert {m.key for m in res.missing} >= {"advice_to_subjects", "likely_consequences"}
    assert "Concept onvolledig" in res.missing_text()
    res = render(c, "nis2", "en", tz=wf.config.tz, now=wf.clock.now())
    assert [m.key for m in res.missing] == ["nis2_detected", "nis2_malicious", "nis2_cross_border"]


def test_a_late_draft_needs_the_reasons_for_the_delay(wf: BreachWorkflow, clock):
    c = confirmed_case(wf)
    clock.advance(hours=73)
    res = render(c, "authority", "en", tz=wf.config.tz, now=clock.now())
    assert [m.key for m in res.missing] == ["delay_reasons"]
    c = wf.edit(c.id, "fenna", {"delay_reasons": "Waited for the processor's logs"})
    res = render(c, "authority", "en", tz=wf.config.tz, now=clock.now())
    assert res.complete and "Waited for the processor's logs" in res.markdown


def test_phased_marks_what_follows(wf: BreachWorkflow):
    c = confirmed_case(wf, full=False)
    res = render(c, "authority", "nl", tz=wf.config.tz, now=wf.clock.now(), phased=True)
    assert res.markdown and not res.complete and "cause" in res.phased
    assert res.markdown.count("Volgt in een aanvullende melding (art. 33 lid 4 AVG).") == len(res.phased)
    assert "Niet opgegeven" not in res.markdown and not EMPTY_FIELD.search(res.markdown)
    assert "melding in fasen" in res.markdown
    res = render(c, "data_subjects", "nl", tz=wf.config.tz, now=wf.clock.now(), phased=True)
    assert res.markdown is None  # phasing is for the authority only: people get a complete letter


def test_text_from_the_case_is_escaped(wf: BreachWorkflow):
    c = full_case(wf)
    evil = "<script>alert(1)</script> **bold** [link](http://x) \n# heading"
    c.details = c.details.model_copy(update={"summary": evil})
    res = render(c, "authority", "en", tz=wf.config.tz, now=wf.clock.now())
    assert "<script>" not in res.html and "&lt;script&gt;" in res.html
    assert "<strong>bold</strong>" not in res.html and '<a href="http://x"' not in res.html
    assert "\\<script\\>" in res.markdown and "\\# heading" in res.markdown


def test_templates_are_sandboxed_with_strict_undefined(wf: BreachWorkflow, tmp_path: Path):
    c = full_case(wf)
    (tmp_path / "authority").mkdir()
    (tmp_path / "breach.html.j2").write_text("{{ body }}")
    (tmp_path / "authority" / "en.md.j2").write_text("{{ e.no_such_element }}")
    with pytest.raises(UndefinedError):
        render(c, "authority", "en", tz=wf.config.tz, now=wf.clock.now(), template_root=tmp_path)
    drafts._env.cache_clear()
    (tmp_path / "authority" / "en.md.j2").write_text("{{ e.__class__.__mro__ }}")
    with pytest.raises(SecurityError):
        render(c, "authority", "en", tz=wf.config.tz, now=wf.clock.now(), template_root=tmp_path)
    drafts._env.cache_clear()


def test_unknown_kind_or_language(wf: BreachWorkflow):
    c = full_case(wf)
    with pytest.raises(drafts.BreachError, match="no 'de' template for nis2"):
        render(c, "nis2", "de", tz=wf.config.tz, now=wf.clock.now())
    with pytest.raises(drafts.BreachError, match="unknown draft kind"):
        render(c, "press_release", "en", tz=wf.config.tz, now=wf.clock.now())


def test_pdf(wf: BreachWorkflow):
    res = render(full_case(wf), "authority", "nl", tz=wf.config.tz, now=wf.clock.now() + timedelta(hours=1))
    pdf = drafts.to_pdf(res.html)
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000

"""Drafts of what the DPO sends: the notification to the authority (Art. 33), the letter to the
data subjects (Art. 34) and the NIS2 early warning, from the templates in ``notifications/``.

Before anything is rendered, the case is checked for every required element of the draft's kind
(:data:`ELEMENTS`). A draft that lacks one is not rendered with an empty field: the result lists
what is missing (and where to fill it in). Only for the notification to the authority may the DPO
choose a *phased* notification (Art. 33(4)): the missing elements then read "to follow in a
supplementary notification" instead.

Templates are Markdown, rendered in a sandboxed jinja2 environment with ``StrictUndefined``; every
value from the case is escaped for Markdown. HTML is made from the Markdown (markdown-it, raw HTML
disabled, so text from the case can never become markup) inside ``notifications/breach.html.j2``
(autoescaped). PDF is made from that HTML with fpdf2 when it is installed (``pip install
'access-audit[pdf]'``).

Which section carries which element of Art. 33(3) is :data:`ART_33_3`; the tests check that each
element appears, in both languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from access_audit.breach.clocks import case_clocks
from access_audit.breach.model import BreachCase, BreachError, Protection

KINDS = {"authority": ("nl", "en"), "data_subjects": ("nl", "en"), "nis2": ("nl", "en"), "processor": ("nl", "en")}
FORMATS = ("md", "html", "pdf")


def templates_dir() -> Path:
    """``notifications/`` next to the source tree, or the installed copy."""
    here = Path(__file__).resolve()
    for cand in (here.parents[3] / "notifications", here.parents[1] / "_notifications"):
        if (cand / "authority").is_dir():
            return cand
    raise FileNotFoundError("the notification templates (notifications/) were not found")


# --- words in two languages --------------------------------------------------------------------------

T: dict[str, dict[str, Any]] = {
    "en": {
        "confidentiality": "confidentiality (unauthorised disclosure of or access to data)",
        "integrity": "integrity (unauthorised alteration of data)",
        "availability": "availability (loss of access to or destruction of data)",
        "read": "read", "copied": "copied", "altered": "altered", "deleted": "deleted", "stolen": "stolen",
        "lost": "lost",
        "contact": "name, address, telephone number, e-mail address (contact data)",
        "identity": "gender, date of birth and/or age",
        "login": "access or identification data (user name, password, customer number)",
        "financial": "financial or economic data",
        "national_id": "citizen service number (BSN) or other national identification number",
        "id_copy": "copies of passports or other identity documents",
        "special": "special categories of personal data (e.g. health)",
        "criminal": "personal data relating to criminal convictions and offences",
        "other": "other personal data",
        "p.none": "No: the data were neither encrypted nor hashed.",
        "p.encrypted": "Yes: encrypted with state-of-the-art encryption; the key was not compromised.",
        "p.hashed": "Yes: hashed.",
        "p.partly": "Partly.",
        "yes": "Yes", "no": "No", "not_stated": "Not stated",
        "unknown_time": "not known",
        "to_follow": "To follow in a supplementary notification (Art. 33(4) GDPR).",
        "between": "between {a} and {b}", "at": "at {a}",
        "about": "about {n}", "range": "between {a} and {b}",
        "initial": "This is the initial notification.",
        "supplement": "Supplementary notification {v} of {at}",
        "not_decided": "Not yet decided. Risk assessment: {level}.",
        "lvl.unlikely": "unlikely to result in a risk", "lvl.risk": "a risk", "lvl.high": "a high risk",
        "lvl.none": "not yet assessed",
        "sd.communicate": "The data subjects are informed (Art. 34(1) GDPR).",
        "sd.not_required": "The data subjects are not informed: no high risk to them.",
        "sd.exception_34_3_a": "The data subjects are not informed: the data are unintelligible to anyone not "
                               "authorised to access them (Art. 34(3)(a) GDPR).",
        "sd.exception_34_3_b": "The data subjects are not informed: subsequent measures ensure the high risk is "
                               "no longer likely to materialise (Art. 34(3)(b) GDPR).",
        "sd.exception_34_3_c": "The data subjects are informed by a public communication: informing them "
                               "individually would involve disproportionate effort (Art. 34(3)(c) GDPR).",
        "none": "none",
        "salutation": "Dear customer,",
        "dpo": "Data Protection Officer", "lead": "lead supervisory authority (Art. 56 GDPR)",
        "laws": {"gdpr": "GDPR Art. 33", "uk_gdpr": "UK GDPR Art. 33 (to the ICO)",
                 "processor": "GDPR Art. 33(2) (processor to controller)", "nis2": "NIS2 Directive Art. 23",
                 "dora": "DORA Art. 19", "hipaa": "HIPAA 45 CFR 164.400-414"},
        "no_other_authorities": "No other supervisory authority has been notified.",
        "not_known": "Not known yet.", "not_told": "The data subjects have not been told (yet).",
        "subjects_told": "On {at}, by {channel}; the text: the letter to the data subjects, version {v} ({lang}).",
        "subjects_told_no_text": "On {at}, by {channel}.",
        "seriousness": "{level} (severity score {score}, EDPB/ENISA method)",
    },
    "nl": {
        "confidentiality": "vertrouwelijkheid (onbevoegde kennisneming van of toegang tot gegevens)",
        "integrity": "integriteit (onbevoegde wijziging van gegevens)",
        "availability": "beschikbaarheid (verlies van toegang tot of vernietiging van gegevens)",
        "read": "ingezien", "copied": "gekopieerd", "altered": "gewijzigd", "deleted": "verwijderd",
        "stolen": "gestolen", "lost": "verloren",
        "contact": "naam, adres, telefoonnummer, e-mailadres (contactgegevens)",
        "identity": "geslacht, geboortedatum en/of leeftijd",
        "login": "toegangs- of identificatiegegevens (inlognaam, wachtwoord, klantnummer)",
        "financial": "financiële of economische gegevens",
        "national_id": "burgerservicenummer (BSN) of ander nationaal identificatienummer",
        "id_copy": "kopieën van paspoorten of andere identiteitsbewijzen",
        "special": "bijzondere persoonsgegevens (bijvoorbeeld gezondheid)",
        "criminal": "strafrechtelijke gegevens",
        "other": "overige persoonsgegevens",
        "p.none": "Nee: de gegevens waren niet versleuteld of gehasht.",
        "p.encrypted": "Ja: versleuteld volgens de stand van de techniek; de sleutel is niet gecompromitteerd.",
        "p.hashed": "Ja: gehasht.",
        "p.partly": "Gedeeltelijk.",
        "yes": "Ja", "no": "Nee", "not_stated": "Niet opgegeven",
        "unknown_time": "niet bekend",
        "to_follow": "Volgt in een aanvullende melding (art. 33 lid 4 AVG).",
        "between": "tussen {a} en {b}", "at": "op {a}",
        "about": "ongeveer {n}", "range": "tussen {a} en {b}",
        "initial": "Dit is de eerste melding.",
        "supplement": "Aanvullende melding {v} van {at}",
        "not_decided": "Nog niet besloten. Risicobeoordeling: {level}.",
        "lvl.unlikely": "geen risico waarschijnlijk", "lvl.risk": "een risico", "lvl.high": "een hoog risico",
        "lvl.none": "nog niet beoordeeld",
        "sd.communicate": "De betrokkenen worden geïnformeerd (art. 34 lid 1 AVG).",
        "sd.not_required": "De betrokkenen worden niet geïnformeerd: er is geen hoog risico voor hen.",
        "sd.exception_34_3_a": "De betrokkenen worden niet geïnformeerd: de gegevens zijn onbegrijpelijk voor "
                               "onbevoegden (art. 34 lid 3 sub a AVG).",
        "sd.exception_34_3_b": "De betrokkenen worden niet geïnformeerd: door vervolgmaatregelen is het hoge "
                               "risico niet langer waarschijnlijk (art. 34 lid 3 sub b AVG).",
        "sd.exception_34_3_c": "De betrokkenen worden via een openbare mededeling geïnformeerd: individueel "
                               "informeren vergt een onevenredige inspanning (art. 34 lid 3 sub c AVG).",
        "none": "geen",
        "salutation": "Beste klant,",
        "dpo": "functionaris voor gegevensbescherming", "lead": "leidende toezichthoudende autoriteit (art. 56 AVG)",
        "laws": {"gdpr": "AVG art. 33", "uk_gdpr": "UK GDPR art. 33 (aan de ICO)",
                 "processor": "AVG art. 33 lid 2 (verwerker aan verwerkingsverantwoordelijke)",
                 "nis2": "NIS2-richtlijn art. 23 (Cyberbeveiligingswet)", "dora": "DORA art. 19",
                 "hipaa": "HIPAA 45 CFR 164.400-414"},
        "no_other_authorities": "Er is geen andere toezichthouder ingelicht.",
        "not_known": "Nog niet bekend.", "not_told": "De betrokkenen zijn (nog) niet geïnformeerd.",
        "subjects_told": "Op {at}, via {channel}; de tekst: de brief aan de betrokkenen, versie {v} ({lang}).",
        "subjects_told_no_text": "Op {at}, via {channel}.",
        "seriousness": "{level} (ernstscore {score}, methode van EDPB/ENISA)",
    },
}
MONTHS = {"en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"),
          "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
                 "november", "december")}


def fmt_time(t: datetime, lang: str, tz: ZoneInfo) -> str:
    local = t.astimezone(tz)
    off = local.strftime("%z")
    return (f"{local.day} {MONTHS[lang][local.month - 1]} {local.year}, {local:%H:%M} "
            f"(UTC{off[:3]}:{off[3:]}, {tz.key})")


def fmt_plain_time(t: datetime, lang: str, tz: ZoneInfo) -> str:
    """A time for people: '27 maart 2026 om 10:00', '27 March 2026 at 10:00' (organisation's time zone)."""
    local = t.astimezone(tz)
    return f"{local.day} {MONTHS[lang][local.month - 1]} {local.year} {'om' if lang == 'nl' else 'at'} {local:%H:%M}"


def fmt_int(n: int, lang: str) -> str:
    s = f"{n:,}"
    return s.replace(",", ".") if lang == "nl" else s


def _range(lo: int | None, hi: int | None, lang: str) -> str | None:
    if lo is None and hi is None:
        return None
    if lo is None or hi is None or lo == hi:
        return T[lang]["about"].format(n=fmt_int(lo if hi is None else hi, lang))  # type: ignore[arg-type]
    return T[lang]["range"].format(a=fmt_int(lo, lang), b=fmt_int(hi, lang))


# --- the elements -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ctx:
    case: BreachCase
    lang: str
    tz: ZoneInfo
    now: datetime
    late: bool

    def t(self, key: str) -> str:
        return T[self.lang][key]

    plain: bool = False  # the letter to the data subjects: times in plain language

    def time(self, t: datetime) -> str:
        return fmt_plain_time(t, self.lang, self.tz) if self.plain else fmt_time(t, self.lang, self.tz)


def _text(v: str | None) -> str | None:
    return v.strip() if v and v.strip() else None


def _list(items: list[Any], c: Ctx) -> str | None:
    return "; ".join(c.t(getattr(i, "value", i)) for i in items) if items else None


def _occurred(c: Ctx) -> str | None:
    a, b = c.case.occurred_from, c.case.occurred_to
    if a is None:
        return None
    if b is None or b == a:
        return c.t("at").format(a=c.time(a))
    return c.t("between").format(a=c.time(a), b=c.time(b))


def _contact(c: Ctx) -> str | None:
    ct = c.case.details.contact
    if not ct.name or not (ct.email or ct.phone):
        return None
    role = c.t("dpo") if ct.role == "Data Protection Officer" else ct.role  # the AVG's own term in Dutch
    return ", ".join(x for x in (ct.name, role, ct.email, ct.phone) if x)


def _plain_contact(c: Ctx) -> str | None:
    """The contact without the GDPR role (a NIS2 contact point need not be the DPO)."""
    ct = c.case.details.contact
    if not ct.name or not (ct.email or ct.phone):
        return None
    return ", ".join(x for x in (ct.name, ct.email, ct.phone) if x)


def _measures(c: Ctx) -> str | None:
    d = c.case.details
    return _text(d.measures_taken) or _text(d.measures_proposed)


def _subjects_informed(c: Ctx) -> str:
    s = c.case.subjects
    if s is not None:
        return c.t(f"sd.{s.decision.value}") + f" {s.reasoning}"
    lvl = c.case.risk.level.value if c.case.risk else "none"
    return c.t("not_decided").format(level=c.t(f"lvl.{lvl}"))


def _cross_border(c: Ctx) -> str | None:
    d = c.case.details
    if d.cross_border is None:
        return None
    if not d.cross_border:
        return c.t("no")
    extra = ", ".join(d.countries)
    lead = f"; {c.t('lead')}: {d.lead_authority}" if d.lead_authority else ""
    return c.t("yes") + (f": {extra}" if extra else "") + lead


def _categories(c: Ctx) -> str | None:
    d = c.case.details
    text = _list(d.data_categories, c)
    return f"{text} ({d.data_categories_note})" if text and d.data_categories_note else text


def _bool(v: bool | None, c: Ctx) -> str | None:
    return None if v is None else c.t("yes") if v else c.t("no")


def _processor(c: Ctx) -> str | None:
    d = c.case.details
    if d.processor_involved is None:
        return str(c.t("not_known"))
    return c.t("yes") + (f": {d.processor}" if d.processor else "") if d.processor_involved else c.t("no")


def _seriousness(c: Ctx) -> str | None:
    r = c.case.risk
    if r is None:
        return str(c.t("lvl.none"))
    return c.t("seriousness").format(level=c.t(f"lvl.{r.level.value}"), score=r.score)


def _subjects_told(c: Ctx) -> str | None:
    s = c.case.subjects
    if s is None or s.communicated_at is None:
        return str(c.t("not_told"))
    letter = c.case.latest_draft("data_subjects")
    channel = s.channel or c.t("not_stated").lower()
    if letter is None:
        return c.t("subjects_told_no_text").format(at=c.time(s.communicated_at), channel=channel)
    return c.t("subjects_told").format(at=c.time(s.communicated_at), channel=channel, v=letter.version,
                                       lang=letter.lang)


def _other_authorities(c: Ctx) -> str:
    others = [n for n in c.case.notifications if not n.lead and n.withdrawn_at is None]
    if not others:
        return c.t("no_other_authorities")
    return "; ".join(f"{n.authority} ({c.time(n.at)}, {n.reference})" for n in others)


def _laws(c: Ctx) -> str:
    laws: dict[str, str] = T[c.lang]["laws"]  # type: ignore[assignment]
    return "; ".join(laws.get(r, r) for r in c.case.regimes)


def _nis2_aware(c: Ctx) -> str | None:
    t = c.case.milestones.get("nis2_aware") or (c.case.awareness.at if c.case.awareness else None)
    return c.time(t) if t else None


def _nis2_cross_border(c: Ctx) -> str | None:
    d = c.case.details
    if d.nis2_cross_border_impact is None:
        return None
    if not d.nis2_cross_border_impact:
        return c.t("no")
    return c.t("yes") + (f": {d.nis2_cross_border_note}" if d.nis2_cross_border_note else "")


def _follow_up(c: Ctx) -> str:
    if not c.case.supplements:
        return c.t("initial")
    s = c.case.supplements[-1]
    return c.t("supplement").format(v=s.version, at=c.time(s.at))


@dataclass(frozen=True)
class Element:
    key: str
    label_en: str
    label_nl: str
    value: Callable[[Ctx], str | None]
    required: bool = True
    where: str = ""  # how to fill it in (CLI / API field)

    def label(self, lang: str) -> str:
        return self.label_nl if lang == "nl" else self.label_en


def _e(key: str, en: str, nl: str, fn: Callable[[Ctx], str | None], required: bool = True,
       where: str | None = None) -> Element:
    return Element(key, en, nl, fn, required, where or f"--set {key}=...")


_D = {  # every element a template may use, by key
    "organisation": _e("organisation", "Organisation", "Organisatie", lambda c: _text(c.case.details.organisation),
                       where="--set organisation=... (or ACCESS_AUDIT_ORGANISATION_NAME)"),
    "contact": _e("contact", "Contact point (DPO)", "Contactpunt (FG)", _contact,
                  where="--set contact.name=... --set contact.email=... (or ACCESS_AUDIT_DPO_*)"),
    "title": _e("title", "Title", "Titel", lambda c: _text(c.case.details.title), required=False),
    "summary": _e("summary", "Summary of the breach", "Samenvatting van het incident",
                  lambda c: _text(c.case.details.summary)),
    "breach_types": _e("breach_types", "Type of breach", "Soort inbreuk",
                       lambda c: _list(c.case.details.breach_types, c),
                       where="--set breach_types=confidentiality,integrity,availability"),
    "occurred": _e("occurred", "When the breach happened", "Wanneer het incident plaatsvond", _occurred,
                   where="--set occurred_from=... [--set occurred_to=...]"),
    "detected": _e("detected", "When it was discovered", "Wanneer het is ontdekt",
                   lambda c: c.time(c.case.detected_at) if c.case.detected_at else None, where="--set detected_at=..."),
    "awareness": _e("awareness", "When the organisation became aware (Art. 33(1))",
                    "Wanneer de organisatie op de hoogte raakte (art. 33 lid 1)",
                    lambda c: c.time(c.case.awareness.at) if c.case.awareness else None,
                    where="breach aware ID --at ... --by ... --reason ..."),
    "cause": _e("cause", "Cause", "Oorzaak", lambda c: _text(c.case.details.cause)),
    "data_effects": _e("data_effects", "What happened to the data", "Wat er met de gegevens is gebeurd",
                       lambda c: _list(c.case.details.data_effects, c),
                       where="--set data_effects=read,copied,altered,deleted,stolen,lost"),
    "systems": _e("systems", "Systems involved", "Betrokken systemen",
                  lambda c: "; ".join(c.case.details.systems) or None, required=False),
    "data_categories": _e("data_categories", "Categories of personal data", "Soorten persoonsgegevens", _categories,
                          where="--set data_categories=contact,identity,login,financial,national_id,id_copy,"
                                "special,criminal,other"),
    "subject_categories": _e("subject_categories", "Categories of data subjects", "Categorieën betrokkenen",
                             lambda c: "; ".join(c.case.details.subject_categories) or None,
                             where="--set subject_categories=customers,employees,..."),
    "subjects": _e("subjects", "Approximate number of data subjects", "Aantal betrokkenen (bij benadering)",
                   lambda c: _range(c.case.details.subjects_min, c.case.details.subjects_max, c.lang),
                   where="--set subjects_min=... --set subjects_max=..."),
    "records": _e("records", "Approximate number of records", "Aantal records (bij benadering)",
                  lambda c: _range(c.case.details.records_min, c.case.details.records_max, c.lang),
                  where="--set records_min=... --set records_max=..."),
    "protection": _e("protection", "Encryption or hashing of the data", "Versleuteling of hashing van de gegevens",
                     lambda c: None if c.case.details.protection is Protection.unknown else
                     c.t(f"p.{c.case.details.protection.value}") + (f" {c.case.details.protection_note}"
                                                                     if c.case.details.protection_note else ""),
                     where="--set protection=none|encrypted|hashed|partly"),
    "likely_consequences": _e("likely_consequences", "Likely consequences for the data subjects",
                              "Waarschijnlijke gevolgen voor de betrokkenen",
                              lambda c: _text(c.case.details.likely_consequences)),
    "measures_taken": _e("measures_taken", "Measures taken", "Genomen maatregelen",
                         lambda c: _text(c.case.details.measures_taken)),
    "measures_proposed": _e("measures_proposed", "Measures proposed", "Voorgestelde maatregelen",
                            lambda c: _text(c.case.details.measures_proposed), required=False),
    "measures": _e("measures", "Measures taken or proposed", "Genomen of voorgestelde maatregelen", _measures,
                   where="--set measures_taken=... or --set measures_proposed=..."),
    "advice_to_subjects": _e("advice_to_subjects", "What you can do yourself", "Wat u zelf kunt doen",
                             lambda c: _text(c.case.details.advice_to_subjects)),
    "subjects_informed": _e("subjects_informed", "Informing the data subjects", "Informeren van betrokkenen",
                            _subjects_informed, required=False),
    "cross_border": _e("cross_border", "Other countries involved", "Andere landen betrokken", _cross_border,
                       where="--set cross_border=true|false [--set countries=BE,DE]"),
    "malicious": _e("malicious", "Suspected unlawful or malicious act", "Vermoeden van onrechtmatig of kwaadwillig "
                    "handelen", lambda c: _bool(c.case.details.malicious, c), where="--set malicious=true|false"),
    "delay_reasons": _e("delay_reasons", "Reasons for the delay (Art. 33(1))", "Redenen voor de vertraging "
                        "(art. 33 lid 1)", lambda c: _text(c.case.details.delay_reasons),
                        where="--set delay_reasons=... (or breach approve --delay-reasons ...)"),
    "follow_up": _e("follow_up", "Follow-up", "Vervolg", _follow_up, required=False),
    "reference": _e("reference", "Reference of the authority", "Kenmerk van de toezichthouder",
                    lambda c: c.case.submission.reference if c.case.submission else None, required=False),
    # the letter to the data subjects (Art. 34(2)): its own salutation, contact and complaint authority
    "salutation": _e("salutation", "Salutation", "Aanhef",
                     lambda c: _text(c.case.details.letter_salutation) or c.t("salutation"), required=False,
                     where="--set letter_salutation=..."),
    "letter_contact": _e("letter_contact", "Contact for questions", "Contact voor vragen",
                         lambda c: _text(c.case.details.letter_contact) or _contact(c),
                         where="--set letter_contact=... (default: the contact point)"),
    "complaint_authority": _e("complaint_authority", "Where to complain", "Waar u een klacht kunt indienen",
                              lambda c: _text(c.case.details.complaint_authority) or _text(c.case.details.authority),
                              where="--set complaint_authority=..."),
    # the processor's notice to its controller (Art. 33(2))
    "controller": _e("controller", "Controller notified", "Verwerkingsverantwoordelijke die wordt ingelicht",
                     lambda c: _text(c.case.details.controller), where="--set controller=..."),
    "processor_aware": _e("processor_aware", "When we (the processor) became aware", "Wanneer wij (de verwerker) "
                          "op de hoogte raakten", lambda c: c.time(c.case.awareness.at) if c.case.awareness else None,
                          where="breach aware ID --at ... --reason ..."),
    # the AP notification form's further questions
    "ongoing": _e("ongoing", "Is the breach still going on?", "Duurt het datalek nog voort?",
                  lambda c: _bool(c.case.details.ongoing, c) or c.t("not_known"), required=False,
                  where="--set ongoing=true|false"),
    "processor": _e("processor", "Was another organisation (a processor) involved?",
                    "Was een andere organisatie (een verwerker) bij het datalek betrokken?", _processor, required=False,
                    where="--set processor_involved=true|false [--set processor=...]"),
    "seriousness": _e("seriousness", "Estimate of the seriousness", "Inschatting van de ernst", _seriousness,
                      required=False, where="breach assess ..."),
    "subjects_told": _e("subjects_told", "When, how and with what text the data subjects were told",
                        "Wanneer, hoe en met welke tekst de betrokkenen zijn geïnformeerd", _subjects_told,
                        required=False, where="breach subjects ... --communicated-at ... --channel ..."),
    "other_authorities": _e("other_authorities", "Other supervisory authorities notified",
                            "Andere toezichthouders die zijn ingelicht", _other_authorities, required=False),
    "laws": _e("laws", "The law under which this notification is made", "De wet waarop deze melding berust",
               _laws, required=False),
    # the NIS2 early warning: its own facts, without the GDPR's labels
    "nis2_aware": _e("nis2_aware", "When the entity became aware of the significant incident",
                     "Wanneer de entiteit kennis kreeg van het significante incident", _nis2_aware,
                     where="breach milestone ID nis2_aware --at ... --reason ..."),
    "nis2_malicious": _e("nis2_malicious", "Suspected of being caused by unlawful or malicious acts",
                         "Vermoedelijk veroorzaakt door onrechtmatige of kwaadwillige handelingen",
                         lambda c: _bool(c.case.details.malicious, c), where="--set malicious=true|false"),
    "nis2_cross_border": _e("nis2_cross_border", "Could have a cross-border impact",
                            "Kan grensoverschrijdende gevolgen hebben", _nis2_cross_border,
                            where="--set nis2_cross_border_impact=true|false [--set nis2_cross_border_note=...]"),
    "nis2_contact": _e("nis2_contact", "Contact point", "Contactpunt", _plain_contact,
                       where="--set contact.name=... --set contact.email=..."),
    "nis2_summary": _e("nis2_summary", "What happened", "Wat er is gebeurd", lambda c: _text(c.case.details.summary)),
    "nis2_detected": _e("nis2_detected", "When it was detected", "Wanneer het is ontdekt",
                        lambda c: c.time(c.case.detected_at) if c.case.detected_at else None,
                        where="--set detected_at=..."),
}

#: the elements each kind of draft uses; all ``required`` ones must be present to render it
ELEMENTS: dict[str, tuple[str, ...]] = {
    "authority": ("organisation", "contact", "title", "summary", "breach_types", "occurred", "detected",
                  "awareness", "cause", "data_effects", "systems", "data_categories", "subject_categories",
                  "subjects", "records", "protection", "likely_consequences", "measures", "measures_taken",
                  "measures_proposed", "subjects_informed", "cross_border", "follow_up", "reference",
                  "ongoing", "processor", "seriousness", "subjects_told", "other_authorities", "laws"),
    "data_subjects": ("organisation", "contact", "summary", "occurred", "data_categories", "likely_consequences",
                      "measures", "measures_taken", "measures_proposed", "advice_to_subjects", "salutation",
                      "letter_contact", "complaint_authority"),
    "processor": ("organisation", "controller", "contact", "summary", "occurred", "detected", "processor_aware",
                  "cause", "systems", "data_categories", "subject_categories", "subjects", "records", "protection",
                  "likely_consequences", "measures", "measures_taken", "measures_proposed", "ongoing"),
    "nis2": ("organisation", "nis2_contact", "nis2_summary", "nis2_aware", "nis2_detected", "nis2_malicious",
             "nis2_cross_border", "systems", "measures_taken", "measures_proposed"),
}
#: optional elements that a given kind still needs (they are "measures" alternatives elsewhere)
_OPTIONAL_IN = {"measures_taken", "measures_proposed", "title", "systems", "subjects_informed", "follow_up",
                "reference"}

#: Art. 33(3) GDPR -> the elements (and so the form sections) that carry it
ART_33_3: dict[str, tuple[str, ...]] = {
    "a": ("summary", "breach_types", "data_categories", "subject_categories", "subjects", "records"),
    "b": ("contact",),
    "c": ("likely_consequences",),
    "d": ("measures",),
}


@dataclass
class MissingElement:
    key: str
    label: str
    where: str


@dataclass
class DraftResult:
    kind: str
    lang: str
    complete: bool
    missing: list[MissingElement] = field(default_factory=list)
    phased: list[str] = field(default_factory=list)  # elements marked "to follow" (Art. 33(4))
    markdown: str | None = None  # None when elements are missing and the draft was not phased
    html: str | None = None

    def missing_text(self) -> str:
        head = ("Draft incomplete" if self.lang == "en" else "Concept onvolledig") + f" ({self.kind}, {self.lang}): "
        head += "these required elements are missing:" if self.lang == "en" else "deze verplichte onderdelen ontbreken:"
        return "\n".join([head, *(f"- {m.label} [{m.key}]: {m.where}" for m in self.missing)])


def element_label(key: str, lang: str) -> str:
    """The label of a draft element (as the draft shows it)."""
    el = _D.get(key)
    return el.label(lang) if el else key


def missing_keys(case: BreachCase, lang: str, *, tz: ZoneInfo, now: datetime) -> set[str]:
    """The required elements of the authority notification that are still missing."""
    return {m.key for m in check(case, "authority", lang, tz=tz, now=now)[1]}


def is_late(case: BreachCase, now: datetime, tz: ZoneInfo, processor_notice_hours: float = 24) -> bool:
    """Whether an authority notification made now is past its deadline (Art. 33(1))."""
    for st in case_clocks(case, now, tz, processor_notice_hours):
        if st.rule.authority_notification and st.due is not None and (st.done_at or now) > st.due:
            return True
    return False


def check(case: BreachCase, kind: str, lang: str, *, tz: ZoneInfo, now: datetime,
          late: bool | None = None) -> tuple[dict[str, str | None], list[MissingElement]]:
    """Every element's value for a draft, and the required ones that are missing."""
    if kind not in KINDS:
        raise BreachError(f"unknown draft kind {kind!r}; known: {', '.join(KINDS)}")
    if lang not in KINDS[kind]:
        raise BreachError(f"no {lang!r} template for {kind}; available: {', '.join(KINDS[kind])}")
    late = is_late(case, now, tz) if late is None else late
    c = Ctx(case, lang, tz, now, late, plain=kind == "data_subjects")
    keys = list(ELEMENTS[kind]) + (["delay_reasons"] if kind == "authority" and late else [])
    values: dict[str, str | None] = {}
    missing: list[MissingElement] = []
    for k in keys:
        el = _D[k]
        v = el.value(c)
        values[k] = v
        if v is None and el.required and k not in _OPTIONAL_IN:
            missing.append(MissingElement(k, el.label(lang), el.where))
    return values, missing


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~!])")


def md_escape(v: Any) -> Any:
    """Escape text from the case for Markdown (so it can neither format nor become markup)."""
    if isinstance(v, Markup) or not isinstance(v, str):
        return v
    s = _MD_SPECIAL.sub(r"\\\1", v)
    return re.sub(r"(?m)^(\s*)([-+=]|\d+[.)])(\s)", lambda m: m[1] + "\\" + m[2] + m[3], s)


@lru_cache(maxsize=4)
def _env(root: str, autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(root), undefined=StrictUndefined, autoescape=autoescape,
                               finalize=None if autoescape else md_escape, trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=True)
    return env


def render(case: BreachCase, kind: str, lang: str, *, tz: ZoneInfo, now: datetime, phased: bool = False,
           template_root: Path | None = None) -> DraftResult:
    """Check, then render a draft. Missing required elements -> ``complete=False`` and no text,
    unless ``phased`` (authority only), when they read "to follow (Art. 33(4))"."""
    values, missing = check(case, kind, lang, tz=tz, now=now)
    res = DraftResult(kind, lang, complete=not missing, missing=missing)
    if missing and not (phased and kind == "authority"):
        return res
    if missing:
        res.phased = [m.key for m in missing]
        for m in missing:
            values[m.key] = T[lang]["to_follow"]
        if "measures" in res.phased:  # the form shows measures as taken / proposed
            values["measures_taken"] = T[lang]["to_follow"]
    root = str(template_root or templates_dir())
    labels = {k: _D[k].label(lang) for k in values}
    ctx = {"e": {k: (v if v is not None else T[lang]["not_stated"]) for k, v in values.items()},
           "label": labels, "present": sorted(k for k, v in values.items() if v is not None),
           "case_id": case.id, "lang": lang, "generated": fmt_time(now, lang, tz),
           "late": "delay_reasons" in values, "phased": bool(res.phased),
           "supplements": [{"version": s.version, "at": fmt_time(s.at, lang, tz), "text": s.text}
                           for s in case.supplements]}
    res.markdown = _env(root, False).get_template(f"{kind}/{lang}.md.j2").render(ctx)
    res.html = to_html(res.markdown, title=f"{case.id} {kind}", lang=lang, root=root)
    return res


def to_html(markdown: str, *, title: str, lang: str, root: str | None = None) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).render(markdown)
    return _env(root or str(templates_dir()), True).get_template("breach.html.j2").render(
        title=title, lang=lang, body=Markup(body))


def to_pdf(html: str) -> bytes:
    """PDF from the draft's HTML (fpdf2). Raises BreachError with an install hint without it."""
    try:
        from fpdf import FPDF
    except ImportError:
        raise BreachError("PDF output needs fpdf2: pip install 'access-audit[pdf]'") from None
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    font = _unicode_font()
    if font:
        pdf.add_font("body", "", str(font))
        pdf.add_font("body", "B", str(font.with_name(font.stem + "-Bold.ttf")) if
                     font.with_name(font.stem + "-Bold.ttf").exists() else str(font))
        pdf.set_font("body", size=10)
        family = "body"
    else:
        pdf.set_font("helvetica", size=10)
        html = _latin1(html)
        family = "helvetica"
    body = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
    pdf.write_html(body.group(1) if body else html, font_family=family)
    return bytes(pdf.output())


def _unicode_font() -> Path | None:
    for p in (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
              Path("/usr/share/fonts/dejavu/DejaVuSans.ttf")):
        if p.exists():
            return p
    return None


_LATIN1 = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
           "\u2026": "...", "\u20ac": "EUR", "\u2022": "*"}


def _latin1(s: str) -> str:
    for a, b in _LATIN1.items():
        s = s.replace(a, b)
    return s.encode("latin-1", "replace").decode("latin-1")


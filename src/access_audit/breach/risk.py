"""Risk worksheet after EDPB Guidelines 9/2022 (notification of personal data breaches), with the
severity arithmetic of ENISA's methodology for assessing the severity of breaches.

The guidelines ask the controller to weigh: the type of breach; the nature, sensitivity and volume
of the data; the ease of identifying the individuals; the severity of the consequences; special
characteristics of the individuals (children, vulnerable people) and of the controller; and the
number of individuals. ENISA turns the first ones into a score:

    severity = data processing context (1-4) x ease of identification (0.25-1) + circumstances

and this worksheet then raises the result for volume, vulnerable individuals and the controller's
context, and never lets it fall below the consequences the assessor expects. Below 2 the breach is
*unlikely to result in a risk* (document only), from 2 it is a *risk* (notify the authority), from 3
a *high risk* (also tell the data subjects). Data made unintelligible by state-of-the-art
encryption whose key was not compromised, in a confidentiality-only breach, is unlikely to result
in a risk.

Every step adds a line of reasoning, so the proposal can be read and argued with; the DPO may
overrule it with a recorded reason.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from access_audit.breach.model import (
    BreachCase,
    BreachType,
    DataCategory,
    DataEffect,
    Protection,
    RiskAssessmentRecord,
    RiskLevel,
)


class Identifiability(StrEnum):
    negligible = "negligible"  # 0.25: hardly possible to tell who the people are
    limited = "limited"  # 0.5
    significant = "significant"  # 0.75
    maximum = "maximum"  # 1.0: directly identifying (name, BSN, photo)


class Consequences(StrEnum):
    """What could happen to the people (ENISA / EDPB): the expected severity of the impact."""

    minimal = "minimal"  # inconvenience they overcome without problem
    significant = "significant"  # inconveniences overcome despite a few difficulties
    serious = "serious"  # significant consequences overcome with serious difficulties
    very_serious = "very_serious"  # irreversible or very serious consequences


EI = {Identifiability.negligible: 0.25, Identifiability.limited: 0.5, Identifiability.significant: 0.75,
      Identifiability.maximum: 1.0}
#: data processing context: base sensitivity per kind of data (ENISA 1 = simple ... 4 = sensitive)
DPC = {DataCategory.contact: 1, DataCategory.identity: 1, DataCategory.other: 1, DataCategory.login: 2,
       DataCategory.financial: 3, DataCategory.national_id: 3, DataCategory.id_copy: 3, DataCategory.special: 4,
       DataCategory.criminal: 4}
CONSEQUENCE_FLOOR = {Consequences.minimal: RiskLevel.unlikely, Consequences.significant: RiskLevel.risk,
                     Consequences.serious: RiskLevel.high, Consequences.very_serious: RiskLevel.high}


class RiskWorksheet(BaseModel):
    """The assessor's answers. ``from_case`` fills what the case already says."""

    model_config = ConfigDict(extra="forbid")

    breach_types: list[BreachType] = Field(default_factory=list)
    data_categories: list[DataCategory] = Field(default_factory=list)
    # None = not answered: the reasoning and ``defaults`` say what was assumed instead (no silent defaults)
    identifiability: Identifiability | None = None
    consequences: Consequences | None = None  # unanswered: no floor (it does not default to "significant")
    individuals: int | None = Field(default=None, ge=0)  # number of people affected (upper estimate)
    records: int | None = Field(default=None, ge=0)
    malicious: bool | None = None  # deliberate (theft, hacking, insider misuse) rather than an error
    unknown_recipients: bool | None = None  # the data went to people whose intentions are unknown
    trusted_recipient: bool | None = None  # a known, trusted recipient who confirmed deletion / no use
    vulnerable_individuals: bool | None = None  # children, patients, other vulnerable people
    controller_context: str | None = None  # e.g. "healthcare provider": raises the risk
    unintelligible: bool | None = None  # state-of-the-art encryption / strong hashing, key not compromised

    #: what an unanswered question is taken to be (the assessment lists each one it used)
    ASSUMED: ClassVar[dict[str, object]] = {
        "identifiability": Identifiability.significant, "malicious": False, "unknown_recipients": True,
        "trusted_recipient": False, "vulnerable_individuals": False, "unintelligible": False}

    def defaults(self) -> list[str]:
        """The questions left unanswered, with the value assumed for each."""
        out = [f"{k} (assumed {getattr(v, 'value', v)})" for k, v in self.ASSUMED.items() if getattr(self, k) is None]
        if self.consequences is None:
            out.append("consequences (not assessed: no minimum level applied)")
        return out

    def value(self, name: str) -> Any:
        v = getattr(self, name)
        return self.ASSUMED.get(name) if v is None else v

    @classmethod
    def from_case(cls, case: BreachCase, **answers: object) -> RiskWorksheet:
        d = case.details
        base: dict[str, object] = {
            "breach_types": list(d.breach_types),
            "data_categories": list(d.data_categories),
            "individuals": d.subjects_max if d.subjects_max is not None else d.subjects_min,
            "records": d.records_max if d.records_max is not None else d.records_min,
        }
        # facts the case records count as answers; an unknown fact stays unanswered
        if d.malicious is not None or DataEffect.stolen in d.data_effects:
            base["malicious"] = bool(d.malicious) or DataEffect.stolen in d.data_effects
        if d.protection is not Protection.unknown:
            base["unintelligible"] = d.protection is Protection.encrypted
        if d.subject_categories:
            base["vulnerable_individuals"] = any(w in " ".join(d.subject_categories).lower() for w in
                                                 ("child", "minor", "patient", "vulnerable", "kind", "minderjarig"))
        base.update({k: v for k, v in answers.items() if v is not None})
        return cls.model_validate(base)


class RiskProposal(BaseModel):
    score: float
    level: RiskLevel
    consequence: str
    reasoning: list[str]


def assess(ws: RiskWorksheet) -> RiskProposal:
    """The proposed level for a worksheet, with its reasoning, one line per factor."""
    why: list[str] = []
    cats = ws.data_categories or [DataCategory.other]
    dpc = max(DPC[c] for c in cats)
    top = [c.value for c in cats if DPC[c] == dpc]
    why.append(f"Nature and sensitivity of the data: {', '.join(c.value for c in cats)} -> data processing "
               f"context {dpc} of 4 (driven by {', '.join(top)})")
    if ws.value("vulnerable_individuals") and dpc < 4:
        dpc += 1
        why.append("Special characteristics of the individuals (children or other vulnerable people): context +1")
    if ws.controller_context:
        dpc = min(4, dpc + 0.5)  # type: ignore[assignment]
        why.append(f"Special characteristics of the controller ({ws.controller_context}): context +0.5")
    ident: Identifiability = ws.value("identifiability")
    ei = EI[ident]
    why.append(f"Ease of identification: {ident.value} ({ei})")
    cb = 0.0
    types = set(ws.breach_types)
    unintelligible = bool(ws.value("unintelligible"))
    unknown = bool(ws.value("unknown_recipients")) and not ws.value("trusted_recipient")
    if BreachType.confidentiality in types and unintelligible:
        # EDPB Guidelines 9/2022 and 01/2021 (encrypted device): no one can read the data; the
        # confidentiality loss does not count, whatever else was lost (e.g. availability, no backup)
        why.append("Type of breach: loss of confidentiality, but the data were unintelligible to the recipients "
                   "(state-of-the-art encryption, key not compromised): not counted")
    elif BreachType.confidentiality in types:
        c = 0.5 if unknown else 0.25
        cb += c
        why.append(f"Type of breach: loss of confidentiality (+{c}; "
                   f"{'unknown' if unknown else 'known, trusted'} recipients)")
    if BreachType.integrity in types:
        cb += 0.25
        why.append("Type of breach: loss of integrity (+0.25)")
    if BreachType.availability in types:
        cb += 0.25
        why.append("Type of breach: loss of availability (+0.25)")
    if ws.value("malicious"):
        cb += 0.5
        why.append("Malicious intent (+0.5)")
    if unintelligible and BreachType.confidentiality in types:
        ei = EI[Identifiability.negligible]  # what is left (availability, integrity) cannot expose anyone
        why.append(f"Ease of identification for the remaining loss: negligible ({ei}), the data being unintelligible")
    score = dpc * ei + cb
    n = ws.individuals if ws.individuals is not None else ws.records
    if n is not None:
        if n >= 100_000:
            score += 1.0
            why.append(f"Number of individuals: {n:,} (+1)")
        elif n >= 1_000:
            score += 0.5
            why.append(f"Number of individuals: {n:,} (+0.5)")
        else:
            why.append(f"Number of individuals: {n:,} (+0)")
    else:
        why.append("Number of individuals: unknown (no adjustment; estimate it)")
    score = round(score, 2)
    level = RiskLevel.unlikely if score < 2 else RiskLevel.risk if score < 3 else RiskLevel.high
    why.append(f"Severity score {score} -> {level.value} (below 2 unlikely, from 2 risk, from 3 high)")
    if ws.consequences is not None:
        floor = CONSEQUENCE_FLOOR[ws.consequences]
        if floor.rank > level.rank:
            why.append(f"Severity of consequences for the individuals: {ws.consequences.value} -> at least "
                       f"{floor.value}")
            level = floor
    if unintelligible and types <= {BreachType.confidentiality}:
        why.append("The data were unintelligible to the recipients (state-of-the-art encryption, key not "
                   "compromised) and only confidentiality was lost -> unlikely to result in a risk")
        level = RiskLevel.unlikely
    elif (ws.trusted_recipient and types <= {BreachType.confidentiality} and not ws.value("malicious")
          and ws.consequences in (None, Consequences.minimal)):
        # EDPB Guidelines 01/2021, data sent by mistake to a trusted recipient (EDPB 9/2022: a trusted
        # recipient reduces the severity): document only (Art. 33(5))
        why.append("Sent by mistake to a known, trusted recipient who confirmed deletion and no further use "
                   "-> unlikely to result in a risk (document only)")
        level = RiskLevel.unlikely
    for d in ws.defaults():
        why.append(f"Not answered: {d}")
    return RiskProposal(score=score, level=level, consequence=level.consequence, reasoning=why)


def assessment_record(ws: RiskWorksheet, *, by: str, at: datetime, overrule_to: RiskLevel | None = None,
                      overrule_reason: str | None = None) -> RiskAssessmentRecord:
    """What is stored on the case: the worksheet, the proposal, and any overrule with its reason."""
    p = assess(ws)
    if overrule_to is not None and overrule_to is p.level:
        overrule_to, overrule_reason = None, None
    return RiskAssessmentRecord(worksheet=ws.model_dump(mode="json"), score=p.score, proposed=p.level,
                                reasoning=p.reasoning, overruled_to=overrule_to, overrule_reason=overrule_reason,
                                defaults=ws.defaults(), by=by, at=at)

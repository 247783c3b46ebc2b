"""The breach case: what the DPO documents, decides and sends, and every step taken on the way.

A case follows GDPR Art. 33(3) and the notification form of the Dutch Autoriteit
Persoonsgegevens (AP): what happened, to which data, for how many people, with which
consequences and measures. Every prefilled figure carries its provenance (``provenance``:
field name -> where the number came from). All legal clocks run from one awareness timestamp
(``awareness``), set explicitly by a named person with a reason.

Times are stored as aware UTC datetimes; they are shown in the organisation's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from access_audit.core.errors import AccessAuditError


class BreachError(AccessAuditError):
    """The breach workflow refused or failed an operation (context: the case id)."""

    def __init__(self, message: str, *, case_id: str | None = None) -> None:
        self.case_id = case_id
        self.message = message
        super().__init__(f"{case_id}: {message}" if case_id else message)


class CaseNotFoundError(BreachError):
    """No case with that id."""


class TransitionRefusedError(BreachError):
    """A state change (or an action) is not allowed now; the message says why and what to do."""

    def __init__(self, message: str, *, case_id: str | None = None, from_state: str | None = None,
                 to_state: str | None = None) -> None:
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(message, case_id=case_id)


class ConcurrentUpdateError(BreachError):
    """Someone else changed the case since it was read; read it again and retry."""


def _utc(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError(f"{v.isoformat()} has no UTC offset: give times with an offset or Z")
    return v.astimezone(UTC)


#: an aware datetime, stored in UTC (naive times are refused: their zone would be a guess)
UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --- enumerations ---------------------------------------------------------------------------------

class BreachState(StrEnum):
    reported = "reported"
    triage = "triage"
    not_a_breach = "not_a_breach"
    confirmed = "confirmed"
    assessed = "assessed"
    no_notification_needed = "no_notification_needed"
    notification_drafted = "notification_drafted"
    approved = "approved"
    submitted = "submitted"
    subjects_decided = "subjects_decided"  # Art. 34: communicate to data subjects, or an exception
    closed = "closed"


class BreachType(StrEnum):
    confidentiality = "confidentiality"  # unauthorised or accidental disclosure of, or access to, data
    integrity = "integrity"  # unauthorised or accidental alteration
    availability = "availability"  # accidental or unauthorised loss of access or destruction


class DataEffect(StrEnum):
    read = "read"
    copied = "copied"
    altered = "altered"
    deleted = "deleted"
    stolen = "stolen"
    lost = "lost"


class DataCategory(StrEnum):
    """The kinds of personal data of the AP notification form."""

    contact = "contact"  # name, address, phone, e-mail
    identity = "identity"  # gender, date of birth, age
    login = "login"  # access or identification data: user names, passwords, customer numbers
    financial = "financial"  # financial or economic data
    national_id = "national_id"  # BSN and other national identification numbers
    id_copy = "id_copy"  # copies of passports or other identity documents
    special = "special"  # Art. 9: health, ethnicity, religion, biometrics...
    criminal = "criminal"  # Art. 10: criminal convictions and offences
    other = "other"


#: the data-category words detectors and the resource catalogue use -> the form's kinds
CATEGORY_ALIASES: dict[str, DataCategory] = {
    "contact": DataCategory.contact, "address": DataCategory.contact, "email": DataCategory.contact,
    "phone": DataCategory.contact, "name": DataCategory.contact,
    "identity": DataCategory.identity, "dob": DataCategory.identity, "demographic": DataCategory.identity,
    "login": DataCategory.login, "credentials": DataCategory.login, "password": DataCategory.login,
    "account": DataCategory.login,
    "financial": DataCategory.financial, "iban": DataCategory.financial, "payment": DataCategory.financial,
    "salary": DataCategory.financial,
    "bsn": DataCategory.national_id, "national_id": DataCategory.national_id, "ssn": DataCategory.national_id,
    "id_copy": DataCategory.id_copy, "passport": DataCategory.id_copy,
    "special": DataCategory.special, "health": DataCategory.special, "medical": DataCategory.special,
    "biometric": DataCategory.special, "genetic": DataCategory.special, "religion": DataCategory.special,
    "ethnicity": DataCategory.special, "political": DataCategory.special, "sexual_orientation": DataCategory.special,
    "trade_union": DataCategory.special,
    "criminal": DataCategory.criminal,
}


def data_category(word: str) -> DataCategory:
    """The form's kind for a detector's / catalogue's category word (unknown words -> other)."""
    return CATEGORY_ALIASES.get(word.strip().lower(), DataCategory.other)


class Protection(StrEnum):
    """Were the data unintelligible to whoever got them?"""

    none = "none"
    encrypted = "encrypted"  # state-of-the-art encryption, key not compromised
    hashed = "hashed"  # hashed (salted) values
    partly = "partly"
    unknown = "unknown"


class RiskLevel(StrEnum):
    unlikely = "unlikely"  # unlikely to result in a risk: document only
    risk = "risk"  # notify the supervisory authority
    high = "high"  # also communicate to the data subjects

    @property
    def rank(self) -> int:
        return {"unlikely": 0, "risk": 1, "high": 2}[self.value]

    @property
    def consequence(self) -> str:
        return {"unlikely": "document only (Art. 33(5))",
                "risk": "notify the supervisory authority (Art. 33(1))",
                "high": "notify the supervisory authority and tell the data subjects (Art. 33(1), 34(1))"}[self.value]


class SubjectsDecisionKind(StrEnum):
    communicate = "communicate"  # Art. 34(1)
    not_required = "not_required"  # no high risk
    exception_34_3_a = "exception_34_3_a"  # data unintelligible (e.g. encrypted)
    exception_34_3_b = "exception_34_3_b"  # subsequent measures: high risk no longer likely
    exception_34_3_c = "exception_34_3_c"  # disproportionate effort: public communication instead


# --- parts of a case ------------------------------------------------------------------------------

class Awareness(_Model):
    """When the organisation had a reasonable degree of certainty that personal data were compromised."""

    at: UtcDateTime
    by: str
    reason: str
    recorded_at: UtcDateTime  # when this was entered (reminders that were due before it are not sent)


class EvidenceAlert(_Model):
    """An alert the case was opened from (a snapshot: alerts can change later)."""

    id: str
    rule_id: str
    title: str
    severity: str
    user: str | None = None
    source_ip: str | None = None
    resource: str | None = None
    first_seen: UtcDateTime
    last_seen: UtcDateTime
    count: int = 1
    event_ids: list[str] = Field(default_factory=list)
    data_categories: list[str] = Field(default_factory=list)
    query: str | None = None


class Contact(_Model):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    role: str = "Data Protection Officer"


class BreachDetails(_Model):
    """The contents of a notification (Art. 33(3), the AP form). Every field may be unknown yet."""

    title: str | None = None
    summary: str | None = None  # what happened, in a few sentences
    cause: str | None = None
    breach_types: list[BreachType] = Field(default_factory=list)
    data_effects: list[DataEffect] = Field(default_factory=list)
    systems: list[str] = Field(default_factory=list)
    data_categories: list[DataCategory] = Field(default_factory=list)
    data_categories_note: str | None = None  # details, e.g. which special categories
    subject_categories: list[str] = Field(default_factory=list)  # customers, employees, patients, children...
    subjects_min: int | None = Field(default=None, ge=0)
    subjects_max: int | None = Field(default=None, ge=0)
    records_min: int | None = Field(default=None, ge=0)
    records_max: int | None = Field(default=None, ge=0)
    protection: Protection = Protection.unknown
    protection_note: str | None = None
    likely_consequences: str | None = None
    measures_taken: str | None = None
    measures_proposed: str | None = None
    advice_to_subjects: str | None = None  # what people can do themselves (letter to data subjects)
    cross_border: bool | None = None
    countries: list[str] = Field(default_factory=list)
    lead_authority: str | None = None  # when other countries are involved (one-stop shop)
    malicious: bool | None = None  # suspected unlawful or malicious act (NIS2 early warning)
    ongoing: bool | None = None  # AP form: is the breach still going on?
    processor_involved: bool | None = None  # AP form: was another organisation (a processor) involved?
    processor: str | None = None  # which one, and its role
    nis2_cross_border_impact: bool | None = None  # NIS2 Art. 23(4)(a): could the incident have a cross-border impact?
    nis2_cross_border_note: str | None = None  # which Member States or services
    delay_reasons: str | None = None  # why the authority is notified after 72 hours (Art. 33(1))
    contact: Contact = Field(default_factory=Contact)
    letter_salutation: str | None = None  # the letter to the data subjects: "Beste klant," by default
    letter_contact: str | None = None  # who answers the data subjects' questions (default: the contact point)
    complaint_authority: str | None = None  # where they can complain (default: the authority notified)
    organisation: str | None = None
    controller: str | None = None  # regime "processor": the controller we notify (Art. 33(2))
    authority: str = "Autoriteit Persoonsgegevens"


class RiskAssessmentRecord(_Model):
    worksheet: dict[str, Any]
    score: float
    proposed: RiskLevel
    reasoning: list[str]
    overruled_to: RiskLevel | None = None
    overrule_reason: str | None = None
    overruled_by: str | None = None  # who overruled (the register names them, Art. 33(5))
    overruled_at: UtcDateTime | None = None
    defaults: list[str] = Field(default_factory=list)  # questions left unanswered and what was assumed
    by: str
    at: UtcDateTime

    @property
    def level(self) -> RiskLevel:
        return self.overruled_to or self.proposed


class DraftRecord(_Model):
    kind: str  # authority | data_subjects | nis2_early_warning
    lang: str
    version: int
    at: UtcDateTime
    by: str
    complete: bool
    missing: list[str] = Field(default_factory=list)
    markdown: str  # what was drafted (the text approved is the text submitted)


class Approval(_Model):
    by: str
    at: UtcDateTime
    draft_version: int
    late: bool = False
    delay_reasons: str | None = None
    phased_reason: str | None = None  # Art. 33(4): elements that follow in a supplement


class Submission(_Model):
    at: UtcDateTime
    by: str
    channel: str  # e.g. "AP meldloket (online form)"
    reference: str  # the authority's reference
    late: bool = False
    delay_reasons: str | None = None


class Amendment(_Model):
    """A change to a notification already made ("aanpassen"): what changed, when, by whom."""

    at: UtcDateTime
    by: str
    text: str
    reference: str | None = None


class Notification(_Model):
    """One notification to one supervisory authority (EDPB Guidelines 9/2022 §73: the lead authority
    and, where needed, others; the AP form: a notification can be supplemented, amended or withdrawn).
    The first one is the case's ``submission``; each carries its authority, reference, time and language."""

    number: int
    authority: str
    lead: bool = False
    at: UtcDateTime
    by: str
    channel: str
    reference: str
    lang: str
    draft_version: int
    milestone: str  # the clock it met: authority_notified (GDPR) or ico_notified (UK GDPR)
    late: bool = False
    amendments: list[Amendment] = Field(default_factory=list)
    withdrawn_at: UtcDateTime | None = None
    withdrawn_by: str | None = None
    withdrawal_reason: str | None = None


class Supplement(_Model):
    """A supplementary notification (Art. 33(4)), numbered from 1."""

    version: int
    at: UtcDateTime
    by: str
    text: str
    changes: dict[str, Any] = Field(default_factory=dict)  # detail field -> new value
    reference: str | None = None


class OutstandingElement(_Model):
    """An element of a phased notification that follows later (GDPR Art. 33(4): "without undue
    further delay"). Open until a supplement supplies it, or a named person records why it never will."""

    key: str
    label: str
    since: UtcDateTime  # approval of the phased notification
    supplied_at: UtcDateTime | None = None
    supplement_version: int | None = None
    waived_reason: str | None = None
    waived_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.supplied_at is None and self.waived_reason is None


class MilestoneNote(_Model):
    """Who entered a milestone and why (clock origins the law leaves to a person must say both)."""

    by: str
    reason: str | None = None
    recorded_at: UtcDateTime


class RegimeReport(_Model):
    """A report under a sector regime kept as a list, not overwritten (DORA Art. 19(4)(b): updated
    notifications every time a relevant status update is available)."""

    regime: str
    kind: str  # e.g. intermediate, update
    at: UtcDateTime
    by: str
    reference: str | None = None
    note: str | None = None


class SubjectsDecision(_Model):
    decision: SubjectsDecisionKind
    reasoning: str
    by: str
    at: UtcDateTime
    communicated_at: UtcDateTime | None = None
    channel: str | None = None


class AuditEntry(_Model):
    """One line of the audit trail: who did what when, what changed, and why."""

    seq: int
    at: UtcDateTime
    actor: str
    action: str
    from_state: BreachState | None = None
    to_state: BreachState | None = None
    reason: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)  # field -> [old, new]


class BreachCase(_Model):
    """One (possible) personal-data breach, notified or not: the unit of the register."""

    id: str
    state: BreachState = BreachState.reported
    opened_at: UtcDateTime
    opened_by: str
    source: str = "manual"  # manual | alerts | slack | api | demo
    occurred_from: UtcDateTime | None = None
    occurred_to: UtcDateTime | None = None
    detected_at: UtcDateTime | None = None
    awareness: Awareness | None = None
    regimes: list[str] = Field(default_factory=lambda: ["gdpr"])
    details: BreachDetails = Field(default_factory=BreachDetails)
    provenance: dict[str, str] = Field(default_factory=dict)  # details field -> where the value came from
    alerts: list[EvidenceAlert] = Field(default_factory=list)
    risk: RiskAssessmentRecord | None = None
    risk_history: list[RiskAssessmentRecord] = Field(default_factory=list)  # earlier assessments, oldest first
    no_notification_reason: str | None = None
    not_a_breach_reason: str | None = None
    drafts: list[DraftRecord] = Field(default_factory=list)
    approval: Approval | None = None
    submission: Submission | None = None
    notifications: list[Notification] = Field(default_factory=list)  # every authority notified, first = submission
    supplements: list[Supplement] = Field(default_factory=list)
    outstanding: list[OutstandingElement] = Field(default_factory=list)  # Art. 33(4) elements to follow
    subjects: SubjectsDecision | None = None
    milestones: dict[str, UtcDateTime] = Field(default_factory=dict)  # e.g. nis2_early_warning_sent
    milestones_recorded: dict[str, UtcDateTime] = Field(default_factory=dict)  # when each was entered
    milestone_notes: dict[str, MilestoneNote] = Field(default_factory=dict)  # who entered each milestone, why
    reports: list[RegimeReport] = Field(default_factory=list)  # DORA intermediate report and its updates
    late_reasons: dict[str, str] = Field(default_factory=dict)  # clock id -> reasons for meeting it late
    awareness_history: list[Awareness] = Field(default_factory=list)  # awareness times before a correction
    closed_at: UtcDateTime | None = None
    close_reason: str | None = None
    trail: list[AuditEntry] = Field(default_factory=list)
    version: int = 0  # optimistic concurrency: bumped by every save

    def latest_draft(self, kind: str = "authority", lang: str | None = None) -> DraftRecord | None:
        for d in reversed(self.drafts):
            if d.kind == kind and (lang is None or d.lang == lang):
                return d
        return None

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"trail"})

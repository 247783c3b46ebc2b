"""The resource catalogue: which services, tables, buckets and URL paths hold personal data, of
which categories, for roughly how many data subjects, and which roles may see them.

    resources:
      - id: crm-customer-medical
        name: CRM customer medical records
        match: {service.name: crm, url.path: "/api/customers/*/medical"}   # globs, ANDed
        classification: special             # public | internal | confidential | personal | special
        data_categories: [health]           # contact, login, financial, bsn, id_copy, health, criminal...
        subjects: 12000                     # approximate number of data subjects
        subject_id_from: "/api/customers/{subject}/medical"   # where the data subject id sits in the path
        allowed_roles: [medical-advisor, dpo]                  # need-to-know
        requires_justification: false
        owner: team-crm

Entries are tried in order; the first whose ``match`` fits the event wins.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, field_validator

from access_audit.core.errors import ConfigError
from access_audit.core.events import AccessEvent, Resource, get_field

SPECIAL = {"health", "special", "biometric", "genetic", "religion", "ethnicity", "political", "sexual_orientation",
           "trade_union"}
CRIMINAL = {"criminal"}


class CatalogueEntry(BaseModel):
    id: str
    name: str | None = None
    match: dict[str, str | list[str]]
    classification: str = "personal"
    data_categories: list[str] = Field(default_factory=list)
    subjects: int | None = None
    subject_id_from: str | None = None
    allowed_roles: list[str] | None = None  # None: no need-to-know restriction
    requires_justification: bool = False
    owner: str | None = None

    @field_validator("match")
    @classmethod
    def _nonempty(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("match needs at least one field")
        return v

    def subject_regex(self) -> re.Pattern[str] | None:
        if not self.subject_id_from:
            return None
        parts = self.subject_id_from.split("{subject}")
        if len(parts) != 2:
            raise ValueError("subject_id_from needs exactly one {subject}")
        return re.compile("^" + re.escape(parts[0]).replace(r"\*", "[^/]*") + r"(?P<subject>[^/?#]+)"
                          + re.escape(parts[1]).replace(r"\*", "[^/]*") + "$")

    @property
    def special(self) -> bool:
        return bool(SPECIAL & set(self.data_categories)) or self.classification == "special"


class ResourceCatalogue:
    def __init__(self, entries: list[CatalogueEntry]) -> None:
        self.entries = entries
        self._compiled = [(e, [(tuple(k.split(".")), [v] if isinstance(v, str) else v) for k, v in e.match.items()],
                           e.subject_regex()) for e in entries]
        self._by_id = {e.id: e for e in entries}

    @classmethod
    def from_file(cls, path: Path) -> ResourceCatalogue:
        try:
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
            rows = doc.get("resources", []) if isinstance(doc, dict) else doc
            return cls([CatalogueEntry.model_validate(r) for r in rows])
        except (OSError, ValueError, yaml.YAMLError) as e:
            raise ConfigError(f"resource catalogue {path}: {e}") from e

    def get(self, entry_id: str | None) -> CatalogueEntry | None:
        return self._by_id.get(entry_id) if entry_id else None

    def lookup(self, ev: AccessEvent) -> tuple[CatalogueEntry, str | None] | None:
        """The first matching entry and the data subject id found in the URL path, if any."""
        for entry, conds, rx in self._compiled:
            ok = True
            for path, globs in conds:
                v = get_field(ev, path)
                if v is None or not any(fnmatch.fnmatchcase(str(v), g) for g in globs):
                    ok = False
                    break
            if ok:
                subject = None
                if rx is not None and ev.url is not None and ev.url.path:
                    m = rx.match(ev.url.path)
                    subject = m["subject"] if m else None
                return entry, subject
        return None


class CatalogueEnricher:
    """Marks what the event touched: classification, data categories, data subject, owner."""

    def __init__(self, catalogue: ResourceCatalogue) -> None:
        self.catalogue = catalogue

    def enrich(self, ev: AccessEvent) -> None:
        hit = self.catalogue.lookup(ev)
        if hit is None:
            return
        entry, subject = hit
        res = ev.resource or Resource()
        res.classification = res.classification or entry.classification
        for c in entry.data_categories:
            if c not in res.data_categories:
                res.data_categories.append(c)
        if subject and subject not in res.subject_ids:
            res.subject_ids.append(subject)
        res.owner = res.owner or entry.owner
        if res.records is None and subject:
            res.records = 1
        ev.resource = res
        ev.labels["catalogue_id"] = entry.id

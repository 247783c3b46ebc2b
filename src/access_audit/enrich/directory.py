"""The identity directory: who people are (roles, department, manager), their account status over
time, their time zone and working hours. Loaded from YAML, JSON or CSV; reloaded when the file
changes, without a restart.

    users:
      - name: alice                       # the login name in the logs
        aliases: [alice@zorgwijk.nl]      # other names of the same person in other logs
        roles: [support]
        department: Customer service
        manager: bob
        status: active                    # active | suspended | terminated
        status_since: 2026-10-01
        timezone: Europe/Amsterdam
        working_hours: "08:00-18:00"
        working_days: [mon, tue, wed, thu, fri]
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time as _time
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, Field, field_validator

from access_audit.core.errors import ConfigError
from access_audit.core.events import AccessEvent

log = logging.getLogger(__name__)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Person(BaseModel):
    name: str
    aliases: list[str] = Field(default_factory=list)
    full_name: str | None = None
    roles: list[str] = Field(default_factory=list)
    department: str | None = None
    manager: str | None = None
    status: Literal["active", "suspended", "terminated"] = "active"
    status_since: date | datetime | None = None
    hired: date | None = None
    timezone: str = "Europe/Amsterdam"
    working_hours: str = "08:00-18:00"
    working_days: list[str] = Field(default_factory=lambda: list(DAYS[:5]))
    privileged: bool = False

    @field_validator("roles", "aliases", "working_days", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [x.strip() for x in v.replace(";", ",").split(",") if x.strip()]
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        ZoneInfo(v)  # raises for an unknown zone
        return v

    def hours(self) -> tuple[time, time]:
        a, _, b = self.working_hours.partition("-")
        return time.fromisoformat(a.strip()), time.fromisoformat(b.strip())

    def status_at(self, when: datetime) -> str:
        """The account status at ``when``: before ``status_since`` a non-active account was active."""
        if self.status == "active" or self.status_since is None:
            return self.status
        since = self.status_since
        since_dt = since if isinstance(since, datetime) else datetime.combine(since, time(), tzinfo=UTC)
        if since_dt.tzinfo is None:
            since_dt = since_dt.replace(tzinfo=UTC)
        return self.status if when >= since_dt else "active"

    def is_working_time(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.timezone))
        if DAYS[local.weekday()] not in self.working_days:
            return False
        start, end = self.hours()
        t = local.time()
        return start <= t < end if start <= end else (t >= start or t < end)  # night shifts cross midnight


class IdentityDirectory:
    """Lookup of people by any of their names. Thread-safe; ``maybe_reload`` picks up file changes."""

    def __init__(self, people: list[Person] | None = None, path: Path | None = None,
                 check_every_s: float = 5.0) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._checked = 0.0
        self._by_name: dict[str, Person] = {}
        self.reloads = 0
        if people is not None:
            self._index(people)
        if path is not None:
            self.reload()

    @classmethod
    def from_file(cls, path: Path) -> IdentityDirectory:
        return cls(path=path)

    def _index(self, people: list[Person]) -> None:
        by: dict[str, Person] = {}
        for p in people:
            for n in (p.name, *p.aliases):
                by[n.casefold()] = p
        self._by_name = by

    def reload(self) -> None:
        assert self.path is not None
        try:
            mtime = self.path.stat().st_mtime
            people = load_people(self.path)
        except (OSError, ValueError, yaml.YAMLError) as e:
            if self._mtime is None:
                raise ConfigError(f"identity directory {self.path}: {e}") from e
            log.error("identity directory %s not reloaded, keeping the previous one: %s", self.path, e)
            return
        with self._lock:
            self._index(people)
            self._mtime = mtime
            self.reloads += 1

    def maybe_reload(self) -> None:
        if self.path is None:
            return
        now = _time.monotonic()
        if now - self._checked < self.check_every_s:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime != self._mtime:
            self.reload()

    def get(self, name: str | None) -> Person | None:
        if not name:
            return None
        return self._by_name.get(name.casefold())

    def __len__(self) -> int:
        return len({id(p) for p in self._by_name.values()})


def load_people(path: Path) -> list[Person]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows: list[Any] = list(csv.DictReader(text.splitlines()))
        rows = [{k: v for k, v in r.items() if v not in (None, "")} for r in rows]
    else:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        rows = doc.get("users", []) if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise ValueError("expected a list of users (or a mapping with 'users')")
    people = []
    for i, r in enumerate(rows):
        try:
            people.append(Person.model_validate(r))
        except ValueError as e:
            raise ValueError(f"user #{i + 1}: {e}") from None
    return people


class DirectoryEnricher:
    """Adds the actor's roles and department from the directory to each event."""

    def __init__(self, directory: IdentityDirectory) -> None:
        self.directory = directory

    def enrich(self, ev: AccessEvent) -> None:
        self.directory.maybe_reload()
        u = ev.user
        if u is None:
            return
        p = self.directory.get(u.name) or self.directory.get(u.email)
        if p is None:
            return
        if not u.roles:
            u.roles = list(p.roles)
        if u.department is None:
            u.department = p.department
        if u.full_name is None:
            u.full_name = p.full_name

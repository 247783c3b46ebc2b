"""Context the detectors need: GeoIP, the identity directory, the resource catalogue.

Enrichers run on every event after parsing and before storing, so stored events and alerts carry
the country, the actor's roles and the data classification of what was accessed.
"""

from __future__ import annotations

from typing import Protocol

from access_audit.core.events import AccessEvent


class Enricher(Protocol):
    def enrich(self, ev: AccessEvent) -> None:
        """Add context to the event in place. Must not raise for unknown users, addresses or resources."""
        ...

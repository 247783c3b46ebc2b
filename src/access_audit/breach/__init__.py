"""The GDPR breach-response workflow: cases, legal clocks, reminders, drafts and the register.

    reported -> triage -> confirmed (awareness) -> assessed -> notification drafted -> approved
             -> submitted (+ supplements) -> data subjects decided -> closed

``model`` (the case), ``machine`` (states and transitions), ``workflow`` (every action, with its
guards and audit trail), ``clocks`` (deadlines of GDPR, UK GDPR, processor, NIS2, DORA, HIPAA),
``risk`` (EDPB worksheet), ``drafts`` (jinja2 templates in ``notifications/``), ``prefill`` (figures
from alerts and the event store, with provenance), ``reminders`` (APScheduler at the edge),
``repo`` (SQLite), ``register`` (Art. 33(5)), ``api`` (FastAPI router), ``cli`` (``access-audit breach``).
"""

from __future__ import annotations

from access_audit.breach.model import BreachCase, BreachError, BreachState, TransitionRefusedError
from access_audit.breach.prefill import open_case_from_alerts
from access_audit.breach.repo import BreachRepo
from access_audit.breach.workflow import BreachConfig, BreachWorkflow

__all__ = ["BreachCase", "BreachConfig", "BreachError", "BreachRepo", "BreachState", "BreachWorkflow",
           "TransitionRefusedError", "open_case_from_alerts"]

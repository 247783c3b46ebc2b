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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from access_audit.breach.model import BreachCase, BreachError, BreachState, TransitionRefusedError
    from access_audit.breach.prefill import open_case_from_alerts
    from access_audit.breach.repo import BreachRepo
    from access_audit.breach.workflow import BreachConfig, BreachWorkflow

# Loaded on first use (PEP 562): the CLI registers ``access-audit breach`` without building the
# case models, so ``access-audit --help`` and every other command start ~250 ms sooner.
_WHERE = {"BreachCase": "model", "BreachError": "model", "BreachState": "model", "TransitionRefusedError": "model",
          "open_case_from_alerts": "prefill", "BreachRepo": "repo", "BreachConfig": "workflow",
          "BreachWorkflow": "workflow"}

__all__ = ["BreachCase", "BreachConfig", "BreachError", "BreachRepo", "BreachState", "BreachWorkflow",
           "TransitionRefusedError", "open_case_from_alerts"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"access_audit.breach.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'access_audit.breach' has no attribute {name!r}")

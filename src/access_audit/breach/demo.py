"""The end of ``access-audit demo``: from the mass-export scenario's alerts to a draft notification.

:func:`open_case_from_scenario` finds the alerts of a demo scenario in the store (its expected
rules, its actors, its time span) and opens a case from them. :func:`demo_breach` then walks the
path a DPO would: awareness, risk worksheet, a phased Dutch notification (what the logs cannot
know, such as the cause and the measures, is marked "to follow" and listed), written under
``<data_dir>/breach/``, and prints where everything is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from access_audit.breach.clocks import local_iso
from access_audit.breach.model import BreachCase
from access_audit.breach.prefill import open_case_from_alerts
from access_audit.breach.workflow import BreachConfig, BreachWorkflow
from access_audit.core.alerts import Alert
from access_audit.core.clock import Clock

DEMO_DPO = "Demo DPO"


def scenario_alerts(scenario: Any, store: Any) -> list[Alert]:
    """The stored alerts that belong to a demo ``Scenario`` (rule, actor and time span)."""
    actors = set(scenario.actors)
    out = []
    for a in store.alerts(limit=100_000):
        if a.rule_id not in scenario.expected_rules:
            continue
        if actors and not ({a.user, a.source_ip} & actors):
            continue
        if a.last_seen < scenario.start or a.first_seen > scenario.end:
            continue
        out.append(a)
    return sorted(out, key=lambda a: a.first_seen)


def open_case_from_scenario(scenario: Any, store: Any, repo: Any, clock: Clock, actor: str = DEMO_DPO, *,
                            config: Any = None) -> BreachCase | None:
    """A case from a scenario's alerts, or None when its rules raised none."""
    alerts = scenario_alerts(scenario, store)
    if not alerts:
        return None
    return open_case_from_alerts(alerts, store, repo, clock, actor, config=config, source="demo",
                                 reason=f"demo scenario {scenario.id}", existing="return")


def demo_breach(scenario: Any, store: Any, settings: Any, clock: Clock, console: Console | None = None) -> str | None:
    """Open, confirm and assess a case from ``scenario`` and draft the notification; return the case id."""
    from access_audit.breach.service import open_repo

    console = console or Console(stderr=True, highlight=False)
    cfg = BreachConfig.from_settings(settings)
    if not cfg.organisation or not cfg.dpo_name:
        cfg = BreachConfig(**{**cfg.__dict__, "organisation": cfg.organisation or "Zorgwijk (demo)",
                              "dpo_name": cfg.dpo_name or DEMO_DPO,
                              "dpo_email": cfg.dpo_email or "dpo@zorgwijk.example"})
    repo = open_repo(settings)
    wf = BreachWorkflow(repo, clock, cfg)
    case = open_case_from_scenario(scenario, store, repo, clock, DEMO_DPO, config=cfg)
    if case is None:
        console.print(f"[yellow]breach:[/] no alert of {escape(', '.join(scenario.expected_rules))} for "
                      f"{escape(scenario.id)}: no case opened")
        repo.close()
        return None
    if case.trail[-1].action != "open" or len(case.trail) > 1:  # a case of an earlier demo run: not a new one
        console.print(f"[bold]breach case {case.id}[/] already holds the alerts of {escape(scenario.id)} (an "
                      f"earlier demo run): no duplicate opened. Try: access-audit breach show {case.id}")
        repo.close()
        return case.id
    case = wf.set_awareness(case.id, DEMO_DPO, clock.now(), "The CRM logs show the records were read by a script "
                            "from a home address at night: personal data were compromised")
    case = wf.assess(case.id, DEMO_DPO, {"identifiability": "maximum", "malicious": True})
    case, res = wf.draft(case.id, DEMO_DPO, "authority", "nl", phased=True)
    out_dir = Path(settings.data_dir) / "breach"
    out_dir.mkdir(parents=True, exist_ok=True)
    md, html = out_dir / f"{case.id}-melding.md", out_dir / f"{case.id}-melding.html"
    md.write_text(res.markdown or "", encoding="utf-8")
    html.write_text(res.html or "", encoding="utf-8")
    tz = cfg.tz
    d = case.details
    console.print(f"[bold]breach case {case.id}[/] opened from {len(case.alerts)} alert(s) of {escape(scenario.id)}: "
                  f"{escape(d.title or '')}")
    console.print(f"  data subjects: {d.subjects_max} [dim]({escape(case.provenance.get('subjects_max', ''))})[/]")
    for s in wf.clocks(case):
        j = s.to_json(tz)
        console.print(f"  clock: {escape(s.rule.label)} due {j['due']} ({j['remaining']})")
    assert case.risk is not None
    console.print(f"  risk: {case.risk.level.value} -> {escape(case.risk.level.consequence)}")
    console.print(f"  draft (nl, phased; to follow: {escape(', '.join(res.phased) or 'nothing')}): {md} and {html}")
    console.print(f"  next: access-audit breach show {case.id} · breach edit {case.id} --set cause=... · "
                  f"breach draft {case.id} --lang en")
    console.print(f"  aware since {local_iso(case.awareness.at, tz) if case.awareness else '-'}")
    repo.close()
    return case.id

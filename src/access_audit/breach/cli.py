"""``access-audit breach ...``: the DPO's breach workflow on the command line.

    access-audit breach open --title "Lost laptop" --summary "..." --by "Fenna de Vries"
    access-audit breach open --alert 3f2c...               # from alerts in the store, prefilled
    access-audit breach aware BR-2026-0001 --at "2026-03-27T10:00+01:00" --reason "police report"
    access-audit breach edit BR-2026-0001 --set data_categories=contact,national_id --set subjects_max=150
    access-audit breach assess BR-2026-0001 --identifiability maximum --consequences serious
    access-audit breach draft BR-2026-0001 --lang nl --format html --out melding.html
    access-audit breach approve BR-2026-0001 [--delay-reasons "..."]
    access-audit breach submit BR-2026-0001 --channel "AP meldloket" --reference M-12345
    access-audit breach subjects BR-2026-0001 --decision communicate --reasoning "high risk"
    access-audit breach close BR-2026-0001 --reason "measures done"
    access-audit breach register --format csv

Times without an offset are read in the organisation's time zone (ACCESS_AUDIT_ORG_TIMEZONE).
The acting person is ``--by``, else ACCESS_AUDIT_ACTOR, else the login name. A refused step
exits with 2 and says why; a draft with missing elements exits with 1 and lists them.
"""


import getpass
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_origin

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from access_audit.breach.workflow import BreachWorkflow

breach_app = typer.Typer(help="GDPR breach response: cases, legal clocks, drafts for the authority, the register.",
                         no_args_is_help=True)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

CaseId = Annotated[str, typer.Argument(help="Case id, e.g. BR-2026-0001.")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (env ACCESS_AUDIT_DATA_DIR).",
                                              show_default=False)]
By = Annotated[str | None, typer.Option("--by", help="Who is acting (default: ACCESS_AUDIT_ACTOR or login name).",
                                        show_default=False)]
Reason = Annotated[str | None, typer.Option("--reason", help="Why (goes into the audit trail).")]
Fmt = Annotated[str, typer.Option("--format", "-f", help="text | json")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="field=value (repeatable); lists comma-separated, "
                                                "e.g. data_categories=contact,national_id; contact.email=...")]


def _settings(data_dir: Path | None) -> Any:
    from access_audit.settings import Settings

    return Settings(data_dir=data_dir) if data_dir else Settings()


def _audit_read(data_dir: Path | None, action: str, what: str) -> None:
    """Record a read of cases or the register in the self-audit with the OS user (issue 12), as the
    main CLI does for queries. The CLI is the top of the stack, so it may use the API's self-audit.
    A store that cannot be opened is warned about, never a reason to refuse the read."""
    try:
        from access_audit.api.audit import audit_cli
        from access_audit.store.opening import open_store

        store = open_store(_settings(data_dir))
    except Exception as e:  # the register must stay readable when the event store is down
        err.print(f"[yellow]warning:[/] this read is not in the self-audit: {escape(str(e))}")
        return
    try:
        audit_cli(store, action, what)
    finally:
        store.close()


def _wf(data_dir: Path | None) -> "BreachWorkflow":
    from access_audit.breach.service import workflow_from_settings

    return workflow_from_settings(_settings(data_dir))


def _by(by: str | None) -> str:
    return by or os.environ.get("ACCESS_AUDIT_ACTOR") or getpass.getuser()


def _time(text: str | None, wf: "BreachWorkflow") -> datetime | None:
    """A time from the command line; without an offset it is read in the organisation's time zone,
    refused when that wall time does not exist (DST gap) or happens twice (DST fold: give the offset)."""
    from access_audit.breach.clocks import AmbiguousLocalTimeError, strict_local_to_utc

    if text is None:
        return None
    if text.strip().lower() == "now":
        return wf.clock.now()
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"invalid time {text!r}: use ISO 8601, e.g. 2026-03-27T10:00+01:00") from None
    if t.tzinfo:
        return t
    try:
        return strict_local_to_utc(t, wf.config.tz)
    except AmbiguousLocalTimeError as e:
        raise typer.BadParameter(str(e)) from None


def _parse_sets(sets: list[str] | None) -> dict[str, Any]:
    from access_audit.breach.model import BreachDetails

    out_: dict[str, Any] = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise typer.BadParameter(f"--set needs field=value, got {item!r}")
        head = key.split(".")[0]
        f = BreachDetails.model_fields.get(head)
        is_list = head == "regimes" or (f is not None and get_origin(f.annotation) is list)
        v: Any = value.strip()
        if v.lower() in ("null", ""):  # "none" is a value (protection=none)
            v = [] if is_list else None
        elif is_list:
            v = [x.strip() for x in v.split(",") if x.strip()]
        out_[key] = v
    return out_


def _run(fn: Any, *args: Any, **kw: Any) -> Any:
    from access_audit.breach.model import BreachError

    try:
        return fn(*args, **kw)
    except BreachError as e:
        err.print(f"[red]refused:[/] {escape(str(e))}")
        raise typer.Exit(2) from None


def _emit(wf: "BreachWorkflow", case: Any, fmt: str, *, id_only: bool = False) -> None:
    from access_audit.breach.service import case_json

    if fmt == "json":
        sys.stdout.write(orjson.dumps(case_json(wf, case)).decode() + "\n")
    elif id_only:
        sys.stdout.write(case.id + "\n")
    else:
        _print_case(wf, case)


def _print_case(wf: "BreachWorkflow", c: Any) -> None:
    from access_audit.breach.clocks import local_iso
    from access_audit.breach.machine import NEXT_STEP

    tz = wf.config.tz
    d = c.details
    out.print(f"[bold]{escape(c.id)}[/] {escape(d.title or '')}  state [bold]{c.state.value}[/]")
    out.print(f"next step: {escape(NEXT_STEP[c.state])}")
    if c.awareness:
        out.print(f"aware since {local_iso(c.awareness.at, tz)} ({escape(c.awareness.by)}: "
                  f"{escape(c.awareness.reason)})")
    else:
        out.print("awareness not set: no clock runs yet ('breach aware')")
    t = Table(title="clocks", show_lines=False)
    for col in ("clock", "legal basis", "due", "status"):
        t.add_column(col)
    for s in wf.clocks(c):
        j = s.to_json(tz)
        t.add_row(escape(s.rule.label), escape(s.rule.legal_basis), j["due"] or "-",
                  f"{s.status}" + (f" ({j['remaining']})" if j["remaining"] else ""))
    out.print(t)
    facts = Table(title="contents", show_header=False)
    facts.add_column("field")
    facts.add_column("value", overflow="fold")
    facts.add_column("source", overflow="fold")
    for k, v in d.model_dump(mode="json").items():
        if v in (None, [], "") or k == "contact":
            continue
        facts.add_row(k, escape(str(v)), escape(c.provenance.get(k, "")))
    facts.add_row("contact", escape(", ".join(x for x in (d.contact.name, d.contact.email, d.contact.phone) if x)), "")
    out.print(facts)
    if c.risk:
        out.print(f"risk: proposed {c.risk.proposed.value} (score {c.risk.score})"
                  + (f", overruled to {c.risk.overruled_to.value}: {escape(c.risk.overrule_reason or '')}"
                     if c.risk.overruled_to else ""))
    trail = Table(title="audit trail")
    for col in ("#", "when", "who", "action", "state", "why"):
        trail.add_column(col, overflow="fold")
    for e in c.trail:
        st = f"{e.from_state.value if e.from_state else ''} -> {e.to_state.value}" if e.to_state else ""
        trail.add_row(str(e.seq), local_iso(e.at, tz), escape(e.actor), e.action, st, escape(e.reason or ""))
    out.print(trail)


# --- commands ---------------------------------------------------------------------------------------

@breach_app.command("open")
def open_(
    title: Annotated[str | None, typer.Option(help="Short title.")] = None,
    summary: Annotated[str | None, typer.Option(help="What happened.")] = None,
    alert: Annotated[list[str] | None, typer.Option("--alert", help="Alert id from the store (repeatable): "
                                                    "the case is prefilled from the evidence.")] = None,
    occurred_from: Annotated[str | None, typer.Option(help="When the breach began (ISO 8601).")] = None,
    occurred_to: Annotated[str | None, typer.Option(help="When it ended.")] = None,
    detected_at: Annotated[str | None, typer.Option(help="When it was detected.")] = None,
    regime: Annotated[list[str] | None, typer.Option("--regime", help="gdpr uk_gdpr processor nis2 dora hipaa "
                                                     "(repeatable; default ACCESS_AUDIT_BREACH_REGIMES).")] = None,
    sets: Sets = None,
    by: By = None,
    reason: Reason = None,
    fmt: Fmt = "text",
    data_dir: DataDir = None,
) -> None:
    """Open a case (by hand, or from alerts). Prints the new case id (--format json: the whole case)."""
    wf = _wf(data_dir)
    if alert:
        from access_audit.breach.prefill import open_case_from_alerts
        from access_audit.store.opening import open_store

        settings = _settings(data_dir)
        if not settings.sqlite_path.exists():
            err.print(f"[red]error:[/] no event store at {escape(str(settings.sqlite_path))}")
            raise typer.Exit(2)
        store = open_store(settings)
        found = {a.id: a for a in store.alerts(limit=1_000_000)}
        missing = [a for a in alert if a not in found]
        if missing:
            err.print(f"[red]error:[/] unknown alert(s): {escape(', '.join(missing))}")
            raise typer.Exit(2)
        case = _run(open_case_from_alerts, [found[a] for a in alert], store, wf.repo, wf.clock, _by(by),
                    config=wf.config, source="cli", reason=reason, existing="refuse")
        store.close()
        extra = _parse_sets(sets)
        if extra or title or summary or regime:
            extra.update({k: v for k, v in (("title", title), ("summary", summary), ("regimes", regime)) if v})
            case = _run(wf.edit, case.id, _by(by), extra, reason="details given when opening")
    else:
        details = _parse_sets(sets)
        case = _run(wf.open_case, _by(by), title=title, summary=summary, source="cli",
                    occurred_from=_time(occurred_from, wf), occurred_to=_time(occurred_to, wf),
                    detected_at=_time(detected_at, wf), regimes=regime, details=details, reason=reason)
    _emit(wf, case, fmt, id_only=True)


@breach_app.command()
def show(case_id: CaseId, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """The case: state, every clock with its due time, contents with their sources, audit trail."""
    wf = _wf(data_dir)
    case = _run(wf.get, case_id)
    _audit_read(data_dir, "case_read", case_id)
    _emit(wf, case, fmt)


@breach_app.command("list")
def list_(state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
          open_only: Annotated[bool, typer.Option("--open", help="Only cases not closed.")] = False,
          fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """The cases, with their most urgent open clock."""
    from access_audit.breach.service import case_json

    wf = _wf(data_dir)
    cases = wf.repo.list(state=state, open_only=open_only)
    _audit_read(data_dir, "case_list", f"state={state or '*'} open={open_only}")
    if fmt == "json":
        for c in cases:
            sys.stdout.write(orjson.dumps(case_json(wf, c)).decode() + "\n")
        return
    t = Table()
    for col in ("id", "state", "title", "next deadline"):
        t.add_column(col, overflow="fold")
    for c in cases:
        open_ = sorted((s for s in wf.clocks(c) if s.is_open and s.due), key=lambda s: s.due)  # type: ignore[arg-type,return-value]
        nxt = f"{open_[0].rule.label}: {open_[0].to_json(wf.config.tz)['due']}" if open_ else "-"
        t.add_row(c.id, c.state.value, escape(c.details.title or ""), escape(nxt))
    out.print(t)


@breach_app.command()
def triage(case_id: CaseId, by: By = None, reason: Reason = None, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Start triage (or reopen a case dismissed as not a breach, with a reason)."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.start_triage, case_id, _by(by), reason), fmt)


@breach_app.command()
def aware(
    case_id: CaseId,
    at: Annotated[str, typer.Option(help="When the organisation became reasonably certain personal data were "
                                    "compromised (ISO 8601; 'now').")],
    reason: Annotated[str, typer.Option(help="What made it certain.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask about a time before the first evidence "
                                      "or more than a year away.")] = False,
    delay_reasons: Annotated[str | None, typer.Option(help="Reasons for the delay, when this makes a deadline "
                                                      "late (GDPR Art. 33(1)).")] = None,
    by: By = None,
    fmt: Fmt = "text",
    data_dir: DataDir = None,
) -> None:
    """Set the awareness time: every legal clock runs from it. Confirms the breach (or corrects the time)."""
    from access_audit.breach.clocks import local_iso

    wf = _wf(data_dir)
    t = _time(at, wf)
    assert t is not None
    doubt = wf.awareness_doubts(_run(wf.get, case_id), t)
    if doubt and not yes and not typer.confirm(f"the awareness time {local_iso(t, wf.config.tz)} is "
                                               f"{' and '.join(doubt)}: is it right?", default=False, err=True):
        err.print("[red]refused:[/] awareness not set (check the time, or confirm with --yes)")
        raise typer.Exit(2)
    _emit(wf, _run(wf.set_awareness, case_id, _by(by), t, reason, delay_reasons=delay_reasons), fmt)


@breach_app.command()
def dismiss(case_id: CaseId, reason: Annotated[str, typer.Option(help="Why it is not a personal-data breach.")],
            by: By = None, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Conclude it is not a personal-data breach (it stays in the register)."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.dismiss, case_id, _by(by), reason), fmt)


@breach_app.command()
def edit(case_id: CaseId, sets: Sets = None, by: By = None, reason: Reason = None, fmt: Fmt = "text",
         data_dir: DataDir = None) -> None:
    """Change the contents: --set summary=... --set subjects_max=2000 --set contact.email=... """
    wf = _wf(data_dir)
    changes = _parse_sets(sets)
    for k in ("occurred_from", "occurred_to", "detected_at"):
        if changes.get(k):
            changes[k] = _time(changes[k], wf)
    _emit(wf, _run(wf.edit, case_id, _by(by), changes, reason), fmt)


@breach_app.command()
def milestone(case_id: CaseId, name: Annotated[str, typer.Argument(help="e.g. nis2_early_warning_sent, "
                                                                  "dora_classified_major, nis2_not_significant")],
              at: Annotated[str | None, typer.Option(help="When (default now).")] = None, by: By = None,
              reason: Reason = None,
              delay_reasons: Annotated[str | None, typer.Option(help="Reasons for the delay, when this meets a "
                                                                "deadline late.")] = None,
              fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Record a milestone that starts, meets or waives a clock (not the authority's notification:
    that is 'breach submit'; not telling the data subjects: that is 'breach subjects')."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.record_milestone, case_id, _by(by), name, _time(at, wf), reason, delay_reasons=delay_reasons),
          fmt)


@breach_app.command("dora-report")
def dora_report(case_id: CaseId, at: Annotated[str | None, typer.Option(help="When it was sent (default now).")] = None,
                reference: Annotated[str | None, typer.Option(help="The authority's reference.")] = None,
                note: Annotated[str | None, typer.Option(help="What changed.")] = None,
                by: By = None, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Record the DORA intermediate report, or an update of it (each kept, DORA Art. 19(4)(b))."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.dora_report, case_id, _by(by), at=_time(at, wf), reference=reference, note=note), fmt)


@breach_app.command()
def reconsider(case_id: CaseId, reason: Annotated[str, typer.Option(help="The new facts.")], by: By = None,
               fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Re-open the assessment on new facts (after 'no notification needed' or a draft)."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.reconsider, case_id, _by(by), reason), fmt)


@breach_app.command()
def assess(
    case_id: CaseId,
    identifiability: Annotated[str | None, typer.Option(help="negligible | limited | significant | maximum")] = None,
    consequences: Annotated[str | None, typer.Option(help="minimal | significant | serious | very_serious")] = None,
    malicious: Annotated[bool | None, typer.Option("--malicious/--not-malicious")] = None,
    unknown_recipients: Annotated[bool | None, typer.Option("--unknown-recipients/--known-recipients")] = None,
    trusted_recipient: Annotated[bool | None, typer.Option("--trusted-recipient/--untrusted-recipient",
                                                           help="A known, trusted recipient confirmed deletion "
                                                           "and no further use.")] = None,
    vulnerable: Annotated[bool | None, typer.Option("--vulnerable/--not-vulnerable",
                                                    help="Children or other vulnerable people.")] = None,
    controller_context: Annotated[str | None, typer.Option(help="e.g. 'health insurer'.")] = None,
    unintelligible: Annotated[bool | None, typer.Option("--unintelligible/--intelligible",
                                                        help="Encrypted (state of the art, key safe).")] = None,
    overrule: Annotated[str | None, typer.Option(help="unlikely | risk | high: overrule the proposal.")] = None,
    reason: Reason = None,
    withdraw_overrule: Annotated[str | None, typer.Option(help="Withdraw an earlier overrule, with the reason.")]
    = None,
    by: By = None,
    fmt: Fmt = "text",
    data_dir: DataDir = None,
) -> None:
    """Fill the EDPB risk worksheet: proposes a level and its consequence; --overrule needs --reason."""
    from access_audit.breach.model import RiskLevel

    wf = _wf(data_dir)
    answers = {"identifiability": identifiability, "consequences": consequences, "malicious": malicious,
               "unknown_recipients": unknown_recipients, "trusted_recipient": trusted_recipient,
               "vulnerable_individuals": vulnerable,
               "controller_context": controller_context, "unintelligible": unintelligible}
    level = None
    if overrule:
        try:
            level = RiskLevel(overrule)
        except ValueError:
            raise typer.BadParameter("--overrule must be unlikely, risk or high") from None
    case = _run(wf.assess, case_id, _by(by), answers, overrule_to=level, overrule_reason=reason,
                withdraw_overrule=withdraw_overrule)
    if fmt == "json":
        _emit(wf, case, fmt)
        return
    r = case.risk
    for line in r.reasoning:
        out.print(f"  {escape(line)}")
    out.print(f"proposed: [bold]{r.proposed.value}[/] -> {escape(r.proposed.consequence)}")
    if r.overruled_to:
        out.print(f"overruled to [bold]{r.overruled_to.value}[/]: {escape(r.overrule_reason or '')}")


@breach_app.command("no-notification")
def no_notification(case_id: CaseId, reason: Annotated[str, typer.Option(help="The reasoning (Art. 33(5)).")],
                    by: By = None, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Record that no notification is needed (only when the risk is 'unlikely')."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.skip_notification, case_id, _by(by), reason), fmt)


@breach_app.command()
def draft(
    case_id: CaseId,
    kind: Annotated[str, typer.Option(help="authority | data_subjects | nis2 | processor")] = "authority",
    lang: Annotated[str, typer.Option(help="nl | en")] = "nl",
    fmt: Annotated[str, typer.Option("--format", "-f", help="md | html | pdf")] = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file (PDF needs it).")] = None,
    phased: Annotated[bool, typer.Option(help="Authority: mark missing elements 'to follow' (Art. 33(4)).")] = False,
    preview: Annotated[bool, typer.Option(help="Render only; do not record the draft on the case.")] = False,
    by: By = None,
    data_dir: DataDir = None,
) -> None:
    """Draft the notification to the authority, the letter to data subjects or the NIS2 early warning."""
    from access_audit.breach import drafts

    wf = _wf(data_dir)
    if fmt not in drafts.FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(drafts.FORMATS)}")
    if preview:
        case = _run(wf.get, case_id)
        res = _run(drafts.render, case, kind, lang, tz=wf.config.tz, now=wf.clock.now(), phased=phased)
    else:
        case, res = _run(wf.draft, case_id, _by(by), kind, lang, phased=phased)
    if res.markdown is not None:  # the draft shows the case's facts: its reading is in the self-audit (issue 12)
        _audit_read(data_dir, "draft_read", f"{case_id} {kind} ({lang}, {fmt}{', preview' if preview else ''})")
    if res.markdown is None:
        err.print(escape(res.missing_text()))
        err.print("Or draft it as a phased notification (--phased, authority only: Art. 33(4)).")
        raise typer.Exit(1)
    if fmt == "pdf":
        if out_file is None:
            raise typer.BadParameter("PDF needs --out FILE")
        out_file.write_bytes(_run(drafts.to_pdf, res.html))
    else:
        text = res.markdown if fmt == "md" else res.html
        if out_file:
            out_file.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    if out_file:
        err.print(f"{kind} draft ({lang}, {fmt}) -> {escape(str(out_file))}")
    if res.phased:
        err.print(f"phased: {escape(', '.join(res.phased))} to follow in a supplement (Art. 33(4))")


@breach_app.command()
def approve(
    case_id: CaseId,
    delay_reasons: Annotated[str | None, typer.Option(help="Required after the deadline (Art. 33(1)).")] = None,
    phased_reason: Annotated[str | None, typer.Option(help="Required for a phased draft (Art. 33(4)).")] = None,
    by: By = None,
    fmt: Fmt = "text",
    data_dir: DataDir = None,
) -> None:
    """Approve the latest draft of the notification to the authority."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.approve, case_id, _by(by), delay_reasons=delay_reasons, phased_reason=phased_reason), fmt)


@breach_app.command()
def submit(
    case_id: CaseId,
    channel: Annotated[str, typer.Option(help="How it was sent, e.g. 'AP meldloket (online form)'.")],
    reference: Annotated[str, typer.Option(help="The authority's reference.")],
    at: Annotated[str | None, typer.Option(help="When it was sent (default now).")] = None,
    milestone_name: Annotated[str, typer.Option("--milestone", help="Clock it meets: authority_notified "
                                                "(GDPR) or ico_notified (UK GDPR).")] = "authority_notified",
    authority: Annotated[str | None, typer.Option(help="The (lead) authority notified (default: the case's).")]
    = None,
    by: By = None,
    fmt: Fmt = "text",
    data_dir: DataDir = None,
) -> None:
    """Record the submission of the approved notification."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.submit, case_id, _by(by), channel=channel, reference=reference, at=_time(at, wf),
                   milestone=milestone_name, authority=authority), fmt)


@breach_app.command()
def notify(
    case_id: CaseId,
    authority: Annotated[str, typer.Option(help="The further authority, e.g. 'ICO' or 'CNIL'.")],
    channel: Annotated[str, typer.Option(help="How it was sent.")],
    reference: Annotated[str, typer.Option(help="That authority's reference.")],
    lang: Annotated[str, typer.Option(help="Language of the text sent (its authority draft).")] = "en",
    at: Annotated[str | None, typer.Option(help="When it was sent (default now).")] = None,
    milestone_name: Annotated[str | None, typer.Option("--milestone", help="Authority clock it meets, e.g. "
                                                       "ico_notified.")] = None,
    delay_reasons: Annotated[str | None, typer.Option(help="Reasons, when it meets its clock late.")] = None,
    by: By = None, fmt: Fmt = "text", data_dir: DataDir = None,
) -> None:
    """Record a notification to a further supervisory authority (EDPB Guidelines 9/2022 §73)."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.notify_authority, case_id, _by(by), authority=authority, channel=channel, reference=reference,
                   lang=lang, at=_time(at, wf), milestone=milestone_name, delay_reasons=delay_reasons), fmt)


@breach_app.command()
def amend(case_id: CaseId, number: Annotated[int, typer.Argument(help="Notification number (1 = the first).")],
          text: Annotated[str, typer.Option(help="What is corrected.")],
          reference: Annotated[str | None, typer.Option(help="Reference of the amendment.")] = None,
          by: By = None, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Record an amendment of a notification made ("aanpassen")."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.amend_notification, case_id, _by(by), number, text, reference), fmt)


@breach_app.command()
def withdraw(case_id: CaseId, number: Annotated[int, typer.Argument(help="Notification number (1 = the first).")],
             reason: Annotated[str, typer.Option(help="Why it is withdrawn.")],
             by: By = None, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Record the withdrawal of a notification ("intrekken"); it stays in the register."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.withdraw_notification, case_id, _by(by), number, reason), fmt)


@breach_app.command()
def supplement(
    case_id: CaseId,
    text: Annotated[str, typer.Option(help="What the supplementary notification says.")],
    sets: Sets = None,
    reference: Annotated[str | None, typer.Option(help="Reference of this supplement.")] = None,
    supplies: Annotated[list[str] | None, typer.Option("--supplies", help="Outstanding element the text supplies "
                                                       "(repeatable), e.g. cause.")] = None,
    by: By = None,
    fmt: Fmt = "text",
    data_dir: DataDir = None,
) -> None:
    """Record a supplementary notification (Art. 33(4)); --set updates the figures it corrects."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.supplement, case_id, _by(by), text, _parse_sets(sets), reference, supplies=supplies), fmt)


@breach_app.command()
def subjects(
    case_id: CaseId,
    decision: Annotated[str, typer.Option(help="communicate | not_required | exception_34_3_a | exception_34_3_b "
                                          "| exception_34_3_c")],
    reasoning: Annotated[str, typer.Option(help="Why.")],
    communicated_at: Annotated[str | None, typer.Option(help="When they were told.")] = None,
    channel: Annotated[str | None, typer.Option(help="How they were told (letter, e-mail...).")] = None,
    by: By = None,
    fmt: Fmt = "text",
    data_dir: DataDir = None,
) -> None:
    """Decide on telling the data subjects (Art. 34), or record the exception of Art. 34(3)."""
    from access_audit.breach.model import SubjectsDecisionKind

    wf = _wf(data_dir)
    try:
        kind = SubjectsDecisionKind(decision)
    except ValueError:
        raise typer.BadParameter(f"unknown decision {decision!r}") from None
    _emit(wf, _run(wf.decide_subjects, case_id, _by(by), kind, reasoning,
                   communicated_at=_time(communicated_at, wf), channel=channel), fmt)


@breach_app.command("subjects-told")
def subjects_told(case_id: CaseId, at: Annotated[str, typer.Option(help="When they were told.")],
                  channel: Annotated[str, typer.Option(help="How (letter, e-mail, public notice...).")],
                  by: By = None, fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Record when and how the data subjects were told, after deciding to communicate (Art. 34(1))."""
    wf = _wf(data_dir)
    t = _time(at, wf)
    assert t is not None
    _emit(wf, _run(wf.subjects_told, case_id, _by(by), t, channel), fmt)


@breach_app.command()
def close(case_id: CaseId, reason: Annotated[str, typer.Option(help="Why it can be closed.")], by: By = None,
          outstanding_reason: Annotated[str | None, typer.Option(help="Why outstanding elements of a phased "
                                                                 "notification will not follow.")] = None,
          fmt: Fmt = "text", data_dir: DataDir = None) -> None:
    """Close the case (refused while a clock is open or an Art. 33(4) element is outstanding)."""
    wf = _wf(data_dir)
    _emit(wf, _run(wf.close, case_id, _by(by), reason, outstanding_reason=outstanding_reason), fmt)


@breach_app.command()
def register(fmt: Annotated[str, typer.Option("--format", "-f", help="csv | json")] = "csv",
             out_file: Annotated[Path | None, typer.Option("--out")] = None, data_dir: DataDir = None) -> None:
    """The breach register (Art. 33(5)): every case, notified or not, as CSV or JSON."""
    from access_audit.breach.register import register_csv, register_rows

    wf = _wf(data_dir)
    cases = wf.repo.list()
    _audit_read(data_dir, "register_export", f"breach register ({fmt})")
    keep = int(getattr(_settings(data_dir), "case_retention_days", 1825))
    if fmt == "csv":
        text = register_csv(cases, wf.config.tz, keep)
    elif fmt == "json":
        text = orjson.dumps(register_rows(cases, wf.config.tz, keep), option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        raise typer.BadParameter("--format must be csv or json")
    if out_file:
        out_file.write_text(text, encoding="utf-8")
        err.print(f"{len(cases)} case(s) -> {escape(str(out_file))}")
    else:
        sys.stdout.write(text)


@breach_app.command()
def remind(
    watch: Annotated[bool, typer.Option(help="Keep running: APScheduler sends each reminder at its moment.")] = False,
    max_seconds: Annotated[float | None, typer.Option(help="With --watch: stop after this long.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Send the reminders that are due (once each, across restarts); --watch keeps a scheduler running."""
    from access_audit.breach.service import reminder_dispatcher, reminder_scheduler

    wf = _wf(data_dir)
    if not watch:
        n = reminder_dispatcher(wf).run_due()
        err.print(f"{n} reminder(s) sent")
        return
    sched = reminder_scheduler(wf)
    sched.start()
    err.print(f"watching {len(sched.job_ids())} reminder(s); Ctrl-C to stop")
    started = time.monotonic()
    try:
        while max_seconds is None or time.monotonic() - started < max_seconds:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sched.shutdown()

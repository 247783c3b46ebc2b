"""``access-audit serve`` and ``access-audit tokens ...``: run the API and the console, manage tokens.

    access-audit serve --host 0.0.0.0 --port 8000
    access-audit tokens create --role dpo --name "Fenna de Vries" [--ttl-days 30]   # prints the token once
    access-audit tokens list
    access-audit tokens revoke 3f2c9a01b7de

FastAPI and uvicorn are imported only when a command runs.
"""


import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

tokens_app = typer.Typer(help="API tokens for the HTTP API and the console: create, list, revoke.",
                         no_args_is_help=True)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (env ACCESS_AUDIT_DATA_DIR).",
                                              show_default=False)]


def _settings(data_dir: Path | None) -> Any:
    from access_audit.settings import Settings

    return Settings(data_dir=data_dir) if data_dir else Settings()


def _tokens(settings: Any) -> Any:
    from access_audit.api.auth import TokenStore

    return TokenStore(Path(settings.data_dir) / "auth.db")


def _audit_token(settings: Any, action: str, query: str, **extra: Any) -> None:
    from access_audit.api.audit import audit_cli
    from access_audit.store.opening import open_store

    store = open_store(settings)
    try:
        audit_cli(store, action, query, **extra)
    finally:
        store.close()


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default ACCESS_AUDIT_API_HOST, "
                                             "127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535,
                                             help="Port (default ACCESS_AUDIT_API_PORT, 8000).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json) and the DPO console (/console) on the configured store,
    with the Slack interactive endpoint (/slack/interactions) when a signing secret is configured."""
    import logging
    import os

    import uvicorn

    from access_audit.api.edges import AccessLogFilter

    os.umask(0o077)  # every file this process creates (stores, keys, indexes): the service user only
    settings = _settings(data_dir)
    app = build_app(settings)
    h, p = host or settings.api_host, port or settings.api_port
    err.print(f"access-audit API and console on http://{escape(h)}:{p}/console ({settings.store} store); "
              "sign in with a token from 'access-audit tokens create --role dpo --name NAME'"
              + ("; Slack interactions on /slack/interactions" if app.state.interactions else ""))
    # proxy_headers=False: uvicorn would trust X-Forwarded-For from loopback; the app believes only
    # the proxies in api_trusted_proxies (access_audit.api.edges.client_ip)
    config = uvicorn.Config(app, host=h, port=p, log_level="info", server_header=False, proxy_headers=False,
                            forwarded_allow_ips="")
    logging.getLogger("uvicorn.access").addFilter(AccessLogFilter())  # no queries, no addresses
    uvicorn.Server(config).run()


def build_app(settings: Any) -> Any:
    """The app ``serve`` runs: the API, the console, and the Slack endpoint when configured."""
    from access_audit.api.app import create_app, interaction_handler

    app = create_app(settings)
    app.state.interactions = interaction_handler(settings, app.state.store, app.state.workflow)
    return app


@tokens_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="engineer | security_analyst | dpo | auditor | admin")],
    name: Annotated[str | None, typer.Option("--name", help="Whose token (shown in audit trails).")] = None,
    ttl_days: Annotated[float | None, typer.Option("--ttl-days", help="Days until it expires "
                                                   "(default ACCESS_AUDIT_API_TOKEN_TTL_DAYS, 90).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a token for a named holder and print it once (only its hash is stored).

    A token of a role that approves notifications (dpo) is minted here only as the bootstrap step:
    while no such token is active, or with ``api_dpo_bootstrap: true`` in the configuration. After
    that a DPO mints them (POST /api/dpo/tokens): the admin role cannot sign off notifications."""
    from access_audit.api.audit import os_user
    from access_audit.api.auth import PERMISSIONS, Perm, parse_role

    settings = _settings(data_dir)
    r = parse_role(role)
    if not name or not name.strip():
        err.print("[red]error:[/] --name is required: a token is issued to a named holder")
        raise typer.Exit(2)
    store = _tokens(settings)
    try:
        if Perm.cases_approve in PERMISSIONS[r] and store.active_approvers() and not settings.api_dpo_bootstrap:
            err.print(f"[red]error:[/] a {r.value} token approves notifications and one is active already: "
                      "a DPO mints the next one (POST /api/dpo/tokens), or set api_dpo_bootstrap: true")
            raise typer.Exit(2)
        token, info = store.create(r, name, ttl_days or settings.api_token_ttl_days, issued_by=f"cli:{os_user()}")
        try:
            _audit_token(settings, "token_create", f"token {info.id} for {info.name} ({r.value})",
                         target_token=info.id, target_role=r.value, holder=info.name)
        except Exception as e:
            store.revoke(info.id, by="cli: the self-audit could not be written")
            err.print(f"[red]error:[/] the self-audit cannot be written ({escape(str(e))}): token not issued")
            raise typer.Exit(1) from None
    finally:
        store.close()
    sys.stdout.write(token + "\n")
    err.print(f"token {info.id} for {escape(info.name)} ({info.role.value}), expires {info.expires:%Y-%m-%d %H:%M} "
              "UTC. It is shown only now: keep it in a password manager.")


@tokens_app.command("list")
def list_tokens(fmt: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
                data_dir: DataDir = None) -> None:
    """Every token: id, name, role, created, expires, state (never the token itself)."""
    from datetime import UTC, datetime

    store = _tokens(_settings(data_dir))
    try:
        rows = [t.to_json(datetime.now(UTC)) for t in store.list()]
    finally:
        store.close()
    if fmt == "json":
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        return
    t = Table()
    for c in ("id", "name", "role", "created", "expires", "state"):
        t.add_column(c)
    for row in rows:
        t.add_row(row["id"], escape(row["name"]), row["role"], row["created"][:16], row["expires"][:16], row["state"])
    out.print(t)


@tokens_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="The token's id (see 'tokens list').")],
           data_dir: DataDir = None) -> None:
    """Revoke a token now; its console sessions end too."""
    from access_audit.api.audit import os_user

    settings = _settings(data_dir)
    store = _tokens(settings)
    try:
        ok = store.revoke(token_id, by=f"cli:{os_user()}")
    finally:
        store.close()
    if ok:
        _audit_token(settings, "token_revoke", f"token {token_id}", target_token=token_id)
    if not ok:
        err.print(f"[red]error:[/] no token {escape(token_id)!r}")
        raise typer.Exit(2)
    err.print(f"token {escape(token_id)} revoked")

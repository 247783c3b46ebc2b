"""1Password Events API: item usage (``onepassword.itemusage``, ``/api/v1/itemusages``) and
sign-in attempts (``onepassword.signinattempt``, ``/api/v1/signinattempts``), one record per
JSON object. A Panther test row ``{"event": {...}}`` is read as its ``event``.

Common: ``@timestamp`` = ``timestamp`` (RFC 3339; Panther writes ``2022-02-23 22:11:50.591``,
UTC), else ``p_event_time``; ``source.ip`` = ``client.ip_address``; ``source.geo`` from
``location`` (``country`` is an ISO code, ``city``, ``latitude``/``longitude``), else the
sign-in's ``country``; ``user_agent.original`` = ``client.app_name`` and ``app_version``; labels
``onepassword_uuid``, ``onepassword_client_app``, ``onepassword_os`` (``client.os_name``).

``onepassword.itemusage`` (after Elastic's 1password integration): ``event.action`` =
``action`` (fill, reveal, secure-copy...; absent in the API's older records and in every
fixture: then ``item-usage``); ``event.category`` file, ``type`` access, outcome success;
``user`` = ``user`` (``uuid``, ``name``, ``email``); ``resource`` = the item (type vault_item,
id = ``item_uuid``, owner = ``vault_uuid``); labels ``onepassword_vault_uuid``,
``onepassword_used_version``.

``onepassword.signinattempt``: ``event.action`` = ``type`` (credentials_ok, mfa_ok,
password_secret_bad, mfa_missing...); ``event.category`` authentication, ``type`` start;
``event.outcome`` success for ``category`` success / firewall_reported_success, else failure, and
then ``event.reason`` = ``category`` (credentials_failed, mfa_failed, firewall_failed...);
``user`` = ``target_user``; ``resource`` = the 1Password account (type application, name
1Password); ``authentication.mfa`` true for ``type`` mfa_ok; labels ``onepassword_session_uuid``,
``onepassword_category``.

**Never seen in a real record**: every field (the datasets hold only Panther's hand-written
fixtures); ``action`` on item usage and the sign-in ``type`` / ``category`` values other than
credentials_ok, password_secret_bad, success and credentials_failed come from 1Password's
documentation.
"""

from __future__ import annotations

from typing import Any

from access_audit.core.events import (
    AccessEvent,
    Authentication,
    EventInfo,
    Geo,
    Outcome,
    Resource,
    User,
    UserAgent,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import add_geo, geo_point, identified, inner, open_record
from access_audit.parse.ecs import Fields, endpoint

_TIME_KEYS = ("timestamp", "p_event_time")
_SUCCESS = frozenset({"success", "firewall_reported_success"})


class _OnePasswordParser(JsonParser):
    def common(self, f: Fields, ev: AccessEvent) -> None:
        client = f.obj_at("client")
        if client is not None:
            if (ip := client.text("ip_address")) is not None:
                ev.source = endpoint(ip)
            app, version = client.text("app_name"), client.text("app_version", numbers=True)
            if app:
                ev.user_agent = UserAgent(original=f"{app} {version}" if version else app)
                ev.labels["onepassword_client_app"] = app
            if (os_name := client.text("os_name")) is not None:
                ev.labels["onepassword_os"] = os_name
        geo = None
        if (loc := f.obj_at("location")) is not None:
            geo = Geo(country_iso_code=loc.text("country"), city_name=loc.text("city"),
                      location=geo_point(loc, "latitude", "longitude"))
        elif (country := f.text("country")) is not None:
            geo = Geo(country_iso_code=country)
        add_geo(ev, geo)
        if (uuid := f.label("uuid")) is not None:
            ev.labels["onepassword_uuid"] = uuid


def _user(f: Fields, key: str) -> User | None:
    u = f.obj_at(key)
    if u is None:
        return None
    user = User(name=u.text("email") or u.text("name"), id=u.text("uuid"), email=u.text("email"),
                full_name=u.text("name"))
    return identified(user)


@register
class OnePasswordItemUsageParser(_OnePasswordParser):
    """1Password item usage events (a vault item was used: filled, revealed, copied)."""

    name = "onepassword.itemusage"
    aliases = ("1password.item_usages",)
    description = "1Password item usage events"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        return "item_uuid" in rec and "vault_uuid" in rec and isinstance(rec.get("user"), dict)

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, item, ts = open_record(obj, self.name, "item_uuid", _TIME_KEYS)
        vault = f.text("vault_uuid")
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["file"], type=["access"], action=f.text("action") or "item-usage",
                            outcome=Outcome.success, provider="1password"),
            user=_user(f, "user"),
            resource=Resource(type="vault_item", id=item, owner=vault),
            labels={k: v for k, v in (("onepassword_vault_uuid", vault),
                                      ("onepassword_used_version", f.label("used_version"))) if v},
        )
        self.common(f, ev)
        return [ev]


@register
class OnePasswordSignInParser(_OnePasswordParser):
    """1Password sign-in attempts."""

    name = "onepassword.signinattempt"
    aliases = ("1password.signin_attempts",)
    description = "1Password sign-in attempts"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        return "session_uuid" in rec and isinstance(rec.get("target_user"), dict) and "category" in rec

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, category, ts = open_record(obj, self.name, "category", _TIME_KEYS)
        kind = f.text("type")
        ok = category.lower() in _SUCCESS
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["authentication"], type=["start"],
                            action=kind or "sign-in-attempt", outcome=Outcome.success if ok else Outcome.failure,
                            reason=None if ok else category, provider="1password"),
            user=_user(f, "target_user"),
            resource=Resource(type="application", name="1Password"),
            labels={k: v for k, v in (("onepassword_session_uuid", f.label("session_uuid")),
                                      ("onepassword_category", category)) if v},
        )
        if kind == "mfa_ok":
            ev.authentication = Authentication(mfa=True)
        self.common(f, ev)
        return [ev]

"""Cisco Duo authentication log (``duo.authentication``) and administrator log
(``duo.administrator``), as the Admin API's ``/admin/v2/logs/authentication`` and
``/admin/v1/logs/administrator`` return them, one record per JSON object. A Panther test row
``{"event": {...}}`` is read as its ``event``.

``duo.authentication`` (Elastic's ``cisco_duo.auth``):

* ``@timestamp`` = ``isotimestamp``, else ``timestamp`` (epoch seconds), else Panther's
  ``p_event_time``.
* ``event.action`` = ``event_type`` (authentication, enrollment); ``event.category``
  authentication, ``type`` info; ``event.outcome`` from ``result``: success -> success, denied /
  failure / fraud / error -> failure; ``event.reason`` = ``reason`` (user_approved, bypass_user,
  anomalous_push...).
* ``user.name`` = ``user.name``, ``user.id`` = ``user.key``, ``user.email`` = ``email``.
* ``source.ip`` = ``access_device.ip`` (where the login came from), ``source.geo`` from
  ``access_device.location`` (city, country); ``host.name`` = ``access_device.hostname``.
* ``resource`` = the ``application`` (type application, id = ``key``, name = ``name``).
* ``authentication.method`` = ``factor``; ``authentication.mfa`` true for a second factor
  (push, phone call, passcodes, SMS, tokens, WebAuthn), false for ``bypass_code`` /
  ``remembered_device`` / ``trusted_network``, else unknown.
* labels ``duo_result``, ``duo_factor``, ``duo_txid``, ``duo_auth_device_ip``,
  ``duo_auth_device_name``, ``duo_os`` (``access_device.os``), ``duo_alias``.

``duo.administrator``:

* ``@timestamp`` = ``isotimestamp``, else ``timestamp``; ``event.action`` = ``action``
  (required); ``user.name`` = ``username`` (the administrator).
* ``event.category``: ``admin_login`` / ``admin_2fa_error`` / ``admin_lockout`` -> authentication
  (the lockout and 2FA error are failures); user, admin, bypass and group actions -> iam; others
  (integrations, policies, settings) -> configuration; ``event.type`` from the verb.
* ``resource`` = ``object`` (type from the action's first word: user, bypass, integration,
  policy...); ``message`` = ``description`` (a JSON string in the API): when it decodes, its
  ``ip_address`` is ``source.ip`` and its ``factor`` ``authentication.method``. A description
  that is not JSON stays the message (Panther holds one).

Fields never seen in a record with a time: the Panther fixtures of the authentication log have
no time at all (they are dead letters ``missing timestamp``, counted in the tests). None of these
fields was seen in a real Duo record: there is no real sample in the datasets; ``access_device``
``location`` / ``hostname``, ``email``, ``user.key``, ``txid``, ``alias`` come from Duo's
documentation.
"""

from __future__ import annotations

from typing import Any

import orjson

from access_audit.core.events import (
    AccessEvent,
    Authentication,
    EventInfo,
    Geo,
    Host,
    Outcome,
    Resource,
    User,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import add_geo, email_or_none, identified, inner, open_record, verb_type
from access_audit.parse.ecs import Fields, endpoint, has_keys

_TIME_KEYS = ("isotimestamp", "timestamp", "p_event_time")
_RESULTS = {"success": Outcome.success, "denied": Outcome.failure, "failure": Outcome.failure,
            "fraud": Outcome.failure, "error": Outcome.failure}
_SECOND_FACTORS = frozenset({"duo_push", "phone_call", "passcode", "sms_passcode", "duo_mobile_passcode",
                             "hardware_token", "yubikey_code", "u2f_token", "webauthn_security_key",
                             "webauthn_credential", "verified_duo_push", "sms_refresh", "push", "sms"})
_NOT_SECOND = frozenset({"bypass_code", "remembered_device", "trusted_network", "not_available"})
_AUTH_ACTIONS = {"admin_login": Outcome.success, "admin_2fa_error": Outcome.failure,
                 "admin_lockout": Outcome.failure, "admin_login_error": Outcome.failure}
_IAM_PREFIXES = ("user_", "admin_", "bypass_", "group_", "phone_", "token_", "webauthn", "u2f", "activation_")


@register
class DuoAuthenticationParser(JsonParser):
    """Cisco Duo authentication log records."""

    name = "duo.authentication"
    aliases = ("cisco_duo.auth", "duo.auth")
    description = "Cisco Duo authentication log"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        return (rec.get("event_type") in ("authentication", "enrollment") and "factor" in rec
                and isinstance(rec.get("access_device", rec.get("application")), dict))

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, action, ts = open_record(obj, self.name, "event_type", _TIME_KEYS)
        result = f.text("result")
        factor = f.text("factor")
        user = User(name=f.text("user.name"), id=f.text("user.key"), email=f.text("email"))
        if user.email is None:
            user.email = email_or_none(user.name)
        labels = f.labels((("result", "duo_result"), ("factor", "duo_factor"), ("txid", "duo_txid"),
                           ("auth_device.ip", "duo_auth_device_ip"), ("auth_device.name", "duo_auth_device_name"),
                           ("access_device.os", "duo_os"), ("alias", "duo_alias")))
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=["authentication"], type=["info"], action=action,
                            outcome=_RESULTS.get((result or "").lower(), Outcome.unknown),
                            reason=f.text("reason"), provider="duo"),
            user=identified(user),
            labels=labels,
        )
        if (dev := f.obj_at("access_device")) is not None:
            if (ip := dev.text("ip")) is not None:
                ev.source = endpoint(ip)
            if (loc := dev.obj_at("location")) is not None:
                add_geo(ev, Geo(city_name=loc.text("city"), country_name=loc.text("country")))
            if (hn := dev.text("hostname")) is not None:
                ev.host = Host(name=hn)
        if (app := f.obj_at("application")) is not None and (app.has("key") or app.has("name")):
            ev.resource = Resource(type="application", id=app.text("key"), name=app.text("name"))
        if factor:
            low = factor.lower()
            mfa = True if low in _SECOND_FACTORS else (False if low in _NOT_SECOND else None)
            ev.authentication = Authentication(method=low, mfa=mfa)
        return [ev]


@register
class DuoAdministratorParser(JsonParser):
    """Cisco Duo administrator log records (admin logins and changes made in the Admin Panel)."""

    name = "duo.administrator"
    aliases = ("cisco_duo.admin", "duo.admin")
    description = "Cisco Duo administrator log"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        rec = inner(obj)
        return has_keys(rec, "action", "isotimestamp") and "username" in rec and "event_type" not in rec

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f, action, ts = open_record(obj, self.name, "action", _TIME_KEYS)
        verb = action.rsplit("_", 1)[-1]
        if action in _AUTH_ACTIONS:
            category, etype, outcome = ["authentication"], "start", _AUTH_ACTIONS[action]
        else:
            category = ["iam"] if action.startswith(_IAM_PREFIXES) else ["configuration"]
            etype, outcome = verb_type(verb), Outcome.success
        name = f.text("username")
        desc_text, desc = _description(f)
        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=category, type=[etype], action=action, outcome=outcome,
                            provider="duo"),
            user=User(name=name, email=email_or_none(name)) if name else None,
            message=desc_text,
        )
        if (obj_name := f.text("object")) is not None:
            ev.resource = Resource(type=action.split("_", 1)[0], name=obj_name, id=obj_name)
        if desc is not None:
            d = Fields(desc, self.name, "description.")
            if (ip := d.text("ip_address")) is not None:
                ev.source = endpoint(ip)
            if (factor := d.text("factor")) is not None:
                ev.authentication = Authentication(method=factor.lower())
        return [ev]


def _description(f: Fields) -> tuple[str | None, dict[str, Any] | None]:
    """The description as text, and decoded when it is a JSON object (it may also be an object)."""
    raw = f.raw("description")
    if isinstance(raw, dict):
        return orjson.dumps(raw).decode(), raw
    text = f.text("description")
    if text and text.lstrip().startswith("{"):
        try:
            dec = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text, None
        return text, dec if isinstance(dec, dict) else None
    return text, None

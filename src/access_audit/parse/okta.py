"""Okta System Log events (``/api/v1/logs``, or as exported by a SIEM).

Mapping (ECS names on the left):

* ``@timestamp`` = ``published`` (ISO 8601; exports also write ``2022-03-22 14:21:53.225``, no
  zone, which is UTC), else Panther's ``p_event_time``.
* ``event.action`` = ``eventType`` (required); ``message`` = ``displayMessage``.
* ``event.outcome`` from ``outcome.result``: SUCCESS/ALLOW -> success, FAILURE/DENY -> failure,
  others (CHALLENGE, SKIPPED, UNKNOWN) -> unknown; ``event.reason`` = ``outcome.reason``.
* ``event.category`` by event-type prefix (see ``_CATEGORIES``): sessions and authentication ->
  ``authentication``, user/group/factor/token administration -> ``iam``, ``security.*`` ->
  ``intrusion_detection``, other ``system.*``/``application.*``/``policy.*`` -> ``configuration``.
* ``user``: ``actor.alternateId`` -> ``name`` (and ``email`` when it is one), ``actor.id`` ->
  ``id``, ``actor.displayName`` -> ``full_name``. ``user.target``: the first ``target`` of type
  ``User``. ``resource``: the application (AppInstance -> ``application``) if a target names one,
  else the first other target (Group -> ``group``, AuthenticatorEnrollment -> ``authenticator``,
  else the Okta type in snake case).
* ``source``: ``client.ipAddress``; ``source.geo`` from ``client.geographicalContext``
  (``country`` -> ``country_name``, ``city`` -> ``city_name``, ``geolocation`` -> ``location``).
  ``user_agent.original`` = ``client.userAgent.rawUserAgent``.
* ``authentication.method`` = ``authenticationContext.credentialType`` (lower case), else the MFA
  factor, else (on authentication events) the AuthenticatorEnrollment target's name, e.g.
  ``password``; ``authentication.mfa`` is true for ``user.authentication.auth_via_mfa`` and whenever
  ``debugContext.debugData.factor`` names a factor (also ``labels.mfa_factor``).
* ``labels``: ``okta_uuid``, ``okta_severity``, ``okta_transaction_id``, ``is_proxy``
  (``securityContext.isProxy``), ``threat_suspected`` (``debugContext.debugData.threatSuspected``).
"""

from __future__ import annotations

import re
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
    UserTarget,
)
from access_audit.core.records import RawRecord
from access_audit.parse.base import JsonParser, register
from access_audit.parse.cloudcommon import add_geo, geo_point, identified, inner, required, unwrap
from access_audit.parse.ecs import Fields, endpoint, has_keys

_SNIFF_COMPANIONS = ("published", "uuid", "outcome", "client", "displayMessage")
_OUTCOMES = {"SUCCESS": Outcome.success, "ALLOW": Outcome.success,
             "FAILURE": Outcome.failure, "DENY": Outcome.failure}

# First matching prefix wins.
_CATEGORIES: tuple[tuple[str, list[str]], ...] = (
    ("user.session.", ["authentication", "session"]),
    ("user.authentication.", ["authentication"]),
    ("policy.evaluate_sign_on", ["authentication"]),
    ("app.oauth2.", ["authentication"]),
    ("app.token.", ["authentication"]),
    ("app.generic.unauth_app_access_attempt", ["authentication"]),
    ("logout", ["authentication", "session"]),
    ("user.", ["iam"]),
    ("group.", ["iam"]),
    ("application.user_membership.", ["iam"]),
    ("system.api_token.", ["iam"]),
    ("system.mfa.", ["iam"]),
    ("security.", ["intrusion_detection"]),
)
_VERB_TYPES = {"start": "start", "end": "end", "create": "creation", "add": "creation", "grant": "change",
               "delete": "deletion", "remove": "deletion", "deactivate": "deletion", "revoke": "deletion",
               "reset_all": "deletion"}
_RESOURCE_TYPES = {"AppInstance": "application", "Group": "group", "AuthenticatorEnrollment": "authenticator",
                   "Policy": "policy", "PolicyRule": "policy_rule"}


@register
class OktaParser(JsonParser):
    """Okta System Log events, one per JSON object."""

    name = "okta.system"
    aliases = ("okta",)
    description = "Okta System Log events"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        obj = inner(obj)  # a Panther test row {"event": {...}} holds the vendor record
        # eventType + actor object, and one more System Log envelope field (exports drop some).
        return (has_keys(obj, "eventType") and isinstance(obj.get("actor"), dict)
                and any(has_keys(obj, k) for k in _SNIFF_COMPANIONS))

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        f = Fields(unwrap(obj), self.name)
        ts = f.time("published", "p_event_time")  # Okta reads the time first: no time is missing timestamp
        action = required(f, "eventType")

        outcome, reason = Outcome.unknown, None
        if (out := f.obj_at("outcome")) is not None:
            result = out.text("result")
            outcome = _OUTCOMES.get((result or "").upper(), Outcome.unknown)
            reason = out.text("reason")

        category = next((cats for prefix, cats in _CATEGORIES if action.startswith(prefix)), ["configuration"])
        verb = action.rsplit(".", 1)[-1]
        etype = _VERB_TYPES.get(verb, "info" if "authentication" in category else "change")

        labels: dict[str, str] = {}
        for key, label in (("uuid", "okta_uuid"), ("severity", "okta_severity"),
                           ("transaction.id", "okta_transaction_id"), ("securityContext.isProxy", "is_proxy"),
                           ("debugContext.debugData.threatSuspected", "threat_suspected")):
            if (v := f.label(key)) is not None:
                labels[label] = v.lower() if label in ("is_proxy", "threat_suspected") else v

        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=category, type=[etype], action=action, outcome=outcome,
                            reason=reason, provider="okta"),
            user=self._actor(f),
            labels=labels,
            message=f.text("displayMessage"),
        )
        self._client(f, ev)
        authenticator = self._targets(f, ev)
        self._authentication(f, ev, action, authenticator)
        return [ev]

    def _actor(self, f: Fields) -> User | None:
        actor = f.obj_at("actor")
        if actor is None:
            return None
        name = actor.text("alternateId")
        user = User(name=name, id=actor.text("id", numbers=True), full_name=actor.text("displayName"),
                    email=name if name and "@" in name else None)
        return identified(user)

    def _client(self, f: Fields, ev: AccessEvent) -> None:
        client = f.obj_at("client")
        if client is None:
            return
        if (ip := client.text("ipAddress")) is not None:
            ev.source = endpoint(ip)
        if (geo_ctx := client.obj_at("geographicalContext")) is not None:
            loc = geo_ctx.obj_at("geolocation")
            point = geo_point(loc, "lat", "lon") if loc is not None else None
            add_geo(ev, Geo(country_name=geo_ctx.text("country"), city_name=geo_ctx.text("city"), location=point))
        if (agent := client.text("userAgent.rawUserAgent")) is not None:
            ev.user_agent = UserAgent(original=agent)

    def _targets(self, f: Fields, ev: AccessEvent) -> str | None:
        """Set user.target and resource; return the authenticator named by the targets, if any."""
        others: list[tuple[str | None, Fields]] = []
        for target in f.objects("target"):
            ttype = target.text("type")
            if ttype != "User":
                others.append((ttype, target))
            elif ev.user is None or ev.user.target is None:
                name = target.text("alternateId")
                ev.user = ev.user or User()
                ev.user.target = UserTarget(name=name, id=target.text("id", numbers=True),
                                            email=name if name and "@" in name else None)
        # The application signed in to is what was accessed; the authenticator is how.
        authenticators = [t for ttype, t in others if ttype == "AuthenticatorEnrollment"]
        apps = [t for ttype, t in others if ttype == "AppInstance"]
        rest = [t for ttype, t in others if ttype not in ("AuthenticatorEnrollment", "AppInstance")]
        if chosen := (apps or rest or authenticators):
            res = chosen[0]
            ttype = res.text("type")
            ev.resource = Resource(type=_RESOURCE_TYPES.get(ttype or "") or (_snake(ttype) if ttype else None),
                                   id=res.text("id", numbers=True),
                                   name=res.text("displayName") or res.text("alternateId"))
        return authenticators[0].text("displayName") if authenticators else None

    def _authentication(self, f: Fields, ev: AccessEvent, action: str, authenticator: str | None) -> None:
        ctx = f.obj_at("authenticationContext")
        credential = ctx.text("credentialType") if ctx else None
        factor = f.text("debugContext.debugData.factor")
        if factor:
            ev.labels["mfa_factor"] = factor
        mfa = True if (factor or action == "user.authentication.auth_via_mfa") else None
        if "authentication" not in ev.event.category:
            authenticator = None  # on factor administration the authenticator is the object, not the means
        method = (credential or factor or authenticator or "").lower() or None
        if mfa or method:
            ev.authentication = Authentication(method=method, mfa=mfa)


def _snake(text: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).replace(" ", "_").lower()

"""GitHub audit log entries (organisation / enterprise audit log, REST API or streaming).

Mapping (ECS names on the left):

* ``@timestamp``: ``@timestamp`` (epoch milliseconds in the API), Panther's renamed
  ``at_sign_timestamp``, ``created_at`` (epoch ms, ISO 8601 or ``2023-01-31 18:58:27.638``, UTC),
  else Panther's ``p_event_time``: the first present.
* ``event.action`` = ``action`` (required). ``event.outcome`` = success: the audit log records
  actions that took place (refused operations are not logged as the action).
* ``event.category`` by action prefix (``_CATEGORIES``): org/team/business membership and roles
  -> ``iam``; OAuth, tokens, SSH keys, 2FA -> ``authentication``; ``git.*`` -> ``file`` (reading
  or writing repository content); everything else (repo, branch protection, hooks, security
  features...) -> ``configuration``. ``event.type`` from the verb (create/add/invite ->
  creation, destroy/delete/remove -> deletion, clone/fetch -> access, else change), plus
  ``user`` for member changes and ``group`` for teams.
* ``user.name`` = ``actor`` (a string), ``user.id`` = ``actor_id``; ``user.target`` = ``user`` /
  ``user_id`` (the member invited, removed, promoted...; ``user_id`` 0 means none).
* ``source.ip`` = ``actor_ip``; ``source.geo.country_iso_code`` = ``actor_location.country_code``.
  ``user_agent.original`` = ``user_agent``.
* ``resource``: the repository (``repo``, or ``repository`` in newer entries), else the team
  (``team``), else the organisation (``org``).
* ``labels``: ``org``, ``business``, ``visibility``, ``previous_visibility``, ``public_repo``,
  ``programmatic_access_type``, ``operation_type``, ``github_document_id`` when present: a rule
  matches ``labels.visibility: public`` on ``repo.access`` for "repository made public".
"""

from __future__ import annotations

from typing import Any

from access_audit.core.events import (
    AccessEvent,
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
from access_audit.parse.cloudcommon import add_geo, inner, required, unwrap
from access_audit.parse.ecs import Fields, endpoint, has_keys

_TIME_FIELDS = ("@timestamp", "at_sign_timestamp", "created_at", "p_event_time")

# First matching prefix wins.
_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("org.", "iam"), ("team.", "iam"), ("business.", "iam"), ("organization_moderators.", "iam"),
    ("invite_member", "iam"), ("members_can_", "iam"), ("role.", "iam"), ("org_credential_authorization.", "iam"),
    ("oauth_", "authentication"), ("personal_access_token.", "authentication"),
    ("public_key.", "authentication"), ("ssh_certificate", "authentication"),
    ("two_factor_authentication.", "authentication"), ("user.login", "authentication"),
    ("git.", "file"),
)
_LABELS = (("org", "org"), ("business", "business"), ("visibility", "visibility"),
           ("previous_visibility", "previous_visibility"), ("public_repo", "public_repo"),
           ("repository_public", "public_repo"), ("programmatic_access_type", "programmatic_access_type"),
           ("operation_type", "operation_type"), ("_document_id", "github_document_id"))


@register
class GitHubAuditParser(JsonParser):
    """GitHub organisation/enterprise audit log entries, one per JSON object."""

    name = "github.audit"
    aliases = ("github",)
    description = "GitHub organisation / enterprise audit log entries"

    def sniff_obj(self, obj: dict[str, Any]) -> bool:
        obj = inner(obj)  # a Panther test row {"event": {...}} holds the vendor record
        # actor is a login string (Slack's audit log also has action + an actor *object*).
        return (isinstance(obj.get("action"), str) and isinstance(obj.get("actor"), str)
                and any(k in obj for k in (*_TIME_FIELDS, "_document_id"))
                and not has_keys(obj, "eventSource") and not has_keys(obj, "eventType"))

    def parse_obj(self, obj: dict[str, Any], record: RawRecord) -> list[AccessEvent]:
        obj = unwrap(obj)
        f = Fields(obj, self.name)
        ts = f.time(*_TIME_FIELDS)
        action = required(f, "action")
        area, _, verb = action.rpartition(".")
        category = next((c for prefix, c in _CATEGORIES if action.startswith(prefix)), "configuration")
        types = [_verb_type(verb or action)]
        if category == "iam" and any(w in verb for w in ("member", "user", "admin", "owner", "maintainer")):
            types.append("user")
        if area.startswith("team"):
            types.append("group")

        labels = f.labels(_LABELS)

        user = None
        actor = f.text("actor")
        actor_id = f.text("actor_id", numbers=True)
        if actor or actor_id:
            user = User(name=actor, id=actor_id)
        target, target_id = f.text("user"), f.text("user_id", numbers=True)
        if target_id == "0":  # git.* entries write user_id 0 for "no affected user"
            target_id = None
        if target or target_id:
            user = user or User()
            user.target = UserTarget(name=target, id=target_id)

        ev = AccessEvent(
            timestamp=ts,
            event=EventInfo(kind="event", category=[category], type=types, action=action,
                            outcome=Outcome.success, provider="github"),
            user=user,
            resource=self._resource(f),
            labels=labels,
        )
        if (ip := f.text("actor_ip")) is not None:
            ev.source = endpoint(ip)
        add_geo(ev, Geo(country_iso_code=f.text("actor_location.country_code")))
        if (agent := f.text("user_agent")) is not None:
            ev.user_agent = UserAgent(original=agent)
        return [ev]

    def _resource(self, f: Fields) -> Resource | None:
        repo = f.text("repo") or f.text("repository")
        if repo:
            return Resource(type="repository", name=repo, id=f.text("repo_id", numbers=True),
                            owner=f.text("org"))
        if team := f.text("team"):
            return Resource(type="team", name=team, owner=f.text("org"))
        if org := f.text("org"):
            return Resource(type="organization", name=org, id=f.text("org_id", numbers=True))
        return None


def _verb_type(verb: str) -> str:
    if verb.startswith(("create", "add", "invite")):
        return "creation"
    if verb.startswith(("destroy", "delete", "remove")):
        return "deletion"
    if verb in ("clone", "fetch"):
        return "access"
    return "change"

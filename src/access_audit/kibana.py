"""Kibana saved objects for the Elasticsearch store: data views, saved searches, Lens panels and
the "Access audit" dashboard, loaded with Kibana's saved-objects import API.

The objects live in ``deploy/kibana/access-audit.ndjson`` (Kibana 8 export format, one object a
line), written for the default index prefix ``access-audit``. ``saved_objects(prefix)`` rewrites
the data views' index patterns for another ``ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX``, so the
dashboard reads the indices the store really writes (``<prefix>-events-*``, ``<prefix>-alerts``).
A wheel (the Docker image) carries a copy as ``access_audit/_kibana`` (setup.py).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from access_audit.core.errors import AccessAuditError

DEFAULT_PREFIX = "access-audit"
FILE_NAME = "access-audit.ndjson"


class KibanaError(AccessAuditError):
    """Kibana could not be reached or refused the import (the message says which and why)."""


def saved_objects_file() -> Path:
    here = Path(__file__).resolve()
    for cand in (here.parents[2] / "deploy" / "kibana", here.parent / "_kibana"):
        if (cand / FILE_NAME).is_file():
            return cand / FILE_NAME
    raise FileNotFoundError(f"Kibana saved objects not found ({FILE_NAME} in deploy/kibana or access_audit/_kibana)")


def saved_objects(prefix: str = DEFAULT_PREFIX, path: Path | None = None) -> list[dict[str, Any]]:
    """The saved objects, with the data views' index patterns for ``prefix``."""
    text = (path or saved_objects_file()).read_text(encoding="utf-8")
    objects = [json.loads(line) for line in text.splitlines() if line.strip()]
    for o in objects:
        if o["type"] == "index-pattern":
            title = o["attributes"]["title"]
            if not title.startswith(DEFAULT_PREFIX + "-"):
                raise ValueError(f"data view {o['id']}: title {title!r} does not start with {DEFAULT_PREFIX}-")
            o["attributes"]["title"] = prefix + title[len(DEFAULT_PREFIX):]
    return objects


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(o, separators=(",", ":"), sort_keys=True).encode() + b"\n" for o in objects)


def import_saved_objects(url: str, objects: list[dict[str, Any]], *, username: str | None = None,
                         password: str | None = None, api_key: str | None = None, space: str | None = None,
                         timeout: float = 30.0) -> int:
    """``POST /api/saved_objects/_import?overwrite=true``; returns how many objects Kibana imported.

    Raises KibanaError when Kibana cannot be reached, answers with an error status, or reports
    objects it could not import.
    """
    base = url.rstrip("/") + (f"/s/{space}" if space else "")
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{FILE_NAME}\"\r\n"
            "Content-Type: application/ndjson\r\n\r\n")
    body = head.encode() + to_ndjson(objects) + f"\r\n--{boundary}--\r\n".encode()
    headers = {"kbn-xsrf": "access-audit", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    elif username:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode()
    req = urllib.request.Request(base + "/api/saved_objects/_import?overwrite=true", data=body, headers=headers,
                                 method="POST")
    shown = url.rstrip("/")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        detail = e.read()[:500].decode("utf-8", "replace")
        raise KibanaError(f"kibana {shown}: the import was refused: {e.code} {e.reason}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise KibanaError(f"kibana {shown} is not reachable: {reason} (is Kibana running and healthy?)") from None
    except ValueError as e:
        raise KibanaError(f"kibana {shown}: the answer is not JSON ({e}): is this Kibana?") from None
    errors = answer.get("errors") or []
    if not answer.get("success", False) or errors:
        lines = [f"{x.get('type')}/{x.get('id')}: {json.dumps(x.get('error'))}" for x in errors[:10]]
        raise KibanaError(f"kibana {shown}: {len(errors)} saved object(s) not imported: " + "; ".join(lines))
    return int(answer.get("successCount", len(objects)))

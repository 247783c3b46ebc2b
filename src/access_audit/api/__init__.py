"""The HTTP API and the DPO console (FastAPI): ``create_app`` in ``access_audit.api.app``.

``auth`` (tokens, roles, permissions, pseudonymisation), ``audit`` (every query of the access logs
is itself an access event), ``console`` (server-rendered pages), ``templates/`` (jinja2).
"""

"""The demo company's identity directory and resource catalogue, as the files a user would write.

``access-audit demo`` writes them into the data directory (``directory.yml``, ``resources.yml``)
and runs with them, so the context-aware rules (need-to-know, off-hours, account status) have
something to consult, exactly as they would in production.

The directory is static: it states everybody's current roles and status, with the dates that keep
it true over the whole demo window (the leaver is ``terminated`` since the day he left, the new
hire has her ``hired`` date; the support employee who joins the claims team mid-window is listed
with the claims role). Working hours are what was agreed with each person: office staff work within
Zorgwijk's flexitime window (07:00-19:00, Monday to Friday, minus part-time days off), night
shifts 20:00-08:00, and people on the evening/weekend on-call rota 07:00-23:00 (at weekends too
when they are on the weekend rota). Machine identities that touch classified data (the nightly
backup and export roles) are allowed in the catalogue under their AWS role names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from access_audit.demo.generator import COMPANY, DemoCompany, DemoUser

SERVICE_ACCOUNTS_ROLE = "service"


ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def working_time(u: DemoUser, company: DemoCompany = COMPANY) -> tuple[str, list[str]]:
    """The agreed working hours and days of a person (see the module docstring)."""
    weekdays = [d for i, d in enumerate(ALL_DAYS[:5]) if i not in u.days_off]
    if u.night_shift:
        return "20:00-08:00", list(ALL_DAYS)
    if u.late or u.weekend > 0:
        return "07:00-23:00", list(ALL_DAYS) if u.weekend > 0 else weekdays
    return f"{company.flexitime[0]:02d}:00-{company.flexitime[1]:02d}:00", weekdays


def directory_doc(company: DemoCompany = COMPANY) -> dict[str, Any]:
    users: list[dict[str, Any]] = []
    for u in company.users:
        roles = [u.role] + (["claims"] if u.claims or u.claims_from else [])
        hours, days = working_time(u, company)
        entry: dict[str, Any] = {
            "name": u.username, "aliases": [u.email, u.github], "full_name": u.full_name, "roles": roles,
            "department": u.department, "status": u.status, "timezone": company.timezone,
            "working_hours": hours, "working_days": days,
        }
        if u.left is not None:
            entry["status_since"] = u.left.isoformat()
        if u.hired is not None:
            entry["hired"] = u.hired.isoformat()
        users.append(entry)
    for sa in company.service_accounts:
        users.append({"name": sa, "roles": [SERVICE_ACCOUNTS_ROLE], "department": "Operations",
                      "working_hours": "00:00-23:59", "working_days": ["mon", "tue", "wed", "thu", "fri", "sat",
                                                                       "sun"]})
    return {"users": users}


def catalogue_doc(company: DemoCompany = COMPANY) -> dict[str, Any]:
    support_side = ["support", "finance", "dpo", "admin"]
    n_customers = company.customer_ids[1] - company.customer_ids[0] + 1
    return {"resources": [
        {"id": "crm-customer-medical", "name": "CRM customer medical records",
         "match": {"url.path": "/api/customers/*/medical"}, "classification": "special",
         "data_categories": ["health"], "subjects": n_customers,
         "subject_id_from": "/api/customers/{subject}/medical", "allowed_roles": ["claims", "dpo"],
         "owner": "Customer Service"},
        {"id": "crm-customer-notes", "name": "CRM customer notes", "match": {"url.path": "/api/customers/*/notes"},
         "classification": "personal", "data_categories": ["contact"], "subjects": n_customers,
         "subject_id_from": "/api/customers/{subject}/notes", "allowed_roles": support_side,
         "owner": "Customer Service"},
        {"id": "crm-customer-search", "name": "CRM customer search", "match": {"url.path": "/api/customers/search*"},
         "classification": "personal", "data_categories": ["identity", "contact"], "subjects": n_customers,
         "allowed_roles": support_side, "owner": "Customer Service"},
        {"id": "crm-customer", "name": "CRM customer records", "match": {"url.path": "/api/customers/*"},
         "classification": "personal", "data_categories": ["identity", "contact", "bsn"], "subjects": n_customers,
         "subject_id_from": "/api/customers/{subject}", "allowed_roles": support_side,
         "owner": "Customer Service"},
        {"id": "crm-invoices", "name": "CRM invoices", "match": {"url.path": "/api/invoices/*"},
         "classification": "personal", "data_categories": ["financial"], "allowed_roles": support_side,
         "owner": "Finance"},
        {"id": "s3-customer-exports", "name": "S3 customer exports",
         "match": {"resource.name": ["zorgwijk-customer-exports", "zorgwijk-customer-exports/*"]},
         "classification": "personal", "data_categories": ["identity", "contact", "financial"],
         "subjects": n_customers, "allowed_roles": ["finance", "sre", "admin", "zorgwijk-crm-export"],
         "owner": "Finance"},
        {"id": "s3-backups", "name": "S3 backups", "match": {"resource.name": ["zorgwijk-backups",
                                                                               "zorgwijk-backups/*"]},
         "classification": "special", "data_categories": ["identity", "contact", "financial", "health", "bsn"],
         "subjects": n_customers, "allowed_roles": ["sre", "admin", SERVICE_ACCOUNTS_ROLE, "zorgwijk-backup"],
         "owner": "Operations"},
        {"id": "db-crm-claims", "name": "CRM database: claims",
         "match": {"labels.db_name": "crm", "resource.name": "public.claims"}, "classification": "special",
         "data_categories": ["health"], "subjects": n_customers, "owner": "Customer Service"},
        {"id": "db-crm-customers", "name": "CRM database: customers, policies, invoices",
         "match": {"labels.db_name": "crm", "resource.name": ["public.customers", "public.policies",
                                                              "public.invoices"]},
         "classification": "personal", "data_categories": ["identity", "contact", "financial", "bsn"],
         "subjects": n_customers, "owner": "Customer Service"},
        {"id": "db-01", "name": "Customer database host", "match": {"host.name": "db-01"},
         "classification": "special", "data_categories": ["identity", "contact", "financial", "health", "bsn"],
         "subjects": n_customers, "owner": "Operations"},
    ]}


def write_context(directory: Path, company: DemoCompany = COMPANY) -> tuple[Path, Path]:
    """Write ``directory.yml`` and ``resources.yml`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    d, c = directory / "directory.yml", directory / "resources.yml"
    d.write_text(yaml.safe_dump(directory_doc(company), sort_keys=False, allow_unicode=True))
    c.write_text(yaml.safe_dump(catalogue_doc(company), sort_keys=False, allow_unicode=True))
    return d, c

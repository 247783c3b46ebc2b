"""Demo data: realistic raw access logs of a small company, with injected attacks and ground truth."""

from access_audit.demo.generator import (
    COMPANY,
    LOG_TYPES,
    SOURCES,
    DemoCompany,
    DemoRecord,
    DemoResource,
    DemoUser,
    Place,
    Scenario,
    generate,
    iter_scenario,
    write_files,
)

__all__ = [
    "COMPANY",
    "LOG_TYPES",
    "SOURCES",
    "DemoCompany",
    "DemoRecord",
    "DemoResource",
    "DemoUser",
    "Place",
    "Scenario",
    "generate",
    "iter_scenario",
    "write_files",
]

"""access-audit: who accessed what, unusual access as it happens, and the GDPR breach workflow."""

__version__ = "0.1.0"

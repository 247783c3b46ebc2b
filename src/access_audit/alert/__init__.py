"""Detections -> alerts: dedup, suppression, counters."""

"""Metrics for anomaly detection: point, point-adjusted, range-based, event, AUC, VUS, affiliation."""

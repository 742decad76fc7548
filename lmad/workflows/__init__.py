"""Workflow job anomalies: Flow-Bench run data as sentences, classifiers and baselines."""

"""Business-process traces: logs, simulator, anomaly injection, fine-tuning and scoring."""

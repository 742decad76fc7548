"""Time-series anomaly detection with multimodal LLMs (TAMA, arXiv 2411.02465)."""

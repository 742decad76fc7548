"""lmad: anomaly detection with large language models.

Three domains share this package: time series (``lmad.series``, the TAMA method), scientific-workflow
jobs (``lmad.workflows``) and business-process traces (``lmad.traces``, the SemAD method).
"""

__version__ = "0.1.0"

"""cpi-cert-rotate: rotate the mTLS client certificate of a Cloud Foundry app calling SAP CPI.

Staged, verified, zero-downtime; the private key lives in process memory only.
"""

__version__ = "0.1.0"

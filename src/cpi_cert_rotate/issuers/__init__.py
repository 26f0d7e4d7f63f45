"""Where a new certificate comes from when it is not given as input.

An issuer is asked for a certificate only after the engine has decided a rotation is
due, so a scheduled run that finds nothing to do issues nothing. The key is generated
in this process and never leaves it: the issuer signs a CSR.

    issuer = VaultPkiIssuer(VaultSettings(address=..., role="cpi-client", token=...))
    issued = issuer.issue(copy_subject_from=live_leaf)
"""

from .base import IssuedMaterial, Issuer, IssuerError
from .vault import VaultPkiIssuer, VaultSettings

__all__ = ["IssuedMaterial", "Issuer", "IssuerError", "VaultPkiIssuer", "VaultSettings"]

"""The contract between the engine and a certificate issuer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509

from ..errors import RotationError
from ..models import PrivateKey


@dataclass(frozen=True)
class IssuedMaterial:
    """A freshly issued chain (leaf first) and the key generated for it, in memory."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)


class IssuerError(RotationError):
    """The issuer refused or could not be reached; nothing in Cloud Foundry was changed."""

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix

    def hint(self) -> str:
        return f"{self}\n\n{self.fix}" if self.fix else str(self)


class Issuer(Protocol):
    """Issues a client certificate for a key it never sees (it signs a CSR)."""

    def describe(self) -> str:
        """Where certificates come from, for the plan and the report (no secret)."""
        ...

    def issue(
        self,
        *,
        copy_subject_from: x509.Certificate | None,
        on_secret: Callable[[str], None],
    ) -> IssuedMaterial:
        """A new chain and key; the CSR copies the subject of the live leaf when given.

        `on_secret` receives every secret learnt on the way (a login token) before it
        is used, so that an adapter can mask it.
        """
        ...

"""The it-rt (Process Integration Runtime) broker's rules for external certificates.

From SAP's docs (SAP-docs/btp-integration-suite `docs/ISuite/40-RemoteSystems/`
`specifying-service-instance-and-service-key-parameters-in-json-format-ae419b6.md` and
`creating-service-instance-and-service-key-for-inbound-authentication-19af5e2.md`):
parameters are `{"key-type":"certificate_external","X.509":"<PEM>"}`; the PEM must be the
leaf only ("Don't enter the whole certificate chain"); the issuing CA must be one SAP
trusts; and "You can only use a single certificate once across all existing service
instances". A broken rule is a broker error, which CC surfaces in the job (10009) and in
the binding's last operation. The exact broker texts are not documented: the ones here
keep the documented gist ("Certificate already exists ...").
"""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .pki import Pki, load_pem_certs
from .state import Binding, Store

IT_RT = "it-rt"
_ALLOWED_PARAMS = {"key-type", "X.509", "certificate-pinning"}


class BrokerError(Exception):
    """The broker refused; `str()` is its description."""


def _leaf_of(parameters: dict[str, Any]) -> tuple[x509.Certificate, str]:
    if parameters.get("key-type") != "certificate_external" or not isinstance(
        parameters.get("X.509"), str
    ):
        raise BrokerError(
            'Invalid parameters: expected {"key-type": "certificate_external", '
            '"X.509": "<PEM certificate>"}'
        )
    unknown = sorted(set(parameters) - _ALLOWED_PARAMS)
    if unknown:
        raise BrokerError(f"Invalid parameters: unknown parameter(s) {', '.join(unknown)}")
    pem = parameters["X.509"]
    try:
        certs = load_pem_certs(pem)
    except ValueError as error:
        raise BrokerError("Invalid X.509 certificate: the PEM could not be parsed") from error
    if len(certs) > 1:
        raise BrokerError(
            "Invalid X.509 certificate: only the client certificate is allowed, "
            f"found {len(certs)} certificates; do not send the certificate chain"
        )
    return certs[0], pem


class ItRtBroker:
    """Registers and releases client certificates for it-rt bindings and service keys."""

    def __init__(self, store: Store, pki: Pki, cpi_url: str, token_url: str) -> None:
        self._store = store
        self._pki = pki
        self._cpi_url = cpi_url
        self._token_url = token_url

    def bind(self, binding: Binding) -> None:
        """Check the binding's parameters and register its certificate (under store.lock).

        Sets `leaf_der`, `pinning` and `credentials`; raises BrokerError otherwise.
        """
        si = self._store.instances[binding.service_instance_guid]
        offering = self._store.offering_of(si)
        if offering is None or offering.label != IT_RT:
            binding.credentials = {"uri": f"sandbox://{si.name}/{binding.guid}"}
            return
        leaf, pem = _leaf_of(binding.parameters)
        constraints = _basic_constraints(leaf)
        if constraints is not None and constraints.ca:
            raise BrokerError(
                "Invalid X.509 certificate: a CA certificate is not a client certificate"
            )
        if leaf.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
            raise BrokerError("Invalid X.509 certificate: the certificate has expired")
        if not self._pki.issued_by_trusted_root(leaf):
            raise BrokerError(
                "Invalid X.509 certificate: it is not signed by a certificate authority "
                f"supported by SAP (issuer: {leaf.issuer.rfc4514_string()})"
            )
        der = leaf.public_bytes(serialization.Encoding.DER)
        if self._in_use(der, binding.guid):
            raise BrokerError(
                "Certificate already exists for Follower within Leader. You can only use "
                "a single certificate once across all existing service instances."
            )
        pinning = binding.parameters.get("certificate-pinning", self._store.options.pinning)
        binding.leaf_der = der
        binding.pinning = bool(pinning)
        binding.credentials = {
            "oauth": {
                "clientid": f"sb-{binding.guid}!b1|it-rt-sandbox!b196",
                "certificate": pem,
                "url": self._cpi_url,
                "tokenurl": self._token_url,
                "certificate-pinning": binding.pinning,
            }
        }

    def _in_use(self, der: bytes, own_guid: str) -> bool:
        for other in self._store.bindings.values():
            if other.guid == own_guid or other.leaf_der != der:
                continue
            if not other.is_("create", "failed"):
                return True
        return False


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None

"""The forms a chain must take on its way into Cloud Foundry, and its public facts.

The seed post needs three different spellings of the same leaf (one-line JSON with `\\n`,
a one-line manifest value with no separators at all, raw PEM for the env var); each has
a function here, made by a serialiser (json, pyyaml) rather than by string surgery, so
the output is valid by construction.
"""

from __future__ import annotations

import json

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..models import CertFacts, Fingerprint
from .keys import describe_public_key
from .validate import Validation

KEY_TYPE_EXTERNAL = "certificate_external"
"""The it-rt binding `key-type` for a certificate the customer brings (SAP docs ae419b6)."""


def fingerprint(cert: x509.Certificate) -> Fingerprint:
    """SHA-256 of the DER encoding, lowercase hex without colons."""
    return Fingerprint(cert.fingerprint(hashes.SHA256()).hex())


def _serial_hex(serial: int) -> str:
    """Lowercase hex with an even number of digits, as `openssl x509 -serial` groups it."""
    text = format(serial, "x")
    return text if len(text) % 2 == 0 else "0" + text


def facts(cert: x509.Certificate) -> CertFacts:
    """Public facts about `cert` (subject and issuer in RFC 4514, UTC times)."""
    key_type, key_size = describe_public_key(cert.public_key())
    return CertFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=_serial_hex(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=fingerprint(cert),
        key_type=key_type,
        key_size=key_size,
    )


def leaf_pem(cert: x509.Certificate) -> str:
    """The certificate as PEM (RFC 7468: 64-character lines, trailing newline)."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def binding_parameters(leaf: x509.Certificate) -> dict[str, str]:
    """The it-rt binding parameters for an external certificate: the leaf only.

    The service broker refuses a chain here; the load balancer gets the chain at
    runtime from the app instead (docs/certificates.md, `bind-json`).
    """
    return {"key-type": KEY_TYPE_EXTERNAL, "X.509": leaf_pem(leaf)}


def bind_json(leaf: x509.Certificate) -> str:
    """`binding_parameters` as one line of JSON, the seed's `bind.json` (`cf bs -c`)."""
    return json.dumps(binding_parameters(leaf), separators=(",", ":"))


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks (`|`), so PEM stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def manifest_snippet(
    leaf: x509.Certificate,
    *,
    app: str = "<app>",
    service_instance: str = "<service-instance>",
) -> str:
    """A manifest.yml fragment that binds `app` to the it-rt instance with the leaf.

    Valid YAML from pyyaml; the PEM is a literal block, which CF reads back byte for
    byte, unlike the seed's hand-made one-line value.
    """
    manifest = {
        "applications": [
            {
                "name": app,
                "services": [{"name": service_instance, "parameters": binding_parameters(leaf)}],
            }
        ]
    }
    return yaml.dump(manifest, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False)


def manifest_oneline(leaf: x509.Certificate) -> str:
    """The seed's manifest value: the PEM with every newline removed (no `\\n` at all)."""
    return "".join(leaf_pem(leaf).splitlines())


def env_chain_pem(validation: Validation, *, keep_root: bool = False) -> str:
    """The chain the app sends at runtime: leaf and intermediates, leaf first.

    The root is dropped unless `keep_root`: SAP's load balancer holds the roots it
    trusts and only needs the path up to them (SAP Note 2801396).
    """
    certs = [
        cert
        for cert in validation.chain
        if keep_root or validation.root is None or cert != validation.root
    ]
    return "".join(leaf_pem(cert) for cert in certs)

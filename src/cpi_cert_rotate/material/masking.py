"""Every textual form of a private key this process may hold, for masking before output.

GitHub masks a registered value wherever it appears in a log line, line by line. A
key can reach a log in more spellings than the one the user stored: the secret as
given, its base64-decoded text, the `\\n`-escaped one-line form, the PKCS#8 PEM we build
for `CLI_KEY`, the PKCS#1/SEC1 PEM, bare base64 of the DER in other wrappings. The
Action registers every line of every form here before it prints anything.
"""

from __future__ import annotations

import base64
import re
import textwrap

from cryptography.hazmat.primitives import serialization

from ..models import PrivateKey
from .keys import key_pkcs8_pem, key_traditional_pem, unencrypted_bytes

_ARMOUR = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]+-----")
_HEADER = re.compile(r"^(Proc-Type|DEK-Info):", re.IGNORECASE)

MIN_MASK_LENGTH = 8
"""Shorter lines (a PEM body's last `Zw==`) carry no usable secret and would mask
unrelated log text everywhere they occur."""

_WRAPS = (64, 76)
"""PEM (RFC 7468) and MIME (RFC 2045) line lengths: what `openssl` and `base64` emit."""


def _raw_text_forms(raw: bytes | str) -> list[str]:
    """The input as given, unescaped, and decoded from base64 when it was base64."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # binary (DER, PKCS#12): it can only leak as base64
            return [base64.b64encode(raw).decode("ascii")]
    else:
        text = raw
    forms = [text]
    unescaped = text.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\/", "/")
    if unescaped != text:
        forms.append(unescaped)
    if "-----BEGIN" not in text:
        compact = re.sub(r"\s", "", text)
        try:
            decoded = base64.b64decode(compact, validate=True)
        except ValueError:
            decoded = b""
        if decoded:
            forms += _raw_text_forms(decoded)
    return forms


def _der_forms(der: bytes) -> list[str]:
    encoded = base64.b64encode(der).decode("ascii")
    return [encoded] + ["\n".join(textwrap.wrap(encoded, width)) for width in _WRAPS]


def secret_forms(key: PrivateKey, *raw_inputs: bytes | str) -> tuple[str, ...]:
    """Every form of `key` (and of the raw inputs it came from), deduplicated.

    Multi-line forms are returned whole; `secret_lines` splits them for masking.
    """
    forms: list[str] = []
    for raw in raw_inputs:
        forms += _raw_text_forms(raw)
    for pem in (key_pkcs8_pem(key), key_traditional_pem(key)):
        forms += [pem, pem.replace("\n", "\\n"), "".join(pem.splitlines())]
    for private_format in (
        serialization.PrivateFormat.PKCS8,
        serialization.PrivateFormat.TraditionalOpenSSL,
    ):
        forms += _der_forms(unencrypted_bytes(key, private_format, serialization.Encoding.DER))
    return tuple(dict.fromkeys(form for form in forms if form.strip()))


def secret_lines(forms: tuple[str, ...]) -> tuple[str, ...]:
    """The lines of `forms` worth masking: no armour lines, headers or short tails."""
    lines: list[str] = []
    for form in forms:
        for line in form.splitlines():
            stripped = line.strip()
            if (
                len(stripped) >= MIN_MASK_LENGTH
                and not _ARMOUR.fullmatch(stripped)
                and not _HEADER.match(stripped)
            ):
                lines.append(stripped)
    return tuple(dict.fromkeys(lines))

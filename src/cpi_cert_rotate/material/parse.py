"""Read certificate chains and private keys from every form users paste them in.

The seed post spends most of its effort turning one representation into another by hand
(bag attributes, `\\n` escapes, PKCS#7, encrypted keys); here every one of them is read
back into `cryptography` objects:

- PEM, in any order, with bag attributes or other text around the blocks, LF or CRLF;
- the one-line forms: literal `\\n` (JSON, `cf set-env`), spaces instead of newlines
  (an unquoted `echo $VAR`), or nothing at all between the dashes and the base64
  (the seed's manifest value); a JSON-escaped `\\/` is undone;
- PKCS#7 (PEM or DER), PKCS#12 (with or without password), a single DER certificate;
- keys as PKCS#8, PKCS#1 or SEC1, PEM or DER, encrypted PKCS#8 or traditional encrypted
  PEM (`Proc-Type`/`DEK-Info`, what `openssl genpkey -aes-256-cbc` and `openssl rsa
  -aes256` make);
- base64 of any of these (how binary files travel through GitHub secrets).

Errors are `InputError`s with a problem code; their messages describe the input's
shape (labels, counts), never its content.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from ..models import PrivateKey
from .keys import describe_public_key, is_supported_key_type
from .problems import input_error

log = logging.getLogger(__name__)

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 #]+-----")
# Undecodable bytes (U+FFFD after decoding) and control characters other than whitespace.
_BINARY = re.compile("[\ufffd\x00-\x08\x0e-\x1f\x7f]")
_PROC_TYPE = re.compile(r"Proc-Type:\s*4\s*,\s*ENCRYPTED", re.IGNORECASE)
_DEK_INFO = re.compile(r"DEK-Info:\s*([A-Za-z0-9-]+)\s*,\s*", re.IGNORECASE)
_NOT_BASE64 = re.compile(r"[\s\\\"']")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")

_CERT_LABELS = frozenset({"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"})
_PKCS7_LABELS = frozenset({"PKCS7", "PKCS #7 SIGNED DATA", "CMS"})
_CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})

# base64 of a PEM file is common (GitHub secrets), base64 of base64 happens when a
# pipeline encodes twice; more layers than that is not a certificate.
_MAX_BASE64_LAYERS = 2

PEM_LINE = 64
"""RFC 7468 section 2: base64 lines of exactly 64 characters, except the last."""

KeyLoader = Callable[[bytes, bytes | None], object]


@dataclass(frozen=True)
class Material:
    """A chain and (when given) its key, as read from the inputs; the key stays in memory."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateKey | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Block:
    """One PEM block, with its RFC 1421 headers (only traditional encrypted keys have them)."""

    label: str
    der: bytes = field(repr=False)
    headers: tuple[tuple[str, str], ...] = ()

    def pem(self) -> bytes:
        """The block re-armoured in canonical RFC 7468 layout."""
        body = base64.b64encode(self.der).decode("ascii")
        lines = [f"-----BEGIN {self.label}-----"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.headers:
            lines.append("")
        lines += textwrap.wrap(body, PEM_LINE)
        lines.append(f"-----END {self.label}-----")
        return ("\n".join(lines) + "\n").encode("ascii")


def _to_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _unescape(text: str) -> str:
    """Undo the one-line encodings: literal `\\r\\n`/`\\n`/`\\r` and JSON's `\\/`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for escaped in ("\\r\\n", "\\n", "\\r"):
        text = text.replace(escaped, "\n")
    return text.replace("\\/", "/")


def _strict_b64decode(text: str) -> bytes | None:
    cleaned = _NOT_BASE64.sub("", text)
    if not cleaned or len(cleaned) % 4 or not _BASE64.fullmatch(cleaned):
        return None
    try:
        return base64.b64decode(cleaned, validate=True)
    except binascii.Error:
        return None


def _encryption_headers(body: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """Split RFC 1421 `Proc-Type`/`DEK-Info` headers off a traditional encrypted key body.

    In the one-line form nothing separates the IV from the base64, so the IV is cut by
    its length: 8 bytes for DES ciphers, 16 for AES, Camellia and ARIA.
    """
    proc = _PROC_TYPE.search(body)
    dek = _DEK_INFO.search(body)
    if not proc or not dek:
        return (), body
    cipher = dek.group(1).upper()
    iv_chars = 16 if "DES" in cipher else 32
    iv = body[dek.end() : dek.end() + iv_chars]
    if not re.fullmatch(r"[0-9A-Fa-f]+", iv) or len(iv) != iv_chars:
        return (), body
    headers = (("Proc-Type", "4,ENCRYPTED"), ("DEK-Info", f"{cipher},{iv.upper()}"))
    return headers, body[dek.end() + iv_chars :]


def _check_around_blocks(text: str, what: str, complete: int) -> None:
    """Text around the blocks is fine (bag attributes, `openssl x509 -text`); a BEGIN line
    without its END (a file cut short, two files joined wrongly) or binary bytes are not,
    because the certificate they stand for would be dropped without a word."""
    code = "unparseable-key" if what == "key" else "unparseable-chain"
    if len(_PEM_BEGIN.findall(text)) > complete:
        raise input_error(
            code,
            f"PEM block {complete + 1} of the {what} input has a BEGIN line but no matching "
            "END line (the file was cut short, or two files were joined wrongly).",
        )
    if _BINARY.search(_PEM_BLOCK.sub("", text)):
        raise input_error(
            code, f"The {what} input holds binary data beside its PEM blocks (trailing junk?)."
        )


def _pem_blocks(text: str, what: str) -> list[_Block]:
    text = _unescape(text)
    _check_around_blocks(text, what, len(_PEM_BLOCK.findall(text)))
    blocks = []
    for number, match in enumerate(_PEM_BLOCK.finditer(text), 1):
        label, body = match.group(1), match.group(2)
        headers: tuple[tuple[str, str], ...] = ()
        if label.endswith("PRIVATE KEY"):
            headers, body = _encryption_headers(body)
        der = _strict_b64decode(body)
        if der is None and what != "key" and label.endswith("PRIVATE KEY"):
            raise input_error("private-key-in-chain", f"The {what} input contains a {label} block.")
        if der is None:
            code = "unparseable-key" if what == "key" else "unparseable-chain"
            raise input_error(
                code,
                f"PEM block {number} ({label}) of the {what} input is damaged: its body is "
                "not valid base64 (truncated, or characters lost in copying).",
            )
        blocks.append(_Block(label, der, headers))
    return blocks


def _without_bom(data: bytes) -> bytes:
    """UTF-8 without BOM; UTF-16 (what Windows PowerShell 5's `>` writes) is re-encoded."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return data
    return data.removeprefix(b"\xef\xbb\xbf")


def _decode(data: bytes, what: str) -> tuple[list[_Block], bytes | None]:
    """The PEM blocks `data` holds, or else the binary (DER) payload it stands for.

    Base64 layers are peeled first; text that is neither PEM nor base64 comes back as
    "DER" so the binary loaders can reject it with the right code. Whitespace is trimmed
    from text only: a DER file may well end in a byte that happens to be 0x0a or 0x20.
    """
    raw = _without_bom(data)
    payload = raw.strip()
    if not payload:
        raise input_error("empty-input", f"The {what} input is empty.")
    binary = raw
    for _ in range(_MAX_BASE64_LAYERS + 1):
        if b"-----BEGIN" in payload:
            text = payload.decode("utf-8", errors="replace")
            return _pem_blocks(text, what), None
        decoded = _strict_b64decode(payload.decode("latin-1"))
        if decoded is None:
            return [], binary
        log.debug("the %s input is base64; decoded %d bytes", what, len(decoded))
        payload = decoded.strip() if b"-----BEGIN" in decoded else decoded
        binary = decoded
    return [], binary


def _der_length_end(der: bytes, offset: int = 0) -> tuple[int, int] | None:
    """(start of contents, end of element) of the DER TLV at `offset`, or None."""
    if len(der) < offset + 2:
        return None
    first = der[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    count = first & 0x7F
    if not 0 < count <= 4 or len(der) < offset + 2 + count:
        return None
    length = int.from_bytes(der[offset + 2 : offset + 2 + count], "big")
    start = offset + 2 + count
    return start, start + length


def _is_pkcs12(der: bytes) -> bool:
    """RFC 7292 section 4: PFX ::= SEQUENCE { version INTEGER (v3), authSafe, macData }."""
    bounds = _der_length_end(der)
    return (
        der[:1] == b"\x30"
        and bounds is not None
        and der[bounds[0] : bounds[0] + 3] == b"\x02\x01\x03"
    )


def _open_pkcs12(
    der: bytes, password: bytes | None
) -> tuple[tuple[x509.Certificate, ...], PrivateKey | None]:
    """Certificates (the key's own first) and key of a PKCS#12; tries no password too."""
    attempts = [password, None, b""] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(der, attempt)
        except ValueError:
            continue
        certs = ((cert,) if cert is not None else ()) + tuple(extra)
        if key is not None and not is_supported_key_type(key.public_key()):
            kind, size = describe_public_key(key.public_key())
            raise input_error(
                "unsupported-key-type", f"The PKCS#12 file holds a {kind} ({size} bits) key."
            )
        return certs, key  # type: ignore[return-value]
    if password is None:
        raise input_error(
            "key-encrypted", "The PKCS#12 file is protected by a password and none was given."
        )
    raise input_error("wrong-passphrase", "The password does not open the PKCS#12 file.")


def _is_private_key_der(der: bytes) -> bool:
    try:
        serialization.load_der_private_key(der, None)
    except TypeError:  # encrypted: still a key
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _pkcs7_certificates(der: bytes) -> list[x509.Certificate]:
    """Certificates of a PKCS#7 bundle (raises ValueError when it is none).

    `openssl crl2pkcs7` writes the certificate SET unsorted (BER, not DER); cryptography
    reads it but warns on every call. That warning says nothing a user can act on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PKCS#7 certificates could not be parsed")
        return pkcs7.load_der_pkcs7_certificates(der)


def _chain_from_der(
    der: bytes, password: bytes | None
) -> tuple[tuple[x509.Certificate, ...], PrivateKey | None]:
    if _is_pkcs12(der):
        return _open_pkcs12(der, password)
    try:
        return (x509.load_der_x509_certificate(der),), None
    except ValueError:
        pass
    try:
        certs = _pkcs7_certificates(der)
    except ValueError:
        certs = []
    if certs:
        return tuple(certs), None
    if _is_private_key_der(der):
        raise input_error("private-key-in-chain", "The chain input is a private key (DER).")
    raise input_error(
        "unparseable-chain",
        "The chain input is neither PEM nor a DER certificate, PKCS#7 or PKCS#12.",
    )


def _cert_from_block(block: _Block, number: int) -> x509.Certificate:
    der = block.der
    if block.label == "TRUSTED CERTIFICATE":  # OpenSSL appends trust settings after the cert
        bounds = _der_length_end(der)
        der = der[: bounds[1]] if bounds else der
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise input_error(
            "unparseable-chain",
            f"PEM block {number} ({block.label}) of the chain input is not a valid "
            "X.509 certificate.",
        ) from error


def _chain_from_blocks(blocks: list[_Block]) -> tuple[x509.Certificate, ...]:
    if any(b.label.endswith("PRIVATE KEY") for b in blocks):
        raise input_error("private-key-in-chain", "The chain input contains a PRIVATE KEY block.")
    certs: list[x509.Certificate] = []
    for number, block in enumerate(blocks, 1):
        if block.label in _CERT_LABELS:
            certs.append(_cert_from_block(block, number))
        elif block.label in _PKCS7_LABELS:
            try:
                certs.extend(_pkcs7_certificates(block.der))
            except ValueError as error:
                raise input_error(
                    "unparseable-chain",
                    f"PEM block {number} ({block.label}) is not a PKCS#7 certificate bundle.",
                ) from error
        else:
            log.debug("ignoring PEM block %d (%s) of the chain input", number, block.label)
    if certs:
        return tuple(certs)
    labels = sorted({b.label for b in blocks})
    if labels and set(labels) <= _CSR_LABELS:
        what = "The chain input is a certificate signing request, not a certificate."
    elif labels:
        what = f"The chain input holds no certificate, only {', '.join(labels)} blocks."
    else:
        what = "The chain input holds no PEM block."
    raise input_error("unparseable-chain", what)


def _check_extensions(certs: tuple[x509.Certificate, ...]) -> None:
    """cryptography parses extensions lazily; a malformed one would fail much later."""
    for number, cert in enumerate(certs, 1):
        try:
            cert.extensions  # noqa: B018 - parsing is the point
        except ValueError as error:
            raise input_error(
                "unparseable-chain",
                f"Certificate {number} ({cert.subject.rfc4514_string()}) has a malformed "
                f"extension: {error}.",
            ) from error


def _load_chain_and_key(
    data: bytes | str, password: bytes | None
) -> tuple[tuple[x509.Certificate, ...], PrivateKey | None]:
    blocks, der = _decode(_to_bytes(data), "chain")
    if der is not None:
        certs, key = _chain_from_der(der, password)
    else:
        certs, key = _chain_from_blocks(blocks), None
    _check_extensions(certs)
    return certs, key


def _checked(key: object) -> PrivateKey:
    public_key = key.public_key()  # type: ignore[attr-defined]
    if not is_supported_key_type(public_key):
        kind, size = describe_public_key(public_key)
        raise input_error("unsupported-key-type", f"The private key is a {kind} ({size} bits) key.")
    return key  # type: ignore[return-value]


def _load_private(loader: KeyLoader, data: bytes, passphrase: bytes | None) -> PrivateKey:
    """Load with `loader`, telling "needs a passphrase" apart from "wrong passphrase"."""
    try:
        key = loader(data, None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        pass
    except UnsupportedAlgorithm as error:
        raise input_error(
            "unsupported-key-type", "The private key uses an unsupported algorithm."
        ) from error
    except ValueError as error:
        raise input_error(
            "unparseable-key",
            "The private key could not be decoded (damaged, or an unsupported format such "
            "as EC with explicit curve parameters).",
        ) from error
    else:
        if passphrase is not None:
            log.info("a passphrase was given but the private key is not encrypted")
        return _checked(key)
    if passphrase is None:
        raise input_error("key-encrypted", "The private key is encrypted; no passphrase given.")
    try:
        return _checked(loader(data, passphrase))
    except (ValueError, TypeError) as error:
        raise input_error(
            "wrong-passphrase", "The passphrase does not decrypt the private key."
        ) from error
    except UnsupportedAlgorithm as error:
        raise input_error(
            "unsupported-key-type", "The private key is encrypted with an unsupported cipher."
        ) from error


def load_chain(data: bytes | str, *, password: bytes | None = None) -> tuple[x509.Certificate, ...]:
    """Every certificate in `data`, in input order (PKCS#12: certificates only).

    Raises `InputError` with code `empty-input`, `unparseable-chain`,
    `private-key-in-chain`, or for a protected PKCS#12 `key-encrypted`/`wrong-passphrase`.
    """
    return _load_chain_and_key(data, password)[0]


def load_key(data: bytes | str, *, passphrase: bytes | None = None) -> PrivateKey:
    """The one private key in `data` (RSA or EC P-256/P-384).

    Raises `InputError` with code `empty-input`, `unparseable-key`, `key-encrypted`,
    `wrong-passphrase` or `unsupported-key-type`.
    """
    blocks, der = _decode(_to_bytes(data), "key")
    if der is not None:
        if _is_pkcs12(der):
            _, key = _open_pkcs12(der, passphrase)
            if key is None:
                raise input_error("unparseable-key", "The PKCS#12 file holds no private key.")
            return key
        return _load_private(serialization.load_der_private_key, der, passphrase)
    keys = [b for b in blocks if b.label.endswith("PRIVATE KEY")]
    if not keys:
        labels = sorted({b.label for b in blocks})
        if labels and set(labels) <= _CERT_LABELS | _PKCS7_LABELS:
            what = "The key input holds certificates, not a private key."
        elif labels:
            what = f"The key input holds no private key, only {', '.join(labels)} blocks."
        else:
            what = "The key input holds no PEM block."
        raise input_error("unparseable-key", what)
    if len({k.der for k in keys}) > 1:
        raise input_error(
            "unparseable-key", f"The key input holds {len(keys)} different private keys."
        )
    return _load_private(serialization.load_pem_private_key, keys[0].pem(), passphrase)


def load_pkcs12(
    data: bytes | str, *, password: bytes | None = None
) -> tuple[tuple[x509.Certificate, ...], PrivateKey]:
    """Chain and key of a PKCS#12 (`.p12`/`.pfx`, raw or base64)."""
    _, der = _decode(_to_bytes(data), "PKCS#12")
    if der is None or not _is_pkcs12(der):
        raise input_error("unparseable-chain", "The input is not a PKCS#12 file.")
    certs, key = _open_pkcs12(der, password)
    if key is None:
        raise input_error("unparseable-key", "The PKCS#12 file holds no private key.")
    if not certs:
        raise input_error("unparseable-chain", "The PKCS#12 file holds no certificate.")
    return certs, key


def load_material(
    chain_data: bytes | str,
    key_data: bytes | str | None = None,
    *,
    passphrase: bytes | None = None,
) -> Material:
    """The chain, and the key from `key_data` or else from a PKCS#12 chain input.

    `passphrase` opens both an encrypted key and a protected PKCS#12. An empty
    `key_data` counts as not given (an unset Action input is an empty string).
    """
    chain, bundled_key = _load_chain_and_key(chain_data, passphrase)
    if key_data is not None and _to_bytes(key_data).strip():
        return Material(chain, load_key(key_data, passphrase=passphrase))
    return Material(chain, bundled_key)

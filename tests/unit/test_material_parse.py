"""Every chain and key format the material loaders accept, and every way they refuse.

Inputs are built at run time with cryptography, and with the openssl command where it
is what users actually run (bag attributes, PKCS#7, the seed's encrypted key); data
goes through pipes, never files.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from cpi_cert_rotate import material
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.material import keys as material_keys
from pki_factory import (
    HAVE_OPENSSL,
    Pki,
    client_pki,
    der,
    key_pem,
    new_key,
    openssl,
    pem,
    pooled_key,
)

needs_openssl = pytest.mark.skipif(not HAVE_OPENSSL, reason="openssl command not installed")

KeyForm = Callable[[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey], bytes | str]

PASSWORD = b"abc123"  # the seed post's example passphrase


@pytest.fixture(scope="module")
def pki() -> Pki:
    return client_pki()


def _lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def _p12(pki: Pki, password: bytes | None) -> bytes:
    key = pki.leaf.key
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        b"cpi-client",
        key,
        pki.leaf.cert,
        [pki.intermediate.cert, pki.root.cert],
        encryption,
    )


# Each builder turns the PKI into one real-world spelling of its chain.
CHAIN_FORMS: dict[str, Callable[[Pki], bytes | str]] = {
    "pem": lambda p: pem(*p.chain),
    "pem-str": lambda p: pem(*p.chain).decode(),
    "pem-any-order": lambda p: pem(p.root.cert, p.leaf.cert, p.intermediate.cert),
    "pem-crlf": lambda p: pem(*p.chain).replace(b"\n", b"\r\n"),
    "pem-bom": lambda p: b"\xef\xbb\xbf" + pem(*p.chain),
    "pem-utf16-powershell": lambda p: pem(*p.chain).decode().replace("\n", "\r\n").encode("utf-16"),
    "base64-with-bom": lambda p: b"\xef\xbb\xbf" + base64.b64encode(pem(*p.chain)),
    "pem-text-around": lambda p: (
        b"notes from the CA portal\nsubject=CN = x\n"
        + pem(p.leaf.cert)
        + b"\nsomething in between\n"
        + pem(p.intermediate.cert, p.root.cert)
        + b"\n-- end --\n"
    ),
    # the seed's awk: every line followed by a literal \n (JSON and `cf set-env` form)
    "oneline-escaped-n": lambda p: "".join(f"{line}\\n" for line in _lines(pem(*p.chain))),
    "oneline-escaped-crlf": lambda p: "".join(f"{line}\\r\\n" for line in _lines(pem(*p.chain))),
    # the seed's manifest value: no separator at all between dashes and base64
    "oneline-no-separators": lambda p: "".join(_lines(pem(*p.chain))),
    # an unquoted `echo $CLI_CHAIN` turns newlines into spaces
    "oneline-spaces": lambda p: " ".join(_lines(pem(*p.chain))),
    # a JSON document holding the chain, with JSON's optional `\/` escape
    "json-document": lambda p: json.dumps({"chain": pem(*p.chain).decode()}).replace("/", "\\/"),
    "pkcs7-der": lambda p: pkcs7.serialize_certificates(list(p.chain), serialization.Encoding.DER),
    "pkcs7-pem": lambda p: pkcs7.serialize_certificates(list(p.chain), serialization.Encoding.PEM),
    "pkcs12-no-password": lambda p: _p12(p, None),
    "base64-of-pem": lambda p: base64.b64encode(pem(*p.chain)),
    "base64-of-pem-wrapped": lambda p: base64.encodebytes(pem(*p.chain)),
    "base64-of-pkcs7-der": lambda p: base64.b64encode(
        pkcs7.serialize_certificates(list(p.chain), serialization.Encoding.DER)
    ),
    "base64-of-pkcs12": lambda p: base64.b64encode(_p12(p, None)).decode(),
    "base64-of-base64-of-pem": lambda p: base64.b64encode(base64.b64encode(pem(*p.chain))),
}


@pytest.mark.parametrize("form", list(CHAIN_FORMS))
def test_chain_forms_load_all_three_certificates(form: str, pki: Pki) -> None:
    chain = material.load_chain(CHAIN_FORMS[form](pki))
    assert set(chain) == set(pki.chain)
    assert len(chain) == 3
    assert material.validate(chain).chain == pki.chain


def test_pem_keeps_input_order(pki: Pki) -> None:
    given = (pki.root.cert, pki.leaf.cert, pki.intermediate.cert)
    assert material.load_chain(pem(*given)) == given


def test_single_der_certificate(pki: Pki) -> None:
    assert material.load_chain(der(pki.leaf.cert)) == (pki.leaf.cert,)
    assert material.load_chain(base64.b64encode(der(pki.leaf.cert))) == (pki.leaf.cert,)


def test_pkcs12_with_password_needs_it(pki: Pki) -> None:
    data = _p12(pki, PASSWORD)
    assert set(material.load_chain(data, password=PASSWORD)) == set(pki.chain)
    with pytest.raises(InputError) as missing:
        material.load_chain(data)
    assert missing.value.code == "key-encrypted"
    with pytest.raises(InputError) as wrong:
        material.load_chain(data, password=b"nope")
    assert wrong.value.code == "wrong-passphrase"


def test_password_given_for_unprotected_pkcs12_is_forgiven(pki: Pki) -> None:
    assert len(material.load_chain(_p12(pki, None), password=PASSWORD)) == 3


@needs_openssl
def test_openssl_pkcs12_nokeys_output_with_bag_attributes(pki: Pki) -> None:
    text = openssl("pkcs12", "-nokeys", "-passin", "pass:pw", stdin=_p12(pki, b"pw"))
    assert b"Bag Attributes" in text
    assert b"subject=" in text
    assert set(material.load_chain(text)) == set(pki.chain)


@needs_openssl
@pytest.mark.parametrize("outform", ["PEM", "DER"])
def test_openssl_crl2pkcs7(outform: str, pki: Pki) -> None:
    data = openssl(
        "crl2pkcs7", "-nocrl", "-certfile", "/dev/stdin", "-outform", outform, stdin=pem(*pki.chain)
    )
    assert (b"-----BEGIN PKCS7-----" in data) == (outform == "PEM")
    assert set(material.load_chain(data)) == set(pki.chain)


@needs_openssl
def test_openssl_pkcs7_print_certs_output(pki: Pki) -> None:
    """The seed's `openssl pkcs7 -print_certs` output: subject/issuer lines and blank lines."""
    p7 = openssl("crl2pkcs7", "-nocrl", "-certfile", "/dev/stdin", stdin=pem(*pki.chain))
    printed = openssl("pkcs7", "-print_certs", stdin=p7)
    assert b"subject=" in printed
    assert set(material.load_chain(printed)) == set(pki.chain)


@needs_openssl
def test_openssl_trusted_certificate_block(pki: Pki) -> None:
    data = openssl("x509", "-trustout", "-addtrust", "clientAuth", stdin=pem(pki.leaf.cert))
    assert data.startswith(b"-----BEGIN TRUSTED CERTIFICATE-----")
    assert material.load_chain(data) == (pki.leaf.cert,)


@needs_openssl
def test_openssl_pkcs12_export_gives_chain_and_key(pki: Pki) -> None:
    p12 = openssl(
        "pkcs12", "-export", "-passout", "pass:pw", stdin=key_pem(pki.leaf.key) + pem(*pki.chain)
    )
    chain, key = material.load_pkcs12(p12, password=b"pw")
    assert chain[0] == pki.leaf.cert
    assert set(chain) == set(pki.chain)
    assert material.key_matches(key, pki.leaf.cert)


def test_load_pkcs12_returns_leaf_first_and_key(pki: Pki) -> None:
    chain, key = material.load_pkcs12(base64.b64encode(_p12(pki, PASSWORD)), password=PASSWORD)
    assert chain == pki.chain
    assert material.key_matches(key, pki.leaf.cert)


def test_load_pkcs12_refuses_other_inputs(pki: Pki) -> None:
    with pytest.raises(InputError) as not_p12:
        material.load_pkcs12(pem(*pki.chain))
    assert not_p12.value.code == "unparseable-chain"
    certs_only = pkcs12.serialize_key_and_certificates(
        None, None, None, list(pki.chain), serialization.NoEncryption()
    )
    with pytest.raises(InputError) as no_key:
        material.load_pkcs12(certs_only)
    assert no_key.value.code == "unparseable-key"


def test_load_material_takes_key_from_pkcs12_unless_key_given(pki: Pki) -> None:
    bundled = material.load_material(_p12(pki, PASSWORD), passphrase=PASSWORD)
    assert bundled.key is not None
    assert material.key_matches(bundled.key, pki.leaf.cert)
    other = pooled_key("rsa-2048", 5)
    explicit = material.load_material(_p12(pki, PASSWORD), key_pem(other), passphrase=PASSWORD)
    assert explicit.key is not None
    assert not material.key_matches(explicit.key, pki.leaf.cert)
    assert material.load_material(pem(*pki.chain), "").key is None
    assert "key=" not in repr(material.load_material(pem(*pki.chain), key_pem(other)))


# --- chain input errors ---------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", "", b"  \r\n\t ", "\n"])
def test_empty_chain(data: bytes | str) -> None:
    with pytest.raises(InputError) as error:
        material.load_chain(data)
    assert error.value.code == "empty-input"


def _damaged(pki: Pki) -> bytes:
    lines = pem(pki.leaf.cert).splitlines()
    return b"\n".join([*lines[:3], lines[3][:-3], *lines[4:]])


def _csr(pki: Pki) -> bytes:
    csr = material.build_csr(pki.leaf.key, copy_from=pki.leaf.cert)
    return csr.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("builder", "code", "words"),
    [
        (lambda p: b"hello world", "unparseable-chain", "neither PEM"),
        (lambda p: b"\x30\x03\x02\x01\x05", "unparseable-chain", "neither PEM"),
        (_damaged, "unparseable-chain", "not valid base64"),
        (
            lambda p: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "unparseable-chain",
            "not a valid X.509",
        ),
        (_csr, "unparseable-chain", "signing request"),
        (
            lambda p: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "unparseable-chain",
            "only PUBLIC KEY",
        ),
        (
            lambda p: b"-----BEGIN CERTIFICATE-----\nno end",
            "unparseable-chain",
            "no matching END line",
        ),
        (lambda p: pem(*p.chain) + key_pem(p.leaf.key), "private-key-in-chain", "PRIVATE KEY"),
        (
            lambda p: key_pem(p.leaf.key, fmt="traditional", password=b"x") + pem(p.leaf.cert),
            "private-key-in-chain",
            "PRIVATE KEY",
        ),
        (
            lambda p: key_pem(p.leaf.key, encoding=serialization.Encoding.DER),
            "private-key-in-chain",
            "(DER)",
        ),
        (
            lambda p: pem(p.leaf.cert) + key_pem(p.leaf.key)[:-80] + b"\n-----END PRIVATE KEY-----",
            "private-key-in-chain",
            "PRIVATE KEY block",
        ),
    ],
)
def test_chain_input_errors(
    builder: Callable[[Pki], bytes], code: str, words: str, pki: Pki
) -> None:
    with pytest.raises(InputError) as error:
        material.load_chain(builder(pki))
    assert error.value.code == code
    assert words in str(error.value)
    assert error.value.fix == material.PROBLEMS[code].fix


# --- keys -------------------------------------------------------------------------------


def _seed_encrypted_key() -> bytes:
    """`openssl genpkey -aes-256-cbc -algorithm RSA ... -pass pass:abc123`, as in the seed."""
    return openssl(
        "genpkey",
        "-aes-256-cbc",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-pass",
        f"pass:{PASSWORD.decode()}",
    )


KEY_FORMS: dict[str, KeyForm] = {
    "pkcs8-pem": key_pem,
    "pkcs8-pem-str": lambda k: key_pem(k).decode(),
    "traditional-pem": lambda k: key_pem(k, fmt="traditional"),
    "pkcs8-der": lambda k: key_pem(k, encoding=serialization.Encoding.DER),
    "traditional-der": lambda k: key_pem(k, fmt="traditional", encoding=serialization.Encoding.DER),
    "pkcs8-pem-crlf": lambda k: key_pem(k).replace(b"\n", b"\r\n"),
    "pkcs8-oneline-escaped": lambda k: "".join(f"{x}\\n" for x in _lines(key_pem(k))),
    "pkcs8-oneline-no-separators": lambda k: "".join(_lines(key_pem(k))),
    "base64-of-pem": lambda k: base64.b64encode(key_pem(k)),
    "base64-of-der": lambda k: base64.b64encode(key_pem(k, encoding=serialization.Encoding.DER)),
    "bag-attributes": lambda k: b"Key Attributes: <No Attributes>\n" + key_pem(k),
}

ENCRYPTED_KEY_FORMS: dict[str, KeyForm] = {
    "encrypted-pkcs8-pem": lambda k: key_pem(k, password=PASSWORD),
    "encrypted-pkcs8-der": lambda k: key_pem(
        k, password=PASSWORD, encoding=serialization.Encoding.DER
    ),
    "encrypted-traditional-pem": lambda k: key_pem(k, fmt="traditional", password=PASSWORD),
    "encrypted-traditional-oneline-escaped": lambda k: "".join(
        f"{x}\\n" for x in _lines(key_pem(k, fmt="traditional", password=PASSWORD))
    ),
    "encrypted-traditional-oneline-no-separators": lambda k: "".join(
        _lines(key_pem(k, fmt="traditional", password=PASSWORD))
    ),
    "encrypted-traditional-oneline-spaces": lambda k: " ".join(
        _lines(key_pem(k, fmt="traditional", password=PASSWORD))
    ),
    "pkcs12": lambda k: pkcs12.serialize_key_and_certificates(
        b"k", k, None, None, serialization.BestAvailableEncryption(PASSWORD)
    ),
}


@pytest.mark.parametrize("kind", ["rsa-2048", "ec-p256", "ec-p384"])
@pytest.mark.parametrize("form", list(KEY_FORMS))
def test_key_forms(form: str, kind: str) -> None:
    key = pooled_key(kind)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    loaded = material.load_key(KEY_FORMS[form](key))
    assert material_keys.public_key_der(loaded.public_key()) == material_keys.public_key_der(
        key.public_key()
    )


@pytest.mark.parametrize("kind", ["rsa-2048", "ec-p256"])
@pytest.mark.parametrize("form", list(ENCRYPTED_KEY_FORMS))
def test_encrypted_key_forms_need_the_passphrase(form: str, kind: str) -> None:
    key = pooled_key(kind)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    data = ENCRYPTED_KEY_FORMS[form](key)
    loaded = material.load_key(data, passphrase=PASSWORD)
    assert material_keys.public_key_der(loaded.public_key()) == material_keys.public_key_der(
        key.public_key()
    )
    with pytest.raises(InputError) as missing:
        material.load_key(data)
    assert missing.value.code == "key-encrypted"
    with pytest.raises(InputError) as wrong:
        material.load_key(data, passphrase=b"not-the-passphrase")
    assert wrong.value.code == "wrong-passphrase"


@needs_openssl
def test_seed_encrypted_key_from_openssl_genpkey() -> None:
    data = _seed_encrypted_key()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = material.load_key(data, passphrase=PASSWORD)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    with pytest.raises(InputError) as missing:
        material.load_key(data)
    assert missing.value.code == "key-encrypted"


@needs_openssl
@pytest.mark.parametrize("cipher", ["-des3", "-aes128", "-aes256"])
def test_openssl_traditional_encrypted_rsa_key_one_line(cipher: str) -> None:
    """`openssl rsa -des3 -traditional` writes Proc-Type/DEK-Info headers (8- or 16-byte IV)."""
    plain = key_pem(pooled_key("rsa-2048"))
    data = openssl("rsa", cipher, "-traditional", "-passout", "pass:abc123", stdin=plain)
    assert b"Proc-Type: 4,ENCRYPTED" in data
    for spelling in (data.decode(), "".join(_lines(data)), "\\n".join(_lines(data))):
        key = material.load_key(spelling, passphrase=PASSWORD)
        assert material_keys.key_pkcs8_pem(key).encode() == plain


def test_passphrase_given_for_plain_key_is_forgiven() -> None:
    key = pooled_key("ec-p256")
    assert material.key_matches(
        material.load_key(key_pem(key), passphrase=PASSWORD),
        x509.load_pem_x509_certificate(client_pki(key=key).leaf.pem),
    )


@pytest.mark.parametrize(
    ("builder", "code", "words"),
    [
        (lambda: b"", "empty-input", "empty"),
        (lambda: b"not a key at all", "unparseable-key", "could not be decoded"),
        (lambda: pem(client_pki().leaf.cert), "unparseable-key", "certificates, not a private key"),
        (
            lambda: key_pem(new_key("ec-p256")) + key_pem(new_key("ec-p256")),
            "unparseable-key",
            "2 different private keys",
        ),
        (
            lambda: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "unparseable-key",
            "could not be decoded",
        ),
        (lambda: key_pem(new_key("ed25519")), "unsupported-key-type", "Ed25519"),
        (lambda: key_pem(new_key("ec-p521")), "unsupported-key-type", "EC P-521"),
        (
            lambda: pkcs12.serialize_key_and_certificates(
                b"k", ed25519.Ed25519PrivateKey.generate(), None, None, serialization.NoEncryption()
            ),
            "unsupported-key-type",
            "Ed25519",
        ),
        (
            lambda: pkcs12.serialize_key_and_certificates(
                None, None, None, [client_pki().leaf.cert], serialization.NoEncryption()
            ),
            "unparseable-key",
            "holds no private key",
        ),
    ],
)
def test_key_input_errors(builder: Callable[[], bytes], code: str, words: str) -> None:
    with pytest.raises(InputError) as error:
        material.load_key(builder())
    assert error.value.code == code
    assert words in str(error.value)


def test_duplicate_key_blocks_are_one_key() -> None:
    key = pooled_key("ec-p256")
    assert material.key_matches(
        material.load_key(key_pem(key) + key_pem(key)),
        client_pki(key=key).leaf.cert,
    )


def test_certificate_with_malformed_extension_is_refused_at_load(pki: Pki) -> None:
    """An empty extendedKeyUsage violates its ASN.1 (SIZE (1..MAX)); refuse it up front."""
    broken = pki.intermediate.issue("broken-eku", eku=())
    with pytest.raises(InputError) as error:
        material.load_chain(pem(broken.cert, pki.intermediate.cert))
    assert error.value.code == "unparseable-chain"
    assert "Certificate 1 (O=Example Corp,CN=broken-eku) has a malformed extension" in str(
        error.value
    )


_WHITESPACE_BYTES = b" \t\n\r\x0b\x0c"


def _until_ends_in_whitespace(make: Callable[[], bytes]) -> bytes:
    """Repeat a randomised encoding until its last byte is one `bytes.strip` would drop."""
    for _ in range(5000):
        data = make()
        if data[-1] in _WHITESPACE_BYTES:
            return data
    raise AssertionError("no encoding ending in a whitespace byte in 5000 tries")


def test_der_inputs_ending_in_a_whitespace_byte_are_not_trimmed(pki: Pki) -> None:
    """About 1 DER key or certificate in 40 ends in 0x0a, 0x20 or the like.

    Trimming those bytes off broke the file (a PKCS#12 always ends in its fixed MAC
    iteration count, so it was never hit).
    """
    ec_key = new_key("ec-p256")
    key_der = _until_ends_in_whitespace(
        lambda: new_key("ec-p256").private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert (
        material.load_key(key_der).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        == key_der
    )

    builder = (
        x509.CertificateBuilder()
        .subject_name(pki.leaf.cert.subject)
        .issuer_name(pki.leaf.cert.subject)
        .public_key(ec_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.leaf.cert.not_valid_before_utc)
        .not_valid_after(pki.leaf.cert.not_valid_after_utc)
    )
    cert_der = _until_ends_in_whitespace(
        lambda: der(builder.sign(ec_key, hashes.SHA256()))  # ECDSA: a new signature each time
    )
    assert [der(cert) for cert in material.load_chain(cert_der)] == [cert_der]
    with pytest.raises(InputError) as error:
        material.load_chain(key_der)
    assert error.value.code == "private-key-in-chain"

"""No message of `material` may carry key material or a passphrase.

Every scenario that touches a key (every format, every refusal, every validation
problem) is run, and each message it produces (problem messages, `str()` and `hint()`
of every `InputError`, and the messages of their causes) is searched for the key's
base64 lines, in every encoding the scenarios fed in, and for the passphrase.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from cpi_cert_rotate import material
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.models import PrivateKey
from pki_factory import HAVE_OPENSSL, SERVER_AUTH, Pki, client_pki, key_pem, new_key, openssl, pem

PASSPHRASE = b"Zebra-Quartz-Lantern-8412"
WRONG = b"Wrong-Harbor-Violet-5530"


def _armour(line: str) -> bool:
    return line.startswith("-----") or line.startswith(("Proc-Type:", "DEK-Info:"))


def _needles(key: PrivateKey, inputs: list[bytes | str]) -> set[str]:
    """Body lines of every PEM the key was given in or can be written as, and its DER."""
    texts = [key_pem(key).decode(), key_pem(key, fmt="traditional").decode()]
    for data in inputs:
        if isinstance(data, bytes):
            try:
                texts.append(data.decode("ascii"))
            except UnicodeDecodeError:
                texts.append(base64.b64encode(data).decode())
        else:
            texts.append(data)
    needles = {
        line.strip()
        for text in texts
        for line in text.replace("\\n", "\n").splitlines()
        if len(line.strip()) >= 16 and not _armour(line.strip())
    }
    der = key_pem(key, encoding=serialization.Encoding.DER)
    needles.add(base64.b64encode(der).decode()[:40])
    needles.add(PASSPHRASE.decode())
    needles.add(WRONG.decode())
    return needles


def _messages(error: BaseException) -> Iterator[str]:
    yield str(error)
    yield repr(error)
    if isinstance(error, InputError):
        yield error.hint()
    if error.__cause__ is not None:
        yield from _messages(error.__cause__)


def _leaks(text: str, needles: set[str]) -> list[str]:
    return [needle for needle in needles if needle in text]


@pytest.fixture(scope="module")
def scenario() -> tuple[Pki, PrivateKey]:
    key = new_key("rsa-2048")
    return client_pki(key=key), key


def _key_inputs(key: PrivateKey, pki: Pki) -> list[bytes | str]:
    """The key in every spelling a scenario below feeds to a loader."""
    encrypted = key_pem(key, password=PASSPHRASE)
    traditional = key_pem(key, fmt="traditional", password=PASSPHRASE)
    plain = key_pem(key)
    assert not isinstance(key, type(new_key("ed25519")))
    p12 = pkcs12.serialize_key_and_certificates(
        b"k",
        key,  # type: ignore[arg-type]
        pki.leaf.cert,
        None,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    damaged = plain.replace(plain.splitlines()[5], plain.splitlines()[5][:-3])
    inputs: list[bytes | str] = [
        plain,
        encrypted,
        traditional,
        "".join(traditional.decode().splitlines()),
        "\\n".join(traditional.decode().splitlines()),
        key_pem(key, encoding=serialization.Encoding.DER, password=PASSPHRASE),
        base64.b64encode(encrypted),
        p12,
        damaged,
        plain + key_pem(new_key("ec-p256")),
    ]
    if HAVE_OPENSSL:
        inputs.append(
            openssl(
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:" + PASSPHRASE.decode(),
                stdin=plain,
            )
        )
    return inputs


def _attempts(pki: Pki, inputs: list[bytes | str]) -> Iterator[Callable[[], object]]:
    for data in inputs:
        for passphrase in (None, PASSPHRASE, WRONG):
            yield partial(material.load_key, data, passphrase=passphrase)
            yield partial(material.load_chain, data, password=passphrase)
            yield partial(material.load_material, pem(*pki.chain), data, passphrase=passphrase)
            yield partial(material.load_pkcs12, data, password=passphrase)
        yield partial(material.load_chain, pem(*pki.chain) + _as_bytes(data))


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def test_no_message_contains_key_material_or_passphrase(
    scenario: tuple[Pki, PrivateKey],
) -> None:
    pki, key = scenario
    inputs = _key_inputs(key, pki)
    needles = _needles(key, inputs)
    messages: list[str] = []
    codes: set[str] = set()
    for attempt in _attempts(pki, inputs):
        try:
            attempt()
        except InputError as error:
            codes.add(error.code)
            messages += _messages(error)
    # every validation problem involving this key, and raise_for_problems over them
    other = client_pki("other-client")
    expired = pki.intermediate.issue(days=-1, key=key, eku=(SERVER_AUTH,), digital_signature=False)
    for chain, used_key in [
        (pki.chain, key),
        (other.env_chain, key),
        ((expired.cert, pki.leaf.cert, other.root.cert, pki.leaf.cert), key),
        (pki.env_chain, new_key("ed25519")),
    ]:
        result = material.validate(chain, used_key, trusted_roots=[other.root.cert])
        codes.update(result.codes)
        messages += [p.message for p in result.problems]
        try:
            material.raise_for_problems(result)
        except InputError as error:
            messages += _messages(error)
    # the scenarios really produced the key-related refusals
    assert codes >= {
        "key-encrypted",
        "wrong-passphrase",
        "unparseable-key",
        "private-key-in-chain",
        "key-mismatch",
        "unsupported-key-type",
        "unparseable-chain",
    }
    assert len(messages) > 100
    leaked = {needle for text in messages for needle in _leaks(text, needles)}
    assert leaked == set()


def test_leak_check_would_notice_a_leak(scenario: tuple[Pki, PrivateKey]) -> None:
    pki, key = scenario
    needles = _needles(key, _key_inputs(key, pki))
    line = key_pem(key).decode().splitlines()[3]
    assert _leaks(f"could not read {line}!", needles) == [line]
    assert _leaks(f"pass was {PASSPHRASE.decode()}", needles) == [PASSPHRASE.decode()]

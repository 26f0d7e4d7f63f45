"""`cpi-cert-rotate inspect` and `format` through `cli.main`: exit codes, output, no writes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from checkout_kit import checkout_env
from cpi_cert_rotate import material
from cpi_cert_rotate.cli import main
from pki_factory import CA, Pki, client_pki, key_pem, pem, pooled_key

PASSPHRASE = "Marble-Falcon-Orbit-2291"
REPO = Path(__file__).resolve().parents[2]
FORMS = ("leaf", "bind-json", "manifest", "manifest-oneline", "env-chain")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return client_pki()


def write(tmp_path: Path, name: str, data: bytes) -> str:
    """A read-only input file (certificates only: keys travel through stdin)."""
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(0o444)
    return str(path)


def run(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: bytes = b"",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def roots(tmp_path: Path, pki: Pki) -> list[str]:
    """`--trusted-roots` with the test PKI's root: its chains are complete and anchored
    (without it, SAP's list applies and a root-less chain would be `chain-incomplete`)."""
    return ["--trusted-roots", write(tmp_path, "roots.pem", pem(pki.root.cert))]


def key_lines(key: object) -> list[str]:
    text = key_pem(key).decode()  # type: ignore[arg-type]
    return [line for line in text.splitlines() if not line.startswith("-----")][:-1]


# --- inspect ---------------------------------------------------------------------------


def test_inspect_json_shape_and_exit_0(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.chain))
    code, out, _ = run(
        ["inspect", "--chain", chain, "--key", "-", "--json", *roots(tmp_path, pki)],
        capsys,
        monkeypatch,
        stdin=key_pem(pki.leaf.key),
    )
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["leaf", "chain", "key_matches", "problems"]
    leaf = material.facts(pki.leaf.cert)
    assert data["leaf"]["subject"] == leaf.subject
    assert data["leaf"]["fingerprint_sha256"] == leaf.fingerprint_sha256
    assert set(data["leaf"]) == {
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "fingerprint_sha256",
        "key_type",
        "key_size",
        "days_remaining",
    }
    assert [list(c) for c in data["chain"]] == [["subject", "issuer", "not_after"]] * 3
    assert [c["subject"] for c in data["chain"]] == [c.subject.rfc4514_string() for c in pki.chain]
    assert data["key_matches"] is True
    assert data["problems"] == [
        {
            "code": "root-included",
            "severity": "info",
            "message": material.validate(pki.chain, trusted_roots=[pki.root.cert])
            .problems[0]
            .message,
        }
    ]


def test_inspect_error_level_problem_exits_2(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.env_chain))
    code, out, _ = run(
        ["inspect", "--chain", chain, "--key", "-", "--json", *roots(tmp_path, pki)],
        capsys,
        monkeypatch,
        stdin=key_pem(pooled_key("rsa-2048", 11)),
    )
    assert code == 2
    data = json.loads(out)
    assert data["key_matches"] is False
    assert [p["code"] for p in data["problems"]] == ["key-mismatch"]
    assert data["problems"][0]["severity"] == "error"


def test_inspect_unreadable_chain_reports_null_leaf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["inspect", "--chain", "-", "--json"], capsys, monkeypatch, b"nonsense")
    assert code == 2
    data = json.loads(out)
    assert data["leaf"] is None
    assert data["chain"] == []
    assert data["key_matches"] is None
    assert [p["code"] for p in data["problems"]] == ["unparseable-chain"]


def test_inspect_warning_only_exits_0(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.env_chain))
    code, out, _ = run(
        ["inspect", "--chain", chain, "--warn-days", "400", "--json", *roots(tmp_path, pki)],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert [p["code"] for p in json.loads(out)["problems"]] == ["leaf-expiring-soon"]


def test_inspect_encrypted_key_with_passphrase_env(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.env_chain))
    encrypted = key_pem(pki.leaf.key, password=PASSPHRASE.encode())
    argv = ["inspect", "--chain", chain, *roots(tmp_path, pki), "--key", "-", "--json"]
    outputs = []

    monkeypatch.setenv("KEY_PASS", PASSPHRASE)
    code, out, err = run([*argv, "--passphrase-env", "KEY_PASS"], capsys, monkeypatch, encrypted)
    assert (code, json.loads(out)["key_matches"]) == (0, True)
    outputs += [out, err]

    code, out, err = run(argv, capsys, monkeypatch, encrypted)
    assert code == 2
    assert [p["code"] for p in json.loads(out)["problems"]] == ["key-encrypted"]
    assert json.loads(out)["key_matches"] is None
    outputs += [out, err]

    monkeypatch.setenv("KEY_PASS", "not-" + PASSPHRASE)
    code, out, err = run([*argv, "--passphrase-env", "KEY_PASS"], capsys, monkeypatch, encrypted)
    assert code == 2
    assert [p["code"] for p in json.loads(out)["problems"]] == ["wrong-passphrase"]
    outputs += [out, err]

    code, out, err = run(
        [*argv[:-1], "--passphrase-env", "KEY_PASS"], capsys, monkeypatch, encrypted
    )
    assert "could not be read" in out
    outputs += [out, err]

    monkeypatch.delenv("KEY_PASS")
    code, out, err = run([*argv, "--passphrase-env", "KEY_PASS"], capsys, monkeypatch, encrypted)
    assert code == 2
    (problem,) = json.loads(out)["problems"]  # --json: a JSON document even for this
    assert problem["code"] == "missing-input"
    assert "the environment variable named by --passphrase-env" in problem["message"]
    assert err == ""
    outputs += [out, err]

    every_output = "\n".join(outputs)
    assert PASSPHRASE not in every_output
    for line in key_lines(pki.leaf.key) + encrypted.decode().splitlines()[1:-2]:
        assert line not in every_output


def test_inspect_has_no_passphrase_argument(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.env_chain))
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "--chain", chain, "--passphrase", PASSPHRASE])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "2 unrecognized argument(s)" in err  # not taken as --passphrase-env
    assert PASSPHRASE not in err  # and the mistyped secret is not echoed
    code = main(["inspect", "--chain", chain, "--passphrase-env", PASSPHRASE])
    assert code == 2
    assert PASSPHRASE not in capsys.readouterr().err


def test_inspect_pkcs12_chain_brings_its_key(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = pki.leaf.key
    assert isinstance(key, rsa.RSAPrivateKey)
    p12 = pkcs12.serialize_key_and_certificates(
        b"cpi",
        key,
        pki.leaf.cert,
        [pki.intermediate.cert],
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    monkeypatch.setenv("P12_PASS", PASSPHRASE)
    code, out, _ = run(
        [
            "inspect",
            "--chain",
            "-",
            "--json",
            *roots(tmp_path, pki),
            "--passphrase-env",
            "P12_PASS",
        ],
        capsys,
        monkeypatch,
        p12,
    )
    assert code == 0
    assert json.loads(out)["key_matches"] is True


def test_inspect_trusted_roots(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.env_chain))
    ours = write(tmp_path, "ours.pem", pem(CA.root("Unrelated").cert, pki.root.cert))
    theirs = write(tmp_path, "theirs.pem", pem(CA.root("Unrelated").cert))
    code, out, _ = run(
        ["inspect", "--chain", chain, "--trusted-roots", ours, "--json"], capsys, monkeypatch
    )
    assert (code, json.loads(out)["problems"]) == (0, [])
    code, out, _ = run(
        ["inspect", "--chain", chain, "--trusted-roots", theirs, "--json"], capsys, monkeypatch
    )
    assert code == 2
    assert [p["code"] for p in json.loads(out)["problems"]] == ["chain-incomplete"]
    code, out, _ = run(["inspect", "--chain", chain, "--json"], capsys, monkeypatch)
    assert code == 2, "a root-less chain under a root not on SAP's list is incomplete"
    assert [p["code"] for p in json.loads(out)["problems"]] == ["chain-incomplete"]
    full = write(tmp_path, "full.pem", pem(*pki.chain))
    code, out, _ = run(["inspect", "--chain", full, "--json"], capsys, monkeypatch)
    # With its root the chain is complete; that the root is not on SAP's list only warns.
    assert code == 0
    assert [p["code"] for p in json.loads(out)["problems"]] == [
        "root-not-on-sap-list",
        "root-included",
    ]
    bad = write(tmp_path, "bad.pem", b"")
    code, _, err = run(["inspect", "--chain", chain, "--trusted-roots", bad], capsys, monkeypatch)
    assert code == 2
    assert "--trusted-roots: The chain input is empty." in err


def test_inspect_readable_report(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = write(tmp_path, "chain.pem", pem(pki.root.cert, *pki.env_chain))
    code, out, _ = run(
        ["inspect", "--chain", chain, "--key", "-", *roots(tmp_path, pki)],
        capsys,
        monkeypatch,
        key_pem(pki.leaf.key),
    )
    assert code == 0
    assert f"Leaf        {pki.leaf.cert.subject.rfc4514_string()}" in out
    assert "Key         matches the leaf" in out
    assert "[root: left out of the env chain]" in out
    assert "  WARNING  chain-reordered\n" in out
    assert "  INFO     root-included\n" in out
    assert out.endswith("OK: no error-level problem.\n")
    expired = pki.intermediate.issue(days=-1)
    chain = write(tmp_path, "expired.pem", pem(expired.cert))
    code, out, _ = run(["inspect", "--chain", chain], capsys, monkeypatch)
    assert code == 2
    assert "  ERROR    leaf-expired\n" in out
    assert "Fix: Have the CA issue a new certificate." in out
    assert "  ERROR    chain-incomplete\n" in out  # the leaf alone: its issuer is missing
    assert out.endswith("Not usable: 2 error(s).\n")


def test_inspect_unreadable_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(["inspect", "--chain", str(tmp_path / "missing.pem")], capsys, monkeypatch)
    assert (code, out) == (2, "")
    assert "Cannot read the chain file" in err
    assert "No such file or directory" in err


def test_inspect_refuses_stdin_twice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["inspect", "--chain", "-", "--key", "-"], capsys, monkeypatch)
    assert code == 2
    assert "only one input can read standard input (`-`) [stdin-twice]" in err


def test_inspect_internal_failure_exits_1(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    chain = write(tmp_path, "chain.pem", pem(*pki.env_chain))
    monkeypatch.setattr(material, "validate", broken)
    code, out, err = run(["inspect", "--chain", chain, "--json"], capsys, monkeypatch)
    assert (code, out) == (1, "")
    assert "internal error: RuntimeError: simulated bug" in err


# --- format ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_format_prints_each_form(
    form: str,
    pki: Pki,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = write(tmp_path, "chain.pem", pem(pki.intermediate.cert, pki.leaf.cert))
    code, out, err = run(
        ["format", "--chain", chain, "--for", form, *roots(tmp_path, pki)], capsys, monkeypatch
    )
    assert code == 0
    leaf = pki.leaf.cert
    expected = {
        "leaf": material.leaf_pem(leaf),
        "bind-json": material.bind_json(leaf) + "\n",
        "manifest": material.manifest_snippet(leaf),
        "manifest-oneline": material.manifest_oneline(leaf) + "\n",
        "env-chain": pem(*pki.env_chain).decode(),
    }[form]
    assert out == expected
    if form == "env-chain":
        assert "warning: chain-reordered:" in err
    else:  # a form of the leaf alone: nothing about the order of the chain
        assert err == ""


def test_format_env_chain_keep_root_and_manifest_names(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.chain))
    code, out, _ = run(
        ["format", "--chain", chain, "--for", "env-chain", "--keep-root"], capsys, monkeypatch
    )
    assert (code, out) == (0, pem(*pki.chain).decode())
    code, out, _ = run(["format", "--chain", chain, "--for", "env-chain"], capsys, monkeypatch)
    assert (code, out) == (0, pem(*pki.env_chain).decode())
    code, out, _ = run(
        ["format", "--chain", chain, "--for", "manifest", "--app", "ntifext"],
        capsys,
        monkeypatch,
    )
    assert yaml.safe_load(out)["applications"][0]["name"] == "ntifext"


def test_format_refuses_material_with_errors(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expired = pki.intermediate.issue(days=-1)
    chain = write(tmp_path, "chain.pem", pem(expired.cert, pki.root.cert))
    code, out, err = run(["format", "--chain", chain, "--for", "bind-json"], capsys, monkeypatch)
    assert (code, out) == (2, "")
    assert "- chain-broken:" in err
    assert "- leaf-expired:" in err
    code, out, err = run(
        ["format", "--chain", "-", "--for", "leaf"], capsys, monkeypatch, key_pem(pki.leaf.key)
    )
    assert (code, out) == (2, "")
    assert "contains a PRIVATE KEY block" in err


# --- nothing is written ------------------------------------------------------------------

_AUDIT_SCRIPT = r"""
import io, json, os, sys
import cpi_cert_rotate.cli as cli
import cpi_cert_rotate.cli.format_cmd, cpi_cert_rotate.cli.inspect_cmd

chain_path, forms = sys.argv[1], sys.argv[2].split(",")
key = sys.stdin.buffer.read()
with open(chain_path, "rb") as handle:
    chain = handle.read()
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
MUTATING = {"os.rename", "os.remove", "os.mkdir", "os.truncate", "os.symlink", "os.link",
            "os.chmod", "os.chown", "os.utime", "shutil.copyfile", "shutil.move", "os.rmdir"}
seen = []

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS
        ):
            seen.append([event, str(path), str(mode), flags])
    elif event in MUTATING:
        seen.append([event, repr(args)])

sys.addaudithook(hook)
runs = [
    (["inspect", "--chain", chain_path, "--key", "-", "--passphrase-env", "KEY_PASS"], key),
    (["inspect", "--chain", chain_path, "--key", "-", "--passphrase-env", "KEY_PASS", "--json"],
     key),
    (["inspect", "--chain", "-", "--json"], chain),
    (["format", "--chain", "-", "--for", "env-chain", "--keep-root"], chain),
] + [(["format", "--chain", chain_path, "--for", form], b"") for form in forms]
codes, outputs = [], []
real_stdout = sys.stdout
for argv, data in runs:
    sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    sys.stdout = io.StringIO()
    codes.append(cli.main(argv))
    outputs.append(sys.stdout.getvalue())
sys.stdout = real_stdout
writes = list(seen)
with open(os.devnull, "w"):  # control: the hook must notice an ordinary write-open
    pass
print(json.dumps({"codes": codes, "writes": writes, "control": seen[len(writes):],
                  "outputs": outputs}))
"""


def test_inspect_and_format_open_no_file_for_writing(pki: Pki, tmp_path: Path) -> None:
    chain = write(tmp_path, "chain.pem", pem(*pki.chain))
    encrypted = key_pem(pki.leaf.key, password=PASSPHRASE.encode())
    env = checkout_env(KEY_PASS=PASSPHRASE, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-B", "-c", _AUDIT_SCRIPT, chain, ",".join(FORMS)],
        input=encrypted,
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["codes"] == [0] * (4 + len(FORMS))
    assert report["writes"] == []
    assert report["control"], "the audit hook did not see a write-open; the check is blind"
    assert json.loads(report["outputs"][1])["key_matches"] is True
    everything = result.stdout.decode() + result.stderr.decode()
    assert PASSPHRASE not in everything
    for line in key_lines(pki.leaf.key):
        assert line not in everything

"""Docs that run: every shell block of the README and docs/ is executed, page by page.

A page's runnable blocks run in order in one bash (`set -euo pipefail`), as a reader
pasting them one after the other would, in a fresh folder on a memory-backed file
system (`/dev/shm` when present: the example keys never reach a disk). The folder holds
links to the checkout (`.venv`, `scripts`, ...) and the files the certificate examples
name, minted for the run: `chain.pem` (leaf, intermediate and root), `chain.p7b`,
`privkey.pem` (encrypted PKCS#8; its passphrase is what `read` gets on stdin) and
`sap-roots.pem` (the chain's root, standing in for SAP's bundle). A stale example makes
its page fail; a block that cannot run here says why (`doc_blocks.py`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from doc_blocks import ROOT, pages, shell_blocks

from checkout_kit import checkout_env
from pki_factory import client_pki

pytestmark = pytest.mark.e2e

PASSPHRASE = "correct horse battery staple"
_LINKED = (".venv", "scripts", "src", "tests", "examples", "pyproject.toml", "requirements")


def _workspace() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = Path(tempfile.mkdtemp(prefix="docs-run-", dir=base))
    for name in _LINKED:
        (folder / name).symlink_to(ROOT / name)
    pki = client_pki()
    pem = serialization.Encoding.PEM
    # The whole chain, root included, as a CA hands it out: the test root cannot be on SAP's
    # list, and a chain without it would be refused as incomplete (the root is named instead)
    full_chain = b"".join(c.public_bytes(pem) for c in pki.chain)
    (folder / "chain.pem").write_bytes(full_chain)
    (folder / "chain.p7b").write_bytes(pkcs7.serialize_certificates(list(pki.chain), pem))
    (folder / "sap-roots.pem").write_bytes(pki.root.cert.public_bytes(pem))
    (folder / "privkey.pem").write_bytes(
        pki.leaf.key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    return folder


PAGES = [page for page in pages() if shell_blocks(page)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shell_block_of_the_page_runs(page: Path) -> None:
    blocks = shell_blocks(page)
    skipped = [b for b in blocks if b.not_run is not None]
    for block in skipped:
        assert block.not_run, f"{block.page}:{block.line}: `not run` needs a reason"
    runnable = [b for b in blocks if b.not_run is None]
    if not runnable:
        pytest.skip("; ".join(f"line {b.line}: {b.not_run}" for b in skipped))
    folder = _workspace()
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += "".join(f"# {b.page}:{b.line}\n{b.text}" for b in runnable)
    (folder / "page.sh").write_text(script)
    reader = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env = checkout_env(reader)  # the venv's tool, but this checkout's code
    result = subprocess.run(
        ["bash", "page.sh"],
        cwd=folder,
        input=PASSPHRASE + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    subprocess.run(["rm", "-rf", str(folder)], check=False)
    assert result.returncode == 0, (
        f"{page.name}: a shell block failed (exit {result.returncode})\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )


def test_blocks_that_do_not_run_say_why() -> None:
    for page in pages():
        for block in shell_blocks(page):
            assert block.not_run != "", f"{block.page}:{block.line}: empty `not run` reason"

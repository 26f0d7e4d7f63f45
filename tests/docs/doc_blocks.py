"""The shell blocks of the README and docs/: which run, which do not and why.

A fenced block whose info string is a shell (`bash`, `sh`, `shell`, `console`) is meant to
be copied into a terminal, so it is run by `test_docs_run.py`. A block that cannot run
here (it needs the `cf` CLI on a real landscape, a real Vault, GitHub) carries the line
`<!-- not run: REASON -->` directly above its fence; the reason is shown in the test's
output and must not be empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELLS = frozenset({"bash", "sh", "shell", "console", "zsh"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[\w-]*)[ \t]*$")
_NOT_RUN = re.compile(r"^[ \t]*<!-- not run:(?P<reason>.*?)-->[ \t]*$")


@dataclass(frozen=True)
class Block:
    """One fenced shell block: where it is, its text, and why it is not run (if so)."""

    page: str
    line: int
    text: str
    not_run: str | None


def pages() -> list[Path]:
    """The README and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_blocks(page: Path) -> list[Block]:
    """Every shell block of `page`, in order (indented fences in lists included)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    name = str(page.relative_to(ROOT))
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, info = opening["indent"], opening["info"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if info in SHELLS:
            body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
            marker = _NOT_RUN.match(lines[i - 1]) if i > 0 else None
            reason = marker["reason"].strip() if marker else None
            blocks.append(Block(name, i + 1, "\n".join(body) + "\n", reason))
        i = end + 1
    return blocks

"""The documents can never drift from the code: every `python X.py …` command in the
operator checklist, RUNBOOK.md, README.md and docs/ names a script that exists and whose
`--help` exits 0; every flag shown appears in that help."""

from __future__ import annotations

import re
from functools import cache

import pytest

from tests.conftest import ROOT, run_cli

DOCS = [
    "docs/DEPLOYMENT_CHECKLIST.md",
    "RUNBOOK.md",
    "README.md",
    "docs/update_procedures.md",
    "docs/dashboard.md",
    "docs/data_export.md",
]
CMD_RE = re.compile(r"python(?:3)?\s+([A-Za-z_][\w]*\.py)((?:[ \t]+[^\s|;&>`#)]+)*)")


def commands() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCS:
        path = ROOT / doc
        if not path.exists():
            continue
        for m in CMD_RE.finditer(path.read_text(encoding="utf-8")):
            found.append((doc, m.group(1), m.group(2).strip()))
    return found


@cache
def help_text(script: str) -> tuple[int, str]:
    """``python <script> --help``, in process (tests/test_shims.py runs each as a real process)."""
    res = run_cli(script, "--help", cwd=ROOT)
    return res.returncode, res.stdout + res.stderr


def test_documents_exist_and_name_commands():
    for doc in ("docs/DEPLOYMENT_CHECKLIST.md", "RUNBOOK.md", "README.md"):
        assert (ROOT / doc).exists(), f"{doc} is missing"
    assert len(commands()) > 30


@pytest.mark.parametrize("doc,script,args", commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_command_exists_and_help_works(doc, script, args):
    assert (ROOT / script).exists(), f"{doc} shows `python {script}` but {script} does not exist"
    code, text = help_text(script)
    assert code == 0, f"`python {script} --help` exited {code}: {text[-500:]}"
    for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", args):
        assert flag in text, f"{doc} shows `python {script} {args}` but {script} has no {flag}"


def test_every_test_file_the_docs_and_code_name_exists():
    """A path like tests/<package>/test_x.py in a document or a docstring points at a real file."""
    pattern = re.compile(r"\btests/[\w/]+\.py\b")
    sources = [*ROOT.glob("*.md"), *(ROOT / "docs").rglob("*.md"), *(ROOT / "polybot").rglob("*.py")]
    missing = sorted(
        {
            f"{src.relative_to(ROOT)}: {m}"
            for src in sources
            for m in pattern.findall(src.read_text(encoding="utf-8"))
            if not (ROOT / m).exists()
        }
    )
    assert not missing, missing

"""`polybot init-config`: the example configuration an installed polybot ships, written whole or not
at all, never over an existing config.yaml; the packaged example is the project root's file."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from polybot.commands import run_command
from polybot.config import example_config_text, load_config
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _restore_umask():
    """The commands set umask 077 for their process (this one, in process): put it back."""
    old = os.umask(0o077)
    os.umask(old)
    yield
    os.umask(old)


def test_the_packaged_example_is_the_root_example_byte_for_byte():
    # The checklist copies the root file; an installed polybot has only the packaged copy.
    assert (ROOT / "polybot" / "config.yaml.example").read_bytes() == (
        ROOT / "config.yaml.example"
    ).read_bytes()
    assert example_config_text() == (ROOT / "config.yaml.example").read_text(encoding="utf-8")


def test_init_config_writes_the_example_owner_only_and_it_validates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_command("init-config", []) == 0
    written = tmp_path / "config.yaml"
    assert written.read_text(encoding="utf-8") == (ROOT / "config.yaml.example").read_text(encoding="utf-8")
    if sys.platform != "win32":
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "Wrote config.yaml" in capsys.readouterr().out
    assert load_config(written).mode == "paper"  # the example is a working paper configuration
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temporary file left


def test_init_config_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("mode: live\n", encoding="utf-8")
    assert run_command("init-config", []) != 0
    assert (tmp_path / "config.yaml").read_text(encoding="utf-8") == "mode: live\n"
    err = capsys.readouterr().err
    assert "config.yaml already exists" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_a_missing_config_names_init_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_command("validate-config", []) != 0
    out = "".join(capsys.readouterr())  # validate-config prints its ✗ lines on stdout
    assert "polybot init-config" in out and "Traceback" not in out

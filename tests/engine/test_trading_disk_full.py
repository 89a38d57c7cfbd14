"""Issue 15 #1 and #5: the trading bot on a disk that fills up while it trades.

Before: writing the halt file failed first → exit 1 with three chained tracebacks, no
halts row, no halted state, a 0-byte ``trading_bot.tmp``, no Telegram alert, and the bot
started again without ``--restart`` once space was freed. Now: a Telegram alert first
(Telegram needs no disk), the halt latched in space reserved at start-up, one sentence
that says to free space (not to restore a backup), exit 5, and a refused restart until
the operator acknowledges it with ``--restart``.
"""

from __future__ import annotations

import pytest

from tests.alerts.helpers import telegram_section
from tests.engine.helpers import load, make_workspace, query, run_bot, start_bot, wait_for
from tests.resources import fill, tmpfs


def fill_while_trading(root, fs):
    """Start the bot, wait for its first heartbeat, fill ``fs`` to the last byte, wait for the
    bot to stop: (exit code, its output, the ballast file)."""
    proc = start_bot(root)
    try:
        wait_for(
            lambda: query(root, "SELECT 1 FROM bot_state WHERE key='heartbeat'") or proc.poll() is not None,
            90,
            what="the bot's first heartbeat",
        )
        assert proc.poll() is None, (root / "bot.out").read_text()[-3000:]
        ballast = fill(fs)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, (root / "bot.out").read_text(), ballast


@pytest.fixture
def data_fs(tmp_path):
    with tmpfs(tmp_path / "data", "32m") as mnt:
        yield mnt


def test_data_disk_fills_while_trading(tmp_path, fast_sim, fake_tg, data_fs):
    root = make_workspace(
        tmp_path, fast_sim, telegram=telegram_section(fake_tg), alerts={"critical": ["log", "telegram"]}
    )
    code, out, ballast = fill_while_trading(root, data_fs)
    assert code == 5, out[-3000:]
    assert "Traceback" not in out and "--- Logging error ---" not in out, out[-3000:]
    last = [ln for ln in out.splitlines() if ln.startswith("Error:")]
    assert len(last) == 1 and "disk full" in last[0] and "do not restore" in last[0], out[-2000:]
    assert not (data_fs / "trading_bot.tmp").exists()  # no 0-byte leftover
    halt_file = data_fs / "trading_bot.halted"
    assert halt_file.exists() and "disk full" in halt_file.read_text()  # latched in reserved space
    assert wait_for(lambda: any("disk full" in m for m in fake_tg.messages()), 20, what="the Telegram alert")

    ballast.unlink()  # the operator frees space...
    res = run_bot(root, "--once")  # ...and a plain start is still refused
    assert res.returncode == 5 and "--restart" in res.stderr, res.stderr
    res = run_bot(root, "--restart", "--max-runtime", "2")
    assert res.returncode == 0, res.stderr
    assert not halt_file.exists()
    assert query(root, "SELECT value FROM bot_state WHERE key='halted'")[0][0] == "0"
    assert load(root).database_path.exists()


@pytest.fixture
def logs_fs(tmp_path):
    with tmpfs(tmp_path / "logs", "4m") as mnt:
        yield mnt


def test_logs_disk_fills_while_trading(tmp_path, fast_sim, fake_tg, logs_fs):
    """Before: the bot kept trading with no log and no alert, printing 74 tracebacks in 8 s."""
    # DEBUG: the bot writes to its log at every iteration, so the room left in the last page of its
    # log file (tmpfs allocates 4 KiB pages) is used up seconds after the fill, not after 40 s of
    # INFO lines
    root = make_workspace(
        tmp_path,
        fast_sim,
        telegram=telegram_section(fake_tg),
        alerts={"critical": ["log", "telegram"]},
        log_level="DEBUG",
    )
    code, out, _ = fill_while_trading(root, logs_fs)
    assert code == 5, out[-3000:]
    assert "Traceback" not in out and "--- Logging error ---" not in out, out[-3000:]
    assert sum("cannot be written" in ln for ln in out.splitlines() if ln.startswith("Error:")) >= 1
    assert query(root, "SELECT value FROM bot_state WHERE key='halted'")[0][0] == "1"
    assert "log file" in query(root, "SELECT reason FROM halts ORDER BY id DESC LIMIT 1")[0][0]
    assert wait_for(lambda: any("log file" in m for m in fake_tg.messages()), 20, what="the Telegram alert")

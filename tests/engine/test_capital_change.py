"""Issue 15 #2: changing `capital` is a deposit or a withdrawal, never profit or loss.

Before: raising `capital` mid-day tripped the daily-loss breaker ("today's P&L fell to
−$200.00"), because the day's baseline was recomputed from the new capital while the
equity recorded earlier that day came from the old one, and `--restart` then blocked
entries until 00:00 UTC.
"""

from __future__ import annotations

import yaml

from tests.engine.helpers import make_workspace, query, run_bot


def _set_capital(root, capital: float) -> None:
    path = root / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data["capital"] = capital
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_capital_changes_are_cash_flows_not_pnl(tmp_path, fast_sim):
    root = make_workspace(
        tmp_path, fast_sim, capital=500, risk_limits={"daily_loss_limit": 100, "max_position_size": 100}
    )
    res = run_bot(root, "--max-runtime", "3")
    assert res.returncode == 0, res.stderr
    assert query(root, "SELECT COUNT(*) FROM capital_flows")[0][0] == 0  # first seen: no flow

    for capital, delta in ((700, 200), (300, -400)):  # a deposit, then a withdrawal
        _set_capital(root, capital)
        res = run_bot(root, "--max-runtime", "3")
        assert res.returncode == 0, res.stderr  # no daily-loss halt
        assert "recorded as a " + ("deposit" if delta > 0 else "withdrawal") in res.stderr
        assert tuple(
            query(root, "SELECT amount_micro, capital_micro FROM capital_flows ORDER BY id DESC LIMIT 1")[0]
        ) == (delta * 1_000_000, capital * 1_000_000)
        assert query(root, "SELECT COUNT(*) FROM halts")[0][0] == 0
        (pnl,) = query(root, "SELECT daily_pnl_micro FROM performance ORDER BY id DESC LIMIT 1")[0]
        assert abs(pnl) < 50 * 1_000_000, pnl  # trading P&L only, not ±$200 / ±$400
    # an unchanged capital records nothing more
    res = run_bot(root, "--max-runtime", "2")
    assert res.returncode == 0 and query(root, "SELECT COUNT(*) FROM capital_flows")[0][0] == 2

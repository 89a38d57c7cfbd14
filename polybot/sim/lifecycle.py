"""Trade lifecycle on the sim clock (RULES.md §7).

MATCHED at match time → MINED after ``mined_after`` → CONFIRMED after ``confirmed_after``
(sim seconds); a trade marked ``fail`` goes MATCHED → RETRYING → FAILED on the same
schedule, and at FAILED its settlement is reversed on its account (cash incl. fee,
shares, cost basis) — each party of a match owns one Trade, and both fail together.
Statuses: py-sdk ``models/clob/account.py`` (MATCHED, MINED, CONFIRMED, RETRYING, FAILED).
"""

from __future__ import annotations

TERMINAL = ("CONFIRMED", "FAILED")


def advance(ex, now: float) -> None:
    """Move every pending trade to the status its age implies (reversing FAILED ones)."""
    if not ex.pending:
        return
    still = []
    for tr in ex.pending:
        age = now - tr.match_time
        if age >= ex.confirmed_after:
            tr.status = "FAILED" if tr.fail else "CONFIRMED"
            tr.last_update = tr.match_time + ex.confirmed_after
            if tr.fail:
                _reverse(tr)
            continue
        if age >= ex.mined_after:
            status = "RETRYING" if tr.fail else "MINED"
            if tr.status != status:
                tr.status, tr.last_update = status, tr.match_time + ex.mined_after
        still.append(tr)
    ex.pending = still


def _reverse(tr) -> None:
    acct, d = tr.account, tr.delta
    if not d:
        return
    acct.cash -= d["cash"]
    for k in ("positions", "cost", "bought", "realized"):
        book = getattr(acct, k)
        book[tr.token] = book.get(tr.token, 0) - d[k]
    tr.delta = {}


def mark_failing(ex, acct, trade_ids=None, next_n: int = 0) -> dict:
    """Mark trades of ``acct`` (not yet terminal) to fail, and/or its next N trades."""
    marked = []
    for tid in trade_ids or []:
        tr = next((x for x in ex.trades if x.id == str(tid) and x.account is acct), None)
        if tr is None:
            raise KeyError(f"trade {tid} of account {acct.address} does not exist in the simulator")
        if tr.status in TERMINAL:
            raise ValueError(
                f"trade {tid} is already {tr.status}; only MATCHED/MINED trades can be made to fail"
            )
        for x in (tr, tr.peer):
            if x is not None:
                x.fail = True
                if x.status == "MINED":
                    x.status = "RETRYING"
        marked.append(tr.id)
    if next_n < 0:
        raise ValueError("next must be a non-negative number of trades")
    acct.fail_next += int(next_n)
    return {"marked": marked, "pending_next": acct.fail_next}


def set_delays(ex, mined_after=None, confirmed_after=None) -> dict:
    mined = float(ex.mined_after if mined_after is None else mined_after)
    confirmed = float(ex.confirmed_after if confirmed_after is None else confirmed_after)
    if not 0 <= mined <= confirmed:
        raise ValueError("delays must satisfy 0 <= mined_after <= confirmed_after (sim seconds)")
    ex.mined_after, ex.confirmed_after = mined, confirmed
    return delays_json(ex)


def delays_json(ex) -> dict:
    return {"mined_after": ex.mined_after, "confirmed_after": ex.confirmed_after}

"""``python test_api_connectivity.py --live-order-check [--yes]`` as the operator runs it (a
real subprocess) against the local simulator over real HTTP.

What happened is read from the simulator's own state (its order store), never from our
client, and from the ``job_runs`` row the check records for pre_launch_check.py.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
import requests
import yaml
from py_clob_client_v2 import ClobClient

from polybot import db
from polybot.config import load_config
from tests.conftest import run_cli, sim_urls, write_config

KEY_A = "0x" + "a1" * 32  # test-only keys
KEY_B = "0x" + "b2" * 32
OTHER_WALLET = "0x" + "c3" * 20


def creds_for(sim, key: str) -> dict:
    """The API credentials the simulator issues to ``key`` (L1 derive, as an operator would)."""
    c = ClobClient(host=sim.clob_url, chain_id=137, key=key).create_or_derive_api_key()
    return {
        "POLYMARKET_API_KEY": c.api_key,
        "POLYMARKET_API_SECRET": c.api_secret,
        "POLYMARKET_API_PASSPHRASE": c.api_passphrase,
    }


def workspace(
    tmp_path, sim, *, signature_type: int = 0, funder: bool = False, paper: bool = True, init_db: bool = True
):
    cfg = sim_urls(sim)
    cfg["paper_trading"] = paper
    cfg["polymarket"].update(
        private_key="${POLYMARKET_PRIVATE_KEY}",
        api_key="${POLYMARKET_API_KEY}",
        api_secret="${POLYMARKET_API_SECRET}",
        api_passphrase="${POLYMARKET_API_PASSPHRASE}",
        signature_type=signature_type,
    )
    if funder:
        cfg["polymarket"]["funder_address"] = "${POLYMARKET_FUNDER_ADDRESS}"
    write_config(tmp_path, cfg)
    if init_db:
        db.initialize(load_config(tmp_path / "config.yaml", require_mode_secrets=False).database_path)
    return tmp_path


def check(ws, env, *args, input=""):
    return run_cli("test_api_connectivity.py", "--live-order-check", *args, cwd=ws, env=env, input=input)


def lines(proc) -> list[str]:
    return [ln for ln in proc.stdout.splitlines() if ln.strip()]


def fails(proc) -> list[str]:
    return [ln for ln in lines(proc) if ln.startswith("✗")]


def runs(ws) -> list[dict]:
    conn = sqlite3.connect(ws / "data" / "polymarket.db")
    try:
        rows = conn.execute(
            "SELECT started_at, finished_at, exit_code, detail FROM job_runs "
            "WHERE job = 'live_order_check' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [{"started_at": r[0], "finished_at": r[1], "exit_code": r[2], **json.loads(r[3])} for r in rows]


def sim_orders(sim) -> dict:
    """{order id: status} from the simulator's own order store."""
    return {oid: o.status for oid, o in sim.sim.exchange.orders.items()}


def admin(sim, path: str, body: dict) -> requests.Response:
    return requests.post(f"{sim.url}/_sim/{path}", json=body, timeout=5)


def test_passes_against_the_simulator_and_is_recorded(tmp_path, sim):
    ws = workspace(tmp_path, sim, paper=True)  # works whatever paper_trading says
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}
    proc = check(ws, env, "--yes")
    out = lines(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not fails(proc)
    signed = [ln for ln in out if ln.startswith("✓ Order signed: 0x")]
    assert len(signed) == 1
    oid = signed[0].rsplit(" ", 1)[1]
    assert f"✓ Order listed as open: {oid}" in out
    assert f"✓ Order cancelled: {oid}" in out
    assert any(ln.startswith(f"✓ Order gone: {oid}") for ln in out)
    assert out[-1].startswith("✓ Live order check passed")
    # the exchange's own record: one order, placed by this check and cancelled
    assert sim_orders(sim) == {oid: "CANCELED"}
    placed = sim.sim.exchange.orders[oid]
    assert placed.side == "BUY" and placed.order_type == "GTC" and placed.matched == 0
    assert placed.ticks == 1  # the lowest tick
    (row,) = runs(ws)
    assert row["exit_code"] == 0 and row["result"] == "pass" and row["order_id"] == oid
    assert row["clob_url"] == sim.clob_url and row["signature_type"] == 0
    assert row["finished_at"] >= row["started_at"]
    for secret in (KEY_A[2:], env["POLYMARKET_API_SECRET"], env["POLYMARKET_API_PASSPHRASE"]):
        assert secret not in proc.stdout + proc.stderr
        assert secret not in json.dumps(row)


@pytest.mark.parametrize("answer, placed", [("", False), ("n\n", False), ("y\n", True)])
def test_asks_before_placing_unless_yes(tmp_path, sim, answer, placed):
    ws = workspace(tmp_path, sim)
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}
    proc = check(ws, env, input=answer)
    assert "REAL post-only BUY" in proc.stdout
    if placed:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert list(sim_orders(sim).values()) == ["CANCELED"]
    else:
        assert proc.returncode == 1
        assert fails(proc) == [
            "✗ Not confirmed: nothing was sent; answer y, or pass --yes to run it unattended."
        ]
        assert sim_orders(sim) == {}
        assert runs(ws) == []  # nothing happened: nothing to record


def test_missing_credential_is_one_sentence_naming_the_env_var(tmp_path, sim):
    ws = workspace(tmp_path, sim)
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}
    env.pop("POLYMARKET_API_SECRET")
    proc = check(ws, env, "--yes")
    assert proc.returncode == 1
    assert fails(proc) == [
        "✗ Credentials: polymarket.api_secret is not set; export POLYMARKET_API_SECRET — "
        "the live order check needs the live credentials whatever paper_trading says."
    ]
    assert sim_orders(sim) == {}
    assert [r["result"] for r in runs(ws)] == ["fail"]


def test_signature_type_2_without_a_funder_is_refused_before_any_order(tmp_path, sim):
    ws = workspace(tmp_path, sim, signature_type=2)
    proc = check(ws, {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}, "--yes")
    assert proc.returncode == 1
    (line,) = fails(proc)
    # refused by the config's own signing rule (config.py) or, failing that, by the check
    assert line.startswith(
        ("✗ Config: signature_type 2", "✗ Credentials: polymarket.funder_address is not set")
    ), line
    assert "POLYMARKET_FUNDER_ADDRESS" in line
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sim_orders(sim) == {}


def test_a_key_that_does_not_own_the_api_credentials_fails_with_one_sentence(tmp_path, sim):
    ws = workspace(tmp_path, sim)
    proc = check(ws, {"POLYMARKET_PRIVATE_KEY": KEY_B, **creds_for(sim, KEY_A)}, "--yes")
    assert proc.returncode == 1, proc.stdout
    (line,) = fails(proc)
    assert line.startswith("✗ Authentication:") or line.startswith("✗ Placing the order:"), line
    assert "401" in line or "API KEY" in line
    assert "POLYMARKET_" in line  # names what to fix
    assert not any(o == "LIVE" for o in sim_orders(sim).values())
    assert "Traceback" not in proc.stdout + proc.stderr
    assert [r["result"] for r in runs(ws)] == ["fail"]


def test_a_malformed_private_key_fails_with_one_sentence(tmp_path, sim):
    ws = workspace(tmp_path, sim)
    bad = "0x1234deadbeef"
    proc = check(ws, {"POLYMARKET_PRIVATE_KEY": bad, **creds_for(sim, KEY_A)}, "--yes")
    assert proc.returncode == 1
    (line,) = fails(proc)
    assert line.startswith("✗ Config: Config key 'polymarket.private_key' is not a private key"), line
    assert bad not in proc.stdout + proc.stderr and "1234deadbeef" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sim_orders(sim) == {}


def test_no_database_is_one_sentence_and_nothing_is_placed(tmp_path, sim):
    ws = workspace(tmp_path, sim, init_db=False)
    proc = check(ws, {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}, "--yes")
    assert proc.returncode == 1
    (line,) = fails(proc)
    assert "run python initialize_db.py first" in line
    assert sim_orders(sim) == {}


def registered_funder(sim, key: str, signature_type: int) -> str:
    """The wallet the simulator registered for ``key`` and this signature type (RULES.md)."""
    from eth_account import Account

    acct = requests.get(
        f"{sim.url}/_sim/accounts", params={"address": Account.from_key(key).address}, timeout=5
    ).json()
    return acct["funders"][str(signature_type)]


@pytest.mark.parametrize(
    "signature_type, message, wallet",
    [
        (1, "invalid POLY_PROXY signature", "proxy wallet"),
        (2, "invalid signature", "Safe"),
        (3, "the order signer address has to be the address of the API KEY", "deposit wallet"),
    ],
)
def test_a_wrong_funder_fails_with_one_sentence(tmp_path, sim, signature_type, message, wallet):
    """A funder that is not the key's proxy / Safe (RULES.md §1 check 6)."""
    ws = workspace(tmp_path, sim, signature_type=signature_type, funder=True)
    env = {
        "POLYMARKET_PRIVATE_KEY": KEY_A,
        "POLYMARKET_FUNDER_ADDRESS": OTHER_WALLET,
        **creds_for(sim, KEY_A),
    }
    proc = check(ws, env, "--yes")
    assert proc.returncode == 1, proc.stdout
    (line,) = fails(proc)
    assert line.startswith(f"✗ Placing the order: the exchange rejected it ({message}"), line
    assert "POLYMARKET_FUNDER_ADDRESS" in line and wallet in line
    assert not any(s == "LIVE" for s in sim_orders(sim).values())
    assert [r["result"] for r in runs(ws)] == ["fail"]


@pytest.mark.parametrize("signature_type", [1, 2, 3])
def test_the_right_funder_passes(tmp_path, sim, signature_type):
    """The same account with its registered proxy / Safe / deposit wallet as the funder (the
    control for the test above): the exchange's order carries that wallet as its maker (type 3:
    also as its signer, with the ERC-7739 wrap the simulator verifies, RULES.md §1 check 5)."""
    ws = workspace(tmp_path, sim, signature_type=signature_type, funder=True)
    creds = creds_for(sim, KEY_A)
    wallet = registered_funder(sim, KEY_A, signature_type)
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, "POLYMARKET_FUNDER_ADDRESS": wallet, **creds}
    proc = check(ws, env, "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (oid,) = sim_orders(sim)
    assert sim.sim.exchange.orders[oid].maker.lower() == wallet.lower()
    assert sim.sim.exchange.orders[oid].signature_type == signature_type
    assert sim_orders(sim) == {oid: "CANCELED"}
    (row,) = runs(ws)
    assert row["funder"] == wallet.lower() and row["signature_type"] == signature_type


def test_cancel_only_exchange_fails_with_one_sentence(tmp_path, sim):
    ws = workspace(tmp_path, sim)
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}
    res = admin(sim, "mode", {"mode": "cancel-only"})
    assert res.status_code == 200, res.text
    proc = check(ws, env, "--yes")
    assert proc.returncode == 1, proc.stdout
    (line,) = fails(proc)
    assert line.startswith("✗ Placing the order: the exchange is not accepting new orders now"), line
    assert "503" in line and "cancel-only" in line
    assert sim_orders(sim) == {}
    assert [r["result"] for r in runs(ws)] == ["fail"]


def test_an_unreadable_answer_still_leaves_nothing_open(tmp_path, sim):
    """The exchange places the order but its answer is cut off: the check reports one ✗,
    finds the order by its id and cancels it."""
    ws = workspace(tmp_path, sim)
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}
    sim.sim.set_faults(malformed=1, path="/clob/order")
    proc = check(ws, env, "--yes")
    assert proc.returncode == 1, proc.stdout
    assert len(fails(proc)) == 1, proc.stdout
    (line,) = fails(proc)
    assert line.startswith("✗ Placing the order: no clear answer from the exchange"), line
    (oid,) = sim_orders(sim)
    assert f"order {oid} did reach the exchange and was cancelled" in line
    assert sim_orders(sim) == {oid: "CANCELED"}
    assert [(r["result"], r["order_id"]) for r in runs(ws)] == [("fail", oid)]


def test_an_order_the_exchange_processes_after_the_timeout_is_found_and_cancelled(tmp_path, sim):
    """POST /order answers only after the client gave up (it is processed late): the check
    keeps looking for it by id and cancels it when it appears."""
    ws = workspace(tmp_path, sim)
    cfg = yaml.safe_load((ws / "config.yaml").read_text())
    cfg["polymarket"]["timeout_seconds"] = 1
    write_config(ws, base=cfg)
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}
    sim.sim.set_faults(timeout="3:1", path="/clob/order")
    proc = check(ws, env, "--yes")
    assert proc.returncode == 1, proc.stdout
    assert len(fails(proc)) == 1, proc.stdout
    (line,) = fails(proc)
    assert line.startswith("✗ Placing the order: no clear answer from the exchange"), line
    (oid,) = sim_orders(sim)
    assert f"order {oid} did reach the exchange and was cancelled" in line
    assert sim_orders(sim) == {oid: "CANCELED"}


@pytest.mark.parametrize(
    "message, sig_type, fix",
    [
        # messages the real CLOB returns (docs.polymarket.com/resources/error-codes; issues cited in docs/dev/signature_types.md)
        (
            "the order signer address has to be the address of the API KEY",
            3,
            "deployed deposit wallet of this key",
        ),
        ("the order signer address has to be the address of the API KEY", 0, "derive POLYMARKET_API_KEY"),
        ("the order owner has to be the owner of the API KEY", 0, "export the matching trio"),
        ("maker address not allowed, please use the deposit wallet flow", 2, "signature_type: 3"),
        ("invalid signature", 2, "the Polymarket Safe this key controls"),
        ("invalid POLY_PROXY signature", 1, "the Polymarket proxy wallet this key controls"),
        ("invalid signature", 0, "set signature_type 1, 2 or 3"),
        ("not enough balance / allowance", 2, "deposit funds / approve trading"),
        ("invalid post-only order: order crosses book", 0, "rerun the check"),
        ("'0xabc' address in closed only mode", 0, "may only close positions"),
    ],
)
def test_each_exchange_refusal_gets_its_fix(message, sig_type, fix):
    from polybot.exchange.live_order_check import advice_for

    assert fix in advice_for(message, sig_type)


def test_pre_launch_check_accepts_the_recorded_pass_for_this_config_only(tmp_path, sim, monkeypatch):
    """The row the check writes is the one pre_launch_check.py reads (real run → real reader)."""
    import dataclasses
    import time

    from polybot.ops.prelaunch import check_live_order

    ws = workspace(tmp_path, sim)
    env = {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}
    assert check(ws, env, "--yes").returncode == 0
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = load_config(ws / "config.yaml", require_mode_secrets=False)
    conn = db.connect(cfg.database_path, readonly=True)
    try:
        item = check_live_order(cfg, conn, time.time())
        assert item.ok, item.detail
        other_key = dataclasses.replace(
            cfg, polymarket=dataclasses.replace(cfg.polymarket, private_key=KEY_B)
        )
        assert not check_live_order(other_key, conn, time.time()).ok
        production = dataclasses.replace(
            cfg, polymarket=dataclasses.replace(cfg.polymarket, base_url="https://clob.polymarket.com")
        )
        assert not check_live_order(production, conn, time.time()).ok
        assert not check_live_order(cfg, conn, time.time() + 25 * 3600).ok
    finally:
        conn.close()


def test_type3_fix_is_said_once():
    """The live client already appends the deposit-wallet fix to this refusal; the check adds nothing."""
    from polybot.exchange.live import TYPE3_FIX
    from polybot.exchange.live_order_check import advice_for

    msg = "the order signer address has to be the address of the API KEY — " + TYPE3_FIX.format(
        funder="0x" + "1" * 40
    )
    assert advice_for(msg, 3) is None


def test_an_exchange_that_does_not_answer_is_not_called_an_authentication_failure(tmp_path, sim):
    ws = workspace(tmp_path, sim)
    cfg_path = ws / "config.yaml"
    text = cfg_path.read_text().replace(sim.clob_url, "http://127.0.0.1:9/clob")
    cfg_path.write_text(text)
    proc = check(ws, {"POLYMARKET_PRIVATE_KEY": KEY_A, **creds_for(sim, KEY_A)}, "--yes")
    assert proc.returncode == 1
    (line,) = fails(proc)
    assert line.startswith("✗ Exchange:") and "unreachable" in line, line

"""``python test_api_connectivity.py`` as the operator runs it (a real subprocess), against
the local simulator over real HTTP."""

import socket

from tests.conftest import run_cli, sim_urls, write_config

PRIVATE_KEY = "0x" + "11" * 32  # test-only key


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _lines(proc):
    return [ln for ln in proc.stdout.splitlines() if ln.strip()]


def _passed(line: str, step: str) -> bool:
    """``✓ <step>``, or ``⚠ <step> … slower than 2 s`` (a timing advisory about the machine's
    load, which a test does not assert on: the step passed either way)."""
    return line.startswith(f"✓ {step}") or (line.startswith(f"⚠ {step}") and "slower than" in line)


def test_paper_mode_all_checks_pass(tmp_path, sim):
    write_config(tmp_path, sim_urls(sim))
    proc = run_cli("test_api_connectivity.py", cwd=tmp_path)
    out = _lines(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out[0] == "✓ API authentication skipped: paper mode"
    assert _passed(out[1], "Market data retrieved (20 markets in ")
    assert "order books" in out[1]
    assert out[2] == "✓ Account balance retrieved: $500.00 (paper)"
    assert out[3].startswith("✓ Rate limits: OK")
    assert out[-1].startswith("All checks passed")
    assert "Traceback" not in proc.stderr


def test_api_down_prints_one_sentence_and_exits_1(tmp_path):
    port = _closed_port()
    url = f"http://127.0.0.1:{port}"
    write_config(
        tmp_path,
        {
            "polymarket": {
                "base_url": url,
                "gamma_url": url,
                "data_url": url,
                "timeout_seconds": 2,
                "max_retries": 3,
            }
        },
    )
    proc = run_cli("test_api_connectivity.py", "--config", str(tmp_path / "config.yaml"), cwd=tmp_path)
    assert proc.returncode == 1
    out = _lines(proc)
    market = [ln for ln in out if ln.startswith("✗ Market data:")]
    assert market, proc.stdout
    assert "unreachable after 3 attempts" in market[0]
    assert "config.yaml" in market[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "✗ Rate limits: not checked because no API call was answered; fix the connection first" in out
    assert out[-1] == "2 check(s) failed."


def test_live_credentials_authenticate_and_read_balance(tmp_path, sim):
    cfg = sim_urls(sim)
    cfg["polymarket"]["private_key"] = "${POLYMARKET_PRIVATE_KEY}"
    cfg["polymarket"]["signature_type"] = 0
    write_config(tmp_path, cfg)
    proc = run_cli("test_api_connectivity.py", cwd=tmp_path, env={"POLYMARKET_PRIVATE_KEY": PRIVATE_KEY})
    out = _lines(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _passed(out[0], "API authentication successful (")
    assert out[2].startswith("✓ Account balance retrieved: $") and "(paper)" in out[2]
    assert "11" * 32 not in proc.stdout + proc.stderr


def test_live_mode_bad_api_key_fails_authentication(tmp_path, sim):
    cfg = sim_urls(sim)
    cfg["paper_trading"] = False
    cfg["capital"] = 500
    cfg["polymarket"].update(
        private_key="${POLYMARKET_PRIVATE_KEY}",
        api_key="${POLYMARKET_API_KEY}",
        api_secret="${POLYMARKET_API_SECRET}",
        api_passphrase="${POLYMARKET_API_PASSPHRASE}",
        signature_type=0,
    )
    write_config(tmp_path, cfg)
    proc = run_cli(
        "test_api_connectivity.py",
        cwd=tmp_path,
        env={
            "POLYMARKET_PRIVATE_KEY": PRIVATE_KEY,
            "POLYMARKET_API_KEY": "not-a-key",
            "POLYMARKET_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MDE=",
            "POLYMARKET_API_PASSPHRASE": "nope",
        },
    )
    out = _lines(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert out[0].startswith("✗ API authentication:")
    assert any(ln.startswith("✗ Account balance: not checked") for ln in out)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "c2VjcmV0c2VjcmV0" not in proc.stdout + proc.stderr


def test_throttling_is_reported(tmp_path, sim):
    sim.sim.set_faults(burst="429:2:0", path="/gamma")
    write_config(tmp_path, sim_urls(sim))
    proc = run_cli("test_api_connectivity.py", cwd=tmp_path)
    out = _lines(proc)
    assert proc.returncode == 1, proc.stdout
    assert _passed(out[1], "Market data retrieved")  # the client waited it out
    assert out[3].startswith("✗ Rate limits: 2 request(s) were answered 429")


def test_live_mode_passing_points_to_the_live_order_check(tmp_path, sim):
    from py_clob_client_v2 import ClobClient

    creds = ClobClient(host=sim.clob_url, chain_id=137, key=PRIVATE_KEY).create_or_derive_api_key()
    cfg = sim_urls(sim)
    cfg["paper_trading"] = False
    cfg["polymarket"].update(
        private_key="${POLYMARKET_PRIVATE_KEY}",
        api_key="${POLYMARKET_API_KEY}",
        api_secret="${POLYMARKET_API_SECRET}",
        api_passphrase="${POLYMARKET_API_PASSPHRASE}",
        signature_type=0,
    )
    write_config(tmp_path, cfg)
    proc = run_cli(
        "test_api_connectivity.py",
        cwd=tmp_path,
        env={
            "POLYMARKET_PRIVATE_KEY": PRIVATE_KEY,
            "POLYMARKET_API_KEY": creds.api_key,
            "POLYMARKET_API_SECRET": creds.api_secret,
            "POLYMARKET_API_PASSPHRASE": creds.api_passphrase,
        },
    )
    out = _lines(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out[2].startswith("✓ Account balance retrieved: $") and "(paper)" not in out[2]
    assert out[-1].startswith("All checks passed.")
    assert out[-1].endswith("prove signing works with python test_api_connectivity.py --live-order-check.")

"""The logic behind the root scripts test_alerts.py, get_telegram_chat_id.py and
telegram_notifier.py (each script is argparse + ``run_script(main, parser)``)."""

from __future__ import annotations

import argparse
import socket

from ..config import load_config
from ..logs import configure_from, redact, today_log_path

OK, FAIL = "✓", "✗"


def test_alerts_main(args: argparse.Namespace) -> int:
    """Send a "[TEST] …" alert through every channel configured for ``args.level``; ✓/✗ each."""
    from .core import Alerter

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg, console_level="ERROR")
    level = args.level
    alerter = Alerter(cfg)
    channels = alerter.routes(level)
    print(f"Sending a test {level} alert via {', '.join(channels)} (alerts.{level} in {cfg.source})")
    message = (
        f"[TEST] This is a test {level} alert from test_alerts.py on {socket.gethostname()}. "
        f"No action needed."
    )
    results = alerter.deliver_now(level, "test_alert", message)
    alerter.close(timeout=5)
    failed = 0
    for ch in channels:
        r = results.get(ch)
        if r is None:
            continue
        if r.ok:
            detail = f"written to {today_log_path(cfg.log_dir)}" if ch == "log" else (r.detail or "sent")
            print(f"{OK} {ch}: {detail}")
        else:
            failed += 1
            hint = ""
            if r.skipped:
                hint = f", yet alerts.{level} routes to it; enable it or remove {ch} from alerts.{level}"
            print(redact(f"{FAIL} {ch}: {r.detail}{hint}"))
    if failed:
        print(f"{failed} of {len(channels)} channel(s) failed; see RUNBOOK.md 'Alerts not arriving'.")
        return 1
    print(f"All {len(channels)} channel(s) delivered; check that the test alert arrived.")
    return 0


def chat_id_main(args: argparse.Namespace) -> int:
    """Print the chat ids that messaged the bot (getUpdates), for telegram.chat_id."""
    from ..notify.telegram import classify, get_chats

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg, console_level="ERROR")
    t = cfg.telegram
    if not t.bot_token:
        var = dict(cfg.unset_env).get("telegram.bot_token", "TELEGRAM_BOT_TOKEN")
        print(
            f"{FAIL} telegram.bot_token is not set; export {var} (the token @BotFather gave you) and run again."
        )
        return 1
    try:
        username, chats = get_chats(t)
    except Exception as exc:  # noqa: BLE001 - classified into one sentence
        print(f"{FAIL} Could not read the bot's messages: {classify(exc, t.bot_token).detail}.")
        return 1
    if not chats:
        print(
            f"No messages found for bot @{username}. "
            f"Send any message to your bot in Telegram, then run this again."
        )
        return 1
    print(f"Bot @{username} has messages from {len(chats)} chat(s):")
    for c in chats:
        kind = "private chat with" if c["type"] == "private" else f"{c['type']}"
        print(f"  chat_id {c['id']}  ({kind} {c['name']})".rstrip())
    print(
        f'\nPut the one for you in config.yaml:\n\ntelegram:\n  enabled: true\n  chat_id: "{chats[0]["id"]}"'
    )
    return 0


def notifier_main(args: argparse.Namespace) -> int:
    from ..notify.telegram import send_notification

    return 0 if send_notification(args.text, args.level, config_path=args.config) else 1

"""A local fake of the Telegram Bot API, for tests (real HTTP on 127.0.0.1).

python-telegram-bot is pointed at it with ``telegram.base_url: http://127.0.0.1:PORT/bot``;
it then calls ``POST /bot<token>/<method>``. The server routes on the last path segment
and answers like the real API (``{"ok": true, "result": …}``):

- ``getMe``; ``sendMessage`` (form-encoded, JSON or query string); ``getUpdates`` with
  scripted updates (:meth:`FakeTelegram.add_message`), ``offset`` confirmation and long
  polling (``timeout``); ``deleteWebhook`` answers ``true``.
- ``sendPhoto`` as a multipart upload: the file's bytes are kept in
  :attr:`Recorded.files` (:meth:`FakeTelegram.photos` lists them with their captions).
- ``setMyCommands``: checked like Telegram (1-32 of ``a-z0-9_``, a description of 1-256
  characters, at most 100); :meth:`FakeTelegram.menu` is the last list accepted.
- A wrong token gets 401 ``Unauthorized`` (PTB raises ``InvalidToken``).
- Modes: ``"ok"``; ``"hang"`` — every request blocks and never answers (until the server
  stops); ``"down"`` — the connection is closed without an answer.
- :meth:`FakeTelegram.fail_next` scripts one error answer (400 BadRequest, 429 with
  ``retry_after``, …) for a method.
- Every request is recorded (:attr:`FakeTelegram.requests`); :meth:`messages` lists the
  sendMessage texts.
- Inline keyboards: :meth:`FakeTelegram.add_callback` queues a ``callback_query`` update (a
  button press); ``answerCallbackQuery`` answers ``true`` (:meth:`callback_answers` lists them);
  :meth:`buttons` lists the inline buttons each sendMessage carried (``reply_markup``).

Run standalone: ``python tests/fake_telegram.py --port 8081 --token 123:abc``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_ID = 7000000001
BOT_USERNAME = "polybot_test_bot"


@dataclass
class Recorded:
    method: str  # Bot API method, e.g. "sendMessage"
    token: str  # the token found in the path
    params: dict  # parsed parameters (form, JSON or query)
    content_type: str
    http_method: str
    path: str
    at: float = field(default_factory=time.time)
    status: int = 0  # the HTTP status answered (0: none — hang/down)
    files: dict = field(default_factory=dict)  # multipart uploads: field name → bytes


def _request_params(query: str, ctype: str, raw: bytes) -> dict:
    """The Bot API call's parameters: the query string, then a JSON or form body (a malformed
    body adds nothing, like a lenient server)."""
    params: dict = dict(parse_qsl(query))
    try:
        if ctype == "application/json" and raw:
            params.update(json.loads(raw.decode("utf-8")))
        elif raw and ctype != "multipart/form-data":  # multipart: _multipart_params
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        pass
    return params


def _multipart_params(content_type: str, raw: bytes) -> tuple[dict, dict]:
    """(text fields, file fields → bytes) of a ``multipart/form-data`` body (PTB's uploads)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    fields: dict = {}
    files: dict = {}
    for part in msg.iter_parts() if msg.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[name] = data
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


def _method_and_token(path: str) -> tuple[str, str]:
    """(method, bot token) of ``/bot<token>/<method>``."""
    segments = [s for s in path.split("/") if s]
    method = segments[-1] if segments else ""
    token = ""
    for s in segments:
        if s.startswith("bot"):
            token = s[3:]
            break
    return method, token


def _uploaded_photo(rec: Recorded) -> bytes | None:
    """The bytes of a sendPhoto's upload: the ``photo`` file, or the one ``attach://<name>`` names."""
    ref = str(rec.params.get("photo", ""))
    name = ref[len("attach://") :] if ref.startswith("attach://") else "photo"
    return rec.files.get(name)


def _commands_param(params: dict) -> list[dict]:
    """setMyCommands' ``commands``: a JSON text (form or multipart) or a list (JSON body)."""
    raw = params["commands"]
    commands = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(commands, list):
        raise ValueError("commands is not a list")
    return [c if isinstance(c, dict) else {} for c in commands]


class FakeTelegram:
    """The fake server. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, token: str, *, host: str = "127.0.0.1", port: int = 0):
        self.token = token
        self.mode = "ok"
        self.requests: list[Recorded] = []
        self._updates: list[dict] = []
        self._next_update_id = 100
        self._next_message_id = 1
        self._failures: dict[str, list[tuple[int, str, dict | None]]] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What goes in ``telegram.base_url`` (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> FakeTelegram:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting
    def add_message(
        self,
        chat_id: int,
        text: str,
        *,
        first_name: str = "Alice",
        username: str | None = "alice",
        chat_type: str = "private",
        title: str | None = None,
        date: int | None = None,
    ) -> int:
        """Queue an incoming message (as getUpdates will return it); returns its update_id."""
        with self._cond:
            uid = self._next_update_id
            self._next_update_id += 1
            sender = {
                "id": chat_id if chat_type == "private" else 555000111,
                "is_bot": False,
                "first_name": first_name,
            }
            if username:
                sender["username"] = username
            chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = first_name
                if username:
                    chat["username"] = username
            else:
                chat["title"] = title or "Group"
            msg = {
                "message_id": self._next_message_id,
                "date": int(date or time.time()),
                "chat": chat,
                "from": sender,
                "text": text,
            }
            if text.startswith("/"):
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            self._next_message_id += 1
            self._updates.append({"update_id": uid, "message": msg})
            self._cond.notify_all()
            return uid

    def add_callback(
        self,
        chat_id: int,
        data: str,
        *,
        first_name: str = "Alice",
        username: str | None = "alice",
        message_text: str = "(the message with the button)",
    ) -> int:
        """Queue a press of an inline button with callback ``data``, on a message of the bot in
        ``chat_id`` (as getUpdates will return it); returns its update_id."""
        with self._cond:
            uid = self._next_update_id
            self._next_update_id += 1
            sender: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
            if username:
                sender["username"] = username
            message = {
                "message_id": self._next_message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": first_name},
                "from": {
                    "id": BOT_ID,
                    "is_bot": True,
                    "first_name": "Polybot Test",
                    "username": BOT_USERNAME,
                },
                "text": message_text,
            }
            self._next_message_id += 1
            query = {
                "id": f"cbq{uid}",
                "from": sender,
                "message": message,
                "chat_instance": f"ci{chat_id}",
                "data": data,
            }
            self._updates.append({"update_id": uid, "callback_query": query})
            self._cond.notify_all()
            return uid

    def buttons(self, chat_id: Any = None) -> list[list[tuple[str, str]]]:
        """For each accepted sendMessage (optionally to ``chat_id``): its inline buttons as
        (text, callback_data), [] for a message without an inline keyboard."""
        out = []
        for r in self.calls("sendMessage"):
            if r.status != 200 or (chat_id is not None and str(r.params.get("chat_id")) != str(chat_id)):
                continue
            markup = r.params.get("reply_markup") or {}
            if isinstance(markup, str):
                markup = json.loads(markup)
            rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
            out.append([(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row])
        return out

    def callback_answers(self) -> list[dict]:
        """The parameters of every answerCallbackQuery call."""
        return [r.params for r in self.calls("answerCallbackQuery")]

    def fail_next(
        self, method: str, status: int, description: str, parameters: dict | None = None, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``method`` get this error answer."""
        with self._cond:
            self._failures.setdefault(method, []).extend([(status, description, parameters)] * times)

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in list(self.requests) if r.method == method]

    def messages(self, chat_id: Any = None) -> list[str]:
        """Texts of every sendMessage accepted (200), optionally only those to ``chat_id``."""
        return [
            r.params.get("text", "")
            for r in self.calls("sendMessage")
            if r.status == 200 and (chat_id is None or str(r.params.get("chat_id")) == str(chat_id))
        ]

    def photos(self, chat_id: Any = None) -> list[tuple[bytes, str]]:
        """(photo bytes, caption) of every sendPhoto accepted (200), optionally only to ``chat_id``."""
        out = []
        for r in self.calls("sendPhoto"):
            if r.status == 200 and (chat_id is None or str(r.params.get("chat_id")) == str(chat_id)):
                out.append((_uploaded_photo(r), r.params.get("caption", "")))
        return out

    def menu(self) -> list[tuple[str, str]] | None:
        """The (command, description) list of the last accepted setMyCommands (None: never set)."""
        done = [r for r in self.calls("setMyCommands") if r.status == 200]
        if not done:
            return None
        return [(c["command"], c["description"]) for c in _commands_param(done[-1].params)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.calls(method)) >= count:
                return True
            time.sleep(0.02)
        return False

    # ------------------------------------------------------------------ handling
    def _answer(self, method: str, params: dict) -> tuple[int, dict]:
        with self._cond:
            queue = self._failures.get(method)
            if queue:
                status, description, parameters = queue.pop(0)
                body = {"ok": False, "error_code": status, "description": description}
                if parameters:
                    body["parameters"] = parameters
                return status, body
        handler = {
            "answerCallbackQuery": self._answer_callback_query,
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "getUpdates": self._get_updates,
            "sendPhoto": self._send_photo,
            "setMyCommands": self._set_my_commands,
        }.get(method)
        if handler is not None:
            return handler(params)
        if method in ("deleteWebhook", "close", "logOut"):
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _answer_callback_query(self, params: dict) -> tuple[int, dict]:
        if not params.get("callback_query_id"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: query id is empty"}
        return 200, {"ok": True, "result": True}

    def _get_me(self, params: dict) -> tuple[int, dict]:
        return 200, {
            "ok": True,
            "result": {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Polybot Test",
                "username": BOT_USERNAME,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            },
        }

    def _send_message(self, params: dict) -> tuple[int, dict]:
        if "chat_id" not in params or "text" not in params:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        if len(str(params["text"])) > 4096:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message is too long",
            }
        chat_id = params["chat_id"]
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)
        with self._cond:
            mid = self._next_message_id
            self._next_message_id += 1
        return 200, {
            "ok": True,
            "result": {
                "message_id": mid,
                "date": int(time.time()),
                "text": params["text"],
                "chat": {"id": chat_id, "type": "private"},
                "from": {
                    "id": BOT_ID,
                    "is_bot": True,
                    "first_name": "Polybot Test",
                    "username": BOT_USERNAME,
                },
            },
        }

    def _send_photo(self, params: dict) -> tuple[int, dict]:
        photo = params.get("_photo_bytes")
        if "chat_id" not in params or not photo:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: there is no photo in the request",
            }
        if len(str(params.get("caption", ""))) > 1024:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message caption is too long",
            }
        chat_id = params["chat_id"]
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)
        with self._cond:
            mid = self._next_message_id
            self._next_message_id += 1
        size = {"file_id": f"photo{mid}", "file_unique_id": f"u{mid}", "width": 900, "height": 550}
        result = {
            "message_id": mid,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Polybot Test", "username": BOT_USERNAME},
            "photo": [dict(size, file_size=len(photo))],
        }
        if params.get("caption"):
            result["caption"] = params["caption"]
        return 200, {"ok": True, "result": result}

    def _set_my_commands(self, params: dict) -> tuple[int, dict]:
        try:
            commands = _commands_param(params)
        except (ValueError, TypeError, KeyError):
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: can't parse commands JSON object",
            }
        bad = [
            c
            for c in commands
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", "")))
            or not 1 <= len(str(c.get("description", ""))) <= 256
        ]
        if bad or len(commands) > 100:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: BOT_COMMAND_INVALID"}
        return 200, {"ok": True, "result": True}

    def _get_updates(self, params: dict) -> tuple[int, dict]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = [u for u in self._updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if ready or left <= 0 or self._stopping.is_set():
                    break
                self._cond.wait(min(left, 0.2))
            limit = int(params.get("limit") or 100)
            return 200, {"ok": True, "result": ready[:limit]}

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                params = _request_params(parts.query, ctype, raw)
                method, token = _method_and_token(parts.path)
                files: dict = {}
                if ctype == "multipart/form-data":
                    fields, files = _multipart_params(self.headers.get("Content-Type") or "", raw)
                    params.update(fields)
                rec = Recorded(method, token, params, ctype, self.command, parts.path, files=files)
                fake.requests.append(rec)
                if fake.mode == "hang":
                    fake._stopping.wait()  # never answers while the server runs
                    self.close_connection = True
                    return
                if fake.mode == "down":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)
                    return
                if token != fake.token:
                    status, body = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
                else:
                    photo = _uploaded_photo(rec) if method == "sendPhoto" else None
                    status, body = fake._answer(method, dict(params, _photo_bytes=photo) if photo else params)
                data = json.dumps(body).encode("utf-8")
                rec.status = status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (cancelled poll)
                    self.close_connection = True

            do_POST = _handle
            do_GET = _handle

        return Handler


def main() -> None:  # pragma: no cover - manual use
    p = argparse.ArgumentParser(description="Run the fake Telegram Bot API locally.")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--token", default="123456789:TEST-token-for-the-local-fake-api")
    args = p.parse_args()
    fake = FakeTelegram(args.token, port=args.port).start()
    print(f"Fake Bot API on {fake.base_url} (token {args.token}); Ctrl-C stops it.")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

"""The web dashboard (``python dashboard.py``): the bot's state on a secure localhost page.

- :mod:`.server` — ``dashboard.py``: waitress on 127.0.0.1 (other hosts need a password);
- :mod:`.app` — the Flask app: routes, login gate, security headers, read-only DB per request;
- :mod:`.auth` — password / one-time token, sessions, CSRF, login rate limit;
- :mod:`.queries` — every figure on the page, from the database, with indexed queries;
- :mod:`.monitor` — the system-health panel (``run_health_checks`` in a background thread);
- ``templates/`` and ``assets/`` — the HTML, the stylesheet and the one script (no CDN).

Operator documentation: docs/dashboard.md.
"""

from .app import create_app
from .auth import Secret
from .server import DashboardServer, build_server, main

__all__ = ["create_app", "Secret", "DashboardServer", "build_server", "main"]

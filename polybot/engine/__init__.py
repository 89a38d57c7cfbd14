"""The trading engine (paper and live): loop, order state machine, ledger, circuit
breakers, reconciliation, heartbeat.

Modules:
- :mod:`.bot` — ``trading_bot.py``: start-up, halt handling, ``--restart``;
- :mod:`.loop` — :class:`~.loop.Engine`: one iteration after another;
- :mod:`.stop` — what a tripped breaker does (cancel, close-out, latch, alert, exit 5);
- :mod:`.orders` — the order state machine (write before send, result after);
  :mod:`.order_fills` — recording fills (trade status, external fills);
- :mod:`.ledger` — trades → positions, paper cash, valuation, performance rows, trade
  status (a FAILED fill is reversed);
- :mod:`.external` — live: the first-live-start baseline; holdings and trades that are
  not the bot's (never sold by it unless ``--close-external``);
- :mod:`.breakers` — the five circuit breakers;
- :mod:`.reconcile` — start-up reconciliation, and every live loop the trade sync and the
  position invariant (breaker #3); :mod:`.closeout` — emergency close-out;
- :mod:`.marketdata` — universe, books, snapshots, feed, marks, resolutions;
- :mod:`.state` — heartbeat, PID file, instance lock, latched halts;
- :mod:`.drill` — a simulator-only strategy that exercises the execution path;
- :mod:`.scenarios`, :mod:`.scenarios_risk`, :mod:`.scenarios_breakers` — the operator scripts
  test_risk_limits.py / test_circuit_breakers.py;
- :mod:`.paper_report` — ``paper_trading_report.py``.

Crash-safety rules
------------------
1. An order is signed once (``exchange.prepare``), written with its signed payload and
   hash as PENDING_SUBMIT and committed, and only then sent. A retry re-posts the SAME
   signed payload; a timeout is resolved by looking the order up by its hash.
2. A fill is a ``trades`` row keyed by the exchange's trade id (UNIQUE), written in the
   same transaction as the position update and the order's new status. Re-seeing a fill
   changes nothing. Live: a fill's CLOB trade status is kept (MATCHED/MINED/RETRYING
   provisional, CONFIRMED final); a FAILED one is undone by one ``reversal:<trade id>``
   row in one transaction, so seeing the failure again after a restart changes nothing.
3. Paper idempotency rule: **a paper order is executed if and only if its fills are
   committed.** The paper exchange keeps no state of its own across restarts: it is
   rebuilt from the recorded trades (fills + settlements) and orders at every start. A
   kill between "fill simulated" and "trade recorded" leaves the order PENDING_SUBMIT
   with no trades; at the next start it is unknown to the rebuilt paper exchange and is
   marked CANCELED "not executed" — never re-filled, never recorded twice. Paper cash is
   capital + Σ recorded trade cash flows, positions are the replay of the trades.
"""

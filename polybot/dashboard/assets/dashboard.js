/* polybot dashboard: renders the state JSON into the page and refreshes it from /api/state.
   No libraries, no inline code (the page's CSP forbids it), no innerHTML: text only. */
(function () {
  'use strict';

  var SVG = 'http://www.w3.org/2000/svg';
  var refreshMs = 5000;
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function setText(id, value) {
    var el = $(id);
    if (el) { el.textContent = (value === null || value === undefined) ? '—' : String(value); }
    return el;
  }

  function setSign(el, sign) {
    if (!el) { return; }
    el.classList.remove('pos', 'neg');
    if (sign > 0) { el.classList.add('pos'); } else if (sign < 0) { el.classList.add('neg'); }
  }

  function setMoney(id, m) {
    var el = setText(id, m ? m.text : null);
    setSign(el, m ? m.sign : 0);
  }

  function td(tr, value, cls) {
    var c = document.createElement('td');
    c.textContent = (value === null || value === undefined) ? '' : String(value);
    if (cls) { c.className = cls; }
    tr.appendChild(c);
    return c;
  }

  function fillTable(id, items, emptyText, columns, rowFn) {
    var body = $(id).tBodies[0];
    var rows = document.createDocumentFragment();
    if (!items || items.length === 0) {
      var tr = document.createElement('tr');
      var c = td(tr, emptyText, 'empty');
      c.colSpan = columns;
      rows.appendChild(tr);
    } else {
      items.forEach(function (item) {
        var r = document.createElement('tr');
        rowFn(r, item);
        rows.appendChild(r);
      });
    }
    body.replaceChildren(rows);
  }

  function svgEl(name, attrs, text) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  function fmtUsd(x) {
    return '$' + x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function renderChart(chart) {
    var svg = $('equity-chart');
    var W = Math.max(300, Math.round(svg.clientWidth || 800)), H = 240, L = 70, R = 10, T = 12, B = 24;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var nodes = [];
    var pts = (chart && chart.points) || [];
    if (pts.length === 0) {
      nodes.push(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'class': 'axis' },
        'No equity history yet (the bot writes a performance row every loop).'));
      svg.replaceChildren.apply(svg, nodes);
      setText('chart-caption', '');
      return;
    }
    var t0 = pts[0][0], t1 = pts[pts.length - 1][0];
    var lo = chart.capital, hi = chart.capital;
    pts.forEach(function (p) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); });
    if (hi - lo < 0.01) { hi += 1; lo -= 1; }
    var pad = (hi - lo) * 0.05; hi += pad; lo -= pad;
    function x(t) { return L + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - L - R); }
    function y(v) { return T + (hi - v) / (hi - lo) * (H - T - B); }
    nodes.push(svgEl('line', { x1: L, x2: W - R, y1: y(chart.capital), y2: y(chart.capital), 'class': 'capital' }));
    nodes.push(svgEl('text', { x: L - 6, y: y(hi - pad) + 4, 'text-anchor': 'end', 'class': 'axis' }, fmtUsd(hi - pad)));
    nodes.push(svgEl('text', { x: L - 6, y: y(lo + pad) + 4, 'text-anchor': 'end', 'class': 'axis' }, fmtUsd(lo + pad)));
    nodes.push(svgEl('text', { x: L, y: H - 6, 'text-anchor': 'start', 'class': 'axis' }, chart.first || ''));
    nodes.push(svgEl('text', { x: W - R, y: H - 6, 'text-anchor': 'end', 'class': 'axis' }, chart.last || ''));
    var d = pts.map(function (p) { return x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1); }).join(' ');
    if (pts.length === 1) { d = L + ',' + y(pts[0][1]).toFixed(1) + ' ' + (W - R) + ',' + y(pts[0][1]).toFixed(1); }
    var last = pts[pts.length - 1][1];
    nodes.push(svgEl('polyline', { points: d, 'class': last >= chart.capital ? 'equity up' : 'equity down' }));
    svg.replaceChildren.apply(svg, nodes);
    setText('chart-caption', pts.length + ' points; dashed line = starting capital ' + fmtUsd(chart.capital) +
      '; last ' + fmtUsd(last));
  }

  function renderPnl(s) {
    var p = s.pnl;
    setText('equity', p.equity ? p.equity.text : 'n/a');
    setText('equity-detail', p.equity ? ('cash ' + p.cash.text + ' · at risk ' + p.exposure.text) :
      'no performance rows yet (realised P&L from trades)');
    setMoney('total-pnl', p.total);
    setText('total-pnl-pct', p.total_pct + ' of ' + p.capital.text + ' capital');
    setMoney('daily-pnl', p.daily);
    setText('pnl-as-of', p.as_of ? ('as of ' + p.as_of + ' (' + p.as_of_ago + ')') : '');
    setMoney('realized-pnl', p.realized);
    setMoney('unrealized-pnl', p.unrealized);
    setText('realized-24h', 'realised last 24 h: ' + p.realized_24h.text);
    setText('win-rate', s.win_rate.text);
    setText('win-rate-detail', s.win_rate.detail);
    setText('sharpe', s.sharpe.text);
    setText('sharpe-detail', s.sharpe.note);
  }

  function renderTables(s) {
    setText('positions-count', '(' + s.positions.count + ')');
    fillTable('positions', s.positions.items, 'No open positions.', 7, function (tr, p) {
      tr.dataset.token = p.token_id;
      td(tr, p.label);
      td(tr, p.shares, 'num');
      td(tr, p.entry, 'num');
      td(tr, p.mark, 'num').title = p.mark_age;
      var u = td(tr, p.unrealized ? (p.unrealized.text + ' (' + p.unrealized_pct + ')') : 'n/a', 'num');
      setSign(u, p.unrealized ? p.unrealized.sign : 0);
      var st = td(tr, p.stop, 'num');
      if (p.below_stop) { st.classList.add('neg'); }
      td(tr, p.opened_ago);
    });
    setText('positions-note', 'entry = cost ÷ shares (fees included) · mark = latest best bid · stop = entry × (1 − ' +
      s.positions.stop_loss_percent + ') · total unrealised ' + s.positions.unrealized.text);
    var ext = s.positions.external;
    var extEl = $('external-note');
    if (extEl) { extEl.textContent = (ext && ext.note) ? ext.note : ''; }

    var t = s.trades;
    setText('trades-count', '(' + t.count + (t.shown < t.count ? ', latest ' + t.shown + ' shown' : '') +
      ' · fees ' + t.fees.text + ')');
    fillTable('trades', t.items, 'No trades in the last 24 h.', 10, function (tr, x) {
      tr.dataset.tradeId = x.trade_id;
      td(tr, x.time);
      td(tr, x.label);
      td(tr, x.kind === 'settlement' ? 'SETTLE' : x.side, x.side === 'BUY' ? 'buy' : 'sell');
      td(tr, x.price, 'num');
      td(tr, x.shares, 'num');
      td(tr, x.notional.text, 'num');
      td(tr, x.fee.text, 'num');
      var r = td(tr, x.realized ? x.realized.text : '', 'num');
      setSign(r, x.realized ? x.realized.sign : 0);
      td(tr, x.trade_id, 'mono');
      td(tr, x.reason);
    });

    var m = s.markets;
    setText('markets-count', '(' + m.count + ' tracked' + (m.shown < m.count ? ', top ' + m.shown + ' by liquidity' : '') +
      (m.stale ? ', ' + m.stale + ' stale' : '') + ')');
    setText('data-freshness', 'Last snapshot ' + (m.data.last_snapshot || 'never') + ' (' + m.data.last_snapshot_ago +
      ') · fresh = newer than ' + m.data.freshness_minutes + ' min');
    fillTable('markets', m.items, 'No tracked markets (run python collect_market_data.py --initial).', 6, function (tr, x) {
      tr.dataset.market = x.market_id;
      td(tr, x.question);
      td(tr, x.outcomes.map(function (o) { return o.outcome + ' ' + o.bid + ' / ' + o.ask; }).join(' · '));
      td(tr, x.volume_24h, 'num');
      td(tr, x.liquidity, 'num');
      td(tr, x.status);
      td(tr, x.updated, x.fresh ? 'fresh' : 'stale');
    });

    fillTable('alerts', s.alerts, 'No alerts.', 5, function (tr, a) {
      td(tr, a.time);
      td(tr, a.level.toUpperCase(), 'level-' + a.level);
      td(tr, a.key, 'mono');
      td(tr, a.message);
      td(tr, a.status + (a.repeat > 1 ? ' ×' + a.repeat : ''));
    });
  }

  function renderSystem(s) {
    var h = s.health || { lines: [], status: 'PENDING', checked_ago: '' };
    var ul = $('health-lines');
    var frag = document.createDocumentFragment();
    h.lines.forEach(function (l) {
      var li = document.createElement('li');
      li.className = 'status-' + l.status.toLowerCase();
      li.dataset.check = l.name;
      li.textContent = l.line;
      frag.appendChild(li);
    });
    if (h.lines.length === 0) {
      var li = document.createElement('li');
      li.textContent = 'Health check ' + h.checked_ago;
      frag.appendChild(li);
    }
    ul.replaceChildren(frag);
    var hs = setText('health-status', h.status);
    hs.className = 'count status-' + String(h.status).toLowerCase();
    setText('health-checked', h.checked ? ('checked ' + h.checked + ' (' + h.checked_ago + ')') : '');

    var sys = s.system;
    var banner = $('halt');
    if (!sys) {
      setText('bot-state', '—'); setText('halt-state', '—'); setText('pause-state', '—'); setText('last-backup', '—'); setText('last-cycle', '—');
      banner.hidden = true;
      $('halts').replaceChildren();
      return;
    }
    var b = sys.bot;
    setText('bot-state', (b.mode || '?') + ' mode · PID ' + (b.pid || '—') + ' · heartbeat ' + b.heartbeat_ago);
    var halt = sys.halt;
    var haltText = halt.halted ? ('HALTED by ' + (halt.breaker || '?') + ': ' + (halt.reason || 'no reason recorded')) : 'no';
    if (halt.emergency_stop_file) { haltText += ' · EMERGENCY_STOP file present'; }
    setText('halt-state', haltText);
    setText('pause-state', halt.paused ? ('PAUSED ' + halt.paused + ' · stops and exits go on · python trading_bot.py --resume') : 'running');
    banner.hidden = !(halt.halted || halt.emergency_stop_file);
    banner.textContent = 'Trading halted: ' + haltText + '. See RUNBOOK.md, then python trading_bot.py --restart.';
    var bk = sys.backup;
    setText('last-backup', bk ? (bk.name + ' · ' + bk.ago + ' · ' + bk.size + ' · integrity ' + bk.integrity) :
      'none yet (python backup_database.py)');
    setText('last-cycle', s.markets ? s.markets.data.last_cycle : '—');
    var hl = document.createDocumentFragment();
    halt.recent.forEach(function (x) {
      var li = document.createElement('li');
      li.textContent = x.time + ' ' + x.breaker + ': ' + x.reason + (x.cleared ? ' (cleared ' + x.cleared + ')' : '');
      hl.appendChild(li);
    });
    $('halts').replaceChildren(hl);
  }

  function render(s) {
    setText('mode', String(s.mode || '').toUpperCase());
    setText('updated', 'Updated ' + s.generated);
    var empty = !!s.empty;
    $('empty').hidden = !empty;
    setText('empty-message', empty ? s.empty_message : '');
    setText('empty-detail', empty ? s.empty_detail : '');
    Array.prototype.forEach.call(document.querySelectorAll('.data'), function (el) { el.hidden = empty; });
    if (!empty) {
      renderPnl(s);
      renderChart(s.chart);
      renderTables(s);
    }
    renderSystem(s);
    if (s.refresh_seconds) { refreshMs = Math.max(1, s.refresh_seconds) * 1000; }
    document.body.dataset.generated = String(s.generated_ts);
  }

  function status(ok, text) {
    var el = setText('conn-status', text);
    el.className = 'conn ' + (ok ? 'ok' : 'bad');
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, refreshMs);
  }

  function refresh() {
    fetch('/api/state', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (resp) {
        if (resp.status === 401) { window.location.assign('/login'); throw new Error('logged out'); }
        if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
        return resp.json();
      })
      .then(function (s) {
        render(s);
        status(true, 'live · every ' + refreshMs / 1000 + ' s');
      })
      .catch(function (err) { status(false, 'refresh failed (' + err.message + '); retrying'); })
      .then(schedule);
  }

  document.addEventListener('DOMContentLoaded', function () {
    var initial = $('initial-state');
    try {
      render(JSON.parse(initial.textContent));
    } catch (e) {
      status(false, 'could not render: ' + e.message);
    }
    schedule();
  });
}());

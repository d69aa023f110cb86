// keyfleet dashboards: plain JavaScript, no framework. Every number comes
// from keyfleet's token-protected API; the token lives in sessionStorage and
// travels only in the Authorization header (never in a URL, never logged).
'use strict';
/* global uPlot */
(function () {
  const TOKEN_KEY = 'keyfleet.token';
  // Okabe & Ito's colour-blind-safe palette; series also differ by dash
  // pattern and carry text labels.
  const C = { blue: '#0072B2', sky: '#56B4E9', orange: '#E69F00', vermilion: '#D55E00',
    green: '#009E73', purple: '#CC79A7', yellow: '#F0E442', black: '#000000' };
  const SERIES = [C.blue, C.orange, C.green, C.vermilion, C.purple, C.sky, C.black, C.yellow];
  const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3], [4, 4], [1, 3], [10, 2], [3, 6]];
  const OUTCOME = { granted: C.green, denied: C.vermilion, error: C.orange, info: C.sky };
  const DETECTORS = ['unlock_burst', 'unattested_device_change', 'use_after_revocation', 'denied_storm', 'off_schedule',
    'emergency_unlock', 'door_forced', 'door_ajar', 'stale_credential', 'expired_exception', 'revocation_overdue'];
  const SEVERITIES = ['critical', 'high', 'medium', 'low'];
  const STATUSES = ['open', 'acknowledged', 'resolved', 'false_positive'];
  const VENDORS = ['matter', 'nuki', 'schlage', 'seam', 'legacy'];
  // GET /v1/kpis slice dimensions (query.SliceDims).
  const KPI_SLICES = ['site', 'vendor', 'lock_model', 'lock_firmware', 'phone_model', 'os_version', 'app_version'];
  const STATES = ['requested', 'approved', 'issued', 'pending_activation', 'active', 'suspended', 'revoked', 'archived'];
  const REFRESH_MS = 10000;

  // ---------- API ----------
  const token = () => sessionStorage.getItem(TOKEN_KEY);

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || ('HTTP ' + status));
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: opts.accept || 'application/json' };
    const t = token();
    // Logged out (a page's loader still running after logout): no request
    // that can only be refused.
    if (!t && !opts.probe) throw new ApiError(401, null);
    if (t) headers.Authorization = 'Bearer ' + t;
    let body = opts.body;
    if (body !== undefined && typeof body !== 'string') {
      body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store', credentials: 'omit' });
    if (res.status === 401 && !opts.probe) {
      logout('The token was not accepted (unknown or revoked). Log in again.');
      throw new ApiError(401, null);
    }
    if (!res.ok) {
      let p = null;
      try { p = await res.json(); } catch (e) { p = null; }
      throw new ApiError(res.status, p);
    }
    if (opts.text) return res.text();
    const ct = res.headers.get('content-type') || '';
    return ct.includes('json') ? res.json() : res.text();
  }

  function qs(obj) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
    const s = p.toString();
    return s ? '?' + s : '';
  }

  // ---------- DOM ----------
  function h(tag, attrs) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, kid) {
    if (kid === undefined || kid === null || kid === false) return;
    if (Array.isArray(kid)) { kid.forEach(k => add(el, k)); return; }
    el.append(kid instanceof Node ? kid : String(kid));
  }
  const main = () => document.getElementById('main');
  function setMain() {
    const m = main();
    m.replaceChildren();
    for (const kid of arguments) add(m, kid);
  }
  function toast(msg) {
    const t = document.getElementById('toast');
    t.textContent = msg;
    t.classList.add('show');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => t.classList.remove('show'), 4000);
  }
  function errorBox(err, what) {
    let msg = err && err.message ? err.message : String(err);
    if (err && err.status === 403) msg = 'Your token\'s role may not see this (' + (what || 'this panel') + ').';
    return h('p', { class: 'error', role: 'alert' }, msg);
  }
  function fill(el) {
    el.replaceChildren();
    for (let i = 1; i < arguments.length; i++) add(el, arguments[i]);
  }

  // ---------- formatting ----------
  const pad = n => String(n).padStart(2, '0');
  function fmtTime(ms) {
    if (!ms) return '—';
    const d = new Date(ms);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
  }
  function fmtDur(s) {
    if (s === null || s === undefined || isNaN(s)) return '—';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 120) return s.toFixed(1) + ' s';
    if (s < 7200) return (s / 60).toFixed(1) + ' min';
    if (s < 3 * 86400) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }
  const fmtNum = n => (n === null || n === undefined) ? '—' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 2 });
  const fmtPct = (x, d) => (x === null || x === undefined || isNaN(x)) ? '—' : (100 * x).toFixed(d === undefined ? 1 : d) + '%';
  const badge = (cls, text) => h('span', { class: 'badge ' + cls }, text);
  const sev = s => badge('sev-' + s, s);
  const status = s => badge('st-' + s, s.replace('_', ' '));
  const short = id => (id && id.length > 14) ? id.slice(0, 8) + '…' : (id || '—');

  // ---------- pages, timers, charts ----------
  let page = null;
  function startPage(name) {
    stopPage();
    page = { name, timers: [], charts: [], alive: true };
    document.querySelectorAll('[data-nav]').forEach(a => {
      if (a.dataset.nav === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    return page;
  }
  function stopPage() {
    if (!page) return;
    page.alive = false;
    page.timers.forEach(clearInterval);
    page.charts.forEach(c => c.destroy());
    page = null;
  }
  function every(ms, fn) {
    const p = page;
    const run = () => { if (p.alive) fn(); };
    run();
    p.timers.push(setInterval(run, ms));
  }
  function live(text) {
    const el = document.getElementById('live');
    if (el) el.textContent = text;
  }

  // timeTicks labels the time axis in UTC, 24-hour clock: HH:MM within a
  // day, the date on the first tick of a day, MM-DD for spans over 3 days.
  // The precision follows the ticks' spacing (seconds when they are less
  // than a minute apart), and a label equal to the previous one is left
  // out, so no two ticks read the same.
  function timeTicks(u, splits) {
    const span = u.scales.x.max - u.scales.x.min;
    let step = Infinity;
    for (let i = 1; i < splits.length; i++) step = Math.min(step, splits[i] - splits[i - 1]);
    const seconds = span < 600 || step < 60;
    const days = span > 3 * 86400 && step >= 86400;
    let lastDay = '', last = '';
    const labels = splits.map(s => {
      const d = new Date(s * 1000);
      const day = pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate());
      let label;
      if (days) label = day;
      else {
        const hm = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + (seconds ? ':' + pad(d.getUTCSeconds()) : '');
        label = day !== lastDay ? hm + '\n' + day : hm;
      }
      lastDay = day;
      if (label === last) return '';
      last = label;
      return label;
    });
    // The labels drawn, for the browser tests.
    if (u.root && u.root.parentNode) u.root.parentNode.dataset.xticks = JSON.stringify(labels);
    return labels;
  }

  // timeChart draws (or updates) a uPlot time-series chart in holder.
  // series: [{label, values, colour, dash, points}]; xs in ms.
  function timeChart(holder, key, xs, series, o) {
    o = o || {};
    const data = [xs.map(x => x / 1000)].concat(series.map(s => s.values));
    let nonEmpty = 0;
    series.forEach(s => s.values.forEach(v => { if (v) nonEmpty++; }));
    holder.dataset.points = String(nonEmpty);
    holder.dataset.series = String(series.length);
    holder.dataset.lastX = xs.length ? String(xs[xs.length - 1]) : '';
    const width = Math.max(280, holder.clientWidth || 600);
    const existing = page.charts.find(c => c._key === key && c.root.parentNode === holder);
    const sig = series.map(s => s.label).join('|');
    // Timelines of a few events: pad the time axis around them.
    const padX = u => {
      if (!o.xPad || !xs.length) return;
      const lo = xs[0] / 1000, hi = xs[xs.length - 1] / 1000;
      const pad = Math.max(typeof o.xPad === 'number' ? o.xPad : 300, (hi - lo) * 0.05);
      u.setScale('x', { min: lo - pad, max: hi + pad });
    };
    if (existing && existing._sig === sig) {
      existing.setData(data);
      padX(existing);
      return existing;
    }
    if (existing) {
      existing.destroy();
      page.charts.splice(page.charts.indexOf(existing), 1);
    }
    holder.replaceChildren();
    const opts = {
      width, height: o.height || 220,
      // Axis labels in UTC, like every time on the dashboards.
      tzDate: ts => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: { x: { time: true }, y: o.yRange ? { range: o.yRange } : {} },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: 'time (UTC)', value: (u, v) => v === null ? '—' : fmtTime(v * 1000) }].concat(series.map((s, i) => ({
        label: s.label, stroke: s.colour || SERIES[i % SERIES.length], width: 2,
        dash: s.dash || DASHES[i % DASHES.length],
        points: s.points ? { show: true, size: 8, width: 1, fill: s.colour || SERIES[i % SERIES.length] } : { show: false },
        paths: s.points ? () => null : undefined,
        value: (u, v) => v === null || v === undefined ? '—' : (o.fmt ? o.fmt(v) : fmtNum(v)),
        spanGaps: false,
      }))),
      axes: [
        { stroke: '#4b5563', grid: { stroke: '#eef0f3' }, values: timeTicks },
        { stroke: '#4b5563', grid: { stroke: '#eef0f3' }, label: o.yLabel || '', size: 56,
          values: o.yValues || ((u, vals) => vals.map(v => o.fmtAxis ? o.fmtAxis(v) : fmtNum(v))) },
      ],
      legend: { live: true },
    };
    if (o.yAxis) Object.assign(opts.axes[1], o.yAxis);
    const u = new uPlot(opts, data, holder);
    u._key = key;
    u._sig = sig;
    padX(u);
    u.root.setAttribute('role', 'img');
    u.root.setAttribute('aria-label', (o.title || key) + ': ' + series.map(s => s.label).join(', '));
    page.charts.push(u);
    return u;
  }
  window.addEventListener('resize', () => {
    if (!page) return;
    page.charts.forEach(u => {
      const w = u.root.parentNode && u.root.parentNode.clientWidth;
      if (w) u.setSize({ width: Math.max(280, w), height: u.height });
    });
  });

  // summarySeries aligns a /v1/events/summary answer on every bucket of its
  // range (empty buckets are 0), keys in the given order.
  function alignSummary(sum, keys) {
    const width = { minute: 60000, '5m': 300000, hour: 3600000, day: 86400000 }[sum.bucket] || 3600000;
    const xs = [];
    for (let t = Math.floor(sum.from_ms / width) * width; t < sum.to_ms; t += width) xs.push(t);
    const idx = new Map(xs.map((x, i) => [x, i]));
    const byKey = new Map((sum.series || []).map(s => [s.key, s]));
    const ks = keys || (sum.series || []).map(s => s.key);
    return {
      xs, keys: ks, values: ks.map(k => {
        const arr = xs.map(() => 0);
        const s = byKey.get(k);
        if (s) s.points.forEach(p => { const i = idx.get(p.ts_ms); if (i !== undefined) arr[i] = p.count; });
        return arr;
      }),
    };
  }

  // ---------- session: what the token's role may see and do ----------
  // Pages and actions come from GET /v1/dashboards/session, so nothing is
  // offered (or fetched) that the role would be refused.
  let session = null;
  const can = action => !!(session && session.actions && session.actions[action]);
  async function loadSession() {
    session = await api('/v1/dashboards/session');
    document.querySelectorAll('[data-nav]').forEach(a => { a.hidden = !session.pages.includes(a.dataset.nav); });
    return session;
  }
  const needs = what => h('p', { class: 'muted' }, what);

  // ---------- login ----------
  function logout(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    session = null;
    stopPage();
    document.getElementById('top').hidden = true;
    renderLogin(msg);
  }

  function renderLogin(msg) {
    stopPage();
    document.getElementById('top').hidden = true;
    const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true,
      'aria-describedby': 'token-help', spellcheck: 'false' });
    const out = h('div', { 'aria-live': 'polite' });
    if (msg) fill(out, h('p', { class: 'error' }, msg));
    const form = h('form', { class: 'card login', id: 'login', onsubmit: async ev => {
      ev.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      input.value = '';
      try {
        await api('/v1/dashboards/session', { probe: true });
      } catch (err) {
        sessionStorage.removeItem(TOKEN_KEY);
        fill(out, h('p', { class: 'error', role: 'alert' }, err.status === 401 ? 'Unknown or revoked token.' :
          err.status === 403 ? 'This token\'s role cannot read the dashboards (use analyst, responder, manager or admin).' :
            'Could not log in: ' + err.message));
        return;
      }
      document.getElementById('top').hidden = false;
      if (!location.hash || location.hash === '#/login') location.hash = '#/overview'; else route();
    } },
    h('h1', null, 'keyfleet dashboards'),
    h('p', { id: 'token-help', class: 'muted' }, 'Log in with an API token (analyst, responder, manager or admin). ' +
      'It is kept in this tab only and sent as a Bearer header.'),
    h('label', { class: 'f', for: 'token' }, 'API token', input),
    h('p', null, h('button', { type: 'submit', id: 'login-submit' }, 'Log in')),
    out);
    setMain(form);
    input.focus();
  }

  // ---------- Fleet overview ----------
  function overview(params) {
    startPage('overview');
    const range = params.get('range') || '24h';
    const site = params.get('site') || '';
    const vendor = params.get('vendor') || '';
    const split = params.get('split') || 'site';
    const kslice = params.get('kslice') || 'os_version';
    const bucket = { '6h': '5m', '24h': 'hour', '7d': 'hour' }[range] || 'hour';
    const nav = changes => {
      const p = new URLSearchParams(params);
      for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
      location.hash = '#/overview?' + p.toString();
    };
    const siteSel = h('select', { id: 'f-site', onchange: e => nav({ site: e.target.value }) }, h('option', { value: '' }, 'all sites'));
    const tiles = h('div', { class: 'tiles', id: 'tiles' });
    const eventsChart = h('div', { class: 'chart', id: 'chart-rate' });
    const outcomeChart = h('div', { class: 'chart', id: 'chart-outcome' });
    const splitChart = h('div', { class: 'chart', id: 'chart-split' });
    const alertsBox = h('div', { id: 'alerts-matrix' });
    const revBox = h('div', { id: 'revocations' });
    const ingestChart = h('div', { class: 'chart', id: 'chart-ingest' });
    const ingestBox = h('div', { id: 'ingest' });
    const slicesBox = h('div', { id: 'kpi-slices' });
    setMain(
      h('h1', null, 'Fleet overview'),
      h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Filters' },
        h('label', { class: 'f' }, 'Range', h('select', { id: 'f-range', onchange: e => nav({ range: e.target.value }) },
          ['6h', '24h', '7d'].map(r => h('option', { value: r, selected: r === range }, 'last ' + r)))),
        h('label', { class: 'f' }, 'Site', siteSel),
        h('label', { class: 'f' }, 'Vendor', h('select', { id: 'f-vendor', onchange: e => nav({ vendor: e.target.value }) },
          h('option', { value: '' }, 'all vendors'), VENDORS.map(v => h('option', { value: v, selected: v === vendor }, v)))),
        h('span', { class: 'muted' }, 'Times in UTC · refreshes every ' + (REFRESH_MS / 1000) + ' s')),
      tiles,
      h('div', { class: 'grid' },
        h('section', { class: 'card span-6', 'aria-labelledby': 'h-rate' }, h('h2', { id: 'h-rate' }, 'Events per second (last hour, per minute)'), eventsChart),
        h('section', { class: 'card span-6', 'aria-labelledby': 'h-outcome' }, h('h2', { id: 'h-outcome' },
          'Granted vs denied (' + range + ', per ' + bucket + ')' + (site ? ' · ' + site : '') + (vendor ? ' · ' + vendor : '')), outcomeChart),
        h('section', { class: 'card span-6', 'aria-labelledby': 'h-split' }, h('h2', { id: 'h-split' }, 'Denied by ',
          h('select', { id: 'f-split', 'aria-label': 'split denied accesses by', onchange: e => nav({ split: e.target.value }) },
            ['site', 'vendor'].map(s => h('option', { value: s, selected: s === split }, s))), ' (' + range + ')'), splitChart),
        h('section', { class: 'card span-6', 'aria-labelledby': 'h-alerts' }, h('h2', { id: 'h-alerts' }, 'Open alerts by detector and severity'), alertsBox),
        h('section', { class: 'card span-6', 'aria-labelledby': 'h-rev' }, h('h2', { id: 'h-rev' }, 'Revocations (last 7 days)'), revBox),
        h('section', { class: 'card span-6', 'aria-labelledby': 'h-ingest' }, h('h2', { id: 'h-ingest' }, 'Ingest health'), ingestChart, ingestBox),
        h('section', { class: 'card span-12', 'aria-labelledby': 'h-slices' }, h('h2', { id: 'h-slices' }, 'KPIs by ',
          h('select', { id: 'f-kslice', 'aria-label': 'slice the KPIs by', onchange: e => nav({ kslice: e.target.value }) },
            KPI_SLICES.map(s => h('option', { value: s, selected: s === kslice }, s.replace(/_/g, ' ')))),
          ' (last 7 days' + (site ? ' · ' + site : '') + (vendor ? ' · ' + vendor : '') + ')'), slicesBox)));

    const tileVals = {};
    const renderTiles = () => fill(tiles, [
      ['events-rate', 'Events / s', 'last 5 minutes'], ['denied-share', 'Denied', 'share, last hour'],
      ['open-alerts', 'Open alerts', 'last 30 days'], ['rev-p95', 'Revocation p95', 'last 7 days'],
      ['pending-rev', 'Pending revocations', 'locks not yet confirmed'], ['lag', 'Consumer lag', 'messages'],
      ['dlq', 'DLQ rate', 'last minute'], ['leaver-p99', 'Leaver → locks p99', 'identity change to last lock, 7 days'],
    ].map(([id, label, hint]) => h('div', { class: 'tile', id: 'tile-' + id },
      h('div', { class: 'label' }, label), h('div', { class: 'value' }, tileVals[id] === undefined ? '…' : tileVals[id]),
      h('div', { class: 'hint' }, hint))));
    renderTiles();

    let sitesLoaded = false;
    const loadSites = async () => {
      if (sitesLoaded) return;
      try {
        const s = await api('/v1/events/summary' + qs({ from: 'now-7d', bucket: 'all', by: 'site', top: 200 }));
        const keys = (s.series || []).map(x => x.key).filter(Boolean).sort();
        keys.forEach(k => siteSel.append(h('option', { value: k, selected: k === site }, k)));
        sitesLoaded = true;
      } catch (e) { /* shown by the charts */ }
    };

    async function loadRate() {
      try {
        // Whole minutes only: the current minute is still filling, and a
        // partial bucket would read as a drop in the rate.
        const to = Math.floor(Date.now() / 60000) * 60000;
        const s = await api('/v1/events/summary' + qs({ from: String(to - 3600000), to: String(to), bucket: 'minute', site, vendor }));
        const a = alignSummary(s);
        while (a.xs.length && a.xs[a.xs.length - 1] + 60000 > to) { a.xs.pop(); a.values.forEach(v => v.pop()); }
        const total = a.xs.map((x, i) => a.values.reduce((acc, v) => acc + v[i], 0) / 60);
        timeChart(eventsChart, 'rate', a.xs, [{ label: 'events/s', values: total, colour: C.blue }], { title: 'Events per second', fmt: v => v.toFixed(2), height: 200 });
        const last = total.slice(-5);
        tileVals['events-rate'] = last.length ? (last.reduce((x, y) => x + y, 0) / last.length).toFixed(2) : '0';
      } catch (err) { tileVals['events-rate'] = '—'; fill(eventsChart, errorBox(err)); }
    }
    async function loadOutcome() {
      try {
        const s = await api('/v1/events/summary' + qs({ from: 'now-' + range, bucket, by: 'outcome', site, vendor }));
        const a = alignSummary(s, ['granted', 'denied']);
        timeChart(outcomeChart, 'outcome', a.xs, [
          { label: 'granted', values: a.values[0], colour: OUTCOME.granted, dash: [] },
          { label: 'denied', values: a.values[1], colour: OUTCOME.denied, dash: [6, 3] },
        ], { title: 'Granted vs denied accesses', height: 220 });
        const h1 = await api('/v1/events/summary' + qs({ from: 'now-1h', bucket: 'all', by: 'outcome', site, vendor }));
        let g = 0, d = 0;
        (h1.series || []).forEach(x => { if (x.key === 'granted') g = x.total; if (x.key === 'denied') d = x.total; });
        tileVals['denied-share'] = g + d ? fmtPct(d / (g + d)) : '—';
      } catch (err) { tileVals['denied-share'] = '—'; fill(outcomeChart, errorBox(err)); }
    }
    async function loadSplit() {
      try {
        const s = await api('/v1/events/summary' + qs({ from: 'now-' + range, bucket, by: split, outcome: 'denied', top: 8, site, vendor }));
        const a = alignSummary(s);
        if (!a.keys.length) { fill(splitChart, h('p', { class: 'empty' }, 'No denied accesses in this range.')); splitChart.dataset.points = '0'; return; }
        timeChart(splitChart, 'split', a.xs, a.keys.map((k, i) => ({ label: k || '(none)', values: a.values[i] })),
          { title: 'Denied accesses by ' + split, height: 220 });
      } catch (err) { fill(splitChart, errorBox(err)); }
    }
    async function loadAlerts() {
      try {
        const r = await api('/v1/dashboards/alerts' + qs({ status: 'open', site }));
        tileVals['open-alerts'] = fmtNum(r.total);
        const m = new Map();
        r.counts.forEach(c => { const row = m.get(c.detector) || {}; row[c.severity] = (row[c.severity] || 0) + c.count; m.set(c.detector, row); });
        if (!m.size) { fill(alertsBox, h('p', { class: 'empty' }, 'No open alerts.')); return; }
        const max = Math.max(...[...m.values()].map(row => SEVERITIES.reduce((a, s) => a + (row[s] || 0), 0)));
        fill(alertsBox, h('div', { class: 'scroll-x' }, h('table', { id: 'alerts-table', class: 'compact' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'detector'), SEVERITIES.map(s => h('th', { scope: 'col', class: 'n' }, sev(s))),
            h('th', { scope: 'col' }, 'total'))),
          h('tbody', null, [...m.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([det, row]) => {
            const total = SEVERITIES.reduce((a, s) => a + (row[s] || 0), 0);
            // Detector names wrap at their underscores, so the total column stays in the card.
            return h('tr', null, h('th', { scope: 'row' }, h('a', { href: '#/alerts?' + new URLSearchParams({ status: 'open', detector: det }) }, det.replace(/_/g, ' '))),
              SEVERITIES.map(s => h('td', { class: 'n' }, row[s] ? h('a', { href: '#/alerts?' + new URLSearchParams({ status: 'open', detector: det, severity: s }) }, fmtNum(row[s])) : '·')),
              h('td', { class: 'total' }, h('div', { class: 'barcell' }, h('span', { class: 'bar', style: 'width:' + Math.round(48 * total / max) + 'px' }), fmtNum(total))));
          })))));
      } catch (err) { tileVals['open-alerts'] = '—'; fill(alertsBox, errorBox(err, 'alerts')); }
    }
    async function loadRevocations() {
      const parts = [];
      if (!can('read_kpis')) {
        tileVals['rev-p95'] = '—';
        parts.push(needs('Revocation latency KPIs are for the manager role.'));
      } else try {
        const k = await api('/v1/kpis' + qs({ from: String(Date.now() - 7 * 86400000) }));
        const cred = k.credentials || k;
        const rl = cred.revocation_latency || {};
        const ll = cred.leaver_latency || {};
        tileVals['rev-p95'] = rl.confirmed ? fmtDur(rl.p95_s) : '—';
        tileVals['leaver-p99'] = ll.confirmed ? fmtDur(ll.p99_s) : '—';
        const q = (x, k) => h('td', { class: 'n' }, x.confirmed ? fmtDur(x[k]) : '—');
        parts.push(h('table', { id: 'rev-latency' }, h('thead', null, h('tr', null, h('th', { scope: 'col' }, ''),
          ['p50', 'p95', 'p99', 'count', 'confirmed', 'locks past SLA'].map(x => h('th', { scope: 'col', class: 'n' }, x)))),
          h('tbody', null,
            h('tr', null, h('th', { scope: 'row' }, 'request → last lock'), q(rl, 'p50_s'), q(rl, 'p95_s'), q(rl, 'p99_s'),
              h('td', { class: 'n' }, fmtNum(rl.count)), h('td', { class: 'n' }, fmtNum(rl.confirmed)),
              h('td', { class: 'n' }, fmtNum(cred.pending_locks ? cred.pending_locks.count : 0))),
            h('tr', { id: 'leaver-latency' }, h('th', { scope: 'row' }, 'leaver: identity change → last lock'), q(ll, 'p50_s'), q(ll, 'p95_s'), q(ll, 'p99_s'),
              h('td', { class: 'n' }, fmtNum(ll.count || 0)), h('td', { class: 'n' }, fmtNum(ll.confirmed || 0)), h('td', { class: 'n' }, '')))));
      } catch (err) {
        tileVals['rev-p95'] = tileVals['leaver-p99'] = '—';
        parts.push(errorBox(err, 'revocation latency KPIs need the manager role'));
      }
      if (!can('read_revocations')) {
        tileVals['pending-rev'] = '—';
        parts.push(needs('The revocation tracker is fleet-wide: not shown to a token limited to sites.'));
      } else try {
        const [r, all, esc] = await Promise.all([api('/v1/dashboards/revocations' + qs({ pending: 'true', limit: 8 })),
          api('/v1/dashboards/revocations' + qs({ pending: 'true', limit: 1000 })),
          api('/v1/dashboards/revocations' + qs({ pending: 'true', escalated: 'true', limit: 20 }))]);
        tileVals['pending-rev'] = fmtNum(all.revocations.reduce((a, x) => a + x.pending, 0));
        if (esc.revocations.length) {
          parts.push(h('h3', { id: 'escalated-revocations' }, 'Escalated past the SLA (' + esc.revocations.length + ')'), revTable(esc.revocations));
        }
        parts.push(h('h3', null, 'Pending revocations'), r.revocations.length ? revTable(r.revocations) : h('p', { class: 'empty' }, 'None: every lock confirmed.'));
      } catch (err) { tileVals['pending-rev'] = '—'; parts.push(errorBox(err)); }
      fill(revBox, parts);
    }
    async function loadSlices() {
      if (!can('read_kpis')) { fill(slicesBox, needs('Sliced KPIs are for the manager role.')); return; }
      try {
        const k = await api('/v1/kpis' + qs({ from: String(Date.now() - 7 * 86400000), slice: kslice, site, vendor }));
        const rows = (k.slices || []).slice(0, 25);
        if (!rows.length) { fill(slicesBox, h('p', { class: 'empty' }, 'No events or credentials in this slice.')); return; }
        const q = x => x && x.count ? fmtDur(x.p50_s) : '—';
        const cols = ['events', 'denied', 'support failures / 1,000', 'activation', 'time to issue p50', 'revocation p50 (per lock)', 'exceptions / 1,000'];
        const notes = Object.entries(k.not_sliced || {}).map(([kpi, why]) => kpi + ': ' + why);
        fill(slicesBox, h('div', { class: 'scroll-x' }, h('table', { id: 'kpi-slices-table', class: 'compact' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, kslice.replace(/_/g, ' ')), cols.map(c => h('th', { scope: 'col', class: 'n' }, c)))),
          h('tbody', null, rows.map(r => h('tr', null, h('th', { scope: 'row' }, r.key || '(unknown)'),
            h('td', { class: 'n' }, fmtNum(r.events)), h('td', { class: 'n' }, fmtPct(r.denied_share)),
            h('td', { class: 'n' }, fmtNum(r.support_failures_per_1000)),
            h('td', { class: 'n' }, r.activation ? fmtPct(r.activation.rate) + ' of ' + fmtNum(r.activation.issued) : '—'),
            h('td', { class: 'n' }, q(r.time_to_issue)), h('td', { class: 'n' }, q(r.revocation_latency)),
            h('td', { class: 'n' }, r.exceptions ? fmtNum(r.exceptions.per_1000) : '—')))))),
        notes.length ? h('p', { class: 'legend-note' }, '— not cut by ' + kslice.replace(/_/g, ' ') + ': ' + notes.join('; ') + '.') : null);
      } catch (err) { fill(slicesBox, errorBox(err, 'sliced KPIs need the manager role')); }
    }
    async function loadIngest() {
      if (!can('read_ingest_health')) {
        tileVals.lag = tileVals.dlq = '—';
        fill(ingestChart, null);
        fill(ingestBox, needs('Ingest health is fleet-wide: not shown to a token limited to sites.'));
        return;
      }
      try {
        const r = await api('/v1/health/ingest');
        tileVals.lag = fmtNum(r.lag_total);
        tileVals.dlq = r.window_s ? fmtPct(r.dlq_rate, 2) : '—';
        const hist = r.history || [];
        if (hist.length) {
          timeChart(ingestChart, 'ingest', hist.map(p => p.ts_ms), [
            { label: 'records/s', values: hist.map(p => p.consumed_per_s), colour: C.blue },
            { label: 'dead letters/s', values: hist.map(p => p.dead_lettered_per_s), colour: C.vermilion, dash: [6, 3] },
            { label: 'lag (messages)', values: hist.map(p => p.lag_total), colour: C.orange, dash: [2, 2] },
          ], { title: 'Ingest health', height: 170, xPad: 30 });
        } else fill(ingestChart, h('p', { class: 'empty' }, 'Collecting samples…'));
        fill(ingestBox, h('table', { id: 'lag-table' }, h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'consumer group'), h('th', { scope: 'col' }, 'topic'), h('th', { scope: 'col', class: 'n' }, 'lag'))),
          h('tbody', null, r.lag.map(l => h('tr', null, h('td', null, l.group), h('td', null, l.topic), h('td', { class: 'n' }, fmtNum(l.messages)))))),
        h('p', { class: 'legend-note' }, (r.fleet ? 'fleet (' + r.fleet.instances + ' instance' + (r.fleet.instances === 1 ? '' : 's') +
          '): records/s ' + fmtNum(r.fleet.consumed_per_s) + ' · inserted/s ' + fmtNum(r.fleet.inserted_per_s) +
          ' · dead letters/s ' + fmtNum(r.fleet.dead_lettered_per_s) + ' · lock commands unacknowledged ' + fmtNum(r.fleet.unacknowledged) + '. ' : '') +
          (r.instance ? 'this instance (' + r.instance + '): ' : '') +
          'records/s ' + fmtNum(r.consumed_per_s) + ' · inserted/s ' + fmtNum(r.inserted_per_s) +
          ' · dead letters/s ' + fmtNum(r.dead_lettered_per_s) + ' · last insert ' + fmtTime(r.last_insert_ms) + '. ' + r.scope + '.'),
        (r.instances && r.instances.length > 1) ? h('table', { id: 'instances-table' }, h('thead', null, h('tr', null,
          ['instance', 'records/s', 'inserted/s', 'dead letters/s', 'unacknowledged'].map(x => h('th', { scope: 'col' }, x)))),
          h('tbody', null, r.instances.map(i => h('tr', null, h('td', { class: 'mono' }, i.instance), h('td', { class: 'n' }, fmtNum(i.consumed_per_s)),
            h('td', { class: 'n' }, fmtNum(i.inserted_per_s)), h('td', { class: 'n' }, fmtNum(i.dead_lettered_per_s)),
            h('td', { class: 'n' }, fmtNum(i.unacknowledged)))))) : null);
      } catch (err) { tileVals.lag = tileVals.dlq = '—'; fill(ingestBox, errorBox(err)); }
    }
    every(REFRESH_MS, async () => {
      await Promise.all([loadSites(), loadRate(), loadOutcome(), loadSplit(), loadAlerts(), loadRevocations(), loadIngest(), loadSlices()]);
      if (!page || page.name !== 'overview') return;
      renderTiles();
      main().dataset.loaded = 'true';
      live('updated ' + fmtTime(Date.now()) + ' UTC');
    });
  }

  function revTable(revs) {
    return h('table', { class: 'revocations' },
      h('thead', null, h('tr', null, ['requested', 'scope', 'subject', 'credentials', 'locks confirmed', 'pending', 'escalated'].map(x => h('th', { scope: 'col' }, x)))),
      h('tbody', null, revs.map(r => h('tr', { class: 'link', tabindex: 0, onclick: () => { location.hash = '#/credentials?revocation=' + encodeURIComponent(r.revocation_id); },
        onkeydown: e => { if (e.key === 'Enter') location.hash = '#/credentials?revocation=' + encodeURIComponent(r.revocation_id); } },
      h('td', null, fmtTime(r.requested_ms)), h('td', null, r.scope), h('td', { class: 'mono' }, short(r.subject_id)), h('td', { class: 'n' }, fmtNum(r.credentials)),
      h('td', null, h('span', { class: 'progress', role: 'img', 'aria-label': r.confirmed + ' of ' + r.locks + ' locks confirmed' },
        h('span', { style: 'width:' + (r.locks ? Math.round(100 * r.confirmed / r.locks) : 100) + '%' })), ' ' + r.confirmed + ' / ' + r.locks),
      h('td', { class: 'n' }, r.pending ? h('strong', null, fmtNum(r.pending)) : '0'),
      h('td', null, r.escalated_ms ? badge('sev-high', fmtTime(r.escalated_ms)) : '')))));
  }

  // ---------- Alert triage ----------
  function alertsPage(params) {
    startPage('alerts');
    const f = { status: params.get('status') || 'open', detector: params.get('detector') || '', severity: params.get('severity') || '',
      site: params.get('site') || '', subject: params.get('subject') || '' };
    const sel = (name, opts, label) => h('label', { class: 'f' }, label, h('select', { name },
      h('option', { value: '' }, 'any'), opts.map(o => h('option', { value: o, selected: o === f[name] }, o))));
    const form = h('form', { class: 'filters', id: 'alert-filters', onsubmit: ev => {
      ev.preventDefault();
      const p = new URLSearchParams();
      new FormData(form).forEach((v, k) => { if (v) p.set(k, v); });
      location.hash = '#/alerts?' + p.toString();
    } }, sel('status', STATUSES, 'Status'), sel('detector', DETECTORS, 'Detector'), sel('severity', SEVERITIES, 'Severity'),
    h('label', { class: 'f' }, 'Site', h('input', { name: 'site', value: f.site, size: 12 })),
    h('label', { class: 'f' }, 'Subject', h('input', { name: 'subject', value: f.subject, size: 16 })),
    h('button', { type: 'submit' }, 'Filter'));
    const list = h('div', { id: 'alert-list' }, h('p', { class: 'muted' }, 'Loading…'));
    setMain(h('h1', null, 'Alert triage'), form, h('section', { class: 'card' }, list));
    every(15000, async () => {
      try {
        const r = await api('/v1/alerts' + qs(Object.assign({}, f, { limit: 200 })));
        if (!r.alerts.length) { fill(list, h('p', { class: 'empty' }, 'No alerts match.')); return; }
        fill(list, h('p', { class: 'muted' }, r.count + (r.count === 1 ? ' alert' : ' alerts') + ', newest first' + (r.count >= r.limit ? ' (first ' + r.limit + ')' : '')),
          h('table', { id: 'alerts' },
            h('thead', null, h('tr', null, ['time (UTC)', 'detector', 'severity', 'status', 'subject', 'credential', 'door', 'site', 'explanation'].map(x => h('th', { scope: 'col' }, x)))),
            h('tbody', null, r.alerts.map(a => {
              const go = () => { location.hash = '#/alerts/' + encodeURIComponent(a.alert_id); };
              return h('tr', { class: 'link', 'data-alert': a.alert_id },
                h('td', null, h('a', { href: '#/alerts/' + encodeURIComponent(a.alert_id), class: 'alert-link' }, fmtTime(a.ts_ms))),
                h('td', null, a.detector), h('td', null, sev(a.severity)), h('td', null, status(a.status)),
                h('td', { class: 'mono' }, short(a.subject_id)), h('td', { class: 'mono' }, short(a.credential_id)),
                h('td', null, a.door_id || '—'), h('td', null, a.site_id || '—'),
                h('td', { onclick: go }, (a.explanation || '').slice(0, 110) + ((a.explanation || '').length > 110 ? '…' : '')));
            }))));
        main().dataset.loaded = 'true';
      } catch (err) { fill(list, errorBox(err, 'alerts')); }
    });
  }

  async function alertDetail(id) {
    startPage('alerts');
    const box = h('div', { id: 'alert-detail' }, h('p', { class: 'muted' }, 'Loading…'));
    setMain(h('p', null, h('a', { href: '#/alerts' }, '← All alerts')), box);
    let a;
    try { a = await api('/v1/alerts/' + encodeURIComponent(id)); } catch (err) { fill(box, errorBox(err, 'alerts')); return; }
    const note = h('textarea', { id: 'note', rows: 2, cols: 60, maxlength: 2000, 'aria-label': 'Note for the status change' });
    const setStatus = async st => {
      try {
        const r = await api('/v1/alerts/' + encodeURIComponent(id), { method: 'PATCH', body: { status: st, note: note.value } });
        toast('Alert ' + r.status.replace('_', ' ') + '.');
        alertDetail(id);
      } catch (err) { toast('Not changed: ' + (err.status === 403 ? 'your role may not change alerts' : err.message)); }
    };
    const suspend = async () => {
      if (!a.credential_id) return;
      if (!window.confirm('Suspend credential ' + a.credential_id + '? Locks will drop it.')) return;
      try {
        await api('/v1/credentials/' + encodeURIComponent(a.credential_id) + ':suspend', { method: 'POST',
          body: { reason: 'alert ' + a.alert_id + ' (' + a.detector + ')' + (note.value ? ': ' + note.value : '') } });
        toast('Credential suspended.');
      } catch (err) { toast('Not suspended: ' + (err.status === 403 ? 'needs the responder or manager role' : err.message)); }
    };
    const timeline = h('div', { class: 'chart', id: 'evidence-chart' });
    const evTable = h('div', { id: 'evidence' }, h('p', { class: 'muted' }, 'Loading evidence…'));
    fill(box,
      h('h1', null, a.detector.replace(/_/g, ' '), ' ', sev(a.severity), ' ', status(a.status)),
      h('div', { class: 'grid' },
        h('section', { class: 'card span-7', 'aria-labelledby': 'h-why' },
          h('h2', { id: 'h-why' }, 'Why this alert'),
          h('p', { id: 'explanation' }, a.explanation),
          h('p', null, h('strong', null, 'Suggested action: '), a.suggested_action || '—'),
          h('dl', { class: 'kv' },
            h('dt', null, 'observed'), h('dd', null, fmtNum(a.observed)),
            h('dt', null, 'threshold'), h('dd', null, fmtNum(a.threshold)),
            h('dt', null, 'baseline'), h('dd', null, a.baseline ? fmtNum(a.baseline) : '—'),
            h('dt', null, 'window'), h('dd', null, fmtTime(a.window_start_ms) + ' → ' + fmtTime(a.window_end_ms) + ' UTC'),
            h('dt', null, 'suppressed repeats'), h('dd', null, fmtNum(a.suppressed_count)),
            a.status_by ? [h('dt', null, 'status by'), h('dd', null, a.status_by + ' at ' + fmtTime(a.status_ms) + (a.status_note ? ': ' + a.status_note : ''))] : null)),
        h('section', { class: 'card span-5', 'aria-labelledby': 'h-who' },
          h('h2', { id: 'h-who' }, 'Who and where'),
          h('dl', { class: 'kv' },
            h('dt', null, 'subject'), h('dd', null, a.subject_id ? h('a', { href: '#/investigate?' + new URLSearchParams({ q: a.subject_id, kind: 'subject' }), class: 'mono' }, a.subject_id) : '—'),
            h('dt', null, 'credential'), h('dd', null, a.credential_id ? h('a', { href: '#/investigate?' + new URLSearchParams({ q: a.credential_id, kind: 'credential' }), class: 'mono' }, a.credential_id) : '—'),
            h('dt', null, 'door'), h('dd', null, a.door_id ? h('a', { href: '#/investigate?' + new URLSearchParams({ q: a.door_id, kind: 'door' }) }, a.door_id) : '—'),
            h('dt', null, 'site'), h('dd', null, a.site_id || '—'),
            h('dt', null, 'raised'), h('dd', null, fmtTime(a.ts_ms) + ' UTC'),
            h('dt', null, 'alert id'), h('dd', { class: 'mono' }, a.alert_id)),
          h('h3', null, 'Triage'),
          can('change_alert_status') ? [h('label', { class: 'f', for: 'note' }, 'Note (kept with the status change)'), note] :
            needs('Status changes are for the analyst and responder roles.'),
          h('div', { class: 'actions' },
            can('change_alert_status') ? [
              h('button', { type: 'button', 'data-status': 'acknowledged', disabled: a.status === 'acknowledged', onclick: () => setStatus('acknowledged') }, 'Acknowledge'),
              h('button', { type: 'button', 'data-status': 'resolved', disabled: a.status === 'resolved', onclick: () => setStatus('resolved') }, 'Resolve'),
              h('button', { type: 'button', class: 'secondary', 'data-status': 'false_positive', disabled: a.status === 'false_positive', onclick: () => setStatus('false_positive') }, 'False positive'),
              a.status !== 'open' ? h('button', { type: 'button', class: 'secondary', 'data-status': 'open', onclick: () => setStatus('open') }, 'Reopen') : null] : null,
            a.credential_id && can('suspend_credential') ? h('button', { type: 'button', class: 'warn', id: 'suspend', onclick: suspend }, 'Suspend credential') : null),
          (a.actions && a.actions.length) ? [h('h3', null, 'Responder actions'), h('ul', null, a.actions.map(x =>
            h('li', null, fmtTime(x.ts_ms) + ' ' + x.action + ' → ' + x.outcome + (x.detail ? ' (' + x.detail + ')' : '') + (x.reversal ? '. Undo: ' + x.reversal : ''))))] : null),
        h('section', { class: 'card span-12', 'aria-labelledby': 'h-ev' },
          h('h2', { id: 'h-ev' }, 'Evidence on a timeline'), timeline, evTable)));
    main().dataset.loaded = 'true';
    try {
      const ev = await api('/v1/alerts/' + encodeURIComponent(id) + '/evidence');
      if (!page || !page.alive) return;
      if (!ev.events.length) {
        fill(timeline, h('p', { class: 'empty' }, ev.evidence_ids.length ? 'The cited events are not in the event store (yet).' : 'This alert cites no events (a batch check).'));
        fill(evTable);
        return;
      }
      eventTimeline(timeline, 'evidence', ev.events, e => e.door_id || e.lock_id, 'door');
      fill(evTable, eventsTable(ev.events), ev.missing ? h('p', { class: 'muted' }, ev.missing + ' cited events not found.') : null);
    } catch (err) { fill(evTable, errorBox(err)); }
  }

  // eventTimeline plots events as points: x time, one lane per laneOf(e),
  // one series per outcome (colour + label; shape differs by series).
  function eventTimeline(holder, key, events, laneOf, laneName) {
    const lanes = [...new Set(events.map(laneOf))].sort();
    const li = new Map(lanes.map((l, i) => [l, i]));
    const sorted = events.slice().sort((a, b) => a.ts_ms - b.ts_ms);
    const xs = sorted.map(e => e.ts_ms);
    const outcomes = ['granted', 'denied', 'error', 'info'].filter(o => sorted.some(e => e.outcome === o));
    const series = outcomes.map(o => ({ label: o, colour: OUTCOME[o], points: true,
      values: sorted.map(e => e.outcome === o ? li.get(laneOf(e)) : null) }));
    timeChart(holder, key, xs, series, { title: 'Events by ' + laneName, height: Math.max(140, 60 + 28 * lanes.length), xPad: true,
      yRange: [-0.5, lanes.length - 0.5], fmt: v => lanes[v] || '',
      yAxis: { size: 150, splits: () => lanes.map((l, i) => i), values: (u, vals) => vals.map(v => lanes[v] || '') } });
  }

  function eventsTable(events) {
    return h('table', { class: 'events' },
      h('thead', null, h('tr', null, ['time (UTC)', 'vendor', 'site', 'door', 'action', 'outcome', 'method', 'reason', 'subject', 'credential', 'device', 'attested'].map(x => h('th', { scope: 'col' }, x)))),
      h('tbody', null, events.map(e => h('tr', null, h('td', null, fmtTime(e.ts_ms)), h('td', null, e.vendor), h('td', null, e.site_id || '—'),
        h('td', null, e.door_id || '—'), h('td', null, e.action), h('td', { class: 'out-' + e.outcome }, e.outcome), h('td', null, e.method),
        h('td', null, e.reason || ''), h('td', { class: 'mono' }, short(e.subject_id)), h('td', { class: 'mono' }, short(e.credential_id)),
        h('td', { class: 'mono' }, short(e.device_id)), h('td', null, e.attested)))));
  }

  // ---------- Investigation ----------
  function investigate(params) {
    startPage('investigate');
    const q = params.get('q') || '';
    const kind = params.get('kind') || 'auto';
    const range = params.get('range') || '7d';
    const input = h('input', { name: 'q', id: 'q', value: q, size: 40, required: true, 'aria-label': 'Search for a subject, credential, door or device id', spellcheck: 'false' });
    const form = h('form', { class: 'filters', id: 'search', onsubmit: ev => {
      ev.preventDefault();
      const p = new URLSearchParams();
      new FormData(form).forEach((v, k) => { if (v) p.set(k, v.trim()); });
      location.hash = '#/investigate?' + p.toString();
    } },
    h('label', { class: 'f' }, 'Subject, credential, door or device id', input),
    h('label', { class: 'f' }, 'Kind', h('select', { name: 'kind' }, ['auto', 'subject', 'credential', 'door', 'device'].map(k => h('option', { value: k, selected: k === kind }, k)))),
    h('label', { class: 'f' }, 'Range', h('select', { name: 'range' }, ['24h', '7d', '30d', '90d'].map(r => h('option', { value: r, selected: r === range }, 'last ' + r)))),
    h('button', { type: 'submit' }, 'Search'));
    const out = h('div', { id: 'investigation' });
    setMain(h('h1', null, 'Investigation'), form, out);
    if (!q) { fill(out, h('p', { class: 'muted' }, 'Search an id to see everything that happened with it, across vendors.')); return; }
    runInvestigation(out, q, kind, range);
  }

  async function runInvestigation(out, q, kind, range) {
    fill(out, h('p', { class: 'muted' }, 'Searching…'));
    const from = 'now-' + range;
    let kinds = [kind];
    if (kind === 'auto') {
      const found = await Promise.all(['subject', 'credential', 'door', 'device'].map(async k => {
        try {
          const r = await api('/v1/events' + qs({ [k]: q, from: 'now-90d', limit: 1 }));
          if (r.events.length) return k;
        } catch (e) { /* not this kind */ }
        if (k === 'credential') {
          try { await api('/v1/credentials/' + encodeURIComponent(q)); return k; } catch (e) { /* not a credential */ }
        }
        return null;
      }));
      kinds = found.filter(Boolean);
      if (!kinds.length) { fill(out, h('p', { class: 'empty' }, 'Nothing found for ' + q + ' in the last 90 days.')); return; }
    }
    const sections = [];
    for (const k of kinds) {
      const sec = h('section', { class: 'card', 'aria-label': k + ' ' + q });
      sections.push(sec);
      if (k === 'subject') subjectSection(sec, q, from);
      else if (k === 'credential') credentialSection(sec, q, from);
      else eventsSection(sec, k, q, from);
    }
    fill(out, kinds.length > 1 ? h('p', { class: 'muted' }, q + ' matches: ' + kinds.join(', ')) : null, sections);
    main().dataset.loaded = 'true';
  }

  async function subjectSection(sec, id, from) {
    const chart = h('div', { class: 'chart', id: 'subject-timeline' });
    const list = h('div');
    const reveal = async () => {
      try {
        const v = await api('/v1/subjects/' + encodeURIComponent(id) + '/identity');
        fill(who, h('dl', { class: 'kv card' },
          h('dt', null, 'reference'), h('dd', { class: 'mono' }, v.subject_ref),
          h('dt', null, 'name'), h('dd', null, v.display_name || '—'),
          h('dt', null, 'recorded'), h('dd', null, fmtTime(v.updated_ms))),
          h('p', { class: 'muted' }, 'This look-up is in the audit log.'));
      } catch (err) {
        fill(who, err.status === 404 ? h('p', { class: 'empty' }, 'No identity is recorded for this subject.')
          : errorBox(err, 're-identification needs the admin role'));
      }
    };
    const who = h('div', { id: 'identity', 'aria-live': 'polite' },
      can('reveal_identity') ? h('button', { type: 'button', id: 'reveal-identity', class: 'secondary', onclick: reveal }, 'Reveal identity (audited)') : null);
    fill(sec, h('h2', null, 'Subject ', h('span', { class: 'mono' }, id), ': timeline across vendors'), who, chart, list);
    try {
      // Access events in the chosen range; lifecycle records and alerts of
      // the subject's whole history (a credential is often issued long
      // before any recent window).
      const [r, life] = await Promise.all([
        api('/v1/subjects/' + encodeURIComponent(id) + '/timeline' + qs({ from, kind: 'access', limit: 500 })),
        api('/v1/subjects/' + encodeURIComponent(id) + '/timeline' + qs({ kind: 'credential,alert', limit: 200 })),
      ]);
      const access = r.items.map(i => i.access);
      const creds = life.items.filter(i => i.kind === 'credential');
      const alerts = life.items.filter(i => i.kind === 'alert');
      if (access.length) eventTimeline(chart, 'subject', access, e => e.vendor, 'vendor');
      else fill(chart, h('p', { class: 'empty' }, 'No access events in range.'));
      fill(list,
        creds.length ? [h('h3', null, 'Credential lifecycle'), h('table', null, h('thead', null, h('tr', null, ['time (UTC)', 'credential', 'op', 'state'].map(x => h('th', { scope: 'col' }, x)))),
          h('tbody', null, creds.map(i => h('tr', null, h('td', null, fmtTime(i.ts_ms)),
            h('td', null, h('a', { class: 'mono', href: '#/investigate?' + new URLSearchParams({ q: i.credential.credential_id || i.id, kind: 'credential' }) }, i.credential.credential_id || i.id)),
            h('td', null, i.credential.op || ''), h('td', null, i.credential.state || '')))))] : null,
        alerts.length ? [h('h3', null, 'Alerts'), h('table', { id: 'subject-alerts' }, h('thead', null, h('tr', null, ['time (UTC)', 'detector', 'severity', 'status'].map(x => h('th', { scope: 'col' }, x)))),
          h('tbody', null, alerts.map(i => h('tr', null, h('td', null, h('a', { href: '#/alerts/' + encodeURIComponent(i.id) }, fmtTime(i.ts_ms))),
            h('td', null, i.alert.detector), h('td', null, sev(i.alert.severity)), h('td', null, status(i.alert.status))))))] : null,
        h('h3', null, 'Access events (' + access.length + (r.next_cursor ? '+' : '') + ')'), access.length ? eventsTable(access) : null);
    } catch (err) { fill(list, errorBox(err)); }
  }

  async function credentialSection(sec, id, from) {
    const card = h('div', { class: 'card card-who', id: 'who-issued' }, h('p', { class: 'muted' }, 'Loading…'));
    const chart = h('div', { class: 'chart', id: 'credential-timeline' });
    const list = h('div');
    fill(sec, h('h2', null, 'Credential ', h('span', { class: 'mono' }, id)), card, chart, list);
    try {
      const v = await api('/v1/credentials/' + encodeURIComponent(id));
      const s = v.summary, c = v.credential;
      fill(card, h('h3', null, 'Who issued this credential, when, to which device, under which approval rule'),
        h('dl', { class: 'kv' },
          h('dt', null, 'issued by'), h('dd', null, s.issued_by || '—'),
          h('dt', null, 'requested'), h('dd', null, s.requested_at || '—'),
          h('dt', null, 'issued'), h('dd', null, s.issued_at || '—'),
          h('dt', null, 'device'), h('dd', { class: 'mono' }, (s.device_id || '—') + (s.attested ? ' (attested)' : ' (not attested)')),
          h('dt', null, 'approval rule'), h('dd', null, s.approval_rule || '—'),
          h('dt', null, 'approvers'), h('dd', null, (s.approvers || []).join(', ') || '—'),
          h('dt', null, 'state'), h('dd', null, h('strong', null, s.state)),
          h('dt', null, 'subject'), h('dd', null, h('a', { class: 'mono', href: '#/investigate?' + new URLSearchParams({ q: c.subject_id, kind: 'subject' }) }, c.subject_id)),
          h('dt', null, 'role'), h('dd', null, c.role || '—'),
          h('dt', null, 'door groups'), h('dd', null, (c.door_groups || []).join(', ') || '—'),
          s.break_glass ? [h('dt', null, 'break-glass'), h('dd', null, 'yes')] : null,
          s.exception ? [h('dt', null, 'exception'), h('dd', null, s.exception)] : null),
        h('h3', null, 'History'),
        h('table', null, h('thead', null, h('tr', null, ['seq', 'time (UTC)', 'op', 'state', 'actor', 'reason'].map(x => h('th', { scope: 'col' }, x)))),
          h('tbody', null, (v.history || []).map(r => h('tr', null, h('td', { class: 'n' }, r.seq), h('td', null, fmtTime(r.ts_ms)), h('td', null, r.op),
            h('td', null, r.state), h('td', null, r.actor || ''), h('td', null, r.reason || ''))))));
    } catch (err) { fill(card, err.status === 404 ? h('p', { class: 'empty' }, 'The control plane does not know this credential.') : errorBox(err)); }
    eventsInto(chart, list, 'credential', id, from, e => e.vendor, 'vendor');
  }

  function eventsSection(sec, kind, id, from) {
    const chart = h('div', { class: 'chart', id: kind + '-timeline' });
    const list = h('div');
    fill(sec, h('h2', null, kind[0].toUpperCase() + kind.slice(1) + ' ', h('span', { class: 'mono' }, id)), chart, list);
    eventsInto(chart, list, kind, id, from, kind === 'door' ? (e => e.subject_id || '(no subject)') : (e => e.door_id || e.lock_id), kind === 'door' ? 'subject' : 'door');
  }

  async function eventsInto(chart, list, kind, id, from, laneOf, laneName) {
    try {
      const r = await api('/v1/events' + qs({ [kind]: id, from, limit: 500 }));
      if (r.events.length) eventTimeline(chart, kind + '-events', r.events, laneOf, laneName);
      else fill(chart, h('p', { class: 'empty' }, 'No access events in range.'));
      fill(list, h('h3', null, 'Access events (' + r.events.length + (r.next_cursor ? '+, newest first' : '') + ')'), r.events.length ? eventsTable(r.events) : null);
    } catch (err) { fill(list, errorBox(err)); }
  }

  // ---------- Credentials ----------
  function credentialsPage(params) {
    startPage('credentials');
    const revId = params.get('revocation') || '';
    const counts = h('div', { id: 'lifecycle' });
    const requests = h('div', { id: 'requests' });
    const reviews = h('div', { id: 'reviews' });
    const revs = h('div', { id: 'revocation-tracker' });
    const revDetail = h('div', { id: 'revocation-detail' });
    setMain(h('h1', null, 'Credentials'), h('div', { class: 'grid' },
      h('section', { class: 'card span-5', 'aria-labelledby': 'h-life' }, h('h2', { id: 'h-life' }, 'Lifecycle'), counts),
      h('section', { class: 'card span-7', 'aria-labelledby': 'h-req' }, h('h2', { id: 'h-req' }, 'Pending provisioning requests'), requests),
      h('section', { class: 'card span-12', 'aria-labelledby': 'h-bg' }, h('h2', { id: 'h-bg' }, 'Break-glass awaiting review'), reviews),
      h('section', { class: 'card span-12', 'aria-labelledby': 'h-rt' }, h('h2', { id: 'h-rt' }, 'Revocation tracker (last 7 days)'), revDetail, revs)));
    every(REFRESH_MS, async () => {
      await Promise.all([
        (async () => {
          try {
            const totals = await Promise.all(STATES.map(s => api('/v1/credentials' + qs({ state: s, limit: 1 })).then(r => r.total)));
            const max = Math.max(1, ...totals);
            fill(counts, h('table', null, h('tbody', null, STATES.map((s, i) => h('tr', null, h('th', { scope: 'row' }, s.replace('_', ' ')),
              h('td', null, h('div', { class: 'barcell' }, h('span', { class: 'bar', style: 'width:' + Math.round(220 * totals[i] / max) + 'px' }), fmtNum(totals[i]))))))));
          } catch (err) { fill(counts, errorBox(err)); }
        })(),
        (async () => {
          if (!can('read_requests')) { fill(requests, needs('Provisioning requests are for the manager role.')); return; }
          try {
            const r = await api('/v1/dashboards/requests');
            fill(requests, r.requests.length ? h('table', null, h('thead', null, h('tr', null, ['created (UTC)', 'kind', 'by', 'items', 'pending', 'done', 'failed'].map(x => h('th', { scope: 'col' }, x)))),
              h('tbody', null, r.requests.map(q => h('tr', null, h('td', null, fmtTime(q.created_ms)), h('td', null, q.kind), h('td', null, q.caller),
                h('td', { class: 'n' }, fmtNum(q.total)), h('td', { class: 'n' }, fmtNum(q.pending)), h('td', { class: 'n' }, fmtNum(q.done)),
                h('td', { class: 'n' }, q.failed ? h('strong', null, fmtNum(q.failed)) : '0'))))) : h('p', { class: 'empty' }, 'No request is waiting.'));
          } catch (err) { fill(requests, errorBox(err, 'provisioning requests need the manager role')); }
        })(),
        (async () => {
          if (!can('read_reviews')) { fill(reviews, needs('Break-glass reviews are for the manager role.')); return; }
          try {
            const r = await api('/v1/breakglass/reviews' + qs({ status: 'open' }));
            fill(reviews, r.reviews.length ? h('table', null, h('thead', null, h('tr', null, ['requested (UTC)', 'credential', 'subject', 'role', 'state', 'requester', 'approvers', 'review', 'reason'].map(x => h('th', { scope: 'col' }, x)))),
              h('tbody', null, r.reviews.map(v => h('tr', null, h('td', null, fmtTime(v.requested_ms)),
                h('td', null, h('a', { class: 'mono', href: '#/investigate?' + new URLSearchParams({ q: v.credential_id, kind: 'credential' }) }, short(v.credential_id))),
                h('td', { class: 'mono' }, short(v.subject_id)), h('td', null, v.role), h('td', null, v.state), h('td', null, v.requester),
                h('td', null, (v.approvers || []).join(', ')), h('td', null, badge(v.status === 'awaiting_review' ? 'st-open' : 'st-acknowledged', v.status.replace('_', ' '))),
                h('td', null, v.reason || ''))))) : h('p', { class: 'empty' }, 'No break-glass access awaits review.'));
          } catch (err) { fill(reviews, errorBox(err, 'break-glass reviews need the manager role')); }
        })(),
        (async () => {
          if (!can('read_revocations')) { fill(revs, needs('The revocation tracker is fleet-wide: not shown to a token limited to sites.')); return; }
          try {
            const r = await api('/v1/dashboards/revocations' + qs({ limit: 50 }));
            fill(revs, r.revocations.length ? revTable(r.revocations) : h('p', { class: 'empty' }, 'No revocations in the last 7 days.'));
          } catch (err) { fill(revs, errorBox(err)); }
        })(),
        revId ? revocationDetail(revDetail, revId) : null,
      ]);
      main().dataset.loaded = 'true';
      live('updated ' + fmtTime(Date.now()) + ' UTC');
    });
  }

  async function revocationDetail(box, id) {
    try {
      const r = await api('/v1/revocations/' + encodeURIComponent(id));
      const layer = (name, p) => h('li', null, name + ': ', h('strong', null, (p.state || '').replace('_', ' ')), ' — ' + p.done + ' / ' + p.total +
        (p.failed ? ', ' + p.failed + ' failed' : '') + (p.why ? ' (' + p.why + ')' : ''));
      fill(box, h('div', { class: 'card card-who' },
        h('h3', null, 'Revocation ', h('span', { class: 'mono' }, r.revocation_id), ' — ', r.status),
        h('p', null, 'Requested ' + fmtTime(r.requested_ms) + ' UTC by ' + r.actor + (r.reason ? ' (' + r.reason + ')' : '') +
          '. Time to disable: ' + (r.time_to_disable_ms ? fmtDur(r.time_to_disable_ms / 1000) : '—') +
          ', to revoke device sessions: ' + (r.time_to_session_revoked_ms ? fmtDur(r.time_to_session_revoked_ms / 1000) : '—') +
          ', to confirm: ' + (r.time_to_confirm_ms ? fmtDur(r.time_to_confirm_ms / 1000) : 'not yet') + '.'),
        r.escalated_ms ? h('p', { id: 'escalation' }, badge('sev-high', 'escalated'), ' past the revocation SLA at ' + fmtTime(r.escalated_ms) +
          ' UTC — alert ', h('a', { class: 'mono', href: '#/alerts/' + encodeURIComponent(r.escalation_alert_id) }, short(r.escalation_alert_id))) : null,
        h('ul', null, layer('entitlement', r.layers.entitlement), layer('device session', r.layers.device_session), layer('locks', r.layers.locks)),
        h('h3', null, 'Straggler locks (' + r.pending_locks.length + ')'),
        r.pending_locks.length ? h('table', { id: 'stragglers' }, h('thead', null, h('tr', null, ['vendor', 'lock', 'credential', 'pending for', 'sends', 'past SLA'].map(x => h('th', { scope: 'col' }, x)))),
          h('tbody', null, r.pending_locks.map(l => h('tr', null, h('td', null, l.vendor), h('td', { class: 'mono' }, l.lock_id), h('td', { class: 'mono' }, short(l.credential_id)),
            h('td', null, fmtDur((l.age_ms || 0) / 1000)), h('td', { class: 'n' }, fmtNum(l.attempts || 0)), h('td', null, l.overdue ? h('strong', null, 'yes') : 'no'))))) : h('p', { class: 'empty' }, 'Every lock confirmed.'),
        (r.failed_locks || []).length ? h('div', null, h('h3', null, 'Locks given up (' + r.failed_locks.length + ')'),
          h('ul', null, r.failed_locks.map(l => h('li', null, h('span', { class: 'mono' }, l.vendor + '/' + l.lock_id), ': ' + l.error)))) : null,
        h('p', null, h('a', { href: '#/credentials' }, 'Close'))));
    } catch (err) { fill(box, errorBox(err)); }
  }

  // ---------- Reports ----------
  function reportsPage(params) {
    startPage('reports');
    const list = h('div', { id: 'report-list' });
    const view = h('div', { id: 'report-view' });
    // No week: the server's default (the last complete week, or the week in
    // progress when the stored history is younger than that).
    const week = h('input', { name: 'week', value: params.get('week') || '', placeholder: 'latest', size: 10, pattern: '\\d{4}-W\\d{2}', 'aria-label': 'ISO week' });
    const site = h('input', { name: 'site', value: params.get('site') || '', size: 12, 'aria-label': 'site (optional)' });
    const form = h('form', { class: 'filters', id: 'report-form', onsubmit: ev => { ev.preventDefault(); showReport(view, '/v1/reports/weekly' + qs({ week: week.value.trim(), site: site.value.trim() }), week.value.trim()); } },
      h('label', { class: 'f' }, 'Week', week), h('label', { class: 'f' }, 'Site (optional)', site), h('button', { type: 'submit', id: 'report-submit' }, 'Compute report'));
    setMain(h('h1', null, 'Weekly fleet-health reports'), h('div', { class: 'grid' },
      h('section', { class: 'card span-4', 'aria-labelledby': 'h-stored' }, h('h2', { id: 'h-stored' }, 'Stored reports'), list),
      h('section', { class: 'card span-8', 'aria-labelledby': 'h-view' }, h('h2', { id: 'h-view' }, 'Report'), form, view)));
    (async () => {
      try {
        const r = await api('/v1/reports' + qs({ limit: 100 }));
        fill(list, r.reports.length ? h('ul', null, r.reports.map(x => h('li', null, h('a', { href: '#', onclick: e => { e.preventDefault(); showReport(view, '/v1/reports/' + encodeURIComponent(x.report_id), x.report_id); } },
          x.week + (x.site ? ' · ' + x.site : '')), h('span', { class: 'muted' }, ' ' + x.trigger + ', ' + fmtTime(x.generated_ms))))) : h('p', { class: 'empty' }, 'No stored report yet (they are generated weekly).'));
      } catch (err) { fill(list, errorBox(err, 'reports need the manager role')); }
    })();
    showReport(view, '/v1/reports/weekly' + qs({ week: week.value.trim(), site: site.value.trim() }), week.value.trim() || 'latest');
  }

  async function showReport(view, base, name) {
    fill(view, h('p', { class: 'muted' }, 'Loading…'));
    const sep = base.includes('?') ? '&' : '?';
    try {
      const html = await api(base + sep + 'format=html', { text: true, accept: 'text/html' });
      const frame = h('iframe', { class: 'report', title: 'Report ' + name, sandbox: '' });
      frame.addEventListener('load', () => { frame.dataset.loaded = 'true'; });
      frame.srcdoc = html;
      const dl = fmt => h('button', { type: 'button', class: 'secondary', onclick: async () => {
        try {
          const body = await api(base + sep + 'format=' + fmt, { text: true, accept: '*/*' });
          const url = URL.createObjectURL(new Blob([body], { type: fmt === 'json' ? 'application/json' : fmt === 'csv' ? 'text/csv' : fmt === 'md' ? 'text/markdown' : 'text/html' }));
          const a = h('a', { href: url, download: 'keyfleet-report-' + name.replace('~', '-') + '.' + fmt });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 1000);
        } catch (err) { toast('Download failed: ' + err.message); }
      } }, 'Download ' + fmt.toUpperCase());
      fill(view, h('div', { class: 'actions' }, ['html', 'md', 'csv', 'json'].map(dl)), frame);
    } catch (err) { fill(view, errorBox(err, 'reports need the manager role')); }
  }

  function isoWeek(d) {
    const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
    const day = (t.getUTCDay() + 6) % 7;
    t.setUTCDate(t.getUTCDate() - day + 3);
    const firstThu = new Date(Date.UTC(t.getUTCFullYear(), 0, 4));
    const week = 1 + Math.round(((t - firstThu) / 86400000 - 3 + ((firstThu.getUTCDay() + 6) % 7)) / 7);
    return t.getUTCFullYear() + '-W' + pad(week);
  }

  // ---------- Estate: weak links and the upgrade plan ----------
  function estatePage(params) {
    startPage('estate');
    const days = params.get('days') || '30';
    const order = params.get('order') === 'plan' ? 'plan' : 'risk';
    const site = params.get('site') || '';
    const nav = changes => {
      const p = new URLSearchParams(params);
      for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
      location.hash = '#/estate?' + p.toString();
    };
    const tiles = h('div', { class: 'tiles', id: 'estate-tiles' });
    const links = h('div', { id: 'weak-links' });
    const migrations = h('div', { id: 'migrations' });
    const siteInput = h('input', { id: 'f-estate-site', value: site, size: 12, 'aria-label': 'site (optional)',
      onchange: e => nav({ site: e.target.value.trim() }) });
    setMain(
      h('h1', null, 'Estate: weak links and the upgrade plan'),
      h('p', { class: 'muted' }, 'Doors whose risk tier demands more than their lock can do (docs/capabilities.md), ranked by ' +
        'tier weight × gap severity × (uses + 1), with the cheapest upgrade that closes every gap. The plan upgrades critical doors first.'),
      h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Filters' },
        h('label', { class: 'f' }, 'Traffic of the last', h('select', { id: 'f-days', onchange: e => nav({ days: e.target.value }) },
          ['7', '30', '90'].map(d => h('option', { value: d, selected: d === days }, d + ' days')))),
        h('label', { class: 'f' }, 'Order', h('select', { id: 'f-order', onchange: e => nav({ order: e.target.value }) },
          h('option', { value: 'risk', selected: order === 'risk' }, 'by risk'),
          h('option', { value: 'plan', selected: order === 'plan' }, 'upgrade plan (critical first)'))),
        h('label', { class: 'f' }, 'Site', siteInput)),
      tiles,
      h('div', { class: 'grid' },
        h('section', { class: 'card span-12', 'aria-labelledby': 'h-weak' }, h('h2', { id: 'h-weak' }, order === 'plan' ? 'Upgrade plan' : 'Weak links'), links),
        h('section', { class: 'card span-12', 'aria-labelledby': 'h-mig' }, h('h2', { id: 'h-mig' }, 'Vendor migrations'), migrations)));
    every(60000, async () => {
      try {
        const r = await api((order === 'plan' ? '/v1/estate/plan' : '/v1/estate/weak-links') + qs({ days, site, limit: 500 }));
        const byTier = {};
        r.weak_links.forEach(l => { byTier[l.lock.tier] = (byTier[l.lock.tier] || 0) + 1; });
        const tile = (label, value, hint) => h('div', { class: 'tile' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), hint ? h('div', { class: 'hint' }, hint) : null);
        fill(tiles, tile('locks in service', fmtNum(r.locks)), tile('weak links', fmtNum(r.total), r.unclassified ? r.unclassified + ' without a tier' : null),
          [1, 2, 3].map(t => tile('tier ' + t, fmtNum(byTier[t] || 0), 'weak links')));
        const gap = g => h('span', { class: 'badge sev-' + g.severity, title: 'needs ' + g.need + '; has ' + g.have }, g.capability);
        fill(links, r.weak_links.length ? h('table', null,
          h('thead', null, h('tr', null, ['#', 'tier', 'site', 'door', 'lock', 'judged as', 'missing', 'uses', 'risk', 'upgrade'].map(x => h('th', { scope: 'col', class: ['uses', 'risk', '#'].includes(x) ? 'n' : null }, x)))),
          h('tbody', null, r.weak_links.map((l, i) => h('tr', { 'data-lock': l.lock.vendor + '/' + l.lock.lock_id },
            h('td', { class: 'n' }, i + 1), h('td', null, l.lock.tier || 'unclassified'), h('td', null, l.lock.site_id), h('td', null, l.lock.door_id),
            h('td', { class: 'mono' }, l.lock.vendor + '/' + l.lock.lock_id),
            h('td', null, l.profile, l.fallback ? h('div', { class: 'muted' }, l.fallback) : null),
            h('td', null, l.gaps.map(gap).reduce((acc, el) => acc.concat(acc.length ? [' ', el] : [el]), [])),
            h('td', { class: 'n' }, fmtNum(l.uses)), h('td', { class: 'n' }, fmtNum(l.risk)),
            h('td', null, l.upgrade ? (l.upgrade.kind === 'firmware' ? 'firmware ' + l.upgrade.vendor + '/' + l.upgrade.model + ' ' + l.upgrade.firmware
              : 'replace with ' + l.upgrade.vendor + '/' + l.upgrade.model + (l.upgrade.firmware ? ' ' + l.upgrade.firmware : '') + ' (cost ' + l.upgrade.cost + ')') : 'no row of the matrix closes every gap')))))
          : h('p', { class: 'empty' }, 'No weak link: every door is on a lock that can do what its tier demands.'));
        main().dataset.loaded = 'true';
        live('updated ' + fmtTime(Date.now()) + ' UTC');
      } catch (err) { fill(links, errorBox(err)); }
      if (!can('read_migrations')) { fill(migrations, needs('Vendor migrations are for the admin role.')); return; }
      try {
        const m = await api('/v1/estate/migrations' + qs({ limit: 20 }));
        fill(migrations, m.migrations.length ? h('table', null,
          h('thead', null, h('tr', null, ['requested (UTC)', 'from', 'to', 'locks', 'credentials', 'by', 'reason'].map(x => h('th', { scope: 'col' }, x)))),
          h('tbody', null, m.migrations.map(x => h('tr', null, h('td', null, fmtTime(x.requested_ms)), h('td', null, x.from_vendor), h('td', null, x.to_vendor),
            h('td', { class: 'n' }, fmtNum(x.locks)), h('td', { class: 'n' }, fmtNum(x.credentials)), h('td', null, x.actor), h('td', null, x.reason || '')))))
          : h('p', { class: 'empty' }, 'No vendor migration yet (keyfleet estate migrate).'));
      } catch (err) { fill(migrations, errorBox(err, 'vendor migrations need the admin role')); }
    });
  }

  // ---------- Exceptions: the exception register ----------
  function exceptionsPage(params) {
    startPage('exceptions');
    const state = params.get('state') || 'open';
    const kind = params.get('kind') || '';
    const site = params.get('site') || '';
    const nav = changes => {
      const p = new URLSearchParams(params);
      for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
      location.hash = '#/exceptions?' + p.toString();
    };
    const tiles = h('div', { class: 'tiles', id: 'exception-tiles' });
    const rates = h('div', { id: 'exception-rates' });
    const list = h('div', { id: 'exceptions' });
    setMain(
      h('h1', null, 'Exception register'),
      h('p', { class: 'muted' }, 'Recorded, approved departures from policy, each with its compensating control, approvers, expiry and review date ' +
        '(docs/api.md#exception-register). Managers and admins record, renew and close them through POST/PUT /v1/exceptions; ' +
        'expiring and expired ones raise expired_exception alerts.'),
      h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Filters' },
        h('label', { class: 'f' }, 'State', h('select', { id: 'f-ex-state', onchange: e => nav({ state: e.target.value }) },
          ['open', 'active', 'expiring', 'expired', 'pending', 'closed'].map(x => h('option', { value: x, selected: x === state }, x)))),
        h('label', { class: 'f' }, 'Kind', h('select', { id: 'f-ex-kind', onchange: e => nav({ kind: e.target.value }) },
          h('option', { value: '', selected: !kind }, 'any'),
          ['credential', 'door', 'lock', 'policy'].map(x => h('option', { value: x, selected: x === kind }, x)))),
        h('label', { class: 'f' }, 'Site', h('input', { id: 'f-ex-site', value: site, size: 12, 'aria-label': 'site (optional)',
          onchange: e => nav({ site: e.target.value.trim() }) }))),
      tiles,
      h('div', { class: 'grid' },
        h('section', { class: 'card span-12', 'aria-labelledby': 'h-ex-list' }, h('h2', { id: 'h-ex-list' }, 'Exceptions'), list),
        h('section', { class: 'card span-12', 'aria-labelledby': 'h-ex-rates' }, h('h2', { id: 'h-ex-rates' }, 'Per 1,000 live credentials'), rates)));
    const scopeText = sc => Object.entries(sc || {}).map(([k, v]) => k.replace('_id', '') + ' ' + v).join(', ') || '—';
    const stateBadge = st => badge('ex-' + st, st);
    every(60000, async () => {
      try {
        const k = await api('/v1/exceptions:kpis' + qs({ site }));
        const tile = (label, value, hint) => h('div', { class: 'tile' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), hint ? h('div', { class: 'hint' }, hint) : null);
        fill(tiles, tile('open', fmtNum(k.open), fmtNum(k.per_1000_credentials) + ' per 1,000 credentials'),
          tile('expiring', fmtNum(k.by_state.expiring)), tile('expired, still open', fmtNum(k.by_state.expired)),
          tile('review overdue', fmtNum(k.review_overdue)),
          tile('median age', fmtNum(k.age.median_days) + ' d', k.age.oldest_id ? 'oldest ' + fmtNum(k.age.max_days) + ' d' : null));
        const rows = k.by_reason.map(g => ['reason', g]).concat(k.by_site.map(g => ['site', g]));
        fill(rates, rows.length ? h('table', null,
          h('thead', null, h('tr', null, ['by', 'key', 'open', 'credentials', 'per 1,000'].map(x => h('th', { scope: 'col', class: x === 'by' || x === 'key' ? null : 'n' }, x)))),
          h('tbody', null, rows.map(([by, g]) => h('tr', null, h('td', null, by), h('td', null, g.key), h('td', { class: 'n' }, fmtNum(g.count)),
            h('td', { class: 'n' }, fmtNum(by === 'site' ? (g.credentials || 0) : k.credentials)), h('td', { class: 'n' }, fmtNum(g.per_1000_credentials))))))
          : h('p', { class: 'empty' }, 'No open exception.'));
      } catch (err) { fill(rates, errorBox(err)); }
      try {
        const r = await api('/v1/exceptions' + qs({ state, kind, site, limit: 1000 }));
        fill(list, r.exceptions.length ? h('table', null,
          h('thead', null, h('tr', null, ['exception', 'kind', 'scope', 'reason', 'state', 'start (UTC)', 'expiry (UTC)', 'review', 'approvers', 'compensating control'].map(x => h('th', { scope: 'col' }, x)))),
          h('tbody', null, r.exceptions.map(x => h('tr', { 'data-exception': x.id },
            h('td', { class: 'mono' }, x.id), h('td', null, x.kind), h('td', null, scopeText(x.scope)),
            h('td', null, x.reason, x.description ? h('div', { class: 'muted' }, x.description) : null), h('td', null, stateBadge(x.state)),
            h('td', null, fmtTime(x.start_ms)), h('td', null, fmtTime(x.expiry_ms)),
            h('td', null, fmtTime(x.review_ms || x.expiry_ms), x.review_due ? h('div', { class: 'muted' }, 'due') : null),
            h('td', null, (x.approvers || []).join(', ')), h('td', null, x.compensating_control)))))
          : h('p', { class: 'empty' }, 'No exception matches.'));
        main().dataset.loaded = 'true';
        live('updated ' + fmtTime(Date.now()) + ' UTC');
      } catch (err) { fill(list, errorBox(err)); }
    });
  }

  // ---------- router ----------
  async function route() {
    if (!token()) { renderLogin(); return; }
    if (!session) {
      try { await loadSession(); } catch (err) { if (err.status !== 401) renderLogin('Could not load the session: ' + err.message); return; }
    }
    document.getElementById('top').hidden = false;
    const hash = location.hash || '#/overview';
    const [path, query] = hash.slice(1).split('?');
    const params = new URLSearchParams(query || '');
    const parts = path.split('/').filter(Boolean);
    delete main().dataset.loaded;
    switch (parts[0]) {
      case 'overview': overview(params); break;
      case 'alerts': if (parts[1]) alertDetail(decodeURIComponent(parts[1])); else alertsPage(params); break;
      case 'investigate': investigate(params); break;
      case 'credentials': credentialsPage(params); break;
      case 'reports': if (session.pages.includes('reports')) reportsPage(params); else location.hash = '#/overview'; break;
      case 'estate': estatePage(params); break;
      case 'exceptions': exceptionsPage(params); break;
      default: location.hash = '#/overview';
    }
    main().focus({ preventScroll: true });
  }

  window.addEventListener('hashchange', route);
  document.getElementById('logout').addEventListener('click', () => logout(''));
  route();
})();

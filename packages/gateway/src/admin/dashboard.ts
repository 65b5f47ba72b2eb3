/**
 * The dashboard: one self-contained HTML page (no CDN, no external file: the script and style are
 * inline, allowed by a per-response CSP nonce). It signs in with the one-time code in its URL
 * fragment (`/dashboard#code=…`, printed at start) or a pasted admin macaroon, keeps the macaroon in
 * `sessionStorage` for the tab only, and sends it to this origin only, in `Grpc-Metadata-Macaroon`.
 *
 * What it shows: totals (revenue, payments, challenges), revenue over the last hour as an inline SVG
 * bar chart, the services with editable prices, paid tokens with a revoke button, recent
 * transactions (challenges pending, payments settled) and the live request feed (the server-sent
 * events of `/api/admin/events`, read with `fetch` so the macaroon travels in a header, not a URL).
 * All data is written with `textContent`, never as HTML.
 *
 * @example
 * response.end(page(nonce)); // with Content-Security-Policy: script-src 'nonce-<nonce>' …
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #6a737d; --line: #d0d7de; --accent: #f7931a; --bg: #fff; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8b949e; --line: #30363d; --bg: #0d1117; } }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: baseline; padding: .8rem 1.2rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.1rem; margin: 0; } header small { color: var(--muted); }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; padding: 1rem 1.2rem; }
section { border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; overflow: auto; }
section h2 { font-size: .95rem; margin: 0 0 .6rem; }
.cards { display: flex; gap: 1.5rem; } .card b { display: block; font-size: 1.5rem; } .card span { color: var(--muted); }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.mono, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
input[type=number] { width: 7em; } button { cursor: pointer; }
#feed { list-style: none; margin: 0; padding: 0; max-height: 18rem; overflow: auto; font-family: ui-monospace, monospace; font-size: 12px; }
#signin { max-width: 40rem; margin: 3rem auto; padding: 1rem; } #signin textarea { width: 100%; height: 5rem; }
.err { color: #cf222e; } .ok { color: #1a7f37; } .hidden { display: none; }
svg text { fill: var(--muted); font-size: 10px; } svg rect.bar { fill: var(--accent); }
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
let macaroon = sessionStorage.getItem('l402-admin-macaroon');
let feedAbort;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v); else if (k.startsWith('on')) node.addEventListener(k.slice(2), v); else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path, init = {}) {
  const headers = { 'grpc-metadata-macaroon': macaroon, ...(init.body ? { 'content-type': 'application/json' } : {}) };
  const response = await fetch('/api/admin/' + path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) { signOut('the admin macaroon was refused: ' + (body.message || '')); throw new Error(body.message); }
  if (!response.ok) throw new Error(body.message || ('HTTP ' + response.status));
  return body;
}

function say(text, ok) { const s = $('status'); s.textContent = text; s.className = ok ? 'ok' : 'err'; }

function signOut(message) {
  sessionStorage.removeItem('l402-admin-macaroon'); macaroon = null;
  if (feedAbort) feedAbort.abort();
  $('app').classList.add('hidden'); $('signin').classList.remove('hidden');
  $('signin-error').textContent = message || '';
}

async function signIn() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const code = fragment.get('code');
  if (code) {
    history.replaceState(null, '', location.pathname);
    const response = await fetch('/api/admin/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
    const body = await response.json().catch(() => ({}));
    if (response.ok) { macaroon = body.macaroon; sessionStorage.setItem('l402-admin-macaroon', macaroon); }
    else $('signin-error').textContent = body.message || 'sign-in failed';
  }
  if (!macaroon) { $('signin').classList.remove('hidden'); return; }
  $('signin').classList.add('hidden'); $('app').classList.remove('hidden');
  await refresh();
  live();
}

function chart(stats) {
  const svg = $('chart');
  while (svg.firstChild) svg.firstChild.remove();
  const ns = 'http://www.w3.org/2000/svg';
  const W = 600, H = 160, left = 40, bottom = 20;
  const values = stats.buckets.map((b) => Number(b.revenue_sats));
  const max = Math.max(1, ...values);
  const w = (W - left) / Math.max(1, values.length);
  const add = (tag, attrs, text) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v)); if (text !== undefined) n.textContent = text; svg.append(n); return n; };
  add('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: 'currentColor', 'stroke-opacity': 0.3 });
  add('text', { x: 2, y: 12 }, max + ' sat');
  add('text', { x: 2, y: H - bottom }, '0');
  stats.buckets.forEach((b, i) => {
    const v = Number(b.revenue_sats);
    if (v === 0) return;
    const h = (H - bottom - 16) * v / max;
    const bar = add('rect', { class: 'bar', x: left + i * w + 1, y: H - bottom - h, width: Math.max(1, w - 2), height: h, 'data-revenue': v });
    const title = document.createElementNS(ns, 'title'); title.textContent = b.start + ': ' + v + ' sat, ' + b.transaction_count + ' payments'; bar.append(title);
  });
  const first = stats.buckets[0], last = stats.buckets[stats.buckets.length - 1];
  if (first) add('text', { x: left, y: H - 4 }, first.start.slice(11, 16));
  if (last) add('text', { x: W - 30, y: H - 4 }, last.start.slice(11, 16));
}

async function refresh() {
  const from = new Date(Date.now() - 3600e3).toISOString().replace(/\\.\\d+Z$/, 'Z');
  const to = new Date(Date.now() + 60e3).toISOString().replace(/\\.\\d+Z$/, 'Z');
  const [info, stats, services, tokens, txs] = await Promise.all([
    api('info'), api('stats?bucket=60&from=' + from + '&to=' + to), api('stats'), api('tokens?limit=20'), api('transactions?limit=20'),
  ]).then(async ([info, recent, all, tokens, txs]) => [info, { recent, all }, await api('services'), tokens, txs]);
  $('info').textContent = info.listen_addr + ' · ' + info.network + ' · ' + info.store + ' · ' + info.lightning;
  $('revenue').textContent = stats.all.total_revenue_sats; $('payments').textContent = stats.all.transaction_count; $('challenges').textContent = stats.all.challenge_count;
  chart(stats.recent);
  const sbody = $('services'); sbody.replaceChildren();
  for (const s of services.services) {
    const price = el('input', { type: 'number', min: 0, value: s.price, dataset: { service: s.name } });
    const save = el('button', { onclick: async () => {
      try { const r = await api('services/' + encodeURIComponent(s.name), { method: 'PUT', body: JSON.stringify({ price: Number(price.value) }) }); say('price of ' + r.name + ' is now ' + r.price + ' sat', true); refresh(); }
      catch (e) { say(e.message, false); }
    }, dataset: { save: s.name } }, 'Save');
    sbody.append(el('tr', {}, el('td', {}, s.name), el('td', { className: 'mono' }, s.path_regexp || '(any)'), el('td', {}, s.auth), el('td', {}, price, ' ', save)));
  }
  const tbody = $('tokens'); tbody.replaceChildren();
  for (const t of tokens.tokens) {
    const revoke = t.revoked ? el('span', {}, 'revoked') : el('button', { onclick: async () => {
      try { await api('tokens/' + t.token_id, { method: 'DELETE' }); say('token ' + t.token_id.slice(0, 12) + '… revoked', true); refresh(); }
      catch (e) { say(e.message, false); }
    }, dataset: { revoke: t.token_id } }, 'Revoke');
    tbody.append(el('tr', { dataset: { token: t.token_id } }, el('td', { className: 'mono' }, t.token_id.slice(0, 16) + '…'), el('td', {}, t.service_name), el('td', {}, t.price_sats), el('td', {}, t.settled_at), el('td', {}, revoke)));
  }
  const xbody = $('transactions'); xbody.replaceChildren();
  for (const t of txs.transactions) {
    xbody.append(el('tr', { dataset: { payment: t.payment_hash } }, el('td', {}, t.created_at), el('td', {}, t.service_name), el('td', {}, t.price_sats), el('td', {}, t.state === 'settled' ? 'payment' : 'challenge'), el('td', { className: 'mono' }, t.payment_hash.slice(0, 16) + '…')));
  }
}

let pending;
function refreshSoon() { clearTimeout(pending); pending = setTimeout(() => refresh().catch((e) => say(e.message, false)), 300); }

async function live() {
  feedAbort = new AbortController();
  try {
    const response = await fetch('/api/admin/events', { headers: { 'grpc-metadata-macaroon': macaroon }, signal: feedAbort.signal, cache: 'no-store' });
    if (!response.ok) throw new Error('live feed: HTTP ' + response.status);
    $('live').textContent = 'live';
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\\n\\n')) >= 0) {
        const frame = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        const type = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (type !== 'request' || !data) continue;
        const e = JSON.parse(data);
        const feed = $('feed');
        feed.prepend(el('li', {}, e.time.slice(11, 19) + ' ' + e.status + ' ' + e.method + ' ' + e.path + (e.service ? ' [' + e.service + ' ' + e.outcome + ']' : '')));
        while (feed.children.length > 200) feed.lastChild.remove();
        refreshSoon();
      }
    }
  } catch (e) { if (e.name !== 'AbortError') say(e.message, false); }
  $('live').textContent = 'disconnected';
}

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('macaroon').value.trim();
  if (!/^[0-9a-fA-F]+$/.test(value)) { $('signin-error').textContent = 'paste the macaroon in hex (xxd -p -c 1000 admin.macaroon)'; return; }
  macaroon = value; sessionStorage.setItem('l402-admin-macaroon', value);
  signIn().catch((e) => say(e.message, false));
});
$('signout').addEventListener('click', () => signOut(''));
signIn().catch((e) => say(e.message, false));
`;

/**
 * The page, with `nonce` on its inline script and style.
 *
 * @example
 * page('r4nd0m'); // '<!doctype html>…<script nonce="r4nd0m">…'
 */
export function page(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>l402 gateway</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<div id="signin" class="hidden">
  <h1>l402 gateway dashboard</h1>
  <form id="signin-form">
    <p>Paste the admin macaroon in hex (<code>xxd -p -c 1000 ~/.l402/admin.macaroon</code>, or <code>l402 admin macaroon</code>), or open the one-time link the gateway printed at start.</p>
    <textarea id="macaroon" autocomplete="off" spellcheck="false"></textarea>
    <p><button type="submit">Sign in</button> <span id="signin-error" class="err"></span></p>
  </form>
</div>
<div id="app" class="hidden">
<header><h1>l402 gateway</h1><small id="info"></small><small id="live">connecting…</small><span id="status"></span><button id="signout">Sign out</button></header>
<main>
  <section><h2>Totals</h2>
    <div class="cards">
      <div class="card"><b id="revenue">0</b><span>sat revenue</span></div>
      <div class="card"><b id="payments">0</b><span>payments</span></div>
      <div class="card"><b id="challenges">0</b><span>challenges</span></div>
    </div>
    <h2>Revenue, last hour (per minute)</h2>
    <svg id="chart" viewBox="0 0 600 160" width="100%" role="img" aria-label="revenue per minute"></svg>
  </section>
  <section><h2>Services</h2>
    <table><thead><tr><th>name</th><th>path</th><th>auth</th><th>price (sat)</th></tr></thead><tbody id="services"></tbody></table>
  </section>
  <section><h2>Tokens (paid)</h2>
    <table><thead><tr><th>token id</th><th>service</th><th>sat</th><th>paid at</th><th></th></tr></thead><tbody id="tokens"></tbody></table>
  </section>
  <section><h2>Payments and challenges</h2>
    <table><thead><tr><th>created</th><th>service</th><th>sat</th><th>kind</th><th>payment hash</th></tr></thead><tbody id="transactions"></tbody></table>
  </section>
  <section><h2>Live requests</h2><ul id="feed"></ul></section>
</main>
</div>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}

// scorch: the host overview page. Draws /api/overview.json (the USE table
// with sparklines coloured by status, findings, top processes, kernel
// errors) and redraws it at every sample from the server-sent events of
// /api/overview/events. A finding's "Drill down" posts its capture to
// /api/captures and opens the capture's page.
// Every string from the server is set as text (textContent, attributes),
// never as HTML: process names and kernel messages are anyone's.

const SVGNS = 'http://www.w3.org/2000/svg';
const root = document.getElementById('overview');
const minutes = Number(root.dataset.minutes) || 5;

function el(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// fmt writes a figure with its units; null is "–" (not measured here).
function fmt(v, units) {
  if (v === null || v === undefined) return '–';
  if (units === 'bytes' || units === 'bytes/s' || (units || '').startsWith('storage bytes')) {
    const k = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let x = v;
    while (Math.abs(x) >= 1024 && i < k.length - 1) { x /= 1024; i++; }
    return `${x.toFixed(i ? 1 : 0)} ${k[i]}${units.endsWith('/s') ? '/s' : ''}`;
  }
  if (units === 'bits/s') return `${(v / 1e6).toFixed(0)} Mbit/s`;
  const n = Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
  if (units === '%' || (units || '').startsWith('% ')) return `${n}%`;
  return units ? `${n} ${units}` : n;
}

// spark draws one series as bars, each coloured by that sample's status.
function spark(values, status, label) {
  const w = 160;
  const h = 26;
  const svg = document.createElementNS(SVGNS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const known = values.filter((v) => v !== null);
  if (!known.length) return svg;
  const max = Math.max(1e-9, ...known);
  const n = Math.max(values.length, minutes * 60);
  const bw = w / n;
  const off = n - values.length; // newest at the right edge
  values.forEach((v, i) => {
    if (v === null) return;
    const bh = Math.max(1, (v / max) * (h - 2));
    const r = document.createElementNS(SVGNS, 'rect');
    r.setAttribute('x', ((off + i) * bw).toFixed(2));
    r.setAttribute('y', (h - bh).toFixed(2));
    r.setAttribute('width', Math.max(bw, 0.6).toFixed(2));
    r.setAttribute('height', bh.toFixed(2));
    r.setAttribute('class', `s${status[i] || 0}`);
    svg.appendChild(r);
  });
  const t = document.createElementNS(SVGNS, 'title');
  t.textContent = `${label}: max ${fmt(max)}`;
  svg.appendChild(t);
  return svg;
}

function badge(status, parent) {
  return el('span', { class: `badge ${status === 'critical' || status === 'warning' ? status : 'ok'}` }, parent, status);
}

function drawTable(o) {
  const body = document.querySelector('#use tbody');
  body.replaceChildren();
  for (const r of o.resources) {
    const tr = el('tr', { class: 'res', 'data-resource': r.resource, 'data-status': r.status }, body);
    el('td', { class: 'name' }, tr, r.resource);
    badge(r.status, el('td', {}, tr));
    for (const col of ['utilization', 'saturation', 'errors']) {
      // The cell keeps the figure short; its units are in the tooltip and
      // on the details line.
      const u = r.units[col] || '';
      el('td', { class: `num ${col}`, title: u || 'not measured' }, tr, fmt(r[col], u.startsWith('%') ? '%' : ''));
      const td = el('td', { class: 'spark' }, tr);
      td.appendChild(spark(r.series[col] || [], r.series.status || [], `${r.resource} ${col} (${r.units[col] || 'none'})`));
    }
    el('td', { class: 'rule' }, tr, r.rule);
    const dt = el('tr', { class: 'details' }, body);
    const parts = (r.details || []).map((d) => `${d.name} ${fmt(d.value, d.units)}`);
    if (r.note) parts.unshift(r.note);
    const units = ['utilization', 'saturation', 'errors'].filter((c) => r.units[c]).map((c) => `${c}: ${r.units[c]}`);
    el('td', { class: 'details', colspan: '9' }, dt, `${parts.join(' · ')}${units.length ? ` — ${units.join(', ')}` : ''}`);
  }
}

async function drill(f, button) {
  const err = document.getElementById('drill-error');
  err.textContent = '';
  button.disabled = true;
  button.textContent = 'starting…';
  try {
    const res = await fetch('/api/captures', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(f.drill),
      credentials: 'same-origin',
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || !body.id) throw new Error(body.error || `HTTP ${res.status}`);
    window.location.assign(`/captures/${encodeURIComponent(body.id)}`);
  } catch (e) {
    err.textContent = `Could not start the ${f.drill.type} capture: ${e.message}`;
    button.disabled = false;
    button.textContent = 'Drill down';
  }
}

function drawFindings(o) {
  const ul = document.getElementById('findings');
  // Keep a button that is starting its capture: redraws come every second.
  if (ul.querySelector('button:disabled')) return;
  ul.replaceChildren();
  document.getElementById('no-findings').hidden = o.findings.length > 0;
  for (const f of o.findings) {
    const li = el('li', { 'data-resource': f.resource, 'data-drill-type': f.drill.type }, ul);
    badge(f.status, li);
    el('span', { class: 'res' }, li, f.resource);
    el('span', { class: 'msg' }, li, f.message);
    const what = [f.drill.type, f.drill.pid ? `pid ${f.drill.pid}` : 'whole host', f.drill.state ? `state ${f.drill.state}` : '', f.drill.event || '', f.drill.duration].filter(Boolean).join(', ');
    el('span', { class: 'meta' }, li, what);
    const b = el('button', { type: 'button', class: 'drill', title: `POST /api/captures ${JSON.stringify(f.drill)}` }, li, 'Drill down');
    b.addEventListener('click', () => drill(f, b));
  }
}

function drawTop(o) {
  for (const key of ['cpu', 'runqueue', 'io', 'blocked']) {
    const body = document.querySelector(`#top-${key} tbody`);
    body.replaceChildren();
    const list = (o.top && o.top[key]) || [];
    if (!list.length) el('td', { class: 'note' }, el('tr', {}, body), 'none');
    const units = (o.top_units || {})[key] || '';
    for (const p of list) {
      const tr = el('tr', { 'data-pid': String(p.pid) }, body);
      el('td', { class: 'num' }, tr, String(p.pid));
      el('td', { class: 'comm' }, tr, p.comm);
      el('td', { class: 'num' }, tr, key === 'io' ? fmt(p.value, 'bytes/s') : fmt(p.value));
    }
    const u = document.querySelector(`[data-units="${key}"]`);
    if (u) u.textContent = units ? `(${units})` : '';
  }
}

function drawKernel(o) {
  const body = document.querySelector('#kernel-errors tbody');
  body.replaceChildren();
  document.getElementById('no-kernel').hidden = o.kernel_errors.length > 0;
  for (const k of o.kernel_errors.slice(0, 20)) {
    const tr = el('tr', {}, body);
    el('td', {}, tr, new Date(k.time * 1000).toLocaleString());
    el('td', { class: `lvl ${k.level}` }, tr, k.level);
    el('td', { class: 'msg' }, tr, k.message);
  }
  const ul = document.getElementById('missing');
  ul.replaceChildren();
  for (const m of o.missing || []) el('li', {}, ul, m);
  document.getElementById('missing-card').hidden = !(o.missing || []).length;
}

function draw(o) {
  drawTable(o);
  drawFindings(o);
  drawTop(o);
  drawKernel(o);
  const when = o.time ? new Date(o.time * 1000).toLocaleTimeString() : '–';
  document.getElementById('ov-updated').textContent = `updated ${when}`;
  document.getElementById('ov-updated').dataset.samples = String(o.samples);
  const load = (o.load || []).map((v) => fmt(v)).join(' ');
  document.getElementById('ov-host').textContent =
    `${o.cpus} CPUs online · load ${load} · up ${Math.round(o.uptime / 60)} min · ${o.samples} samples · sampler ${fmt(o.sampler_cpu_percent)}% of a CPU`;
}

async function start() {
  try {
    const res = await fetch(`/api/overview.json?minutes=${minutes}`, { credentials: 'same-origin' });
    if (res.ok) draw(await res.json());
  } catch (e) {
    document.getElementById('ov-updated').textContent = `could not load: ${e.message}`;
  }
  const es = new EventSource(`/api/overview/events?minutes=${minutes}`);
  es.addEventListener('overview', (ev) => {
    try { draw(JSON.parse(ev.data)); } catch (e) { /* a partial event: the next one replaces it */ }
  });
  es.onerror = () => { document.getElementById('ov-updated').textContent = 'reconnecting…'; };
}

start();

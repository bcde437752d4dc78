// scorch: the capture page's analysis workspace. One URL holds the whole
// state (ranges, filters, view, transforms, selected function, search,
// zoom, layout); every change is a history entry, so Back and Forward step
// through them and a permalink reopens what was on screen. The views come
// from the server's JSON routes (tree.json, functions.json, sandwich.json,
// summary.json and their diff forms), computed there and pruned to what
// can be drawn.
import { FlameView, DIFF_STEPS, diffColor, cpiColor, label } from './flame.js';
import { mountHeatmap } from './heatmap.js';
import { mountTimeline } from './timeline.js';
import { StackChart } from './stackchart.js';
import { parseRanges, mergeRanges, rangeParams, stepRanges, span, describe, secs, roundTime } from './ranges.js';

const $ = (sel) => document.querySelector(sel);
const box = $('#capture');
const ID = box.dataset.id;
const TYPE = box.dataset.type;
let UNIT = box.dataset.unit || 'samples'; // set from the views' answers

// The page's state keys. Filters and transforms shape every view; the
// others are how they are shown.
const FILTERS = ['pid', 'tid', 'comm', 'cpu', 'idle', 'view'];
const KEYS = ['from', 'to', 'compare_from', 'compare_to', 'flip', 'base', 'base_from', 'base_to', 'rows', 'enhanced', 'norm',
  ...FILTERS, 't', 'fn', 's', 'zoom', 'layout', 'reverse', 'sort', 'filter', 'thr', 'nodes', 'chart'];
const TRANSFORMS = { focus: 'Focus on', merge: 'Merge', drop: 'Drop', rec: 'Collapse recursion of', lib: 'Collapse module' };

let P = new URLSearchParams(location.search);
const token = P.get('token');
// A mem capture recorded for its in-use view (the new-capture form's
// "view") opens in it.
if (!P.has('view') && box.dataset.view && TYPE === 'mem') {
  P.set('view', box.dataset.view);
  history.replaceState(null, '', location.pathname + '?' + P);
}

// go changes the state and draws it; push: a new history entry.
function go(patch, push = true) {
  const next = new URLSearchParams(P);
  for (const [k, v] of Object.entries(patch)) {
    next.delete(k);
    if (Array.isArray(v)) v.forEach((x) => next.append(k, x));
    else if (v !== null && v !== undefined && v !== '' && v !== false) next.set(k, v === true ? 'true' : v);
  }
  // Only known keys, in a stable order: one state, one URL.
  const clean = new URLSearchParams();
  if (token) clean.set('token', token);
  for (const k of KEYS) for (const v of next.getAll(k)) clean.append(k, v);
  const url = location.pathname + (clean.toString() ? '?' + clean : '');
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  P = clean;
  render();
}
window.addEventListener('popstate', () => {
  P = new URLSearchParams(location.search);
  render();
});

// DURATION is the capture's length in seconds, from its summary.
let DURATION = 0;

// ranges are the selected time ranges (none: the whole capture).
const ranges = () => parseRanges(P);

// brush sets the ranges in every view; add: to those selected.
function brush(rs, add, push = true) {
  const next = add ? mergeRanges([...ranges(), ...rs]) : mergeRanges(rs);
  go({ ...rangeParams(next, '', DURATION), compare_from: null, compare_to: null, flip: null }, push);
}

// addRanges appends the ranges of the state to a view's query.
function addRanges(q, rs) {
  q.delete('from');
  q.delete('to');
  if (rs.length === 1) {
    q.set('from', secs(rs[0][0]));
    if (rs[0][1] !== null) q.set('to', secs(rs[0][1]));
    return q;
  }
  for (const r of rs) {
    q.append('from', secs(r[0]));
    q.append('to', r[1] === null ? '' : secs(r[1]));
  }
  return q;
}

// ---- numbers ----------------------------------------------------------------

function fmt(v, unit) {
  unit = unit || UNIT;
  if (unit === 'ns') {
    if (v >= 1e9) return (v / 1e9).toFixed(2) + ' s';
    if (v >= 1e6) return (v / 1e6).toFixed(1) + ' ms';
    if (v >= 1e3) return (v / 1e3).toFixed(1) + ' µs';
    return v + ' ns';
  }
  if (unit === 'bytes') {
    const k = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < k.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v) + ' ' + k[i];
  }
  const s = NUM.format(Math.round(v));
  return unit === 'samples' ? s + (v === 1 ? ' sample' : ' samples') : s + ' ' + unit;
}
// One formatter for every number: toLocaleString makes one per call, which
// was a tenth of the table's build.
const NUM = new Intl.NumberFormat('en-US');
const pct = (v, t) => (t > 0 ? (100 * v / t) : 0).toFixed(2) + '%';
const pts = (p) => (p > 0 ? '+' : '') + p.toFixed(2) + ' pt';

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- data -------------------------------------------------------------------

const cache = new Map();
// parsed reads an answer; an answer the same as one read before is that
// one's object, not another: the views see that nothing changed (after a
// merge the tracks' answers are the untransformed ones) and draw nothing.
const answers = new Map(); // text -> object, the last few small ones
function parsed(text) {
  const had = answers.get(text);
  if (had !== undefined) return had;
  const body = JSON.parse(text);
  if (text.length <= 1 << 18) {
    answers.set(text, body);
    if (answers.size > 16) answers.delete(answers.keys().next().value);
  }
  return body;
}
async function api(path, q) {
  const url = path + '?' + q;
  if (!cache.has(url)) {
    cache.set(url, (async () => {
      let resp;
      // An overloaded server answers 503 with Retry-After: wait and ask again.
      for (let i = 0; ; i++) {
        resp = await fetch(url);
        if (resp.status !== 503 || i >= 20) break;
        const after = Math.min(+(resp.headers.get('Retry-After') || 1), 10);
        $('#graph-status').textContent = 'the server is busy: asking again in ' + after + ' s…';
        await new Promise((r) => setTimeout(r, after * 1000));
      }
      const text = await resp.text().catch(() => '');
      if (!resp.ok) {
        let msg = resp.status + ' ' + resp.statusText;
        try { msg = JSON.parse(text).error || msg; } catch (e) { /* not JSON */ }
        throw new Error(msg);
      }
      return parsed(text);
    })());
    if (cache.size > 64) cache.delete(cache.keys().next().value);
  }
  try {
    return await cache.get(url);
  } catch (e) {
    cache.delete(url);
    throw e;
  }
}

// filters is the query every view of this capture shares.
function filters() {
  const q = new URLSearchParams();
  if (token) q.set('token', token);
  for (const k of FILTERS) if (P.get(k)) q.set(k, P.get(k));
  for (const t of P.getAll('t')) q.append('t', t);
  return q;
}

// diff says what is compared, or null: two ranges of this capture
// (compare_from set), or another capture as the base (base set).
function diff() {
  if (P.has('compare_from')) {
    let a = [P.get('from'), P.get('to')], b = [P.get('compare_from'), P.get('compare_to')];
    if (P.get('flip') === '1') [a, b] = [b, a];
    return { base: ID, compare: ID, base_range: a, compare_range: b };
  }
  if (P.get('base')) return { base: P.get('base'), compare: ID, base_range: [P.get('base_from'), P.get('base_to')], compare_range: [P.get('from'), P.get('to')] };
  return null;
}

function viewQuery(extra) {
  const q = filters();
  const d = diff();
  if (d) {
    q.set('base', d.base);
    q.set('compare', d.compare);
    if (d.base_range[0]) q.set('base_from', d.base_range[0]);
    if (d.base_range[1]) q.set('base_to', d.base_range[1]);
    if (d.compare_range[0]) q.set('compare_from', d.compare_range[0]);
    if (d.compare_range[1]) q.set('compare_to', d.compare_range[1]);
  } else {
    addRanges(q, ranges());
  }
  if (P.get('reverse') === 'true') q.set('reverse', 'true');
  for (const k in extra || {}) q.set(k, extra[k]);
  return q;
}

// The compare side's own query (sandwich, summary): its capture and range.
function sideQuery() {
  const q = filters();
  const d = diff();
  if (!d) return addRanges(q, ranges());
  const r = d.compare_range;
  if (r[0]) q.set('from', r[0]);
  if (r[1]) q.set('to', r[1]);
  return q;
}

// ---- page parts -------------------------------------------------------------

const graph = new FlameView($('#flamegraph'), {
  onHover: (i, ev) => { tooltip(graph, i, ev); focusOn(i !== null && i > 0 && graph.node(i).n.name !== '[pruned]' ? graph.node(i).n.name : null, true); },
  onClick: (i) => {
    const n = graph.node(i).n;
    if (n.name === '[pruned]') return;
    go({ zoom: i === 0 ? null : graph.path(i).join(';'), fn: i === 0 ? P.get('fn') : n.name });
  },
  onContext: (i, ev) => menu(graph.node(i).n.name, ev),
});
const callers = new FlameView($('#callers'), {
  onHover: (i, ev) => tooltip(callers, i, ev),
  onClick: (i) => { const n = callers.node(i).n; if (n.name !== '[pruned]') go({ fn: n.name }); },
  onContext: (i, ev) => menu(callers.node(i).n.name, ev),
});
const callees = new FlameView($('#callees'), {
  icicle: true,
  onHover: (i, ev) => tooltip(callees, i, ev),
  onClick: (i) => { const n = callees.node(i).n; if (n.name !== '[pruned]') go({ fn: n.name }); },
  onContext: (i, ev) => menu(callees.node(i).n.name, ev),
});

let modules = new Map(); // function name -> module, from the table
let fnRows = new Map(), fnTotal = 0; // function name -> its table row, and the table's total
let heat = null;
let timeline = null;
let seq = 0;
let lastTreeURL = '';
let fitIcicle = null; // the layout the graph's box was last fitted to
let current = -1; // index into matches
let matches = [];

function tooltip(view, i, ev) {
  const tip = $('#tooltip');
  if (i === null || !ev) { tip.hidden = true; return; }
  const nd = view.node(i), n = nd.n;
  const all = view.doc.total;
  const parent = nd.p >= 0 ? view.node(nd.p).n.value : n.value;
  tip.textContent = '';
  tip.append(el('b', {}, i === 0 ? n.name : label(n.name)));
  const mod = modules.get(n.name);
  if (mod) tip.append(el('div', { class: 'note' }, mod));
  if (n.file) tip.append(el('div', { class: 'note src' }, n.file + ':' + n.line));
  const line = (k, v) => { const d = el('div'); d.append(el('span', { class: 'k' }, k), ' ' + v); tip.append(d); };
  if (n.pruned) {
    line('pruned:', n.pruned.toLocaleString('en-US') + ' frames too narrow to draw, together');
  }
  line('total:', fmt(n.value) + ' · ' + pct(n.value, all) + ' of all · ' + pct(n.value, parent) + ' of parent');
  line('self:', fmt(n.self) + ' · ' + pct(n.self, all) + ' of all');
  if (view.cpi) {
    const ins = n.base_total || 0;
    line('instructions:', ins.toLocaleString('en-US') + (ins > 0 ? ' · CPI ' + (n.value / ins).toFixed(2) + ' · IPC ' + (ins / n.value).toFixed(2) : ''));
  }
  if (view.diff) {
    const b = view.doc.base_total;
    line('base:', fmt(n.base_total || 0) + ' · ' + pct(n.base_total || 0, b) + ' of base');
    line('change:', pts(view.delta(n)) + ' of share · ' + ((n.value - (n.base_total || 0)) >= 0 ? '+' : '−') + fmt(Math.abs(n.value - (n.base_total || 0))));
  }
  tip.hidden = false;
  const pad = 14;
  let x = ev.clientX + pad, y = ev.clientY + pad;
  const r = tip.getBoundingClientRect();
  if (x + r.width > window.innerWidth - 4) x = ev.clientX - r.width - pad;
  if (y + r.height > window.innerHeight - 4) y = ev.clientY - r.height - pad;
  tip.style.left = x + 'px';
  tip.style.top = y + 'px';
}

// menu offers the transforms of one frame or row.
function menu(name, ev) {
  const m = $('#menu');
  m.textContent = '';
  if (name === '[pruned]' || name === 'all') return;
  const add = (text, fn) => {
    const b = el('button', { type: 'button', role: 'menuitem' }, text);
    b.addEventListener('click', () => { m.hidden = true; fn(); });
    m.append(b);
  };
  const lab = label(name);
  const push = (kind, arg) => go({ t: [...P.getAll('t'), kind + ':' + arg], zoom: null });
  add('Show callers and callees of ' + lab, () => go({ fn: name }));
  add('Focus on ' + lab, () => push('focus', name));
  add('Merge ' + lab + ' into its callers', () => push('merge', name));
  add('Drop samples with ' + lab, () => push('drop', name));
  add('Collapse recursion of ' + lab, () => push('rec', name));
  const mod = modules.get(name);
  if (mod) {
    const base = mod.split('/').pop();
    add('Collapse module ' + base, () => push('lib', base));
  }
  m.hidden = false;
  m.style.left = Math.min(ev.clientX, window.innerWidth - 300) + 'px';
  m.style.top = Math.min(ev.clientY, window.innerHeight - 200) + 'px';
  m.querySelector('button').focus();
}
document.addEventListener('mousedown', (ev) => { if (!ev.target.closest('#menu')) $('#menu').hidden = true; });

// crumbs: the transforms, each removable, then the zoom path.
function crumbs() {
  const nav = $('#crumbs');
  nav.textContent = '';
  const ts = P.getAll('t');
  const all = el('button', { type: 'button', class: 'crumb', id: 'crumb-root' }, 'all');
  all.addEventListener('click', () => go({ t: [], zoom: null }));
  nav.append(all);
  ts.forEach((t, i) => {
    const [kind, ...rest] = t.split(':');
    const c = el('span', { class: 'crumb transform', 'data-t': t });
    c.append((TRANSFORMS[kind] || kind) + ' ' + label(rest.join(':')));
    const x = el('button', { type: 'button', class: 'remove', title: 'remove this transform', 'aria-label': 'remove ' + t }, '×');
    x.addEventListener('click', () => go({ t: ts.filter((_, j) => j !== i), zoom: null }));
    c.append(' ', x);
    nav.append(' › ', c);
  });
  const zoom = P.get('zoom') ? P.get('zoom').split(';') : [];
  zoom.forEach((name, i) => {
    const c = el('button', { type: 'button', class: 'crumb zoom' }, label(name));
    c.addEventListener('click', () => go({ zoom: zoom.slice(0, i + 1).join(';') }));
    nav.append(' › ', c);
  });
}

function health(sum) {
  const h = $('#health');
  h.textContent = '';
  const facts = [
    fmt(sum.samples, sum.unit) + (sum.unit !== 'samples' ? ' (' + sum.events.toLocaleString('en-US') + ' events)' : ''),
    sum.duration.toFixed(1) + ' s',
  ];
  if (sum.hz) facts.push(sum.hz + ' Hz requested, ' + sum.effective_hz.toFixed(1) + ' Hz per CPU seen');
  facts.push(sum.lost.toLocaleString('en-US') + ' lost');
  facts.push(sum.processes + (sum.processes === 1 ? ' process, ' : ' processes, ') + sum.threads + (sum.threads === 1 ? ' thread' : ' threads'));
  facts.push((100 * sum.unsymbolized).toFixed(1) + '% of frames without symbol');
  const ended = Object.values(sum.user_stacks.ended).reduce((a, b) => a + b, 0);
  if (sum.user_stacks.complete + ended > 0) facts.push(pct(sum.user_stacks.complete, sum.user_stacks.complete + ended) + ' of user stacks complete');
  h.append(el('h3', {}, 'Capture health'), el('p', { class: 'meta', id: 'health-facts' }, facts.join(' · ')));
  const ul = el('ul', { class: 'findings', id: 'findings' });
  for (const f of sum.findings) {
    const li = el('li', { class: 'sev-' + f.severity });
    li.append(el('span', { class: 'sev' }, f.severity), ' ', el('span', { class: 'msg' }, f.message));
    if (f.fix) li.append(el('div', { class: 'fix' }, 'Fix: ' + f.fix));
    ul.append(li);
  }
  if (sum.findings.length === 0) ul.append(el('li', { class: 'sev-ok' }, 'Nothing limits this capture: no lost events, stacks complete, symbols found.'));
  h.append(ul);
  const nt = el('p', { class: 'note', id: 'no-time', hidden: '' });
  h.append(nt);
  if (!sum.timestamps) {
    const p = $('#no-time');
    p.textContent = 'This capture has no timestamps (it was imported from ' + (sum.source || 'a file') + ' data), so the heatmap, the thread tracks, the stack chart and time ranges are not available; every view covers the whole capture.';
    p.hidden = false;
  }
  const mounted = sum.timestamps && !heat;
  if (mounted) {
    const root = $('#heatmap');
    root.hidden = false;
    heat = mountHeatmap(root, ID, {
      initial: P,
      filters: filters,
      type: TYPE,
      onChange: (st) => {
        const b = st.cmp;
        const sec = (x) => (x === null || x === undefined ? null : String(+x.toFixed(9)));
        go({
          ...rangeParams(st.ranges, '', DURATION || st.duration),
          compare_from: st.compare && b ? sec(b[0]) : null, compare_to: st.compare && b && b[1] !== null ? sec(b[1]) : null,
          flip: st.flipped ? '1' : null, rows: st.rows !== 50 ? st.rows : null, enhanced: st.enhanced ? '1' : null,
          norm: st.norm,
        });
      },
    });
  }
  if (sum.timestamps && !timeline) {
    const root = $('#timeline');
    root.hidden = false;
    timeline = mountTimeline(root, ID, {
      initial: P,
      type: TYPE,
      api: api,
      filters: filters,
      fmt: (v, unit) => fmt(v, unit),
      onBrush: (rs, add) => brush(rs, add),
      onPick: (p) => go({ pid: p && p.pid ? String(p.pid) : null, tid: p && p.tid ? String(p.tid) : null, zoom: null }),
    });
    $('#tab-stack').hidden = false;
  }
  // A function selected before they were mounted (a permalink with fn):
  // paint it now.
  if (mounted && focused) {
    heat.focus(focused);
    timeline.focus(focused);
  }
}

function searchRE() {
  const s = P.get('s');
  if (!s) return null;
  try { return new RegExp(s); } catch (e) { return e; }
}

// search marks the frames whose name matches and says how many and how
// much of the total they hold (frames inside another match counted once).
function search() {
  const info = $('#search-info');
  const re = searchRE();
  matches = [];
  graph.match = null;
  if (re instanceof Error) { info.textContent = 'not a regular expression: ' + re.message; info.className = 'ws-info error'; return; }
  info.className = 'ws-info';
  if (!re || !graph.doc) { info.textContent = ''; graph.current = -1; return; }
  const nodes = graph.flat.nodes;
  const set = new Set();
  let share = 0;
  for (let i = 1; i < nodes.length; i++) {
    const n = nodes[i].n;
    if (n.name === '[pruned]' || !re.test(label(n.name))) continue;
    set.add(i);
    matches.push(i);
    let inside = false;
    for (let j = nodes[i].p; j > 0; j = nodes[j].p) if (set.has(j)) { inside = true; break; }
    if (!inside) share += n.value;
  }
  graph.match = set;
  if (current >= matches.length) current = -1;
  graph.current = current >= 0 ? matches[current] : -1;
  const where = current >= 0 ? ' · ' + (current + 1) + '/' + matches.length + ': ' + label(nodes[matches[current]].n.name) : '';
  info.textContent = matches.length + (matches.length === 1 ? ' frame' : ' frames') + ' match, ' + pct(share, graph.doc.total) + ' of the total' + where;
  info.dataset.count = matches.length;
  info.dataset.share = (100 * share / (graph.doc.total || 1)).toFixed(2);
}

function step(dir) {
  if (matches.length === 0) return;
  current = (current + dir + matches.length) % matches.length;
  const i = matches[current];
  // A match outside the zoomed frame: zoom out to show it.
  const z = graph.zoom;
  const nd = graph.node(i), zn = graph.node(z);
  if (z !== 0 && !(nd.x >= zn.x && nd.x < zn.x + zn.n.value && nd.d > zn.d)) { go({ zoom: null }); }
  search();
  graph.draw();
  const boxEl = $('#graph-box');
  const y = graph.rowY(i);
  if (y < boxEl.scrollTop || y > boxEl.scrollTop + boxEl.clientHeight - 20) boxEl.scrollTop = y - boxEl.clientHeight / 2;
}

function legend(doc) {
  const lg = $('#legend');
  const d = diff();
  if (!d && doc.instructions) {
    lg.textContent = '';
    lg.append(el('span', {}, 'cycles per instruction: '));
    for (const v of [0.25, 0.5, 1, 2, 4]) {
      const sw = el('span', { class: 'swatch' }, (v === 0.25 ? '≤' : v === 4 ? '≥' : '') + v);
      sw.style.background = cpiColor(v, 1);
      sw.style.color = '#fff';
      lg.append(sw);
    }
    lg.append(el('span', { class: 'note' }, ' blue: instruction-heavy, red: stalls · widths are cycles'));
    lg.hidden = false;
    return;
  }
  if (!d) { lg.hidden = true; return; }
  lg.textContent = '';
  const thr = +(P.get('thr') || DIFF_STEPS[0]);
  lg.append(el('span', {}, 'share of each side\'s total: '));
  const steps = DIFF_STEPS.filter((s) => s >= thr);
  for (const s of [...steps].reverse()) lg.append(el('span', { class: 'swatch' }, '−' + s));
  lg.append(el('span', { class: 'swatch' }, '< ' + thr + ' pt'));
  for (const s of steps) lg.append(el('span', { class: 'swatch' }, '+' + s));
  // Swatch colours are set from script (no inline styles under the CSP).
  const sw = lg.querySelectorAll('.swatch');
  let k = 0;
  for (const s of [...steps].reverse()) sw[k++].style.background = diffColor(-s, thr);
  sw[k++].style.background = diffColor(0, thr);
  for (const s of steps) sw[k++].style.background = diffColor(s, thr);
  const sel = el('select', { id: 'threshold', title: 'changes below this are not coloured' });
  for (const s of DIFF_STEPS) {
    const o = el('option', { value: s }, 'threshold ' + s + ' pt');
    if (s === thr) o.selected = true;
    sel.append(o);
  }
  sel.addEventListener('change', () => go({ thr: sel.value === String(DIFF_STEPS[0]) ? null : sel.value }));
  lg.append(' ', sel, el('span', { class: 'note' }, ' red grew, blue shrank · base ' + fmt(doc.base_total) + ', compare ' + fmt(doc.total)));
  lg.hidden = false;
}

function rangeInfo() {
  const d = diff();
  const r = (a) => (a[0] || a[1] ? (a[0] || '0') + '–' + (a[1] || 'end') + ' s' : 'whole capture');
  const t = $('#range-info');
  if (d) t.textContent = 'comparing base ' + (d.base === ID ? '' : d.base + ' ') + r(d.base_range) + ' → compare ' + r(d.compare_range);
  else t.textContent = 'showing ' + describe(ranges()) + (P.get('tid') ? ' of thread ' + P.get('tid') : P.get('pid') ? ' of process ' + P.get('pid') : '');
}

// table draws the function table: self and total with shares, or in a
// diff the compare and base sides and the change.
let tableKey = null;
function table(doc) {
  const d = !!diff();
  const sort = P.get('sort') || (d ? 'delta' : 'self');
  // Only the selection or the search changed: mark the rows, keep them.
  const key = [doc, sort, P.get('filter') || '', d];
  const re0 = searchRE();
  if (tableKey && key.every((k, i) => k === tableKey[i])) {
    for (const row of document.querySelectorAll('#functions tbody tr')) {
      row.classList.toggle('selected', row.dataset.fn === P.get('fn'));
      row.classList.toggle('match', !!(re0 && !(re0 instanceof Error) && re0.test(label(row.dataset.fn))));
    }
    return;
  }
  tableKey = key;
  const thead = $('#functions thead'), tbody = $('#functions tbody');
  thead.textContent = '';
  // The rows whose numbers are the same as before are kept, not built
  // again: after a merge or a zoom most of the table is.
  const old = new Map();
  for (const row of tbody.children) if (row.dataset.key) old.set(row.dataset.key, row);
  tbody.textContent = '';
  const cols = d
    ? [['total', 'Total'], ['base', 'Base total'], ['delta', 'Change'], ['self', 'Self'], ['name', 'Function']]
    : [['self', 'Self'], ['selfpct', 'Self %'], ['total', 'Total'], ['totalpct', 'Total %'], ['name', 'Function']];
  const tr = el('tr');
  for (const [key, text] of cols) {
    if (key === 'base') { tr.append(el('th', { scope: 'col' }, text)); continue; }
    const sortKey = { selfpct: 'self', totalpct: 'total' }[key] || key;
    const th = el('th', { 'data-sort': sortKey, class: sortKey === sort ? 'sorted' : '', scope: 'col' });
    const b = el('button', { type: 'button' }, text + (sortKey === sort && key === sortKey ? ' ▾' : ''));
    b.addEventListener('click', () => go({ sort: sortKey === (d ? 'delta' : 'self') ? null : sortKey }));
    th.append(b);
    tr.append(th);
  }
  thead.append(tr);
  const f = (P.get('filter') || '').toLowerCase();
  const re = searchRE();
  const rows = doc.functions.filter((fn) => !f || fn.name.toLowerCase().includes(f));
  const shown = rows.slice(0, 400);
  const T = doc.total, B = doc.base_total;
  // The rows on screen are built at once, the others as the table is
  // scrolled towards them: built after each redraw, 320 rows below the
  // fold took more of the browser's time (their layout) than the graph.
  tbody.append(...shown.slice(0, TABLE_FIRST_ROWS).map(rowOf));
  moreRows = () => {
    if (tableKey !== key) return false;
    const have = tbody.children.length;
    if (have >= shown.length) return false;
    tbody.append(...shown.slice(have, have + TABLE_FIRST_ROWS).map(rowOf));
    return true;
  };
  moreRowsIfNear();
  $('#table-info').textContent = (rows.length > shown.length ? shown.length + ' of ' : '') + rows.length + ' functions' +
    (doc.count > doc.functions.length ? ' (the ' + doc.functions.length + ' largest of ' + doc.count + ')' : '');

  // rowOf builds a function's row, or takes the one it had; its events
  // are the tbody's (below).
  function rowOf(fn) {
    const rk = [fn.name, fn.module, fn.file, fn.line, fn.self, fn.total, fn.base_self, fn.base_total, T, B, d, UNIT].join('\u0000');
    const had = old.get(rk);
    let row = had;
    if (row) old.delete(rk);
    else row = el('tr', { 'data-fn': fn.name, 'data-key': rk, tabindex: '0' });
    row.classList.toggle('selected', fn.name === P.get('fn'));
    row.classList.toggle('match', !!(re && !(re instanceof Error) && re.test(label(fn.name))));
    if (had) return row;
    const num = (t, title) => el('td', { class: 'num', title: title || '' }, t);
    if (d) {
      const ch = (fn.total / (T || 1) - fn.base_total / (B || 1)) * 100;
      const c = num(pts(ch), fmt(fn.total - fn.base_total));
      c.classList.add(ch > 0 ? 'grew' : ch < 0 ? 'shrank' : 'same');
      row.append(num(fmt(fn.total), pct(fn.total, T)), num(fmt(fn.base_total), pct(fn.base_total, B)), c,
        num(fmt(fn.self), pct(fn.self, T)));
    } else {
      row.append(num(fmt(fn.self)), num(pct(fn.self, T)), num(fmt(fn.total)), num(pct(fn.total, T)));
    }
    const name = el('td', fn.file ? { class: 'fn', title: fn.file + ':' + fn.line } : { class: 'fn' });
    name.append(el('span', { class: 'name' }, label(fn.name)));
    if (fn.module) name.append(' ', el('span', { class: 'module' }, fn.module.split('/').pop()));
    row.append(name);
    return row;
  }
}

// The rows built with the table: more than its box shows at 1920x1080;
// as many more each time the table is scrolled near its last row.
const TABLE_FIRST_ROWS = 80;
let moreRows = () => false;
let moreFrame = 0;
function moreRowsIfNear() {
  if (moreFrame) return;
  const b = $('.table-box');
  // Read in the next frame, with the layout the frame needs anyway.
  moreFrame = requestAnimationFrame(() => {
    moreFrame = 0;
    if (b.scrollHeight - b.scrollTop - b.clientHeight < 400 && moreRows()) moreRowsIfNear();
  });
}
$('.table-box').addEventListener('scroll', moreRowsIfNear, { passive: true });

// The rows' events, handled by their tbody: a table of 400 rows is built
// after each transform, without 2,000 listeners.
{
  const tbody = $('#functions tbody');
  const rowOf = (ev) => (ev.target.closest ? ev.target.closest('tr[data-fn]') : null);
  let hovered = null;
  tbody.addEventListener('click', (ev) => {
    const row = rowOf(ev);
    if (row) go({ fn: row.dataset.fn === P.get('fn') ? null : row.dataset.fn });
  });
  tbody.addEventListener('keydown', (ev) => {
    const row = rowOf(ev);
    if (row && ev.key === 'Enter') { ev.stopPropagation(); go({ fn: row.dataset.fn }); }
  });
  tbody.addEventListener('contextmenu', (ev) => {
    const row = rowOf(ev);
    if (row) { ev.preventDefault(); menu(row.dataset.fn, ev); }
  });
  tbody.addEventListener('mouseover', (ev) => {
    const row = rowOf(ev);
    if (row === hovered) return;
    hovered = row;
    focusOn(row ? row.dataset.fn : null, true);
  });
  tbody.addEventListener('mouseleave', () => { hovered = null; focusOn(null, true); });
}

// sandwichData asks for fn's callers and callees (render asks early, so
// that the answer comes beside the graph's).
function sandwichData(fn) {
  const q = sideQuery();
  q.set('fn', fn);
  return api('/api/captures/' + encodeURIComponent(ID) + '/sandwich.json', q);
}

async function sandwich(mySeq) {
  const fn = P.get('fn');
  const title = $('#sandwich-title'), hint = $('#sandwich-hint');
  const boxes = document.querySelectorAll('#sandwich .sw-box');
  if (!fn) {
    title.textContent = 'Callers and callees';
    hint.hidden = false;
    boxes.forEach((b) => { b.hidden = true; });
    return;
  }
  let sw;
  try {
    sw = await sandwichData(fn);
  } catch (e) {
    if (mySeq !== seq) return;
    title.textContent = label(fn);
    hint.textContent = e.message;
    hint.hidden = false;
    boxes.forEach((b) => { b.hidden = true; });
    return;
  }
  if (mySeq !== seq) return;
  title.textContent = label(fn) + ' — total ' + fmt(sw.total) + ' (' + pct(sw.total, sw.all) + '), self ' + fmt(sw.self) + ' (' + pct(sw.self, sw.all) + ')';
  hint.textContent = 'Callers above (who calls it, the function at the bottom), callees below. Click a frame to select it.';
  boxes.forEach((b) => { b.hidden = false; });
  callers.set({ total: sw.all, unit: sw.unit, tree: sw.callers }, { type: TYPE });
  callees.set({ total: sw.all, unit: sw.unit, tree: sw.callees }, { type: TYPE });
  callers.selected = callees.selected = fn;
  callers.draw();
  callees.draw();
}

function downloads() {
  const q = addRanges(filters(), ranges());
  const d = diff();
  const svg = d ? viewQuery() : new URLSearchParams(q);
  for (const k of ['layout', 'reverse', 's']) if (P.get(k)) svg.set(k, P.get(k));
  $('#dl-svg').href = (d ? '/api/diff.svg?' : '/api/captures/' + encodeURIComponent(ID) + '/flamegraph.svg?') + svg;
  for (const [idn, path] of [['#dl-pprof', 'profile.pb.gz'], ['#dl-folded', 'folded'], ['#dl-speedscope', 'speedscope.json']]) {
    $(idn).href = '/api/captures/' + encodeURIComponent(ID) + '/' + path + (q.toString() ? '?' + q : '');
  }
}

function controls() {
  const form = $('#filters');
  for (const k of ['pid', 'tid', 'comm', 'cpu', 'idle']) form.elements[k].value = P.get(k) || '';
  $('#layout').value = P.get('layout') === 'icicle' ? 'icicle' : 'flame';
  $('#reverse').checked = P.get('reverse') === 'true';
  if (TYPE === 'mem') {
    $('#view-control').hidden = false;
    $('#view').value = P.get('view') === 'inuse' ? 'inuse' : 'alloc';
  }
  const si = $('#search-input');
  if (document.activeElement !== si) si.value = P.get('s') || '';
  const tf = $('#table-filter');
  if (document.activeElement !== tf) tf.value = P.get('filter') || '';
}

// render draws the state: fetches what changed, redraws everything.
async function render() {
  const mySeq = ++seq;
  document.body.dataset.settled = ''; // tests wait for the state on screen
  controls();
  crumbs();
  rangeInfo();
  downloads();
  const err = $('#ws-error');
  const d = diff();
  const treeURL = d ? '/api/diff/tree.json' : '/api/captures/' + encodeURIComponent(ID) + '/tree.json';
  const fnURL = d ? '/api/diff/functions.json' : '/api/captures/' + encodeURIComponent(ID) + '/functions.json';
  const fq = viewQuery({ limit: 2000 });
  fq.delete('reverse');
  if (P.get('sort')) fq.set('sort', P.get('sort'));
  const tq = viewQuery();
  if (P.get('nodes')) tq.set('nodes', P.get('nodes')); // the graph's frame budget
  const treeP = api(treeURL, tq), fnsP = api(fnURL, fq);
  // The graph's tree and table are asked first, the health, heatmap and
  // tracks once they are in: asked at once, they shared the server's few
  // render slots with the graph and slowed its redraw down.
  const first = Promise.allSettled([treeP, fnsP]);
  const sumP = first.then(() => api('/api/captures/' + encodeURIComponent(ID) + '/summary.json', sideQuery())).then((s) => {
    DURATION = s.duration; // the whole capture's
    if (mySeq === seq) health(s);
    return s;
  }, (e) => { if (mySeq === seq) $('#health').textContent = 'health: ' + e.message; });
  const stack = P.get('chart') === 'stack';
  $('#graph-box').hidden = stack;
  $('#stack-box').hidden = !stack;
  $('#sc-info').hidden = !stack;
  $('#tab-flame').setAttribute('aria-selected', String(!stack));
  $('#tab-stack').setAttribute('aria-selected', String(stack));
  // The stack chart asks for its runs at once, beside the graph's tree.
  const chartP = stack ? stackChart(mySeq, sumP) : null;
  const status = $('#graph-status');
  const key = treeURL + '?' + tq;
  if (key !== lastTreeURL) status.textContent = 'loading…';
  // Then what can be drawn while they run: the heatmap's and the tracks'
  // selection.
  if (P.get('fn')) sandwichData(P.get('fn')).catch(() => {});
  if (heat) heat.set(P, first);
  if (timeline) timeline.set(P, first);
  focusOn(null);
  // The graph is drawn once its tree is in, the table once its rows are:
  // neither waits for the other's answer.
  const failed = (e) => {
    if (mySeq !== seq) return;
    err.textContent = e.message;
    status.textContent = '';
  };
  let tree, fns;
  try {
    tree = await treeP;
  } catch (e) {
    failed(e);
    return;
  }
  if (mySeq !== seq) return;
  // Marks for the benchmark: the tree in, the graph laid out and drawn,
  // the table built (performance.getEntriesByName).
  performance.mark('ws:data');
  err.textContent = '';
  status.textContent = '';
  UNIT = tree.unit || UNIT;
  const fresh = key !== lastTreeURL;
  if (fresh) {
    graph.set(tree, { diff: !!d, type: TYPE, threshold: +(P.get('thr') || DIFF_STEPS[0]) });
    lastTreeURL = key;
    current = -1;
  }
  graph.threshold = +(P.get('thr') || DIFF_STEPS[0]);
  graph.icicle = P.get('layout') === 'icicle';
  graph.zoom = P.get('zoom') ? graph.find(P.get('zoom').split(';')) : 0;
  graph.selected = P.get('fn');
  performance.mark('ws:layout');
  search();
  graph.draw();
  performance.mark('ws:drawn');
  if (!document.body.dataset.firstPaint) document.body.dataset.firstPaint = performance.now().toFixed(1); // ms from navigation
  // Fitted in the next frame, once the table is built too: fit reads the
  // layout, which here would lay the page out twice per redraw.
  if (fresh || graph.icicle !== fitIcicle) fitSoon();
  fitIcicle = graph.icicle;
  legend(tree);
  try {
    fns = await fnsP;
  } catch (e) {
    failed(e);
    return;
  }
  if (mySeq !== seq) return;
  modules = new Map(fns.functions.map((f) => [f.name, f.module]));
  fnRows = new Map(fns.functions.map((f) => [f.name, f]));
  fnTotal = fns.total;
  table(fns);
  performance.mark('ws:table');
  document.body.dataset.ready = String(mySeq);
  await Promise.all([sandwich(mySeq), sumP, d ? null : graft(mySeq, treeURL, tq), chartP]);
  if (mySeq === seq) {
    document.body.dataset.settled = String(mySeq);
    if (settling) fit(); // and see whether the panels above are drawn
  }
}

// graft: zoomed into a frame whose subtree the server pruned, fetch that
// subtree with a budget of its own and put it in place, so zooming in
// shows the frames that were too narrow before.
async function graft(mySeq, treeURL, tq) {
  const zi = graph.zoom;
  if (zi <= 0) return;
  const nodes = graph.flat.nodes, z = nodes[zi];
  if (z.n.grafted) return;
  let pruned = false;
  for (let j = zi + 1; j < nodes.length && nodes[j].d > z.d; j++) if (nodes[j].n.name === '[pruned]') { pruned = true; break; }
  if (!pruned) return;
  const path = graph.path(zi);
  const q = new URLSearchParams(tq);
  q.set('zoom', path.join(';'));
  let sub;
  try { sub = await api(treeURL, q); } catch (e) { return; }
  if (mySeq !== seq || graph.node(zi) !== z) return;
  z.n.children = sub.tree.children || [];
  z.n.grafted = true;
  graph.set(graph.doc, { diff: false, type: TYPE, threshold: graph.threshold });
  graph.icicle = P.get('layout') === 'icicle';
  graph.zoom = graph.find(path);
  graph.selected = P.get('fn');
  search();
  graph.draw();
}

// ---- the stack chart ---------------------------------------------------------

const chart = new StackChart($('#stackchart'), {
  onHover: (r, ev) => { runTip(r, ev); focusOn(r ? r.name : null, true); },
  onClick: (r) => go({ fn: r.name === P.get('fn') ? null : r.name }),
  onContext: (r, ev) => menu(r.name, ev),
  // The wheel zooms the page's range, without a history entry per turn.
  onZoom: (a, b) => {
    clearTimeout(zoomTimer);
    const px = (8 * (b - a)) / (chart.width || 800); // about 8 pixels: a range that reads as the axis
    a = Math.max(0, roundTime(a, px));
    b = Math.min(DURATION, roundTime(b, px));
    zoomTimer = setTimeout(() => brush(a <= 1e-9 && b >= DURATION - 1e-9 ? [] : [[a, b]], false, false), 250);
  },
  onBrush: (a, b, add) => {
    const px = (2 * (chart.view[1] - chart.view[0])) / (chart.width || 800);
    brush([[roundTime(a, px), roundTime(b, px)]], add);
  },
});
let zoomTimer = 0;
let chartKey = '';

// chartThread is the thread the stack chart shows: the one picked in the
// tracks, or else the busiest.
async function chartThread() {
  if (P.get('tid')) return { tid: P.get('tid'), picked: true };
  const q = filters();
  q.delete('tid');
  const th = await api('/api/captures/' + encodeURIComponent(ID) + '/threads.json', q);
  let best = null;
  for (const t of th.threads) if (!best || t.total > best.total) best = t;
  return best ? { tid: String(best.tid), comm: best.comm, picked: false } : null;
}

async function stackChart(mySeq, sumP) {
  const info = $('#sc-info');
  await sumP;
  if (mySeq !== seq) return;
  let th;
  try { th = await chartThread(); } catch (e) { info.textContent = 'stack chart: ' + e.message; return; }
  if (mySeq !== seq) return;
  if (!th) { info.textContent = 'No thread has samples under these filters.'; chart.set({ from: 0, to: 1, runs: [] }, TYPE); chart.draw(); return; }
  const win = span(ranges(), DURATION) || [0, DURATION];
  const width = Math.max(200, Math.floor($('#stack-box').clientWidth || 800));
  const q = filters();
  q.set('tid', th.tid);
  q.set('from', secs(+win[0].toFixed(9)));
  q.set('to', secs(+win[1].toFixed(9)));
  q.set('width', width);
  const key = q.toString();
  let doc;
  try {
    doc = await api('/api/captures/' + encodeURIComponent(ID) + '/stackchart.json', q);
  } catch (e) {
    if (mySeq === seq) info.textContent = 'stack chart: ' + e.message;
    return;
  }
  if (mySeq !== seq) return;
  const t0 = performance.now();
  if (key !== chartKey) chart.set(doc, TYPE, [0, DURATION]);
  chartKey = key;
  chart.selected = P.get('fn');
  const re = searchRE();
  chart.match = re && !(re instanceof Error) ? re : null;
  chart.draw();
  document.body.dataset.chartPaint = (performance.now() - t0).toFixed(1); // ms to draw the runs
  document.body.dataset.chartPainted = String(+(document.body.dataset.chartPainted || 0) + 1);
  info.textContent = '';
  info.append((th.picked ? '' : 'the busiest thread, ') + (doc.comm || th.comm || 'thread') + ' (tid ' + th.tid + (doc.pid ? ', pid ' + doc.pid : '') + '), ' + describe([win]) + ' · ' +
    doc.runs.length.toLocaleString('en-US') + ' runs · wheel zooms, drag selects a range, click selects a function' +
    (th.picked ? '' : ' · click a track above to chart another thread'));
}

function runTip(r, ev) {
  const tip = $('#tooltip');
  if (!r || !ev) { tip.hidden = true; return; }
  tip.textContent = '';
  tip.append(el('b', {}, label(r.name)));
  const mod = modules.get(r.name);
  if (mod) tip.append(el('div', { class: 'note' }, mod));
  const row = fnRows.get(r.name);
  if (row && row.file) tip.append(el('div', { class: 'note src' }, row.file + ':' + row.line));
  const line = (k, v) => { const d = el('div'); d.append(el('span', { class: 'k' }, k), ' ' + v); tip.append(d); };
  const dur = r.end - r.start;
  const dg = dur >= 0.1 ? 2 : dur >= 1e-3 ? 4 : 6; // digits enough to tell start from end
  line('time:', secs(+r.start.toFixed(dg)) + '–' + secs(+r.end.toFixed(dg)) + ' s from the start');
  line('for:', dur >= 1 ? dur.toFixed(3) + ' s' : dur >= 1e-3 ? (dur * 1e3).toFixed(2) + ' ms' : (dur * 1e6).toFixed(0) + ' µs');
  line('depth:', String(r.depth));
  // The function's share of the view, as the flame graph's tooltip says.
  if (row) {
    line('total:', fmt(row.total) + ' · ' + pct(row.total, fnTotal) + ' of all');
    line('self:', fmt(row.self) + ' · ' + pct(row.self, fnTotal) + ' of all');
  }
  tip.hidden = false;
  const pad = 14;
  let x = ev.clientX + pad, y = ev.clientY + pad;
  const b = tip.getBoundingClientRect();
  if (x + b.width > window.innerWidth - 4) x = ev.clientX - b.width - pad;
  if (y + b.height > window.innerHeight - 4) y = ev.clientY - b.height - pad;
  tip.style.left = x + 'px';
  tip.style.top = y + 'px';
}

$('#tab-flame').addEventListener('click', () => go({ chart: null }));
$('#tab-stack').addEventListener('click', () => go({ chart: 'stack' }));

// ---- the function in focus ------------------------------------------------------

// focusOn paints where a function ran on the heatmap and the tracks: the
// one hovered in the graph, the table or the stack chart, else the one
// selected. Hovering waits a moment, so that moving across the graph does
// not ask the server for every frame passed.
let focusTimer = 0, focused = null;
function focusOn(name, wait) {
  const f = name || P.get('fn') || null;
  clearTimeout(focusTimer);
  if (f === focused) return;
  const apply = () => {
    focused = f;
    if (heat) heat.focus(f);
    if (timeline) timeline.focus(f);
  };
  if (wait) focusTimer = setTimeout(apply, 300); else apply();
}

// ---- controls ---------------------------------------------------------------

$('#filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  go({ pid: f.pid.value.trim(), tid: f.tid.value.trim(), comm: f.comm.value.trim(), cpu: f.cpu.value.trim(), idle: f.idle.value });
});
$('#layout').addEventListener('change', (ev) => {
  go({ layout: ev.target.value === 'icicle' ? 'icicle' : null });
});

// fit sizes the graph's box to the window and puts the graph's root in
// view: at the top of an icicle, at the bottom of a flame graph. The
// panels above the graph (heatmap, health, tracks) can leave less room
// below them than the box needs, so until the user scrolls the page
// themselves the page is scrolled as little as shows the whole box, root
// included: when a new tree is drawn, when the window is resized, and
// while the panels above are first drawn (settling). Once they are, a
// panel that changes size (a hover line that wraps) moves nothing: the
// page does not scroll under the pointer.
let pageScrolled = false;
let settling = true;
for (const type of ['wheel', 'touchmove']) window.addEventListener(type, () => { pageScrolled = true; }, { passive: true });
window.addEventListener('keydown', (ev) => {
  if (['PageDown', 'PageUp', 'Home', 'End', 'ArrowDown', 'ArrowUp', ' '].includes(ev.key) && !(ev.target.closest && ev.target.closest('input, select, textarea, button'))) pageScrolled = true;
});
document.addEventListener('mousedown', (ev) => { if (ev.target === document.documentElement) pageScrolled = true; }); // the page's scroll bar
const MARGIN = 12; // px kept between the box and the window's bottom edge
let fitFrame = 0;
function fitSoon() {
  if (!fitFrame) fitFrame = requestAnimationFrame(() => { fitFrame = 0; fit(); });
}
function fit() {
  if (settling && document.body.dataset.settled && document.querySelector('#health-facts') &&
    (!$('#no-time').hidden || ($('#hm-svg') && $('#timeline').dataset.drawn))) setTimeout(() => { settling = false; }, 0);
  const gb = $('#graph-box');
  if (gb.hidden || !graph.doc) return;
  const top = gb.getBoundingClientRect().top + window.scrollY; // in the page
  const content = gb.scrollHeight + (gb.offsetHeight - gb.clientHeight); // the whole graph and the borders
  const room = Math.min(window.innerHeight * 0.8, window.innerHeight - top - MARGIN);
  const h = Math.round(Math.max(Math.min(240, content), room));
  gb.style.maxHeight = h + 'px';
  gb.scrollTop = graph.icicle ? 0 : gb.scrollHeight;
  if (pageScrolled) return;
  const bottom = top + Math.min(h, content) + MARGIN;
  const y = Math.round(Math.max(0, Math.min(bottom - window.innerHeight, top - MARGIN)));
  if (Math.abs(window.scrollY - y) >= 1) window.scrollTo(0, y);
}
$('#reverse').addEventListener('change', (ev) => go({ reverse: ev.target.checked, zoom: null })); // a bottom-up tree has other paths
$('#view').addEventListener('change', (ev) => go({ view: ev.target.value === 'inuse' ? 'inuse' : 'alloc' }));
let searchTimer = 0;
$('#search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  clearTimeout(searchTimer);
  if ($('#search-input').value !== (P.get('s') || '')) current = -1;
  go({ s: $('#search-input').value });
});
// Search as you type, without a history entry per key.
$('#search-input').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const v = $('#search-input').value;
    if (v === (P.get('s') || '')) return;
    current = -1;
    go({ s: v }, false);
  }, 250);
});
$('#search-next').addEventListener('click', () => step(1));
$('#search-prev').addEventListener('click', () => step(-1));
let filterTimer = 0;
$('#table-filter').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => go({ filter: $('#table-filter').value }, false), 200);
});

document.addEventListener('keydown', (ev) => {
  const typing = ev.target.closest && ev.target.closest('input, select, textarea');
  if (ev.key === 'Escape') {
    if (!$('#menu').hidden) { $('#menu').hidden = true; return; }
    if (typing) { ev.target.blur(); return; }
    // Back out one step: the zoom, then the selection, then the search.
    const zoom = P.get('zoom') ? P.get('zoom').split(';') : [];
    if (zoom.length) go({ zoom: zoom.slice(0, -1).join(';') || null });
    else if (P.get('fn')) go({ fn: null });
    else if (P.get('s')) go({ s: null });
    return;
  }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === '/') { ev.preventDefault(); $('#search-input').focus(); $('#search-input').select(); }
  else if ((ev.key === '[' || ev.key === ']') && !diff()) {
    // Step the ranges back or forth by the width of their span.
    const rs = ranges();
    if (!rs.length || !(DURATION > 0)) return;
    ev.preventDefault();
    const next = stepRanges(rs, ev.key === ']' ? 1 : -1, DURATION);
    if (next !== rs) brush(next, false);
  }
  else if (ev.key === 'n') step(1);
  else if (ev.key === 'N') step(-1);
  else if (ev.key === 'Enter') {
    const i = graph.current >= 0 ? graph.current : graph.hover;
    if (i > 0) go({ zoom: graph.path(i).join(';') });
  }
});

// What is above the graph settles after the first paint (the health, the
// heatmap, the tracks, a legend): keep the graph's root in view while it
// does, and when the window's size changes.
const above = new ResizeObserver(() => { if (settling) fit(); });
for (const e of [$('#capture'), $('.top-grid'), $('#timeline'), ...$('#workspace').children]) {
  if (e.id === 'graph-box') break;
  above.observe(e);
}
let fitTimer = 0;
window.addEventListener('resize', () => { clearTimeout(fitTimer); fitTimer = setTimeout(fit, 60); });

let resizeTimer = 0;
new ResizeObserver(() => {
  // A new tree changes the box's height: drawn already, at this width.
  if (graph.doc && graph.width === Math.max(200, Math.floor(graph.boxWidth)) && P.get('chart') !== 'stack') return;
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (graph.doc) graph.draw();
    if (P.get('chart') === 'stack' && chart.width) chart.draw();
    if (callers.doc && !$('#callers').parentElement.hidden) { callers.draw(); callees.draw(); }
  }, 50);
}).observe($('#graph-box'));
new ResizeObserver(() => {
  clearTimeout(chartResize);
  chartResize = setTimeout(() => { if (P.get('chart') === 'stack') render(); }, 150);
}).observe($('#stack-box'));
let chartResize = 0;
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { graph.draw(); });

render();

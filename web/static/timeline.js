// scorch: the tracks under the heatmap, an ES module the workspace mounts.
// One track for the whole capture (the total series), then the busiest
// processes, each with its busiest threads; the rest are grouped in a
// track of their own that opens on a click. Each track is a small activity
// graph over time drawn on a canvas from threads.json; off-CPU tracks stack
// the time blocked (blue) and waiting to run (orange).
//
// Drag across the tracks to select a range, Shift-drag to add one (the
// workspace merges them and sets them in every view); click a track to
// show only that process or thread in every view, click it again to show
// everything. A function named by focus(name) is painted over the tracks
// where it ran (threads.json with t=focus:NAME).
// Names are attacker-controlled: they reach the page as textContent only.
import { secs, mergeRanges, parseRanges, inRanges, roundTime } from './ranges.js';

const LABEL_W = 230; // px of the label column
const H = { axis: 14, total: 38, process: 22, thread: 18, more: 18 };
const PROCS = 8; // processes shown before "more processes"
const THREADS = 6; // threads shown per process before "more threads"
const OPEN = 1; // processes open at first: the busiest
const THREAD_LIMIT = 200; // threads asked for, the busiest
const COLOR = {
  // The selection and a diff's compare range in the heatmap's colours;
  // the function in focus in teal, apart from both and from the reds.
  cpu: '#e0603a', blocked: '#3b82c4', runqueue: '#f59e0b', focus: '#0d9488', lost: '#dc2626',
  sel: 'rgba(147,110,181,0.3)', selEdge: '#936EB5', cmp: 'rgba(47,126,216,0.22)', dim: 'rgba(127,127,127,0.16)',
};

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// mountTimeline draws the tracks of capture id into root. opts: initial
// (URLSearchParams of the page), filters() (URLSearchParams of the
// filters and transforms, without pid and tid: every track stays listed
// when one is picked), type, fmt(value) (a value as the page says it),
// onBrush(ranges), onPick({pid, tid} | null).
export function mountTimeline(root, id, opts) {
  const state = {
    ranges: parseRanges(opts.initial),
    cmp: parseRanges(opts.initial, 'compare_'), // a diff's compare range
    pid: opts.initial.get('pid') || '',
    tid: opts.initial.get('tid') || '',
    data: null, threads: null, focus: null, focusName: null,
    open: new Set(), more: new Set(), // processes open, processes showing all threads
    moreProcs: false, drag: null,
  };
  root.textContent = '';
  const head = el('div', { class: 'tl-bar' });
  head.append(el('h3', {}, 'Threads'));
  const info = el('span', { class: 'tl-info', id: 'tl-info', 'aria-live': 'polite' });
  const hint = el('span', { class: 'note' }, 'drag to select a range, Shift-drag to add one, [ and ] to step it · click a track to show only it');
  head.append(info, hint);
  const list = el('div', { class: 'tl-list', id: 'tl-list' });
  const status = el('p', { class: 'note', id: 'tl-status' }, 'loading the threads…');
  root.append(head, list, status);
  // The selection and the drag are drawn on one canvas over the graphs.
  const over = el('canvas', { class: 'tl-over', 'aria-hidden': 'true' });
  let rows = []; // {key, kind, pid, tid, label, s (series), b, r (blocked, runqueue), canvas, div}
  let seq = 0;

  function query(extra) {
    const q = opts.filters();
    for (const k of ['pid', 'tid', 'from', 'to']) q.delete(k);
    for (const k in extra || {}) q.set(k, extra[k]);
    return q;
  }

  async function get(q) {
    if (opts.api) return opts.api('/api/captures/' + encodeURIComponent(id) + '/threads.json', q);
    const resp = await fetch('/api/captures/' + encodeURIComponent(id) + '/threads.json?' + q);
    const body = await resp.json().catch(() => ({ error: resp.status + ' ' + resp.statusText }));
    if (!resp.ok) throw new Error(body.error || String(resp.status));
    return body;
  }

  // The tracks come from two answers: the busiest processes (by=process,
  // the rest grouped in other) and the busiest threads (by=thread), which
  // are shown under their process.
  const fetchSet = (extra) => Promise.all([
    get(query({ by: 'process', limit: PROCS, ...extra })),
    get(query({ by: 'thread', limit: THREAD_LIMIT, ...extra })),
  ]);

  let lastQ = null;
  async function load() {
    const q = query().toString();
    if (q === lastQ) return;
    lastQ = q;
    const my = ++seq;
    status.hidden = false;
    status.textContent = 'loading the threads…';
    let pr, th;
    try {
      [pr, th] = await fetchSet({});
    } catch (e) {
      if (my !== seq) return;
      if (/no timestamps/.test(e.message)) { root.hidden = true; return; }
      status.textContent = 'threads: ' + e.message;
      lastQ = null;
      return;
    }
    if (my !== seq) return;
    status.hidden = true;
    // The same answers as those drawn (a merge leaves the tracks as they
    // were): not drawn again, but the function in focus is asked anew
    // (through the new transforms).
    if (pr === state.data && th === state.threads) {
      if (state.focusName) loadFocus(state.focusName);
      return;
    }
    state.data = pr;
    state.threads = th;
    state.allProcs = null;
    state.procThreads = new Map();
    status.hidden = true;
    if (!state.opened) {
      state.opened = true;
      for (const p of pr.threads.slice(0, OPEN)) state.open.add(p.pid);
    }
    build();
    if (state.focusName) loadFocus(state.focusName);
  }

  function sum(list) {
    const n = Math.max(0, ...list.map((s) => (s ? s.length : 0)));
    const out = new Array(n).fill(0);
    for (const s of list) if (s) for (let i = 0; i < s.length; i++) out[i] += s[i];
    return out;
  }

  function buckets() { return state.data ? state.data.buckets : 0; }
  function end() { return state.data ? state.data.to : 0; }

  // build lays the tracks out: which are shown follows what is open.
  function build() {
    const d = state.data;
    list.textContent = '';
    rows = [];
    const tracks = d.threads.concat(d.other ? [d.other] : []);
    // The time axis: a row of its own, so that no label covers a graph.
    addRow({ kind: 'axis', key: 'axis', label: '', sub: 'seconds from the start', s: [] });
    const all = {
      kind: 'total', key: 'all', label: 'all threads', total: d.total, s: d.series,
      sub: d.count + (d.count === 1 ? ' process, ' : ' processes, ') + state.threads.count + (state.threads.count === 1 ? ' thread' : ' threads') +
        (d.lost && d.lost.total ? ' · ' + d.lost.total.toLocaleString('en-US') + ' lost' + (d.lost.series ? '' : ' (when: not recorded)') : ''),
    };
    if (d.offcpu) { all.b = sum(tracks.map((t) => t.blocked)); all.r = sum(tracks.map((t) => t.runqueue)); }
    addRow(all);
    const grand = d.total || 1;
    for (const p of d.threads) addProc(p, grand);
    if (d.other) {
      const rest = state.allProcs ? state.allProcs.slice(d.threads.length) : null;
      addRow({
        kind: 'more', key: 'more-procs', s: d.other.series, b: d.other.blocked, r: d.other.runqueue, total: d.other.total,
        label: (state.moreProcs && rest ? '▾ ' : '▸ ') + (d.count - d.threads.length) + ' more processes', sub: d.other.threads + ' threads · ' + pctOf(d.other.total, grand),
        toggle: async () => {
          state.moreProcs = !state.moreProcs;
          if (state.moreProcs && !state.allProcs) {
            try { state.allProcs = (await get(query({ by: 'process', limit: 10000 }))).threads; } catch (e) { state.allProcs = []; }
          }
          build();
        },
      });
      if (state.moreProcs && rest) for (const p of rest) addProc(p, grand);
    }
    root.dataset.end = String(d.to);
    root.dataset.bucket = String(d.bucket);
    if (d.threads.length === 0) { status.hidden = false; status.textContent = 'No thread has events under these filters.'; }
    scales();
    list.append(over);
    draw();
  }

  // threadsOf are the threads of process pid known so far, busiest first.
  function threadsOf(pid) {
    return state.procThreads.get(pid) || state.threads.threads.filter((t) => t.pid === pid);
  }

  function addProc(p, grand) {
    const ts = threadsOf(p.pid);
    const single = p.threads <= 1;
    const open = state.open.has(p.pid);
    addRow({
      kind: 'process', key: 'p' + p.pid, pid: p.pid, tid: null, single: single, s: p.series, b: p.blocked, r: p.runqueue, total: p.total,
      label: (single ? '' : (open ? '▾ ' : '▸ ')) + p.comm, sub: 'pid ' + p.pid + (single ? (ts[0] && ts[0].tid !== p.pid ? ', tid ' + ts[0].tid : '') : ', ' + p.threads + ' threads') + ' · ' + pctOf(p.total, grand),
      toggle: single ? null : () => { if (open) state.open.delete(p.pid); else state.open.add(p.pid); build(); },
    });
    if (single || !open) return;
    const all = state.more.has(p.pid);
    const shown = all ? ts : ts.slice(0, THREADS);
    for (const t of shown) {
      addRow({ kind: 'thread', key: 't' + t.tid, pid: t.pid, tid: t.tid, s: t.series, b: t.blocked, r: t.runqueue, total: t.total, comm: t.comm, label: 'thread ' + t.tid, sub: pctOf(t.total, grand) + (t.tid === t.pid ? ' · main' : '') });
    }
    const left = p.threads - shown.length;
    if (left > 0) {
      const restTotal = p.total - shown.reduce((a, t) => a + t.total, 0);
      addRow({
        kind: 'more', key: 'more-' + p.pid, label: '▸ ' + left + ' more threads', sub: pctOf(restTotal, grand),
        s: p.series.map((v, i) => Math.max(0, v - shown.reduce((a, t) => a + (t.series[i] || 0), 0))),
        toggle: async () => {
          state.more.add(p.pid);
          if (ts.length < p.threads) {
            try {
              const q = query({ by: 'thread', limit: 10000 });
              q.set('pid', String(p.pid));
              state.procThreads.set(p.pid, (await get(q)).threads);
            } catch (e) { /* keep what is known */ }
          }
          build();
        },
      });
    }
  }

  function pctOf(v, t) { return (t > 0 ? (100 * v / t) : 0).toFixed(1) + '%'; }

  function addRow(r) {
    const div = el('div', { class: 'tl-row tl-' + r.kind, 'data-key': r.key });
    if (r.pid !== undefined && r.pid !== null) div.dataset.pid = r.pid;
    if (r.tid !== undefined && r.tid !== null) div.dataset.tid = r.tid;
    const lab = el('div', { class: 'tl-label', title: r.label.replace(/^[▸▾] /, '') + ' · ' + r.sub });
    if (r.toggle) {
      const b = el('button', { type: 'button', class: 'tl-toggle', 'aria-expanded': r.label.startsWith('▾') ? 'true' : 'false' }, r.label.slice(0, 1));
      b.addEventListener('click', (ev) => { ev.stopPropagation(); r.toggle(); });
      lab.append(b, ' ');
      lab.append(el('span', { class: 'tl-name' }, r.label.replace(/^[▸▾] /, '')));
    } else {
      lab.append(el('span', { class: 'tl-name' }, r.label));
    }
    lab.append(' ', el('span', { class: 'tl-sub' }, r.sub));
    let act = null;
    if (r.kind === 'more') act = () => r.toggle();
    else if (r.kind === 'total') act = () => opts.onPick(null);
    else if (r.kind !== 'axis') act = () => pick(r);
    if (act) {
      // Keyboard too: Tab to a track, Enter shows only it.
      lab.tabIndex = 0;
      lab.setAttribute('role', 'button');
      lab.addEventListener('click', act);
      lab.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); ev.stopPropagation(); act(); } });
    }
    const c = el('canvas', { class: 'tl-graph' });
    c.height = 1;
    div.append(lab, c);
    list.append(div);
    r.div = div;
    r.canvas = c;
    r.h = H[r.kind];
    div.style.height = r.h + 'px';
    rows.push(r);
  }

  // scales: the total against itself, processes against the busiest
  // process, threads against the busiest thread, so that tracks of one
  // kind compare by height.
  let max = {};
  function scales() {
    max = { total: 0, process: 0, thread: 0, more: 0 };
    for (const r of rows) {
      const k = r.kind === 'more' ? 'process' : r.kind;
      for (let i = 0; i < r.s.length; i++) if (r.s[i] > max[k]) max[k] = r.s[i];
    }
    max.more = max.process;
  }

  function selected(r) {
    if (r.kind === 'thread') return state.tid !== '' && String(r.tid) === state.tid;
    if (r.kind === 'process') return (state.pid !== '' && String(r.pid) === state.pid && !state.tid) || (r.tid !== null && state.tid !== '' && String(r.tid) === state.tid);
    if (r.kind === 'total') return !state.pid && !state.tid;
    return false;
  }

  function pick(r) {
    if (selected(r)) { opts.onPick(null); return; }
    if (r.kind === 'thread') opts.onPick({ tid: r.tid });
    else opts.onPick({ pid: r.pid });
  }

  function graphWidth() { return Math.max(100, list.clientWidth - LABEL_W); }

  function draw() {
    if (!state.data) return;
    const W = graphWidth();
    const n = buckets();
    const dpr = window.devicePixelRatio || 1;
    const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
    const focus = state.focus;
    const fm = focus ? focusMap(focus) : null;
    for (const r of rows) {
      const c = r.canvas;
      if (c.width !== W * dpr || c.height !== r.h * dpr) {
        c.width = W * dpr; c.height = r.h * dpr; c.style.width = W + 'px'; c.style.height = r.h + 'px';
      }
      r.div.classList.toggle('selected', selected(r));
      const g = c.getContext('2d');
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, W, r.h);
      const m = max[r.kind] || 1;
      const bw = W / (n || 1);
      const h = r.h - 2;
      const bar = (i, v, base, color) => {
        const y = h * Math.min(1, v / m);
        g.fillStyle = color;
        g.fillRect(i * bw, r.h - base - y, Math.max(bw - (bw > 3 ? 0.5 : 0), 0.8), y);
        return y;
      };
      const faded = fm ? 0.35 : 1;
      g.globalAlpha = faded;
      for (let i = 0; i < r.s.length; i++) {
        if (r.b && r.r) {
          const y = bar(i, r.b[i] || 0, 0, COLOR.blocked);
          bar(i, r.r[i] || 0, y, COLOR.runqueue);
        } else if (r.s[i] > 0) {
          bar(i, r.s[i], 0, COLOR.cpu);
        }
      }
      g.globalAlpha = 1;
      // The focused function's spans, and where they are (for a reader
      // of the page's state: the first and last bucket holding it, and
      // its share in each half of the capture).
      r.spans = 0;
      let first = -1, last = -1, half = [0, 0];
      if (fm) {
        const fs = fm(r);
        if (fs) {
          for (let i = 0; i < fs.length; i++) {
            if (!(fs[i] > 0)) continue;
            // A band over the whole height where it ran (stronger where it
            // holds more of the track), and its own bar.
            g.globalAlpha = 0.12 + 0.3 * Math.min(1, fs[i] / (r.s[i] || fs[i]));
            g.fillStyle = COLOR.focus;
            g.fillRect(i * bw, 0, Math.max(bw, 1), r.h - 1);
            g.globalAlpha = 1;
            bar(i, fs[i], 0, COLOR.focus);
            r.spans++;
            if (first < 0) first = i;
            last = i;
            half[i < fs.length / 2 ? 0 : 1] += fs[i];
          }
        }
      }
      r.div.dataset.spans = r.spans;
      const bk = state.data.bucket;
      r.div.dataset.focusFrom = first < 0 ? '' : secs(+(first * bk).toFixed(6));
      r.div.dataset.focusTo = last < 0 ? '' : secs(+((last + 1) * bk).toFixed(6));
      r.div.dataset.focusHalves = half.join(',');
      const lost = state.data.lost && state.data.lost.series;
      if (r.kind === 'total' && lost) {
        // Lost events: red marks along the top of the total track.
        g.fillStyle = COLOR.lost;
        for (let i = 0; i < lost.length; i++) if (lost[i] > 0) g.fillRect(i * bw, 0, Math.max(bw, 2), 5);
      }
      g.strokeStyle = dark ? '#333' : '#e5e5e5';
      g.beginPath(); g.moveTo(0, r.h - 0.5); g.lineTo(W, r.h - 0.5); g.stroke();
    }
    drawOver();
    root.dataset.drawn = String(++drawn);
  }
  let drawn = 0;

  // focusMap gives each row its series of the focused function.
  function focusMap(f) {
    const [pr, th] = f;
    const byTid = new Map(th.threads.map((t) => [t.tid, t]));
    const byPid = new Map(pr.threads.map((p) => [p.pid, p]));
    return (r) => {
      if (r.kind === 'thread') { const t = byTid.get(r.tid); return t ? t.series : []; }
      if (r.kind === 'process') { const p = byPid.get(r.pid); return p ? p.series : []; }
      if (r.kind === 'total') return pr.series;
      if (r.key === 'more-procs') return pr.other ? pr.other.series : [];
      return null;
    };
  }

  // drawOver: the selected ranges (and the one being dragged) over every
  // track, the time axis along the top track.
  function drawOver() {
    const W = graphWidth();
    const Ht = list.scrollHeight || rows.reduce((a, r) => a + r.h, 0);
    const dpr = window.devicePixelRatio || 1;
    if (over.width !== W * dpr || over.height !== Ht * dpr) {
      over.width = W * dpr; over.height = Ht * dpr; over.style.width = W + 'px'; over.style.height = Ht + 'px';
    }
    over.style.left = LABEL_W + 'px';
    const g = over.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, Ht);
    const T = end();
    if (!(T > 0)) return;
    const x = (t) => (t / T) * W;
    let rs = state.ranges;
    root.dataset.ranges = rs.map((r) => secs(+r[0].toFixed(6)) + '-' + (r[1] === null ? 'end' : secs(+r[1].toFixed(6)))).join(',');
    if (state.drag && state.drag.moved) {
      const a = Math.min(state.drag.t0, state.drag.t1), b = Math.max(state.drag.t0, state.drag.t1);
      rs = state.drag.add ? mergeRanges([...rs, [a, b]]) : [[a, b]];
    }
    if (rs.length) {
      // Outside the selection is dimmed, inside outlined.
      g.fillStyle = COLOR.dim;
      let t = 0;
      for (const r of rs) { g.fillRect(x(t), 0, x(r[0]) - x(t), Ht); t = r[1] === null ? T : r[1]; }
      g.fillRect(x(t), 0, W - x(t), Ht);
      g.strokeStyle = COLOR.selEdge;
      g.lineWidth = 1;
      for (const r of rs) {
        const a = x(r[0]), b = x(r[1] === null ? T : r[1]);
        g.fillStyle = COLOR.sel;
        g.fillRect(a, 0, Math.max(b - a, 1), 4);
        g.beginPath(); g.moveTo(a + 0.5, 0); g.lineTo(a + 0.5, Ht); g.moveTo(b - 0.5, 0); g.lineTo(b - 0.5, Ht); g.stroke();
      }
    }
    // A diff's compare range, in the heatmap's compare colour.
    for (const r of state.cmp) {
      const a = x(r[0]), b = x(r[1] === null ? T : r[1]);
      g.fillStyle = COLOR.cmp;
      g.fillRect(a, 0, Math.max(b - a, 1), Ht);
    }
    // Ticks: about every 80 px, on a round number of seconds.
    const every = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => x(s) >= 80) || 1200;
    const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
    g.fillStyle = dark ? '#bbb' : '#555';
    g.font = '10px sans-serif';
    g.textBaseline = 'top';
    for (let t = every; t < T; t += every) {
      g.fillRect(x(t), 0, 1, 4);
      const text = secs(+t.toFixed(3)) + ' s';
      if (x(t) + 2 + g.measureText(text).width < W) g.fillText(text, x(t) + 2, 1);
    }
  }

  // ---- the mouse: brush, pick, hover --------------------------------------

  const timeAt = (ev) => {
    const b = list.getBoundingClientRect();
    const x = Math.min(Math.max(ev.clientX - b.left - LABEL_W, 0), graphWidth());
    return (x / graphWidth()) * end();
  };
  const rowAt = (ev) => {
    const div = ev.target.closest && ev.target.closest('.tl-row');
    if (div) return rows.find((r) => r.div === div);
    // Over the selection canvas: the row below the pointer.
    const y = ev.clientY;
    return rows.find((r) => { const b = r.div.getBoundingClientRect(); return y >= b.top && y < b.bottom; });
  };
  const inGraph = (ev) => ev.clientX - list.getBoundingClientRect().left >= LABEL_W;

  list.addEventListener('mousedown', (ev) => {
    if (ev.button !== 0 || !inGraph(ev) || !state.data) return;
    ev.preventDefault();
    const t = timeAt(ev);
    state.drag = { t0: t, t1: t, x0: ev.clientX, moved: false, add: ev.shiftKey, row: rowAt(ev) };
  });
  window.addEventListener('mousemove', (ev) => {
    if (state.drag) {
      state.drag.t1 = timeAt(ev);
      if (Math.abs(ev.clientX - state.drag.x0) > 3) state.drag.moved = true;
      drawOver();
    }
  });
  window.addEventListener('mouseup', (ev) => {
    const d = state.drag;
    if (!d) return;
    state.drag = null;
    if (!d.moved) {
      drawOver();
      if (d.row && (d.row.kind === 'process' || d.row.kind === 'thread')) pick(d.row);
      else if (d.row && d.row.kind === 'more') d.row.toggle();
      return;
    }
    const a = Math.max(0, Math.min(d.t0, d.t1)), b = Math.min(end(), Math.max(d.t0, d.t1));
    if (!(b > a)) { drawOver(); return; }
    // Round to a step of about two pixels (1, 2 or 5 times a power of
    // ten), so that the range reads as the axis does.
    const px = (2 * end()) / graphWidth();
    const r = [roundTime(a, px), Math.min(end(), roundTime(b, px))];
    if (!(r[1] > r[0])) { drawOver(); return; }
    state.ranges = d.add || ev.shiftKey ? mergeRanges([...state.ranges, r]) : [r];
    drawOver();
    opts.onBrush(state.ranges);
  });
  list.addEventListener('mousemove', (ev) => {
    if (!state.data) return;
    const r = rowAt(ev);
    if (!r || r.kind === 'axis' || !inGraph(ev)) { info.textContent = ''; return; }
    const t = timeAt(ev);
    const i = Math.min(Math.floor(t / state.data.bucket), buckets() - 1);
    const a = i * state.data.bucket, b = a + state.data.bucket;
    const who = r.kind === 'thread' ? r.comm + ' (pid ' + r.pid + '), thread ' + r.tid : r.label.replace(/^[▸▾] /, '') + (r.pid ? ' (pid ' + r.pid + ')' : '');
    let text = who + ' · ' + secs(+a.toFixed(3)) + '–' + secs(+b.toFixed(3)) + ' s: ';
    if (r.b && r.r) {
      // Off-CPU time in a unit a person reads: a thread's share of the
      // bucket, or how many threads on average for a group.
      const ns = state.data.bucket * 1e9, b = r.b[i] || 0, q = r.r[i] || 0;
      if (r.kind === 'thread' || r.single) {
        text += (100 * b / ns).toFixed(0) + '% blocked (' + opts.fmt(b, 'ns') + '), ' + (100 * q / ns).toFixed(0) + '% waiting to run (' + opts.fmt(q, 'ns') + ')';
      } else {
        text += (b / ns).toFixed(2) + ' threads blocked, ' + (q / ns).toFixed(2) + ' waiting to run on average';
      }
    }
    else text += opts.fmt(r.s[i] || 0);
    if (state.focus) {
      const fs = focusMap(state.focus)(r);
      if (fs) text += ' · ' + state.focusName.replace(/(_\[[kjiw]\])+$/, '') + ': ' + opts.fmt(fs[i] || 0);
    }
    const lost = state.data.lost && state.data.lost.series;
    if (lost && lost[i] > 0) text += ' · ' + lost[i].toLocaleString('en-US') + ' events lost';
    info.textContent = text;
  });
  list.addEventListener('mouseleave', () => { info.textContent = ''; });

  // ---- focus ---------------------------------------------------------------

  const focusCache = new Map();
  // The focused function's tracks: the same two answers, through t=focus.
  function fetchFocus(name) {
    const add = (q) => { q.append('t', 'focus:' + name); return q; };
    return Promise.all([
      get(add(query({ by: 'process', limit: 10000 }))),
      get(add(query({ by: 'thread', limit: THREAD_LIMIT }))),
    ]);
  }
  let fseq = 0;
  async function loadFocus(name) {
    const my = ++fseq;
    state.focusName = name;
    if (!name) { state.focus = null; draw(); return; }
    const key = query().toString() + '|' + name;
    if (!focusCache.has(key)) {
      focusCache.set(key, fetchFocus(name).catch(() => null));
      if (focusCache.size > 32) focusCache.delete(focusCache.keys().next().value);
    }
    const f = await focusCache.get(key);
    if (my !== fseq) return;
    state.focus = f;
    root.dataset.focus = f ? name : '';
    draw();
  }

  let resizeTimer = 0;
  new ResizeObserver(() => { clearTimeout(resizeTimer); resizeTimer = setTimeout(draw, 50); }).observe(list);

  load();
  return {
    // set follows the page's state: the ranges, the pick, the filters;
    // new tracks are asked once after (a promise) settles, when given.
    set(P, after) {
      const was = JSON.stringify([state.ranges, state.cmp]);
      state.ranges = parseRanges(P);
      state.cmp = parseRanges(P, 'compare_');
      const moved = JSON.stringify([state.ranges, state.cmp]) !== was;
      const pick = (P.get('pid') || '') + '/' + (P.get('tid') || '');
      const picked = pick !== state.pid + '/' + state.tid;
      state.pid = P.get('pid') || '';
      state.tid = P.get('tid') || '';
      // The tracks in flight are of a state the page has left: they are
      // not drawn (they would take the main thread from the new state's
      // graph), and asked again if the page goes back to it.
      if (query().toString() !== lastQ) {
        seq++;
        lastQ = null;
      }
      if (after) after.then(() => load()); else load();
      // A new range redraws the selection only; a new pick the tracks;
      // anything else (a transform, a search) neither: the overlay read
      // the layout, in the middle of the page's redraw.
      if (state.data) { if (picked) draw(); else if (moved) drawOver(); }
    },
    focus: loadFocus,
    duration: end,
    bucket: () => (state.data ? state.data.bucket : 0),
    threads: () => (state.data ? state.data.threads : []),
    inRanges: (t) => inRanges(state.ranges, t),
  };
}

// scorch: FlameScope heatmap of the capture page, an ES module the
// workspace mounts. Columns are seconds (left to right), rows sub-second
// offsets (bottom to top). Click a start cell and an end cell, or drag, to
// select a range; hold Shift to add a range to the selection (ranges are
// merged); with "compare" on, a second range is compared with the first.
// A function named by focus(name) is painted over the map: the cells where
// it ran (the server's heatmap with t=focus:NAME). The workspace owns the URL: it passes the state in and is told of
// every change (onChange), and redraws the views.
// No inline code: the page's CSP allows scripts and styles from /assets only.
  import { secs, mergeRanges, parseRanges } from './ranges.js';

  const SVGNS = 'http://www.w3.org/2000/svg';
  const ROWS = [10, 25, 49, 50, 99, 100];
  const PAD = { left: 58, top: 10, bottom: 42, right: 24 };
  const SEL_COLOR = ['#936EB5', '#2F7ED8']; // base range, compare range

  function el(tag, attrs, parent, ns) {
    const e = ns ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function svg(tag, attrs, parent) { return el(tag, attrs, parent, true); }

  export function fmtValue(v, unit) {
    if (unit === 'threads') return (v >= 10 ? v.toFixed(1) : v.toFixed(2)) + (v === 1 ? ' thread' : ' threads') + ' blocked';
    if (unit === 'ns') {
      if (v >= 1e9) return (v / 1e9).toFixed(3) + ' s blocked';
      if (v >= 1e6) return (v / 1e6).toFixed(2) + ' ms blocked';
      if (v >= 1e3) return (v / 1e3).toFixed(1) + ' µs blocked';
      return v + ' ns blocked';
    }
    if (unit === 'bytes') {
      const k = ['B', 'KiB', 'MiB', 'GiB'];
      let i = 0;
      while (v >= 1024 && i < k.length - 1) { v /= 1024; i++; }
      return (i ? v.toFixed(1) : v) + ' ' + k[i];
    }
    v = Math.round(v);
    return v + ' ' + (unit === 'samples' ? (v === 1 ? 'sample' : 'samples') : unit);
  }

  function hexRGB(h) { return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)); }

  // A piecewise-linear colour scale, as FlameScope's: white to deep red;
  // "enhanced" puts light blue and pink on values 1 and 3 so cells with a
  // few samples stand out.
  // For time and bytes, "a few" is 1% and 5% of the maximum. lo is the
  // floor of the scale: when every cell holds about as much (a busy host,
  // threads always blocked), the scale starts there, so that a change of
  // phase shows instead of a uniformly red map.
  function scale(max, enhanced, unit, lo) {
    lo = lo || 0;
    let dom = [lo, lo + (max - lo) / 2, max];
    let cols = ['#FFFFFF', '#FF5032', '#B0000F'];
    const few = unit === 'samples' ? [1, 3] : [max / 100, max / 20];
    if (enhanced && max > few[1]) {
      dom = [0, few[0], few[1], Math.max(max / 2, few[1] * 1.1), max];
      cols = ['#FFFFFF', '#6AAAFF', '#FAA0B5', '#FF5032', '#B0000F'];
    }
    const rgb = cols.map(hexRGB);
    return function (v) {
      if (!(max > 0) || v <= 0) return '#FFFFFF';
      if (v < lo) v = lo;
      let i = 1;
      while (i < dom.length - 1 && v > dom[i]) i++;
      const t = Math.min(1, Math.max(0, (v - dom[i - 1]) / ((dom[i] - dom[i - 1]) || 1)));
      if (lo > 0 && i === 1) return 'rgb(' + rgb[0].map((a, j) => Math.round(a + (rgb[1][j] - a) * Math.max(t, 0.08))).join(',') + ')';
      const c = rgb[i - 1].map((a, j) => Math.round(a + (rgb[i][j] - a) * t));
      return 'rgb(' + c.join(',') + ')';
    };
  }

  // floorOf is where the colour scale starts: the tenth percentile of the
  // cells that hold something, when that is a large part of the maximum.
  function floorOf(d) {
    const vs = [];
    for (const col of d.values) for (const v of col) if (v > 0) vs.push(v);
    if (vs.length < 10) return 0;
    vs.sort((a, b) => a - b);
    const p = vs[Math.floor(vs.length / 10)];
    // Only when the cells differ by more than counting noise above it.
    const spread = d.max - p;
    if (!(p > 0.3 * d.max) || spread < 0.15 * d.max || (d.unit === 'samples' && spread < 3)) return 0;
    return p * 0.95;
  }

  // OFFCPU are the types whose heatmap is time blocked, shown by default
  // as the average number of threads blocked (norm=threads).
  const OFFCPU = ['offcpu', 'wakeup', 'offwake'];

  // mountHeatmap draws the heatmap of capture id into root. opts:
  // initial (URLSearchParams with from, to (repeated: several ranges),
  // compare_from, compare_to, flip, rows, enhanced, norm), filters()
  // (URLSearchParams of the filters and transforms), onChange(state),
  // onNoTimestamps(message), type (the capture's type), single (one range
  // only, no compare: the compare page), prefix (of from and to in
  // initial, '' by default).
  export function mountHeatmap(root, id, opts) {
    const P = opts.initial;
    const prefix = opts.prefix || '';

    if (!document.querySelector('link[href="/assets/heatmap.css"]')) {
      el('link', { rel: 'stylesheet', href: '/assets/heatmap.css' }, document.head);
    }

    const state = {
      rows: ROWS.includes(+P.get('rows')) ? +P.get('rows') : 50,
      enhanced: P.get('enhanced') === '1',
      compare: !opts.single && P.has('compare_from'),
      flipped: P.get('flip') === '1',
      // norm: 'threads' for off-CPU types unless the URL asks for the sum.
      norm: OFFCPU.includes(opts.type) && P.get('norm') !== 'sum' ? 'threads' : '',
      ranges: [], // the selection: ranges [from, to] in seconds, merged
      cmp: null, // the compare range
      anchor: null, // first cell of a selection in progress
      adding: false, // the selection in progress is added to the ranges
      down: null, // cell of the last mousedown, to tell drags from clicks
      hover: null,
      data: null,
      focus: null, // {name, data} of the function painted over the map
    };
    readRanges(P);

    function readRanges(P) {
      state.ranges = parseRanges(P, prefix);
      state.cmp = null;
      if (!opts.single) {
        const c = parseRanges(P, 'compare_');
        if (c.length) state.cmp = c[0];
      }
    }

    // Skeleton: toolbar, the map and, beside it, the graph.
    root.textContent = '';
    el('h3', {}, root).textContent = 'Heatmap';
    const bar = el('div', { class: 'hm-bar' }, root);
    const rowsLabel = el('label', {}, bar);
    rowsLabel.append('rows ');
    const rowsSel = el('select', { class: 'hm-rows', title: 'cells per column; 49 and 99 avoid beat patterns with 99 Hz sampling' }, rowsLabel);
    for (const r of ROWS) {
      const o = el('option', { value: r }, rowsSel);
      o.textContent = r;
      if (r === state.rows) o.selected = true;
    }
    const enhLabel = el('label', { title: 'make cells with only a few samples visible' }, bar);
    const enh = el('input', { type: 'checkbox', class: 'hm-enhanced' }, enhLabel);
    enh.checked = state.enhanced;
    enhLabel.append(' enhanced');
    const normLabel = el('label', { title: 'off-CPU time: the average number of threads blocked in each cell, or the sum of the time every thread was blocked' }, bar);
    const normBox = el('input', { type: 'checkbox', class: 'hm-sum' }, normLabel);
    normBox.checked = !state.norm;
    normLabel.append(' sum of threads');
    normLabel.hidden = !OFFCPU.includes(opts.type);
    const cmpLabel = el('label', { title: 'the next range selected is compared with the first one' }, bar);
    const cmp = el('input', { type: 'checkbox', class: 'hm-compare' }, cmpLabel);
    cmp.checked = state.compare;
    cmpLabel.append(' compare two ranges');
    cmpLabel.hidden = !!opts.single;
    const flip = el('button', { type: 'button', class: 'hm-flip', title: 'swap base and compare' }, bar);
    flip.textContent = 'flip';
    const whole = el('button', { type: 'button', class: 'hm-whole' }, bar);
    whole.textContent = 'whole capture';
    const detail = el('span', { class: 'hm-detail', 'aria-live': 'polite' }, bar);
    const body = el('div', { class: 'hm-body' }, root);
    const mapBox = el('div', { class: 'hm-map' }, body);
    const legendBox = el('div', { class: 'hm-legend' }, mapBox);
    const status = el('p', { class: 'note hm-status' }, mapBox);
    // The capture page has one heatmap: its parts keep the ids the tests
    // and the stylesheet know.
    if (!opts.single) {
      rowsSel.id = 'hm-rows'; enh.id = 'hm-enhanced'; normBox.id = 'hm-sum'; cmp.id = 'hm-compare';
      flip.id = 'hm-flip'; whole.id = 'hm-whole'; detail.id = 'hm-detail'; legendBox.id = 'hm-legend'; status.id = 'hm-status';
    }

    let grid = null; // geometry of the drawn map
    let layer = null; // <g> of the selection highlights
    let focusLayer = null; // <g> of the focused function's cells
    let cellsLayer = null;
    let hoverRect = null;

    function apiQuery(extra) {
      const q = opts.filters();
      for (const k of ['from', 'to']) q.delete(k);
      if (state.norm) q.set('norm', state.norm);
      for (const k in extra) q.set(k, extra[k]);
      return q;
    }

    async function get(q) {
      let resp;
      try {
        resp = await fetch('/api/captures/' + encodeURIComponent(id) + '/heatmap.json?' + q);
      } catch (e) {
        return { error: 'heatmap: ' + e };
      }
      if (resp.ok) {
        const text = await resp.text();
        return { data: JSON.parse(text), text: text };
      }
      let msg = resp.status + '';
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      return { error: msg, status: resp.status };
    }

    let loadedKey = null, loadSeq = 0, drawnText = null;
    async function load() {
      status.textContent = 'loading…';
      loadedKey = apiQuery({ rows: state.rows }).toString();
      const my = ++loadSeq;
      let r = await get(apiQuery({ rows: state.rows }));
      if (my !== loadSeq) return;
      if (r.error && state.norm && /norm/.test(r.error)) {
        // A server without norm=threads: the sum it has.
        state.norm = '';
        normLabel.hidden = true;
        r = await get(apiQuery({ rows: state.rows }));
        loadedKey = apiQuery({ rows: state.rows }).toString();
        if (my !== loadSeq) return;
      }
      if (r.error) {
        if (/no timestamps/.test(r.error)) {
          root.hidden = true; // folded and pprof imports: nothing to map
          if (opts.onNoTimestamps) opts.onNoTimestamps(r.error);
          return;
        }
        status.textContent = 'heatmap: ' + r.error;
        if (r.status === 409) setTimeout(load, 2000);
        return;
      }
      status.textContent = '';
      // The same map as the one drawn (a merge leaves it as it was) is
      // not drawn again.
      if (r.text !== drawnText) {
        drawnText = r.text;
        state.data = r.data;
        draw();
      }
      if (state.focus) loadFocus(state.focus.name, true);
    }

    function draw() {
      const d = state.data;
      const old = mapBox.querySelector('svg.hm-svg');
      if (old) old.remove();
      // About 480 x 160 px of grid, cells 6 to 48 px wide: long captures scroll.
      const cw = Math.max(6, Math.min(48, Math.floor(480 / d.columns)));
      const ch = Math.max(2, Math.min(6, Math.floor(160 / d.rows)));
      const W = Math.max(PAD.left + d.columns * cw + PAD.right, 300);
      const H = PAD.top + d.rows * ch + PAD.bottom;
      grid = { cw: cw, ch: ch, cols: d.columns, rows: d.rows, cs: d.column_seconds };
      const s = svg('svg', {
        class: 'hm-svg', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H,
        'data-left': PAD.left, 'data-top': PAD.top, 'data-cw': cw, 'data-ch': ch,
        'data-columns': d.columns, 'data-rows': d.rows, role: 'img',
        'aria-label': 'heatmap: ' + d.columns + ' columns of ' + d.column_seconds + ' s, ' + d.rows + ' rows',
      });
      if (!opts.single) s.id = 'hm-svg';
      mapBox.insertBefore(s, legendBox);
      svg('rect', { x: PAD.left, y: PAD.top, width: d.columns * cw, height: d.rows * ch, fill: '#FFFFFF', stroke: '#ccc' }, s);
      const lo = floorOf(d);
      const color = scale(d.max, state.enhanced, d.unit, lo);
      cellsLayer = svg('g', { class: 'hm-cells' }, s);
      for (let c = 0; c < d.columns; c++) {
        const col = d.values[c];
        for (let r = 0; r < d.rows; r++) {
          if (col[r] <= 0) continue; // white: the background
          svg('rect', { x: PAD.left + c * cw, y: PAD.top + (d.rows - 1 - r) * ch, width: cw, height: ch, fill: color(col[r]) }, cellsLayer);
        }
      }
      focusLayer = svg('g', { class: 'hm-focus', 'pointer-events': 'none' }, s);
      axes(s, d, cw, ch);
      layer = svg('g', { class: 'hm-sel', 'pointer-events': 'none' }, s);
      hoverRect = svg('rect', { class: 'hm-hover', width: cw, height: ch, fill: 'none', stroke: '#000', 'stroke-width': 1, visibility: 'hidden', 'pointer-events': 'none' }, s);
      s.addEventListener('mousemove', onMove);
      s.addEventListener('mouseleave', () => { hoverRect.setAttribute('visibility', 'hidden'); state.hover = null; highlight(); });
      s.addEventListener('mousedown', onDown);
      s.addEventListener('mouseup', onUp);
      legend(d, color, lo);
      highlight();
      drawFocus();
    }

    function axes(s, d, cw, ch) {
      const x0 = PAD.left, y1 = PAD.top + d.rows * ch;
      // A tick about every 50 px, on a round number of columns.
      const every = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300].find((n) => n * cw >= 50) || 600;
      for (let c = 0; c <= d.columns; c += every) {
        svg('line', { x1: x0 + c * cw, x2: x0 + c * cw, y1: y1, y2: y1 + 4, stroke: '#555' }, s);
        const t = svg('text', { x: x0 + c * cw, y: y1 + 16, 'text-anchor': 'middle', class: 'hm-tick' }, s);
        t.textContent = secs(c * d.column_seconds);
      }
      const xt = svg('text', { x: x0 + (d.columns * cw) / 2, y: y1 + 34, 'text-anchor': 'middle', class: 'hm-axis' }, s);
      xt.textContent = 'seconds from the capture start';
      const ms = d.column_seconds === 1;
      for (let i = 0; i <= 4; i++) {
        const y = y1 - (i / 4) * d.rows * ch;
        svg('line', { x1: x0 - 4, x2: x0, y1: y, y2: y, stroke: '#555' }, s);
        const t = svg('text', { x: x0 - 6, y: y + 4, 'text-anchor': 'end', class: 'hm-tick' }, s);
        const off = (i / 4) * d.column_seconds;
        t.textContent = ms ? Math.round(off * 1000) + '' : secs(off);
      }
      const yt = svg('text', { x: 12, y: PAD.top + (d.rows * ch) / 2, 'text-anchor': 'middle', class: 'hm-axis', transform: 'rotate(-90 12 ' + (PAD.top + (d.rows * ch) / 2) + ')' }, s);
      yt.textContent = ms ? 'offset (ms)' : 'offset (s)';
    }

    function legend(d, color, lo) {
      legendBox.textContent = '';
      const n = 24, w = 10, h = 12;
      const s = svg('svg', { width: n * w + 260, height: h + 18, class: 'hm-legend-svg' }, legendBox);
      for (let i = 0; i < n; i++) {
        svg('rect', { x: i * w, y: 0, width: w, height: h, fill: color(lo + ((d.max - lo) * i) / (n - 1)), stroke: i === 0 ? '#ccc' : 'none' }, s);
      }
      const lab = (x, anchor, v) => {
        const t = svg('text', { x: x, y: h + 13, 'text-anchor': anchor, class: 'hm-tick' }, s);
        t.textContent = v;
      };
      const round = (v) => (d.unit === 'threads' ? v : Math.round(v));
      lab(0, 'start', lo > 0 ? fmtValue(round(lo), d.unit).replace(/ blocked$/, '') : '0');
      lab((n * w) / 2, 'middle', lo > 0 ? '' : fmtValue(round(d.max / 2), d.unit).replace(/ blocked$/, ''));
      lab(n * w + 4, 'start', fmtValue(d.max, d.unit) + ' per cell');
      s.setAttribute('aria-label', lo > 0 ? 'the scale starts at ' + fmtValue(round(lo), d.unit) + ': nine cells in ten hold more, so a change of phase shows' : 'the scale starts at 0');
      legendBox.title = s.getAttribute('aria-label');
    }

    // focus paints the cells where function name ran over the map (null:
    // none). The answers are kept, so hovering back and forth is cheap.
    const focusCache = new Map();
    let focusSeq = 0;
    async function loadFocus(name, fresh) {
      const my = ++focusSeq;
      if (!name) { state.focus = null; drawFocus(); return; }
      const q = apiQuery({ rows: state.rows });
      q.append('t', 'focus:' + name);
      const key = q.toString();
      if (fresh || !focusCache.has(key)) {
        focusCache.set(key, get(q));
        if (focusCache.size > 32) focusCache.delete(focusCache.keys().next().value);
      }
      const r = await focusCache.get(key);
      if (my !== focusSeq) return;
      state.focus = { name: name, data: r.data || null };
      drawFocus();
    }

    function drawFocus() {
      if (!focusLayer) return;
      focusLayer.textContent = '';
      const f = state.focus && state.focus.data;
      root.dataset.focus = f ? state.focus.name : '';
      cellsLayer.setAttribute('opacity', f ? 0.3 : 1);
      if (!f || f.columns !== grid.cols || f.rows !== grid.rows) return;
      const max = f.max || 1;
      let n = 0;
      for (let c = 0; c < f.columns; c++) {
        for (let r = 0; r < f.rows; r++) {
          const v = f.values[c][r];
          if (v <= 0) continue;
          n++;
          svg('rect', {
            x: PAD.left + c * grid.cw, y: PAD.top + (grid.rows - 1 - r) * grid.ch, width: grid.cw, height: grid.ch,
            fill: '#0d9488', 'fill-opacity': (0.3 + 0.7 * Math.min(1, v / max)).toFixed(2), 'data-c': c, 'data-r': r,
          }, focusLayer);
        }
      }
      focusLayer.dataset.cells = n;
    }

    // cellAt maps a mouse event to a cell, or null outside the grid.
    function cellAt(ev) {
      const s = ev.currentTarget;
      const b = s.getBoundingClientRect();
      const x = ev.clientX - b.left - PAD.left, y = ev.clientY - b.top - PAD.top;
      const c = Math.floor(x / grid.cw), rr = Math.floor(y / grid.ch);
      if (c < 0 || c >= grid.cols || rr < 0 || rr >= grid.rows) return null;
      return { c: c, r: grid.rows - 1 - rr };
    }
    const idx = (cell) => cell.c * grid.rows + cell.r; // time order
    function cellFrom(g) { return (Math.floor(g / grid.rows) + (g % grid.rows) / grid.rows) * grid.cs; }

    // rangeOf is the time range from the start of the earlier cell to the
    // end of the later one, whichever was picked first.
    function rangeOf(a, b) {
      const g1 = Math.min(idx(a), idx(b)), g2 = Math.max(idx(a), idx(b));
      const to = Math.min(cellFrom(g2 + 1), state.data.duration || Infinity);
      return [cellFrom(g1), to];
    }

    function onMove(ev) {
      const cell = cellAt(ev);
      state.hover = cell;
      if (!cell) { hoverRect.setAttribute('visibility', 'hidden'); highlight(); return; }
      hoverRect.setAttribute('x', PAD.left + cell.c * grid.cw);
      hoverRect.setAttribute('y', PAD.top + (grid.rows - 1 - cell.r) * grid.ch);
      hoverRect.setAttribute('visibility', 'visible');
      const from = cellFrom(idx(cell)), to = cellFrom(idx(cell) + 1);
      const v = state.data.values[cell.c][cell.r];
      let text = secs(+from.toFixed(4)) + '–' + secs(+to.toFixed(4)) + ' s: ' + fmtValue(v, state.data.unit);
      const f = state.focus && state.focus.data;
      if (f && f.values[cell.c]) text += ' · ' + state.focus.name.replace(/(_\[[kjiw]\])+$/, '') + ': ' + fmtValue(f.values[cell.c][cell.r], f.unit);
      detail.textContent = text;
      if (state.anchor) highlight();
    }

    function onDown(ev) {
      if (ev.button !== 0) return;
      const cell = cellAt(ev);
      if (!cell) return;
      ev.preventDefault(); // no text selection while dragging
      if (state.anchor) { finish(state.anchor, cell, ev.shiftKey || state.adding); return; }
      state.anchor = cell;
      state.adding = ev.shiftKey;
      state.down = cell;
      state.hover = cell;
      highlight();
    }

    function onUp(ev) {
      const cell = cellAt(ev);
      const down = state.down;
      state.down = null;
      if (state.anchor && down && cell && idx(cell) !== idx(down)) finish(state.anchor, cell, ev.shiftKey || state.adding); // a drag
    }

    function finish(a, b, add) {
      const range = rangeOf(a, b);
      state.anchor = null;
      state.down = null;
      state.adding = false;
      if (state.compare && state.ranges.length) {
        state.cmp = range;
      } else if (add && !opts.single) {
        state.ranges = mergeRanges([...state.ranges, range]);
      } else {
        state.ranges = [range];
        state.cmp = null;
      }
      highlight();
      showGraph();
    }

    function cancel() {
      if (state.anchor) { state.anchor = null; state.down = null; highlight(); return; }
    }

    // highlight draws the committed ranges and the one in progress, each
    // contiguous in time: the rest of the first column, the columns
    // between, the head of the last.
    function highlight() {
      if (!layer) return;
      layer.textContent = '';
      const ranges = [];
      for (const r of state.ranges) ranges.push([r, SEL_COLOR[0]]);
      if (state.cmp) ranges.push([state.cmp, SEL_COLOR[1]]);
      if (state.anchor) {
        const b = state.hover || state.anchor;
        const which = state.compare && state.ranges.length ? 1 : 0;
        ranges.push([rangeOf(state.anchor, b), SEL_COLOR[which]]);
      }
      for (const [r, color] of ranges) band(r, color);
    }

    function band(range, color) {
      const rows = grid.rows, cs = grid.cs;
      const g1 = Math.max(0, Math.floor((range[0] / cs) * rows + 1e-6));
      const end = range[1] === null ? grid.cols * rows : Math.ceil((range[1] / cs) * rows - 1e-6);
      const g2 = Math.min(grid.cols * rows, end) - 1;
      if (g2 < g1) return;
      const c1 = Math.floor(g1 / rows), r1 = g1 % rows, c2 = Math.floor(g2 / rows), r2 = g2 % rows;
      const rect = (c, ra, rb, nc) => svg('rect', {
        x: PAD.left + c * grid.cw, y: PAD.top + (rows - 1 - rb) * grid.ch,
        width: grid.cw * nc, height: (rb - ra + 1) * grid.ch, fill: color, 'fill-opacity': 0.45,
      }, layer);
      if (c1 === c2) { rect(c1, r1, r2, 1); return; }
      rect(c1, r1, rows - 1, 1);
      if (c2 > c1 + 1) rect(c1 + 1, 0, rows - 1, c2 - c1 - 1);
      rect(c2, 0, r2, 1);
    }

    // showGraph tells the workspace what is selected; it redraws the views
    // and writes the URL.
    function showGraph() {
      flip.hidden = !(state.ranges.length && state.cmp && state.compare);
      syncPage();
    }

    function syncPage() {
      const compare = state.compare && !!state.cmp;
      // A comparison has one range on each side.
      const ranges = compare ? state.ranges.slice(0, 1) : state.ranges.slice();
      opts.onChange({
        ranges: ranges, sel: [ranges[0] || null, state.cmp], cmp: state.cmp, compare: state.compare,
        flipped: state.flipped && compare, rows: state.rows, enhanced: state.enhanced,
        norm: OFFCPU.includes(opts.type) && !state.norm ? 'sum' : null,
        duration: state.data ? state.data.duration : null,
      });
    }

    // set restores a state from the URL (Back, Forward, a brush elsewhere);
    // a new map is asked once after (a promise) settles, when given.
    function set(P, after) {
      readRanges(P);
      // The filters and transforms shape the map: a pick of a thread, a
      // focus, a drop are drawn anew.
      if (OFFCPU.includes(opts.type) && normLabel.hidden === false) {
        state.norm = P.get('norm') === 'sum' ? '' : 'threads';
        normBox.checked = !state.norm;
      }
      const key = apiQuery({ rows: state.rows }).toString();
      if (loadedKey !== null && key !== loadedKey) {
        // The map in flight is of a state the page has left: it is not
        // drawn (it would take the main thread from the new state's graph).
        loadedKey = key;
        ++loadSeq;
        if (after) after.then(() => load()); else load();
      }
      state.compare = !opts.single && P.has('compare_from');
      state.flipped = P.get('flip') === '1';
      cmp.checked = state.compare;
      flip.hidden = !(state.ranges.length && state.cmp && state.compare);
      highlight();
    }

    rowsSel.addEventListener('change', () => { state.rows = +rowsSel.value; syncPage(); load(); });
    enh.addEventListener('change', () => { state.enhanced = enh.checked; syncPage(); if (state.data) draw(); });
    normBox.addEventListener('change', () => { state.norm = normBox.checked ? '' : 'threads'; syncPage(); load(); });
    cmp.addEventListener('change', () => {
      state.compare = cmp.checked;
      if (!state.compare) state.cmp = null;
      else state.ranges = state.ranges.slice(0, 1);
      highlight();
      showGraph();
    });
    flip.addEventListener('click', () => { state.flipped = !state.flipped; showGraph(); });
    whole.addEventListener('click', () => { state.ranges = []; state.cmp = null; state.anchor = null; highlight(); showGraph(); });
    document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') cancel(); });
    // A click outside the map cancels a selection in progress.
    document.addEventListener('mousedown', (ev) => {
      if (state.anchor && !(ev.target.closest && ev.target.closest('svg.hm-svg') === mapBox.querySelector('svg.hm-svg'))) cancel();
    });
    flip.hidden = !(state.ranges.length && state.cmp && state.compare);
    load();
    return {
      set: set, reload: load,
      focus: (name) => loadFocus(name, false),
      duration: () => (state.data ? state.data.duration : null),
      unit: () => (state.data ? state.data.unit : null),
    };
  }

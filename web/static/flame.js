// scorch: a flame graph drawn on a canvas from a TREE of the JSON routes
// ({name, value, self, children}, diffs add base_total and base_self).
// Used for the capture page's graph and for both halves of the sandwich.

const ROW = 18;
const FONT = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';

// Diff colour scale: changes of a frame's share of its side's total, in
// percentage points. Below the first step a frame is neutral; the scale
// is fixed, so a small change never looks like the largest one.
export const DIFF_STEPS = [0.1, 0.5, 1, 2, 5];

function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return ((h >>> 0) % 1000) / 1000;
}

export function kindOf(name) {
  if (name === '[pruned]') return 'pruned';
  if (/_\[w\]$/.test(name)) return 'waker';
  if (/_\[k\]$/.test(name)) return 'kernel';
  if (/_\[j\]$/.test(name)) return 'jit';
  if (/_\[i\]$/.test(name)) return 'inlined';
  if (name === '--' || /^\[.*\]$/.test(name)) return 'synthetic';
  return 'user';
}

// label is the name as shown: without the folded kind suffix.
export function label(name) { return name.replace(/(_\[[kjiw]\])+$/, ''); }

// palette gives the fill of a frame: the capture type's palette, with
// kernel, JIT and inlined frames told apart as FlameGraph does.
export function palette(type) {
  return function (name) {
    const v = hash(name), k = kindOf(name);
    switch (k) {
      case 'pruned': return 'hsl(0,0%,78%)';
      case 'synthetic': return 'hsl(0,0%,' + (70 + v * 10) + '%)';
      case 'waker': return 'hsl(' + (165 + v * 25) + ',50%,' + (55 + v * 15) + '%)'; // the waker's stack, after --
      case 'kernel': return 'hsl(' + (25 + v * 15) + ',85%,' + (55 + v * 10) + '%)';
      case 'jit': return 'hsl(' + (100 + v * 30) + ',50%,' + (50 + v * 10) + '%)';
      case 'inlined': return 'hsl(' + (175 + v * 15) + ',55%,' + (55 + v * 10) + '%)';
    }
    switch (type) {
      case 'offcpu': case 'wakeup': case 'offwake':
        return 'hsl(' + (200 + v * 25) + ',60%,' + (55 + v * 20) + '%)';
      case 'mem':
        return 'hsl(' + (100 + v * 40) + ',50%,' + (50 + v * 15) + '%)';
      default:
        return 'hsl(' + (v * 50) + ',' + (80 + v * 15) + '%,' + (55 + v * 12) + '%)';
    }
  };
}

// diffColor: red grew, blue shrank, by steps of DIFF_STEPS points.
export function diffColor(points, threshold) {
  const a = Math.abs(points);
  if (a < threshold) return 'hsl(0,0%,86%)';
  let step = 0;
  for (let i = 0; i < DIFF_STEPS.length; i++) if (a >= Math.max(DIFF_STEPS[i], threshold)) step = i;
  const light = 82 - step * 9;
  return points > 0 ? 'hsl(0,80%,' + light + '%)' : 'hsl(220,80%,' + light + '%)';
}

// cpiColor: cycles per instruction, blue (instruction-heavy, CPI 0.25 or
// less) to red (stall-heavy, 4 or more), log-scaled: the SVG's CPI scale.
export function cpiColor(cycles, instructions) {
  if (!(instructions > 0)) return 'rgb(190,190,190)';
  let f = (Math.log2(cycles / instructions) + 2) / 4;
  f = Math.min(Math.max(f, 0), 1);
  const mix = (a, b) => Math.round(a + (b - a) * f);
  return 'rgb(' + mix(50, 230) + ',' + mix(90, 40) + ',' + mix(230, 30) + ')';
}

// flatten lays a tree out: every frame's start (in value units from the
// left edge), depth, parent and the end of its subtree (the index after
// its last descendant), in pre-order, which keeps each row in
// left-to-right order and a frame's descendants right after it.
export function flatten(root) {
  const nodes = [];
  const work = [{ n: root, x: 0, d: 0, p: -1, end: 1, fill: undefined, thr: undefined, label: undefined }];
  let maxDepth = 0;
  while (work.length) {
    const nd = work.pop();
    const i = nodes.length;
    nodes.push(nd);
    if (nd.d > maxDepth) maxDepth = nd.d;
    const kids = nd.n.children;
    if (!kids || kids.length === 0) continue;
    // The children from the left edge (the parent's self is right of
    // them), pushed last first: popped in order.
    let cx = nd.x;
    for (let k = 0; k < kids.length; k++) cx += kids[k].value;
    for (let k = kids.length - 1; k >= 0; k--) {
      cx -= kids[k].value;
      work.push({ n: kids[k], x: cx, d: nd.d + 1, p: i, end: 1, fill: undefined, thr: undefined, label: undefined });
    }
  }
  // end holds each subtree's size until here: added up from the leaves.
  for (let i = nodes.length - 1; i > 0; i--) nodes[nodes[i].p].end += nodes[i].end;
  for (let i = 0; i < nodes.length; i++) nodes[i].end += i;
  return { nodes: nodes, maxDepth: maxDepth };
}

export class FlameView {
  // opts: icicle (root on top), onHover(i|null, ev), onClick(i, ev),
  // onContext(i, ev); all optional.
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts || {};
    this.flat = { nodes: [], maxDepth: 0 };
    this.zoom = 0;
    this.rows = [];
    this.icicle = !!this.opts.icicle;
    this.fill = palette('cpu');
    this.match = null; // Set of node indexes
    this.selected = null; // a name
    this.current = -1; // the match stepped to
    this.hover = -1;
    // What is drawn, for tests that look at the graph as a user would:
    // each frame's label and where it is on the canvas (CSS pixels).
    canvas.scorchFrames = () => this.drawn.map(([x, y, w, i]) => ({
      name: i === 0 ? this.flat.nodes[i].n.name : label(this.flat.nodes[i].n.name), full: this.flat.nodes[i].n.name,
      x: x, y: y, w: w, h: ROW, depth: this.flat.nodes[i].d,
      match: !!(this.match && this.match.has(i)), selected: this.flat.nodes[i].n.name === this.selected,
    }));
    this.drawn = [];
    this.pos = new Map(); // node index -> [x, y, w] as drawn
    // Hover and the current match are outlined on a canvas of their own
    // above the graph, so that moving the mouse redraws one frame, not all.
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'flame-overlay';
    this.overlay.setAttribute('aria-hidden', 'true');
    canvas.insertAdjacentElement('afterend', this.overlay);
    // The box's width, kept as it changes: read from the layout at each
    // draw, it made the browser lay the page out anew in the middle of a
    // redraw (the table below the graph included).
    this.boxWidth = 0;
    new ResizeObserver((es) => { this.boxWidth = es[es.length - 1].contentRect.width; }).observe(canvas.parentElement);
    canvas.addEventListener('mousemove', (ev) => this._move(ev));
    canvas.addEventListener('mouseleave', () => { this.hover = -1; if (this.opts.onHover) this.opts.onHover(null, null); this.drawOverlay(); });
    canvas.addEventListener('click', (ev) => { const i = this.at(ev); if (i >= 0 && this.opts.onClick) this.opts.onClick(i, ev); });
    canvas.addEventListener('contextmenu', (ev) => {
      const i = this.at(ev);
      if (i >= 0 && this.opts.onContext) { ev.preventDefault(); this.opts.onContext(i, ev); }
    });
  }

  // set gives the view a tree: doc is {total, base_total, unit, tree}.
  set(doc, opts) {
    this.doc = doc;
    this.flat = flatten(doc.tree);
    this.diff = !!opts.diff;
    this.cpi = !!doc.instructions && !this.diff;
    this.threshold = opts.threshold || DIFF_STEPS[0];
    this.fill = palette(opts.type);
    this.zoom = 0;
    this.hover = -1;
  }

  node(i) { return this.flat.nodes[i]; }

  // path is the names from the root's child down to node i.
  path(i) {
    const out = [];
    for (let j = i; j > 0; j = this.flat.nodes[j].p) out.push(this.flat.nodes[j].n.name);
    return out.reverse();
  }

  // find follows names down from the root, as far as they go.
  find(names) {
    let i = 0;
    for (const name of names) {
      let found = -1;
      const nodes = this.flat.nodes;
      for (let j = i + 1; j < nodes.length && nodes[j].d > nodes[i].d; j++) {
        if (nodes[j].p === i && nodes[j].n.name === name) { found = j; break; }
      }
      if (found < 0) break;
      i = found;
    }
    return i;
  }

  // delta is the change of a node's share, in percentage points.
  delta(n) {
    const t = this.doc.total || 1, b = this.doc.base_total || 1;
    return ((n.value / t) - ((n.base_total || 0) / b)) * 100;
  }

  color(nd) {
    const n = nd.n;
    if (this.diff && n.name !== '[pruned]') return diffColor(this.delta(n), this.threshold);
    if (this.cpi && n.name !== '[pruned]') return cpiColor(n.value, n.base_total);
    return this.fill(n.name);
  }

  draw() {
    const c = this.canvas;
    const nodes = this.flat.nodes;
    const width = Math.max(200, Math.floor(this.boxWidth || c.parentElement.clientWidth || c.clientWidth || 800));
    const z = nodes[this.zoom] || { x: 0, d: 0, n: { value: 1 } };
    const zv = z.n.value || 1;
    const depth = this.flat.maxDepth + 1;
    const height = depth * ROW + 4;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== width * dpr || c.height !== height * dpr) {
      c.width = width * dpr;
      c.height = height * dpr;
      c.style.width = width + 'px';
      c.style.height = height + 'px';
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = FONT;
    g.textBaseline = 'middle';
    const charW = g.measureText('M').width || 7;
    const scale = width / zv;
    const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
    this.rows = [];
    this.drawn = [];
    this.pos = new Map();
    this.width = width;
    this.height = height;
    this.dark = dark;
    // Ancestors of the zoomed frame are drawn full width.
    const anc = new Set();
    for (let j = this.zoom; j >= 0; j = nodes[j].p) { anc.add(j); if (j === 0) break; }
    const zEnd = z.x + zv;
    // The frames are drawn by fill, then the outlines, then the labels:
    // the canvas parses a colour each time one is set, and frames do not
    // overlap, so setting each fill once per draw instead of once per
    // frame draws the same picture in less time.
    const batches = new Map(); // fill and dimming -> {fill, dim, r: [x, y, w, ...]}
    const outlines = [], texts = [];
    // A frame that is not drawn (outside the zoomed frame, or too
    // narrow) has no drawn descendants either: its subtree is skipped.
    for (let i = 0, next = 1; i < nodes.length; i = next) {
      const nd = nodes[i];
      next = i + 1;
      let x0, w;
      if (anc.has(i)) {
        x0 = 0; w = width;
      } else {
        if (nd.d <= z.d || nd.x + nd.n.value <= z.x || nd.x >= zEnd) { next = nd.end; continue; }
        x0 = (nd.x - z.x) * scale;
        w = nd.n.value * scale;
      }
      if (w < 0.4) { next = nd.end; continue; }
      const y = this.icicle ? nd.d * ROW : (depth - 1 - nd.d) * ROW;
      (this.rows[nd.d] = this.rows[nd.d] || []).push([x0, x0 + w, i]);
      this.drawn.push([x0, y, w, i]);
      this.pos.set(i, [x0, y, w]);
      const dim = anc.has(i) && i !== this.zoom;
      // Colours depend on the tree and the threshold only: computed once.
      if (nd.fill === undefined || nd.thr !== this.threshold) { nd.fill = this.color(nd); nd.thr = this.threshold; }
      let fill = nd.fill;
      if (this.match && this.match.has(i)) fill = 'hsl(300,75%,62%)';
      const key = (dim ? 'd' : 'n') + fill;
      let b = batches.get(key);
      if (!b) batches.set(key, (b = { fill: fill, dim: dim, r: [] }));
      b.r.push(x0, y + 1, Math.max(w - 0.5, 0.4));
      if (this.selected !== null && nd.n.name === this.selected) outlines.push([x0 + 1, y + 2, Math.max(w - 2.5, 1), dim]);
      if (w > charW * 3) {
        if (nd.label === undefined) nd.label = i === 0 ? nd.n.name : label(nd.n.name);
        const name = nd.label;
        const fit = Math.floor((w - 6) / charW);
        const text = name.length <= fit ? name : name.slice(0, Math.max(fit - 2, 1)) + '..';
        texts.push([text, x0 + 3, y + ROW / 2 + 0.5, dim]);
      }
    }
    for (const b of batches.values()) {
      g.globalAlpha = b.dim ? 0.55 : 1;
      g.fillStyle = b.fill;
      const r = b.r;
      for (let k = 0; k < r.length; k += 3) g.fillRect(r[k], r[k + 1], r[k + 2], ROW - 2);
    }
    g.lineWidth = 2;
    g.strokeStyle = dark ? '#fff' : '#000';
    for (const [x, y, w, dim] of outlines) {
      g.globalAlpha = dim ? 0.55 : 1;
      g.strokeRect(x, y, w, ROW - 4);
    }
    g.fillStyle = '#111';
    for (const [text, x, y, dim] of texts) {
      g.globalAlpha = dim ? 0.55 : 1;
      g.fillText(text, x, y);
    }
    g.globalAlpha = 1;
    this.drawOverlay();
  }

  // drawOverlay outlines the frame under the mouse and the current match.
  drawOverlay() {
    const o = this.overlay, c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    if (o.width !== c.width || o.height !== c.height) {
      o.width = c.width;
      o.height = c.height;
      o.style.width = c.style.width;
      o.style.height = c.style.height;
    }
    const g = o.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, o.width, o.height);
    for (const [i, width, color] of [[this.current, 3, '#7c3aed'], [this.hover, 1, this.dark ? '#eee' : '#222']]) {
      const p = i >= 0 && this.pos.get(i);
      if (!p) continue;
      g.lineWidth = width;
      g.strokeStyle = color;
      g.strokeRect(p[0] + 0.5, p[1] + 1.5, Math.max(p[2] - 1.5, 1), ROW - 3);
    }
  }

  // at is the index of the frame under the mouse, or -1.
  at(ev) {
    const b = this.canvas.getBoundingClientRect();
    const x = ev.clientX - b.left, y = ev.clientY - b.top;
    const depth = this.flat.maxDepth + 1;
    const d = this.icicle ? Math.floor(y / ROW) : depth - 1 - Math.floor(y / ROW);
    const row = this.rows[d];
    if (!row) return -1;
    for (const r of row) if (x >= r[0] && x < r[1]) return r[2];
    return -1;
  }

  // rowY is the top of node i's row, for scrolling it into view.
  rowY(i) {
    const d = this.flat.nodes[i].d;
    return this.icicle ? d * ROW : (this.flat.maxDepth - d) * ROW;
  }

  _move(ev) {
    const i = this.at(ev);
    if (i !== this.hover) {
      this.hover = i;
      this.drawOverlay();
    }
    if (this.opts.onHover) this.opts.onHover(i >= 0 ? i : null, ev);
  }
}

// scorch: the stack chart of one thread, drawn on a canvas from
// stackchart.json ({from, to, runs: [{depth, name, start, end}]}): time on
// x, depth on y (the root on top), the flame graph's colours. The wheel
// zooms around the pointer and a drag selects a range (both tell the
// workspace, which sets the page's range and fetches the runs again);
// hover and click work as on the flame graph.
import { palette, label } from './flame.js';

const ROW = 16;
const FONT = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';

export class StackChart {
  // opts: onHover(run|null, ev), onClick(run, ev), onContext(run, ev),
  // onZoom(from, to), onBrush(from, to, add); all optional.
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts || {};
    this.doc = { from: 0, to: 1, runs: [] };
    this.view = [0, 1]; // the time window drawn, seconds
    this.fill = palette('cpu');
    this.selected = null;
    this.match = null; // a RegExp
    this.hover = null;
    this.drawn = [];
    this.maxDepth = 0;
    canvas.scorchRuns = () => this.drawn.map(([x, y, w, r]) => ({ name: label(r.name), full: r.name, x: x, y: y, w: w, h: ROW, depth: r.depth, start: r.start, end: r.end, selected: r.name === this.selected }));
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'flame-overlay';
    this.overlay.setAttribute('aria-hidden', 'true');
    canvas.insertAdjacentElement('afterend', this.overlay);
    canvas.addEventListener('mousemove', (ev) => this._move(ev));
    canvas.addEventListener('mouseleave', () => { this.hover = null; if (this.opts.onHover) this.opts.onHover(null, null); this.drawOverlay(); });
    canvas.addEventListener('mousedown', (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      this.drag = { x0: this._x(ev), x1: this._x(ev), add: ev.shiftKey, moved: false };
    });
    window.addEventListener('mousemove', (ev) => {
      if (!this.drag) return;
      this.drag.x1 = this._x(ev);
      if (Math.abs(this.drag.x1 - this.drag.x0) > 3) this.drag.moved = true;
      this.drawOverlay();
    });
    window.addEventListener('mouseup', (ev) => {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      this.drawOverlay();
      if (!d.moved) {
        const r = this.at(ev);
        if (r && this.opts.onClick) this.opts.onClick(r, ev);
        return;
      }
      const a = this._t(Math.min(d.x0, d.x1)), b = this._t(Math.max(d.x0, d.x1));
      if (b > a && this.opts.onBrush) this.opts.onBrush(a, b, d.add || ev.shiftKey);
    });
    canvas.addEventListener('contextmenu', (ev) => {
      const r = this.at(ev);
      if (r && this.opts.onContext) { ev.preventDefault(); this.opts.onContext(r, ev); }
    });
    canvas.addEventListener('wheel', (ev) => {
      if (!this.width) return;
      ev.preventDefault();
      const f = Math.exp(Math.max(-1, Math.min(1, ev.deltaY / 300)));
      const t = this._t(this._x(ev));
      let [a, b] = this.view;
      const lim = [this.bounds[0], this.bounds[1]];
      a = t - (t - a) * f;
      b = t + (b - t) * f;
      if (b - a < 1e-4) return; // 100 µs is as far as it goes
      a = Math.max(lim[0], a);
      b = Math.min(lim[1], b);
      this.view = [a, b];
      this.draw();
      if (this.opts.onZoom) this.opts.onZoom(a, b);
    }, { passive: false });
    this.bounds = [0, 1];
  }

  // set gives the chart its runs; bounds is the whole capture [0, end].
  set(doc, type, bounds) {
    this.doc = doc;
    this.fill = palette(type);
    this.view = [doc.from, doc.to];
    this.bounds = bounds || [doc.from, doc.to];
    this.maxDepth = 0;
    for (const r of doc.runs) if (r.depth > this.maxDepth) this.maxDepth = r.depth;
    this.colors = new Map();
  }

  _x(ev) { return ev.clientX - this.canvas.getBoundingClientRect().left; }
  _t(x) { return this.view[0] + (x / (this.width || 1)) * (this.view[1] - this.view[0]); }

  draw() {
    const c = this.canvas;
    const width = Math.max(200, Math.floor(c.parentElement.clientWidth || 800));
    const height = Math.max(3, this.maxDepth + 2) * ROW + 4;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== width * dpr || c.height !== height * dpr) {
      c.width = width * dpr;
      c.height = height * dpr;
      c.style.width = width + 'px';
      c.style.height = height + 'px';
    }
    this.width = width;
    this.height = height;
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = FONT;
    g.textBaseline = 'middle';
    const charW = g.measureText('M').width || 7;
    const [a, b] = this.view;
    const scale = width / ((b - a) || 1);
    const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
    this.dark = dark;
    this.drawn = [];
    this.rows = [];
    for (const r of this.doc.runs) {
      if (r.end <= a || r.start >= b) continue;
      const x0 = Math.max(0, (r.start - a) * scale), x1 = Math.min(width, (r.end - a) * scale);
      const w = x1 - x0;
      if (w < 0.3) continue;
      const y = r.depth * ROW + ROW; // the first row is the time axis
      (this.rows[r.depth] = this.rows[r.depth] || []).push([x0, x1, r]);
      this.drawn.push([x0, y, w, r]);
      let fill = this.colors.get(r.name);
      if (!fill) { fill = this.fill(r.name); this.colors.set(r.name, fill); }
      if (this.match && this.match.test(label(r.name))) fill = 'hsl(300,75%,62%)';
      g.fillStyle = fill;
      g.fillRect(x0, y + 1, Math.max(w - (w > 2 ? 0.5 : 0), 0.3), ROW - 2);
      if (this.selected !== null && r.name === this.selected) {
        g.lineWidth = 2;
        g.strokeStyle = dark ? '#fff' : '#000';
        g.strokeRect(x0 + 1, y + 2, Math.max(w - 2.5, 1), ROW - 4);
      }
      if (w > charW * 3) {
        const name = label(r.name);
        const fit = Math.floor((w - 6) / charW);
        g.fillStyle = '#111';
        g.fillText(name.length <= fit ? name : name.slice(0, Math.max(fit - 2, 1)) + '..', x0 + 3, y + ROW / 2 + 0.5);
      }
    }
    // The time axis: seconds from the capture start.
    const every = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => s * scale >= 90) || 600;
    g.fillStyle = dark ? '#bbb' : '#555';
    g.font = '10px sans-serif';
    g.textBaseline = 'top';
    const digits = Math.max(0, -Math.floor(Math.log10(every)));
    for (let t = Math.ceil(a / every) * every; t < b; t += every) {
      const x = (t - a) * scale;
      g.fillRect(x, 0, 1, 5);
      const text = t.toFixed(digits) + ' s';
      if (x + 2 + g.measureText(text).width < width) g.fillText(text, x + 2, 2);
    }
    this.drawOverlay();
  }

  drawOverlay() {
    const o = this.overlay, c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    if (o.width !== c.width || o.height !== c.height) {
      o.width = c.width; o.height = c.height; o.style.width = c.style.width; o.style.height = c.style.height;
    }
    o.style.top = c.offsetTop + 'px';
    o.style.left = c.offsetLeft + 'px';
    const g = o.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, o.width, o.height);
    if (this.hover) {
      const [a, b] = this.view, scale = this.width / ((b - a) || 1);
      const r = this.hover;
      const x0 = Math.max(0, (r.start - a) * scale), x1 = Math.min(this.width, (r.end - a) * scale);
      g.lineWidth = 1;
      g.strokeStyle = this.dark ? '#eee' : '#222';
      g.strokeRect(x0 + 0.5, r.depth * ROW + ROW + 1.5, Math.max(x1 - x0 - 1, 1), ROW - 3);
    }
    if (this.drag && this.drag.moved) {
      const x0 = Math.min(this.drag.x0, this.drag.x1), x1 = Math.max(this.drag.x0, this.drag.x1);
      g.fillStyle = 'rgba(147,110,181,0.3)'; // the heatmap's selection colour
      g.fillRect(x0, 0, x1 - x0, this.height);
    }
  }

  // at is the run under the mouse, or null.
  at(ev) {
    const b = this.canvas.getBoundingClientRect();
    const x = ev.clientX - b.left, y = ev.clientY - b.top;
    const d = Math.floor(y / ROW) - 1;
    const row = this.rows && this.rows[d];
    if (!row) return null;
    for (const r of row) if (x >= r[0] - 0.5 && x < r[1] + 0.5) return r[2];
    return null;
  }

  _move(ev) {
    if (this.drag) return;
    const r = this.at(ev);
    if (r !== this.hover) { this.hover = r; this.drawOverlay(); }
    if (this.opts.onHover) this.opts.onHover(r, ev);
  }
}

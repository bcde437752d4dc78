// scorch: the compare page picks the range of each side by brushing its
// capture's heatmap. A brush fills the side's from and to, and the
// differential graph and the workspace link follow without a reload (the
// URL is the form's query, so a permalink reopens the comparison).
import { mountHeatmap } from './heatmap.js';
import { secs } from './ranges.js';

const form = document.querySelector('#compare');
const field = (name) => form.elements[name];
const sides = { base: null, compare: null }; // capture id each heatmap shows

function query() {
  const v = new URLSearchParams();
  for (const k of ['base', 'compare', 'base_from', 'base_to', 'compare_from', 'compare_to']) {
    const x = String(field(k).value || '').trim();
    if (x) v.set(k, x);
  }
  return v;
}

// show updates the URL, the diff and the workspace link to the form.
function show() {
  const v = query();
  history.replaceState(null, '', '/compare?' + v);
  if (!v.get('base') || !v.get('compare')) return;
  const card = form.closest('.card');
  let frame = document.querySelector('#diffgraph');
  if (!frame) {
    frame = document.createElement('iframe');
    frame.id = 'diffgraph';
    frame.title = 'differential flame graph';
    card.append(frame);
  }
  frame.src = '/api/diff.svg?' + v;
  const ws = new URLSearchParams({ base: v.get('base') });
  for (const [from, to] of [['base_from', 'base_from'], ['base_to', 'base_to'], ['compare_from', 'from'], ['compare_to', 'to']]) if (v.get(from)) ws.set(to, v.get(from));
  const link = document.querySelector('#open-workspace');
  if (link) link.href = '/captures/' + encodeURIComponent(v.get('compare')) + '?' + ws;
}

// mount draws side's heatmap for the capture chosen in its select.
function mount(side) {
  const id = field(side).value;
  const root = document.querySelector('#cmp-' + side + ' .heatmap');
  if (!id || sides[side] === id) return;
  sides[side] = id;
  const type = (field(side).selectedOptions[0] && field(side).selectedOptions[0].dataset.type) || '';
  const initial = new URLSearchParams();
  if (field(side + '_from').value) initial.set('from', field(side + '_from').value);
  if (field(side + '_to').value) initial.set('to', field(side + '_to').value);
  mountHeatmap(root, id, {
    initial: initial, single: true, type: type,
    filters: () => new URLSearchParams(),
    onNoTimestamps: (msg) => {
      const p = document.querySelector('#cmp-' + side + ' .note');
      p.textContent = 'This capture has no timestamps, so its range cannot be picked: the whole capture is compared (' + msg + ').';
    },
    onChange: (st) => {
      const r = st.ranges[0];
      field(side + '_from').value = r ? secs(+r[0].toFixed(9)) : '';
      field(side + '_to').value = r && r[1] !== null ? secs(+r[1].toFixed(9)) : '';
      show();
    },
  });
}

if (form && document.querySelector('#cmp-heatmaps')) {
  document.querySelector('#cmp-heatmaps').hidden = false;
  for (const side of ['base', 'compare']) {
    mount(side);
    field(side).addEventListener('change', () => {
      field(side + '_from').value = '';
      field(side + '_to').value = '';
      mount(side);
      show();
    });
  }
}

// scorch UI: progressive enhancement of the server-rendered pages. No
// inline script anywhere: the page CSP allows only this file.
'use strict';

function $(sel) { return document.querySelector(sel); }

async function apiError(resp) {
  try {
    const body = await resp.json();
    if (body && body.error) return body.error;
  } catch (e) { /* not JSON */ }
  return resp.status + ' ' + resp.statusText;
}

// Home: start a capture with a JSON POST and go to its page.
function initHome() {
  const form = $('#new-capture');
  if (!form) return;
  const err = $('#form-error');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const f = new FormData(form);
    const body = { type: f.get('type'), duration: f.get('duration') || '10s' };
    const hz = f.get('hz');
    if (hz) body.hz = Number(hz);
    const target = f.get('target');
    if (target === 'pid') {
      const pids = String(f.get('pid') || '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      if (pids.length === 0 || pids.some((p) => !Number.isInteger(p) || p <= 0)) {
        err.textContent = 'pid: give one or more positive process ids, separated by commas';
        return;
      }
      body.pid = pids;
    } else if (target === 'comm') {
      body.comm = String(f.get('comm') || '').trim();
      if (!body.comm) { err.textContent = 'process name: give the name of a running process'; return; }
    }
    for (const k of ['event', 'unwind', 'state', 'min_block', 'view']) {
      const v = String(f.get(k) || '').trim();
      if (v) body[k] = v;
    }
    const resp = await fetch('/api/captures', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    if (resp.status !== 202) { err.textContent = await apiError(resp); return; }
    const rec = await resp.json();
    window.location.assign('/captures/' + encodeURIComponent(rec.id));
  });
  refreshRunning();
  for (const b of document.querySelectorAll('button.delete')) {
    b.addEventListener('click', async () => {
      if (!window.confirm('Delete capture ' + b.dataset.id + '?')) return;
      const resp = await fetch('/api/captures/' + encodeURIComponent(b.dataset.id), { method: 'DELETE' });
      if (resp.status === 204) b.closest('tr').remove();
      else window.alert(await apiError(resp));
    });
  }
}

// refreshRunning updates the list rows of running captures until they end,
// without reloading the page (which would lose the form's input).
function refreshRunning() {
  const rows = [...document.querySelectorAll('#captures tr[data-id]')].filter((tr) => tr.querySelector('.status.running'));
  if (rows.length === 0) return;
  setTimeout(async () => {
    for (const tr of rows) {
      const resp = await fetch('/api/captures/' + encodeURIComponent(tr.dataset.id));
      if (!resp.ok) continue;
      const rec = await resp.json();
      const cells = tr.querySelectorAll('td');
      cells[5].textContent = rec.samples;
      cells[6].textContent = rec.lost;
      if (rec.status !== 'running') {
        cells[4].textContent = (rec.duration_seconds || 0).toFixed(1) + 's';
        const st = cells[7].querySelector('.status');
        st.className = 'status ' + rec.status;
        st.textContent = rec.status;
      }
    }
    refreshRunning();
  }, 1000);
}

// Capture page: live progress while running, then reload to show the graph.
function initCapture() {
  const box = $('#capture');
  if (!box) return;
  const id = box.dataset.id;
  const planned = Number(box.dataset.seconds) || 0;
  if (box.dataset.status === 'running') {
    const show = (rec) => {
      const elapsed = rec.elapsed_seconds || 0;
      if (planned > 0) {
        $('#progress').value = Math.min(1, elapsed / planned);
        $('#time-left').textContent = Math.max(0, Math.ceil(planned - elapsed)) + ' s left';
      }
      $('#samples').textContent = rec.samples;
      $('#lost').textContent = rec.lost;
      $('#status').textContent = rec.status;
    };
    const finished = () => window.location.reload();
    let polling = false;
    const poll = async () => {
      polling = true;
      for (;;) {
        const resp = await fetch('/api/captures/' + encodeURIComponent(id));
        if (resp.ok) {
          const rec = await resp.json();
          if (rec.status !== 'running') { finished(); return; }
          show(rec);
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    if (window.EventSource) {
      const es = new EventSource('/api/captures/' + encodeURIComponent(id) + '/events');
      es.addEventListener('progress', (ev) => show(JSON.parse(ev.data)));
      es.addEventListener('done', () => { es.close(); finished(); });
      es.onerror = () => { es.close(); if (!polling) poll(); };
    } else {
      poll();
    }
    const stop = $('#stop');
    if (stop) {
      stop.addEventListener('click', async () => {
        stop.disabled = true;
        await fetch('/api/captures/' + encodeURIComponent(id) + '/stop', { method: 'POST' });
      });
    }
  }
  for (const f of document.querySelectorAll('iframe#flamegraph, iframe#diffgraph')) fitFrame(f);
}

// fitFrame sizes a graph's frame to the SVG inside it (same origin).
function fitFrame(frame) {
  frame.addEventListener('load', () => {
    try {
      const svg = frame.contentDocument && frame.contentDocument.documentElement;
      if (!svg) return;
      const h = svg.getAttribute('height') || (svg.getBoundingClientRect && svg.getBoundingClientRect().height);
      const n = parseFloat(h);
      if (n > 0) frame.style.height = Math.min(Math.max(n + 8, 200), 4000) + 'px';
    } catch (e) { /* cross-origin or not an SVG: keep the default size */ }
  });
}

// Import: send the file as the raw body, then open the new capture.
function initImport() {
  const form = $('#import');
  if (!form) return;
  const err = $('#import-error');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const file = $('#file').files[0];
    if (!file) { err.textContent = 'choose a file first'; return; }
    const resp = await fetch('/api/imports', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: file });
    if (resp.status !== 201) { err.textContent = await apiError(resp); return; }
    const rec = await resp.json();
    window.location.assign('/captures/' + encodeURIComponent(rec.id));
  });
}

function initCompare() {
  for (const f of document.querySelectorAll('iframe#diffgraph')) fitFrame(f);
}

document.addEventListener('DOMContentLoaded', () => {
  switch (document.body.dataset.page) {
    case 'home': initHome(); break;
    case 'capture': initCapture(); break;
    case 'import': initImport(); break;
    case 'compare': initCompare(); break;
  }
});

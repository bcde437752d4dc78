// Benchmark of the capture page's workspace against the SVG route, driven
// by scripts/bench-workspace.sh: `node bench-workspace.mjs BASE ID` opens
// both in headless Chromium at 1920x1080 and prints JSON: time to the
// first painted flame graph, hover, zoom, search and transform redraws
// (medians, ms), and the JS heap; for the SVG route its load, hover,
// zoom and search, and as its transform the server's rendering of the same
// merges.
import { chromium } from 'playwright-core';

const [base, id] = process.argv.slice(2);
const rounds = +(process.env.ROUNDS || 5);
const out = { workspace: {}, svg: {}, errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.SCORCH_CHROMIUM || process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? +s[Math.floor(s.length / 2)].toFixed(1) : null; };

async function heap(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('Performance.enable');
  const m = await cdp.send('Performance.getMetrics');
  const get = (k) => (m.metrics.find((x) => x.name === k) || {}).value || 0;
  return +(get('JSHeapUsedSize') / (1 << 20)).toFixed(1);
}

// ready waits until the workspace has drawn a new state (after seq).
const waitReady = (page, seq) => page.waitForFunction((s) => +document.body.dataset.ready > s, seq, { timeout: 600000 });
const seqOf = (page) => page.evaluate(() => +document.body.dataset.ready || 0);

try {
  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => out.errors.push('workspace: ' + e));
  page.setDefaultTimeout(600000);
  // First paint: navigation to the first flame graph on the canvas.
  const firsts = [];
  for (let i = 0; i < Math.max(1, rounds - 2); i++) {
    await page.goto(base + '/captures/' + id + (i ? '?_=' + i : ''));
    await page.waitForFunction(() => document.body.dataset.firstPaint);
    firsts.push(+(await page.evaluate(() => document.body.dataset.firstPaint)));
  }
  out.workspace.first_paint_ms = median(firsts);
  out.workspace.first_paint_first_ms = firsts[0];
  await page.waitForFunction(() => document.body.dataset.settled);
  out.workspace.frames_drawn = await page.$eval('#flamegraph', (c) => c.scorchFrames().length);

  // Hover: a mouse move over a frame until the next frame is painted.
  const hovers = await page.evaluate(async (n) => {
    const c = document.querySelector('#flamegraph');
    const fs = c.scorchFrames().filter((f) => f.w > 4).slice(0, 200);
    const r = c.getBoundingClientRect();
    const ts = [];
    for (let i = 0; i < n; i++) {
      const f = fs[(i * 37) % fs.length];
      const t0 = performance.now();
      c.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + f.x + f.w / 2, clientY: r.top + f.y + 5, bubbles: true }));
      await new Promise((res) => requestAnimationFrame(() => setTimeout(res, 0)));
      ts.push(performance.now() - t0);
    }
    return ts;
  }, rounds * 4);
  out.workspace.hover_ms = median(hovers);

  // Zoom: a click on a wide frame until the zoomed graph is drawn.
  const click = async (kind) => {
    const ts = [];
    for (let i = 0; i < rounds; i++) {
      const seq = await seqOf(page);
      const t = await page.evaluate(async ({ i, kind }) => {
        const c = document.querySelector('#flamegraph');
        const fs = c.scorchFrames().filter((f) => f.depth >= 2 && f.depth <= 6 && f.w > 30);
        const f = fs[(i * 7) % fs.length];
        const r = c.getBoundingClientRect();
        window.__t0 = performance.now();
        c.dispatchEvent(new MouseEvent(kind, { clientX: r.left + f.x + f.w / 2, clientY: r.top + f.y + 5, bubbles: true, button: kind === 'contextmenu' ? 2 : 0 }));
        return 0;
      }, { i, kind });
      if (kind === 'contextmenu') {
        // The transform's time runs from the user's choice in the menu
        // (the click on Merge), not from opening the menu.
        await page.evaluate(() => document.addEventListener('click', (e) => {
          if (e.target.closest && e.target.closest('#menu')) window.__t0 = performance.now();
        }, { capture: true, once: true }));
        await page.click('#menu button:has-text("Merge")');
        const ts = new URLSearchParams(await page.evaluate(() => location.search)).getAll('t');
        (out.workspace.transformed ||= []).push(ts.map((t) => 't=' + encodeURIComponent(t)).join('&'));
      }
      await waitReady(page, seq);
      ts.push(t + await page.evaluate(() => performance.now() - window.__t0));
      // Where the time went: the page's marks of its redraw (the data in,
      // laid out, drawn, the table built), from the same start.
      const marks = await page.evaluate(() => ['ws:data', 'ws:layout', 'ws:drawn', 'ws:table'].map((n) => {
        const m = performance.getEntriesByName(n).pop();
        return m ? m.startTime - window.__t0 : null;
      }));
      (steps[kind] ||= []).push(marks);
      // And the page's requests of the new state (resource timing): when
      // each was sent, its first byte and its last came in.
      const reqs = await page.evaluate(() => {
        const t0 = window.__t0;
        const out = {};
        for (const r of performance.getEntriesByType('resource')) {
          if (r.startTime < t0) continue;
          const m = /\/(tree|functions|summary|heatmap|threads|sandwich)\.json/.exec(r.name);
          if (!m || out[m[1]]) continue;
          out[m[1]] = [r.startTime - t0, r.responseStart - t0, r.responseEnd - t0];
        }
        return out;
      });
      (requests[kind] ||= []).push(reqs);
      if (kind === 'click') {
        const s2 = await seqOf(page);
        await page.goBack();
        await page.waitForFunction(() => !location.search.includes('zoom='));
        await waitReady(page, s2);
      }
    }
    return ts;
  };
  const steps = {}, requests = {};
  out.workspace.zoom_ms = median(await click('click'));
  await page.goto(base + '/captures/' + id);
  await page.waitForFunction(() => document.body.dataset.settled);

  // Search: a regex submitted until the matches are drawn and counted.
  const searches = [];
  for (let i = 0; i < rounds; i++) {
    const seq = await seqOf(page);
    await page.evaluate((re) => {
      document.querySelector('#search-input').value = re;
      window.__t0 = performance.now();
      document.querySelector('#search').requestSubmit();
    }, '^fn_' + (10 + i) + '_1$');
    await waitReady(page, seq);
    searches.push(await page.evaluate(() => performance.now() - window.__t0));
  }
  out.workspace.search_ms = median(searches);
  out.workspace.search_info = await page.textContent('#search-info');

  // Transform: merge a frame from the context menu until the new tree
  // (computed by the server) is drawn.
  await page.goto(base + '/captures/' + id);
  await page.waitForFunction(() => document.body.dataset.settled);
  out.workspace.transform_ms = median(await click('contextmenu'));
  out.workspace.transform_steps = [0, 1, 2, 3].map((k) => median(steps.contextmenu.map((m) => m[k]).filter((x) => x !== null)));
  out.workspace.transform_requests = {};
  for (const name of ['tree', 'functions', 'summary', 'heatmap', 'threads']) {
    const rs = requests.contextmenu.map((r) => r[name]).filter((x) => x);
    if (rs.length) out.workspace.transform_requests[name] = [0, 1, 2].map((k) => median(rs.map((r) => r[k])));
  }
  out.workspace.transform_rounds = steps.contextmenu.map((m, i) => ({ marks: m, requests: requests.contextmenu[i] }));
  out.workspace.heap_mb = await heap(page);

  // The SVG route, as the old page showed it.
  const sp = await ctx.newPage();
  sp.setDefaultTimeout(600000);
  const loads = [];
  // The first load renders on the server, the others come from its cache,
  // as the workspace's first and later navigations do.
  for (let i = 0; i < Math.max(1, rounds - 2); i++) {
    const t0 = Date.now();
    await sp.goto(base + '/api/captures/' + id + '/flamegraph.svg?width=1920', { waitUntil: 'load' });
    loads.push(await sp.evaluate(() => { const n = performance.getEntriesByType('navigation')[0]; return n ? n.loadEventEnd : 0; }) || (Date.now() - t0));
  }
  out.svg.first_paint_ms = median(loads);
  out.svg.first_paint_first_ms = loads[0];
  out.svg.frames_drawn = await sp.$$eval('g.f', (gs) => gs.length);
  const sh = await sp.evaluate(async (n) => {
    const gs = [...document.querySelectorAll('g.f')].slice(0, 200);
    const hv = [], zm = [];
    for (let i = 0; i < n; i++) {
      const g = gs[(i * 37) % gs.length];
      let t0 = performance.now();
      g.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
      await new Promise((res) => requestAnimationFrame(() => setTimeout(res, 0)));
      hv.push(performance.now() - t0);
      if (i < 5) {
        t0 = performance.now();
        g.dispatchEvent(new MouseEvent('click', { bubbles: true }));
        await new Promise((res) => requestAnimationFrame(() => setTimeout(res, 0)));
        zm.push(performance.now() - t0);
      }
    }
    return { hv, zm };
  }, rounds * 4);
  out.svg.hover_ms = median(sh.hv);
  out.svg.zoom_ms = median(sh.zm);
  // Search: the SVG's own search (it asks with prompt()), until the
  // matches are drawn.
  const ss = await sp.evaluate(async (n) => {
    const btn = document.getElementById('search');
    const ts = [];
    for (let i = 0; i < n; i++) {
      if (btn.classList.contains('on')) btn.dispatchEvent(new MouseEvent('click', { bubbles: true })); // reset
      window.prompt = () => '^fn_' + (10 + i) + '_1$';
      const t0 = performance.now();
      btn.dispatchEvent(new MouseEvent('click', { bubbles: true }));
      await new Promise((res) => requestAnimationFrame(() => setTimeout(res, 0)));
      ts.push(performance.now() - t0);
    }
    return ts;
  }, rounds);
  out.svg.search_ms = median(ss);
  out.svg.heap_mb = await heap(sp);
  // Transform: the SVG route has no transform of its own; the nearest is
  // asking the server for the graph with the same merge (t=merge:NAME),
  // each a new rendering, until it is loaded.
  const tr = [];
  for (const tq of out.workspace.transformed || []) {
    const t0 = Date.now();
    await sp.goto(base + '/api/captures/' + id + '/flamegraph.svg?width=1920&' + tq, { waitUntil: 'load' });
    tr.push(Date.now() - t0);
  }
  out.svg.transform_ms = median(tr);
} catch (e) {
  out.errors.push(String(e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

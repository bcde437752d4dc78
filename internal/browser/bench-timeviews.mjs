// Benchmark of the capture page's time views, driven by
// scripts/bench-timeviews.sh: `node bench-timeviews.mjs BASE ID` opens the
// synthetic 60 s capture in headless Chromium at 1920x1080 and prints JSON
// (medians, ms): a brush across the tracks until every view is redrawn
// (graph, table, sandwich, tracks, heatmap), the stack chart of the busiest
// thread over 10 s from a key press until it is painted, and, as the
// baseline of the same run, the page fetching heatmap.json (uncached).
import { chromium } from 'playwright-core';

const [base, id] = process.argv.slice(2);
const rounds = +(process.env.ROUNDS || 5);
const out = { errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.SCORCH_CHROMIUM || process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? +s[Math.floor(s.length / 2)].toFixed(1) : null; };
const settled = (page) => page.waitForFunction(() => document.body.dataset.settled && document.body.dataset.settled === document.body.dataset.ready &&
  document.querySelector('#timeline').dataset.drawn, null, { timeout: 600000 });

try {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  page.on('pageerror', (e) => out.errors.push('page: ' + e));
  page.setDefaultTimeout(600000);
  // A function selected, so that the sandwich is one of the views redrawn.
  await page.goto(base + '/captures/' + id);
  await settled(page);
  const fn = await page.$eval('#functions tbody tr', (r) => r.dataset.fn);
  await page.goto(base + '/captures/' + id + '?fn=' + encodeURIComponent(fn));
  await settled(page);
  out.tracks = await page.$$eval('#tl-list .tl-row:not(.tl-axis)', (rs) => rs.length);

  // The page's clock: from the mouse button's release (or the key) to the
  // state on screen, measured in the page.
  await page.evaluate(() => {
    window.benchT0 = 0;
    for (const type of ['mouseup', 'keydown']) window.addEventListener(type, () => { window.benchT0 = performance.now(); }, true);
  });
  const canvas = await page.$('#tl-list .tl-row[data-key="all"] canvas');
  const b = await canvas.boundingBox();
  const end = +(await page.$eval('#timeline', (r) => r.dataset.end));
  const x = (t) => b.x + (t / end) * b.width;
  const brushes = [];
  for (let i = 0; i < rounds; i++) {
    const a = 3 + i * 9, z = a + 4 + i; // a new range each time: nothing cached
    const seq = await page.evaluate(() => +document.body.dataset.ready || 0);
    await page.mouse.move(x(a), b.y + b.height / 2);
    await page.mouse.down();
    await page.mouse.move(x((a + z) / 2), b.y + b.height / 2, { steps: 3 });
    await page.mouse.move(x(z), b.y + b.height / 2, { steps: 3 });
    await page.mouse.up();
    await page.waitForFunction((s) => +document.body.dataset.settled > s && document.body.dataset.settled === document.body.dataset.ready, seq);
    brushes.push(await page.evaluate(() => performance.now() - window.benchT0));
  }
  out.brush_ms = median(brushes);
  out.brush_first_ms = +brushes[0].toFixed(1);
  out.brush_url = page.url();

  // The stack chart of the busiest thread over 10 s; ] steps to the next
  // 10 s, each a new stackchart.json.
  const tid = await page.$eval('#tl-list .tl-row[data-tid]:not(.tl-process)', (r) => r.dataset.tid);
  await page.goto(base + '/captures/' + id + '?chart=stack&tid=' + tid + '&from=0&to=10');
  await settled(page);
  await page.waitForFunction(() => +document.body.dataset.chartPainted > 0);
  await page.evaluate(() => {
    window.benchT0 = 0;
    window.addEventListener('keydown', () => { window.benchT0 = performance.now(); }, true);
    // Painted: the counter moves when the runs are drawn.
    window.benchPainted = [];
    new MutationObserver(() => window.benchPainted.push(performance.now() - window.benchT0))
      .observe(document.body, { attributes: true, attributeFilter: ['data-chart-painted'] });
  });
  const charts = [], draws = [];
  for (let i = 0; i < Math.min(rounds, 5); i++) {
    const n = await page.evaluate(() => window.benchPainted.length);
    await page.keyboard.press(']');
    await page.waitForFunction((k) => window.benchPainted.length > k, n);
    charts.push(await page.evaluate(() => window.benchPainted[window.benchPainted.length - 1]));
    draws.push(await page.evaluate(() => +document.body.dataset.chartPaint));
  }
  out.stackchart_ms = median(charts);
  out.stackchart_first_ms = +charts[0].toFixed(1);
  out.stackchart_draw_ms = median(draws);
  out.stackchart_runs = await page.$eval('#stackchart', (c) => c.scorchRuns().length);
  out.stackchart_url = page.url();

  // Baseline: the page fetching and parsing heatmap.json, uncached (each
  // row count is a new answer).
  const heat = [];
  for (const rows of [10, 25, 49, 99, 100].slice(0, rounds)) {
    heat.push(await page.evaluate(async (q) => {
      const t0 = performance.now();
      const r = await fetch(q);
      await r.json();
      return performance.now() - t0;
    }, '/api/captures/' + id + '/heatmap.json?rows=' + rows));
  }
  out.heatmap_fetch_ms = median(heat);
} catch (e) {
  out.errors.push('bench: ' + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

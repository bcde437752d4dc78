// Browser test of where the capture page puts its flame graph, driven by
// web/workspace_browser_test.go (TestWorkspaceRootInView):
// `node workspace-fit.mjs BASE ARTIFACT_DIR NAME=PATH...` opens each page
// at 1280x900 and 1920x1080, waits until everything above the graph has
// been drawn (health, heatmap, tracks), and reports where the graph's root
// bar is against the part of the graph's box that is on screen, as JSON.
// Screenshots go to ARTIFACT_DIR.
import { chromium } from 'playwright-core';
import path from 'node:path';

const [base, artifacts, ...pages] = process.argv.slice(2);
const result = { errors: [], screenshots: [], pages: [] };
const browser = await chromium.launch({
  executablePath: process.env.SCORCH_CHROMIUM || process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});

// still waits until the graph's canvas stays where it is for 10 frames in
// a row: the page has stopped moving it.
const still = (page) => page.evaluate(() => new Promise((done) => {
  let last = '', same = 0;
  const tick = () => {
    const c = document.querySelector('canvas[data-view="flamegraph"]');
    const r = c.getBoundingClientRect();
    const now = [r.top, r.height, scrollY, document.querySelector('#graph-box').scrollTop].join(',');
    same = now === last ? same + 1 : 0;
    last = now;
    if (same >= 10) done(); else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}));

try {
  for (const [w, h] of [[1280, 900], [1920, 1080]]) {
    for (const spec of pages) {
      const [name, url] = spec.split(/=(.*)/s);
      const page = await browser.newPage({ viewport: { width: w, height: h } });
      page.setDefaultTimeout(30000);
      page.on('pageerror', (e) => result.errors.push(name + ': page error: ' + e));
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') result.errors.push(name + ': console: ' + m.text()); });
      await page.goto(base + url);
      await page.waitForFunction(() => document.body.dataset.settled && document.body.dataset.settled === document.body.dataset.ready);
      // Captures with timestamps: the heatmap and the tracks are drawn.
      await page.waitForFunction(() => document.querySelector('#health-facts') &&
        (document.querySelector('#no-time:not([hidden])') || (document.querySelector('#hm-svg') && document.querySelector('#timeline').dataset.drawn)));
      await still(page);
      const geo = await page.evaluate(() => {
        const c = document.querySelector('canvas[data-view="flamegraph"]');
        const root = c.scorchFrames().find((f) => f.depth === 0);
        const r = c.getBoundingClientRect();
        const gb = document.querySelector('#graph-box');
        const b = gb.getBoundingClientRect();
        // What of the box's inside is on screen.
        const vis = {
          top: Math.max(0, b.top + gb.clientTop), bottom: Math.min(innerHeight, b.top + gb.clientTop + gb.clientHeight),
          left: Math.max(0, b.left + gb.clientLeft), right: Math.min(innerWidth, b.left + gb.clientLeft + gb.clientWidth),
        };
        const bar = { top: r.top + root.y, bottom: r.top + root.y + root.h, left: r.left + root.x, right: r.left + root.x + root.w };
        // Nothing covers the bar's corners.
        const corners = [[bar.left + 2, bar.top + 2], [bar.right - 2, bar.top + 2], [bar.left + 2, bar.bottom - 2], [bar.right - 2, bar.bottom - 2]];
        const uncovered = corners.every(([x, y]) => document.elementFromPoint(x, y) === c);
        const round = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 10) / 10]));
        return {
          root: root.name, bar: round(bar), visible: round(vis), uncovered: uncovered, depth: Math.max(...c.scorchFrames().map((f) => f.depth)),
          inside: bar.top >= vis.top - 0.5 && bar.bottom <= vis.bottom + 0.5 && bar.left >= vis.left - 0.5 && bar.right <= vis.right + 0.5,
          scrollY: scrollY,
        };
      });
      // The function table builds the rows on screen, and more as it is
      // scrolled down to them.
      const rows = { before: await page.$$eval('#functions tbody tr', (rs) => rs.length) };
      for (let k = 0; k < 8; k++) {
        await page.$eval('.table-box', (b) => { b.scrollTop = b.scrollHeight; });
        await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res))));
      }
      rows.after = await page.$$eval('#functions tbody tr', (rs) => rs.length);
      rows.info = await page.textContent('#table-info');
      geo.rows = rows;
      await page.$eval('.table-box', (b) => { b.scrollTop = 0; });
      const file = path.join(artifacts, name + '-' + w + 'x' + h + '.png');
      await page.screenshot({ path: file });
      result.screenshots.push(file);
      if (name === 'small' && w === 1280) {
        // A merge from the graph's menu keeps every sample: the heatmap
        // and the tracks stay as drawn (not drawn again), the graph changes.
        await page.evaluate(() => { window.__svg = document.querySelector('#hm-svg'); window.__drawn = document.querySelector('#timeline').dataset.drawn; });
        const c = await page.$('canvas[data-view="flamegraph"]');
        const box = await c.boundingBox();
        const f = (await c.evaluate((c) => c.scorchFrames())).find((x) => x.name === 'compute');
        await page.mouse.click(box.x + f.x + f.w / 2, box.y + f.y + f.h / 2, { button: 'right' });
        await page.click('#menu button:has-text("Merge compute")');
        await page.waitForFunction(() => location.search.includes('t=merge'));
        await page.waitForFunction(() => document.body.dataset.settled && document.body.dataset.settled === document.body.dataset.ready);
        // The heatmap's and the tracks' answers of the new state are in.
        await page.waitForFunction(() => performance.getEntriesByType('resource').filter((r) => /(heatmap|threads)\.json\?.*t=merge/.test(r.name) && r.responseEnd > 0).length >= 3);
        await still(page);
        result.merge = await page.evaluate(() => ({
          heatmapKept: document.querySelector('#hm-svg') === window.__svg,
          tracksKept: document.querySelector('#timeline').dataset.drawn === window.__drawn,
          graph: [...new Set(document.querySelector('canvas[data-view="flamegraph"]').scorchFrames().map((f) => f.name))].sort(),
        }));
      }
      result.pages.push({ name: name, viewport: w + 'x' + h, ...geo });
      await page.close();
    }
  }
} catch (e) {
  result.errors.push('test: ' + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));

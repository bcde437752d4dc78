// Browser test of the capture page's heatmap, driven by
// web/heatmap_browser_test.go: `node heatmap.mjs CAPTURE_PAGE_URL
// NO_TIMESTAMPS_CAPTURE_PAGE_URL` prints what it saw as JSON. It clicks a start and an end cell, checks the live
// highlight, Esc, the hover details and that the workspace's flame graph
// follows (its canvas and its SVG download link).
import { chromium } from 'playwright-core';

const [url, noTimestampsURL] = process.argv.slice(2);
const result = { errors: [] };
const browser = await chromium.launch({
  executablePath: process.env.SCORCH_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.setDefaultTimeout(60000);
  page.on('pageerror', (e) => result.errors.push('page error: ' + e));
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push('console: ' + m.text()); });
  await page.goto(url);
  const svg = await page.waitForSelector('#hm-svg');
  const box = await svg.boundingBox();
  const g = await svg.evaluate((s) => ({ left: +s.dataset.left, top: +s.dataset.top, cw: +s.dataset.cw, ch: +s.dataset.ch, rows: +s.dataset.rows }));
  const at = (c, r) => ({ x: box.x + g.left + c * g.cw + g.cw / 2, y: box.y + g.top + (g.rows - 1 - r) * g.ch + g.ch / 2 });
  const highlights = () => page.$$eval('#hm-svg .hm-sel rect', (rs) => rs.length);
  // What the workspace shows is in its SVG download link: the range, the
  // diff and the search.
  const src = () => page.$eval('#dl-svg', (a) => a.getAttribute('href'));
  const graphNames = (pg) => pg.$eval('canvas[data-view="flamegraph"]', (c) => c.scorchFrames().map((f) => f.name).join(' '));

  // Hover shows the cell's time range and value.
  let p = at(3, 0);
  await page.mouse.move(p.x, p.y);
  result.hover = await page.textContent('#hm-detail');

  // Esc cancels a selection in progress.
  p = at(1, 0);
  await page.mouse.click(p.x, p.y);
  result.highlightStarted = await highlights();
  await page.keyboard.press('Escape');
  result.highlightAfterEsc = await highlights();

  // A search (the page's own form) is kept when the range changes.
  await page.fill('#search-input', 'hot');
  await page.press('#search-input', 'Enter');
  await page.waitForFunction(() => document.querySelector('#dl-svg').getAttribute('href').includes('s=hot'));

  // Click the start cell, move (live highlight), click the end cell.
  const before = await src();
  p = at(2, 0);
  await page.mouse.click(p.x, p.y);
  p = at(3, 4);
  await page.mouse.move(p.x, p.y, { steps: 4 });
  result.highlightLive = await highlights();
  p = at(2, 9);
  await page.mouse.click(p.x, p.y);
  await page.waitForFunction((b) => document.querySelector('#dl-svg').getAttribute('href') !== b, before);
  await page.waitForFunction(() => document.body.dataset.settled);
  result.src = await src();
  result.title = await page.textContent('#range-info');
  result.pageURL = page.url();
  result.graph = await graphNames(page);

  // Dragging from one cell to another selects too.
  p = at(3, 0);
  await page.mouse.move(p.x, p.y);
  await page.mouse.down();
  p = at(3, 9);
  await page.mouse.move(p.x, p.y, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelector('#dl-svg').getAttribute('href').includes('from=3&'));
  result.dragSrc = await src();
  // Back to the first range for the comparison.
  p = at(2, 0);
  await page.mouse.click(p.x, p.y);
  p = at(2, 9);
  await page.mouse.click(p.x, p.y);

  // Compare: a second range gives the differential graph; flip swaps.
  await page.check('#hm-compare');
  p = at(0, 25);
  await page.mouse.click(p.x, p.y);
  p = at(0, 44);
  await page.mouse.click(p.x, p.y);
  await page.waitForFunction(() => document.querySelector('#dl-svg').getAttribute('href').includes('/api/diff.svg'));
  result.diffSrc = await src();
  result.comparePageURL = page.url();
  const unflipped = await src();
  await page.click('#hm-flip');
  await page.waitForFunction((b) => document.querySelector('#dl-svg').getAttribute('href') !== b, unflipped);
  result.flippedSrc = await src();

  // The permalink of the single range restores it.
  const page2 = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page2.on('pageerror', (e) => result.errors.push('permalink page error: ' + e));
  await page2.goto(result.pageURL);
  await page2.waitForSelector('#hm-svg');
  await page2.waitForFunction(() => document.body.dataset.settled);
  result.permalinkHighlight = await page2.$$eval('#hm-svg .hm-sel rect', (rs) => rs.length);
  result.permalinkSrc = await page2.$eval('#dl-svg', (a) => a.getAttribute('href'));

  // A capture without timestamps: no heatmap, the flame graph stays.
  await page2.goto(noTimestampsURL);
  await page2.waitForFunction(() => document.body.dataset.settled && document.getElementById('heatmap').hidden);
  result.noTimestampsGraphVisible = await page2.$eval('canvas[data-view="flamegraph"]', (c) => c.getBoundingClientRect().height > 20 && !c.closest('[hidden]') && c.scorchFrames().some((f) => f.name === 'app'));
} catch (e) {
  result.errors.push('test: ' + e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));

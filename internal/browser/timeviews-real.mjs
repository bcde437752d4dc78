// Browser test of the time views on a real capture, driven by
// web/timeviews_real_test.go: `node timeviews-real.mjs BASE ID PID
// ARTIFACT_DIR`. The capture recorded a program whose hot function
// changes half-way (phase_alpha, then phase_beta); the script selects
// each in the function table, as a user would, and reads where the tracks
// and the heatmap paint it; then opens the program's stack chart. Prints
// JSON.
import { chromium } from 'playwright-core';
import path from 'node:path';

const [base, id, pid, artifacts] = process.argv.slice(2);
const result = { errors: [], screenshots: [] };
const browser = await chromium.launch({
  executablePath: process.env.SCORCH_CHROMIUM || process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
async function shot(page, name, full) {
  const file = path.join(artifacts, name + '.png');
  await page.screenshot({ path: file, fullPage: !!full });
  result.screenshots.push(file);
}
async function settled(page) {
  await page.waitForFunction(() => document.body.dataset.settled && document.body.dataset.settled === document.body.dataset.ready &&
    (document.querySelector('#timeline').hidden || document.querySelector('#timeline').dataset.drawn));
  await page.waitForTimeout(80);
}
const track = (page, key) => page.$eval(`#tl-list .tl-row[data-key="${key}"]`, (r) => ({
  name: r.querySelector('.tl-name').textContent, sub: r.querySelector('.tl-sub').textContent,
  spans: +(r.dataset.spans || 0), from: +r.dataset.focusFrom, to: +r.dataset.focusTo, halves: r.dataset.focusHalves.split(',').map(Number),
}));
async function focus(page, fn) {
  await page.click(`#functions tr[data-fn="${fn}"] td.fn`);
  await page.waitForFunction((f) => new URLSearchParams(location.search).get('fn') === f, fn);
  await page.waitForFunction((f) => document.querySelector('#heatmap').dataset.focus === f && document.querySelector('#timeline').dataset.focus === f, fn);
  await settled(page);
  return {
    track: await track(page, 'p' + pid),
    total: await track(page, 'all'),
    cells: await page.$$eval('#hm-svg .hm-focus rect', (rs) => rs.map((r) => +r.dataset.c)),
  };
}

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(60000);
  page.on('pageerror', (e) => result.errors.push('page error: ' + e));
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push('console: ' + m.text()); });
  await page.goto(base + '/captures/' + id);
  await page.waitForSelector('#hm-svg');
  await settled(page);
  result.end = +(await page.$eval('#timeline', (r) => r.dataset.end));
  result.bucket = +(await page.$eval('#timeline', (r) => r.dataset.bucket));
  result.process = await track(page, 'p' + pid);
  result.alpha = await focus(page, 'phase_alpha');
  await shot(page, 'real-alpha-1280x900');
  result.beta = await focus(page, 'phase_beta');
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.waitForTimeout(300);
  await shot(page, 'real-beta-1920x1080');
  // The stack chart of the program's thread: both phases, in order.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(base + '/captures/' + id + '?chart=stack&tid=' + pid);
  await settled(page);
  await page.waitForFunction(() => document.querySelector('#stackchart').scorchRuns().length > 0);
  const runs = await page.$eval('#stackchart', (c) => c.scorchRuns());
  const first = (name) => Math.min(...runs.filter((r) => r.name === name).map((r) => r.start));
  const last = (name) => Math.max(...runs.filter((r) => r.name === name).map((r) => r.end));
  result.chart = { alphaFrom: first('phase_alpha'), alphaTo: last('phase_alpha'), betaFrom: first('phase_beta'), betaTo: last('phase_beta') };
  await page.$eval('#stackchart', (c) => c.scrollIntoView({ block: 'center' }));
  const cb = await (await page.$('#stackchart')).boundingBox();
  const r = runs.filter((x) => x.name === 'phase_beta').sort((a, b) => b.w - a.w)[0];
  await page.mouse.move(cb.x + r.x + r.w / 2, cb.y + r.y + r.h / 2);
  await page.waitForSelector('#tooltip:not([hidden])');
  result.chartTip = await page.textContent('#tooltip');
  await shot(page, 'real-stack-chart-1280x900');
} catch (e) {
  result.errors.push('test: ' + (e && e.stack ? e.stack : e));
  try {
    for (const pg of browser.contexts().flatMap((c) => c.pages())) await shot(pg, 'failure-' + result.screenshots.length, true);
  } catch (e2) { /* ignore */ }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));

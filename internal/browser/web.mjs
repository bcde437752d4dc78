// Browser end-to-end test of the web UI, driven by web/browser_test.go:
// `node web.mjs BASE_URL ARTIFACT_DIR` starts a capture from the form,
// watches its progress, zooms and searches in the workspace's flame graph and downloads
// the pprof file, then prints what it saw as JSON. On failure it saves a
// screenshot into ARTIFACT_DIR.
import { chromium } from 'playwright-core';
import path from 'node:path';
import fs from 'node:fs';

const base = process.argv[2];
const artifacts = process.argv[3];
// What to zoom on and search for; the defaults fit the fake recorder.
const zoomOn = process.env.ZOOM || 'alpha';
const searchFor = process.env.SEARCH || '^beta$';
const duration = process.env.DURATION || '6s';
const result = { errors: [], progress: [] };
const browser = await chromium.launch({
  executablePath: process.env.SCORCH_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
let page;
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(60000);
  page.on('pageerror', (e) => result.errors.push('page error: ' + e));
  // The refused form below logs its 400 in the console; any other error counts.
  let refusing = false;
  page.on('console', (m) => {
    if (m.type() === 'error' && !(refusing && m.text().includes('400'))) result.errors.push('console: ' + m.text());
  });

  await page.goto(base + '/');
  result.collectors = await page.$$eval('table.caps tbody tr', (rows) => rows.length);

  // A bad target is refused with the server's message, on the page.
  await page.check('input[name=target][value=pid]');
  await page.fill('#pid', '999999999');
  refusing = true;
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('#form-error').textContent !== '');
  result.formError = await page.textContent('#form-error');
  refusing = false;

  // Start a capture of the whole host.
  await page.check('input[name=target][value=host]');
  await page.selectOption('#type', 'cpu');
  await page.fill('#duration', duration);
  await page.fill('#hz', '99');
  await Promise.all([page.waitForURL(/\/captures\/[0-9]{8}-/), page.click('#start')]);
  result.captureURL = page.url();
  const id = result.captureURL.split('/').pop();

  // The list on a second tab shows it running and follows it to the end
  // without a reload.
  const home = await context.newPage();
  home.on('pageerror', (e) => result.errors.push('home page error: ' + e));
  await home.goto(base + '/');
  result.listStatus = await home.textContent(`tr[data-id="${id}"] .status`);
  await home.evaluate(() => { window.scorchNoReload = true; });

  // Progress: the bar moves and the sample count grows while it runs.
  for (let i = 0; i < 120; i++) {
    let p = null;
    try {
      p = await page.evaluate(() => {
        const bar = document.querySelector('#progress');
        return bar ? { value: bar.value, left: document.querySelector('#time-left').textContent, samples: document.querySelector('#samples').textContent } : null;
      });
    } catch (e) {
      // the page reloads itself when the capture is done
      await page.waitForLoadState();
    }
    if (!p) break;
    result.progress.push(p);
    await page.waitForTimeout(150);
  }
  await page.waitForSelector('canvas[data-view="flamegraph"]');
  await home.waitForFunction((id) => document.querySelector(`tr[data-id="${id}"] .status`).textContent === 'done', id);
  result.listFollowed = await home.evaluate(() => window.scorchNoReload === true);
  await home.close();
  result.status = await page.textContent('#status');
  await page.waitForFunction(() => document.body.dataset.settled);
  const drawn = () => page.$eval('canvas[data-view="flamegraph"]', (c) => c.scorchFrames());
  result.frames = (await drawn()).map((f) => f.name);

  // Zoom: click "alpha"; frames outside it are not drawn, the URL keeps it.
  const target = (await drawn()).filter((f) => f.name === zoomOn).sort((a, b) => b.w - a.w)[0];
  if (!target) throw new Error('no frame named ' + zoomOn + ' to zoom on');
  // Scroll the frame into the window first: the page may be taller than it.
  await page.$eval('canvas[data-view="flamegraph"]', (c, y) => {
    const top = c.getBoundingClientRect().top + y;
    if (top < 0 || top > innerHeight - 20) window.scrollBy(0, top - innerHeight / 2);
  }, target.y);
  const box = await (await page.$('canvas[data-view="flamegraph"]')).boundingBox();
  await page.mouse.click(box.x + target.x + target.w / 2, box.y + target.y + target.h / 2);
  await page.waitForFunction(() => location.search.includes('zoom='));
  await page.waitForFunction(() => document.body.dataset.settled);
  result.zoomURL = await page.evaluate(() => location.search);
  result.deltaHidden = !(await drawn()).some((f) => f.name.startsWith('delta'));

  // Search from the page's search box: matches are marked, their share shown.
  await page.fill('#search-input', searchFor);
  await page.press('#search-input', 'Enter');
  await page.waitForFunction(() => location.search.includes('s=') && document.body.dataset.settled && document.querySelector('#search-info').dataset.share);
  result.matched = await page.$eval('#search-info', (m) => m.dataset.share);
  result.highlighted = (await drawn()).filter((f) => f.match).map((f) => f.name);

  // Download the pprof file.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-pprof')]);
  const file = path.join(artifacts, 'download-profile.pb.gz');
  await download.saveAs(file);
  result.pprofFile = file;
} catch (e) {
  result.errors.push('test: ' + e);
}
if (result.errors.length > 0 && page) {
  try {
    fs.mkdirSync(artifacts, { recursive: true });
    const shot = path.join(artifacts, 'web-failure.png');
    await page.screenshot({ path: shot, fullPage: true });
    result.screenshot = shot;
  } catch (e) {
    result.errors.push('screenshot: ' + e);
  }
}
await browser.close();
console.log(JSON.stringify(result));

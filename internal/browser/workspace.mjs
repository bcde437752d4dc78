// Browser test of the capture page's analysis workspace, driven by
// web/workspace_browser_test.go: `node workspace.mjs BASE CPU_ID MEM_ID
// FOLDED_ID ARTIFACT_DIR` acts as a user and prints what it saw as JSON.
// Screenshots go to ARTIFACT_DIR.
import { chromium } from 'playwright-core';
import path from 'node:path';

const [base, cpu, mem, folded, artifacts, memInuse] = process.argv.slice(2);
const result = { errors: [], screenshots: [] };
const browser = await chromium.launch({
  executablePath: process.env.SCORCH_CHROMIUM || process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});

function watch(page, name) {
  page.on('pageerror', (e) => result.errors.push(name + ': page error: ' + e));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') result.errors.push(name + ': console: ' + m.text()); });
}
async function shot(page, name, full) {
  const file = path.join(artifacts, name + '.png');
  await page.screenshot({ path: file, fullPage: !!full });
  result.screenshots.push(file);
}
// settled waits until the page has drawn the state it shows now.
async function settled(page) {
  await page.waitForFunction(() => document.body.dataset.settled && document.body.dataset.settled === document.body.dataset.ready);
  await page.waitForTimeout(50);
}
// frames lists what a canvas shows: label, position and size of each frame.
const frames = (page, sel) => page.$eval(sel, (c) => c.scorchFrames());
async function frameAt(page, sel, name) {
  const fs = await frames(page, sel);
  const f = fs.filter((x) => x.name === name).sort((a, b) => b.w - a.w)[0];
  if (!f) throw new Error('no frame ' + name + ' in ' + sel + ': ' + fs.map((x) => x.name).join(','));
  const box = await (await page.$(sel)).boundingBox();
  return { x: box.x + f.x + Math.min(f.w / 2, 40), y: box.y + f.y + f.h / 2, f: f };
}
const cell = (page, name, col) => page.$eval(`#functions tr[data-fn="${name}"]`, (tr, col) => tr.children[col].textContent, col);
// tableOf is the function table as read: each row's cells.
const tableOf = (page) => page.$$eval('#functions tbody tr', (rs) => rs.map((r) => [...r.children].map((c) => c.textContent).join(' | ') +
  (r.classList.contains('selected') ? ' [selected]' : '') + (r.classList.contains('match') ? ' [match]' : '')));
// freshTable is the table a new page draws for url (no rows kept from before).
const freshTable = async (url) => {
  const fp = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await fp.goto(url);
  await fp.waitForFunction(() => document.body.dataset.settled);
  const t = await tableOf(fp);
  await fp.close();
  return t;
};
const waitURL = (page, re) => page.waitForFunction((src) => new RegExp(src).test(location.search), re.source);

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(30000);
  watch(page, 'cpu page');
  await page.goto(base + '/captures/' + cpu);
  await settled(page);
  await page.waitForSelector('#hm-svg');
  await settled(page);
  await shot(page, 'first-paint-1280x900');
  // The graph fills its box and its root (the bottom row of a flame
  // graph) is on screen.
  const geo = await page.evaluate(() => {
    const c = document.querySelector('canvas[data-view="flamegraph"]');
    const root = c.scorchFrames().find((f) => f.depth === 0);
    const r = c.getBoundingClientRect();
    const boxR = document.querySelector('#graph-box').getBoundingClientRect();
    const top = r.top + root.y, bottom = top + root.h; // the whole bar, not only its middle
    const px = c.getContext('2d').getImageData(Math.floor(root.x + 50) * devicePixelRatio, Math.floor(root.y + 3) * devicePixelRatio, 1, 1).data;
    return { inView: top >= Math.max(0, boxR.top) && bottom <= Math.min(innerHeight, boxR.bottom), width: r.width, box: document.querySelector('#graph-box').clientWidth, painted: px[3] > 0 && !(px[0] === 0 && px[1] === 0 && px[2] === 0) };
  });
  result.rootInView = geo.inView;
  result.canvasPainted = geo.painted;
  result.canvasWidth = geo.width;
  result.boxWidth = geo.box;

  // Hover: the tooltip gives self, total and shares.
  let p = await frameAt(page, '#flamegraph', 'hot');
  await page.mouse.move(p.x, p.y);
  await page.waitForSelector('#tooltip:not([hidden])');
  result.tooltip = await page.textContent('#tooltip');
  await page.mouse.move(5, 5);

  // The table: hot's total share; selecting it opens its sandwich.
  result.hotTotal = await cell(page, 'hot', 3);
  result.hotSource = await page.getAttribute('#functions tr[data-fn="hot"] td.fn', 'title');
  await page.click('#functions tr[data-fn="hot"] td.fn');
  await waitURL(page, /fn=hot/);
  await settled(page);
  result.selectURL = page.url();
  result.sandwichTitle = await page.textContent('#sandwich-title');
  p = await frameAt(page, '#callers', 'compute');
  await page.mouse.move(p.x, p.y);
  await page.waitForSelector('#tooltip:not([hidden])');
  result.callerTip = await page.textContent('#tooltip');
  result.calleesOfHot = (await frames(page, '#callees')).map((f) => f.name);
  await shot(page, 'sandwich-hot', true);

  // Focus on work from the graph's context menu; Back undoes it.
  p = await frameAt(page, '#flamegraph', 'work');
  await page.mouse.click(p.x, p.y, { button: 'right' });
  await page.waitForSelector('#menu:not([hidden])');
  await shot(page, 'context-menu');
  await page.click('#menu button:has-text("Focus on work")');
  await waitURL(page, /t=focus/);
  await settled(page);
  result.focusURL = page.url();
  result.focusCrumb = (await page.textContent('#crumbs .crumb.transform')).trim();
  result.focusRootKids = (await frames(page, '#flamegraph')).filter((f) => f.depth === 1).map((f) => f.name);
  result.focusHotTotal = await cell(page, 'hot', 3);
  // The table keeps the rows whose numbers stayed: the whole table is still
  // the one a new page draws, after the transform and after Back.
  result.focusTableFresh = JSON.stringify(await tableOf(page)) === JSON.stringify(await freshTable(page.url()));
  await shot(page, 'focus-work');
  await page.goBack();
  await page.waitForFunction(() => !location.search.includes('t='));
  await settled(page);
  result.backURL = page.url();
  result.backCrumbs = await page.$$eval('#crumbs .crumb.transform', (cs) => cs.length);
  result.backHotTotal = await cell(page, 'hot', 3);
  result.backTableFresh = JSON.stringify(await tableOf(page)) === JSON.stringify(await freshTable(page.url()));

  // Search from the keyboard, step through the matches.
  await page.click('body', { position: { x: 5, y: 300 } });
  await page.keyboard.press('/');
  await page.keyboard.type('hot|lex');
  await page.keyboard.press('Enter');
  await waitURL(page, /s=hot/);
  await settled(page);
  await page.locator('#search-input').blur();
  result.searchInfo = await page.textContent('#search-info');
  await page.keyboard.press('n');
  await page.keyboard.press('n');
  result.stepInfo = await page.textContent('#search-info');
  await page.keyboard.press('Shift+N');
  result.stepBack = await page.textContent('#search-info');
  result.matchedRows = await page.$$eval('#functions tr.match', (rs) => rs.map((r) => r.dataset.fn).sort());
  await shot(page, 'search');
  await page.keyboard.press('Escape'); // unselect hot
  await page.waitForFunction(() => !location.search.includes('fn='));
  await page.keyboard.press('Escape'); // clear the search
  await page.waitForFunction(() => !location.search.includes('s='));
  await settled(page);

  // Zoom on parse: breadcrumbs, the widest frame, Esc zooms out.
  p = await frameAt(page, '#flamegraph', 'parse');
  await page.mouse.click(p.x, p.y);
  await waitURL(page, /zoom=/);
  await settled(page);
  result.zoomURL = page.url();
  result.zoomCrumb = (await page.$$eval('#crumbs .crumb.zoom', (cs) => cs.map((c) => c.textContent))).pop();
  const zf = (await frames(page, '#flamegraph')).filter((f) => f.depth === 3);
  result.zoomWidest = zf.sort((a, b) => b.w - a.w)[0].name;
  await shot(page, 'zoom-parse');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !location.search.includes('zoom='));
  result.escURL = page.url();

  // With a budget of 5 frames, hot is pruned under work; zooming on work
  // fetches its subtree and draws it.
  await page.goto(base + '/captures/' + cpu + '?nodes=5');
  await settled(page);
  result.prunedBefore = (await frames(page, '#flamegraph')).map((f) => f.name);
  p = await frameAt(page, '#flamegraph', 'work');
  await page.mouse.click(p.x, p.y);
  await waitURL(page, /zoom=/);
  await settled(page);
  result.graftedAfter = (await frames(page, '#flamegraph')).map((f) => f.name);
  await shot(page, 'zoom-grafted');
  await page.goto(base + '/captures/' + cpu);
  await settled(page);
  await page.waitForSelector('#hm-svg');

  // Compare the two phases picked on the heatmap.
  const svg = await page.$('#hm-svg');
  const hb = await svg.boundingBox();
  const g = await svg.evaluate((s) => ({ left: +s.dataset.left, top: +s.dataset.top, cw: +s.dataset.cw, ch: +s.dataset.ch, rows: +s.dataset.rows }));
  const at = (c, r) => ({ x: hb.x + g.left + c * g.cw + g.cw / 2, y: hb.y + g.top + (g.rows - 1 - r) * g.ch + g.ch / 2 });
  let q = at(0, 0);
  await page.mouse.click(q.x, q.y);
  q = at(1, g.rows - 1);
  await page.mouse.click(q.x, q.y);
  await waitURL(page, /to=2/);
  await page.check('#hm-compare');
  q = at(2, 0);
  await page.mouse.click(q.x, q.y);
  q = at(3, g.rows - 1);
  await page.mouse.click(q.x, q.y);
  await waitURL(page, /compare_to=4/);
  await settled(page);
  result.diffURL = page.url();
  result.legendVisible = await page.isVisible('#legend');
  result.diffHeader = await page.$$eval('#functions thead th', (ths) => ths.map((t) => t.textContent));
  result.diffRows = await page.$$eval('#functions tbody tr', (rs) => Object.fromEntries(rs.map((r) => [r.dataset.fn, r.children[2].textContent])));
  await shot(page, 'diff-ranges', true);

  // Resize: the graph is redrawn at the new width, without a reload.
  await page.evaluate(() => { window.notReloaded = true; });
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.waitForFunction(() => window.notReloaded && document.querySelector('#graph-box').clientWidth > 1750 &&
    Math.abs(document.querySelector('#flamegraph').getBoundingClientRect().width - document.querySelector('#graph-box').clientWidth) < 2 &&
    Math.max(...document.querySelector('#flamegraph').scorchFrames().map((f) => f.x + f.w)) > 1750);
  result.wideCanvasWidth = await page.$eval('#flamegraph', (c) => c.getBoundingClientRect().width);
  result.wideBoxWidth = await page.$eval('#graph-box', (b) => b.clientWidth);
  await page.goto(base + '/captures/' + cpu + '?fn=hot');
  await settled(page);
  await shot(page, 'wide-1920x1080');
  await shot(page, 'wide-1920x1080-full', true);

  // A mem capture: allocated by default, in use from the control.
  const mp = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch(mp, 'mem page');
  await mp.goto(base + '/captures/' + mem);
  await settled(mp);
  result.memTop = await mp.$eval('#functions tbody tr', (r) => r.dataset.fn);
  await mp.selectOption('#view', 'inuse');
  await mp.waitForFunction(() => location.search.includes('view=inuse'));
  await settled(mp);
  result.memURL = mp.url();
  result.memInuseTop = await mp.$eval('#functions tbody tr', (r) => r.dataset.fn);
  result.memInuseShare = await mp.$eval('#functions tbody tr', (r) => r.children[1].textContent);
  await shot(mp, 'mem-inuse');
  // Recorded with view=inuse: the page opens in that view.
  await mp.goto(base + '/captures/' + memInuse);
  await settled(mp);
  result.formInuseURL = mp.url();
  result.formInuseTop = await mp.$eval('#functions tbody tr', (r) => r.dataset.fn);

  // An import without timestamps: no heatmap, a sentence why, escaped names.
  await mp.goto(base + '/captures/' + folded);
  await settled(mp);
  await mp.waitForSelector('#no-time:not([hidden])');
  result.noTimeText = await mp.textContent('#no-time');
  result.foldedNames = (await frames(mp, '#flamegraph')).sort((a, b) => a.depth - b.depth).map((f) => f.name);
  await shot(mp, 'folded-import');

  // Dark mode.
  await mp.emulateMedia({ colorScheme: 'dark' });
  await mp.goto(base + '/captures/' + cpu + '?fn=hot');
  await settled(mp);
  result.darkBackground = await mp.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await shot(mp, 'dark-1280x900');

  // An unknown capture is a page that says so (its 404 is expected).
  const ep = await browser.newPage();
  await ep.goto(base + '/captures/20200101-000000-00000000');
  result.errorPage = await ep.textContent('#error-message');
} catch (e) {
  result.errors.push('test: ' + (e && e.stack ? e.stack : e));
  try {
    for (const pg of browser.contexts().flatMap((c) => c.pages())) await shot(pg, 'failure-' + result.screenshots.length, true);
  } catch (e2) { /* ignore */ }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));

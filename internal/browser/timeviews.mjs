// Browser test of the capture page's time views, driven by
// web/timeviews_browser_test.go: `node timeviews.mjs BASE CPU_ID OFFCPU_ID
// FOLDED_ID ARTIFACT_DIR` acts as a user (brushes the heatmap and the
// tracks, steps with ], picks a thread's track, opens the stack chart,
// selects a function and looks where it ran, reads an off-CPU capture,
// compares two brushed ranges on the compare page) and prints what it saw
// as JSON. Screenshots go to ARTIFACT_DIR.
import { chromium } from 'playwright-core';
import path from 'node:path';

const [base, cpu, offcpu, folded, artifacts, synth] = process.argv.slice(2);
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
// settled waits until the workspace has drawn the state it shows now and
// the tracks are drawn.
async function settled(page) {
  await page.waitForFunction(() => document.body.dataset.settled && document.body.dataset.settled === document.body.dataset.ready &&
    (document.querySelector('#timeline').hidden || document.querySelector('#timeline').dataset.drawn));
  await page.waitForTimeout(80);
}
const waitURL = (page, re) => page.waitForFunction((src) => new RegExp(src).test(decodeURIComponent(location.search)), re.source);
const tableFns = (page) => page.$$eval('#functions tbody tr', (rs) => rs.map((r) => r.dataset.fn));
const cell = (page, name, col) => page.$eval(`#functions tr[data-fn="${name}"]`, (tr, col) => tr.children[col].textContent, col);
const graphNames = (page) => page.$eval('#flamegraph', (c) => [...new Set(c.scorchFrames().map((f) => f.name))]);
// tracks lists the tracks as a user reads them: label, sub-label, selected.
const tracks = (page) => page.$$eval('#tl-list .tl-row:not(.tl-axis)', (rs) => rs.map((r) => ({
  key: r.dataset.key, pid: r.dataset.pid || '', tid: r.dataset.tid || '', name: r.querySelector('.tl-name').textContent,
  sub: r.querySelector('.tl-sub').textContent, selected: r.classList.contains('selected'),
  spans: +(r.dataset.spans || 0), focusFrom: r.dataset.focusFrom, focusTo: r.dataset.focusTo, halves: r.dataset.focusHalves,
})));
// trackX is where time t (seconds) is on a track's graph.
async function trackPoint(page, key, t) {
  const c = await page.$(`#tl-list .tl-row[data-key="${key}"] canvas`);
  const b = await c.boundingBox();
  const end = +(await page.$eval('#timeline', (r) => r.dataset.end));
  return { x: b.x + (t / end) * b.width, y: b.y + b.height / 2 };
}
async function drag(page, a, b, shift) {
  if (shift) await page.keyboard.down('Shift');
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 4 });
  await page.mouse.move(b.x, b.y, { steps: 4 });
  await page.mouse.up();
  if (shift) await page.keyboard.up('Shift');
}
async function heatCells(page, sel) {
  const svg = await page.$(sel);
  const hb = await svg.boundingBox();
  const g = await svg.evaluate((s) => ({ left: +s.dataset.left, top: +s.dataset.top, cw: +s.dataset.cw, ch: +s.dataset.ch, rows: +s.dataset.rows }));
  return (c, r) => ({ x: hb.x + g.left + c * g.cw + g.cw / 2, y: hb.y + g.top + (g.rows - 1 - r) * g.ch + g.ch / 2 });
}

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(30000);
  watch(page, 'cpu page');
  await page.goto(base + '/captures/' + cpu);
  await page.waitForSelector('#hm-svg');
  await settled(page);
  result.tracks = await tracks(page);
  await shot(page, 'tracks-1280x900');
  // Hover the markup-named process's track: its name in the detail line.
  const pt = await trackPoint(page, 'p300', 2);
  await page.mouse.move(pt.x, pt.y);
  result.title = await page.title();
  result.images = await page.$$eval('img', (is) => is.length);

  // Brush seconds 0-2 on the heatmap (drag from column 0 to column 1):
  // the tracks show the range, the graph and the table follow.
  let at = await heatCells(page, '#hm-svg');
  await drag(page, at(0, 0), at(1, 49));
  await waitURL(page, /from=0&to=2/);
  await settled(page);
  result.heatBrushURL = page.url();
  result.heatBrushRange = await page.textContent('#range-info');
  result.heatBrushTable = await tableFns(page);
  result.heatBrushGraph = await graphNames(page);
  result.heatBrushTrackSel = await page.$eval('#timeline', (r) => r.dataset.ranges);
  await shot(page, 'heatmap-brush');

  // Shift-drag on the heatmap adds 4-6 s to 0-2 s.
  await drag(page, at(4, 0), at(5, 49), true);
  await waitURL(page, /from=0&from=4&to=2&to=6/);
  await settled(page);
  result.heatShiftURL = page.url();
  result.heatShiftHighlights = await page.$$eval('#hm-svg .hm-sel rect', (rs) => rs.length);
  result.heatShiftTracks = await page.$eval('#timeline', (r) => r.dataset.ranges);

  // Brush 3.5-5.5 s on the total track: the heatmap highlights it.
  let a = await trackPoint(page, 'all', 3.5), b = await trackPoint(page, 'all', 5.5);
  await drag(page, a, b);
  await waitURL(page, /from=3\.5&to=5\.5/);
  await settled(page);
  result.trackBrushURL = page.url();
  result.trackBrushTable = await tableFns(page);
  result.trackBrushHeat = await page.$$eval('#hm-svg .hm-sel rect', (rs) => rs.length);
  // Shift-drag adds 0.5-1 s: two ranges, merged into the views.
  a = await trackPoint(page, 'all', 0.5); b = await trackPoint(page, 'all', 1);
  await drag(page, a, b, true);
  await waitURL(page, /from=0\.5&from=3\.5&to=1&to=5\.5/);
  await settled(page);
  result.twoRangesURL = page.url();
  result.twoRangesInfo = await page.textContent('#range-info');
  result.twoRangesTable = await tableFns(page);
  result.twoRangesSamples = await page.$eval('#functions tr[data-fn="steady"] td', (td) => td.textContent);
  await shot(page, 'two-ranges');

  // Step: from 0-1 s, ] moves to 1-2 s, then 2-3 s; [ back to 1-2 s.
  await page.goto(base + '/captures/' + cpu + '?from=0&to=1');
  await settled(page);
  await page.click('body', { position: { x: 5, y: 5 } });
  await page.keyboard.press(']');
  await waitURL(page, /from=1&to=2/);
  await page.keyboard.press(']');
  await waitURL(page, /from=2&to=3/);
  await page.keyboard.press('[');
  await waitURL(page, /from=1&to=2/);
  await settled(page);
  result.stepURL = page.url();
  result.stepRange = await page.textContent('#range-info');

  // Click the worker thread's track: every view shows only it.
  await page.goto(base + '/captures/' + cpu);
  await settled(page);
  a = await trackPoint(page, 't201', 1);
  await page.mouse.click(a.x, a.y);
  await waitURL(page, /tid=201/);
  await settled(page);
  result.pickURL = page.url();
  result.pickRange = await page.textContent('#range-info');
  result.pickTable = await tableFns(page);
  result.pickGraph = await graphNames(page);
  result.pickTracks = (await tracks(page)).filter((t) => t.selected).map((t) => t.key);
  await page.waitForFunction(() => /1 sample per cell/.test(document.querySelector('#hm-legend').textContent), null, { timeout: 10000 }).catch(() => {});
  result.pickLegend = await page.textContent('#hm-legend');
  result.wholeLegend = await page.evaluate(async (id) => { const r = await fetch('/api/captures/' + id + '/heatmap.json'); return (await r.json()).max; }, cpu);
  await shot(page, 'thread-picked');
  // The permalink keeps it.
  await page.goto(result.pickURL);
  await settled(page);
  result.permalinkTable = await tableFns(page);
  result.permalinkSelected = (await tracks(page)).filter((t) => t.selected).map((t) => t.key);

  // The stack chart of that thread: hover a frame, the tooltip names it.
  await page.click('#tab-stack');
  await waitURL(page, /chart=stack/);
  await settled(page);
  await page.waitForFunction(() => document.querySelector('#stackchart').scorchRuns().length > 0);
  const runs = await page.$eval('#stackchart', (c) => c.scorchRuns());
  result.chartNames = [...new Set(runs.map((r) => r.name))].sort();
  result.chartInfo = await page.textContent('#sc-info');
  const leaf = runs.filter((r) => r.name === 'phase_two').sort((x, y) => y.w - x.w)[0];
  const leaf1 = runs.filter((r) => r.name === 'phase_one').sort((x, y) => y.w - x.w)[0];
  result.chartOrder = leaf && leaf1 ? leaf1.start < leaf.start : null;
  await page.$eval('#stackchart', (c) => c.scrollIntoView({ block: 'center' }));
  const cb = await (await page.$('#stackchart')).boundingBox();
  await page.mouse.move(cb.x + leaf.x + leaf.w / 2, cb.y + leaf.y + leaf.h / 2);
  await page.waitForSelector('#tooltip:not([hidden])');
  result.chartTip = await page.textContent('#tooltip');
  await shot(page, 'stack-chart-1280x900');
  // A click selects the function, as on the flame graph.
  await page.mouse.click(cb.x + leaf.x + leaf.w / 2, cb.y + leaf.y + leaf.h / 2);
  await waitURL(page, /fn=phase_two/);
  await settled(page);
  result.chartSelected = await page.$eval('#stackchart', (c) => c.scorchRuns().filter((r) => r.selected).map((r) => r.name));
  // The wheel zooms in: the range narrows around the pointer.
  await page.mouse.move(cb.x + cb.width * 0.75, cb.y + 30);
  await page.mouse.wheel(0, -600);
  await page.waitForFunction(() => /from=/.test(location.search));
  await settled(page);
  result.zoomURL = page.url();
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.waitForTimeout(300);
  await settled(page);
  await shot(page, 'stack-chart-1920x1080');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Select phase_one in the table: the heatmap and the tracks show where
  // it ran (the first half of the capture).
  await page.goto(base + '/captures/' + cpu);
  await settled(page);
  await page.click('#functions tr[data-fn="phase_one"] td.fn');
  await waitURL(page, /fn=phase_one/);
  await page.waitForFunction(() => document.querySelector('#heatmap').dataset.focus === 'phase_one' && document.querySelector('#timeline').dataset.focus === 'phase_one');
  await settled(page);
  result.focusCells = await page.$$eval('#hm-svg .hm-focus rect', (rs) => rs.map((r) => +r.dataset.c));
  result.focusTracks = (await tracks(page)).filter((t) => t.spans > 0);
  await shot(page, 'focus-phase-one-1280x900');
  // A permalink with the function selected paints it when the page opens.
  await page.goto(page.url());
  await page.waitForFunction(() => document.querySelector('#heatmap').dataset.focus === 'phase_one' && document.querySelector('#timeline').dataset.focus === 'phase_one', null, { timeout: 10000 }).catch(() => {});
  await settled(page);
  result.permalinkFocus = (await tracks(page)).filter((t) => t.spans > 0).map((t) => t.key);
    // Hovering phase_two's row shows it instead, without a click.
  await page.hover('#functions tr[data-fn="phase_two"] td.fn');
  await page.waitForFunction(() => document.querySelector('#timeline').dataset.focus === 'phase_two');
  await page.waitForTimeout(100);
  result.hoverTracks = (await tracks(page)).filter((t) => t.spans > 0);
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.waitForTimeout(300);
  await shot(page, 'focus-phase-two-1920x1080');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Off-CPU: the heatmap in threads blocked, the sum a toggle away; the
  // tracks split blocked and run-queue time.
  const op = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch(op, 'offcpu page');
  await op.goto(base + '/captures/' + offcpu);
  await op.waitForSelector('#hm-svg');
  await settled(op);
  result.offLegend = await op.textContent('#hm-legend');
  result.offTracks = await tracks(op);
  let oa = await heatCells(op, '#hm-svg');
  await op.mouse.move(oa(1, 10).x, oa(1, 10).y);
  result.offHover = await op.textContent('#hm-detail');
  a = await trackPoint(op, 't401', 1);
  await op.mouse.move(a.x, a.y);
  result.offTrackHover = await op.textContent('#tl-info');
  await shot(op, 'offcpu-threads');
  await op.check('#hm-sum');
  await op.waitForFunction(() => /norm=sum/.test(location.search));
  await op.waitForFunction(() => !/threads/.test(document.querySelector('#hm-legend').textContent));
  result.offSumLegend = await op.textContent('#hm-legend');
  result.offSumURL = op.url();

  // Without timestamps: no heatmap, tracks or stack chart, and why.
  await op.goto(base + '/captures/' + folded);
  await op.waitForSelector('#no-time:not([hidden])');
  await settled(op);
  result.noTime = await op.textContent('#no-time');
  result.noTimeHidden = await op.evaluate(() => ['#heatmap', '#timeline', '#tab-stack'].map((s) => document.querySelector(s).hidden));

  // The synthetic 50-thread capture: open the busiest process's other
  // threads; the lost events; 1920x1080; dark mode.
  const sp = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch(sp, 'synthetic page');
  await sp.goto(base + '/captures/' + synth);
  await sp.waitForSelector('#hm-svg');
  await settled(sp);
  result.synthTracks = await tracks(sp);
  await shot(sp, 'synthetic-1280x900');
  const moreKey = result.synthTracks.find((t) => t.key.startsWith('more-')).key;
  await sp.click(`#tl-list .tl-row[data-key="${moreKey}"] .tl-label`);
  await sp.waitForFunction((k) => !document.querySelector(`#tl-list .tl-row[data-key="${k}"]`), moreKey);
  result.synthOpened = await tracks(sp);
  result.synthLost = await sp.$eval('#tl-list .tl-row[data-key="all"] .tl-sub', (e) => e.textContent);
  await sp.$eval('#tl-list', (l) => { l.scrollTop = 0; });
  a = await trackPoint(sp, 'all', 10);
  await sp.mouse.move(a.x, a.y);
  result.synthLost += ' | ' + await sp.textContent('#tl-info');
  const fn0 = await sp.$eval('#functions tbody tr', (r) => r.dataset.fn);
  await sp.click(`#functions tbody tr[data-fn="${fn0}"] td.fn`);
  await sp.waitForFunction((f) => document.querySelector('#timeline').dataset.focus === f, fn0);
  await sp.evaluate(() => window.scrollTo(0, 0));
  await sp.setViewportSize({ width: 1920, height: 1080 });
  await sp.waitForTimeout(300);
  await settled(sp);
  await shot(sp, 'synthetic-focus-1920x1080');
  await sp.emulateMedia({ colorScheme: 'dark' });
  await sp.goto(base + '/captures/' + synth + '?from=4&to=8');
  await sp.waitForSelector('#hm-svg');
  await settled(sp);
  result.darkBackground = await sp.evaluate(() => getComputedStyle(document.body).backgroundColor);
  result.darkTrackLabel = await sp.$eval('#tl-list .tl-row[data-key="all"] .tl-label', (e) => getComputedStyle(e).color);
  await shot(sp, 'synthetic-dark-1280x900');

  // The compare page: brush a range on each side's heatmap.
  const cp = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch(cp, 'compare page');
  await cp.goto(base + '/compare?base=' + cpu + '&compare=' + cpu);
  await cp.waitForSelector('#cmp-base svg.hm-svg');
  await cp.waitForSelector('#cmp-compare svg.hm-svg');
  at = await heatCells(cp, '#cmp-base svg.hm-svg');
  await drag(cp, at(0, 0), at(2, 49));
  at = await heatCells(cp, '#cmp-compare svg.hm-svg');
  await drag(cp, at(3, 0), at(5, 49));
  await cp.waitForFunction(() => /compare_from=3/.test(location.search));
  await cp.waitForSelector('#diffgraph');
  result.compareURL = cp.url();
  result.compareInputs = await cp.$$eval('#compare input', (is) => Object.fromEntries(is.map((i) => [i.name, i.value])));
  result.compareDiff = await cp.$eval('#diffgraph', (f) => f.getAttribute('src'));
  await shot(cp, 'compare-brushed', true);
} catch (e) {
  result.errors.push('test: ' + (e && e.stack ? e.stack : e));
  try {
    for (const pg of browser.contexts().flatMap((c) => c.pages())) await shot(pg, 'failure-' + result.screenshots.length, true);
  } catch (e2) { /* ignore */ }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));

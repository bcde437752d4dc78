// Drives the host overview page in headless Chromium and prints what a user
// would see as JSON; web/overview_browser_test.go checks it.
// usage: node overview_browser.js BASE_URL
'use strict';
const { launch } = require('scorch-browser');

const [base] = process.argv.slice(2);

(async () => {
	const result = { errors: [] };
	const { page, close } = await launch();
	try {
		page.on('pageerror', (e) => result.errors.push('page error: ' + e));
		page.on('console', (m) => { if (m.type() === 'error') result.errors.push('console: ' + m.text()); });
		await page.goto(base + '/');
		result.firstNav = await page.$eval('header nav a', (a) => a.getAttribute('href'));
		await page.click('header nav a');
		await page.waitForSelector('#use tbody tr.res');
		const rows = () => page.$$eval('#use tbody tr.res', (trs) => trs.map((tr) => ({
			resource: tr.dataset.resource,
			status: tr.dataset.status,
			cells: [...tr.children].map((td) => td.textContent),
			bars: [...tr.querySelectorAll('svg.spark rect')].map((r) => r.getAttribute('class')),
		})));
		result.rows = await rows();
		const samples = () => page.$eval('#ov-updated', (e) => Number(e.dataset.samples));
		result.samplesBefore = await samples();
		// Live: the events redraw the table without a reload.
		await page.waitForFunction((n) => Number(document.querySelector('#ov-updated').dataset.samples) >= n + 2, result.samplesBefore, { timeout: 20000 });
		result.samplesAfter = await samples();
		result.rowsAfter = await rows();
		result.top = await page.$$eval('#top-cpu tbody tr', (trs) => trs.map((tr) => tr.textContent));
		result.kernel = await page.$$eval('#kernel-errors tbody tr', (trs) => trs.map((tr) => tr.textContent));
		result.findings = await page.$$eval('#findings li', (lis) => lis.map((li) => li.textContent));
		// Hostile names arrive as text, never as markup.
		result.injected = await page.evaluate(() => document.querySelectorAll('#top-cpu img, #kernel-errors img, #use img').length);
		await Promise.all([page.waitForURL(/\/captures\/[0-9]{8}-/), page.click('#findings li[data-drill-type="cpu"] button.drill')]);
		result.captureURL = page.url();
		result.captureHeading = await page.textContent('#capture h2');
	} catch (e) {
		result.errors.push('script: ' + e);
	} finally {
		await close();
	}
	process.stdout.write(JSON.stringify(result));
})();

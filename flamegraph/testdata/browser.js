// Drives an SVG flame graph in headless Chromium and prints what a user
// would see as JSON; flamegraph/browser_test.go checks it.
// usage: node browser.js FILE.svg CSP-FILE.svg NONCE
'use strict';
const fs = require('fs');
const { launch } = require('scorch-browser');

const [file, cspFile, nonce] = process.argv.slice(2);

async function state(page) {
	return page.evaluate(() => {
		const frames = [...document.querySelectorAll('#frames > g')].map((g) => ({
			name: g.querySelector('title').textContent.split('\n')[0],
			cls: g.getAttribute('class'),
			width: +g.querySelector('rect').getAttribute('width'),
			label: g.querySelector('text').textContent,
		}));
		return {
			url: location.search,
			matched: document.getElementById('matched').textContent,
			unzoomHidden: document.getElementById('unzoom').classList.contains('hide'),
			details: document.getElementById('details').textContent,
			frames,
		};
	});
}

// settle waits (at most 10 s) until the page shows what pred expects, so
// that history navigation has been applied, then reads the state; the Go
// test judges it.
async function settle(page, pred) {
	await page.waitForFunction(pred, null, { timeout: 10000 }).catch(() => {});
	return state(page);
}

async function frameRect(page, name) {
	const i = await page.evaluate((n) => [...document.querySelectorAll('#frames > g')]
		.findIndex((g) => g.querySelector('title').textContent.split('\n')[0] === n), name);
	if (i < 0) throw new Error('no frame ' + name);
	return page.locator('#frames > g').nth(i).locator('rect');
}

(async () => {
	const { page, close } = await launch();
	const errors = [];
	page.on('pageerror', (e) => errors.push(String(e)));
	page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
	let answer = '';
	page.on('dialog', (d) => d.accept(answer));
	const out = {};
	try {
		await page.goto('file://' + file);
		out.initial = await state(page);

		await (await frameRect(page, 'work_b')).hover();
		out.hover = (await state(page)).details;

		answer = 'leaf_b';
		await page.keyboard.press('Control+f');
		out.searchUnzoomed = await state(page);

		await (await frameRect(page, 'work_a')).click();
		out.zoomed = await state(page);

		answer = 'LEAF_B';
		await page.click('#search'); // resets the search
		await page.click('#ignorecase');
		await page.click('#search'); // asks again
		out.searchZoomedIgnoreCase = await state(page);

		// Back undoes the search, the case toggle and the search reset: the
		// zoom with the leaf_b search again.
		await page.goBack();
		await page.goBack();
		await page.goBack();
		out.back = await settle(page, () => new URLSearchParams(location.search).get('s') === 'leaf_b' &&
			document.getElementById('matched').textContent !== '');
		await page.goBack(); // before the zoom
		out.backUnzoomed = await settle(page, () => !new URLSearchParams(location.search).has('x') &&
			document.getElementById('unzoom').classList.contains('hide'));

		// The web service sends a CSP allowing only the nonce'd script.
		const body = fs.readFileSync(cspFile);
		await page.route('http://scorch.test/**', (route) => route.fulfill({
			status: 200, body, contentType: 'image/svg+xml',
			headers: { 'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'` },
		}));
		await page.goto('http://scorch.test/graph.svg?s=leaf_');
		await (await frameRect(page, 'work_b')).click();
		out.csp = await state(page);
	} finally {
		out.errors = errors;
		await close();
	}
	process.stdout.write(JSON.stringify(out));
})().catch((e) => {
	console.error(e);
	process.exit(1);
});

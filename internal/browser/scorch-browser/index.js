// Launches Debian's headless Chromium through playwright-core with a fresh
// profile and no background network traffic. Use: const {launch} =
// require('scorch-browser'); const {context, page, close} = await launch();
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

async function launch() {
	const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scorch-chromium-'));
	const context = await chromium.launchPersistentContext(userDataDir, {
		executablePath: process.env.SCORCH_CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
		timeout: 120000,
	});
	const page = context.pages()[0] || await context.newPage();
	page.setDefaultTimeout(60000);
	async function close() {
		await context.close();
		fs.rmSync(userDataDir, { recursive: true, force: true });
	}
	return { context, page, close };
}

module.exports = { launch };

// Interactive behaviour of scorch's SVG flame graphs: hover details, click to
// zoom (ancestors dimmed), regex search with a Matched % over the zoomed
// frame, and URL state (?x=&d= zoom, ?s= search, ?i=1 ignore case) kept in
// the browser history. No inline handlers: everything is bound here so the
// file works under a nonce-only Content-Security-Policy.
(function () {
	'use strict';
	var script = document.currentScript;
	var svg = (script && script.ownerSVGElement) || document.documentElement;
	var W = +svg.getAttribute('width'), PAD = 10, FS = 12, FW = 0.59;
	var $ = function (id) { return svg.querySelector('#' + id); };
	var framesG = $('frames'), details = $('details'), matched = $('matched');
	var unzoomBtn = $('unzoom'), searchBtn = $('search'), icBtn = $('ignorecase');
	var F = [];
	var kids = framesG.children;
	for (var k = 0; k < kids.length; k++) {
		var el = kids[k];
		var rect = el.querySelector('rect'), title = el.querySelector('title');
		var lines = title ? title.textContent.split('\n') : [''];
		el.__i = F.length;
		F.push({
			el: el, rect: rect, text: el.querySelector('text'),
			x: +el.getAttribute('data-x'), v: +el.getAttribute('data-v'), d: +el.getAttribute('data-d'),
			name: lines[0], info: lines.slice(1).join('; '),
			ox: +rect.getAttribute('x'), ow: +rect.getAttribute('width')
		});
	}
	var zoomed = 0, term = '', ignoreCase = false;

	function label(f, w) {
		var chars = Math.floor(w / (FS * FW));
		var s = '';
		if (chars >= 3) {
			s = f.name;
			if (s.length > chars) s = s.slice(0, chars - 2) + '..';
		}
		if (f.text) {
			f.text.textContent = s;
		}
	}
	function place(f, x, w) {
		f.rect.setAttribute('x', x.toFixed(1));
		f.rect.setAttribute('width', w.toFixed(1));
		if (f.text) f.text.setAttribute('x', (x + 3).toFixed(1));
		label(f, w);
	}

	// zoom shows frame i and its descendants at full width, its ancestors
	// dimmed at full width, and hides the rest.
	function zoom(i) {
		var z = F[i] || F[0];
		zoomed = F[i] ? i : 0;
		var scale = (W - 2 * PAD) / z.v;
		for (var j = 0; j < F.length; j++) {
			var f = F[j], cl = f.el.classList;
			if (zoomed === 0) {
				cl.remove('hide', 'parent');
				f.rect.setAttribute('x', f.ox);
				f.rect.setAttribute('width', f.ow);
				if (f.text) f.text.setAttribute('x', (f.ox + 3).toFixed(1));
				label(f, f.ow);
			} else if (f.d >= z.d && f.x >= z.x && f.x + f.v <= z.x + z.v) {
				cl.remove('hide', 'parent');
				place(f, PAD + (f.x - z.x) * scale, f.v * scale);
			} else if (f.d < z.d && f.x <= z.x && f.x + f.v >= z.x + z.v) {
				cl.remove('hide');
				cl.add('parent');
				place(f, PAD, W - 2 * PAD);
			} else {
				cl.add('hide');
				cl.remove('parent');
			}
		}
		unzoomBtn.classList.toggle('hide', zoomed === 0);
		updateMatched();
	}

	function regexp() {
		if (!term) return null;
		try {
			return new RegExp(term, ignoreCase ? 'i' : '');
		} catch (e) {
			details.textContent = 'invalid regular expression: ' + e.message;
			return null;
		}
	}

	function search() {
		var re = regexp();
		for (var j = 1; j < F.length; j++) {
			F[j].el.classList.toggle('m', !!re && re.test(F[j].name));
		}
		searchBtn.textContent = term ? 'Reset Search' : 'Search';
		searchBtn.classList.toggle('on', !!term);
		icBtn.classList.toggle('on', ignoreCase);
		updateMatched();
	}

	// updateMatched sums the outermost matched frames inside the zoomed frame
	// (nested matches are not counted twice) relative to the zoomed frame,
	// using the exact values rather than pixels.
	function updateMatched() {
		if (!term || !regexp()) {
			matched.textContent = '';
			matched.removeAttribute('data-pct');
			return;
		}
		var z = F[zoomed], list = [];
		for (var j = 1; j < F.length; j++) {
			var f = F[j];
			if (f.el.classList.contains('m') && f.d >= z.d && f.x >= z.x && f.x + f.v <= z.x + z.v) list.push(f);
		}
		list.sort(function (a, b) { return a.x - b.x || a.d - b.d; });
		var sum = 0, end = -1;
		for (var m = 0; m < list.length; m++) {
			if (list[m].x >= end) {
				sum += list[m].v;
				end = list[m].x + list[m].v;
			}
		}
		var pct = z.v > 0 ? 100 * sum / z.v : 0;
		matched.setAttribute('data-pct', pct.toFixed(4));
		matched.textContent = 'Matched: ' + pct.toFixed(2) + '%';
	}

	function pushState() {
		var p = new URLSearchParams(location.search);
		['x', 'd', 's', 'i'].forEach(function (k) { p.delete(k); });
		if (zoomed) {
			p.set('x', F[zoomed].x);
			p.set('d', F[zoomed].d);
		}
		if (term) p.set('s', term);
		if (ignoreCase) p.set('i', '1');
		var q = p.toString();
		try {
			history.pushState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
		} catch (e) {
			// some browsers refuse history changes for files opened from disk
		}
	}

	function fromURL(first) {
		var p = new URLSearchParams(location.search);
		var x = p.get('x'), d = p.get('d'), i = 0;
		if (x !== null && d !== null) {
			for (var j = 0; j < F.length; j++) {
				if (F[j].x === +x && F[j].d === +d) {
					i = j;
					break;
				}
			}
		}
		term = p.has('s') ? p.get('s') : (first ? svg.getAttribute('data-search') || '' : '');
		ignoreCase = p.get('i') === '1';
		zoom(i);
		search();
	}

	function askSearch() {
		var t = prompt('Enter a search term (regexp allowed, eg: ^ext4_)' + (ignoreCase ? ', ignoring case' : '') + ', press Ctrl-I to toggle case sensitivity', term);
		if (t === null) return;
		term = t;
		search();
		pushState();
	}

	framesG.addEventListener('click', function (e) {
		var g = e.target.closest('g.f');
		if (!g) return;
		zoom(g.__i);
		pushState();
	});
	framesG.addEventListener('mouseover', function (e) {
		var g = e.target.closest('g.f');
		if (!g) return;
		var f = F[g.__i];
		details.textContent = f.name + ': ' + f.info;
	});
	framesG.addEventListener('mouseout', function () {
		details.textContent = ' ';
	});
	unzoomBtn.addEventListener('click', function () {
		zoom(0);
		pushState();
	});
	searchBtn.addEventListener('click', function () {
		if (term) {
			term = '';
			search();
			pushState();
		} else {
			askSearch();
		}
	});
	icBtn.addEventListener('click', function () {
		ignoreCase = !ignoreCase;
		search();
		pushState();
	});
	window.addEventListener('keydown', function (e) {
		if ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F') || e.key === 'F3') {
			e.preventDefault();
			askSearch();
		} else if (e.key === 'Escape' && zoomed) {
			zoom(0);
			pushState();
		} else if ((e.ctrlKey || e.metaKey) && (e.key === 'i' || e.key === 'I')) {
			e.preventDefault();
			ignoreCase = !ignoreCase;
			search();
			pushState();
		}
	});
	window.addEventListener('popstate', function () { fromURL(false); });
	fromURL(true);
})();

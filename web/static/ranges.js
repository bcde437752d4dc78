// scorch: time ranges shared by the heatmap, the tracks, the stack chart
// and the workspace. A selection is a list of ranges [from, to] in seconds
// from the capture start (to null: the end); in the URL they are repeated
// from and to parameters, pair by pair, sorted and merged.

// secs is seconds as a short decimal string (ns precision, no trailing zeros).
export function secs(x) {
  let s = (+x).toFixed(9).replace(/0+$/, '');
  if (s.endsWith('.')) s = s.slice(0, -1);
  return s;
}

const num = (s) => (s !== null && s !== undefined && s !== '' && isFinite(+s) ? +s : null);

// parseRanges reads the ranges of prefix ('' or 'compare_') from P.
export function parseRanges(P, prefix) {
  prefix = prefix || '';
  const fs = P.getAll(prefix + 'from'), ts = P.getAll(prefix + 'to');
  const n = Math.max(fs.length, ts.length);
  const out = [];
  for (let i = 0; i < n; i++) {
    const a = num(fs[i]), b = num(ts[i]);
    if (a === null && b === null) continue;
    out.push([a || 0, b]);
  }
  return mergeRanges(out);
}

// mergeRanges sorts ranges and merges those that overlap or touch.
export function mergeRanges(list) {
  const rs = list.filter((r) => r && (r[1] === null || r[1] > r[0])).map((r) => [r[0], r[1]]);
  rs.sort((a, b) => a[0] - b[0]);
  const out = [];
  for (const r of rs) {
    const last = out[out.length - 1];
    if (last && (last[1] === null || r[0] <= last[1] + 1e-9)) {
      if (last[1] !== null) last[1] = r[1] === null ? null : Math.max(last[1], r[1]);
    } else {
      out.push(r);
    }
  }
  return out;
}

// rangeParams is the patch of the URL state for ranges: from and to, one
// of each per range (to written out when several ranges are kept).
export function rangeParams(ranges, prefix, end) {
  prefix = prefix || '';
  const rs = mergeRanges(ranges);
  const p = {};
  p[prefix + 'from'] = rs.map((r) => secs(+r[0].toFixed(9)));
  p[prefix + 'to'] = rs.map((r) => (r[1] === null ? (rs.length > 1 && end ? secs(end) : '') : secs(+r[1].toFixed(9))));
  if (rs.length === 1 && p[prefix + 'to'][0] === '') p[prefix + 'to'] = [];
  return p;
}

// span is the smallest range holding all of them, or null.
export function span(ranges, end) {
  if (!ranges.length) return null;
  const last = ranges[ranges.length - 1][1];
  return [ranges[0][0], last === null ? end : last];
}

// stepRanges moves the ranges by the width of their span, forwards (dir
// 1) or backwards (-1), kept within [0, end].
export function stepRanges(ranges, dir, end) {
  const s = span(ranges, end);
  if (!s || !(end > 0)) return ranges;
  const w = s[1] - s[0];
  if (!(w > 0)) return ranges;
  let d = dir * w;
  if (s[0] + d < 0) d = -s[0];
  if (s[1] + d > end) d = end - s[1];
  if (Math.abs(d) < 1e-9) return ranges;
  return ranges.map((r) => [r[0] + d, (r[1] === null ? end : r[1]) + d]);
}

// inRanges says whether time t is in one of the ranges (all when empty).
export function inRanges(ranges, t) {
  if (!ranges.length) return true;
  for (const r of ranges) if (t >= r[0] && (r[1] === null || t < r[1])) return true;
  return false;
}

// describe is the ranges as a person reads them.
export function describe(ranges) {
  if (!ranges.length) return 'whole capture';
  const one = (r) => secs(+r[0].toFixed(4)) + '–' + (r[1] === null ? 'end' : secs(+r[1].toFixed(4))) + ' s';
  return ranges.map(one).join(' + ');
}

// roundTime rounds t to a step of about px seconds (1, 2 or 5 times a
// power of ten), so that a range picked with the mouse reads as the axis.
export function roundTime(t, px) {
  if (!(px > 0)) return t;
  const p10 = Math.pow(10, Math.floor(Math.log10(px)));
  const q = [1, 2, 5, 10].map((m) => m * p10).find((x) => x >= px);
  return +(Math.round(t / q) * q).toFixed(9);
}

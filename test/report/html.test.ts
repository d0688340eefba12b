import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, renderReport, scoreBins, type ReportData, type ReportPair } from '../../src/report/html.js';
import { ConfigError } from '../../src/errors.js';

const EVIL = '<script>alert(1)</script>';
const THUMB = 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2w==';

function pair(score: number, name = `up-${score}`): ReportPair {
  return { upstream: name, downstream: `down-${score}`, downstreamSource: 'cifar10-test', score, view: 'full', reason: 'cosine' };
}

function data(over: Partial<ReportData> = {}): ReportData {
  return {
    title: 'Contamination report',
    generatedAt: '2025-01-01T00:00:00Z',
    modelId: 'sscd-vit-b16',
    threshold: 0.9,
    counts: { upstream: 1000, downstream: 200, matched: 3, kept: 997, errors: 2 },
    perDownstream: [{ source: 'cifar10-test', images: 200, contaminated: 3, matches: 4 }],
    pairs: [pair(0.95), pair(0.99), pair(0.91)],
    candidateScores: [0.5, 0.51, 0.7, 0.91, 0.95, 0.99],
    errorsByReason: [{ reason: 'decode failed', count: 2 }],
    ...over,
  };
}

const count = (html: string, needle: string): number => html.split(needle).length - 1;

test('escapeHtml escapes all five special characters', () => {
  assert.equal(escapeHtml(`<a href="x">&'</a>`), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
});

test('user strings never appear unescaped anywhere on the page', () => {
  const html = renderReport(data({
    title: EVIL,
    modelId: EVIL,
    generatedAt: EVIL,
    perDownstream: [{ source: EVIL, images: 1, contaminated: 1, matches: 1 }],
    pairs: [{ ...pair(0.97, `${EVIL}\n"quoted" & 'single'.jpg`), downstream: EVIL, downstreamSource: EVIL, view: EVIL, reason: EVIL }],
    errorsByReason: [{ reason: EVIL, count: 1 }],
  }));
  assert.ok(!html.includes('<script'), 'no script tag');
  assert.ok(!html.includes(EVIL));
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('&quot;quoted&quot; &amp; &#39;single&#39;.jpg'));
});

test('the page is self-contained: no external URLs, no scripts', () => {
  const html = renderReport(data({ pairs: [{ ...pair(0.97), upstreamThumb: THUMB, downstreamThumb: THUMB }] }));
  assert.doesNotMatch(html, /(src|href)="(?!data:)/);
  assert.doesNotMatch(html, /<script|<link/i);
  assert.equal(count(html, `src="${THUMB}"`), 2);
});

test('thumbnails that are not base64 image data URIs are not rendered', () => {
  const bad = ['javascript:alert(1)', 'https://example.com/x.jpg', 'data:text/html;base64,PHA+', `data:image/jpeg;base64,AA" onerror="x`];
  const pairs = bad.map((t, i) => ({ ...pair(0.9 + i / 100), upstreamThumb: t, downstreamThumb: t }));
  const html = renderReport(data({ pairs }));
  assert.equal(count(html, '<img'), 0);
  assert.equal(count(html, 'no preview'), 8);
});

test('pairs are rendered by score, descending', () => {
  const html = renderReport(data({ pairs: [pair(0.91), pair(0.99), pair(0.95), pair(0.93)] }));
  const order = [...html.matchAll(/<article class="pair"><header><b>([\d.]+)<\/b>/g)].map((m) => m[1]);
  assert.deepEqual(order, ['0.9900', '0.9500', '0.9300', '0.9100']);
});

test('pairs over maxPairs are omitted and counted, keeping the top scores', () => {
  const pairs = Array.from({ length: 12 }, (_, i) => pair(0.9 + i / 200));
  const html = renderReport(data({ pairs, maxPairs: 5 }));
  assert.equal(count(html, '<article class="pair">'), 5);
  assert.match(html, /7 more pairs omitted \(showing the top 5 by score\)/);
  assert.ok(html.includes('up-0.955') && !html.includes('up-0.9<'));
  assert.doesNotMatch(renderReport(data()), /omitted/);
});

test('maxPairs defaults to 500 and rejects bad values', () => {
  const pairs = Array.from({ length: 501 }, (_, i) => pair(i / 1000));
  assert.match(renderReport(data({ pairs })), /1 more pairs omitted/);
  assert.throws(() => renderReport(data({ maxPairs: -1 })), ConfigError);
  assert.throws(() => renderReport(data({ maxPairs: 1.5 })), /report\.maxPairs/);
});

test('the histogram has one bar per 0.02 bin from the lowest score to 1.0', () => {
  const cases: [number[], number][] = [
    [[0.5, 0.7, 0.99], 25], // 0.50 .. 1.00
    [[0.9, 1.0], 5], // 0.90 .. 1.00; 1.0 lands in the last bin
    [[0.81, 0.95], 10], // 0.80 .. 1.00
    [[1.0], 1],
    [[-0.1, 0.2], 55],
  ];
  for (const [scores, bars] of cases) {
    const html = renderReport(data({ candidateScores: scores }));
    assert.equal(count(html, '<g class="bin">'), bars, `scores ${scores}`);
    assert.equal(scoreBins(scores, 0.9).length, bars);
  }
  assert.match(renderReport(data({ candidateScores: [] })), /No candidate scores/);
});

test('histogram bins split counts at the threshold and label them', () => {
  const bins = scoreBins([0.5, 0.5, 0.895, 0.9, 0.905, 1.0, Number.NaN], 0.9);
  assert.deepEqual(bins.at(-6), { from: 0.88, to: 0.9, below: 1, matched: 0 });
  assert.deepEqual(bins.at(-5), { from: 0.9, to: 0.92, below: 0, matched: 2 });
  assert.deepEqual(bins.at(-1), { from: 0.98, to: 1, below: 0, matched: 1 });
  assert.equal(bins.reduce((n, b) => n + b.below + b.matched, 0), 6);
  const html = renderReport(data({ candidateScores: [0.5, 0.5, 0.9, 0.95] }));
  assert.match(html, /<text[^>]*>2<\/text>/);
  assert.equal(count(html, 'class="threshold"'), 1);
  assert.match(html, /fill="#d1495b"/);
  assert.match(html, /fill="#8fa8c8"/);
});

test('the contamination table shows counts and percentages', () => {
  const html = renderReport(data({
    perDownstream: [
      { source: 'imagenet-val', images: 50_000, contaminated: 1234, matches: 2000 },
      { source: 'empty-set', images: 0, contaminated: 0, matches: 0 },
      { source: 'cifar10-test', images: 8, contaminated: 1, matches: 1 },
    ],
  }));
  assert.match(html, /<td>imagenet-val<\/td><td class="num">50,000<\/td><td class="num">1,234<\/td><td class="num">2.47%<\/td>/);
  assert.match(html, /<td>cifar10-test<\/td><td class="num">8<\/td><td class="num">1<\/td><td class="num">12.50%<\/td>/);
  assert.match(html, /<td>empty-set<\/td>.*<td class="num">—<\/td>/);
  assert.match(html, /<td>All sets<\/td><td class="num">50,008<\/td><td class="num">1,235<\/td><td class="num">2.47%<\/td>/);
});

test('the header and errors table show the counts', () => {
  const html = renderReport(data({ errorsByReason: [{ reason: 'too small', count: 1 }, { reason: 'decode failed', count: 40 }] }));
  assert.match(html, /Model <code>sscd-vit-b16<\/code> · threshold 0\.9000/);
  assert.match(html, /<dt>Upstream images<\/dt><dd>1,000<\/dd>/);
  assert.ok(html.indexOf('decode failed') < html.indexOf('too small'), 'errors sorted by count');
  assert.match(html, /<td>Total<\/td><td class="num">41<\/td>/);
  assert.match(renderReport(data({ errorsByReason: [] })), /No errors\./);
});

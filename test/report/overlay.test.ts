import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { composeOverlay, decodeSquare, overlayDataUri, OUTSIDE_DIM, type OverlayTransform } from '../../src/report/overlay.js';
import { renderReportFile, type PairRow, type Summary } from '../../src/report/write.js';
import { renderReport } from '../../src/report/html.js';

const FIXTURES = join(process.cwd(), 'fixtures', 'downstream');
/** 256×256 photos: enough detail for misalignment to show at the overlay's 96 px. */
const DOWN = join(FIXTURES, 'test_03.png');
const OTHER = join(FIXTURES, 'test_07.png');
const SIDE = 96;
const RAD10 = (10 * Math.PI) / 180;

let dir: string;
const path = (name: string) => join(dir, name);

/** Planted copies of DOWN, each with the transform that maps it (see overlay.ts for the geometry). */
const COPIES: { name: string; view: number; right: OverlayTransform; wrong: OverlayTransform; wrongView?: number; overlap: number }[] = [
  // The centre half, enlarged: the copy is a 2× crop.
  { name: 'crop.png', view: 0, right: { zoom: 2, angle: 0, shiftX: 0, shiftY: 0 }, wrong: { zoom: 1, angle: 0, shiftX: 0, shiftY: 0 }, overlap: 1 },
  // Rotated 10° clockwise, canvas expanded: the photo appears smaller by cos + sin.
  { name: 'rot10.png', view: 0, right: { zoom: 1 / (Math.cos(RAD10) + Math.sin(RAD10)), angle: 10, shiftX: 0, shiftY: 0 },
    wrong: { zoom: 1 / (Math.cos(RAD10) + Math.sin(RAD10)), angle: -10, shiftX: 0, shiftY: 0 }, overlap: 1 / (Math.cos(RAD10) + Math.sin(RAD10)) ** 2 },
  // A 128-px border left and below: zoom 2/3, the photo's centre at (+1/6, −1/6) of the side.
  { name: 'border.png', view: 0, right: { zoom: 2 / 3, angle: 0, shiftX: 1 / 6, shiftY: -1 / 6 },
    wrong: { zoom: 2 / 3, angle: 0, shiftX: -1 / 6, shiftY: 1 / 6 }, overlap: 4 / 9 },
  // Mirrored: lines up in view 4 (mirror) with the identity, not in view 0.
  { name: 'mirror.png', view: 4, right: { zoom: 1, angle: 0, shiftX: 0, shiftY: 0 }, wrong: { zoom: 1, angle: 0, shiftX: 0, shiftY: 0 }, wrongView: 0, overlap: 1 },
];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'neardup-overlay-'));
  await sharp(DOWN).extract({ left: 64, top: 64, width: 128, height: 128 }).resize(256, 256).png().toFile(path('crop.png'));
  await sharp(DOWN).rotate(10, { background: '#404040' }).png().toFile(path('rot10.png'));
  await sharp(DOWN).extend({ left: 128, bottom: 128, background: '#ffffff' }).png().toFile(path('border.png'));
  await sharp(DOWN).flop().png().toFile(path('mirror.png'));
  await writeFile(path('not-an-image.jpg'), 'hello, I am text');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Mean |upstream − warped downstream| over the aligned region: the overlay's magenta/green disagreement. */
function disagreement(up: Uint8Array, down: Uint8Array, view: number, t: OverlayTransform): { mad: number; overlap: number } {
  const o = composeOverlay(up, down, SIDE, view, t);
  let sum = 0, n = 0;
  for (let p = 0; p < SIDE * SIDE; p++) {
    if (!o.inside[p]) continue;
    assert.equal(o.rgb[p * 3], o.rgb[p * 3 + 2], 'upstream in red and blue alike');
    sum += Math.abs(o.rgb[p * 3]! - o.rgb[p * 3 + 1]!);
    n++;
  }
  return { mad: n ? sum / n : Infinity, overlap: o.overlap };
}

async function square(p: string): Promise<Uint8Array> {
  const px = await decodeSquare(p, SIDE);
  assert.ok(px, p);
  return px;
}

test('a copy lines up under its transform and does not under a wrong one', async () => {
  const down = await square(DOWN);
  for (const c of COPIES) {
    const up = await square(path(c.name));
    const right = disagreement(up, down, c.view, c.right);
    const wrong = disagreement(up, down, c.wrongView ?? c.view, c.wrong);
    assert.ok(Math.abs(right.overlap - c.overlap) < 0.05, `${c.name}: overlap ${right.overlap} ≈ ${c.overlap}`);
    assert.ok(right.mad < 12, `${c.name}: aligned disagreement ${right.mad.toFixed(1)} is small`);
    assert.ok(wrong.mad > 2.5 * right.mad && wrong.mad > 20, `${c.name}: wrong transform ${wrong.mad.toFixed(1)} vs right ${right.mad.toFixed(1)}`);
  }
});

test('a near miss already shows: the crop transform off by 3% of the side or 10% in zoom', async () => {
  const up = await square(path('crop.png'));
  const down = await square(DOWN);
  const right = disagreement(up, down, 0, COPIES[0]!.right);
  for (const near of [{ ...COPIES[0]!.right, shiftX: 0.03 }, { ...COPIES[0]!.right, zoom: 1.8 }]) {
    const miss = disagreement(up, down, 0, near);
    assert.ok(miss.mad > 2.5 * right.mad, `near miss ${miss.mad.toFixed(1)} vs right ${right.mad.toFixed(1)}`);
  }
});

test('a different photo under the same transform does not line up', async () => {
  const up = await square(path('crop.png'));
  const right = disagreement(up, await square(DOWN), 0, COPIES[0]!.right);
  const other = disagreement(up, await square(OTHER), 0, COPIES[0]!.right);
  assert.ok(other.mad > 2.5 * right.mad && other.mad > 20, `other photo ${other.mad.toFixed(1)} vs copy ${right.mad.toFixed(1)}`);
});

test('outside the aligned region the upstream image is dimmed grey', async () => {
  const up = await square(path('border.png'));
  const o = composeOverlay(up, await square(DOWN), SIDE, 0, COPIES[2]!.right);
  // The border is white: dimmed it reads about 255 × 0.35 in all three channels.
  const corner = (SIDE - 4) * SIDE + 4; // bottom left lies in the border
  assert.equal(o.inside[corner], 0);
  const expected = Math.round(255 * OUTSIDE_DIM);
  for (let ch = 0; ch < 3; ch++) assert.ok(Math.abs(o.rgb[corner * 3 + ch]! - expected) <= 2, `channel ${ch}`);
  const topRight = 4 * SIDE + SIDE - 4;
  assert.equal(o.inside[topRight], 1);
});

/** The overlay's pixels from its data URI (WebP or PNG). */
async function decodeUri(uri: string | undefined): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  assert.ok(uri, 'an overlay');
  const m = /^data:image\/(png|webp);base64,([A-Za-z0-9+/]+={0,2})$/.exec(uri);
  assert.ok(m, uri.slice(0, 40));
  const { data, info } = await sharp(Buffer.from(m[2]!, 'base64')).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Mean |red − green| over the whole decoded overlay (outside the overlap it is grey: 0). */
function magentaGreen(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 3) sum += Math.abs(data[i]! - data[i + 1]!);
  return sum / (data.length / 3);
}

test('overlayDataUri encodes the composed pixels, nearly unchanged, as a WebP or PNG data URI', async () => {
  const c = COPIES[1]!;
  const uri = await overlayDataUri(path(c.name), DOWN, c.view, c.right);
  const img = await decodeUri(uri);
  assert.deepEqual([img.width, img.height, img.channels], [SIDE, SIDE, 3]);
  const expected = composeOverlay(await square(path(c.name)), await square(DOWN), SIDE, c.view, c.right).rgb;
  let err = 0;
  for (let i = 0; i < img.data.length; i++) err += Math.abs(img.data[i]! - expected[i]!);
  assert.ok(err / img.data.length < 6, `encoding error ${(err / img.data.length).toFixed(2)} per channel`);
  // What the reviewer sees: the encoded overlay of the copy is nearly grey, a wrong alignment's is not.
  const right = magentaGreen(img.data);
  const wrong = magentaGreen((await decodeUri(await overlayDataUri(path(c.name), DOWN, c.view, c.wrong))).data);
  assert.ok(wrong > 3 * right, `encoded: wrong ${wrong.toFixed(1)} vs right ${right.toFixed(1)}`);
  assert.equal(await overlayDataUri(path(c.name), DOWN, c.view, c.right), uri, 'deterministic: a rebuilt report is the same page');
  assert.equal((await decodeUri(await overlayDataUri(path(c.name), DOWN, c.view, c.right, 32))).width, 32);
});

test('an unreadable file or an unusable transform gives undefined, never a throw', async () => {
  const t = COPIES[0]!.right;
  assert.equal(await overlayDataUri(path('missing.png'), DOWN, 0, t), undefined);
  assert.equal(await overlayDataUri(path('crop.png'), path('missing.png'), 0, t), undefined);
  assert.equal(await overlayDataUri(path('not-an-image.jpg'), DOWN, 0, t), undefined);
  assert.equal(await overlayDataUri(dir, DOWN, 0, t), undefined);
  assert.equal(await overlayDataUri(path('crop.png'), DOWN, 0, { ...t, zoom: 0 }), undefined);
  assert.equal(await overlayDataUri(path('crop.png'), DOWN, 0, { ...t, angle: Number.NaN }), undefined);
  assert.equal(await overlayDataUri(path('crop.png'), DOWN, 9, t), undefined);
});

function summary(): Summary {
  return {
    neardup: 'test', model: { id: 'm', name: 'm', sha256: '', runtime: 'cpu' }, threshold: 0.5, floor: 0.3, k: 5, decidedBy: 'verified',
    counts: { upstream: 3, upstreamOk: 3, downstream: 1, downstreamOk: 1, errors: 0, candidates: 3, matches: 3, exactDuplicates: 1, removed: 3, kept: 0 },
    sources: [], perDownstream: [{ source: 'fixtures', images: 1, contaminated: 1, matches: 3 }],
    errors: { byReason: [], files: [], filesOmitted: 0 }, timings: {}, catalog: 'catalog.sqlite',
  };
}

test('report.html shows the overlay, the verified score and the reason for a verified pair, and no overlay otherwise', async () => {
  const out = path('report');
  const c = COPIES[1]!;
  const reason = 'aligned: zoom 0.85, rotated 10°, 60% overlap, correlation 0.83 ≥ 0.5 (cosine 0.7121) <&>';
  const pairs: PairRow[] = [
    { upstream: path(c.name), downstream: DOWN, downstreamSource: 'fixtures', score: 0.7121, view: 0, kind: 'embedding', reason,
      verifyScore: 0.83, transform: { ...c.right, overlap: 0.6 } },
    { upstream: path('exact.png'), downstream: DOWN, downstreamSource: 'fixtures', score: 1, view: 0, kind: 'exact',
      reason: 'exact duplicate: byte-identical image data', verifyScore: null, transform: null },
    // Verified, but the upstream file is gone: the page is still written, without that overlay.
    { upstream: path('gone.png'), downstream: DOWN, downstreamSource: 'fixtures', score: 0.9, view: 0, kind: 'embedding', reason: 'aligned: gone',
      verifyScore: 0.7, transform: { ...c.right, overlap: 0.6 } },
  ];
  await sharp(DOWN).png().toFile(path('exact.png'));
  await mkdir(out); // writeReport makes the folder; renderReportFile writes into it
  await renderReportFile(out, summary(), pairs, [0.7121, 1, 0.9]);
  const html = await readFile(join(out, 'report.html'), 'utf8');
  const cards = [...html.matchAll(/<article class="pair">.*?<\/article>/gs)].map((m) => m[0]);
  assert.equal(cards.length, 3);
  const card = (needle: string) => cards.find((x) => x.includes(needle))!;
  const verified = card('correlation 0.83');
  assert.match(verified, /<figure class="overlay"><img src="data:image\/(png|webp);base64,[A-Za-z0-9+/]+={0,2}"/);
  assert.match(verified, /overlay \(aligned\)/);
  assert.match(verified, /verified 0\.830/);
  assert.ok(verified.includes(`<p class="reason">aligned: zoom 0.85, rotated 10°, 60% overlap, correlation 0.83 ≥ 0.5 (cosine 0.7121) &lt;&amp;&gt;</p>`));
  assert.equal((verified.match(/<img /g) ?? []).length, 3, 'two thumbnails and the overlay');
  const exact = card('exact duplicate');
  assert.ok(!exact.includes('class="overlay"') && !exact.includes('overlay (aligned)') && !/verified \d/.test(exact), 'no overlay, no verified score');
  assert.equal((exact.match(/<img /g) ?? []).length, 2);
  const gone = card('aligned: gone');
  assert.doesNotMatch(gone, /class="overlay"/);
  assert.match(gone, /no preview/);
  assert.equal((html.match(/class="overlay"/g) ?? []).length, 1);
  assert.match(html, /<div class="pairs overlays">/);
  assert.doesNotMatch(html, /(src|href)="(?!data:)/);
});

test('an overlay that is not a base64 image data URI is not rendered', () => {
  const base = { upstream: 'u.jpg', downstream: 'd.png', downstreamSource: 's', score: 0.9, view: 'identity', reason: 'aligned', verifyScore: 0.8 };
  const bad = ['javascript:alert(1)', 'https://example.com/x.png', 'data:text/html;base64,PHA+', 'data:image/png;base64,AA" onerror="x'];
  const html = renderReport({
    title: 't', generatedAt: 'now', modelId: 'm', threshold: 0.5, counts: { upstream: 1, downstream: 1, matched: 1, kept: 0, errors: 0 },
    perDownstream: [], candidateScores: [], errorsByReason: [], pairs: bad.map((overlay, i) => ({ ...base, upstream: `u${i}.jpg`, overlay })),
  });
  assert.ok(!html.includes('class="overlay"') && !html.includes('onerror') && !html.includes('example.com'));
  assert.match(html, /<div class="pairs">/);
  assert.equal((html.match(/verified 0\.800/g) ?? []).length, bad.length, 'the verified score is shown without an overlay too');
});

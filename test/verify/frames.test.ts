/**
 * Copies pasted smaller, off-centre, on a plain canvas: the coarse search resamples the upstream
 * image about its centre, so such a copy aligns only once the verifier also looks inside the
 * upstream image's uniform borders (PairVerifier's second frame). And copies cropped to a quarter
 * off-centre, which align against the downstream crop view the embedding retrieved them through.
 * Real audits over fixture photos: every copy must verify, with the transform restated for the
 * full frames.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseCsv } from '../../src/report/csv.js';
import { removeDir, runCli, tmpDir } from '../helpers/cli.js';
import { FIXTURE_DOWNSTREAM, imagesUnder } from '../helpers/corpus.js';

const PHOTOS = imagesUnder(FIXTURE_DOWNSTREAM).slice(0, 6);
const CANVAS = 256;
/** Scale of the pasted copy and where its top-left corner lands, as shares of the canvas side. */
const PLACES = [[0.5, 0.04, 0.06], [0.55, 0.4, 0.05], [0.5, 0.45, 0.45], [0.6, 0.05, 0.38], [0.5, 0.3, 0.2], [0.45, 0.5, 0.5]] as const;
const FILLS = ['#000000', '#ffffff', '#7a4f9e'];

/**
 * Each fixture photo as d<i>.png downstream and `copy(bytes, i)` of it as u<i>.png upstream,
 * audited with the defaults: the rows of matches.csv.
 */
async function auditCopies(dir: string, copy: (bytes: Buffer, i: number) => Promise<Buffer>): Promise<Record<string, string>[]> {
  mkdirSync(join(dir, 'down'));
  mkdirSync(join(dir, 'up'));
  for (const [i, rel] of PHOTOS.entries()) {
    const bytes = readFileSync(join(FIXTURE_DOWNSTREAM, rel));
    await sharp(bytes).toFile(join(dir, 'down', `d${i}.png`));
    await sharp(await copy(bytes, i)).toFile(join(dir, 'up', `u${i}.png`));
  }
  const r = await runCli(['audit', '--upstream', join(dir, 'up'), '--downstream', join(dir, 'down'), '--out', join(dir, 'out'), '-q']);
  assert.equal(r.code, 0, r.stderr);
  const [header, ...records] = parseCsv(readFileSync(join(dir, 'out', 'matches.csv'), 'utf8'));
  return records.map((rec) => Object.fromEntries(header!.map((h, k) => [h, rec[k]!])));
}

describe('a copy pasted smaller and off-centre on a plain canvas', () => {
  let dir = '';
  let rows: Record<string, string>[] = [];
  before(async () => {
    dir = await tmpDir('neardup-frames-');
    rows = await auditCopies(dir, async (bytes, i) => {
      const [scale, x, y] = PLACES[i]!;
      const side = Math.round(CANVAS * scale);
      const pasted = await sharp(bytes).resize(side, side, { fit: 'fill' }).png().toBuffer();
      return sharp({ create: { width: CANVAS, height: CANVAS, channels: 3, background: FILLS[i % FILLS.length]! } })
        .composite([{ input: pasted, left: Math.round(x * CANVAS), top: Math.round(y * CANVAS) }]).png().toBuffer();
    });
  });
  after(() => removeDir(dir));

  test('every copy verifies against its original', () => {
    const found = new Map(rows.map((r) => [r.upstream!.split('/').pop(), r.downstream!.split('/').pop()]));
    for (let i = 0; i < PHOTOS.length; i++) assert.equal(found.get(`u${i}.png`), `d${i}.png`, `u${i}.png: ${JSON.stringify(rows.filter((r) => r.upstream!.endsWith(`u${i}.png`)))}`);
  });

  test('the transform is stated in the full frame: zoom is the paste scale, the shift where it landed', () => {
    for (const r of rows) {
      const i = Number(r.upstream!.split('/').pop()!.slice(1, -4));
      const [scale, x, y] = PLACES[i]!;
      assert.ok(Math.abs(Number(r.zoom) - scale) < 0.05, `u${i}: zoom ${r.zoom}, pasted at ${scale}`);
      // The pasted image's centre relative to the canvas centre, as shares of the side.
      assert.ok(Math.abs(Number(r.shift_x) - (x + scale / 2 - 0.5)) < 0.05, `u${i}: shift_x ${r.shift_x}, expected ${(x + scale / 2 - 0.5).toFixed(3)}`);
      assert.ok(Math.abs(Number(r.shift_y) - (y + scale / 2 - 0.5)) < 0.05, `u${i}: shift_y ${r.shift_y}, expected ${(y + scale / 2 - 0.5).toFixed(3)}`);
    }
  });
});

/** Quarter-area crops (half the side, aspect jittered) and where their top-left corner lies, as shares of the photo's side. */
const CROPS_AT = [[0.5, 0.5, 0.06, 0.1], [0.55, 0.45, 0.4, 0.04], [0.5, 0.5, 0.45, 0.47], [0.45, 0.55, 0.1, 0.38], [0.5, 0.5, 0.3, 0.18], [0.5, 0.45, 0.02, 0.5]] as const;

describe('a copy cropped to a quarter of the area, off-centre', () => {
  let dir = '';
  let rows: Record<string, string>[] = [];
  before(async () => {
    dir = await tmpDir('neardup-crop-frames-');
    rows = await auditCopies(dir, async (bytes, i) => {
      const { width, height } = await sharp(bytes).metadata();
      const [w, h, x, y] = CROPS_AT[i]!;
      const box = { left: Math.round(x * width!), top: Math.round(y * height!), width: Math.round(w * width!), height: Math.round(h * height!) };
      return sharp(bytes).extract(box).png().toBuffer();
    });
  });
  after(() => removeDir(dir));

  test('every copy verifies against its original', () => {
    const found = new Map(rows.map((r) => [r.upstream!.split('/').pop(), r.downstream!.split('/').pop()]));
    // Measured: 6 of 6 with the crop frame; without it 5 (u5, cropped at the left edge, did not align).
    for (let i = 0; i < PHOTOS.length; i++) assert.equal(found.get(`u${i}.png`), `d${i}.png`, `u${i}.png: ${JSON.stringify(rows.filter((r) => r.upstream!.endsWith(`u${i}.png`)))}`);
  });

  test('the transform is stated for the whole original: zoom 2, shifted to where the crop was', () => {
    for (const r of rows) {
      const i = Number(r.upstream!.split('/').pop()!.slice(1, -4));
      const [w, h, x, y] = CROPS_AT[i]!;
      assert.ok(Math.abs(Number(r.zoom) - 1 / Math.sqrt(w * h)) < 0.2, `u${i}: zoom ${r.zoom}, cropped to ${w}×${h}`);
      // The original's centre, in the crop's frame, relative to its centre: (0.5 − x) / w − 0.5.
      assert.ok(Math.abs(Number(r.shift_x) - ((0.5 - x) / w - 0.5)) < 0.08, `u${i}: shift_x ${r.shift_x}, expected ${((0.5 - x) / w - 0.5).toFixed(3)}`);
      assert.ok(Math.abs(Number(r.shift_y) - ((0.5 - y) / h - 0.5)) < 0.08, `u${i}: shift_y ${r.shift_y}, expected ${((0.5 - y) / h - 0.5).toFixed(3)}`);
    }
  });
});

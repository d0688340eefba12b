import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseCsv } from '../../src/report/csv.js';
import { applyTransform, FAMILIES, mulberry32, type FamilyName } from '../../src/eval/transforms.js';
import { packageRoot } from '../../src/util/package-root.js';

// The families added after the original ten; the ten are covered by test/fixtures/transforms.test.ts.
const ORIGINAL = ['crop50', 'shift', 'rot90', 'rotsmall', 'squeeze', 'colour', 'grayscale', 'jpeg', 'mirror', 'combo'];
const ADDED: FamilyName[] = ['shiftfill', 'rotexpand', 'border', 'zoomout', 'perspective', 'overlay', 'blur', 'crop25', 'combo2'];
// Added with the held-out reports of missed edits: a real photo around the copy, sensor noise, pixelation,
// rotation inside the same canvas (the default of torchvision's RandomRotation and OpenCV's warpAffine),
// and a collage with the copy as one tile.
const LATER: FamilyName[] = ['zoomphoto', 'noise', 'pixelate', 'rotinplace', 'mosaic'];
const W = 120;
const H = 80;

interface Raw { data: Buffer; width: number; height: number }

const fixtures = join(packageRoot(), 'fixtures');

async function rgb(input: Buffer | sharp.Sharp): Promise<Raw> {
  const { data, info } = await (Buffer.isBuffer(input) ? sharp(input) : input).removeAlpha().toColourspace('srgb').raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

const pixel = (r: Raw, x: number, y: number): number[] => [...r.data.subarray((y * r.width + x) * 3, (y * r.width + x) * 3 + 3)];
const fromHex = (hex: string | number): number[] => [1, 3, 5].map((i) => parseInt(String(hex).slice(i, i + 2), 16));
const clampTo = (v: number, hi: number): number => Math.min(hi - 1, Math.max(0, v));
const rawSharp = (r: Raw): sharp.Sharp => sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } });
/** Mean absolute difference between horizontal neighbours: high-frequency content. */
function roughness(r: Raw): number {
  let sum = 0;
  for (let y = 0; y < r.height; y++) for (let i = 0; i < (r.width - 1) * 3; i++) sum += Math.abs(r.data[y * r.width * 3 + i + 3] - r.data[y * r.width * 3 + i]);
  return sum / (r.height * (r.width - 1) * 3);
}

let wide: Buffer; // a real photo (fixture test_03, 256x256) squashed to 120x80 so width and height differ
let wideRaw: Raw;
let bright: Buffer; // the same photo with no dark pixels, so any black in a copy is padding
let big: Buffer; // the 256x256 photo itself, so overlay text is large enough to measure

before(async () => {
  big = await readFile(join(fixtures, 'downstream', 'test_03.png'));
  wide = await sharp(big).resize(W, H, { fit: 'fill' }).png().toBuffer();
  wideRaw = await rgb(wide);
  bright = await sharp(wide).linear(0.5, 120).png().toBuffer();
});

test('FAMILIES keeps the original ten first, then the nine and the four added later, each with a doc line', () => {
  const names = Object.keys(FAMILIES);
  assert.deepEqual(names, [...ORIGINAL, ...ADDED, ...LATER]);
  for (const [name, doc] of Object.entries(FAMILIES)) assert.match(doc, /^\S[^\n]+$/, name);
  for (const name of [...ADDED, ...LATER]) assert.match(FAMILIES[name], /\d+(\.\d+)?–\d+|~\d+/, `${name} states its range`);
});

test('the committed planted copies in fixtures/ regenerate byte for byte (the original families are unchanged)', async () => {
  const rows = parseCsv(await readFile(join(fixtures, 'ground-truth.csv'), 'utf8')).slice(1).filter((r) => r[2] !== 'exact');
  assert.equal(rows.length, 12);
  for (const [upstream, downstream, family] of rows) {
    const position = Number(/test_(\d+)\.png/.exec(downstream)![1]) - 1;
    // scripts/make-fixtures.ts seeds each planted copy with SEED + 1000 + downstream position.
    const copy = await applyTransform(await readFile(join(fixtures, 'downstream', downstream)), family as FamilyName, mulberry32(20240611 + 1000 + position));
    assert.ok(copy.data.equals(await readFile(join(fixtures, 'upstream', upstream))), `${family} -> ${upstream}`);
  }
});

test('every new family is deterministic, uses the promised encoding and output size', async () => {
  for (const family of [...ADDED, ...LATER]) {
    const one = await applyTransform(wide, family, mulberry32(11), { backdrop: big });
    const two = await applyTransform(wide, family, mulberry32(11), { backdrop: big });
    const other = await applyTransform(wide, family, mulberry32(987), { backdrop: big });
    assert.ok(one.data.equals(two.data), `${family} is deterministic`);
    assert.deepEqual(one.params, two.params, family);
    assert.ok(!one.data.equals(other.data), `${family} depends on the seed`);
    assert.equal(one.ext, family === 'combo2' ? 'jpg' : 'png', family);
    const meta = await sharp(one.data).metadata();
    assert.equal(meta.format, one.ext === 'jpg' ? 'jpeg' : 'png', family);
    assert.equal(meta.channels, 3, `${family} has no alpha`);
    if (family === 'border') assert.ok(meta.width! > W && meta.height! > H, 'border grows the canvas');
    else if (family === 'crop25' || family === 'combo2') assert.ok(meta.width! < W && meta.height! < H, `${family} crops`);
    else if (family === 'mosaic') assert.deepEqual([meta.width, meta.height], [W * Number(one.params.columns), H * Number(one.params.rows)], 'mosaic tiles the canvas');
    else assert.deepEqual([meta.width, meta.height], [W, H], `${family} keeps the size`);
  }
});

test('shiftfill moves the content pixel-exactly and fills the band with each of the five fills', async () => {
  const seen = new Set<string | number>();
  for (let seed = 1; seed <= 30; seed++) {
    const { data, params } = await applyTransform(wide, 'shiftfill', mulberry32(seed));
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [W, H]);
    const offset = Number(params.offset);
    const size = params.axis === 'x' ? W : H;
    assert.ok(Math.abs(offset) >= 0.1 * size - 1 && Math.abs(offset) <= 0.2 * size + 1, `offset ${offset}`);
    seen.add(params.fill);
    const [dx, dy] = params.axis === 'x' ? [offset, 0] : [0, offset];
    const blurred = params.fill === 'blur' ? await rgb(rawSharp(wideRaw).blur(Number(params.sigma))) : undefined;
    let bandVaries = false;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const [sx, sy] = [x - dx, y - dy];
        const got = pixel(out, x, y);
        if (sx >= 0 && sx < W && sy >= 0 && sy < H) {
          assert.deepEqual(got, pixel(wideRaw, sx, sy), `content at ${x},${y} (${params.fill})`);
          continue;
        }
        let expected: number[];
        if (params.fill === 'copy') expected = pixel(wideRaw, clampTo(sx, W), clampTo(sy, H));
        else if (blurred) expected = pixel(blurred, x, y);
        else expected = params.fill === 'white' ? [255, 255, 255] : params.fill === 'grey' ? [128, 128, 128] : fromHex(params.colour);
        assert.deepEqual(got, expected, `band at ${x},${y} (${params.fill})`);
        if (blurred && got.join() !== pixel(out, 0, 0).join()) bandVaries = true;
      }
    }
    if (blurred) assert.ok(bandVaries && Number(params.sigma) === 8 * W / 64, 'the blurred band is an image, not a colour');
  }
  assert.deepEqual([...seen].sort(), ['blur', 'colour', 'copy', 'grey', 'white']);
});

test('rotexpand keeps the size and the black corners of the expanded canvas', async () => {
  for (const seed of [1, 5, 9, 40]) {
    const { data, params } = await applyTransform(bright, 'rotexpand', mulberry32(seed));
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [W, H]);
    const angle = Math.abs(Number(params.angle));
    assert.ok(angle >= 8 && angle <= 25, `angle ${angle}`);
    for (const [x, y] of [[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]]) {
      assert.ok(Math.max(...pixel(out, x, y)) < 40, `corner ${x},${y} is black`);
    }
    assert.ok(Math.min(...pixel(out, W / 2, H / 2)) >= 100, 'the centre is the photo');
    let dark = 0;
    for (let i = 0; i < out.data.length; i += 3) if (Math.max(out.data[i], out.data[i + 1], out.data[i + 2]) < 60) dark++;
    // The corners are what the rotated image leaves of its bounding box.
    const expected = 1 - (W * H) / (Number(params.expandedWidth) * Number(params.expandedHeight));
    assert.ok(Math.abs(dark / (W * H) - expected) < 0.05, `dark ${dark / (W * H)}, expected ${expected}`);
  }
});

test('border pads each side by 5-20% in one colour and keeps the original pixel-exactly in the middle', async () => {
  const colours = new Set<string>();
  for (const seed of [1, 4, 7, 10, 13, 16, 19]) {
    const { data, params } = await applyTransform(wide, 'border', mulberry32(seed));
    const out = await rgb(data);
    const [top, bottom, left, right] = [params.top, params.bottom, params.left, params.right].map(Number);
    assert.deepEqual([out.width, out.height], [W + left + right, H + top + bottom]);
    for (const [side, size] of [[top, H], [bottom, H], [left, W], [right, W]]) {
      assert.ok(side >= 0.05 * size - 1 && side <= 0.2 * size + 1, `side ${side} of ${size}`);
    }
    colours.add(String(params.colour));
    const colour = fromHex(params.colour);
    for (let y = 0; y < out.height; y++) {
      for (let x = 0; x < out.width; x++) {
        const inside = x >= left && x < left + W && y >= top && y < top + H;
        assert.deepEqual(pixel(out, x, y), inside ? pixel(wideRaw, x - left, y - top) : colour, `${x},${y}`);
      }
    }
  }
  assert.ok(colours.size >= 2, 'more than one border colour');
});

test('zoomout pastes a 45-75% copy at its position on a solid or smooth-noise canvas', async () => {
  const backgrounds = new Set<string>();
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const { data, params } = await applyTransform(wide, 'zoomout', mulberry32(seed));
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [W, H]);
    const [left, top, width, height] = [params.left, params.top, params.width, params.height].map(Number);
    assert.ok(width >= 0.45 * W - 1 && width <= 0.75 * W + 1 && left + width <= W && top + height <= H);
    const small = await rgb(sharp(wide).resize(width, height, { fit: 'fill' }));
    const outside: number[][] = [];
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if (x >= left && x < left + width && y >= top && y < top + height) {
          assert.deepEqual(pixel(out, x, y), pixel(small, x - left, y - top), `pasted copy at ${x},${y}`);
        } else outside.push(pixel(out, x, y));
      }
    }
    const noise = params.background === 'noise';
    backgrounds.add(noise ? 'noise' : 'solid');
    if (!noise) {
      for (const p of outside) assert.deepEqual(p, fromHex(params.background));
      continue;
    }
    const mean = outside.reduce((s, p) => s + p[0], 0) / outside.length;
    const spread = Math.sqrt(outside.reduce((s, p) => s + (p[0] - mean) ** 2, 0) / outside.length);
    assert.ok(spread > 10, `the noise background varies (${spread})`);
    if (top >= 10) {
      // The rows above the pasted copy are pure background: smooth, neighbours close.
      const band = { data: out.data.subarray(0, top * W * 3), width: W, height: top };
      assert.ok(roughness(band) < 12, `smooth background (${roughness(band)})`);
    }
  }
  assert.deepEqual([...backgrounds].sort(), ['noise', 'solid']);
});

test('perspective blackens exactly the wedges of the shrunk edges and keeps the size', async () => {
  const edges = new Set<string>();
  for (const seed of [1, 2, 3, 5, 8, 13, 21, 34]) {
    const { data, params } = await applyTransform(bright, 'perspective', mulberry32(seed));
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [W, H]);
    const shrunk = Object.keys(params);
    assert.ok(shrunk.length === 1 || shrunk.length === 2);
    let total = 0;
    for (const edge of shrunk) {
      edges.add(edge);
      const k = Number(params[edge]);
      assert.ok(k >= 0.05 && k <= 0.12, `${edge} ${k}`);
      total += k / 2; // two triangles of base k/2 of the edge and full height: k/2 of the area
    }
    const corners: Record<string, number[]> = { tl: [0, 0], tr: [W - 1, 0], br: [W - 1, H - 1], bl: [0, H - 1] };
    const touching: Record<string, string[]> = { top: ['tl', 'tr'], bottom: ['bl', 'br'], left: ['tl', 'bl'], right: ['tr', 'br'] };
    const black = new Set(shrunk.flatMap((e) => touching[e]));
    for (const [name, [x, y]] of Object.entries(corners)) {
      if (black.has(name)) assert.deepEqual(pixel(out, x, y), [0, 0, 0], `${name} is outside the quad`);
      else assert.ok(Math.min(...pixel(out, x, y)) >= 100, `${name} keeps the photo`);
    }
    let dark = 0;
    for (let i = 0; i < out.data.length; i += 3) if (out.data[i] + out.data[i + 1] + out.data[i + 2] === 0) dark++;
    assert.ok(dark / (W * H) > total * 0.85 - 0.01 && dark / (W * H) < total + 0.01, `dark ${dark / (W * H)} for ${total}`);
  }
  assert.equal(edges.size, 4, 'every edge gets shrunk for some seed');
});

test('overlay draws the text in its colour near its baseline and leaves the rest of the photo alone', async () => {
  const original = await rgb(big);
  let checkedText = 0;
  for (let seed = 1; seed <= 12; seed++) {
    const { data, params } = await applyTransform(big, 'overlay', mulberry32(seed));
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [256, 256]);
    const size = Number(params.size);
    assert.ok(size >= 0.08 * 256 - 1 && size <= 0.2 * 256 + 1, `size ${size}`);
    const changed: Array<[number, number]> = [];
    const textColour = fromHex(params.colour);
    let inTextColour = 0;
    for (let y = 0; y < 256; y++) {
      for (let x = 0; x < 256; x++) {
        const [a, b] = [pixel(out, x, y), pixel(original, x, y)];
        if (a.some((v, c) => Math.abs(v - b[c]) > 2)) changed.push([x, y]);
        if (a.every((v, c) => Math.abs(v - textColour[c]) <= 6) && !b.every((v, c) => Math.abs(v - textColour[c]) <= 6)) inTextColour++;
      }
    }
    assert.ok(changed.length > 0.002 * 256 * 256 && changed.length < 0.4 * 256 * 256, `${changed.length} changed pixels`);
    assert.ok(inTextColour >= 5, `${inTextColour} pixels in the text colour`);
    if (params.logo !== 'none') {
      // The logo is translucent: a pixel near its centre, off the text line, blends the photo with the fill.
      const [cx, cy, r, opacity] = [params.cx, params.cy, params.r, params.opacity].map(Number);
      assert.ok(opacity >= 0.3 && opacity <= 0.7 && r >= 0.08 * 256 - 1 && r <= 0.15 * 256 + 1, `opacity ${opacity}, r ${r}`);
      const fill = fromHex(params.fill);
      let blended = 0;
      for (let y = cy - Math.floor(r / 2); y <= cy + r / 2; y += 4) {
        if (y >= Number(params.y) - size && y <= Number(params.y) + 0.35 * size) continue;
        for (let x = cx - Math.floor(r / 2); x <= cx + r / 2; x += 4) {
          const expected = pixel(original, x, y).map((v, c) => opacity * fill[c] + (1 - opacity) * v);
          assert.ok(pixel(out, x, y).every((v, c) => Math.abs(v - expected[c]) <= 3), `logo blend at ${x},${y}`);
          blended++;
        }
      }
      assert.ok(blended > 0 || Math.abs(cy - Number(params.y)) < size, 'the logo was checked');
    } else {
      checkedText++;
      const [y0, y1] = [Number(params.y) - size, Number(params.y) + 0.35 * size];
      for (const [x, y] of changed) assert.ok(y >= y0 && y <= y1 && x >= Number(params.x) - 2, `${x},${y} outside the text line`);
    }
  }
  assert.ok(checkedText > 0, 'some seed drew text only');
});

test('blur scales sigma 1-2.5 with the image size and smooths without shifting the tone', async () => {
  for (const seed of [1, 6, 11]) {
    const { data, params } = await applyTransform(wide, 'blur', mulberry32(seed));
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [W, H]);
    const sigma = Number(params.sigma);
    assert.ok(sigma >= 1 && sigma <= 2.5, `sigma ${sigma}`);
    assert.ok(Math.abs(Number(params.scaledSigma) - (sigma * W) / 64) < 0.001);
    assert.ok(roughness(out) < 0.5 * roughness(wideRaw), `${roughness(out)} vs ${roughness(wideRaw)}`);
    const mean = (r: Raw): number => r.data.reduce((s, v) => s + v, 0) / r.data.length;
    assert.ok(Math.abs(mean(out) - mean(wideRaw)) < 3);
  }
});

test('crop25 keeps about a quarter of the area, pixel-exactly from inside the original', async () => {
  for (const seed of [1, 2, 3, 50]) {
    const { data, params } = await applyTransform(wide, 'crop25', mulberry32(seed));
    const out = await rgb(data);
    const area = (out.width * out.height) / (W * H);
    assert.ok(area > 0.15 && area < 0.36, `area ${area}`);
    const [left, top] = [Number(params.left), Number(params.top)];
    for (let y = 0; y < out.height; y += 2) {
      for (let x = 0; x < out.width; x += 2) assert.deepEqual(pixel(out, x, y), pixel(wideRaw, left + x, top + y));
    }
  }
});

test('combo2 crops to 50-80%, shifts colour, blurs and re-encodes as JPEG quality 30-60', async () => {
  for (const seed of [1, 2, 77]) {
    const { data, params, ext } = await applyTransform(wide, 'combo2', mulberry32(seed));
    const out = await rgb(data);
    assert.equal(ext, 'jpg');
    const area = (out.width * out.height) / (W * H);
    assert.ok(area > 0.4 && area < 0.9, `area ${area}`);
    assert.deepEqual([out.width, out.height], [Number(params.width), Number(params.height)]);
    assert.ok(Number(params.quality) >= 30 && Number(params.quality) <= 60);
    assert.ok(Number(params.sigma) >= 0.5 && Number(params.sigma) <= 1.5);
    const hue = Number(params.hue);
    assert.ok((hue >= 20 && hue <= 60) || (hue >= 300 && hue <= 340), `hue ${hue}`);
    const crop = await rgb(sharp(wide).extract({ left: Number(params.left), top: Number(params.top), width: out.width, height: out.height }));
    assert.ok(roughness(out) < roughness(crop), 'blurred');
  }
});

test('zoomphoto pastes a 45-75% copy into the backdrop photo, which fills the rest of the frame', async () => {
  const backdrop = await readFile(join(fixtures, 'downstream', 'test_07.png'));
  const around = await rgb(sharp(backdrop).resize(W, H, { fit: 'cover' }));
  for (const seed of [1, 2, 3, 4]) {
    const { data, params } = await applyTransform(wide, 'zoomphoto', mulberry32(seed), { backdrop });
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [W, H]);
    const [left, top, width, height] = [params.left, params.top, params.width, params.height].map(Number);
    assert.ok(width >= 0.45 * W - 1 && width <= 0.75 * W + 1 && left + width <= W && top + height <= H);
    const small = await rgb(sharp(wide).resize(width, height, { fit: 'fill' }));
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const inside = x >= left && x < left + width && y >= top && y < top + height;
        assert.deepEqual(pixel(out, x, y), inside ? pixel(small, x - left, y - top) : pixel(around, x, y), `${inside ? 'copy' : 'backdrop'} at ${x},${y}`);
      }
    }
  }
  await assert.rejects(applyTransform(wide, 'zoomphoto', mulberry32(1)), /backdrop/);
});

test('mosaic puts the copy pixel-exactly in its tile and quarters of the backdrop photo, none in its own place, in the others', async () => {
  const backdrop = await readFile(join(fixtures, 'downstream', 'test_07.png'));
  const quarters = await rgb(sharp(backdrop).resize(2 * W, 2 * H, { fit: 'cover' }));
  const layouts = new Set<string>();
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const { data, params } = await applyTransform(wide, 'mosaic', mulberry32(seed), { backdrop });
    const [columns, rows, tile] = [params.columns, params.rows, params.tile].map(Number);
    layouts.add(`${columns}x${rows}`);
    const out = await rgb(data);
    assert.deepEqual([out.width, out.height], [columns * W, rows * H]);
    for (let k = 0; k < columns * rows; k++) {
      const [left, top] = [(k % columns) * W, Math.floor(k / columns) * H];
      const quarter = (k + 1) % 4;
      for (const [x, y] of [[0, 0], [W - 1, H - 1], [W >> 1, H >> 2]] as const) {
        const expected = k === tile ? pixel(wideRaw, x, y) : pixel(quarters, (quarter % 2) * W + x, (quarter >> 1) * H + y);
        assert.deepEqual(pixel(out, left + x, top + y), expected, `tile ${k} of ${columns}x${rows} at ${x},${y}`);
      }
    }
  }
  assert.ok(layouts.size >= 2, `layouts drawn: ${[...layouts].join(', ')}`);
  await assert.rejects(applyTransform(wide, 'mosaic', mulberry32(1)), /backdrop/);
});

test('noise adds zero-mean gaussian noise of the drawn sigma', async () => {
  const mid = await sharp(wide).linear(0.5, 64).png().toBuffer(); // away from 0 and 255, so nothing clips
  const before = await rgb(mid);
  for (const seed of [1, 2, 3]) {
    const { data, params } = await applyTransform(mid, 'noise', mulberry32(seed));
    const out = await rgb(data);
    const diffs = [...out.data].map((v, i) => v - before.data[i]!);
    const mean = diffs.reduce((a, b) => a + b, 0) / diffs.length;
    const sd = Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / diffs.length);
    const sigma = Number(params.sigma);
    assert.ok(sigma >= 8 && sigma <= 20 && Math.abs(mean) < 0.5 && Math.abs(sd - sigma) < 0.1 * sigma, `σ ${sigma}: measured mean ${mean.toFixed(2)}, sd ${sd.toFixed(2)}`);
  }
});

test('pixelate makes constant blocks of the shrunk side', async () => {
  for (const seed of [1, 2, 3]) {
    const { data, params } = await applyTransform(wide, 'pixelate', mulberry32(seed));
    const out = await rgb(data);
    const [factor, width] = [Number(params.factor), Number(params.width)];
    assert.ok(factor >= 0.25 && factor <= 0.45);
    // Distinct columns: one per block of the shrunk image, not one per pixel.
    const columns = new Set(Array.from({ length: W }, (_, x) => Array.from({ length: H }, (_, y) => pixel(out, x, y).join()).join('|')));
    assert.ok(columns.size <= width && columns.size >= width - 2, `${columns.size} distinct columns for ${width} blocks`);
  }
});

test('rotinplace keeps the size, the centre of the photo, and black corners', async () => {
  for (const seed of [1, 2, 3]) {
    const { data, params } = await applyTransform(bright, 'rotinplace', mulberry32(seed));
    const out = await rgb(data);
    const angle = Math.abs(Number(params.angle));
    assert.deepEqual([out.width, out.height], [W, H]);
    assert.ok(angle >= 8 && angle <= 25);
    for (const [x, y] of [[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]] as const) assert.ok(Math.max(...pixel(out, x, y)) < 40, `black corner at ${x},${y}`);
    const src = await rgb(bright);
    const centre = pixel(out, W / 2, H / 2), before = pixel(src, W / 2, H / 2);
    assert.ok(centre.every((v, c) => Math.abs(v - before[c]!) < 60), `centre kept: ${centre} vs ${before}`);
  }
});

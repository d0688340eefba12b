/**
 * Larger plain JPEGs are decoded at libjpeg's scaled sizes in WebAssembly and reduced with
 * libvips' own arithmetic: the model input must be the one libvips gives, and every case libvips
 * must judge (damage, colour management, unusual layouts) must be handed back to it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeImage } from '../../src/scan/decode.js';
import { decodeJpegScaled, decodeJpegShrunk, jpegShrinkOnLoad, moduleMemoryBytes } from '../../src/scan/jpeg-scaled.js';
import { resizeFill } from '../../src/scan/small.js';
import { packageRoot } from '../../src/util/package-root.js';
import { mulberry32 } from '../../src/util/rng.js';
import { pixelDiff as diff } from '../helpers/pixels.js';

/** What decode.ts asks libvips for. */
const viaLibvips = (input: Buffer, size: number) =>
  sharp(input, { failOn: 'truncated' }).rotate().resize(size, size, { fit: 'fill', kernel: 'lanczos3' }).flatten({ background: '#ffffff' }).toColourspace('srgb').raw().toBuffer();

/**
 * Measured on 600 bench photos and 300 re-encoded Tiny-ImageNet photos (all layouts below): no
 * difference at all. libvips restarts its position sum at tile boundaries, which can move a
 * sample by 1 in rare two-axis reduces, hence the slack.
 */
const close = (d: { mean: number; max: number }) => d.max <= 1 && d.mean < 0.01;

const photos = readdirSync(join(packageRoot(), 'fixtures', 'upstream')).filter((f) => f.endsWith('.jpg')).map((f) => join(packageRoot(), 'fixtures', 'upstream', f));

interface Layout { grey?: boolean; progressive?: boolean; chromaSubsampling?: '4:2:0' | '4:4:4'; quality?: number }

/** A fixture photo blown up to a camera-like size and re-encoded. */
async function photoJpeg(index: number, width: number, height: number, layout: Layout = {}): Promise<Buffer> {
  let image = sharp(readFileSync(photos[index % photos.length]!)).resize(width, height, { fit: 'fill', kernel: 'lanczos3' });
  if (layout.grey) image = image.greyscale();
  return image.jpeg({ quality: layout.quality ?? 88, progressive: layout.progressive ?? false, chromaSubsampling: layout.chromaSubsampling ?? '4:2:0' }).toBuffer();
}

test('plain JPEGs of many sizes and layouts reduce to the pixels libvips gives', async () => {
  const cases: [number, number, Layout][] = [
    [500, 375, {}],
    [641, 479, { chromaSubsampling: '4:4:4' }],
    [333, 500, { progressive: true }],
    [1024, 768, { chromaSubsampling: '4:4:4', progressive: true, quality: 75 }],
    [2000, 1500, {}],
    [3000, 400, { chromaSubsampling: '4:4:4' }], // a box shrink before the lanczos reduce
    [1500, 400, {}],
    [120, 100, {}], // no shrink-on-load: a full-size decode
    [800, 600, { grey: true }],
    [700, 300, { grey: true, progressive: true }],
  ];
  for (const [i, [width, height, layout]] of cases.entries()) {
    const jpeg = await photoJpeg(i, width, height, layout);
    for (const size of [64, 32]) {
      const ours = decodeJpegShrunk(jpeg, size);
      const label = `${width}×${height} ${JSON.stringify(layout)} to ${size}`;
      assert.ok(ours, label);
      assert.deepEqual([ours.width, ours.height], [width, height]);
      const d = diff(ours.rgb, await viaLibvips(jpeg, size));
      assert.ok(close(d), `${label}: max ${d.max}, mean ${d.mean}`);
    }
  }
});

test("a full-size decode is libvips' decode, sample for sample", async () => {
  for (const layout of [{}, { chromaSubsampling: '4:4:4', progressive: true }, { grey: true }] as Layout[]) {
    const jpeg = await photoJpeg(3, 331, 247, layout);
    const ours = decodeJpegScaled(jpeg, 1)!;
    const { data, info } = await sharp(jpeg).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([ours.width, ours.height, info.channels], [331, 247, 3]);
    assert.equal(diff(ours.rgb, data).max, 0, JSON.stringify(layout));
  }
});

test("scaled decodes keep libvips' size: the partial last row and column are dropped", async () => {
  const jpeg = await photoJpeg(4, 501, 377);
  for (const denom of [2, 4, 8] as const) {
    const scaled = decodeJpegScaled(jpeg, denom)!;
    assert.deepEqual([scaled.width, scaled.height], [Math.floor(501 / denom), Math.floor(377 / denom)]);
  }
});

test("shrink-on-load is sharp's choice", () => {
  assert.equal(jpegShrinkOnLoad(500, 375, 64), 4);
  assert.equal(jpegShrinkOnLoad(256, 256, 64), 2); // exactly 4: halved
  assert.equal(jpegShrinkOnLoad(300, 300, 64), 2); // 4.69: whole part 4, halved
  assert.equal(jpegShrinkOnLoad(4000, 3000, 64), 8);
  assert.equal(jpegShrinkOnLoad(540, 530, 64), 4); // 8.28: whole part 8, halved
  assert.equal(jpegShrinkOnLoad(120, 100, 64), 1);
});

test("libvips' reduce is reproduced on noise, in JS and in the module alike", async () => {
  const rnd = mulberry32(5);
  for (const [width, height] of [[125, 93], [96, 96], [250, 187], [300, 257], [64, 385]] as const) {
    const noise = Uint8Array.from({ length: width * height * 3 }, () => Math.floor(rnd() * 256));
    const expected = await sharp(noise, { raw: { width, height, channels: 3 } }).resize(64, 64, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
    const d = diff(resizeFill(noise, width, height, 64), expected);
    assert.ok(close(d), `${width}×${height}: max ${d.max}, mean ${d.mean}`);
  }
  // The module runs the reduce itself: it must agree with resizeFill exactly, box shrink included.
  for (const [width, height] of [[500, 375], [3000, 400]] as const) {
    const jpeg = await photoJpeg(5, width, height);
    const scaled = decodeJpegScaled(jpeg, jpegShrinkOnLoad(width, height, 64))!;
    assert.deepEqual(decodeJpegShrunk(jpeg, 64)!.rgb, resizeFill(scaled.rgb, scaled.width, scaled.height, 64));
  }
});

test('enlarging small images in the module between JPEG decodes leaves every result as it was', async () => {
  // One module instance serves both: each call resets its arena, so neither may depend on the other's memory.
  const jpeg = await photoJpeg(3, 500, 375);
  const rnd = mulberry32(9);
  const small = Uint8Array.from({ length: 32 * 32 * 3 }, () => Math.floor(rnd() * 256));
  const first = { photo: decodeJpegShrunk(jpeg, 64)!.rgb, small: resizeFill(small, 32, 32, 64) };
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(resizeFill(small, 32, 32, 64), first.small);
    assert.deepEqual(decodeJpegShrunk(jpeg, 64)!.rgb, first.photo);
  }
  const expected = await sharp(small, { raw: { width: 32, height: 32, channels: 3 } }).resize(64, 64, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  const d = diff(first.small, expected);
  assert.ok(d.max <= 2 && d.mean < 0.5, `enlarged noise against libvips: max ${d.max}, mean ${d.mean}`);
});

test('cases libvips must judge are handed back', async () => {
  const base = await photoJpeg(6, 400, 300);
  const sofAt = base.indexOf(Buffer.from([0xff, 0xc0]));
  const huge = Buffer.from(base);
  huge.writeUInt16BE(5000, sofAt + 5); // 6000×5000 claimed: over the 24-megapixel cap
  huge.writeUInt16BE(6000, sofAt + 7);
  const handedBack: Record<string, Buffer> = {
    'EXIF-rotated JPEG': await sharp(base).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    'JPEG with an ICC profile': await sharp(base).jpeg().withIccProfile('p3').toBuffer(),
    'CMYK JPEG': await sharp(base).toColourspace('cmyk').jpeg().toBuffer(),
    'damaged scan data (libjpeg only warns)': (() => { const b = Buffer.from(base); b.fill(0x00, b.length >> 1, (b.length >> 1) + 300); return b; })(),
    'cut short, end marker appended': Buffer.concat([base.subarray(0, base.length >> 1), Buffer.from([0xff, 0xd9])]),
    'garbage after the start marker': Buffer.concat([base.subarray(0, 2), Buffer.from('not a JPEG segment'), Buffer.from([0xff, 0xd9])]),
    'over the pixel cap': huge,
    'PNG': await sharp(base).png().toBuffer(),
  };
  for (const [kind, bytes] of Object.entries(handedBack)) assert.equal(decodeJpegShrunk(bytes, 64), undefined, kind);
  // libjpeg's errors unwind out of the module; it decodes the next file as before.
  assert.deepEqual(decodeJpegShrunk(base, 64)!.rgb, new Uint8Array(await viaLibvips(base, 64)));
});

test('decodeImage: large JPEGs take the module, damaged ones are still judged by libvips', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'neardup-scaled-'));
  try {
    const good = await photoJpeg(7, 500, 375);
    const file = join(dir, 'good.jpg');
    await writeFile(file, good);
    const decoded = await decodeImage(file, { size: 64 });
    assert.ok(decoded.ok);
    assert.deepEqual([decoded.width, decoded.height], [500, 375]);
    assert.ok(close(diff(decoded.rgb!, await viaLibvips(good, 64))));

    // libvips decodes through a cut-short scan (fail on truncation applies to the file's end only).
    const cut = Buffer.concat([good.subarray(0, good.length >> 1), Buffer.from([0xff, 0xd9])]);
    await writeFile(join(dir, 'cut.jpg'), cut);
    const fromCut = await decodeImage(join(dir, 'cut.jpg'), { size: 64 });
    assert.ok(fromCut.ok);
    assert.deepEqual(fromCut.rgb, new Uint8Array(await viaLibvips(cut, 64)));

    const garbage = Buffer.concat([good.subarray(0, 2), Buffer.from('not a JPEG segment'), Buffer.from([0xff, 0xd9])]);
    await writeFile(join(dir, 'garbage.jpg'), garbage);
    const fromGarbage = await decodeImage(join(dir, 'garbage.jpg'), { size: 64 });
    assert.ok(!fromGarbage.ok && /corrupt/i.test(fromGarbage.error), JSON.stringify(fromGarbage));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a huge progressive JPEG does not leave its memory held by the module', async () => {
  // A progressive file keeps every coefficient until the last scan: ~50 MB here, more than the
  // module may retain, so its instance is replaced; later decodes are unaffected.
  const small = await photoJpeg(2, 500, 375);
  const before = decodeJpegShrunk(small, 64)!;
  const huge = await sharp({ create: { width: 5600, height: 4200, channels: 3, background: { r: 90, g: 140, b: 200 } } })
    .composite([{ input: await photoJpeg(3, 2800, 2100), left: 1400, top: 1000 }]).jpeg({ progressive: true, quality: 80 }).toBuffer();
  const decoded = decodeJpegShrunk(huge, 64);
  assert.ok(decoded, 'decoded in the module');
  assert.deepEqual([decoded.width, decoded.height], [5600, 4200]);
  assert.ok(moduleMemoryBytes() <= 64 * 1024 * 1024, `module holds ${moduleMemoryBytes()} bytes`);
  assert.deepEqual(decodeJpegShrunk(small, 64)!.rgb, before.rgb);
});

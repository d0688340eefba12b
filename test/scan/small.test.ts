/**
 * The JavaScript path for small images must give the pixels libvips gives (the model was
 * calibrated on those), and must hand every case it does not handle exactly back to libvips.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeImage } from '../../src/scan/decode.js';
import { decodeSmall, SMALL_MAX_PIXELS } from '../../src/scan/small.js';
import { packageRoot } from '../../src/util/package-root.js';
import { mulberry32 } from '../../src/util/rng.js';
import { pixelDiff as diff } from '../helpers/pixels.js';

/** What decode.ts asks libvips for. */
const viaLibvips = (input: Buffer, size: number) =>
  sharp(input).rotate().resize(size, size, { fit: 'fill', kernel: 'lanczos3' }).flatten({ background: '#ffffff' }).toColourspace('srgb').raw().toBuffer();

/** Smooth random colour fields: photo-like enough for resampling to matter. */
function field(width: number, height: number, seed: number, channels = 3): Buffer {
  const rnd = mulberry32(seed);
  const f = [rnd(), rnd(), rnd()].map((x) => 0.05 + x * 0.3);
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const v = c === 3 ? 40 + ((x * 7 + y * 3) % 200) : 128 + 100 * Math.sin(x * f[c % 3]! + y * f[(c + 1) % 3]! + seed);
        raw[(y * width + x) * channels + c] = Math.round(v);
      }
    }
  }
  return raw;
}
const png = (w: number, h: number, seed: number, channels: 3 | 4 = 3) => sharp(field(w, h, seed, channels), { raw: { width: w, height: h, channels } }).png().toBuffer();
const jpg = (w: number, h: number, seed: number) => sharp(field(w, h, seed), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();

test("JPEG photos decode as libvips decodes them (mozjpeg either way)", async () => {
  const dir = join(packageRoot(), 'fixtures', 'upstream');
  const photos = readdirSync(dir).filter((f) => f.endsWith('.jpg')).map((f) => readFileSync(join(dir, f)));
  assert.ok(photos.length >= 3);
  for (const photo of photos) {
    const small = decodeSmall(photo, 64);
    const meta = await sharp(photo).metadata();
    if (meta.width! * meta.height! > SMALL_MAX_PIXELS) {
      assert.equal(small, undefined);
      continue;
    }
    assert.ok(small, 'a plain small JPEG takes the JavaScript path');
    const d = diff(small.rgb, await viaLibvips(photo, 64));
    assert.ok(d.max <= 1, `max |difference| ${d.max}, mean ${d.mean}`);
  }
});

test('resizing matches libvips: enlarging, reducing, and both at once', async () => {
  for (const [w, h, seed] of [[32, 32, 1], [50, 40, 2], [96, 80, 3], [90, 20, 4], [1, 1, 5]] as const) {
    const input = await png(w, h, seed);
    const small = decodeSmall(input, 64);
    assert.ok(small, `${w}×${h}`);
    assert.deepEqual([small.width, small.height], [w, h]);
    const d = diff(small.rgb, await viaLibvips(input, 64));
    assert.ok(d.max <= 2 && d.mean < 0.5, `${w}×${h}: mean ${d.mean}, max ${d.max}`);
  }
});

test('alpha is flattened on white as libvips does', async () => {
  const input = await png(40, 40, 9, 4);
  const d = diff(decodeSmall(input, 64)!.rgb, await viaLibvips(input, 64));
  assert.ok(d.max <= 2, `max ${d.max}`);
});

test('grey JPEG becomes three equal channels', async () => {
  const grey = await sharp(field(48, 48, 11), { raw: { width: 48, height: 48, channels: 3 } }).greyscale().jpeg().toBuffer();
  const small = decodeSmall(grey, 64)!;
  assert.ok(small);
  for (let p = 0; p < 64 * 64; p++) assert.ok(small.rgb[p * 3] === small.rgb[p * 3 + 1] && small.rgb[p * 3] === small.rgb[p * 3 + 2]);
  assert.ok(diff(small.rgb, await viaLibvips(grey, 64)).max <= 1);
});

test('cases libvips must handle are handed back', async () => {
  const base = field(48, 48, 12);
  const raw = { raw: { width: 48, height: 48, channels: 3 as const } };
  const handedBack: Record<string, Buffer> = {
    'EXIF-rotated JPEG': await sharp(base, raw).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    'JPEG with an ICC profile': await sharp(base, raw).jpeg().withIccProfile('p3').toBuffer(),
    'CMYK JPEG': await sharp(base, raw).toColourspace('cmyk').jpeg().toBuffer(),
    'PNG with an ICC profile': await sharp(base, raw).png().withIccProfile('p3').toBuffer(),
    '16-bit PNG': await sharp(base, raw).toColourspace('rgb16').png().toBuffer(),
    'JPEG over the size limit': await jpg(200, 150, 13),
    'PNG over the size limit': await png(100, 100, 14),
    'WebP': await sharp(base, raw).webp().toBuffer(),
    'corrupt JPEG data': await (async () => { const b = Buffer.from(await jpg(48, 48, 15)); b.fill(0x55, 200, 400); return b; })(),
    'JPEG with damaged scan data (libjpeg only warns)': await (async () => { const b = Buffer.from(await jpg(64, 64, 18)); b.fill(0x00, b.length - 400, b.length - 200); return b; })(),
    'corrupt PNG data': await (async () => { const b = Buffer.from(await png(48, 48, 16)); b.fill(0x55, 60, 120); return b; })(),
    'not an image': Buffer.from('hello world, not an image at all'),
  };
  for (const [kind, bytes] of Object.entries(handedBack)) assert.equal(decodeSmall(bytes, 64), undefined, kind);
});

test('decodeImage gives the JavaScript path the same hash and size as the libvips path', async () => {
  const input = await jpg(60, 45, 17);
  const dir = await mkdtemp(join(tmpdir(), 'neardup-small-'));
  try {
    const file = join(dir, 'a.jpg');
    await writeFile(file, input);
    const withModel = await decodeImage(file, { size: 64 });
    const scanOnly = await decodeImage(file, { size: 0 }); // scan goes through libvips
    assert.ok(withModel.ok && scanOnly.ok);
    assert.equal(withModel.hash, scanOnly.hash);
    assert.deepEqual([withModel.width, withModel.height], [60, 45]);
    assert.deepEqual([scanOnly.width, scanOnly.height], [60, 45]);
    assert.equal(withModel.rgb!.length, 64 * 64 * 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

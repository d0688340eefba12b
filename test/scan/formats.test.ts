/**
 * BMP, ICO and TGA: decoded outside libvips, then through the same libvips pipeline as every other
 * format. The files are written here by small writers that follow the format specifications (no
 * decoder code shared with src/), and checked against the pixels they were written from and against
 * the decode of a PNG of the same picture. The last block runs the real `audit` over a folder that
 * holds such files, good and broken.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseCsv } from '../../src/report/csv.js';
import { decodeImage, MAX_INPUT_PIXELS, thumbnailDataUri, type DecodeResult } from '../../src/scan/decode.js';
import { decodeRasterFormat } from '../../src/scan/formats.js';
import { readSummary, removeDir, runCli, tmpDir } from '../helpers/cli.js';
import { copyDir, FIXTURE_DOWNSTREAM, FIXTURE_UPSTREAM, imagesUnder } from '../helpers/corpus.js';
import { pixelDiff } from '../helpers/pixels.js';

/** Straight RGBA, top row first. */
interface Rgba { width: number; height: number; data: Buffer }

// ---- writers -------------------------------------------------------------------------------

interface BmpOptions {
  bits: 1 | 4 | 8 | 16 | 24 | 32;
  topDown?: boolean;
  compression?: 'rgb' | 'rle8' | 'rle4' | 'bitfields';
  /** Red, green, blue, alpha masks of 16/32-bit pixels. */
  masks?: [number, number, number, number];
  /** Info header size: 40 (BITMAPINFOHEADER), 108 (V4) or 124 (V5). */
  header?: 40 | 108 | 124;
  /** Unused bytes between the colour table and the pixels (the pixel offset must be honoured). */
  gap?: number;
}

const COMPRESSION = { rgb: 0, rle8: 1, rle4: 2, bitfields: 3 } as const;
const rgbKey = (d: Buffer, p: number) => (d[p * 4]! << 16) | (d[p * 4 + 1]! << 8) | d[p * 4 + 2]!;

/** Colours in first-seen order; a palette writer's table. */
function paletteOf(img: Rgba, max: number): { colours: number[]; index: Map<number, number> } {
  const index = new Map<number, number>();
  const colours: number[] = [];
  for (let p = 0; p < img.width * img.height; p++) {
    const k = rgbKey(img.data, p);
    if (!index.has(k)) { index.set(k, colours.length); colours.push(k); }
  }
  assert.ok(colours.length <= max, `${colours.length} colours do not fit a ${max}-entry palette`);
  return { colours, index };
}

/** v (8-bit) into the bits of mask, rounded to the mask's width. */
function intoMask(v: number, mask: number): number {
  if (mask === 0) return 0;
  const low = 31 - Math.clz32(mask & -mask);
  const max = (mask >>> low);
  return (Math.round((v * max) / 255) << low) >>> 0;
}

function bmpRows(img: Rgba, o: BmpOptions, index: Map<number, number>, masks: number[]): Buffer[] {
  const { width: w, height: h, data } = img;
  const rows: Buffer[] = [];
  for (let r = 0; r < h; r++) {
    const y = o.topDown ? r : h - 1 - r;
    if (o.compression === 'rle8' || o.compression === 'rle4') {
      rows.push(rleRow(img, y, index, o.compression === 'rle8' ? 8 : 4));
      continue;
    }
    const row = Buffer.alloc(Math.ceil((w * o.bits) / 32) * 4);
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const [R, G, B, A] = [data[p * 4]!, data[p * 4 + 1]!, data[p * 4 + 2]!, data[p * 4 + 3]!];
      if (o.bits <= 8) {
        const bit = x * o.bits;
        row[bit >> 3]! |= index.get(rgbKey(data, p))! << (8 - o.bits - (bit & 7));
      } else if (o.bits === 24) {
        row[x * 3] = B; row[x * 3 + 1] = G; row[x * 3 + 2] = R;
      } else {
        const v = (intoMask(R, masks[0]!) | intoMask(G, masks[1]!) | intoMask(B, masks[2]!) | intoMask(A, masks[3]!)) >>> 0;
        if (o.bits === 16) row.writeUInt16LE(v, x * 2); else row.writeUInt32LE(v, x * 4);
      }
    }
    rows.push(row);
  }
  return rows;
}

/** One row as RLE runs of one colour (encoded mode), ended by an end-of-line code. */
function rleRow(img: Rgba, y: number, index: Map<number, number>, bits: 4 | 8): Buffer {
  const out: number[] = [];
  const at = (x: number) => index.get(rgbKey(img.data, y * img.width + x))!;
  for (let x = 0; x < img.width;) {
    const c = at(x);
    let n = 1;
    while (x + n < img.width && n < 255 && at(x + n) === c) n++;
    out.push(n, bits === 8 ? c : (c << 4) | c);
    x += n;
  }
  out.push(0, 0);
  return Buffer.from(out);
}

function writeBmp(img: Rgba, o: BmpOptions): Buffer {
  const header = o.header ?? 40;
  const compression = COMPRESSION[o.compression ?? 'rgb'];
  const { colours, index } = o.bits <= 8 ? paletteOf(img, 1 << o.bits) : { colours: [], index: new Map<number, number>() };
  const masks = o.masks ?? (o.bits === 16 ? [0x7c00, 0x03e0, 0x001f, 0] : [0xff0000, 0xff00, 0xff, 0]);
  let pixels = Buffer.concat(bmpRows(img, o, index, masks));
  if (o.compression === 'rle8' || o.compression === 'rle4') pixels = Buffer.concat([pixels.subarray(0, -2), Buffer.from([0, 1])]);
  const maskBytes = compression === COMPRESSION.bitfields && header === 40 ? 12 : 0;
  const offset = 14 + header + maskBytes + colours.length * 4 + (o.gap ?? 0);
  const f = Buffer.alloc(offset + pixels.length);
  f.write('BM', 0, 'latin1');
  f.writeUInt32LE(f.length, 2);
  f.writeUInt32LE(offset, 10);
  f.writeUInt32LE(header, 14);
  f.writeInt32LE(img.width, 18);
  f.writeInt32LE(o.topDown ? -img.height : img.height, 22);
  f.writeUInt16LE(1, 26);
  f.writeUInt16LE(o.bits, 28);
  f.writeUInt32LE(compression, 30);
  f.writeUInt32LE(pixels.length, 34);
  f.writeUInt32LE(2835, 38);
  f.writeUInt32LE(2835, 42);
  f.writeUInt32LE(colours.length, 46);
  if (maskBytes > 0 || header > 40) masks.slice(0, header > 40 ? 4 : 3).forEach((m, i) => f.writeUInt32LE(m >>> 0, 54 + i * 4));
  if (header > 40) f.write('BGRs', 70, 'latin1');
  colours.forEach((k, i) => { f[14 + header + maskBytes + i * 4] = k & 255; f[15 + header + maskBytes + i * 4] = (k >> 8) & 255; f[16 + header + maskBytes + i * 4] = k >> 16; });
  pixels.copy(f, offset);
  return f;
}

/** TGA: 24/32-bit true colour or 8-bit grey, raw or RLE, origin at the bottom left unless topDown. */
function writeTga(img: Rgba, o: { depth: 8 | 24 | 32; rle?: boolean; topDown?: boolean }): Buffer {
  const bpp = o.depth / 8;
  const pixel = (p: number): number[] => {
    const d = img.data;
    if (o.depth === 8) return [d[p * 4]!];
    return o.depth === 24 ? [d[p * 4 + 2]!, d[p * 4 + 1]!, d[p * 4]!] : [d[p * 4 + 2]!, d[p * 4 + 1]!, d[p * 4]!, d[p * 4 + 3]!];
  };
  const order: number[] = [];
  for (let r = 0; r < img.height; r++) {
    const y = o.topDown ? r : img.height - 1 - r;
    for (let x = 0; x < img.width; x++) order.push(y * img.width + x);
  }
  const body: number[] = [];
  if (!o.rle) for (const p of order) body.push(...pixel(p));
  else {
    for (let i = 0; i < order.length;) {
      let n = 1;
      const same = (a: number, b: number) => pixel(order[a]!).join() === pixel(order[b]!).join();
      while (i + n < order.length && n < 128 && same(i, i + n)) n++;
      if (n > 1) { body.push(0x80 | (n - 1), ...pixel(order[i]!)); i += n; continue; }
      while (i + n < order.length && n < 128 && !same(i + n - 1, i + n)) n++;
      body.push(n - 1);
      for (let k = 0; k < n; k++) body.push(...pixel(order[i + k]!));
      i += n;
    }
  }
  const h = Buffer.alloc(18);
  h[2] = (o.depth === 8 ? 3 : 2) + (o.rle ? 8 : 0);
  h.writeUInt16LE(img.width, 12);
  h.writeUInt16LE(img.height, 14);
  h[16] = o.depth;
  h[17] = (o.depth === 32 ? 8 : 0) | (o.topDown ? 0x20 : 0);
  assert.equal(body.length >= (o.rle ? 1 : img.width * img.height * bpp), true);
  return Buffer.concat([h, Buffer.from(body)]);
}

/** An ICO entry: PNG bytes, or a 32-bit (alpha) or 24-bit (AND mask: alpha < 128 is transparent) bitmap. */
type IcoEntry = { png: Buffer; width: number; height: number } | { bitmap: Rgba; bits: 24 | 32 };

function icoBitmap(img: Rgba, bits: 24 | 32): Buffer {
  const { width: w, height: h, data } = img;
  const stride = Math.ceil((w * bits) / 32) * 4;
  const maskStride = Math.ceil(w / 32) * 4;
  const out = Buffer.alloc(40 + (stride + maskStride) * h);
  out.writeUInt32LE(40, 0);
  out.writeInt32LE(w, 4);
  out.writeInt32LE(h * 2, 8);
  out.writeUInt16LE(1, 12);
  out.writeUInt16LE(bits, 14);
  for (let r = 0; r < h; r++) {
    const y = h - 1 - r;
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      const at = 40 + r * stride + x * (bits / 8);
      out[at] = data[p + 2]!; out[at + 1] = data[p + 1]!; out[at + 2] = data[p]!;
      if (bits === 32) out[at + 3] = data[p + 3]!;
      else if (data[p + 3]! < 128) out[40 + stride * h + r * maskStride + (x >> 3)]! |= 0x80 >> (x & 7);
    }
  }
  return out;
}

function writeIco(entries: IcoEntry[]): Buffer {
  const blobs = entries.map((e) => ('png' in e ? e.png : icoBitmap(e.bitmap, e.bits)));
  const dir = Buffer.alloc(6 + 16 * entries.length);
  dir.writeUInt16LE(1, 2);
  dir.writeUInt16LE(entries.length, 4);
  let offset = dir.length;
  entries.forEach((e, i) => {
    const [w, h] = 'png' in e ? [e.width, e.height] : [e.bitmap.width, e.bitmap.height];
    const at = 6 + 16 * i;
    dir[at] = w >= 256 ? 0 : w;
    dir[at + 1] = h >= 256 ? 0 : h;
    dir.writeUInt16LE(1, at + 4);
    dir.writeUInt16LE('png' in e ? 32 : e.bits, at + 6);
    dir.writeUInt32LE(blobs[i]!.length, at + 8);
    dir.writeUInt32LE(offset, at + 12);
    offset += blobs[i]!.length;
  });
  return Buffer.concat([dir, ...blobs]);
}

// ---- pictures ------------------------------------------------------------------------------

/** A smooth colour field with edges (so resampling matters), optionally with varying alpha. */
function field(width: number, height: number, alpha = false): Rgba {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = Math.round(128 + 120 * Math.sin(x / 7 + y / 11));
      data[i + 1] = (x * 5 + y * 3) & 255;
      data[i + 2] = x < width / 2 !== y < height / 2 ? 230 : 20;
      data[i + 3] = alpha ? Math.round(255 * (x / (width - 1))) : 255;
    }
  }
  return { width, height, data };
}

/** The same field reduced to n colours (a palette image). */
function posterised(img: Rgba, levels: number): Rgba {
  const data = Buffer.from(img.data);
  const step = 255 / (levels - 1);
  for (let i = 0; i < data.length; i++) if (i % 4 !== 3) data[i] = Math.round(Math.round(data[i]! / step) * step);
  return { ...img, data };
}

/** What a decoder must give for a 16-bit channel of `bits` bits: the value rounded to that width, scaled back. */
function quantised(img: Rgba, bits: [number, number, number]): Rgba {
  const data = Buffer.from(img.data);
  for (let i = 0; i < data.length; i++) {
    const c = i % 4;
    if (c === 3) continue;
    const max = (1 << bits[c]!) - 1;
    data[i] = Math.round((Math.round((data[i]! * max) / 255) * 255) / max);
  }
  return { ...img, data };
}

const pngOf = (img: Rgba, alpha = false): Promise<Buffer> => {
  const input = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } });
  return (alpha ? input : input.removeAlpha()).png().toBuffer();
};

/** Full-resolution RGBA that formats.ts decoded (opaque images come back as RGB: widened here). */
function decodedRgba(bytes: Buffer): Rgba {
  const r = decodeRasterFormat(bytes, MAX_INPUT_PIXELS);
  assert.ok(r && 'raster' in r, `decoded: ${JSON.stringify(r && 'error' in r ? r.error : r)}`);
  const { width, height, channels, data } = r.raster;
  if (channels === 4) return { width, height, data };
  const out = Buffer.alloc(width * height * 4, 255);
  for (let p = 0; p < width * height; p++) data.copy(out, p * 4, p * 3, p * 3 + 3);
  return { width, height, data: out };
}

const SIZE = 64;
let root = '';

before(async () => {
  root = await tmpDir('neardup-formats-');
});

after(async () => {
  await removeDir(root);
});

let fileNo = 0;
async function decodeFile(bytes: Buffer, name = `f${fileNo++}.img`, size = SIZE): Promise<DecodeResult> {
  const path = join(root, name);
  await writeFile(path, bytes);
  return decodeImage(path, { size });
}

function assertOk(r: DecodeResult, what: string): asserts r is Extract<DecodeResult, { ok: true }> {
  assert.ok(r.ok, `${what}: ${r.ok ? '' : r.error}`);
}

// ---- BMP -----------------------------------------------------------------------------------

describe('BMP', () => {
  // 120×90 is above the small-image limit, so the PNG is decoded by libvips too: both sides take
  // the same resize, and the model inputs must be equal byte for byte.
  const picture = field(120, 90);

  test('a 24-bit BMP decodes to the same pixels as the PNG of the same picture (exact, full size and model input)', async () => {
    const bmp = writeBmp(picture, { bits: 24 });
    assert.deepEqual(decodedRgba(bmp).data, picture.data);
    const fromBmp = await decodeFile(bmp, 'picture.bmp');
    const fromPng = await decodeFile(await pngOf(picture), 'picture.png');
    assertOk(fromBmp, 'bmp');
    assertOk(fromPng, 'png');
    assert.deepEqual([fromBmp.width, fromBmp.height], [120, 90]);
    assert.deepEqual(Buffer.from(fromBmp.rgb!), Buffer.from(fromPng.rgb!));
    assert.notEqual(fromBmp.hash, fromPng.hash, 'the hash is of the bytes: not an exact duplicate');
  });

  test('an 8-bit palette BMP decodes to the same pixels as the PNG of the same picture (exact)', async () => {
    const pal = posterised(picture, 6); // 6³ = 216 colours at most
    const bmp = writeBmp(pal, { bits: 8 });
    assert.equal(bmp.readUInt16LE(28), 8);
    assert.deepEqual(decodedRgba(bmp).data, pal.data);
    const fromBmp = await decodeFile(bmp, 'palette.bmp');
    const fromPng = await decodeFile(await pngOf(pal), 'palette.png');
    assertOk(fromBmp, 'bmp');
    assertOk(fromPng, 'png');
    assert.deepEqual(Buffer.from(fromBmp.rgb!), Buffer.from(fromPng.rgb!));
  });

  test('a top-down BMP (negative height) decodes as the bottom-up one', async () => {
    const down = decodedRgba(writeBmp(picture, { bits: 24, topDown: true }));
    assert.deepEqual(down.data, picture.data);
    const pal = posterised(picture, 6);
    assert.deepEqual(decodedRgba(writeBmp(pal, { bits: 8, topDown: true })).data, pal.data);
  });

  test('every bit depth and layout gives the pixels it was written from', () => {
    const odd = field(37, 21); // odd width: every row is padded
    const cases: [string, Rgba, BmpOptions][] = [
      ['1-bit palette', twoColours(odd), { bits: 1 }],
      ['4-bit palette', sixteenColours(odd), { bits: 4 }],
      ['4-bit RLE', sixteenColours(odd), { bits: 4, compression: 'rle4' }],
      ['8-bit RLE', posterised(odd, 6), { bits: 8, compression: 'rle8' }],
      ['16-bit 5-5-5', quantised(odd, [5, 5, 5]), { bits: 16 }],
      ['16-bit 5-6-5 bitfields', quantised(odd, [5, 6, 5]), { bits: 16, compression: 'bitfields', masks: [0xf800, 0x07e0, 0x001f, 0] }],
      ['24-bit, pixels after a gap', odd, { bits: 24, gap: 10 }],
      ['24-bit, V5 header', odd, { bits: 24, header: 124 }],
      ['32-bit BI_RGB', odd, { bits: 32 }],
      ['32-bit bitfields, RGBA order', odd, { bits: 32, compression: 'bitfields', masks: [0xff, 0xff00, 0xff0000, 0] }],
      ['32-bit V4 with alpha', field(37, 21, true), { bits: 32, compression: 'bitfields', header: 108, masks: [0xff0000, 0xff00, 0xff, 0xff000000] }],
    ];
    const wrong: string[] = [];
    for (const [name, img, o] of cases) {
      const got = decodedRgba(writeBmp(img, o));
      const d = pixelDiff(got.data, img.data);
      if (d.max !== 0) wrong.push(`${name}: max difference ${d.max}, mean ${d.mean.toFixed(3)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('16-bit white is white (narrow channels are scaled to the full range)', () => {
    const white = { width: 3, height: 2, data: Buffer.alloc(24, 255) };
    assert.deepEqual(decodedRgba(writeBmp(white, { bits: 16 })).data, white.data);
  });

  test('alpha is composed on white exactly as for a PNG with the same alpha', async () => {
    const translucent = field(120, 90, true);
    const bmp = writeBmp(translucent, { bits: 32, compression: 'bitfields', header: 108, masks: [0xff0000, 0xff00, 0xff, 0xff000000] });
    const fromBmp = await decodeFile(bmp);
    const fromPng = await decodeFile(await pngOf(translucent, true));
    assertOk(fromBmp, 'bmp');
    assertOk(fromPng, 'png');
    assert.deepEqual(Buffer.from(fromBmp.rgb!), Buffer.from(fromPng.rgb!));
    assert.ok(fromBmp.rgb![0]! > 240, 'the transparent left edge is white');
  });

  test('an alpha channel that is 0 everywhere is ignored (the image is opaque, not blank)', () => {
    const clear = { ...picture, data: Buffer.from(picture.data) };
    for (let i = 3; i < clear.data.length; i += 4) clear.data[i] = 0;
    const r = decodeRasterFormat(writeBmp(clear, { bits: 32, compression: 'bitfields', header: 108, masks: [0xff0000, 0xff00, 0xff, 0xff000000] }), MAX_INPUT_PIXELS);
    assert.ok(r && 'raster' in r);
    assert.equal(r.raster.channels, 3);
    assert.deepEqual(decodedRgba(writeBmp(clear, { bits: 32, compression: 'bitfields', header: 108, masks: [0xff0000, 0xff00, 0xff, 0xff000000] })).data, picture.data);
  });

  test('small BMPs match the small-image path of the same PNG (exact at the model size, within 2 levels when enlarged)', async () => {
    const same = field(64, 64);
    const a = await decodeFile(writeBmp(same, { bits: 24 }));
    const b = await decodeFile(await pngOf(same));
    assertOk(a, 'bmp');
    assertOk(b, 'png');
    assert.deepEqual(Buffer.from(a.rgb!), Buffer.from(b.rgb!));
    // A 43×48 PNG is enlarged in JavaScript (small.ts), the BMP by libvips: the two agree as in small.test.
    const tiny = field(43, 48);
    const c = await decodeFile(writeBmp(tiny, { bits: 24 }));
    const d = await decodeFile(await pngOf(tiny));
    assertOk(c, 'bmp');
    assertOk(d, 'png');
    const diff = pixelDiff(c.rgb!, d.rgb!);
    assert.ok(diff.max <= 2 && diff.mean < 0.5, `max ${diff.max}, mean ${diff.mean}`);
  });

  test('the format is found from the bytes: a BMP named .png decodes, a PNG named .bmp decodes as PNG', async () => {
    const bmp = writeBmp(picture, { bits: 24 });
    const misnamed = await decodeFile(bmp, 'really-a-bmp.png');
    assertOk(misnamed, 'bmp named .png');
    const png = await decodeFile(await pngOf(picture), 'really-a-png.bmp');
    assertOk(png, 'png named .bmp');
    assert.deepEqual(Buffer.from(misnamed.rgb!), Buffer.from(png.rgb!));
  });

  test('scan (no model input) reads the size; the report gets a thumbnail', async () => {
    const path = join(root, 'scan.bmp');
    await writeFile(path, writeBmp(picture, { bits: 24 }));
    const r = await decodeImage(path, { size: 0 });
    assertOk(r, 'scan');
    assert.deepEqual([r.width, r.height, r.rgb], [120, 90, undefined]);
    assert.match((await thumbnailDataUri(path)) ?? '', /^data:image\/jpeg;base64,/);
  });

  test('broken BMPs get a precise reason', async () => {
    const good = writeBmp(picture, { bits: 24 });
    const rle = writeBmp(posterised(picture, 6), { bits: 8, compression: 'rle8' });
    const withBits = (bits: number) => { const b = Buffer.from(good); b.writeUInt16LE(bits, 28); return b; };
    const withCompression = (c: number) => { const b = Buffer.from(good); b.writeUInt32LE(c, 30); return b; };
    const huge = Buffer.from(good.subarray(0, 54));
    huge.writeInt32LE(20_000, 18);
    huge.writeInt32LE(20_000, 22);
    const cases: [string, Buffer, RegExp][] = [
      ['cut in the pixels', good.subarray(0, Math.floor(good.length * 0.6)), /^corrupt BMP: pixel data truncated \(\d+ of 32400 bytes\)$/],
      ['cut after the header', good.subarray(0, 54), /^corrupt BMP: pixel data truncated/],
      ['cut in the header', good.subarray(0, 30), /^corrupt BMP: header truncated$/],
      ['RLE cut short', rle.subarray(0, Math.floor(rle.length * 0.5)), /^corrupt BMP: RLE pixel data truncated$/],
      ['7 bits per pixel', withBits(7), /^unsupported BMP: 7 bits per pixel$/],
      ['embedded PNG', withCompression(5), /^unsupported BMP: embedded PNG/],
      ['20000×20000 header', huge, /^image too large: more than 100000000 pixels/],
    ];
    const wrong: string[] = [];
    for (const [name, bytes, reason] of cases) {
      const r = await decodeFile(bytes, `${name}.bmp`);
      if (r.ok) wrong.push(`${name}: decoded`);
      else if (!reason.test(r.error)) wrong.push(`${name}: ${JSON.stringify(r.error)} does not match ${reason}`);
    }
    assert.deepEqual(wrong, []);
  });
});

/** The field with two colours (1-bit). */
function twoColours(img: Rgba): Rgba {
  const data = Buffer.from(img.data);
  for (let p = 0; p < img.width * img.height; p++) data.fill(data[p * 4]! > 128 ? 250 : 10, p * 4, p * 4 + 3);
  return { ...img, data };
}

/** The field with at most 16 colours (4-bit). */
function sixteenColours(img: Rgba): Rgba {
  const data = Buffer.from(img.data);
  for (let p = 0; p < img.width * img.height; p++) {
    data[p * 4] = data[p * 4]! > 128 ? 240 : 16;
    data[p * 4 + 1] = data[p * 4 + 1]! > 128 ? 200 : 40;
    data[p * 4 + 2] = data[p * 4 + 2]! > 128 ? 230 : 20;
    data[p * 4 + 3] = 255;
  }
  return { ...img, data };
}

// ---- ICO and TGA ---------------------------------------------------------------------------

describe('ICO', () => {
  test('the largest entry is the image: a PNG entry decodes as that PNG', async () => {
    const big = field(120, 90);
    const png = await pngOf(big);
    const ico = writeIco([{ bitmap: field(16, 16), bits: 32 }, { png, width: 120, height: 90 }]);
    const fromIco = await decodeFile(ico, 'icon.ico');
    const fromPng = await decodeFile(png);
    assertOk(fromIco, 'ico');
    assertOk(fromPng, 'png');
    assert.deepEqual([fromIco.width, fromIco.height], [120, 90]);
    assert.deepEqual(Buffer.from(fromIco.rgb!), Buffer.from(fromPng.rgb!));
  });

  test('a 32-bit bitmap entry keeps its alpha; a 24-bit one takes transparency from its AND mask', () => {
    const translucent = field(48, 48, true);
    const ico = writeIco([{ bitmap: field(16, 16), bits: 24 }, { bitmap: translucent, bits: 32 }]);
    assert.deepEqual(decodedRgba(ico).data, translucent.data);
    const masked = field(32, 32, true);
    const got = decodedRgba(writeIco([{ bitmap: masked, bits: 24 }]));
    for (let p = 0; p < 32 * 32; p++) {
      const want = masked.data[p * 4 + 3]! < 128 ? 0 : 255;
      assert.equal(got.data[p * 4 + 3], want, `alpha of pixel ${p}`);
      if (want) assert.deepEqual([...got.data.subarray(p * 4, p * 4 + 3)], [...masked.data.subarray(p * 4, p * 4 + 3)]);
    }
  });

  test('a cut ICO is named as such', async () => {
    const ico = writeIco([{ bitmap: field(32, 32), bits: 32 }]);
    const r = await decodeFile(ico.subarray(0, ico.length - 100), 'cut.ico');
    assert.ok(!r.ok);
    assert.match(r.error, /^corrupt ICO: image 1 data truncated \(\d+ of \d+ bytes\)$/);
  });
});

describe('TGA', () => {
  const picture = field(120, 90);

  test('24-bit (bottom-left origin) and 32-bit RLE (top-left origin, alpha) decode to their pixels', () => {
    assert.deepEqual(decodedRgba(writeTga(picture, { depth: 24 })).data, picture.data);
    const translucent = posterised(field(60, 40, true), 4);
    assert.deepEqual(decodedRgba(writeTga(translucent, { depth: 32, rle: true, topDown: true })).data, translucent.data);
  });

  test('a TGA decodes to the same model input as the PNG of the same picture', async () => {
    const fromTga = await decodeFile(writeTga(picture, { depth: 24, rle: true }), 'picture.tga');
    const fromPng = await decodeFile(await pngOf(picture));
    assertOk(fromTga, 'tga');
    assertOk(fromPng, 'png');
    assert.deepEqual(Buffer.from(fromTga.rgb!), Buffer.from(fromPng.rgb!));
  });

  test('grey TGA becomes three equal channels', () => {
    const grey = decodedRgba(writeTga(picture, { depth: 8 }));
    for (let p = 0; p < 120 * 90; p++) assert.deepEqual([grey.data[p * 4 + 1], grey.data[p * 4 + 2]], [picture.data[p * 4], picture.data[p * 4]]);
  });

  test('cut TGAs are named as such; text is not taken for a TGA', async () => {
    const raw = writeTga(picture, { depth: 24 });
    const rle = writeTga(picture, { depth: 24, rle: true });
    const a = await decodeFile(raw.subarray(0, 5000), 'cut.tga');
    const b = await decodeFile(rle.subarray(0, rle.length >> 1), 'cut-rle.tga');
    assert.ok(!a.ok && !b.ok);
    assert.equal(a.error, `corrupt TGA: pixel data truncated (${5000 - 18} of ${120 * 90 * 3} bytes)`);
    assert.equal(b.error, 'corrupt TGA: RLE pixel data truncated');
    const text = await decodeFile(Buffer.from('Some text that happens to be eighteen bytes or more.\n'), 'text.tga');
    assert.ok(!text.ok);
    assert.match(text.error, /not an image/);
  });
});

// ---- the real CLI ---------------------------------------------------------------------------

interface CsvRow { [column: string]: string }
function csvObjects(path: string): CsvRow[] {
  const [header, ...rows] = parseCsv(readFileSync(path, 'utf8'));
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ''])));
}

describe('audit over BMP, ICO and TGA files next to the fixtures', () => {
  let up = '';
  let out = '';
  let code = -1;
  let stderr = '';
  /** Upstream file → the downstream fixture it is a pixel-identical copy of. */
  const copies = new Map<string, string>([['copies/test_02.bmp', 'test_02.png'], ['copies/test_05.ico', 'test_05.png'], ['copies/test_06.tga', 'test_06.png']]);
  const broken = new Map<string, RegExp>([['broken/truncated.bmp', /^corrupt BMP: pixel data truncated \(\d+ of \d+ bytes\)$/], ['broken/truncated.tga', /^corrupt TGA: pixel data truncated/]]);

  before(async () => {
    up = join(root, 'upstream');
    out = join(root, 'out');
    await copyDir(FIXTURE_UPSTREAM, up);
    await mkdir(join(up, 'copies'), { recursive: true });
    await mkdir(join(up, 'broken'), { recursive: true });
    const rgbaOf = async (name: string): Promise<Rgba> => {
      const { data, info } = await sharp(join(FIXTURE_DOWNSTREAM, name)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      return { width: info.width, height: info.height, data };
    };
    await writeFile(join(up, 'copies/test_02.bmp'), writeBmp(await rgbaOf('test_02.png'), { bits: 24 }));
    const five = await rgbaOf('test_05.png');
    await writeFile(join(up, 'copies/test_05.ico'), writeIco([{ bitmap: five, bits: 32 }]));
    await writeFile(join(up, 'copies/test_06.tga'), writeTga(await rgbaOf('test_06.png'), { depth: 24, rle: true }));
    const bmp = writeBmp(five, { bits: 24 });
    await writeFile(join(up, 'broken/truncated.bmp'), bmp.subarray(0, bmp.length - 1000));
    const tga = writeTga(five, { depth: 32 });
    await writeFile(join(up, 'broken/truncated.tga'), tga.subarray(0, 2000));
    const r = await runCli(['audit', '--upstream', up, '--downstream', FIXTURE_DOWNSTREAM, '--out', out, '-q']);
    code = r.code;
    stderr = r.stderr;
  });

  test('the run completes (exit 0) and every other image is processed', () => {
    assert.equal(code, 0, stderr);
    const s = readSummary(out);
    const good = imagesUnder(FIXTURE_UPSTREAM).length + copies.size;
    assert.equal(s.counts.upstream, good + broken.size);
    assert.equal(s.counts.upstreamOk, good);
    assert.equal(s.counts.errors, broken.size);
  });

  test('each broken file is in errors.csv with its precise reason', () => {
    const rows = csvObjects(join(out, 'errors.csv'));
    assert.deepEqual(rows.map((r) => r.path).sort(), [...broken.keys()].map((k) => join(up, k)).sort());
    for (const r of rows) {
      const want = broken.get(r.path!.slice(up.length + 1))!;
      assert.match(r.reason!, want, r.path);
    }
  });

  test('a BMP, an ICO and a TGA copy of a downstream PNG are matched to it with a high score', () => {
    const matches = csvObjects(join(out, 'matches.csv'));
    const wrong: string[] = [];
    for (const [copy, original] of copies) {
      const row = matches.find((m) => m.upstream === join(up, copy) && m.downstream === join(FIXTURE_DOWNSTREAM, original));
      if (!row) wrong.push(`${copy}: no match with ${original}`);
      else if (!(Number(row.score) > 0.999 && Number(row.verify_score) > 0.95)) wrong.push(`${copy}: cosine ${row.score}, verified ${row.verify_score}`);
    }
    assert.deepEqual(wrong, []);
  });
});

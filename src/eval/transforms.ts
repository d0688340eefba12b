/**
 * The copy-transformation suite: the edits a copy of a test image may have undergone on its way
 * into a web corpus. Evaluation plants such copies and checks that the matcher finds them; the
 * same table documents which invariances neardup claims. Every draw comes from the caller's rng,
 * so a seed replays the exact same copy (fixtures are committed and must regenerate byte for byte).
 */
import sharp from 'sharp';
import { invalidOption } from '../errors.js';
import { mulberry32, pick, randomInt, uniform } from '../util/rng.js';

export { mulberry32 };

/** Family name -> what the transformation does. Frozen: validation and docs read this table. */
export const FAMILIES = Object.freeze({
  crop50: 'crop to ~50% of the area (aspect jittered ±15%) at a random position',
  shift: 'translate the content 10–20% of the width or height; the uncovered band is black',
  rot90: 'rotate by 90, 180 or 270 degrees',
  rotsmall: 'rotate ±8–25°, crop the centre to drop the black corners, resize back to the original size',
  squeeze: 'resize one axis by a factor in 0.6–0.85 or 1.15–1.6 (aspect change)',
  colour: 'hue rotation 20–60° either way plus brightness and saturation ×0.7–1.3',
  grayscale: 'convert to single-channel grayscale',
  jpeg: 'downscale to 50–80% and re-encode as JPEG quality 20–50',
  mirror: 'horizontal flip',
  combo: 'crop to 60–75% of the area + colour shift + JPEG quality 30–60',
  shiftfill: 'translate 10–20% of the width or height; the band is white, mid grey, a random colour, replicated edge pixels or the image blurred (σ 8 at 64 px)',
  rotexpand: 'rotate ±8–25° on an expanded canvas (black corners kept), resize back to the original size',
  border: 'pad each side by 5–20% of the height (top, bottom) or width (left, right) in black, white or a random colour; the canvas grows',
  zoomout: 'scale to 45–75% and paste at a random position on an original-size canvas: a solid colour or smooth colour noise (stand-in for another photo)',
  perspective: 'keystone warp: one edge, or one horizontal and one vertical edge, shrunk 5–12%; black outside, same size',
  overlay: '1–3 words of text (8–20% of the height, random colour and position), in two cases of three with a semi-transparent box or disc logo',
  blur: 'gaussian blur σ 1–2.5 for a 64-pixel image, scaled with the larger side',
  crop25: 'crop to ~25% of the area (aspect jittered ±15%) at a random position',
  combo2: 'crop to 50–80% of the area + colour shift + blur σ 0.5–1.5 (at 64 px) + JPEG quality 30–60',
  zoomphoto: 'scale to 45–75% and paste at a random position into another photo of the folder (never an original), resized to the original size',
  noise: 'additive gaussian noise, σ 8–20 per channel (of 255)',
  pixelate: 'shrink to 25–45% of the side and enlarge back with nearest-neighbour sampling (blocky)',
  rotinplace: 'rotate ±8–25° inside the same canvas (corners of the photo cut, black corners in), as torchvision and OpenCV do by default',
  mosaic: 'the copy at full size as one of 2–4 tiles of a collage (side by side, stacked, or 2×2); the other tiles are quarters of another photo of the folder',
});

/** One of the keys of {@link FAMILIES}. */
export type FamilyName = keyof typeof FAMILIES;

/** An encoded transformed copy and the parameters drawn for it. */
export interface TransformResult {
  data: Buffer;
  ext: 'jpg' | 'png';
  params: Record<string, number | string>;
}

type Rng = () => number;
interface Raw { data: Buffer; width: number; height: number }
/** A built pipeline; `quality` set means the family's output is a lossy JPEG. */
interface Plan { image: sharp.Sharp; params: Record<string, number | string>; quality?: number }
/** What a family may need besides the image: zoomphoto's backdrop photo. */
export interface TransformContext { backdrop?: Buffer }
type Op = (raw: Raw, rng: Rng, context: TransformContext) => Promise<Plan> | Plan;

interface Rgb { r: number; g: number; b: number }
const BLACK: Rgb = { r: 0, g: 0, b: 0 };
const WHITE: Rgb = { r: 255, g: 255, b: 255 };
const GREY: Rgb = { r: 128, g: 128, b: 128 };
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/**
 * Decodes to 8-bit sRGB without alpha, upright. Every family starts from this one canonical form
 * so a copy differs from its original only by the family's edit, not by decoder choices.
 */
async function decodeRgb(input: Buffer): Promise<Raw> {
  const { data, info } = await sharp(input)
    .autoOrient()
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

const fromRaw = (raw: Raw): sharp.Sharp =>
  sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } });

/** Runs a pipeline to raw pixels (three channels in, three out). */
async function toRaw(image: sharp.Sharp): Promise<Raw> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Copies `src` into `dst` with its top-left corner at (left, top); `src` must fit inside. */
function paste(dst: Raw, src: Raw, left: number, top: number): void {
  for (let y = 0; y < src.height; y++) {
    src.data.copy(dst.data, ((top + y) * dst.width + left) * 3, y * src.width * 3, (y + 1) * src.width * 3);
  }
}

function solidRaw(width: number, height: number, c: Rgb): Raw {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i += 3) [data[i], data[i + 1], data[i + 2]] = [c.r, c.g, c.b];
  return { data, width, height };
}

const randomColour = (rng: Rng): Rgb => ({ r: randomInt(rng, 0, 255), g: randomInt(rng, 0, 255), b: randomInt(rng, 0, 255) });
const hex = (c: Rgb): string => `#${[c.r, c.g, c.b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;

/** The solid fill of border and zoomout: black, white or a random colour, a third each. */
function solidFill(rng: Rng): Rgb {
  const kind = pick(rng, ['black', 'white', 'colour'] as const);
  return kind === 'black' ? BLACK : kind === 'white' ? WHITE : randomColour(rng);
}

/** Blur sigmas are stated for a 64-pixel image and scale with the larger side; libvips wants ≥ 0.3. */
const scaledSigma = (raw: Raw, sigma: number): number => Math.max(0.3, round3((sigma * Math.max(raw.width, raw.height)) / 64));

/** A random window covering about `area` of the image, aspect jittered so crops are not all square-ish. */
function cropBox(raw: Raw, rng: Rng, area: number): sharp.Region {
  const jitter = uniform(rng, 0.85, 1.15);
  const width = clamp(Math.round(raw.width * Math.sqrt(area) * jitter), 1, raw.width);
  const height = clamp(Math.round(raw.height * Math.sqrt(area) / jitter), 1, raw.height);
  const left = randomInt(rng, 0, raw.width - width);
  const top = randomInt(rng, 0, raw.height - height);
  return { left, top, width, height };
}

/** Draws modulate() settings; hue is kept an integer because sharp rejects fractional degrees. */
function colourParams(rng: Rng): { hue: number; brightness: number; saturation: number } {
  const degrees = randomInt(rng, 20, 60);
  const hue = pick(rng, [1, -1]) > 0 ? degrees : 360 - degrees;
  return { hue, brightness: round3(uniform(rng, 0.7, 1.3)), saturation: round3(uniform(rng, 0.7, 1.3)) };
}

function crop50(raw: Raw, rng: Rng): Plan {
  const box = cropBox(raw, rng, uniform(rng, 0.45, 0.55));
  return { image: fromRaw(raw).extract(box), params: { ...box } };
}

/** Where shift and shiftfill cut: the part of the image that stays in frame and the band it vacates. */
function shiftGeometry(raw: Raw, rng: Rng) {
  const axis = pick(rng, ['x', 'y'] as const);
  const size = axis === 'x' ? raw.width : raw.height;
  const magnitude = clamp(Math.round(size * uniform(rng, 0.1, 0.2)), 1, size - 1);
  const offset = magnitude * pick(rng, [1, -1]);
  const kept = axis === 'x'
    ? { left: offset > 0 ? 0 : magnitude, top: 0, width: raw.width - magnitude, height: raw.height }
    : { left: 0, top: offset > 0 ? 0 : magnitude, width: raw.width, height: raw.height - magnitude };
  const pad = { top: 0, bottom: 0, left: 0, right: 0 };
  if (axis === 'x') pad[offset > 0 ? 'left' : 'right'] = magnitude;
  else pad[offset > 0 ? 'top' : 'bottom'] = magnitude;
  return { axis, offset, kept, pad };
}

/** Keeps the part of the image that stays in frame, then pads the vacated side with black. */
function shift(raw: Raw, rng: Rng): Plan {
  const { axis, offset, kept, pad } = shiftGeometry(raw, rng);
  return { image: fromRaw(raw).extract(kept).extend({ ...pad, background: BLACK }), params: { axis, offset } };
}

/** shift, with the band filled by a solid colour, the replicated edge, or the blurred image underneath. */
async function shiftfill(raw: Raw, rng: Rng): Promise<Plan> {
  const { axis, offset, kept, pad } = shiftGeometry(raw, rng);
  const fill = pick(rng, ['white', 'grey', 'colour', 'copy', 'blur'] as const);
  const content = fromRaw(raw).extract(kept);
  if (fill === 'copy') return { image: content.extend({ ...pad, extendWith: 'copy' }), params: { axis, offset, fill } };
  if (fill === 'blur') {
    const sigma = scaledSigma(raw, 8);
    const canvas = await toRaw(fromRaw(raw).blur(sigma));
    paste(canvas, await toRaw(content), pad.left, pad.top);
    return { image: fromRaw(canvas), params: { axis, offset, fill, sigma } };
  }
  const colour = fill === 'white' ? WHITE : fill === 'grey' ? GREY : randomColour(rng);
  return { image: content.extend({ ...pad, background: colour }), params: { axis, offset, fill, colour: hex(colour) } };
}

function rot90(raw: Raw, rng: Rng): Plan {
  const angle = pick(rng, [90, 180, 270]);
  return { image: fromRaw(raw).rotate(angle), params: { angle } };
}

/**
 * Largest centred scale s such that an (s·W)×(s·H) axis-aligned box fits inside the W×H image
 * rotated by `radians`: both corner projections onto the rotated axes must stay inside.
 */
function inscribedScale(width: number, height: number, radians: number): number {
  const c = Math.abs(Math.cos(radians));
  const s = Math.abs(Math.sin(radians));
  return Math.min(width / (width * c + height * s), height / (width * s + height * c));
}

async function rotsmall(raw: Raw, rng: Rng): Promise<Plan> {
  const angle = round3(uniform(rng, 8, 25) * pick(rng, [1, -1]));
  const rotated = await fromRaw(raw).rotate(angle, { background: BLACK }).raw()
    .toBuffer({ resolveWithObject: true });
  const scale = inscribedScale(raw.width, raw.height, (angle * Math.PI) / 180);
  // One pixel less on each side: the rotated edge is antialiased into the black background.
  const width = clamp(Math.floor(raw.width * scale) - 2, 1, rotated.info.width);
  const height = clamp(Math.floor(raw.height * scale) - 2, 1, rotated.info.height);
  const left = Math.floor((rotated.info.width - width) / 2);
  const top = Math.floor((rotated.info.height - height) / 2);
  const image = sharp(rotated.data, { raw: { width: rotated.info.width, height: rotated.info.height, channels: 3 } })
    .extract({ left, top, width, height })
    .resize(raw.width, raw.height, { fit: 'fill' });
  return { image, params: { angle, cropWidth: width, cropHeight: height } };
}

/** Factors near 1 are skipped: a 2% squeeze would not test aspect invariance at all. */
function squeeze(raw: Raw, rng: Rng): Plan {
  const factor = round3(rng() < 0.5 ? uniform(rng, 0.6, 0.85) : uniform(rng, 1.15, 1.6));
  const axis = pick(rng, ['x', 'y'] as const);
  const width = axis === 'x' ? Math.max(1, Math.round(raw.width * factor)) : raw.width;
  const height = axis === 'y' ? Math.max(1, Math.round(raw.height * factor)) : raw.height;
  return { image: fromRaw(raw).resize(width, height, { fit: 'fill' }), params: { axis, factor, width, height } };
}

function colour(raw: Raw, rng: Rng): Plan {
  const params = colourParams(rng);
  return { image: fromRaw(raw).modulate(params), params };
}

/** 'b-w' rather than grayscale(): sharp's grayscale() can still write three equal channels. */
function grayscale(raw: Raw): Plan {
  return { image: fromRaw(raw).toColourspace('b-w'), params: {} };
}

function jpeg(raw: Raw, rng: Rng): Plan {
  const scale = round3(uniform(rng, 0.5, 0.8));
  const quality = randomInt(rng, 20, 50);
  const width = Math.max(8, Math.round(raw.width * scale));
  const height = Math.max(8, Math.round(raw.height * scale));
  return { image: fromRaw(raw).resize(width, height, { fit: 'fill' }), params: { scale, quality, width, height }, quality };
}

function mirror(raw: Raw): Plan {
  return { image: fromRaw(raw).flop(), params: {} };
}

function combo(raw: Raw, rng: Rng): Plan {
  const box = cropBox(raw, rng, uniform(rng, 0.6, 0.75));
  const modulation = colourParams(rng);
  const quality = randomInt(rng, 30, 60);
  const image = fromRaw(raw).extract(box).modulate(modulation);
  return { image, params: { ...box, ...modulation, quality }, quality };
}

/** Unlike rotsmall, the corners stay: the whole rotated image, shrunk to fit the original size. */
async function rotexpand(raw: Raw, rng: Rng): Promise<Plan> {
  const angle = round3(uniform(rng, 8, 25) * pick(rng, [1, -1]));
  const rotated = await toRaw(fromRaw(raw).rotate(angle, { background: BLACK }));
  const image = fromRaw(rotated).resize(raw.width, raw.height, { fit: 'fill' });
  return { image, params: { angle, expandedWidth: rotated.width, expandedHeight: rotated.height } };
}

/** Half the time one width for all four sides, otherwise four independent ones. */
function border(raw: Raw, rng: Rng): Plan {
  const first = uniform(rng, 0.05, 0.2);
  const same = rng() < 0.5;
  const [t, b, l, r] = [first, ...[0, 1, 2].map(() => (same ? first : uniform(rng, 0.05, 0.2)))];
  const side = (f: number, size: number): number => Math.max(1, Math.round(size * f));
  const pad = { top: side(t, raw.height), bottom: side(b, raw.height), left: side(l, raw.width), right: side(r, raw.width) };
  const colour = solidFill(rng);
  return { image: fromRaw(raw).extend({ ...pad, background: colour }), params: { ...pad, colour: hex(colour) } };
}

/** Random colour cells, cellsLo–cellsHi per side, upscaled bicubically to a smooth field. */
async function noiseField(rng: Rng, width: number, height: number, cellsLo: number, cellsHi: number): Promise<Raw> {
  const cols = randomInt(rng, cellsLo, cellsHi);
  const rows = randomInt(rng, cellsLo, cellsHi);
  const cells = { data: Buffer.from(Array.from({ length: cols * rows * 3 }, () => randomInt(rng, 0, 255))), width: cols, height: rows };
  return toRaw(fromRaw(cells).resize(width, height, { fit: 'fill', kernel: 'cubic' }));
}

/**
 * zoomout's stand-in for "another photo": smooth colour noise, a coarse field (3–6 cells a side)
 * with a fainter fine one (12–20 cells) on top for texture. Drawn from the rng, not from the image
 * itself: a background made of the original would plant a second, partial copy of it.
 */
async function backdrop(rng: Rng, width: number, height: number): Promise<Raw> {
  const coarse = await noiseField(rng, width, height, 3, 6);
  const fine = await noiseField(rng, width, height, 12, 20);
  for (let i = 0; i < coarse.data.length; i++) coarse.data[i] = Math.round(0.75 * coarse.data[i] + 0.25 * fine.data[i]);
  return coarse;
}

/** Where zoomout and zoomphoto paste the copy: scaled to 45–75%, anywhere inside the original's frame. */
function insetPlacement(raw: Raw, rng: Rng): { scale: number; left: number; top: number; width: number; height: number } {
  const scale = round3(uniform(rng, 0.45, 0.75));
  const width = Math.max(1, Math.round(raw.width * scale));
  const height = Math.max(1, Math.round(raw.height * scale));
  return { scale, left: randomInt(rng, 0, raw.width - width), top: randomInt(rng, 0, raw.height - height), width, height };
}

/** The copy shrunk to its placement and pasted onto `canvas` (original-size) in place. */
async function pasteInset(canvas: Raw, raw: Raw, at: ReturnType<typeof insetPlacement>): Promise<void> {
  paste(canvas, await toRaw(fromRaw(raw).resize(at.width, at.height, { fit: 'fill' })), at.left, at.top);
}

async function zoomout(raw: Raw, rng: Rng): Promise<Plan> {
  const at = insetPlacement(raw, rng);
  const solid = rng() < 0.5 ? solidFill(rng) : undefined;
  const canvas = solid ? solidRaw(raw.width, raw.height, solid) : await backdrop(rng, raw.width, raw.height);
  await pasteInset(canvas, raw, at);
  return { image: fromRaw(canvas), params: { ...at, background: solid ? hex(solid) : 'noise' } };
}

type Point = [number, number];

/** The homography (row-major 3×3) taking (0,0), (1,0), (1,1), (0,1) onto q[0..3] (Heckbert's closed form). */
function squareToQuad(q: Point[]): number[] {
  const [[x0, y0], [x1, y1], [x2, y2], [x3, y3]] = q;
  const [dx1, dx2, dx3] = [x1 - x2, x3 - x2, x0 - x1 + x2 - x3];
  const [dy1, dy2, dy3] = [y1 - y2, y3 - y2, y0 - y1 + y2 - y3];
  const den = dx1 * dy2 - dx2 * dy1;
  const g = (dx3 * dy2 - dx2 * dy3) / den;
  const h = (dx1 * dy3 - dx3 * dy1) / den;
  return [x1 - x0 + g * x1, x3 - x0 + h * x3, x0, y1 - y0 + g * y1, y3 - y0 + h * y3, y0, g, h, 1];
}

/** The adjugate: a 3×3 inverse up to scale, which is all a homography needs. */
function adjugate([a, b, c, d, e, f, g, h, i]: number[]): number[] {
  return [e * i - f * h, c * h - b * i, b * f - c * e, f * g - d * i, a * i - c * g, c * d - a * f, d * h - e * g, b * g - a * h, a * e - b * d];
}

/** Bilinear sample of raw at continuous pixel-centre coordinates (x, y), written to out at o. */
function sample(raw: Raw, x: number, y: number, out: Buffer, o: number): void {
  const sx = clamp(x, 0, raw.width - 1);
  const sy = clamp(y, 0, raw.height - 1);
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const [x1, y1] = [Math.min(x0 + 1, raw.width - 1), Math.min(y0 + 1, raw.height - 1)];
  const [fx, fy] = [sx - x0, sy - y0];
  for (let ch = 0; ch < 3; ch++) {
    const at = (px: number, py: number): number => raw.data[(py * raw.width + px) * 3 + ch];
    const top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
    const bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
    out[o + ch] = Math.round(top + (bottom - top) * fy);
  }
}

/**
 * Maps the image onto a quad whose shrunk edges have each end pulled in by half the shrink, then
 * resamples by the inverse homography (output pixel -> unit square -> source pixel).
 */
function perspective(raw: Raw, rng: Rng): Plan {
  const { width: w, height: h } = raw;
  const edges = rng() < 0.5
    ? [pick(rng, ['top', 'bottom', 'left', 'right'] as const)]
    : [pick(rng, ['top', 'bottom'] as const), pick(rng, ['left', 'right'] as const)];
  const quad: Point[] = [[0, 0], [w, 0], [w, h], [0, h]];
  const params: Record<string, number | string> = {};
  for (const edge of edges) {
    const shrink = (params[edge] = round3(uniform(rng, 0.05, 0.12)));
    const [i, j, axis, length] = { top: [0, 1, 0, w], bottom: [3, 2, 0, w], left: [0, 3, 1, h], right: [1, 2, 1, h] }[edge];
    quad[i][axis] += (shrink * length) / 2;
    quad[j][axis] -= (shrink * length) / 2;
  }
  const m = adjugate(squareToQuad(quad));
  const out = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [px, py] = [x + 0.5, y + 0.5];
      const z = m[6] * px + m[7] * py + m[8];
      const u = ((m[0] * px + m[1] * py + m[2]) / z) * w;
      const v = ((m[3] * px + m[4] * py + m[5]) / z) * h;
      if (u >= 0 && u <= w && v >= 0 && v <= h) sample(raw, u - 0.5, v - 0.5, out, (y * w + x) * 3);
    }
  }
  return { image: fromRaw({ data: out, width: w, height: h }), params };
}

const WORDS = ['sale', 'photo', 'stock', 'news', 'daily', 'preview', 'share', 'follow', 'best', 'deal', 'new', 'free'];

/** An SVG drawn by librsvg over the image; generic sans-serif, so the font is the system default. */
async function overlay(raw: Raw, rng: Rng): Promise<Plan> {
  const { width: w, height: h } = raw;
  const size = Math.max(4, Math.round(h * uniform(rng, 0.08, 0.2)));
  const text = Array.from({ length: randomInt(rng, 1, 3) }, () => pick(rng, WORDS)).join(' ');
  const [x, y] = [randomInt(rng, 0, Math.floor(w / 2)), randomInt(rng, size, h)];
  const colour = hex(randomColour(rng));
  const params: Record<string, number | string> = { text, size, x, y, colour, logo: pick(rng, ['none', 'box', 'disc'] as const) };
  let shape = '';
  if (params.logo !== 'none') {
    const r = Math.max(2, Math.round(Math.min(w, h) * uniform(rng, 0.08, 0.15)));
    const [cx, cy] = [randomInt(rng, r, w - r), randomInt(rng, r, h - r)];
    const [fill, opacity] = [hex(randomColour(rng)), round3(uniform(rng, 0.3, 0.7))];
    Object.assign(params, { cx, cy, r, fill, opacity });
    const paint = `fill="${fill}" fill-opacity="${opacity}"`;
    shape = params.logo === 'disc'
      ? `<circle cx="${cx}" cy="${cy}" r="${r}" ${paint}/>`
      : `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" ${paint}/>`;
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${shape}`
    + `<text x="${x}" y="${y}" font-family="sans-serif" font-size="${size}" fill="${colour}">${text}</text></svg>`;
  const image = await toRaw(fromRaw(raw).composite([{ input: Buffer.from(svg), left: 0, top: 0 }]).removeAlpha());
  return { image: fromRaw(image), params };
}

function blur(raw: Raw, rng: Rng): Plan {
  const sigma = round3(uniform(rng, 1, 2.5));
  const scaled = scaledSigma(raw, sigma);
  return { image: fromRaw(raw).blur(scaled), params: { sigma, scaledSigma: scaled } };
}

function crop25(raw: Raw, rng: Rng): Plan {
  const box = cropBox(raw, rng, uniform(rng, 0.22, 0.28));
  return { image: fromRaw(raw).extract(box), params: { ...box } };
}

function combo2(raw: Raw, rng: Rng): Plan {
  const box = cropBox(raw, rng, uniform(rng, 0.5, 0.8));
  const modulation = colourParams(rng);
  const sigma = round3(uniform(rng, 0.5, 1.5));
  const quality = randomInt(rng, 30, 60);
  const image = fromRaw(raw).extract(box).modulate(modulation).blur(scaledSigma(raw, sigma));
  return { image, params: { ...box, ...modulation, sigma, quality }, quality };
}

/** zoomout with a real photo around the copy: the test image is then a crop of a picture that is mostly something else. */
async function zoomphoto(raw: Raw, rng: Rng, context: TransformContext): Promise<Plan> {
  if (!context.backdrop) throw invalidOption('transform.backdrop', 'a photo to paste the copy into (zoomphoto)', 'none');
  const at = insetPlacement(raw, rng);
  const canvas = await toRaw(fromRaw(await decodeRgb(context.backdrop)).resize(raw.width, raw.height, { fit: 'cover' }));
  await pasteInset(canvas, raw, at);
  return { image: fromRaw(canvas), params: { ...at } };
}

/**
 * A comparison figure, a contact sheet, a meme template: the test image keeps its size and a
 * side or two on the collage's edge, and the other tiles are other pictures (crops of the
 * backdrop photo, each its own picture with seams between them).
 */
async function mosaic(raw: Raw, rng: Rng, context: TransformContext): Promise<Plan> {
  if (!context.backdrop) throw invalidOption('transform.backdrop', 'a photo to cut the other tiles from (mosaic)', 'none');
  const [columns, rows] = pick(rng, [[2, 1], [1, 2], [2, 2]] as const);
  const tile = randomInt(rng, 0, columns * rows - 1);
  const { width, height } = raw;
  const canvas = solidRaw(width * columns, height * rows, BLACK);
  const other = await toRaw(fromRaw(await decodeRgb(context.backdrop)).resize(width * 2, height * 2, { fit: 'cover' }));
  for (let k = 0; k < columns * rows; k++) {
    const [left, top] = [(k % columns) * width, Math.floor(k / columns) * height];
    // Tile k of the others shows the backdrop's quarter k + 1 (mod 4), never the one at its own
    // place: neighbouring tiles are then different pictures with a seam between them, not one photo.
    const quarter = (k + 1) % 4;
    const piece = k === tile ? raw : await toRaw(fromRaw(other).extract({ left: (quarter % 2) * width, top: (quarter >> 1) * height, width, height }));
    paste(canvas, piece, left, top);
  }
  return { image: fromRaw(canvas), params: { columns, rows, tile } };
}

/** The rotated image's centre at the original size: neither expanded (rotexpand) nor cropped clean of the corners (rotsmall). */
async function rotinplace(raw: Raw, rng: Rng): Promise<Plan> {
  const angle = round3(uniform(rng, 8, 25) * pick(rng, [1, -1]));
  const rotated = await toRaw(fromRaw(raw).rotate(angle, { background: BLACK }));
  const left = Math.floor((rotated.width - raw.width) / 2);
  const top = Math.floor((rotated.height - raw.height) / 2);
  return { image: fromRaw(rotated).extract({ left, top, width: raw.width, height: raw.height }), params: { angle } };
}

/** Box–Muller gaussian noise, the same σ on every channel. */
function noise(raw: Raw, rng: Rng): Plan {
  const sigma = round3(uniform(rng, 8, 20));
  const data = Buffer.alloc(raw.data.length);
  for (let i = 0; i < data.length; i++) {
    const gauss = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    data[i] = clamp(Math.round(raw.data[i]! + sigma * gauss), 0, 255);
  }
  return { image: fromRaw({ ...raw, data }), params: { sigma } };
}

async function pixelate(raw: Raw, rng: Rng): Promise<Plan> {
  const factor = round3(uniform(rng, 0.25, 0.45));
  const width = Math.max(1, Math.round(raw.width * factor));
  const height = Math.max(1, Math.round(raw.height * factor));
  const small = await toRaw(fromRaw(raw).resize(width, height, { fit: 'fill' }));
  return { image: fromRaw(small).resize(raw.width, raw.height, { fit: 'fill', kernel: 'nearest' }), params: { factor, width, height } };
}

const OPS: Readonly<Record<FamilyName, Op>> = Object.freeze({
  crop50, shift, rot90, rotsmall, squeeze, colour, grayscale, jpeg, mirror, combo,
  shiftfill, rotexpand, border, zoomout, perspective, overlay, blur, crop25, combo2,
  zoomphoto, noise, pixelate, rotinplace, mosaic,
});

/** Families that need a {@link TransformContext} field. */
export const NEEDS_BACKDROP: readonly FamilyName[] = Object.freeze(['zoomphoto', 'mosaic']);

/**
 * Encodes deterministically: fixed settings, no metadata, baseline libjpeg-turbo (no mozjpeg
 * trellis search), so the same pixels always give the same bytes.
 */
async function encode(plan: Plan): Promise<{ data: Buffer; ext: 'jpg' | 'png' }> {
  if (plan.quality === undefined) {
    return { data: await plan.image.png({ compressionLevel: 9 }).toBuffer(), ext: 'png' };
  }
  const options = { quality: plan.quality, chromaSubsampling: '4:2:0', mozjpeg: false };
  return { data: await plan.image.jpeg(options).toBuffer(), ext: 'jpg' };
}

/**
 * Applies one copy transformation to an encoded image.
 *
 * @param input - an encoded image (JPEG, PNG, anything sharp decodes); EXIF orientation is applied
 *   and alpha dropped first.
 * @param family - which edit, one of {@link FAMILIES}.
 * @param rng - source of every random draw; the same seed state gives byte-identical output.
 * @param context - zoomphoto's backdrop photo (encoded); other families ignore it.
 * @returns the encoded copy (PNG for lossless families, JPEG for `jpeg`, `combo` and `combo2`) and the
 *   parameters that were drawn.
 * @throws ConfigError for an unknown family, or zoomphoto without a backdrop.
 */
export async function applyTransform(input: Buffer, family: FamilyName, rng: () => number, context: TransformContext = {}): Promise<TransformResult> {
  if (!Object.hasOwn(FAMILIES, family)) {
    throw invalidOption('transform.family', `one of ${Object.keys(FAMILIES).join(', ')}`, family);
  }
  const raw = await decodeRgb(input);
  const plan = await OPS[family](raw, rng, context);
  return { ...(await encode(plan)), params: plan.params };
}

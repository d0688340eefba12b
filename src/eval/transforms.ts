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
type Op = (raw: Raw, rng: Rng) => Promise<Plan> | Plan;

const BLACK = { r: 0, g: 0, b: 0 };
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

/** Keeps the part of the image that stays in frame, then pads the vacated side with black. */
function shift(raw: Raw, rng: Rng): Plan {
  const axis = pick(rng, ['x', 'y'] as const);
  const size = axis === 'x' ? raw.width : raw.height;
  const magnitude = clamp(Math.round(size * uniform(rng, 0.1, 0.2)), 1, size - 1);
  const offset = magnitude * pick(rng, [1, -1]);
  const kept = axis === 'x'
    ? { left: offset > 0 ? 0 : magnitude, top: 0, width: raw.width - magnitude, height: raw.height }
    : { left: 0, top: offset > 0 ? 0 : magnitude, width: raw.width, height: raw.height - magnitude };
  const pad = { top: 0, bottom: 0, left: 0, right: 0, background: BLACK };
  if (axis === 'x') pad[offset > 0 ? 'left' : 'right'] = magnitude;
  else pad[offset > 0 ? 'top' : 'bottom'] = magnitude;
  return { image: fromRaw(raw).extract(kept).extend(pad), params: { axis, offset } };
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

const OPS: Readonly<Record<FamilyName, Op>> = Object.freeze({
  crop50, shift, rot90, rotsmall, squeeze, colour, grayscale, jpeg, mirror, combo,
});

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
 * @returns the encoded copy (PNG for lossless families, JPEG for `jpeg` and `combo`) and the
 *   parameters that were drawn.
 * @throws ConfigError for an unknown family.
 */
export async function applyTransform(input: Buffer, family: FamilyName, rng: () => number): Promise<TransformResult> {
  if (!Object.hasOwn(FAMILIES, family)) {
    throw invalidOption('transform.family', `one of ${Object.keys(FAMILIES).join(', ')}`, family);
  }
  const raw = await decodeRgb(input);
  const plan = await OPS[family](raw, rng);
  return { ...(await encode(plan)), params: plan.params };
}

/**
 * The recall@P99 suite: a downstream set of originals, and an upstream set where every original
 * appears once per transformation family, hidden among distractors that copy nothing. Built from
 * any folder of photos, seeded, so the same seed always gives the same files and answer key.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { ConfigError, invalidOption } from '../errors.js';
import { imageInput } from '../scan/decode.js';
import { isRasterFormat } from '../scan/formats.js';
import { writeCsvFile } from '../report/csv.js';
import { IMAGE_EXTENSIONS } from '../sources/list.js';
import { mulberry32, shuffled } from '../util/rng.js';
import { SILENT, type Progress } from '../util/progress-types.js';
import { applyTransform, FAMILIES, NEEDS_BACKDROP, type FamilyName } from './transforms.js';

/** How to build a suite. */
export interface SuiteOptions {
  /** Images taken as the downstream set; each gets one copy per family upstream. */
  originals: number;
  /** Images copied upstream unchanged as non-matching queries; default every remaining image. */
  distractors?: number;
  /**
   * Take the distractors from this folder instead of the originals' (e.g. tiny-imagenet/train
   * beside val/: the scale a real audit runs at needs more negatives than one folder holds).
   */
  distractorsFrom?: string;
  seed: number;
  /** Where downstream/, upstream/ and ground-truth.csv are written. */
  workDir: string;
  /** Default every family of {@link FAMILIES}. */
  families?: FamilyName[];
  /** Transforms and copies in flight; default the number of cores. */
  concurrency?: number;
  /**
   * Side in pixels every suite image is brought down to (fit inside, PNG), e.g. 32 for CIFAR-size
   * test sets: originals and distractors are downscaled, copies are made from the downscaled
   * original and fitted inside the same side. Default: the photos as they are.
   */
  resolution?: number;
  progress?: Progress;
}

/** A planted copy: its original (a name in downstreamDir) and the family that made it. */
export interface SuiteCopy {
  downstream: string;
  family: FamilyName;
}

/** A built suite; names are file names inside the two folders. */
export interface Suite {
  downstreamDir: string;
  upstreamDir: string;
  /** Planted copies by upstream name, ordered by original, then family in {@link FAMILIES} order. */
  truth: Map<string, SuiteCopy>;
  /** Upstream names of the distractors, sorted. */
  distractors: string[];
  /** The folder the photos came from, and how many images it held. */
  source: { folder: string; images: number };
  seed: number;
  families: FamilyName[];
}

/** Files in `workDir` that mark it as a suite neardup wrote, so a rebuild may clear it. */
const GROUND_TRUTH = 'ground-truth.csv';
const SOURCES = 'sources.csv';

const sortStrings = (xs: string[]): string[] => xs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const isImage = (name: string): boolean => IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());

/**
 * Image files under `folder`, recursively, as sorted relative paths. Sorted because directory
 * order differs between file systems and the seeded shuffle must see one order everywhere.
 * Anything else (labels.tsv, READMEs) is ignored.
 */
export async function listImages(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && isImage(e.name)).map((e) => relative(folder, join(e.parentPath, e.name)));
  return sortStrings(files);
}

/** An independent 32-bit seed per named stream, so one copy's draws never shift another's. */
export function streamSeed(seed: number, stream: string): number {
  return createHash('sha256').update(`${seed}:${stream}`).digest().readUInt32LE(0);
}

function checkInt(name: string, v: unknown, lo: number, hi: number): void {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi)) throw invalidOption(name, `an integer from ${lo} to ${hi}`, v);
}

function checkOptions(folder: string, o: SuiteOptions): FamilyName[] {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new ConfigError(`Expected a folder of photos for eval.folder but received ${JSON.stringify(folder)}, which is not a folder`, 'E_SOURCE');
  }
  checkInt('eval.originals', o.originals, 1, 1_000_000);
  if (o.distractors !== undefined) checkInt('eval.distractors', o.distractors, 0, 100_000_000);
  checkInt('eval.seed', o.seed, 0, 2 ** 32 - 1);
  if (o.resolution !== undefined) checkInt('eval.resolution', o.resolution, 8, 4096);
  const families = o.families ?? (Object.keys(FAMILIES) as FamilyName[]);
  if (families.length === 0) throw invalidOption('eval.families', 'at least one family', '');
  for (const f of families) if (!Object.hasOwn(FAMILIES, f)) throw invalidOption('eval.families', `one of ${Object.keys(FAMILIES).join(', ')}`, f);
  const work = resolve(o.workDir);
  const src = resolve(folder);
  if (work === src || work.startsWith(src + sep)) {
    throw new ConfigError(`The suite's work folder ${o.workDir} is inside the photo folder ${folder}: a rebuild would list its own copies; pick a folder outside it`, 'E_CONFIG');
  }
  return families;
}

/** Clears a previous suite in workDir; refuses to clear folders neardup did not write. */
async function prepareWorkDir(workDir: string): Promise<void> {
  const ours = existsSync(join(workDir, GROUND_TRUTH));
  for (const sub of ['downstream', 'upstream']) {
    const dir = join(workDir, sub);
    if (!existsSync(dir)) continue;
    if (!ours && (await readdir(dir)).length > 0) {
      throw new ConfigError(`${dir} is not empty and holds no ${GROUND_TRUTH}: the suite's work folder must be empty or an earlier suite`, 'E_CONFIG');
    }
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(join(workDir, 'downstream'), { recursive: true });
  await mkdir(join(workDir, 'upstream'), { recursive: true });
}

/** Picks originals and distractors: disjoint, by a seeded shuffle of the sorted listing (or distractors from their own folder). */
function split(images: string[], o: SuiteOptions, others: string[] | undefined): { originals: string[]; distractors: string[] } {
  if (others) {
    const wanted = o.distractors ?? others.length;
    if (o.originals > images.length) throw new ConfigError(`The folder holds ${images.length} images, fewer than ${o.originals} originals: lower --originals`, 'E_CONFIG');
    if (wanted > others.length) throw new ConfigError(`${o.distractorsFrom} holds ${others.length} images, fewer than ${wanted} distractors: lower --distractors`, 'E_CONFIG');
    const originals = shuffled(mulberry32(o.seed), images).slice(0, o.originals);
    return { originals, distractors: shuffled(mulberry32(streamSeed(o.seed, 'distractors')), others).slice(0, wanted) };
  }
  const wanted = o.distractors ?? images.length - o.originals;
  if (o.originals + Math.max(0, wanted) > images.length || wanted < 0) {
    throw new ConfigError(`The folder holds ${images.length} images, fewer than ${o.originals} originals + ${Math.max(0, wanted)} distractors: lower --originals or --distractors`, 'E_CONFIG');
  }
  const order = shuffled(mulberry32(o.seed), images);
  return { originals: order.slice(0, o.originals), distractors: order.slice(o.originals, o.originals + wanted) };
}

type Job = { kind: 'copy'; original: number; family: FamilyName } | { kind: 'distractor'; source: string };

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Upstream files written, by neutral name: where each came from. */
interface Written { name: string; job: Job }

/**
 * Builds the suite in `o.workDir`: `downstream/` (the originals), `upstream/` (one copy per
 * original per family plus the distractors, under neutral names in shuffled order),
 * `ground-truth.csv` (upstream,downstream,family) and `sources.csv` (each file's source photo).
 * Distractors are copied byte for byte, never re-encoded, so they keep their natural artefacts.
 *
 * @throws ConfigError for a missing folder, bad counts or families, too few images, or a work
 *   folder that is not empty and not an earlier suite.
 */
export async function buildSuite(folder: string, o: SuiteOptions): Promise<Suite> {
  const families = checkOptions(folder, o);
  const images = await listImages(folder);
  if (o.distractorsFrom !== undefined && !(existsSync(o.distractorsFrom) && statSync(o.distractorsFrom).isDirectory())) {
    throw new ConfigError(`Expected a folder of photos for --distractors-from but received ${JSON.stringify(o.distractorsFrom)}, which is not a folder`, 'E_SOURCE');
  }
  const distractorFolder = o.distractorsFrom ?? folder;
  const { originals, distractors } = split(images, o, o.distractorsFrom === undefined ? undefined : await listImages(o.distractorsFrom));
  await prepareWorkDir(o.workDir);
  const p = o.progress ?? SILENT;
  const limit = pLimit(o.concurrency ?? availableParallelism());
  const res = o.resolution;
  const backdrops = backdropPool(images, originals, folder, distractors, distractorFolder, families);
  const downNames = originals.map((rel, i) => `${pad(i + 1, String(originals.length).length)}-${res ? `${basename(rel, extname(rel))}.png` : basename(rel)}`);
  const downstreamDir = join(o.workDir, 'downstream');
  const upstreamDir = join(o.workDir, 'upstream');
  await Promise.all(originals.map((rel, i) => limit(() => placePhoto(join(folder, rel), join(downstreamDir, downNames[i]), res))));
  const jobs: Job[] = [
    ...originals.flatMap((_, original) => families.map((family): Job => ({ kind: 'copy', original, family }))),
    ...distractors.map((source): Job => ({ kind: 'distractor', source })),
  ];
  // Shuffled before numbering so neither a name nor the listing order hints at a copy's original.
  const order = shuffled(mulberry32(streamSeed(o.seed, 'names')), jobs);
  const width = String(order.length).length;
  p.start('build suite', order.length);
  const written = await Promise.all(order.map((job, i) => limit(async (): Promise<Written> => {
    const stem = `u${pad(i + 1, width)}`;
    const name = job.kind === 'copy'
      ? await writeCopy(folder, originals[job.original], job.family, o.seed, join(upstreamDir, stem), res, backdrops)
      : await copyDistractor(distractorFolder, job.source, join(upstreamDir, stem), res);
    p.tick();
    return { name: basename(name), job };
  })));
  p.done(`${originals.length} originals, ${written.length - distractors.length} copies, ${distractors.length} distractors`);
  const suite = assemble(written, downNames, families, { downstreamDir, upstreamDir, folder, images: images.length, seed: o.seed });
  await writeManifests(o.workDir, suite, written, originals, downNames);
  return suite;
}

/**
 * Photos zoomphoto may paste a copy into, and mosaic cut its other tiles from: the folder's photos that are not originals (a backdrop
 * that is an original would plant a second copy), else the distractors.
 */
function backdropPool(images: string[], originals: string[], folder: string, distractors: string[], distractorFolder: string, families: FamilyName[]): string[] {
  if (!families.some((f) => NEEDS_BACKDROP.includes(f))) return [];
  const taken = new Set(originals);
  const spare = images.filter((rel) => !taken.has(rel)).map((rel) => join(folder, rel));
  const pool = spare.length > 0 ? spare : distractorFolder === folder ? [] : distractors.map((rel) => join(distractorFolder, rel));
  if (pool.length === 0) {
    throw new ConfigError(`zoomphoto and mosaic put each copy beside another photo, and ${folder} holds no photo besides the ${originals.length} originals: lower --originals, add --distractors-from, or leave ${NEEDS_BACKDROP.join(' and ')} out`, 'E_CONFIG');
  }
  return pool;
}

async function writeCopy(folder: string, original: string, family: FamilyName, seed: number, stem: string, res: number | undefined, backdrops: string[]): Promise<string> {
  // Keyed by the original's path, so a bigger --originals leaves the existing copies unchanged.
  const rng = mulberry32(streamSeed(seed, `copy:${original}:${family}`));
  const bytes = await readPhoto(join(folder, original));
  const backdrop = NEEDS_BACKDROP.includes(family) ? await readPhoto(pickBackdrop(backdrops, seed, original, family)) : undefined;
  const result = await applyTransform(res ? await fitInside(bytes, res) : bytes, family, rng, { backdrop });
  const data = res && (await tooLarge(result.data, res)) ? await fitInside(result.data, res) : result.data;
  const path = `${stem}.${data === result.data ? result.ext : 'png'}`;
  await writeFile(path, data);
  return path;
}

/**
 * The backdrop of an original's zoomphoto or mosaic copy, from its own stream so the copy's other
 * draws stay as they were; each family its own (zoomphoto's stream predates mosaic).
 */
const pickBackdrop = (pool: string[], seed: number, original: string, family: FamilyName): string =>
  pool[Math.floor(mulberry32(streamSeed(seed, family === 'zoomphoto' ? `backdrop:${original}` : `backdrop:${original}:${family}`))() * pool.length)]!;

async function copyDistractor(folder: string, source: string, stem: string, res: number | undefined): Promise<string> {
  const path = `${stem}${res ? '.png' : extname(source)}`;
  await placePhoto(join(folder, source), path, res);
  return path;
}

/** A photo into the suite: byte for byte (keeping its natural artefacts), or fitted inside `res` as PNG. */
async function placePhoto(from: string, to: string, res: number | undefined): Promise<void> {
  if (res) await writeFile(to, await fitInside(await readPhoto(from), res));
  else await copyFile(from, to);
}

/** A photo's bytes in a format the transforms' libvips reads: BMP, ICO and TGA (which it cannot) as PNG via the decode module. */
async function readPhoto(path: string): Promise<Buffer> {
  const bytes = await readFile(path);
  if (!isRasterFormat(bytes.subarray(0, 64))) return bytes;
  const input = imageInput(path);
  if (!input) throw new ConfigError(`Cannot read ${path} for the suite: it is a damaged BMP, ICO or TGA file; remove it from the folder`, 'E_SOURCE');
  return input.png().toBuffer();
}

/** The image shrunk to fit inside res×res (never enlarged), as PNG, so the side is the only change. */
const fitInside = (bytes: Buffer, res: number): Promise<Buffer> =>
  sharp(bytes).resize(res, res, { fit: 'inside', withoutEnlargement: true }).png().toBuffer();

const tooLarge = async (bytes: Buffer, res: number): Promise<boolean> => {
  const m = await sharp(bytes).metadata();
  return (m.width ?? 0) > res || (m.height ?? 0) > res;
};

interface AssembleContext { downstreamDir: string; upstreamDir: string; folder: string; images: number; seed: number }

function assemble(written: Written[], downNames: string[], families: FamilyName[], c: AssembleContext): Suite {
  const byJob = new Map(written.map((w) => [w.job, w.name]));
  const truth = new Map<string, SuiteCopy>();
  // Insertion order original-then-family, so per-family tables come out in FAMILIES order.
  const copies = written.filter((w) => w.job.kind === 'copy').map((w) => w.job as Extract<Job, { kind: 'copy' }>);
  copies.sort((a, b) => a.original - b.original || families.indexOf(a.family) - families.indexOf(b.family));
  for (const job of copies) truth.set(byJob.get(job)!, { downstream: downNames[job.original], family: job.family });
  const distractors = sortStrings(written.filter((w) => w.job.kind === 'distractor').map((w) => w.name));
  return {
    downstreamDir: c.downstreamDir, upstreamDir: c.upstreamDir, truth, distractors,
    source: { folder: c.folder, images: c.images }, seed: c.seed, families: [...families],
  };
}

async function writeManifests(workDir: string, suite: Suite, written: Written[], originals: string[], downNames: string[]): Promise<void> {
  const truthRows = sortStrings([...suite.truth.keys()]).map((up) => {
    const t = suite.truth.get(up)!;
    return [up, t.downstream, t.family];
  });
  await writeCsvFile(join(workDir, GROUND_TRUTH), ['upstream', 'downstream', 'family'], truthRows);
  // Which photo each file came from: needed to trace a false match back to the source folder.
  const sourceRows = [
    ...downNames.map((name, i) => [`downstream/${name}`, 'original', originals[i]]),
    ...written.map((w) => [`upstream/${w.name}`, w.job.kind, w.job.kind === 'copy' ? originals[w.job.original] : w.job.source]),
  ];
  sourceRows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  await writeCsvFile(join(workDir, SOURCES), ['file', 'role', 'source'], sourceRows);
}

/**
 * The files behind report.html's review view: which pairs a reviewer sees, their data as one
 * compact script beside the report (review-data.js), and the pictures as small files under
 * thumbs/ (one thumbnail per image content, one overlay per aligned pair), written once and
 * reused by every later report into the same folder. The page loads them lazily, a page of
 * pairs at a time, so 50,000 pairs open about as fast as 50 (scripts/bench-report.ts measures it).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pLimit from 'p-limit';
import type { Catalog } from '../state/catalog.js';
import type { CandidateView } from '../state/queries.js';
import { previewInput } from '../scan/decode.js';
import { viewName, writeFileAtomic } from '../purge/outputs.js';
import { byPath } from '../util/order.js';
import { decodeSquare, overlayWebp, sharpOf } from './overlay.js';
import { transformOf, type Transform } from './write.js';

/**
 * Near misses: candidates the model put below the threshold whose deciding score (the verified
 * score, or the cosine with `--verify off`) is within this much of it. With verification the
 * unrelated look-alikes of the calibration suite stay under 0.50 against the card's 0.629, so
 * 0.15 shows the doubtful band and little noise; with `--verify off` the floor is 0.05 below the
 * threshold, so every stored candidate below it is a near miss.
 */
export const NEAR_MISS_MARGIN = 0.15;
/** Thumbnail and overlay side in the review view (px). */
export const REVIEW_THUMB_SIDE = 96;
/** Pairs rendered at once. */
export const REVIEW_PAGE_SIZE = 50;
/** The data file beside report.html. */
export const REVIEW_DATA_FILE = 'review-data.js';
export const THUMBS_DIR = 'thumbs';

export interface ReviewOptions {
  threshold: number;
  /** The threshold applies to the verified score (else to the cosine). */
  verify: boolean;
  /** Names the run in the page's saved decisions (localStorage): the catalog and the output folder. */
  catalogPath: string;
  margin?: number;
}

/** What report.html needs to know of the review files. */
export interface ReviewSection {
  dataFile: string; runKey: string; pairs: number; matches: number; nearMisses: number; margin: number; pageSize: number;
  /** Near misses left out beyond REVIEW_LIMIT (the lowest-scoring ones). */
  omitted?: number;
  thumbs: { written: number; reused: number; failed: number }; overlays: { written: number; reused: number; failed: number };
}

/** The score the threshold applies to; exact duplicates count as 1, unverified pairs as nothing. */
function decidingScore(c: CandidateView, verify: boolean): number | null {
  if (c.kind === 'exact') return 1;
  return verify ? c.verifyScore : c.score;
}

/**
 * Near misses shown at most: the matches and every pair a reviewer decided are always shown,
 * the near misses fill up to this many pairs, best first. 50,000 pairs open in Chromium in
 * ~2.5 s (scripts/bench-report.ts); with `--verify off` nearly every candidate is a near miss,
 * and writing their pictures would otherwise dominate a large audit.
 */
export const REVIEW_LIMIT = 50_000;

/**
 * The pairs a reviewer sees: every match (the model's or a reviewer's), every pair a reviewer
 * decided, and the best near misses up to {@link REVIEW_LIMIT} pairs in all; highest deciding
 * score first, so near misses follow the matches. `omitted`: near misses left out.
 */
export function reviewSelection(all: readonly CandidateView[], o: Pick<ReviewOptions, 'threshold' | 'verify' | 'margin'>, limit = REVIEW_LIMIT): CandidateView[] & { omitted?: number } {
  const floor = o.threshold - (o.margin ?? NEAR_MISS_MARGIN);
  const key = (c: CandidateView) => decidingScore(c, o.verify) ?? -Infinity;
  const sorted = all
    .filter((c) => c.decision === 'match' || c.decidedBy === 'human' || (decidingScore(c, o.verify) ?? -Infinity) >= floor)
    .sort((a, b) => key(b) - key(a) || b.score - a.score || byPath(a.upstream, b.upstream) || byPath(a.downstream, b.downstream));
  const kept = (c: CandidateView) => c.decision === 'match' || c.decidedBy === 'human';
  let room = Math.max(0, limit - sorted.filter(kept).length);
  const out: CandidateView[] & { omitted?: number } = sorted.filter((c) => kept(c) || room-- > 0);
  out.omitted = sorted.length - out.length;
  return out;
}

/** One image of the page: its path, its thumbnail file (relative to report.html; '' when none) and its meta text. */
type ImageEntry = [path: string, thumb: string, meta: string];
/**
 * One pair: upstream and downstream image (indexes into images), cosine, verified score (null:
 * not verified), the downstream view, whether the model decided a match (1/0), the recorded
 * human decision ('a' accept, 'r' reject, '' none), the reason, the overlay file ('' none) and
 * the deciding score the list is sorted by (merge sorts shards' pairs together by it).
 */
type PairEntry = [up: number, down: number, cosine: number, verified: number | null, view: string, model: 0 | 1, human: '' | 'a' | 'r', reason: string, overlay: string, order: number | null];

/** review-data.js's content. */
export interface ReviewData {
  run: string; threshold: number; by: 'verified' | 'cosine'; margin: number; pageSize: number;
  images: ImageEntry[]; pairs: PairEntry[];
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
const counter = () => ({ written: 0, reused: 0, failed: 0 });

/** The key the page stores its decisions under: one per catalog and output folder, so a new threshold keeps them. */
export function runKeyOf(catalogPath: string, outDir: string): string {
  return createHash('sha1').update(`${resolve(catalogPath)}\0${resolve(outDir)}`).digest('hex').slice(0, 16);
}

/**
 * Write thumbs/ and review-data.js for these candidates (all of them: the selection is made
 * here) and say what report.html should show.
 */
export async function writeReviewFiles(catalog: Catalog, outDir: string, all: readonly CandidateView[], o: ReviewOptions): Promise<ReviewSection> {
  const margin = o.margin ?? NEAR_MISS_MARGIN;
  const pairs = reviewSelection(all, { ...o, margin });
  mkdirSync(join(outDir, THUMBS_DIR), { recursive: true });
  const images = await writeThumbnails(catalog, outDir, pairs);
  const overlays = await writeOverlays(catalog, outDir, pairs, images.hashes);
  const runKey = runKeyOf(o.catalogPath, outDir);
  const data: ReviewData = {
    run: runKey, threshold: o.threshold, by: o.verify ? 'verified' : 'cosine', margin, pageSize: REVIEW_PAGE_SIZE,
    images: images.entries,
    pairs: pairs.map((c, i): PairEntry => [
      images.index.get(c.upstreamId)!, images.index.get(c.downstreamId)!, round(c.score, 4), c.verifyScore === null ? null : round(c.verifyScore, 3),
      viewName(c.view), c.modelDecision === 'match' ? 1 : 0, c.decidedBy !== 'human' ? '' : c.decision === 'match' ? 'a' : 'r', c.reason, overlays.files[i]!,
      orderScore(c, o.verify),
    ]),
  };
  writeReviewData(outDir, data);
  return { ...sectionOf(data, images.stats, overlays.stats), ...(pairs.omitted ? { omitted: pairs.omitted } : {}) };
}

const orderScore = (c: CandidateView, verify: boolean): number | null => {
  const s = decidingScore(c, verify);
  return s === null ? null : round(s, 6);
};

const DATA_PREFIX = 'window.NEARDUP_REVIEW = ';
const DATA_SUFFIX = ';\n';

// A plain object literal (JSON is valid JavaScript): measured in Chromium on 50,000 pairs it loads
// in half the time of the same data as a string handed to JSON.parse (the 10 MB string literal
// costs more to scan than the literal does to parse).
function writeReviewData(outDir: string, data: ReviewData): void {
  writeFileAtomic(join(outDir, REVIEW_DATA_FILE), `${DATA_PREFIX}${JSON.stringify(data)}${DATA_SUFFIX}`);
}

function readReviewData(dir: string): ReviewData | undefined {
  const path = join(dir, REVIEW_DATA_FILE);
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  if (!text.startsWith(DATA_PREFIX) || !text.endsWith(DATA_SUFFIX)) return undefined;
  return JSON.parse(text.slice(DATA_PREFIX.length, -DATA_SUFFIX.length)) as ReviewData;
}

function sectionOf(data: ReviewData, thumbs: ReviewSection['thumbs'], overlays: ReviewSection['overlays']): ReviewSection {
  const matches = data.pairs.filter((p) => p[6] === 'a' || (p[5] === 1 && p[6] !== 'r')).length;
  return {
    dataFile: REVIEW_DATA_FILE, runKey: data.run, pairs: data.pairs.length, matches, nearMisses: data.pairs.filter((p) => p[5] === 0).length,
    margin: data.margin, pageSize: data.pageSize, thumbs, overlays,
  };
}

/**
 * `neardup merge`: the shards' review data as one (each shard listed its own upstream images, so
 * their pairs are disjoint and together the unsharded run's), with their pictures copied over.
 * Undefined when a shard has no review data (written by an older neardup): no review view then.
 */
export function mergeReviewFiles(dirs: string[], outDir: string, catalogPath: string): ReviewSection | undefined {
  const parts = dirs.map((dir) => ({ dir, data: readReviewData(dir) }));
  if (parts.length === 0 || parts.some((p) => !p.data)) return undefined;
  const first = parts[0]!.data!;
  const images: ImageEntry[] = [];
  const index = new Map<string, number>();
  const pairs: PairEntry[] = [];
  const stats = { thumbs: counter(), overlays: counter() };
  mkdirSync(join(outDir, THUMBS_DIR), { recursive: true });
  for (const { dir, data } of parts) {
    const at = (i: number) => {
      const image = data!.images[i]!;
      if (!index.has(image[0])) {
        index.set(image[0], images.length);
        images.push(image);
        copyPicture(dir, outDir, image[1], stats.thumbs);
      }
      return index.get(image[0])!;
    };
    for (const p of data!.pairs) {
      copyPicture(dir, outDir, p[8], stats.overlays);
      pairs.push([at(p[0]), at(p[1]), ...p.slice(2)] as PairEntry);
    }
  }
  const path = (i: number) => images[i]![0];
  pairs.sort((a, b) => (b[9] ?? -Infinity) - (a[9] ?? -Infinity) || b[2] - a[2] || byPath(path(a[0]), path(b[0])) || byPath(path(a[1]), path(b[1])));
  const data: ReviewData = { ...first, run: runKeyOf(catalogPath, outDir), images, pairs };
  writeReviewData(outDir, data);
  return sectionOf(data, stats.thumbs, stats.overlays);
}

function copyPicture(from: string, to: string, file: string, stats: ReturnType<typeof counter>): void {
  if (!file) return;
  if (existsSync(join(to, file))) stats.reused++;
  else if (existsSync(join(from, file))) {
    copyFileSync(join(from, file), join(to, file));
    stats.written++;
  } else stats.failed++;
}

/** Write a file through a temporary name, so a killed run never leaves half a picture that later runs would reuse. */
function writeOnce(path: string, bytes: Buffer): void {
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}

/** A small JPEG thumbnail (aspect kept), or undefined when the image cannot be read or decoded. */
async function thumbnailJpeg(catalog: Catalog, id: number): Promise<Buffer | undefined> {
  const ref = catalog.imageRef(id);
  const input = ref && (await previewInput(ref));
  if (!input) return undefined;
  try {
    return await sharpOf(input).rotate().resize(REVIEW_THUMB_SIDE, REVIEW_THUMB_SIDE, { fit: 'inside' }).flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toBuffer();
  } catch {
    return undefined;
  }
}

/** One thumbnail per image content (named by its hash): an image shared by many pairs, or by two runs, is written once. */
async function writeThumbnails(catalog: Catalog, outDir: string, pairs: readonly CandidateView[]) {
  const index = new Map<number, number>();
  const entries: ImageEntry[] = [];
  const hashes: (string | null)[] = [];
  const stats = counter();
  const hashOf = catalog.db.prepare('SELECT hash, meta FROM images WHERE id = ?');
  const todo: { id: number; at: number; file: string }[] = [];
  const add = (id: number, path: string) => {
    if (index.has(id)) return;
    const row = hashOf.get(id) as { hash: string | null; meta: string | null };
    const file = row.hash ? `${THUMBS_DIR}/${row.hash}.jpg` : '';
    index.set(id, entries.length);
    hashes.push(row.hash);
    if (file && !existsSync(join(outDir, file))) todo.push({ id, at: entries.length, file });
    else if (file) stats.reused++;
    entries.push([path, file, row.meta ?? '']);
  };
  for (const c of pairs) {
    add(c.upstreamId, c.upstream);
    add(c.downstreamId, c.downstream);
  }
  const limit = pLimit(4);
  await Promise.all(todo.map((t) => limit(async () => {
    const jpeg = await thumbnailJpeg(catalog, t.id);
    if (jpeg) {
      writeOnce(join(outDir, t.file), jpeg);
      stats.written++;
    } else {
      entries[t.at]![1] = '';
      stats.failed++;
    }
  })));
  return { index, entries, hashes: (id: number) => hashes[index.get(id)!] ?? null, stats };
}

/** An overlay's file name: both contents and the alignment, so a re-verified pair gets a new picture. */
function overlayName(upHash: string, downHash: string, view: number, t: Transform): string {
  const key = createHash('sha1').update(JSON.stringify([upHash, downHash, view, t.zoom, t.angle, t.shiftX, t.shiftY])).digest('hex').slice(0, 20);
  return `${THUMBS_DIR}/o-${key}.webp`;
}

/**
 * The aligned overlay (overlay.ts) of every verified pair, written once. Pairs are drawn grouped
 * by upstream image, each image decoded once per group, downstream squares kept in a bounded
 * cache: 50,000 pairs never hold 100,000 decoded images at once.
 */
async function writeOverlays(catalog: Catalog, outDir: string, pairs: readonly CandidateView[], hashOf: (id: number) => string | null) {
  const stats = counter();
  const files = pairs.map(() => '');
  const todo = new Map<number, { at: number; c: CandidateView; t: Transform; file: string }[]>();
  pairs.forEach((c, at) => {
    const t = transformOf(c.alignment);
    const up = hashOf(c.upstreamId);
    const down = hashOf(c.downstreamId);
    if (!t || !up || !down) return;
    const file = overlayName(up, down, c.view, t);
    files[at] = file;
    if (existsSync(join(outDir, file))) {
      stats.reused++;
      return;
    }
    const group = todo.get(c.upstreamId) ?? [];
    group.push({ at, c, t, file });
    todo.set(c.upstreamId, group);
  });
  const squares = new SquareCache(catalog, 2048);
  const limit = pLimit(4);
  await Promise.all([...todo.values()].map((group) => limit(async () => {
    const up = await squares.get(group[0]!.c.upstreamId);
    for (const { at, c, t, file } of group) {
      const down = await squares.get(c.downstreamId);
      const webp = up && down ? await overlayWebp(up, down, REVIEW_THUMB_SIDE, c.view, t).catch(() => undefined) : undefined;
      if (webp) {
        writeOnce(join(outDir, file), webp);
        stats.written++;
      } else {
        files[at] = '';
        stats.failed++;
      }
    }
  })));
  return { files, stats };
}

/** Decoded squares (as the verifier sees the images) by image id, least recently used evicted. */
class SquareCache {
  private readonly map = new Map<number, Promise<Uint8Array | undefined>>();
  constructor(private readonly catalog: Catalog, private readonly capacity: number) {}

  get(id: number): Promise<Uint8Array | undefined> {
    let hit = this.map.get(id);
    if (hit) this.map.delete(id);
    else hit = this.decode(id);
    this.map.set(id, hit);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
    return hit;
  }

  private async decode(id: number): Promise<Uint8Array | undefined> {
    const ref = this.catalog.imageRef(id);
    const input = ref && (await previewInput(ref));
    return input ? decodeSquare(input, REVIEW_THUMB_SIDE) : undefined;
  }
}

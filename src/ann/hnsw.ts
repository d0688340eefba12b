import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import hnswlib from 'hnswlib-node';
import { IndexError } from '../errors.js';
import { CROP_MARGIN, isCropView } from '../embed/views.js';
import { viewDot } from '../embed/vectors.js';
import type { Catalog } from '../state/catalog.js';
import type { Progress } from '../util/progress-types.js';

const { HierarchicalNSW } = hnswlib;

/** HNSW build parameters; M=16/efConstruction=200 is hnswlib's recommended recall/speed point. */
export const HNSW_PARAMS = Object.freeze({ M: 16, efConstruction: 200, seed: 100 });

/**
 * The search list's length per query (at least the number of vectors asked for). The query is
 * most of the main thread's work per upstream image. 1,500 transformed copies of bench downstream
 * images against its 80,000 views: at 32, none of the 2,457 pairs at or above the threshold was
 * missed (8 more of 3,267 pairs between floor and threshold were) for 40% less CPU than at 64;
 * at 24, six were missed. Measured with `node dist/scripts/hnsw-ef.js`.
 */
export const EF_SEARCH = 32;

/**
 * The downstream side in memory: every view vector (for exact re-scoring) and the HNSW graph
 * over them. Labels are image id × views + view, so a hit names both image and view.
 */
export interface DownstreamIndex {
  views: number;
  dims: number;
  ids: number[];
  vectors: Map<number, Float32Array>;
  hnsw: InstanceType<typeof HierarchicalNSW>;
  fingerprint: string;
  loadedFromDisk: boolean;
}

export interface IndexOptions {
  sourceIds: number[]; modelId: string; views: number; dims: number;
  /** Where this catalog's index is saved (and reused from). */
  path: string;
  /** A prepared, shared index to load first and never write (queue workers, array jobs). */
  sharedPath?: string;
}

/** Load downstream embeddings page by page (the whole downstream side must fit in memory). */
function loadDownstream(catalog: Catalog, o: IndexOptions): Map<number, Float32Array> {
  const vectors = new Map<number, Float32Array>();
  let afterId = 0;
  for (;;) {
    const page = catalog.embeddingsPage(o.sourceIds, o.modelId, afterId, 2000);
    if (page.length === 0) return vectors;
    for (const row of page) {
      if (row.views < o.views) throw new IndexError(`Downstream image ${row.id} has ${row.views} views embedded, ${o.views} needed: run \`neardup embed\` for the downstream sources again`, 'E_INDEX_VIEWS');
      vectors.set(row.id, row.vectors.subarray(0, o.views * o.dims));
    }
    afterId = page[page.length - 1]!.id;
  }
}

function fingerprintOf(modelId: string, views: number, vectors: Map<number, Float32Array>): string {
  const h = createHash('sha1').update(`${modelId}|${views}|${HNSW_PARAMS.M}|${HNSW_PARAMS.efConstruction}`);
  for (const [id, v] of vectors) h.update(`${id}:`).update(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  return h.digest('hex');
}

/**
 * Build (or reuse, when the saved file's fingerprint matches) the HNSW index over the downstream
 * views. Saved atomically beside the catalog as <path> with <path>.json describing it.
 */
export function buildIndex(catalog: Catalog, o: IndexOptions, progress: Progress): DownstreamIndex {
  const vectors = loadDownstream(catalog, o);
  const ids = [...vectors.keys()];
  const fingerprint = fingerprintOf(o.modelId, o.views, vectors);
  const capacity = Math.max(1, ids.length * o.views);
  const hnsw = new HierarchicalNSW('ip', o.dims);
  const metaPath = `${o.path}.json`;
  for (const saved of [o.sharedPath, o.path]) {
    if (saved && loadSaved(hnsw, saved, fingerprint)) return { views: o.views, dims: o.dims, ids, vectors, hnsw, fingerprint, loadedFromDisk: true };
  }
  hnsw.initIndex(capacity, HNSW_PARAMS.M, HNSW_PARAMS.efConstruction, HNSW_PARAMS.seed);
  progress.start('index', ids.length);
  for (const id of ids) {
    const v = vectors.get(id)!;
    for (let k = 0; k < o.views; k++) hnsw.addPoint(Array.from(v.subarray(k * o.dims, (k + 1) * o.dims)), id * o.views + k);
    progress.tick(1);
  }
  progress.done();
  if (ids.length > 0) {
    try {
      hnsw.writeIndexSync(`${o.path}.tmp`);
      renameSync(`${o.path}.tmp`, o.path);
      writeFileSync(`${metaPath}.tmp`, JSON.stringify({ fingerprint, modelId: o.modelId, views: o.views, dims: o.dims, images: ids.length, vectors: ids.length * o.views, ...HNSW_PARAMS }, null, 2));
      renameSync(`${metaPath}.tmp`, metaPath);
    } catch (e) {
      throw new IndexError(`Cannot save the index to ${o.path}: ${(e as Error).message}. Check that the catalog's folder is writable.`, 'E_INDEX_SAVE', { cause: e });
    }
  }
  return { views: o.views, dims: o.dims, ids, vectors, hnsw, fingerprint, loadedFromDisk: false };
}

/** Load a saved index if its fingerprint says it holds exactly these vectors. */
function loadSaved(hnsw: InstanceType<typeof HierarchicalNSW>, path: string, fingerprint: string): boolean {
  if (!existsSync(path) || !existsSync(`${path}.json`)) return false;
  try {
    const meta = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as { fingerprint?: string };
    if (meta.fingerprint !== fingerprint) return false;
    hnsw.readIndexSync(path, true);
    return true;
  } catch {
    return false; // a damaged saved index is rebuilt
  }
}

/** A retrieved downstream image: its best view and cosine there, and its cosine in the identity view (the verify stage's gate for trying that view too). */
export interface Hit { downstreamId: number; view: number; score: number; identityScore: number }

/**
 * The k nearest downstream images to one query, each re-scored exactly as the best inner
 * product over its views (HNSW distances are approximate), keeping those at or above `floor`.
 */
export function searchOne(index: DownstreamIndex, query: Float32Array, k: number, floor: number): Hit[] {
  const n = index.ids.length * index.views;
  if (n === 0) return [];
  const q = Array.from(query);
  // Start with 2k vectors; widen to k × views (several views of one image are often neighbours)
  // only while the list is short of k images and its farthest vector still scores above the floor.
  let kk = Math.min(n, k * 2);
  for (;;) {
    index.hnsw.setEf(Math.max(EF_SEARCH, kk));
    const { neighbors, distances } = index.hnsw.searchKnn(q, kk);
    const ids = [...new Set(neighbors.map((label) => Math.floor(label / index.views)))].slice(0, k);
    const farthest = 1 - distances[distances.length - 1]!;
    const widest = Math.min(n, k * index.views);
    if (ids.length >= k || kk >= widest || farthest < floor) return rescore(index, ids, query, floor);
    kk = widest;
  }
}

function rescore(index: DownstreamIndex, ids: number[], query: Float32Array, floor: number): Hit[] {
  const hits: Hit[] = [];
  for (const id of ids) {
    const { whole, ...best } = bestView(index, id, query);
    // A crop view must clear the floor by CROP_MARGIN (views.ts); else the whole image decides.
    const hit = !isCropView(best.view) || best.score >= floor + CROP_MARGIN ? best : whole;
    if (hit.score >= floor) hits.push({ downstreamId: id, ...hit });
  }
  return hits.sort((a, b) => b.score - a.score || a.downstreamId - b.downstreamId);
}

interface Scored { view: number; score: number; identityScore: number }

/** The best view of one downstream image for a query, and the best of its whole-image views (all but the crops). */
function bestView(index: DownstreamIndex, id: number, q: Float32Array): Scored & { whole: Scored } {
  const v = index.vectors.get(id)!;
  let view = 0;
  let score = -Infinity;
  let wholeView = 0;
  let wholeScore = -Infinity;
  let identityScore = 0;
  for (let k = 0; k < index.views; k++) {
    const dot = viewDot(v, k, q);
    if (k === 0) identityScore = dot;
    if (!isCropView(k) && dot > wholeScore) [wholeView, wholeScore] = [k, dot];
    if (dot > score) [view, score] = [k, dot];
  }
  return { view, score, identityScore, whole: { view: wholeView, score: wholeScore, identityScore } };
}

/**
 * The HNSW index over the downstream views (src/ann/hnsw.ts) against a brute-force oracle, on a
 * small real catalog: the fixtures embedded by the real model through the scan and embed stages.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { embed, scan } from '../../src/audit/run.js';
import { loadModel, type LoadedModel } from '../../src/embed/model-card.js';
import { CROP_MARGIN, DOWNSTREAM_VIEWS, isCropView } from '../../src/embed/views.js';
import { buildIndex, searchOne, type DownstreamIndex, type Hit } from '../../src/ann/hnsw.js';
import { Catalog } from '../../src/state/catalog.js';
import { defaultModelDir } from '../../src/util/package-root.js';
import { SILENT } from '../../src/util/progress-types.js';
import { removeDir, tmpDir } from '../helpers/cli.js';
import { FIXTURE_DOWNSTREAM, FIXTURE_UPSTREAM } from '../helpers/corpus.js';

const K = 10;
/** The candidates' floor the audit uses (model card): misses below it change no result. */
const CANDIDATE_FLOOR = 0.5;

let root = '';
let dbPath = '';
let model: LoadedModel;
let catalog: Catalog;
let downIds: number[] = [];
let upIds: number[] = [];
/** Every downstream image's 8 view vectors, from the catalog. */
let downstream = new Map<number, Float32Array>();
/** Every upstream image's single vector. */
let queries: { id: number; vector: Float32Array }[] = [];
let index: DownstreamIndex;

function page(ids: number[]): { id: number; views: number; vectors: Float32Array }[] {
  const rows: { id: number; views: number; vectors: Float32Array }[] = [];
  let after = 0;
  for (;;) {
    const p = catalog.embeddingsPage(ids, model.id, after, 1000);
    if (p.length === 0) return rows;
    rows.push(...p);
    after = p[p.length - 1]!.id;
  }
}

/** The best whole-image view (any but a crop) of one downstream image for a query. */
function wholeImageBest(id: number, q: Float32Array): Omit<Hit, 'downstreamId'> {
  const d = model.card.output.dims;
  const v = downstream.get(id)!;
  let best = { view: -1, score: -Infinity, identityScore: 0 };
  for (let k = 0; k < DOWNSTREAM_VIEWS; k++) {
    if (isCropView(k)) continue;
    let dot = 0;
    for (let i = 0; i < d; i++) dot += v[k * d + i]! * q[i]!;
    if (k === 0) best.identityScore = dot;
    if (dot > best.score) best = { ...best, view: k, score: dot };
  }
  return best;
}

/** Brute force: every downstream image scored by its best view (inner product), best first. */
function bruteForce(q: Float32Array): Hit[] {
  const d = model.card.output.dims;
  const hits: Hit[] = [];
  for (const [id, v] of downstream) {
    let best = { view: -1, score: -Infinity, identityScore: 0 };
    for (let k = 0; k < DOWNSTREAM_VIEWS; k++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += v[k * d + i]! * q[i]!;
      if (k === 0) best.identityScore = dot;
      if (dot > best.score) best = { ...best, view: k, score: dot };
    }
    hits.push({ downstreamId: id, ...best });
  }
  return hits.sort((a, b) => b.score - a.score || a.downstreamId - b.downstreamId);
}

before(async () => {
  root = await tmpDir('neardup-hnsw-');
  dbPath = join(root, 'catalog.db');
  const sides = { upstream: [FIXTURE_UPSTREAM], downstream: [FIXTURE_DOWNSTREAM], db: dbPath, quiet: true };
  await scan(sides);
  await embed(sides);
  model = loadModel(defaultModelDir());
  catalog = Catalog.open(dbPath);
  downIds = catalog.sources().filter((s) => s.role === 'downstream').map((s) => s.id);
  upIds = catalog.sources().filter((s) => s.role === 'upstream').map((s) => s.id);
  downstream = new Map(page(downIds).map((r) => [r.id, r.vectors]));
  queries = page(upIds).map((r) => ({ id: r.id, vector: r.vectors.subarray(0, model.card.output.dims) }));
  index = buildIndex(catalog, { sourceIds: downIds, modelId: model.id, views: DOWNSTREAM_VIEWS, dims: model.card.output.dims, path: join(root, 'index.hnsw') }, SILENT);
});

after(async () => {
  catalog?.close();
  await removeDir(root);
});

describe('HNSW search vs brute force over all views', () => {
  test('the catalog holds the fixtures embedded by the real model', () => {
    assert.equal(downstream.size, 16);
    assert.equal(queries.length, 73);
    for (const v of downstream.values()) assert.equal(v.length, DOWNSTREAM_VIEWS * model.card.output.dims);
    for (const { vector } of queries) {
      const norm = Math.hypot(...vector);
      assert.ok(Math.abs(norm - 1) < 1e-3, `unit-norm descriptor (${norm})`);
    }
    assert.equal(index.ids.length, 16);
    assert.equal(index.loadedFromDisk, false);
    assert.ok(existsSync(join(root, 'index.hnsw')) && existsSync(join(root, 'index.hnsw.json')));
  });

  test('top-1 of searchOne equals the brute-force best image, view and score, for every upstream image', () => {
    const wrong: string[] = [];
    for (const { id, vector } of queries) {
      const got = searchOne(index, vector, K, -Infinity)[0];
      const want = bruteForce(vector)[0]!;
      if (!got) { wrong.push(`upstream ${id}: no hit`); continue; }
      if (got.downstreamId !== want.downstreamId || got.view !== want.view || Math.abs(got.score - want.score) > 1e-5) {
        wrong.push(`upstream ${id}: hnsw ${JSON.stringify(got)} vs brute force ${JSON.stringify(want)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  test(`searchOne returns the ${K} best downstream images (by best view), best first, each exactly re-scored`, () => {
    const wrong: string[] = [];
    const belowFloor: string[] = [];
    for (const { id, vector } of queries) {
      const got = searchOne(index, vector, K, -Infinity);
      const want = bruteForce(vector).slice(0, K);
      for (let i = 1; i < got.length; i++) assert.ok(got[i - 1]!.score >= got[i]!.score, 'sorted by score');
      for (const h of got) {
        const exact = bruteForce(vector).find((b) => b.downstreamId === h.downstreamId)!;
        assert.equal(h.view, exact.view);
        assert.ok(Math.abs(h.score - exact.score) < 1e-5);
      }
      const ids = got.map((h) => h.downstreamId);
      const wantIds = want.map((h) => h.downstreamId);
      if (JSON.stringify(ids) === JSON.stringify(wantIds)) continue;
      const missed = want.filter((h) => !ids.includes(h.downstreamId));
      const line = `upstream ${id}: got [${ids}] want [${wantIds}], missed ${missed.map((h) => `${h.downstreamId} at ${h.score.toFixed(3)}`).join(', ')}`;
      (missed.some((h) => h.score >= CANDIDATE_FLOOR) ? wrong : belowFloor).push(line);
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${queries.length} queries miss one of their ${K} best images above the floor`);
    // HNSW is approximate (EF_SEARCH): far below the floor, where no candidate is kept, the shipped
    // weights miss one image in one query of 73 (upstream 52's 7th best, cosine < 0.3).
    assert.ok(belowFloor.length <= 2, belowFloor.join('; '));
  });

  test('the floor keeps only hits at or above it; a crop view must clear it by CROP_MARGIN, else the whole image decides', () => {
    let fallbacks = 0;
    let keptHits = 0;
    for (const { vector } of queries) {
      const all = searchOne(index, vector, K, -Infinity);
      for (const floor of [all[Math.floor(all.length / 2)]!.score, all[0]!.score - CROP_MARGIN / 2]) {
        const kept = searchOne(index, vector, K, floor);
        const expected = all.map((h) => {
          if (!isCropView(h.view) || h.score >= floor + CROP_MARGIN) return h;
          fallbacks++;
          return { ...wholeImageBest(h.downstreamId, vector), downstreamId: h.downstreamId };
        }).filter((h) => h.score >= floor);
        // Every kept hit is its image under the rule, at or above the floor. (Which images are kept
        // can differ from the unfloored search's list: a floor stops the search widening early.)
        for (const h of kept) assert.deepEqual(h, expected.find((e) => e.downstreamId === h.downstreamId), `hit ${h.downstreamId} at floor ${floor}`);
        keptHits += kept.length;
        for (let i = 1; i < kept.length; i++) assert.ok(kept[i - 1]!.score >= kept[i]!.score, 'sorted by score');
      }
    }
    assert.ok(fallbacks > 0 && keptHits > 0, `some crop hit fell back to its whole image (${fallbacks}); hits kept: ${keptHits}`);
  });

  test('an index reloaded from disk answers the same', () => {
    const again = buildIndex(catalog, { sourceIds: downIds, modelId: model.id, views: DOWNSTREAM_VIEWS, dims: model.card.output.dims, path: join(root, 'index.hnsw') }, SILENT);
    assert.equal(again.loadedFromDisk, true);
    assert.equal(again.fingerprint, index.fingerprint);
    for (const { vector } of queries) assert.deepEqual(searchOne(again, vector, K, -Infinity), searchOne(index, vector, K, -Infinity));
  });

  test('a downstream image queried by one of its own views finds itself at that view with score 1', () => {
    const d = model.card.output.dims;
    for (const [id, v] of downstream) {
      for (const k of [0, 3, 5]) {
        const hit = searchOne(index, v.subarray(k * d, (k + 1) * d), 1, -Infinity)[0]!;
        assert.equal(hit.downstreamId, id);
        assert.ok(Math.abs(hit.score - 1) < 1e-4, `score ${hit.score}`);
        // Another view of the same image may score the same (symmetric images); the best must be ≥ view k's own.
        const self = bruteForce(v.subarray(k * d, (k + 1) * d)).find((b) => b.downstreamId === id)!;
        assert.ok(hit.score >= self.score - 1e-6);
      }
    }
  });
});

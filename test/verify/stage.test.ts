/**
 * The verify stage on real photos with the production aligner: every eval family is verified,
 * look-alikes (different photos, same colour layout) are rejected, a crash mid-verification
 * resumes without re-verifying what committed, and a new threshold re-decides from the stored
 * scores. Real SQLite catalogs, real decodes, the real model through the CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { applyTransform, FAMILIES, mulberry32, type FamilyName } from '../../src/eval/transforms.js';
import { decodeRead } from '../../src/scan/decode.js';
import { createAligner, lumaInView, type Aligner } from '../../src/verify/aligner.js';
import { lumaOfRgb } from '../../src/verify/luma.js';
import { PairVerifier, verifyBacklog } from '../../src/verify/run.js';
import { VERIFIER_ID } from '../../src/verify/geometry.js';
import { VERIFY_FALLBACK } from '../../src/audit/session.js';
import { loadModel } from '../../src/embed/model-card.js';
import { defaultModelDir } from '../../src/util/package-root.js';
import { Catalog } from '../../src/state/catalog.js';
import { parseCsv } from '../../src/report/csv.js';
import { REPO_ROOT, removeDir, runCli, tmpDir } from '../helpers/cli.js';
import { FIXTURE_DOWNSTREAM, FIXTURE_UPSTREAM, imagesUnder } from '../helpers/corpus.js';

const SIZE = 64;
const THRESHOLD = loadModel(defaultModelDir('onnx')).card.verify?.threshold ?? VERIFY_FALLBACK.threshold;
const SHARED = join(REPO_ROOT, '..', 'shared', 'data', 'tiny-imagenet');

const lumaOf = async (bytes: Buffer): Promise<Uint8Array> => {
  const d = await decodeRead(bytes, '', null, { size: SIZE });
  assert.ok(d.ok, 'decodes');
  return lumaOfRgb(d.rgb!, SIZE * SIZE);
};

/** The view the embedding would name for a copy: rotations and the mirror are undone by a dihedral view. */
function viewOf(family: FamilyName, params: Record<string, number | string>): number {
  if (family === 'mirror') return 4;
  if (family === 'rot90') return ({ 90: 1, 180: 2, 270: 3 } as Record<number, number>)[Number(params.angle)]!;
  return 0;
}

function bestScore(aligner: Aligner, up: Uint8Array, down: Uint8Array, view: number): number {
  aligner.setUpstream(up);
  let best = 0;
  for (const v of view === 0 ? [0] : [view, 0]) best = Math.max(best, aligner.verify(aligner.prepareDownstream(lumaInView(down, SIZE, v))).score);
  return best;
}

/**
 * Share of copies verified at the card's threshold, per family, over the 16 fixture photos
 * (one seeded copy each). Measured with align-v1 at 0.635: 1.0 for most families; crop25 13/16,
 * border 14/16 (13/16 at 0.64, the card's threshold since session 12: the full frame only, where
 * the pipeline also aligns inside the trimmed borders), zoomout 7/16 (zoomphoto, into another photo, 9/16 at 0.622): a copy pasted at 45–75% off-centre is outside the coarse search's
 * reach, which resamples the upstream image about its centre (searching the other way round
 * recovers 11/16 but lifts unrelated pairs' scores; see ARCHITECTURE.md). The other bounds leave
 * room for one or two misses where the edit leaves little structure. A mosaic tile is verified
 * only inside its tile (the pipeline's inset frame; test/embed/inset.test.ts): 0/16 here.
 */
const FAMILY_BOUND: Partial<Record<FamilyName, number>> = { mosaic: 0, zoomout: 0.4, zoomphoto: 0.4, crop25: 0.75, combo: 0.8, combo2: 0.8, border: 0.8, shiftfill: 0.85, rotexpand: 0.85 };

describe('verification on real photos', () => {
  const aligner = createAligner();
  const originals = imagesUnder(FIXTURE_DOWNSTREAM).slice(0, 16).map((rel) => join(FIXTURE_DOWNSTREAM, rel));

  for (const family of Object.keys(FAMILIES) as FamilyName[]) {
    test(`${family}: copies of the fixture photos verify at the card threshold`, async () => {
      let found = 0;
      const scores: string[] = [];
      for (const [i, path] of originals.entries()) {
        const bytes = readFileSync(path);
        const copy = await applyTransform(bytes, family, mulberry32(1000 + i), { backdrop: readFileSync(originals[(i + 7) % originals.length]!) });
        const score = bestScore(aligner, await lumaOf(copy.data), await lumaOf(bytes), viewOf(family, copy.params));
        scores.push(score.toFixed(2));
        if (score >= THRESHOLD) found++;
      }
      const bound = FAMILY_BOUND[family] ?? 0.95;
      assert.ok(found / originals.length >= bound, `${family}: ${found}/${originals.length} verified at ${THRESHOLD} (bound ${bound}); scores ${scores.join(' ')}`);
    });
  }

  test('different photos of the fixtures do not verify', async () => {
    const lumas = await Promise.all(originals.map((p) => lumaOf(readFileSync(p))));
    for (let i = 0; i < lumas.length; i++) {
      const other = (i + 5) % lumas.length;
      const score = bestScore(aligner, lumas[i]!, lumas[other]!, 0);
      assert.ok(score < THRESHOLD, `${originals[i]} vs ${originals[other]} scored ${score.toFixed(3)}`);
    }
  });
});

describe('look-alikes (same colour layout, different photo) are rejected', () => {
  const file = join(REPO_ROOT, 'test', 'verify', 'lookalikes.json');
  const { pairs } = JSON.parse(readFileSync(file, 'utf8')) as { pairs: { upstream: string; downstream: string; view: number; cosine: number }[] };
  test(`${pairs.length} mined look-alike pairs of tiny-imagenet all score below the threshold`, { skip: existsSync(SHARED) ? false : `../shared/data/tiny-imagenet is absent: the look-alike pairs are read from it` }, async () => {
    const aligner = createAligner();
    const passed: string[] = [];
    let highestCosine = 0;
    for (const p of pairs) {
      highestCosine = Math.max(highestCosine, p.cosine);
      const score = bestScore(aligner, await lumaOf(readFileSync(join(SHARED, p.upstream))), await lumaOf(readFileSync(join(SHARED, p.downstream))), p.view);
      if (score >= THRESHOLD) passed.push(`${p.upstream} ~ ${p.downstream} (cosine ${p.cosine}, verified ${score.toFixed(3)})`);
    }
    // Cosine alone would call these copies: the hardest ones sit above its card threshold.
    assert.ok(highestCosine > loadModel(defaultModelDir('onnx')).card.threshold!, 'the mined pairs include cosine false matches');
    assert.deepEqual(passed, [], `look-alikes verified as copies: ${passed.join('; ')}`);
  });
});

describe('the verify stage in the catalog', () => {
  let root = '';
  const out = () => join(root, 'out');
  const db = () => join(out(), 'neardup.db');

  before(async () => {
    root = await tmpDir('neardup-verify-');
    // Candidates only (cosine decisions), at the floor an audit with verification uses.
    const r = await runCli(['audit', '--upstream', FIXTURE_UPSTREAM, '--downstream', FIXTURE_DOWNSTREAM, '--out', out(), '--verify', 'off', '--floor', '0.5', '--threshold', '0.8', '-q']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => removeDir(root));

  const rows = () => {
    const d = new Database(db(), { readonly: true });
    try {
      return d.prepare("SELECT upstream_id AS u, downstream_id AS d, verify_score AS v, decision FROM matches WHERE kind = 'embedding' ORDER BY u, d").all() as { u: number; d: number; v: number | null; decision: string }[];
    } finally {
      d.close();
    }
  };

  test('a crash in the middle of verification resumes without re-verifying committed pairs', async () => {
    const pending = rows();
    assert.ok(pending.length >= 10 && pending.every((r) => r.v === null), `${pending.length} unverified candidates`);
    const catalog = Catalog.open(db());
    try {
      const model = loadModel(defaultModelDir('onnx'));
      const rule = { verify: true, threshold: THRESHOLD };
      // An aligner that fails after a few pages' worth: the page it fails in must not commit.
      const real = createAligner();
      let calls = 0;
      const failing: Aligner = { ...real, name: 'failing', prepareDownstream: (l) => real.prepareDownstream(l), setUpstream: (l) => real.setUpstream(l), verify: (d) => {
        if (++calls > 6) throw new Error('crash');
        return real.verify(d);
      } };
      await assert.rejects(verifyBacklog(catalog, model.id, new PairVerifier(catalog, failing, SIZE), undefined, rule, SIZE), /crash/);
      const committed = rows().filter((r) => r.v !== null).length;
      const verifier = new PairVerifier(catalog, createAligner(), SIZE);
      const done = await verifyBacklog(catalog, model.id, verifier, undefined, rule, SIZE);
      assert.equal(done, pending.length - committed, 'the resumed pass verifies exactly what had not committed');
      assert.ok(rows().every((r) => r.v !== null), 'every candidate verified');
      assert.equal(catalog.unverifiedPairs(model.id, VERIFIER_ID, 0, 1000).length, 0);
    } finally {
      catalog.close();
    }
  });

  test('the resumed verification gives the scores of an uninterrupted one', async () => {
    const fresh = join(root, 'fresh');
    const r = await runCli(['audit', '--upstream', FIXTURE_UPSTREAM, '--downstream', FIXTURE_DOWNSTREAM, '--out', fresh, '--floor', '0.5', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const d = new Database(join(fresh, 'neardup.db'), { readonly: true });
    const uninterrupted = d.prepare("SELECT upstream_id AS u, downstream_id AS d, verify_score AS v FROM matches WHERE kind = 'embedding' ORDER BY u, d").all();
    d.close();
    assert.deepEqual(rows().map(({ u, d: dd, v }) => ({ u, d: dd, v })), uninterrupted);
  });

  test('a new threshold re-decides from stored scores without verifying again', async () => {
    const before = rows();
    const matched = before.map((r) => r.v!).filter((v) => v >= THRESHOLD).sort((a, b) => a - b);
    assert.ok(matched.length >= 2, `${matched.length} verified matches`);
    // A threshold just above the weakest verified match, so that its decision must change.
    const cut = Math.round(((matched[0]! + matched[1]!) / 2) * 1e4) / 1e4;
    const r = await runCli(['match', '--db', db(), '--threshold', String(cut), '--floor', '0.5', '--json', '-q']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { verified: number; matches: number };
    assert.equal(result.verified, 0, 'nothing verified again');
    const afterRows = rows();
    assert.deepEqual(afterRows.map((x) => x.v), before.map((x) => x.v), 'scores unchanged');
    for (const x of afterRows) assert.equal(x.decision, x.v! >= cut ? 'match' : 'below-threshold');
    assert.ok(afterRows.some((x, i) => x.decision !== before[i]!.decision), 'some decision changed');
    const rep = await runCli(['report', '--out', out(), '--threshold', String(cut), '--floor', '0.5', '-q']);
    assert.equal(rep.code, 0, rep.stderr);
    const [header, ...csv] = parseCsv(readFileSync(join(out(), 'candidates.csv'), 'utf8'));
    const [vs, dec, reason] = ['verify_score', 'decision', 'reason'].map((c) => header!.indexOf(c));
    for (const row of csv.filter((x) => x[vs] !== '')) {
      assert.equal(row[dec], Number(row[vs]) >= cut ? 'match' : 'below-threshold');
      assert.match(row[reason]!, /^(not )?aligned: zoom \d\.\d\d.*% overlap, correlation \d\.\d\d [≥<] /);
    }
  });
});

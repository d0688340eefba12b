/**
 * Reviewers' decisions in a real SQLite catalog: the v4 -> v5 migration keeps every row and adds
 * the reviews table; decisions.csv is validated whole (line numbers, nothing recorded on error);
 * recorded decisions override the model's in candidates() and outlast a new threshold, and an
 * accepted pair the model never retrieved still removes its upstream image.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Catalog } from '../../src/state/catalog.js';
import { SCHEMA_VERSION } from '../../src/state/schema.js';
import { candidates, removals } from '../../src/state/queries.js';
import { applyDecisions } from '../../src/purge/decisions.js';
import { reviewSelection } from '../../src/report/review.js';
import { ConfigError } from '../../src/errors.js';
import { removeDir, tmpDir } from '../helpers/cli.js';

const MODEL = 'm@1';
let root = '';

before(async () => {
  root = await tmpDir('neardup-decisions-');
});

after(async () => {
  await removeDir(root);
});

/** Two upstream images (a, b, c) and two downstream ones (x, y), decoded, with unit embeddings, and candidates a–x (match), b–y (below), c–x (match). */
function seeded(name: string): { catalog: Catalog; up: number; down: number } {
  const catalog = Catalog.open(join(root, name, 'catalog.db'));
  const up = catalog.upsertSource('upstream', '/u', '/u');
  const down = catalog.upsertSource('downstream', '/d', '/d');
  catalog.recordListed(up, ['a', 'b', 'c'].map((k) => ({ key: `${k}.png`, path: `/u/${k}.png`, bytes: 1, mtimeMs: 1 })));
  catalog.recordListed(down, ['x', 'y'].map((k) => ({ key: `${k}.png`, path: `/d/${k}.png`, bytes: 1, mtimeMs: 1 })));
  const id = (path: string) => (catalog.db.prepare('SELECT id FROM images WHERE path = ?').get(path) as { id: number }).id;
  const unit = (i: number, views: number) => {
    const v = new Float32Array(4 * views);
    for (let k = 0; k < views; k++) v[k * 4 + i] = 1;
    return v;
  };
  catalog.commitDecoded(['a', 'b', 'c'].map((k) => ({ id: id(`/u/${k}.png`), hash: `h-${k}`, width: 8, height: 8 })), [], MODEL,
    [{ hash: 'h-a', views: 1, vectors: unit(0, 1) }, { hash: 'h-b', views: 1, vectors: unit(1, 1) }, { hash: 'h-c', views: 1, vectors: unit(2, 1) }]);
  catalog.commitDecoded(['x', 'y'].map((k) => ({ id: id(`/d/${k}.png`), hash: `h-${k}`, width: 8, height: 8 })), [], MODEL,
    [{ hash: 'h-x', views: 8, vectors: unit(0, 8) }, { hash: 'h-y', views: 8, vectors: unit(3, 8) }]);
  const row = (u: string, d: string, score: number, verifyScore: number, decision: 'match' | 'below-threshold') => ({
    upstreamId: id(`/u/${u}.png`), downstreamId: id(`/d/${d}.png`), score, view: 0, kind: 'embedding' as const, decision,
    reason: `model says ${decision}`, verifyScore, alignment: null,
  });
  catalog.resetMatches(MODEL, 'fp');
  catalog.commitMatches(MODEL, [row('a', 'x', 0.9, 0.8, 'match'), row('b', 'y', 0.7, 0.55, 'below-threshold'), row('c', 'x', 0.85, 0.75, 'match')], 0, true);
  return { catalog, up, down };
}

const csv = (name: string, text: string) => {
  const path = join(root, name);
  writeFileSync(path, text);
  return path;
};
const view = (c: Catalog, up: number, down: number) => candidates(c, MODEL, [up], [down]);
const reviewRows = (c: Catalog) => (c.db.prepare('SELECT COUNT(*) AS n FROM reviews').get() as { n: number }).n;

describe('schema v5 and v6', () => {
  test('a schema v4 catalog is migrated: the reviews table and embeddings.inset are added and every row is kept', () => {
    const { catalog } = seeded('v4');
    catalog.db.exec("DROP TABLE reviews; ALTER TABLE embeddings DROP COLUMN inset; UPDATE meta SET value = '4' WHERE key = 'schema_version'");
    catalog.close();
    const v5 = Catalog.open(join(root, 'v4', 'catalog.db'));
    try {
      assert.equal(v5.getMeta('schema_version'), String(SCHEMA_VERSION));
      assert.equal(SCHEMA_VERSION, 6);
      assert.equal((v5.db.prepare('SELECT COUNT(*) AS n FROM matches').get() as { n: number }).n, 3, 'candidates kept');
      assert.equal((v5.db.prepare('SELECT COUNT(*) AS n FROM embeddings WHERE inset IS NULL').get() as { n: number }).n, 5, 'embeddings kept, without insets');
      assert.equal(reviewRows(v5), 0);
      v5.db.prepare("INSERT INTO reviews VALUES ('h-a', 'h-x', 'reject', '/u/a.png', '/d/x.png', 'now')").run();
      assert.throws(() => v5.db.prepare("INSERT INTO reviews VALUES ('h-b', 'h-x', 'maybe', '', '', 'now')").run(), /CHECK/);
    } finally {
      v5.close();
    }
  });
});

describe('purge --decisions', () => {
  test('bad lines are all named with their line numbers, and nothing is recorded', () => {
    const { catalog, up, down } = seeded('bad');
    try {
      const file = csv('bad.csv', [
        'upstream,downstream,decision',
        '/u/a.png,/d/x.png,reject',
        '/u/nope.png,/d/x.png,accept',
        '/u/b.png,/d/y.png,yes',
        '"/u/b.png\nwith a newline",/d/y.png,accept',
        '/u/c.png,/d/zz.png,accept',
        '/u/a.png,/d/x.png,accept',
        '/u/a.png,/d/x.png',
      ].join('\n'));
      assert.throws(() => applyDecisions(catalog, file, [up], [down]), (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /6 bad lines, nothing recorded/);
        assert.match(e.message, /line 3: unknown upstream image "\/u\/nope\.png"/);
        assert.match(e.message, /line 4: expected decision accept or reject but found "yes"/);
        assert.match(e.message, /line 5: unknown upstream image/, 'a quoted field spanning lines keeps its starting line');
        assert.match(e.message, /line 7: unknown downstream image "\/d\/zz\.png"/);
        assert.match(e.message, /line 8: accept contradicts line 2 \(reject\)/);
        assert.match(e.message, /line 9: expected 3 fields/);
        return true;
      });
      assert.equal(reviewRows(catalog), 0);
      assert.throws(() => applyDecisions(catalog, csv('head.csv', 'up,down,decision\n'), [up], [down]), /line 1: expected the header upstream,downstream,decision/);
      assert.throws(() => applyDecisions(catalog, csv('x.csv', 'upstream,downstream,decision\n/d/x.png,/u/a.png,accept\n'), [up], [down]),
        /line 2: unknown upstream image "\/d\/x\.png"/, 'a side is looked up among its own sources only');
    } finally {
      catalog.close();
    }
  });

  test('decisions override the model, survive a new threshold and show in the reasons', () => {
    const { catalog, up, down } = seeded('ok');
    try {
      const r = applyDecisions(catalog, csv('ok.csv', 'upstream,downstream,decision\r\n/u/a.png,/d/x.png,reject\r\n/u/b.png,/d/y.png,accept\r\n'), [up], [down]);
      assert.deepEqual(r.recorded, 2);
      const byPair = () => new Map(view(catalog, up, down).map((c) => [`${c.upstream}|${c.downstream}`, c]));
      let all = byPair();
      assert.equal(all.get('/u/a.png|/d/x.png')!.decision, 'rejected');
      assert.equal(all.get('/u/a.png|/d/x.png')!.decidedBy, 'human');
      assert.equal(all.get('/u/a.png|/d/x.png')!.modelDecision, 'match');
      assert.match(all.get('/u/a.png|/d/x.png')!.reason, /^rejected by reviewer \(model: model says match\)$/);
      assert.equal(all.get('/u/b.png|/d/y.png')!.decision, 'match');
      assert.match(all.get('/u/b.png|/d/y.png')!.reason, /^accepted by reviewer/);
      assert.equal(all.get('/u/c.png|/d/x.png')!.decidedBy, 'model');
      assert.deepEqual(removals([...all.values()]).map((c) => c.upstream), ['/u/b.png', '/u/c.png'], 'a rejected match keeps its upstream image; an accepted near miss removes it');
      // A new threshold rewrites the model's decisions in the matches table; the reviews stand.
      catalog.db.prepare("UPDATE matches SET decision = 'below-threshold'").run();
      all = byPair();
      assert.equal(all.get('/u/b.png|/d/y.png')!.decision, 'match');
      assert.equal(all.get('/u/c.png|/d/x.png')!.decision, 'below-threshold');
      const selection = reviewSelection([...all.values()], { threshold: 0.85, verify: true });
      assert.deepEqual(selection.map((c) => c.upstream), ['/u/a.png', '/u/c.png', '/u/b.png'], 'decided pairs and near misses (0.75 ≥ 0.85 − 0.15), best verified score first');
      assert.deepEqual(reviewSelection([...all.values()], { threshold: 0.95, verify: true }).map((c) => c.upstream), ['/u/a.png', '/u/b.png'], 'c (0.75) is too far below 0.95');
    } finally {
      catalog.close();
    }
  });

  test('an accepted pair that is not a candidate of this model (another model, another k) is still a match', () => {
    const { catalog, up, down } = seeded('outsider');
    try {
      applyDecisions(catalog, csv('out.csv', 'upstream,downstream,decision\n/u/a.png,/d/y.png,accept\n'), [up], [down]);
      const extra = view(catalog, up, down).find((c) => c.upstream === '/u/a.png' && c.downstream === '/d/y.png');
      assert.ok(extra, 'the accepted pair is listed');
      assert.equal(extra.decision, 'match');
      assert.equal(extra.decidedBy, 'human');
      assert.equal(extra.score, 0, 'cosine from the stored embeddings (orthogonal here)');
      assert.match(extra.reason, /^accepted by reviewer \(model: not a candidate of m@1/);
      catalog.db.prepare('DELETE FROM matches').run();
      assert.deepEqual(removals(view(catalog, up, down)).map((c) => c.upstream), ['/u/a.png'], 'with no candidates at all the reviewer still removes it');
    } finally {
      catalog.close();
    }
  });
});

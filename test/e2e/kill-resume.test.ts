/**
 * SIGKILL harness: `neardup audit` is killed at seeded random moments (and once for certain in
 * the middle of embedding), restarted each time on the same --out/--db, then run to completion.
 * Its outputs must equal an uninterrupted run over the same inputs, and the catalog must hold no
 * duplicate and no half-done row. Real CLI processes, real model, real SQLite; nothing mocked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { mulberry32 } from '../../src/util/rng.js';
import { assertSameOutputs, readOutputs, removeDir, runCli, spawnCli, tmpDir, type CliResult } from '../helpers/cli.js';
import { copyDir, FIXTURE_DOWNSTREAM, makeLargeUpstream } from '../helpers/corpus.js';
import { DOWNSTREAM_VIEWS } from '../../src/embed/views.js';

const SEED = 0x5eed_2026;
/** Random kills that must land on a live process (a run that finishes first does not count). */
const MIN_KILLS = 20;
/** Bound on attempts, so the file's time stays bounded even if runs become very fast. */
const MAX_ATTEMPTS = 60;
const MIN_DELAY_MS = 50;

let root = '';
let up = '';
let down = '';
let outA = '';
let outB = '';
let imageCount = 0;
let referenceMs = 0;
let reference: CliResult;

const auditArgs = (out: string) => ['audit', '--upstream', up, '--downstream', down, '--out', out, '-q'];

/** Open a catalog read-only; undefined while it does not exist yet or cannot be read. */
function tryOpen(path: string): Database.Database | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return new Database(path, { readonly: true, fileMustExist: true, timeout: 2000 });
  } catch {
    return undefined;
  }
}

function embeddingCount(dbPath: string): number | undefined {
  const db = tryOpen(dbPath);
  if (!db) return undefined;
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM embeddings').get() as { n: number }).n;
  } catch {
    return undefined; // schema not created yet
  } finally {
    db.close();
  }
}

function withDb<T>(path: string, fn: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

before(async () => {
  root = await tmpDir('neardup-kill-');
  up = join(root, 'upstream');
  down = join(root, 'downstream');
  outA = join(root, 'outA');
  outB = join(root, 'outB');
  // 73 fixtures + 2 × 73 pixel-distinct variants + 8 byte copies = 227 images: embedding takes
  // seconds (long enough to be killed in), while the whole file stays within about a minute.
  imageCount = await makeLargeUpstream(up, 2, 8);
  await copyDir(FIXTURE_DOWNSTREAM, down);
});

after(async () => {
  await removeDir(root);
});

describe('audit survives SIGKILL at any moment', { timeout: 400_000 }, () => {
  test('an uninterrupted reference run succeeds', async () => {
    assert.ok(imageCount >= 220, `large upstream has ${imageCount} images`);
    reference = await runCli(auditArgs(outA));
    assert.equal(reference.code, 0, reference.stderr);
    referenceMs = reference.ms;
    assert.match(reference.stdout, new RegExp(`upstream ${imageCount} images \\(${imageCount} ok\\)`));
  });

  test('a kill in the middle of embedding leaves a partial catalog', async (t) => {
    const total = withDb(join(outA, 'neardup.db'), (db) => (db.prepare('SELECT COUNT(*) AS n FROM embeddings').get() as { n: number }).n);
    const dbPath = join(outB, 'neardup.db');
    const run = spawnCli(auditArgs(outB));
    let exited = false;
    void run.done.then(() => { exited = true; });
    let seen: number | undefined;
    // Downstream (16 images) is embedded first; past 16 rows, upstream pages are being committed.
    while (!exited) {
      seen = embeddingCount(dbPath);
      if (seen !== undefined && seen > 16 && seen < total) break;
      await sleep(15);
    }
    assert.ok(!exited, `the run finished before it could be killed while embedding (last count ${seen})`);
    run.child.kill('SIGKILL');
    const r = await run.done;
    assert.equal(r.signal, 'SIGKILL');
    const after = embeddingCount(dbPath);
    t.diagnostic(`killed with ${after} of ${total} embeddings stored`);
    assert.ok(after !== undefined && after > 16 && after < total, `killed with ${after} of ${total} embeddings stored`);
  });

  test(`at least ${MIN_KILLS} more SIGKILLs at seeded random moments`, async (t) => {
    const rng = mulberry32(SEED);
    const log: string[] = [];
    let kills = 0;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && kills < MIN_KILLS; attempt++) {
      const delay = Math.round(MIN_DELAY_MS + rng() * (referenceMs - MIN_DELAY_MS));
      const run = spawnCli(auditArgs(outB));
      const finished = await Promise.race([run.done.then((r) => r), sleep(delay).then(() => undefined)]);
      if (finished) {
        // Finished before the kill: it must have succeeded (resuming from whatever was there).
        assert.equal(finished.code, 0, `attempt ${attempt} (${delay} ms) failed: ${finished.stderr}`);
        log.push(`${delay}ms: finished first (restarting from an empty catalog)`);
        // Start over so that later kills land in every stage again, not only in the short resume.
        rmSync(outB, { recursive: true, force: true });
        continue;
      }
      run.child.kill('SIGKILL');
      const r = await run.done;
      if (r.signal === 'SIGKILL') {
        kills++;
        log.push(`${delay}ms: killed`);
      } else {
        assert.equal(r.code, 0, `attempt ${attempt} exited ${r.code}: ${r.stderr}`);
        log.push(`${delay}ms: exited just before the kill`);
      }
    }
    t.diagnostic(`full run ${Math.round(referenceMs)} ms; ${log.join(', ')}`);
    assert.ok(kills >= MIN_KILLS, `only ${kills} kills landed: ${log.join(', ')}`);
  });

  test('a final run completes and its outputs equal the uninterrupted run', async () => {
    const r = await runCli(auditArgs(outB));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, reference.stdout.replaceAll(outA, outB));
    assertSameOutputs(readOutputs(outB), readOutputs(outA), 'resumed outputs vs uninterrupted outputs');
  });

  test('the catalog holds no duplicate, no orphan and nothing pending', () => {
    const a = join(outA, 'neardup.db');
    const b = join(outB, 'neardup.db');
    const facts = (path: string) => withDb(path, (db) => {
      const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
      return {
        images: n('SELECT COUNT(*) AS n FROM images'),
        distinctImages: n('SELECT COUNT(*) AS n FROM (SELECT DISTINCT source_id, key FROM images)'),
        pending: n("SELECT COUNT(*) AS n FROM images WHERE status = 'pending'"),
        errors: n("SELECT COUNT(*) AS n FROM images WHERE status = 'error'"),
        embeddings: n('SELECT COUNT(*) AS n FROM embeddings'),
        distinctEmbeddings: n('SELECT COUNT(*) AS n FROM (SELECT DISTINCT hash, model_id FROM embeddings)'),
        okHashes: n("SELECT COUNT(DISTINCT hash) AS n FROM images WHERE status = 'ok'"),
        orphanEmbeddings: n('SELECT COUNT(*) AS n FROM embeddings e WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.hash = e.hash)'),
        okWithoutEmbedding: n("SELECT COUNT(*) AS n FROM images i WHERE status = 'ok' AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.hash = i.hash)"),
        downstreamShortViews: n(`SELECT COUNT(*) AS n FROM images i JOIN sources s ON s.id = i.source_id JOIN embeddings e ON e.hash = i.hash
          WHERE s.role = 'downstream' AND e.views <> ${DOWNSTREAM_VIEWS}`),
        matches: n('SELECT COUNT(*) AS n FROM matches'),
        distinctMatches: n('SELECT COUNT(*) AS n FROM (SELECT DISTINCT model_id, upstream_id, downstream_id FROM matches)'),
        sources: n('SELECT COUNT(*) AS n FROM sources'),
        matchDone: n('SELECT COUNT(*) AS n FROM match_state WHERE done = 1'),
        lastRun: db.prepare('SELECT command, status FROM runs ORDER BY id DESC LIMIT 1').get(),
      };
    });
    const fb = facts(b);
    const fa = facts(a);
    assert.equal(fb.images, imageCount + 16, 'one row per listed file');
    assert.equal(fb.images, fb.distinctImages, 'no duplicate (source_id, key)');
    assert.equal(fb.pending, 0, 'no image left pending');
    assert.equal(fb.errors, 0);
    assert.equal(fb.embeddings, fb.distinctEmbeddings, 'one embedding per (hash, model_id)');
    assert.equal(fb.embeddings, fb.okHashes, 'one embedding per distinct decoded image');
    assert.equal(fb.orphanEmbeddings, 0);
    assert.equal(fb.okWithoutEmbedding, 0);
    assert.equal(fb.downstreamShortViews, 0, 'every downstream image has all its views');
    assert.equal(fb.matches, fb.distinctMatches, 'no duplicate match row');
    assert.equal(fb.sources, 2);
    assert.equal(fb.matchDone, 1);
    assert.deepEqual(fb.lastRun, { command: 'audit', status: 'finished' });
    const { lastRun: _la, ...restA } = fa;
    const { lastRun: _lb, ...restB } = fb;
    assert.deepEqual(restB, restA, 'same catalog shape as the uninterrupted run');
    // Row-level equality of what the outputs are made of.
    const rows = (path: string) => withDb(path, (db) => ({
      images: db.prepare('SELECT source_id, key, path, hash, width, height, status, error FROM images ORDER BY source_id, key').all(),
      matches: db.prepare(`SELECT u.key AS u, d.key AS d, m.score, m.view, m.kind, m.decision FROM matches m
        JOIN images u ON u.id = m.upstream_id JOIN images d ON d.id = m.downstream_id ORDER BY u.key, d.key`).all(),
    }));
    const ra = rows(a);
    const rb = rows(b);
    assert.deepEqual(rb.images, ra.images, 'same image rows');
    assert.equal(rb.matches.length, ra.matches.length, 'same number of candidates');
    assert.deepEqual(rb.matches, ra.matches, 'same candidates, scores and decisions');
    assert.ok(!existsSync(`${b}.lock`), 'the lock is released after the final run');
  });
});

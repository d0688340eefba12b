import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { embed, scan } from '../../src/audit/run.js';

test('a file deleted between scan and embed is recorded with its reason; the rest are embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-vanish-'));
  cpSync('fixtures/downstream', join(dir, 'down'), { recursive: true });
  cpSync('fixtures/upstream', join(dir, 'up'), { recursive: true });
  const db = join(dir, 'catalog.db');
  const scanned = await scan({ upstream: [join(dir, 'up')], downstream: [join(dir, 'down')], db });
  assert.equal(scanned.failed, 0);
  assert.equal(scanned.decoded, 16 + 73);
  rmSync(join(dir, 'up', 'img_0002.jpg'));
  const r = await embed({ db });
  assert.equal(r.upstream.failed, 1);
  assert.equal(r.downstream.failed, 0);
  const sql = new Database(db, { readonly: true });
  const row = sql.prepare("SELECT status, error FROM images WHERE key = 'img_0002.jpg'").get() as { status: string; error: string };
  const embedded = (sql.prepare("SELECT COUNT(*) AS n FROM images i JOIN embeddings e ON e.hash = i.hash WHERE i.status = 'ok'").get() as { n: number }).n;
  sql.close();
  assert.equal(row.status, 'error');
  assert.match(row.error, /vanished since scan/);
  assert.equal(embedded, 16 + 72);
  rmSync(dir, { recursive: true, force: true });
});

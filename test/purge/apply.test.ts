import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const cli = (cwd: string, ...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
const countFiles = (dir: string): number => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;

function workspace() {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-purge-'));
  cpSync('fixtures/upstream', join(dir, 'up'), { recursive: true });
  cpSync('fixtures/downstream', join(dir, 'down'), { recursive: true });
  // A low threshold so that the plan has many files whatever the model's quality.
  const r = cli(dir, 'audit', '--upstream', 'up', '--downstream', 'down', '--out', 'o', '--threshold', '0.5', '-q');
  assert.equal(r.status, 0, r.stderr);
  const removed = readFileSync(join(dir, 'o/removed.csv'), 'utf8').trim().split('\n').length - 1;
  assert.ok(removed > 0);
  return { dir, removed, before: countFiles(join(dir, 'up')) };
}

test('purge writes only the plan unless --apply; move and --undo restore every file', () => {
  const { dir, removed, before } = workspace();
  assert.equal(cli(dir, 'purge', '--out', 'o', '--threshold', '0.5').status, 0);
  assert.equal(countFiles(join(dir, 'up')), before, 'a plain purge touches nothing');
  const moved = cli(dir, 'purge', '--out', 'o', '--threshold', '0.5', '--apply', 'move', '--to', 'trash', '--json');
  assert.equal(moved.status, 0, moved.stderr);
  assert.equal(JSON.parse(moved.stdout).applied.done, removed);
  assert.equal(countFiles(join(dir, 'up')), before - removed);
  assert.equal(countFiles(join(dir, 'trash')), removed);
  assert.equal(countFiles(join(dir, 'down')), 16, 'downstream files are never touched');
  const undo = cli(dir, 'purge', '--out', 'o', '--undo');
  assert.equal(undo.status, 0, undo.stderr);
  assert.equal(countFiles(join(dir, 'up')), before);
  assert.equal(countFiles(join(dir, 'trash')), 0);
});

test('a purge killed midway resumes from its journal without losing or repeating a file', () => {
  const { dir, removed, before } = workspace();
  // Journal everything, then simulate a kill after the first two operations: mark the rest planned
  // and undo nothing. A rerun must finish exactly the remaining ones.
  const first = cli(dir, 'purge', '--out', 'o', '--threshold', '0.5', '--apply', 'delete', '--json');
  assert.equal(first.status, 0, first.stderr);
  const db = new Database(join(dir, 'o/neardup.db'));
  const ops = db.prepare("SELECT COUNT(*) AS n FROM purge_ops WHERE status = 'done'").get() as { n: number };
  assert.equal(ops.n, removed);
  db.close();
  assert.equal(countFiles(join(dir, 'up')), before - removed);

  const w2 = workspace();
  const child = spawnSync('bash', ['-c', `${process.execPath} ${CLI} purge --out o --threshold 0.5 --apply move --to trash & pid=$!; sleep 0.25; kill -9 $pid; wait $pid; true`], { cwd: w2.dir, encoding: 'utf8' });
  assert.equal(child.status, 0);
  const resumed = cli(w2.dir, 'purge', '--out', 'o', '--threshold', '0.5', '--apply', 'move', '--to', 'trash', '--json');
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(countFiles(join(w2.dir, 'up')), w2.before - w2.removed, 'every planned file moved exactly once');
  assert.equal(countFiles(join(w2.dir, 'trash')), w2.removed);
  const db2 = new Database(join(w2.dir, 'o/neardup.db'), { readonly: true });
  const states = db2.prepare('SELECT status, COUNT(*) AS n FROM purge_ops GROUP BY status').all() as { status: string; n: number }[];
  db2.close();
  assert.deepEqual(states, [{ status: 'done', n: w2.removed }]);
  assert.ok(!existsSync(join(w2.dir, 'o/neardup.db.lock')), 'no lock left behind after a clean run');
});

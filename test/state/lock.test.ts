/**
 * One writer per catalog: a CLI run against a catalog held by another process is refused (exit 4),
 * waits with --wait, takes over a lock left by a dead process, and refuses a catalog written by a
 * newer schema. The holder is this test process, through the real Catalog; the contender is the
 * real CLI in a child process. The last block holds the lock in other real processes (a live one,
 * a zombie, a recycled pid) and contends from this one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Catalog } from '../../src/state/catalog.js';
import { StateError } from '../../src/errors.js';
import { acquireLock, procStat } from '../../src/state/lock.js';
import { SCHEMA_VERSION } from '../../src/state/schema.js';
import { REPO_ROOT, removeDir, runCli, spawnCli, tmpDir } from '../helpers/cli.js';

const SIDES = ['--upstream', 'fixtures/upstream', '--downstream', 'fixtures/downstream'];

let root = '';

before(async () => {
  root = await tmpDir('neardup-lock-');
});

after(async () => {
  await removeDir(root);
});

const runsIn = (db: string): number => {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return (d.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n;
  } finally {
    d.close();
  }
};

/** The pid of a process that has exited (and was reaped), so it is certainly not alive. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  assert.ok(Number.isInteger(pid) && pid > 0);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  return pid;
}

describe('catalog lock', () => {
  test('a second process exits 4 with "in use" while the catalog is held', async () => {
    const db = join(root, 'held', 'catalog.db');
    const holder = Catalog.open(db);
    try {
      assert.equal(readFileSync(`${db}.lock`, 'utf8').split('\n')[0], String(process.pid), 'the lock names its holder');
      const runsBefore = (holder.db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n;
      const r = await runCli(['scan', ...SIDES, '--db', db, '-q']);
      assert.equal(r.code, 4, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, /in use/);
      assert.match(r.stderr, new RegExp(`pid ${process.pid}`), 'the message names the holder');
      assert.match(r.stderr, /--wait/, 'the message says how to wait');
      assert.equal((holder.db.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n, runsBefore, 'the refused run wrote nothing');
      assert.equal(readFileSync(`${db}.lock`, 'utf8').split('\n')[0], String(process.pid), 'the refused run left the lock alone');
    } finally {
      holder.close();
    }
    assert.ok(!existsSync(`${db}.lock`), 'closing the catalog releases the lock');
  });

  test('audit is refused the same way (exit 4) and writes no outputs', async () => {
    const out = join(root, 'held-audit');
    const db = join(out, 'neardup.db');
    const holder = Catalog.open(db);
    try {
      const r = await runCli(['audit', ...SIDES, '--out', out, '-q']);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /in use/);
      assert.ok(!existsSync(join(out, 'summary.json')));
    } finally {
      holder.close();
    }
  });

  test('with --wait 5 the second process waits, then succeeds once the first releases', async () => {
    const db = join(root, 'wait', 'catalog.db');
    const holder = Catalog.open(db);
    const t0 = performance.now();
    const run = spawnCli(['scan', ...SIDES, '--db', db, '--wait', '5', '-q']);
    let exited = false;
    void run.done.then(() => { exited = true; });
    await sleep(1500);
    assert.ok(!exited, 'still waiting while the lock is held');
    holder.close();
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(performance.now() - t0 >= 1500);
    assert.match(r.stdout, /89 images decoded/);
    assert.equal(runsIn(db), 1, 'the waiting run ran once');
    assert.ok(!existsSync(`${db}.lock`), 'and released the lock');
  });

  test('with --wait 1 the second process gives up (exit 4) when the holder stays', async () => {
    const db = join(root, 'wait-timeout', 'catalog.db');
    const holder = Catalog.open(db);
    try {
      const r = await runCli(['scan', ...SIDES, '--db', db, '--wait', '1', '-q']);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /in use/);
      assert.ok(r.ms >= 1000, `waited ${Math.round(r.ms)} ms`);
    } finally {
      holder.close();
    }
  });

  test('a stale lock file holding a dead pid is taken over', async () => {
    const db = join(root, 'stale', 'catalog.db');
    Catalog.open(db).close();
    const pid = deadPid();
    writeFileSync(`${db}.lock`, String(pid));
    const r = await runCli(['scan', ...SIDES, '--db', db, '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /89 images decoded/);
    assert.ok(!existsSync(`${db}.lock`), 'the taken-over lock is released at the end');
    // And the library does the same in-process.
    writeFileSync(`${db}.lock`, String(pid));
    const c = Catalog.open(db);
    assert.equal(readFileSync(`${db}.lock`, 'utf8').split('\n')[0], String(process.pid));
    c.close();
  });

  test('a lock left on another host is refused (it cannot be checked) unless the caller holds a queue lease', () => {
    const db = join(root, 'foreign', 'catalog.db');
    Catalog.open(db).close();
    writeFileSync(`${db}.lock`, `${process.pid}\nsome-other-host`);
    assert.throws(() => Catalog.open(db), (e: Error) => e instanceof StateError && /host some-other-host/.test(e.message) && /delete/.test(e.message));
    const c = Catalog.open(db, { leaseHeld: true });
    assert.deepEqual(readFileSync(`${db}.lock`, 'utf8').split('\n').slice(0, 2), [String(process.pid), hostname()]);
    c.close();
    assert.ok(!existsSync(`${db}.lock`));
  });

  test('a schema v1 catalog is migrated: images.meta added, images decoded again under the content hash', () => {
    const db = join(root, 'v1', 'catalog.db');
    const c = Catalog.open(db);
    const id = c.upsertSource('upstream', 'x', '/x');
    c.recordListed(id, [{ key: 'a.png', path: '/x/a.png', bytes: 1, mtimeMs: 1 }]);
    c.db.prepare("UPDATE images SET status = 'ok', hash = 'old-pixel-hash'").run();
    c.db.exec("ALTER TABLE images DROP COLUMN meta; UPDATE meta SET value = '1' WHERE key = 'schema_version'");
    c.close();
    const v2 = Catalog.open(db);
    try {
      assert.equal(v2.getMeta('schema_version'), String(SCHEMA_VERSION));
      assert.deepEqual(v2.db.prepare('SELECT status, hash, meta FROM images').all(), [{ status: 'pending', hash: null, meta: null }]);
    } finally {
      v2.close();
    }
  });

  test('a schema v2 catalog is migrated: embeddings move to a rowid table and are kept', () => {
    const db = join(root, 'v2', 'catalog.db');
    const c = Catalog.open(db);
    c.db.exec(`DROP TABLE embeddings;
      CREATE TABLE embeddings (hash TEXT NOT NULL, model_id TEXT NOT NULL, views INTEGER NOT NULL, vectors BLOB NOT NULL, PRIMARY KEY (hash, model_id)) WITHOUT ROWID;
      UPDATE meta SET value = '2' WHERE key = 'schema_version'`);
    c.db.prepare('INSERT INTO embeddings VALUES (?, ?, ?, ?)').run('h1', 'm@1', 1, Buffer.from(new Float32Array([0.5, -0.25]).buffer));
    c.close();
    const v3 = Catalog.open(db);
    try {
      assert.equal(v3.getMeta('schema_version'), String(SCHEMA_VERSION));
      const sql = (v3.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'embeddings'").get() as { sql: string }).sql;
      assert.doesNotMatch(sql, /WITHOUT ROWID/);
      assert.ok(v3.embeddedHashes(['h1', 'h2'], 'm@1', 1).has('h1'));
      assert.equal(v3.embeddedHashes(['h1', 'h2'], 'm@1', 1).size, 1);
      v3.commitDecoded([], [], 'm@1', [{ hash: 'h1', views: 8, vectors: new Float32Array(16).fill(1) }]);
      const row = v3.db.prepare('SELECT views, length(vectors) AS n FROM embeddings WHERE hash = ?').get('h1');
      assert.deepEqual(row, { views: 8, n: 64 }, 'the unique (hash, model_id) key still makes a re-embed with more views replace the row');
    } finally {
      v3.close();
    }
  });

  test('a schema v3 catalog is migrated: matches gain the verify columns and keep their rows', () => {
    const db = join(root, 'v3', 'catalog.db');
    const c = Catalog.open(db);
    const up = c.upsertSource('upstream', 'x', '/x');
    const down = c.upsertSource('downstream', 'y', '/y');
    c.recordListed(up, [{ key: 'a.png', path: '/x/a.png', bytes: 1, mtimeMs: 1 }]);
    c.recordListed(down, [{ key: 'b.png', path: '/y/b.png', bytes: 1, mtimeMs: 1 }]);
    c.db.exec(`ALTER TABLE matches DROP COLUMN verify_score; ALTER TABLE matches DROP COLUMN alignment; DROP TABLE planes;
      INSERT INTO matches (model_id, upstream_id, downstream_id, score, view, kind, decision, reason) VALUES ('m@1', 1, 2, 0.8, 0, 'embedding', 'match', 'cosine');
      UPDATE meta SET value = '3' WHERE key = 'schema_version'`);
    c.close();
    const v4 = Catalog.open(db);
    try {
      assert.equal(v4.getMeta('schema_version'), String(SCHEMA_VERSION));
      assert.deepEqual(v4.db.prepare('SELECT upstream_id, score, verify_score, alignment FROM matches').all(), [{ upstream_id: 1, score: 0.8, verify_score: null, alignment: null }]);
      assert.deepEqual(v4.unverifiedPairs('m@1', 'any', 0, 10), [{ upstreamId: 1, downstreamId: 2, view: 0, score: 0.8 }], 'the kept candidate waits for verification');
      v4.putPlanes(64, [{ hash: 'h', luma: new Uint8Array(4096).fill(7) }]);
      assert.equal(v4.plane('h', 64)?.[100], 7, 'the planes table exists');
    } finally {
      v4.close();
    }
  });

  test('a catalog with schema_version 999 is refused with exit 4, mentioning "newer"', async () => {
    const db = join(root, 'newer', 'catalog.db');
    Catalog.open(db).close();
    const raw = new Database(db);
    raw.prepare("UPDATE meta SET value = '999' WHERE key = 'schema_version'").run();
    raw.close();
    const r = await runCli(['scan', ...SIDES, '--db', db, '-q']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /newer/);
    assert.match(r.stderr, /999/);
    const check = new Database(db, { readonly: true });
    try {
      assert.equal((check.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string }).value, '999', 'the newer catalog is left untouched');
      assert.equal((check.prepare('SELECT COUNT(*) AS n FROM runs').get() as { n: number }).n, 0);
    } finally {
      check.close();
    }
    assert.ok(!existsSync(`${db}.lock`), 'the refusal releases the lock');
    assert.ok(SCHEMA_VERSION < 999);
  });
});

/** Linux /proc tells zombies and start times apart; elsewhere the lock falls back to kill(pid, 0). */
const PROC = process.platform === 'linux' && existsSync('/proc/self/stat');
const NO_PROC = PROC ? false : 'needs Linux /proc (process state and start time); elsewhere the lock falls back to kill(pid, 0)';
const LOCK_MODULE = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'state', 'lock.js')).href;

interface Holder { pid: number; parent: ChildProcess }

/**
 * A node process that takes the lock on `db` (through the compiled lock module) and stays. Its
 * parent is a shell that does not reap it while it waits in `read` (dash reaps only in `wait`),
 * so once killed the holder stays a zombie until stopHolder closes the shell's stdin; a shell
 * that reaps on SIGCHLD (bash) gets `exec sleep` instead, which never reaps (the zombie then
 * goes to pid 1). This process would reap a child of its own at once.
 */
async function startHolder(db: string): Promise<Holder> {
  const script = `import { acquireLock } from ${JSON.stringify(LOCK_MODULE)}; acquireLock(process.argv[1], 0); process.stdout.write(process.pid + '\\n'); setInterval(() => {}, 1 << 30);`;
  const [shell, stall] = existsSync('/bin/dash') ? ['/bin/dash', 'read _; wait'] : ['sh', 'exec sleep 600'];
  const parent = spawn(shell, ['-c', `"$NODE" --input-type=module -e "$0" "$1" & ${stall}`, script, db], {
    env: { ...process.env, NODE: process.execPath }, stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the holder did not take the lock: ${out}`)), 15_000);
    parent.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('\n')) { clearTimeout(timer); resolve(Number.parseInt(out, 10)); }
    });
  });
  assert.ok(pid > 0 && pid !== parent.pid);
  return { pid, parent };
}

/** Kill the holder (if still there); its shell then reaps it and exits (our child: node reaps the shell). */
async function stopHolder(h: Holder): Promise<void> {
  try { process.kill(h.pid, 'SIGKILL'); } catch { /* already gone */ }
  if (h.parent.exitCode !== null || h.parent.signalCode !== null) return;
  const exited = new Promise((resolve) => h.parent.once('exit', resolve));
  h.parent.stdin!.end();
  const timer = setTimeout(() => h.parent.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function waitForState(pid: number, state: string, ms = 5000): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  let now = procStat(pid)?.state;
  while (now !== state && Date.now() < deadline) {
    await sleep(20);
    now = procStat(pid)?.state;
  }
  return now;
}

describe('lock holder liveness', () => {
  test('the lock file records the holder\'s pid, host and (on Linux) start time', { skip: NO_PROC }, () => {
    const db = join(root, 'fields', 'catalog.db');
    Catalog.open(db).close();
    const lock = acquireLock(db, 0);
    try {
      assert.deepEqual(readFileSync(`${db}.lock`, 'utf8').split('\n'), [String(process.pid), hostname(), procStat(process.pid)!.startTime]);
    } finally {
      lock.release();
    }
  });

  test('a live holder in another process still blocks: E_LOCKED after the wait', async () => {
    const db = join(root, 'live', 'catalog.db');
    Catalog.open(db).close();
    const holder = await startHolder(db);
    try {
      assert.equal(readFileSync(`${db}.lock`, 'utf8').split('\n')[0], String(holder.pid));
      const t0 = Date.now();
      assert.throws(() => acquireLock(db, 600), (e: Error) => e instanceof StateError && e.code === 'E_LOCKED' && e.message.includes(`pid ${holder.pid}`));
      assert.ok(Date.now() - t0 >= 600, 'it waited');
    } finally {
      await stopHolder(holder);
    }
  });

  test('a holder killed and not reaped (a zombie) no longer holds the lock', { skip: NO_PROC }, async () => {
    const db = join(root, 'zombie', 'catalog.db');
    Catalog.open(db).close();
    const holder = await startHolder(db);
    try {
      process.kill(holder.pid, 'SIGKILL');
      assert.equal(await waitForState(holder.pid, 'Z'), 'Z', `/proc/${holder.pid}/stat shows a zombie`);
      assert.doesNotThrow(() => process.kill(holder.pid, 0), 'kill(pid, 0) still reaches the zombie: that check alone would keep the lock');
      assert.equal(readFileSync(`${db}.lock`, 'utf8').split('\n')[0], String(holder.pid), 'its lock file is still there');
      const t0 = Date.now();
      const lock = acquireLock(db, 0);
      assert.ok(Date.now() - t0 < 200, `taken over at once (${Date.now() - t0} ms)`);
      assert.equal(readFileSync(`${db}.lock`, 'utf8').split('\n')[0], String(process.pid));
      lock.release();
      assert.equal(procStat(holder.pid)?.state, 'Z', 'still unreaped: the takeover did not depend on the reaping');
    } finally {
      await stopHolder(holder);
    }
  });

  test('a lock naming a live process that started after the holder (a recycled pid) is taken over', { skip: NO_PROC }, async () => {
    const db = join(root, 'recycled', 'catalog.db');
    Catalog.open(db).close();
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = other.pid!;
      const stat = procStat(pid);
      assert.ok(stat && stat.state !== 'Z', 'the other process is alive');
      // The same pid with its own start time is a live holder...
      writeFileSync(`${db}.lock`, `${pid}\n${hostname()}\n${stat.startTime}`);
      assert.throws(() => acquireLock(db, 0), (e: Error) => e instanceof StateError && e.code === 'E_LOCKED');
      // ...with an earlier start time it is a process that got the holder's number after the holder died.
      writeFileSync(`${db}.lock`, `${pid}\n${hostname()}\n${Number(stat.startTime) - 1}`);
      const lock = acquireLock(db, 0);
      assert.equal(readFileSync(`${db}.lock`, 'utf8').split('\n')[0], String(process.pid));
      lock.release();
      assert.ok(!existsSync(`${db}.lock`));
    } finally {
      other.kill('SIGKILL');
    }
  });

  test('a lock file from an older neardup (pid and host only) still blocks while its holder lives', () => {
    const db = join(root, 'old-format', 'catalog.db');
    Catalog.open(db).close();
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(`${db}.lock`, `${other.pid}\n${hostname()}`);
      assert.throws(() => acquireLock(db, 0), (e: Error) => e instanceof StateError && e.code === 'E_LOCKED');
    } finally {
      other.kill('SIGKILL');
    }
  });
});

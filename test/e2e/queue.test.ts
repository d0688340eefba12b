import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { audit, prepare } from '../../src/audit/run.js';
import { enqueue } from '../../src/queue/enqueue.js';
import { queueStatus } from '../../src/queue/status.js';
import { ConfigError } from '../../src/errors.js';
import { CLI } from '../helpers/cli.js';
import { comparableOutputs, firstDifference } from '../helpers/outputs.js';

const REDIS = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
const NO_REDIS = REDIS ? false : 'redis-server is not installed: apt-get install redis-server (.ci/run does)';
const FIXTURE_UP = resolve('fixtures/upstream');
const FIXTURE_DOWN = resolve('fixtures/downstream');
const BASE = { downstream: [FIXTURE_DOWN], threshold: 0.6, batchSize: 8 };

function assertSameOutputs(dir: string, expected: Record<string, string>, what: string): void {
  const got = comparableOutputs(dir);
  for (const f of Object.keys(expected)) assert.ok(got[f] === expected[f], `${f} differs (${what}): ${firstDifference(got[f]!, expected[f]!)}`);
}

/** The fixtures plus four edited copies of each: enough images that a shard takes a while. */
async function corpus(dir: string): Promise<string> {
  const up = join(dir, 'up');
  mkdirSync(up);
  const files = readdirSync(FIXTURE_UP, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && /\.(png|jpg)$/.test(e.name));
  let n = 0;
  for (const f of files) {
    const src = sharp(join(f.parentPath, f.name));
    const name = (k: number) => join(up, `${String(n++).padStart(4, '0')}-${k}.jpg`);
    await src.clone().jpeg({ quality: 90 }).toFile(name(0));
    await src.clone().flop().jpeg({ quality: 80 }).toFile(name(1));
    await src.clone().rotate(90).png().toFile(name(2));
    await src.clone().modulate({ brightness: 1.2 }).jpeg().toFile(name(3));
    await src.clone().resize(48, 48, { fit: 'fill' }).png().toFile(name(4));
  }
  return up;
}

test('an audit on a prepared downstream catalog (--downstream-db) gives the outputs of a plain audit', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-prepared-'));
  await audit({ ...BASE, upstream: [FIXTURE_UP], out: join(dir, 'plain') });
  const prepared = await prepare({ downstream: [FIXTURE_DOWN], db: join(dir, 'down', 'neardup.db') });
  assert.equal(prepared.images, 16);
  const stamp = () => {
    const db = new Database(prepared.db, { readonly: true });
    try { return (db.prepare("SELECT value FROM meta WHERE key = 'prepared_downstream'").get() as { value: string }).value; } finally { db.close(); }
  };
  const first = stamp();
  await prepare({ downstream: [FIXTURE_DOWN], db: prepared.db });
  assert.equal(stamp(), first, 'preparing unchanged data again keeps the stamp, so running shards keep resuming');
  const { downstream: _d, ...rest } = BASE;
  await audit({ ...rest, upstream: [FIXTURE_UP], downstreamDb: prepared.db, out: join(dir, 'shared') });
  assertSameOutputs(join(dir, 'shared'), comparableOutputs(join(dir, 'plain')), 'prepared downstream vs plain audit');
  await assert.rejects(audit({ ...BASE, upstream: [FIXTURE_UP], downstreamDb: prepared.db, out: join(dir, 'both') }), ConfigError, 'both --downstream and --downstream-db');
  await assert.rejects(audit({ ...rest, upstream: [FIXTURE_UP], downstreamDb: join(dir, 'nope.db'), out: join(dir, 'x') }), /neardup prepare/);
  rmSync(dir, { recursive: true, force: true });
});

interface Worker { child: ChildProcess; events: Record<string, unknown>[]; exited: Promise<number | null> }

function startWorker(redisUrl: string, queue: string, onEvent: (w: Worker, e: Record<string, unknown>) => void): Worker {
  const child = spawn(process.execPath, [CLI, 'worker', '--redis', redisUrl, '--queue', queue, '--lease', '3', '--exit-when-idle', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const w: Worker = { child, events: [], exited: new Promise((r) => child.on('exit', (code) => r(code))) };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    w.events.push(e);
    onEvent(w, e);
  });
  return w;
}

async function startRedis(): Promise<{ url: string; stop: () => void }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error('redis-server did not start in 10 s')), 10_000);
    server.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) { clearTimeout(timer); ready(); }
    });
    server.on('exit', (code) => fail(new Error(`redis-server exited with ${code}`)));
  });
  return { url: `redis://127.0.0.1:${port}`, stop: () => server.kill('SIGKILL') };
}

test('queue mode: three workers, one SIGKILLed mid-shard, give the outputs of one unsharded audit', { skip: NO_REDIS, timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-queue-'));
  const redis = await startRedis();
  try {
    const up = await corpus(dir);
    await audit({ ...BASE, upstream: [up], out: join(dir, 'whole') });
    const whole = comparableOutputs(join(dir, 'whole'));

    const queue = 'test-queue';
    const out = join(dir, 'queued');
    const r = await enqueue({ ...BASE, upstream: [up], out, shards: 4, redis: redis.url, queue });
    assert.equal(r.jobs.length, 5);
    const again = await enqueue({ ...BASE, upstream: [up], out, shards: 4, redis: redis.url, queue });
    assert.equal(again.run, r.run, 'enqueueing the same run again adds no jobs');

    let killed: { job: string; worker: string } | undefined;
    const workers: Worker[] = [];
    const onEvent = (w: Worker, e: Record<string, unknown>) => {
      const d = e.detail as { stage?: string; done?: number } | undefined;
      // Kill the first worker that has committed part of a shard's upstream embedding.
      if (!killed && e.event === 'progress' && d?.stage === 'embed upstream' && (d.done ?? 0) > 0) {
        killed = { job: e.job as string, worker: e.worker as string };
        w.child.kill('SIGKILL');
      }
    };
    for (let i = 0; i < 3; i++) workers.push(startWorker(redis.url, queue, onEvent));
    const codes = await Promise.all(workers.map((w) => w.exited));
    assert.ok(killed, 'a worker was killed mid-shard');
    assert.equal(codes.filter((c) => c === 0).length, 2, 'the two surviving workers finish and exit 0');

    const starts = workers.flatMap((w) => w.events).filter((e) => e.event === 'start' && e.job === killed!.job);
    assert.ok(starts.length >= 2 && new Set(starts.map((e) => e.worker)).size >= 2, 'the killed shard was taken over by another worker');
    const status = await queueStatus({ redis: redis.url, queue, run: r.run });
    assert.deepEqual(status.jobs.map((j) => j.state), Array(5).fill('completed'));
    assert.ok(status.jobs.find((j) => j.id === killed!.job)!.stalled >= 1, 'BullMQ saw the killed job stall');

    assertSameOutputs(out, whole, 'queue mode vs unsharded audit');
    for (const shard of readdirSync(join(out, 'shards'))) {
      const db = new Database(join(out, 'shards', shard, 'neardup.db'), { readonly: true });
      const dup = db.prepare('SELECT COUNT(*) AS n FROM (SELECT upstream_id, downstream_id FROM matches GROUP BY 1, 2 HAVING COUNT(*) > 1)').get() as { n: number };
      const pending = db.prepare("SELECT COUNT(*) AS n FROM images WHERE status = 'pending'").get() as { n: number };
      db.close();
      assert.deepEqual([dup.n, pending.n], [0, 0], `shard ${shard}: no duplicate matches, nothing left pending`);
    }
  } finally {
    redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('queue commands fail fast with a clear message when Redis is not there', async () => {
  await assert.rejects(queueStatus({ redis: 'redis://127.0.0.1:1', queue: 'q' }), /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1.*start redis-server/);
  await assert.rejects(queueStatus({ redis: 'http://x', queue: 'q' }), /Expected a redis:\/\/ or rediss:\/\/ URL for redis/);
});

/**
 * `node dist/scripts/bench-queue.js` — queue mode: one worker against three on this machine, same
 * shards, same prepared downstream side; wall time, images/s and peak RSS per worker.
 * Starts its own redis-server on a loopback port (Debian package redis-server).
 *
 *   node dist/scripts/bench-queue.js [--upstream <dir>] [--downstream <dir>] [--shards 6] [--workers 1,3]
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { enqueue } from '../src/queue/enqueue.js';
import { packageRoot } from '../src/util/package-root.js';

const CLI = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

async function redis(): Promise<{ url: string; stop: () => void }> {
  const bin = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) throw new Error('redis-server is not installed: apt-get install redis-server');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok) => server.stdout.on('data', (c: Buffer) => c.toString().includes('Ready to accept') && ok()));
  return { url: `redis://127.0.0.1:${port}`, stop: () => server.kill() };
}

function worker(url: string, queue: string): Promise<{ maxRssMB: number; processed: number }> {
  const child = spawn(process.execPath, [CLI, 'worker', '--redis', url, '--queue', queue, '--exit-when-idle', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((ok) => {
    let last = { maxRssMB: 0, processed: 0 };
    createInterface({ input: child.stdout }).on('line', (l) => {
      const e = JSON.parse(l) as { event: string; maxRssMB: number; processed: number };
      if (e.event === 'stopped') last = e;
    });
    child.on('exit', () => ok(last));
  });
}

async function main() {
  const { values } = parseArgs({ options: {
    upstream: { type: 'string', default: join(packageRoot(), '.cache', 'bench', 'jpg64', 'up') },
    downstream: { type: 'string', default: join(packageRoot(), 'fixtures', 'downstream') },
    shards: { type: 'string', default: '6' }, workers: { type: 'string', default: '1,3' },
    work: { type: 'string', default: join(packageRoot(), '.cache', 'bench-queue') },
  } });
  const r = await redis();
  console.log(`machine: ${cpus().length}× ${cpus()[0]?.model}; upstream ${values.upstream}, ${values.shards} shards`);
  console.log('| workers | wall s | upstream images | images/s | peak RSS per worker MB |');
  console.log('|---|---|---|---|---|');
  try {
    for (const n of values.workers!.split(',').map(Number)) {
      const out = join(resolve(values.work!), `w${n}`);
      rmSync(out, { recursive: true, force: true });
      const queue = `bench-${n}-${Date.now()}`;
      await enqueue({ upstream: [values.upstream!], downstream: [values.downstream!], out, shards: values.shards, redis: r.url, queue });
      const t0 = performance.now();
      const ws = await Promise.all(Array.from({ length: n }, () => worker(r.url, queue)));
      const wall = (performance.now() - t0) / 1000;
      const { readFileSync } = await import('node:fs');
      const upstream = (JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { counts: { upstream: number } }).counts.upstream;
      console.log(`| ${n} | ${wall.toFixed(1)} | ${upstream} | ${(upstream / wall).toFixed(0)} | ${ws.map((w) => w.maxRssMB).join(', ')} |`);
    }
  } finally {
    r.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});

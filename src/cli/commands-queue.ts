import { EXIT } from '../errors.js';
import type { QueueStatus } from '../queue/status.js';
import { command, type CommandIO } from './command.js';
import { FLAGS as F, type FlagSpec } from './flags.js';
import { createProgress } from './progress.js';

/** Queue mode: `prepare` once, `enqueue` the shards, run `worker`s anywhere, watch with `status`. */

const QUEUE: FlagSpec[] = [F.redis, F.queue];
const MODEL: FlagSpec[] = [F.model, F.runtime, F.concurrency, F.batchSize, F.threads];
const progressFor = (o: { quiet?: boolean }, io: CommandIO) => createProgress({ enabled: io.isTTY && !o.quiet });

export const prepareCommand = command('prepare', 'neardup prepare --downstream <source>... --db <file> [options]',
  'Embed the downstream side once (32 views: 8 dihedral, 19 crops (one in grayscale), 4 rotations, grayscale) and build its HNSW index, for shards and queue workers that use it read-only through --downstream-db.',
  [F.downstream, F.db, F.out, ...MODEL, F.followLinks, F.wait, F.json, F.quiet, F.help], false,
  async (o, _p, io) => {
    const { prepare } = await import('../audit/run.js');
    const r = await prepare(o, { progress: progressFor(o, io) });
    io.stdout(o.json ? `${JSON.stringify(r)}\n` : `downstream prepared: ${r.images} images (${r.embedded} embedded now, ${r.failed} failed) in ${r.db}; index ${r.index}\n`);
    return EXIT.ok;
  });

export const enqueueCommand = command('enqueue', 'neardup enqueue --upstream <source>... --downstream <source>... --out <dir> --shards <N> [--redis <url>] [options]',
  'Prepare the downstream side once, then put one job per upstream shard on a BullMQ queue, under a merge job that runs when all shards are done. Outputs land in <out>; shards in <out>/shards/.',
  [F.upstream, F.downstream, F.out, F.shards, F.run, F.attempts, ...QUEUE, F.threshold, F.floor, F.k, ...MODEL, F.followLinks, F.json, F.quiet, F.help], false,
  async (o, _p, io) => {
    const { enqueue } = await import('../queue/enqueue.js');
    const r = await enqueue(o as never, { progress: progressFor(o, io) });
    io.stdout(o.json ? `${JSON.stringify(r)}\n` : `run ${r.run}: ${r.shards} shard jobs and a merge job on queue ${r.queue}; downstream ${r.downstream.images} images prepared. Start workers: neardup worker --queue ${r.queue}\n`);
    return EXIT.ok;
  });

export const workerCommand = command('worker', 'neardup worker [--redis <url>] [--queue <name>] [--lease <s>] [--exit-when-idle] [--json]',
  'Take shard jobs from the queue and run each as an audit of that shard, then the merge. Killed at any moment, its job goes to another worker after the lease and resumes there.',
  [...QUEUE, F.lease, F.exitWhenIdle, F.json, F.quiet, F.help], false,
  async (o, _p, io) => {
    const { runWorker } = await import('../queue/worker.js');
    const abort = new AbortController();
    let signals = 0;
    const onSignal = () => {
      // First signal: finish the current job, then stop. Second: stop now (the job resumes elsewhere).
      if (++signals > 1) process.exit(130);
      io.stderr('neardup worker: stopping after the current job (signal again to stop now)\n');
      abort.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await runWorker(o as never, {
        signal: abort.signal,
        onEvent: (e) => {
          if (o.json) io.stdout(`${JSON.stringify(e)}\n`);
          else if (!o.quiet && e.event !== 'progress') io.stderr(`neardup worker ${e.worker}: ${e.event}${'job' in e ? ` ${e.job}` : ''}${'detail' in e && e.detail ? ` ${JSON.stringify(e.detail)}` : ''}\n`);
        },
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return EXIT.ok;
  });

export const statusCommand = command('status', 'neardup status [--redis <url>] [--queue <name>] [--run <name>] [--json]',
  'Show the queue: jobs per state, and each shard job of a run with its progress, attempts and errors.',
  [...QUEUE, F.run, F.json, F.help], false,
  async (o, _p, io) => {
    const { queueStatus } = await import('../queue/status.js');
    const s = await queueStatus(o as never);
    io.stdout(o.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s));
    return s.counts.failed ? EXIT.failure : EXIT.ok;
  });

function renderStatus(s: QueueStatus): string {
  const counts = Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join(', ');
  const rows = s.jobs.map((j) => {
    const p = j.progress as { stage?: string; done?: number; total?: number } | number | undefined;
    const progress = p && typeof p === 'object' && p.stage ? `${p.stage} ${p.done ?? 0}${p.total ? `/${p.total}` : ''}` : '';
    return `  ${j.id.padEnd(28)} ${j.state.padEnd(16)} ${progress.padEnd(28)} ${j.stalled ? `taken back ${j.stalled}× ` : ''}${j.failedReason ?? ''}`;
  });
  return `queue ${s.queue} at ${s.redis}: ${counts}\n${rows.join('\n')}\n`;
}

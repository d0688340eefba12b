import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { hostname } from 'node:os';
import { audit } from '../audit/run.js';
import { ConfigError, invalidOption } from '../errors.js';
import { mergeShards } from '../report/merge.js';
import type { Progress } from '../util/progress-types.js';
import { connectionFor, JOB, resolveQueueTarget, type MergeJobData, type QueueTarget, type RawQueueOptions, type ShardJobData } from './connection.js';
import { checkRedis } from './redis.js';

export interface WorkerOptions extends RawQueueOptions {
  /** Seconds a job's lease lasts without renewal; a worker dead this long loses its job to another. */
  lease?: number | string;
  /** Stop once the queue has nothing waiting or running (batch jobs, CI); default: serve until a signal. */
  exitWhenIdle?: boolean;
}

/** What a worker reports, one event per line with --json. */
export type WorkerEvent =
  | { event: 'ready'; worker: string; queue: string }
  | { event: 'start' | 'done' | 'failed' | 'progress'; worker: string; job: string; name: string; shard?: string; attempt: number; detail?: unknown }
  | { event: 'stopped'; worker: string; processed: number; maxRssMB: number };

export interface WorkerHooks { onEvent?: (e: WorkerEvent) => void; signal?: AbortSignal }

/** Job progress for `neardup status`: the stage and its count, sent at most once a second. */
function jobProgress(job: Job, report: (detail: unknown) => void): Progress {
  let stage = '';
  let done = 0;
  let total: number | undefined;
  let last = 0;
  const send = (force: boolean) => {
    const now = Date.now();
    if (!force && now - last < 1000) return;
    last = now;
    const detail = { stage, done, total };
    void job.updateProgress(detail).catch(() => {}); // progress is advisory; the lease is what matters
    report(detail);
  };
  return {
    start(s, t) { stage = s; done = 0; total = t; send(true); },
    tick(n = 1) { done += n; send(false); },
    done() { send(true); },
  };
}

/**
 * `neardup worker`: take shard jobs from the queue and run each as `audit --shard i/N` against
 * the prepared downstream catalog, then the merge job once all shards are done. A shard's work
 * is committed in its own catalog as it goes, so a worker killed mid-shard loses nothing: BullMQ
 * hands the job to another worker when the lease runs out, and that worker resumes the catalog.
 */
export async function runWorker(raw: WorkerOptions, hooks: WorkerHooks = {}): Promise<{ processed: number }> {
  const target = resolveQueueTarget(raw);
  const lease = raw.lease === undefined ? 60 : Number(raw.lease);
  if (!Number.isFinite(lease) || lease < 1 || lease > 3600) throw invalidOption('lease', 'seconds from 1 to 3600', raw.lease);
  await checkRedis(target);
  const name = `${hostname()}:${process.pid}`;
  const emit = hooks.onEvent ?? (() => {});
  let processed = 0;
  let busy = false;

  const worker = new Worker(target.queue, async (job: Job) => {
    busy = true;
    const base = { worker: name, job: job.id ?? '?', name: job.name, attempt: job.attemptsMade + 1 };
    const shard = job.name === JOB.shard ? (job.data as ShardJobData).shard : undefined;
    emit({ event: 'start', ...base, shard });
    try {
      const result = await runJob(job, (detail) => emit({ event: 'progress', ...base, shard, detail }));
      processed++;
      emit({ event: 'done', ...base, shard, detail: result });
      return result;
    } catch (error) {
      emit({ event: 'failed', ...base, shard, detail: (error as Error).message });
      // A bad option or source will fail the same way on every worker: do not retry it.
      throw error instanceof ConfigError ? new UnrecoverableError(error.message) : error;
    } finally {
      busy = false;
    }
  }, { connection: connectionFor(target), concurrency: 1, lockDuration: lease * 1000, stalledInterval: lease * 1000, maxStalledCount: 3, autorun: false });
  worker.on('error', () => {}); // connection errors: ioredis reconnects; job errors are emitted above

  emit({ event: 'ready', worker: name, queue: target.queue });
  const stopped = new Promise<void>((resolveStop) => {
    const stop = () => { void worker.close().then(resolveStop); };
    hooks.signal?.addEventListener('abort', stop, { once: true });
    if (raw.exitWhenIdle) void watchIdle(target, () => busy, Math.min(lease * 500, 2000)).then(stop);
  });
  void worker.run();
  await stopped;
  emit({ event: 'stopped', worker: name, processed, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) });
  return { processed };
}

async function runJob(job: Job, report: (detail: unknown) => void): Promise<unknown> {
  if (job.name === JOB.merge) {
    const data = job.data as MergeJobData;
    const summary = await mergeShards(data.dirs, data.out);
    return { matched: summary.counts.removed, upstream: summary.counts.upstream, out: data.out };
  }
  if (job.name !== JOB.shard) throw new ConfigError(`Unknown job ${JSON.stringify(job.name)} on the queue: this worker runs ${JOB.shard} and ${JOB.merge} jobs`, 'E_JOB');
  const data = job.data as ShardJobData;
  const result = await audit({ ...data.options, shard: data.shard, out: data.out, downstreamDb: data.downstreamDb, leaseHeld: true, quiet: true }, { progress: jobProgress(job, report) });
  return { shard: data.shard, matched: result.matched, upstream: result.summary.counts.upstream, out: data.out };
}

/** Resolve once nothing is waiting, delayed or running on the queue and this worker is idle. */
async function watchIdle(target: QueueTarget, busy: () => boolean, everyMs: number): Promise<void> {
  const queue = new Queue(target.queue, { connection: connectionFor(target) });
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, everyMs));
      if (busy()) continue;
      // Redis away for a moment (restart, failover): keep waiting; BullMQ reconnects too.
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children').catch(() => undefined);
      if (c && Object.values(c).every((n) => n === 0)) return;
    }
  } finally {
    await queue.close();
  }
}

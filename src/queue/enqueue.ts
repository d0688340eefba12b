import { FlowProducer } from 'bullmq';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { prepare, type PrepareResult, type RunHooks } from '../audit/run.js';
import { resolveOptions, type RawOptions } from '../config/options.js';
import { ConfigError, invalidOption } from '../errors.js';
import { connectionFor, JOB, resolveQueueTarget, type MergeJobData, type RawQueueOptions, type ShardJobData } from './connection.js';
import { checkRedis } from './redis.js';

export interface EnqueueOptions extends RawQueueOptions {
  /** Number of upstream shards (jobs). */
  shards?: number | string;
  /** Name of this run on the queue; default derived from the output folder. */
  run?: string;
  /** How often a shard job is tried before it fails (a killed worker's job is not counted). */
  attempts?: number | string;
}

export interface EnqueueResult { run: string; queue: string; shards: number; out: string; downstream: PrepareResult; jobs: string[] }

/** Prefixes of source specs whose remainder is a path (see sources/list). */
const PREFIXED = /^(tar|cifar10|cifar100|parquet|list|glob):(.*)$/;

/** Workers may run anywhere the storage is mounted, from any folder: sources travel as absolute paths. */
export function absoluteSource(spec: string): string {
  const m = PREFIXED.exec(spec);
  return m ? `${m[1]}:${resolve(m[2]!)}` : resolve(spec);
}

/** Options a shard job passes on to audit: the user's, minus what the queue decides. */
function jobOptions(raw: RawOptions & EnqueueOptions): Record<string, unknown> {
  const { upstream, downstream: _d, out: _o, db: _db, shard: _s, json: _j, quiet: _q, downstreamDb: _dd, leaseHeld: _l,
    redis: _r, queue: _qu, shards: _n, run: _run, attempts: _a, ...rest } = raw;
  return { ...rest, upstream: (upstream ?? []).map(absoluteSource), ...(rest.model ? { model: resolve(rest.model) } : {}) };
}

/**
 * `neardup enqueue`: prepare the downstream side once (embedded, indexed, read-only for workers),
 * then put one job per upstream shard on the queue under a merge job that BullMQ releases when
 * every shard has finished. Job ids are derived from the run, so enqueueing again adds nothing.
 */
export async function enqueue(raw: RawOptions & EnqueueOptions, hooks: RunHooks = {}): Promise<EnqueueResult> {
  const target = resolveQueueTarget(raw);
  const options = resolveOptions(raw, { out: true });
  if (options.shard) throw new ConfigError('enqueue makes the shards itself: pass --shards <N>, not --shard', 'E_CONFIG');
  if (options.upstream.length === 0) throw new ConfigError('Missing --upstream <source>: enqueue splits the upstream side into shard jobs', 'E_CONFIG');
  const shards = count('shards', raw.shards, 1, 100_000);
  const attempts = count('attempts', raw.attempts ?? 3, 1, 100);
  const out = resolve(options.out);
  const run = raw.run ?? `run-${createHash('sha1').update(out).digest('hex').slice(0, 10)}`;
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(run)) throw invalidOption('run', 'a name of letters, digits, _ . -', run);
  await checkRedis(target);

  const downstreamDb = join(out, 'downstream', 'neardup.db');
  const downstream = await prepare({ ...raw, upstream: [], downstream: options.downstream.map(absoluteSource), db: downstreamDb, out: join(out, 'downstream') }, hooks);
  const shardDirs = Array.from({ length: shards }, (_, i) => join(out, 'shards', `${i}-of-${shards}`));
  const base = jobOptions(raw);
  const flow = new FlowProducer({ connection: connectionFor(target) });
  try {
    const merge: MergeJobData = { run, dirs: shardDirs, out };
    await flow.add({
      name: JOB.merge, queueName: target.queue, data: merge, opts: { jobId: `${run}.merge`, attempts },
      children: shardDirs.map((dir, i) => {
        const data: ShardJobData = { run, shard: `${i}/${shards}`, out: dir, downstreamDb, options: base };
        return { name: JOB.shard, queueName: target.queue, data, opts: { jobId: `${run}.shard.${i}`, attempts, backoff: { type: 'exponential', delay: 2000 }, failParentOnFailure: true } };
      }),
    });
  } finally {
    await flow.close();
  }
  return { run, queue: target.queue, shards, out, downstream, jobs: [...shardDirs.map((_, i) => `${run}.shard.${i}`), `${run}.merge`] };
}

function count(name: string, raw: number | string | undefined, lo: number, hi: number): number {
  const v = raw === undefined ? Number.NaN : Number(raw);
  if (!Number.isInteger(v) || v < lo || v > hi) throw invalidOption(name, `an integer from ${lo} to ${hi}`, raw);
  return v;
}

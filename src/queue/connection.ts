import { ConfigError, invalidOption } from '../errors.js';

/**
 * Queue mode runs on BullMQ over Redis: jobs, leases, retries and stalled-job recovery are
 * BullMQ's, not ours. This module validates the few settings once, at the boundary.
 */

export const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
export const DEFAULT_QUEUE = 'neardup';

export interface QueueTarget {
  /** redis:// or rediss:// URL. */
  redis: string;
  queue: string;
}

export interface RawQueueOptions { redis?: string; queue?: string }

export function resolveQueueTarget(raw: RawQueueOptions): QueueTarget {
  const redis = raw.redis ?? process.env.NEARDUP_REDIS ?? DEFAULT_REDIS;
  let url: URL;
  try {
    url = new URL(redis);
  } catch {
    throw invalidOption('redis', 'a URL such as redis://127.0.0.1:6379', redis);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw invalidOption('redis', 'a redis:// or rediss:// URL', redis);
  const queue = raw.queue ?? DEFAULT_QUEUE;
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(queue)) throw invalidOption('queue', 'a name of letters, digits, _ . - (at most 100)', queue);
  return { redis, queue };
}

/** BullMQ connection settings: workers must retry commands forever while Redis restarts. */
export function connectionFor(target: QueueTarget) {
  return { url: target.redis, maxRetriesPerRequest: null, connectTimeout: 5000 };
}

/** Turn "connect ECONNREFUSED" into something a person can act on. */
export function redisUnreachable(target: QueueTarget, error: unknown): ConfigError {
  return new ConfigError(`Cannot reach Redis at ${target.redis} (${(error as Error).message}): start redis-server, or pass --redis <url> / set NEARDUP_REDIS`, 'E_REDIS', { cause: error });
}

/** Job names on the queue. */
export const JOB = Object.freeze({ shard: 'shard', merge: 'merge' });

/** What a shard job carries: everything a worker on any machine needs, with absolute paths. */
export interface ShardJobData {
  run: string;
  shard: string;
  out: string;
  downstreamDb: string;
  options: Record<string, unknown>;
}

export interface MergeJobData { run: string; dirs: string[]; out: string }

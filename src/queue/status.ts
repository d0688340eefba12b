import { Queue, type Job } from 'bullmq';
import { connectionFor, resolveQueueTarget, type RawQueueOptions } from './connection.js';
import { checkRedis } from './redis.js';

export interface JobStatus {
  id: string;
  name: string;
  shard?: string;
  state: string;
  progress: unknown;
  attempts: number;
  /** Times the job was taken back from a worker that stopped renewing its lease (killed, hung). */
  stalled: number;
  failedReason?: string;
  result?: unknown;
}

export interface QueueStatus { queue: string; redis: string; counts: Record<string, number>; jobs: JobStatus[] }

/** `neardup status`: how many jobs are in each state, and each job of a run (or of every run). */
export async function queueStatus(raw: RawQueueOptions & { run?: string }): Promise<QueueStatus> {
  const target = resolveQueueTarget(raw);
  await checkRedis(target);
  const queue = new Queue(target.queue, { connection: connectionFor(target) });
  try {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed');
    const all = await queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'], 0, 10_000, true);
    const mine = all.filter((j) => j && (!raw.run || String(j.id).startsWith(`${raw.run}.`)));
    const jobs = await Promise.all(mine.map(describe));
    jobs.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
    return { queue: target.queue, redis: target.redis, counts, jobs };
  } finally {
    await queue.close();
  }
}

async function describe(job: Job): Promise<JobStatus> {
  const data = job.data as { shard?: string };
  return {
    id: String(job.id), name: job.name, ...(data.shard ? { shard: data.shard } : {}),
    state: await job.getState(), progress: job.progress, attempts: job.attemptsMade, stalled: job.stalledCounter ?? 0,
    ...(job.failedReason ? { failedReason: job.failedReason } : {}),
    ...(job.returnvalue !== null && job.returnvalue !== undefined ? { result: job.returnvalue } : {}),
  };
}

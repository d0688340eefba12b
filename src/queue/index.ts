/** Queue mode's library API (`import { enqueue, runWorker, queueStatus } from 'neardup/queue'`): kept apart so that importing 'neardup' does not load BullMQ. */
export { enqueue, absoluteSource, type EnqueueOptions, type EnqueueResult } from './enqueue.js';
export { runWorker, type WorkerOptions, type WorkerEvent, type WorkerHooks } from './worker.js';
export { queueStatus, type QueueStatus, type JobStatus } from './status.js';
export { DEFAULT_QUEUE, DEFAULT_REDIS } from './connection.js';

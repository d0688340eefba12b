import { Redis } from 'ioredis';
import { redisUnreachable, type QueueTarget } from './connection.js';

/** Fail fast with a clear message when Redis is not there (BullMQ itself would retry forever). */
export async function checkRedis(target: QueueTarget): Promise<void> {
  const client = new Redis(target.redis, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000 });
  client.on('error', () => {}); // reported through the rejected connect below
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw redisUnreachable(target, error);
  } finally {
    client.disconnect();
  }
}

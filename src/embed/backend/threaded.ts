import { Worker } from 'node:worker_threads';
import { ModelError } from '../../errors.js';
import type { LoadedModel } from '../model-card.js';
import type { DecodedBatch, EmbedRuntime, RuntimeOptions } from '../runtime.js';
import { wantCuda } from './onnx.js';
import { packImages } from './packed.js';

type ErrorData = { message: string; name?: string; code?: string };
type Reply = { id: number; out?: Float32Array; batch?: DecodedBatch; error?: ErrorData; disposed?: boolean };

/** Errors cross the thread as data; rebuild the class the caller would have seen in-thread. */
function rebuild(e: ErrorData): Error {
  if (e.name === 'RangeError') return new RangeError(e.message);
  if (e.name === 'ModelError' || e.code?.startsWith('E_MODEL')) return new ModelError(e.message, e.code ?? 'E_MODEL_RUNTIME');
  return new Error(e.message);
}

/** One inference thread holding its own onnxruntime session. */
interface SessionThread {
  name: string;
  /** Calls sent and not answered yet. */
  pending: Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>;
  call(msg: object, transfer?: ArrayBuffer[]): Promise<Reply>;
  terminate(): Promise<number>;
}

function startThread(model: LoadedModel, opts: RuntimeOptions): Promise<SessionThread> {
  const worker = new Worker(new URL('./onnx-thread.js', import.meta.url), { workerData: { model, opts } });
  const pending: SessionThread['pending'] = new Map();
  let nextId = 1;
  worker.on('error', (e) => {
    const error = new ModelError(`inference thread failed: ${e.message}`, 'E_MODEL_RUNTIME', { cause: e });
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  });
  const call = (msg: object, transfer: ArrayBuffer[] = []) => new Promise<Reply>((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    // An idle thread must not keep the process alive; a busy one must.
    worker.ref();
    worker.postMessage({ id, ...msg }, transfer);
  });
  return new Promise((resolve, reject) => {
    worker.on('message', (m: Reply & { ready?: boolean; name?: string; fatal?: ErrorData }) => {
      if (m.fatal) {
        void worker.terminate();
        reject(rebuild({ ...m.fatal, code: m.fatal.code ?? 'E_MODEL_RUNTIME' }));
      } else if (m.ready) {
        worker.unref();
        resolve({ name: m.name!, pending, call, terminate: () => worker.terminate() });
      } else {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (pending.size === 0) worker.unref();
        if (m.error) p?.reject(rebuild(m.error));
        else p?.resolve(m);
      }
    });
  });
}

/**
 * onnxruntime on worker threads (see onnx-thread.ts for why): on CPU, `opts.threads` threads with
 * one single-threaded session each, every batch going to the least busy one. For a model this
 * small, independent sessions beat one session splitting each operator across threads: measured
 * here, two 1-thread sessions ran 866 images/s against 720 for one 2-thread session (int8 model,
 * batch 32), because the split operators spend their time synchronising. With CUDA, one thread
 * feeds the GPU. Same interface as the in-thread runtime; inputs are copied, outputs transferred.
 */
export async function createThreadedOnnxRuntime(model: LoadedModel, opts: RuntimeOptions): Promise<EmbedRuntime> {
  const cuda = wantCuda();
  const count = cuda ? 1 : opts.threads;
  const perThread: RuntimeOptions = { threads: count === 1 ? opts.threads : 1 };
  const started = await Promise.allSettled(Array.from({ length: count }, () => startThread(model, perThread)));
  const threads = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failure = started.find((s) => s.status === 'rejected');
  if (failure) {
    await Promise.all(threads.map((t) => t.terminate()));
    throw (failure as PromiseRejectedResult).reason;
  }
  const leastBusy = () => threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  const runtime: EmbedRuntime = {
    name: threads[0]!.name,
    parallelism: threads.length,
    async embed(pixels, count) {
      // Copied, not transferred: callers may reuse their buffer (a batch is a few MB).
      return (await leastBusy().call({ pixels, count })).out!;
    },
    async dispose() {
      await Promise.all(threads.map(async (t) => {
        await t.call({ dispose: true }).catch(() => undefined);
        await t.terminate();
      }));
    },
  };
  // On CPU each thread decodes its own batches. With CUDA the one thread feeding the GPU must not
  // decode too: there the caller decodes, on the main thread and libvips' pool.
  if (!cuda) {
    runtime.decodeAndEmbed = async (images, views, luma = false, insets = false) => {
      const packed = packImages(images);
      return (await leastBusy().call({ images: packed, views, luma, insets }, [packed.buffer])).batch!;
    };
  }
  return runtime;
}

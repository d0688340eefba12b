import { Worker } from 'node:worker_threads';
import { ModelError } from '../../errors.js';
import type { LoadedModel } from '../model-card.js';
import type { EmbedRuntime, RuntimeOptions } from '../runtime.js';

type ErrorData = { message: string; name?: string; code?: string };
type Reply = { id: number; out?: Float32Array; error?: ErrorData; disposed?: boolean };

/** Errors cross the thread as data; rebuild the class the caller would have seen in-thread. */
function rebuild(e: ErrorData): Error {
  if (e.name === 'RangeError') return new RangeError(e.message);
  if (e.name === 'ModelError' || e.code?.startsWith('E_MODEL')) return new ModelError(e.message, e.code ?? 'E_MODEL_RUNTIME');
  return new Error(e.message);
}

/**
 * The onnxruntime runtime on a worker thread (see onnx-thread.ts for why). Same interface;
 * inputs are copied to the thread, outputs transferred back.
 */
export function createThreadedOnnxRuntime(model: LoadedModel, opts: RuntimeOptions): Promise<EmbedRuntime> {
  const worker = new Worker(new URL('./onnx-thread.js', import.meta.url), { workerData: { model, opts } });
  const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const failAll = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  worker.on('error', (e) => failAll(new ModelError(`inference thread failed: ${e.message}`, 'E_MODEL_RUNTIME', { cause: e })));
  const call = (msg: object, transfer: ArrayBuffer[] = []) => new Promise<Reply>((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, ...msg }, transfer);
  });
  return new Promise((resolve, reject) => {
    worker.on('message', (m: Reply & { ready?: boolean; name?: string; fatal?: ErrorData }) => {
      if (m.fatal) {
        void worker.terminate();
        reject(rebuild({ ...m.fatal, code: m.fatal.code ?? 'E_MODEL_RUNTIME' }));
      } else if (m.ready) {
        worker.unref();
        resolve(runtime(m.name!));
      } else {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) p?.reject(rebuild(m.error));
        else p?.resolve(m);
      }
    });
  });

  function runtime(name: string): EmbedRuntime {
    return {
      name,
      async embed(pixels, count) {
        worker.ref();
        try {
          // Copied, not transferred: callers may reuse their buffer (a batch is a few MB).
          return (await call({ pixels, count })).out!;
        } finally {
          if (pending.size === 0) worker.unref();
        }
      },
      async dispose() {
        worker.ref();
        await call({ dispose: true }).catch(() => undefined);
        await worker.terminate();
      },
    };
  }
}

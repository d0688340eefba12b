/**
 * Worker-thread body of the threaded onnxruntime runtime. onnxruntime-node's run() blocks the
 * event loop for the whole batch, so running it here keeps the main thread free to schedule
 * decodes (sharp) while the model works: decode and inference overlap.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createOnnxRuntime } from './onnx.js';
import type { LoadedModel } from '../model-card.js';
import type { RuntimeOptions } from '../runtime.js';

const port = parentPort!;
const { model, opts } = workerData as { model: LoadedModel; opts: RuntimeOptions };

const errorData = (e: unknown) => ({ message: (e as Error).message, name: (e as Error).name, code: (e as { code?: string }).code });

try {
  const runtime = await createOnnxRuntime(model, opts);
  port.on('message', async (m: { id: number; pixels?: Float32Array; count?: number; dispose?: boolean }) => {
    if (m.dispose) {
      await runtime.dispose();
      port.postMessage({ id: m.id, disposed: true });
      port.close();
      return;
    }
    try {
      const out = await runtime.embed(m.pixels!, m.count!);
      port.postMessage({ id: m.id, out }, [out.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ id: m.id, error: errorData(e) });
    }
  });
  port.postMessage({ ready: true, name: runtime.name });
} catch (e) {
  port.postMessage({ fatal: errorData(e) });
}

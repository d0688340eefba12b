/**
 * Worker-thread body of the threaded onnxruntime runtime. onnxruntime-node's run() blocks the
 * event loop for the whole batch, so running it here keeps the main thread free for the catalog
 * and matching while the model works. On CPU the thread also decodes its batches (see
 * decodeAndEmbed), so decoding spreads over the pool instead of queueing on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createOnnxRuntime } from './onnx.js';
import { decodeAndEmbed } from '../encoded.js';
import type { LoadedModel } from '../model-card.js';
import type { RuntimeOptions } from '../runtime.js';
import { unpackImages, type PackedImages } from './packed.js';

const port = parentPort!;
const { model, opts } = workerData as { model: LoadedModel; opts: RuntimeOptions };

const errorData = (e: unknown) => ({ message: (e as Error).message, name: (e as Error).name, code: (e as { code?: string }).code });

try {
  const runtime = await createOnnxRuntime(model, opts);
  port.on('message', async (m: { id: number; pixels?: Float32Array; count?: number; images?: PackedImages; views?: number; luma?: boolean; insets?: boolean; dispose?: boolean }) => {
    if (m.dispose) {
      await runtime.dispose();
      port.postMessage({ id: m.id, disposed: true });
      port.close();
      return;
    }
    try {
      if (m.images) {
        const batch = await decodeAndEmbed(model, runtime, unpackImages(m.images), m.views!, m.luma === true, m.insets === true);
        port.postMessage({ id: m.id, batch }, [batch.vectors.buffer as ArrayBuffer, batch.luma.buffer as ArrayBuffer]);
        return;
      }
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

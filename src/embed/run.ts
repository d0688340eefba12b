import pLimit from 'p-limit';
import type { Catalog, DecodedResult, EmbeddingRow, FailedResult, Inset, WorkItem } from '../state/catalog.js';
import { decodeImage, readImage, type ReadResult } from '../scan/decode.js';
import type { Progress } from '../util/progress-types.js';
import type { LoadedModel } from './model-card.js';
import type { EmbedRuntime, EncodedImage } from './runtime.js';
import { insetModelBatch, modelBatch, type Box } from './views.js';
import { insetSource } from './encoded.js';
import { lumaOfRgb } from '../verify/luma.js';

export interface EmbedStageOptions {
  sourceIds: number[];
  /** 1 for the upstream side, DOWNSTREAM_VIEWS for downstream. */
  views: number;
  /** The upstream side: also search each image for a picture pasted into it and embed that (inset.ts). */
  insets?: boolean;
  batchSize: number;
  concurrency: number;
  /** Called after each page commits, with the page's last image id (pages commit in id order); the next page waits for what it returns. */
  afterCommit?: (lastId: number) => void | Promise<void>;
  /**
   * The luma of each decoded image's model input, for the verify stage: 'catalog' stores it with
   * the page (the downstream side: each test image is then decoded once); a function receives
   * it before the page's afterCommit (the upstream side, handed to matching in memory).
   */
  planes?: 'catalog' | ((planes: ImagePlane[]) => void);
}

/** One decoded image's luma plane (size² bytes, the model input's luma). */
export interface ImagePlane { id: number; hash: string; luma: Uint8Array }

export interface EmbedStageResult { decoded: number; failed: number; embedded: number; reused: number }

/** Pages decoding ahead of the pages the model is working on: enough to absorb jitter, few enough to bound memory. */
const PREFETCH = 2;
/** Pages embedding at once: one fills the runtime's sessions, a second keeps them fed across a commit. */
const IN_FLIGHT = 2;

/** What each page's model work is: views per image, whether to search insets, images per model batch, planes wanted. */
interface EmbedPlan { views: number; insets: boolean; batchImages: number; wantPlanes: boolean }

interface DecodedItem { item: WorkItem; result: Awaited<ReturnType<typeof decodeImage>> }
interface ReadItem { item: WorkItem; read: ReadResult }
interface EmbeddedPage { ok: DecodedResult[]; failed: FailedResult[]; embeddings: EmbeddingRow[]; planes: ImagePlane[]; lastId: number }

/** How a page of work goes through the model: made ready ahead (read, or decoded), then embedded. */
interface Stage<T> { prepare(page: WorkItem[]): Promise<T[]>; embed(prepared: T[]): Promise<EmbeddedPage> }

/**
 * Decode + embed every image of the given sources that lacks an embedding for this model.
 * Three things overlap: pages are decoded ahead of the model (by the runtime's own threads when
 * it has them), the runtime's sessions each work on a model batch of the pages in flight, and
 * the main thread commits finished pages meanwhile. A page is one model batch per session, so
 * catalog reads and commits cost per several batches.
 * Pages commit in order, each in one transaction: a kill loses only pages in flight.
 */
export async function runEmbed(catalog: Catalog, model: LoadedModel, runtime: EmbedRuntime, o: EmbedStageOptions, progress: Progress): Promise<EmbedStageResult> {
  const limit = pLimit(o.concurrency);
  const batchImages = Math.max(1, Math.floor(o.batchSize / o.views));
  const pageSize = batchImages * runtime.parallelism;
  const result: EmbedStageResult = { decoded: 0, failed: 0, embedded: 0, reused: 0 };
  let afterId = 0;
  const fetchPage = (): WorkItem[] => {
    const page = catalog.embedWork(o.sourceIds, model.id, o.views, afterId, pageSize);
    if (page.length > 0) afterId = page[page.length - 1]!.id;
    return page;
  };
  const size = model.card.input.size;
  const commit = async (page: EmbeddedPage) => {
    catalog.commitDecoded(page.ok, page.failed, model.id, page.embeddings, o.planes === 'catalog' ? { size, rows: page.planes } : undefined);
    if (typeof o.planes === 'function') o.planes(page.planes);
    await o.afterCommit?.(page.lastId);
    result.decoded += page.ok.length;
    result.failed += page.failed.length;
    result.embedded += page.embeddings.length;
    result.reused += page.ok.length - page.embeddings.length;
    progress.tick(page.ok.length + page.failed.length);
  };
  const wantPlanes = o.planes !== undefined;
  const plan: EmbedPlan = { views: o.views, insets: o.insets === true, batchImages, wantPlanes };
  if (runtime.decodeAndEmbed) await pump(readStage(catalog, model, runtime, plan, limit), fetchPage, commit);
  else await pump(decodeStage(catalog, model, runtime, plan, limit), fetchPage, commit);
  return result;
}

/** Keep pages prepared ahead and embedding in flight; hand finished pages over in order. */
async function pump<T>(stage: Stage<T>, fetchPage: () => WorkItem[], done: (page: EmbeddedPage) => Promise<void>): Promise<void> {
  const ahead: Promise<T[]>[] = [];
  const refill = () => {
    while (ahead.length < PREFETCH + IN_FLIGHT) {
      const page = fetchPage();
      if (page.length === 0) return;
      ahead.push(stage.prepare(page));
    }
  };
  const inFlight: Promise<EmbeddedPage>[] = [];
  refill();
  while (ahead.length > 0 || inFlight.length > 0) {
    while (inFlight.length < IN_FLIGHT && ahead.length > 0) {
      const prepared = await ahead.shift()!;
      refill();
      const embedding = stage.embed(prepared);
      // Awaited below in order; this only keeps a later page's failure from going unhandled
      // while an earlier one is being reported.
      embedding.catch(() => undefined);
      inFlight.push(embedding);
    }
    await done(await inFlight.shift()!);
  }
}

/** The caller decodes (main thread, libvips' pool), the runtime only runs the model. */
function decodeStage(catalog: Catalog, model: LoadedModel, runtime: EmbedRuntime, plan: EmbedPlan, limit: ReturnType<typeof pLimit>): Stage<DecodedItem> {
  const size = model.card.input.size;
  return {
    prepare: (page) => Promise.all(page.map((item) => limit(async (): Promise<DecodedItem> => ({ item, result: await decodeImage(item, { size }) })))),
    embed: (decoded) => embedPage(catalog, model, runtime, plan, decoded),
  };
}

/**
 * The runtime's threads decode (see EmbedRuntime.decodeAndEmbed): this thread only reads and
 * hashes, so that exact duplicates of committed images are still skipped before any model work.
 * Pages are read when they are sent, not ahead: reads are fast and synchronous for files, and
 * encoded bytes (megabytes per camera photo) are then held only for the pages in flight.
 */
function readStage(catalog: Catalog, model: LoadedModel, runtime: EmbedRuntime, plan: EmbedPlan, limit: ReturnType<typeof pLimit>): Stage<WorkItem> {
  return {
    prepare: async (page) => page,
    embed: async (page) => {
      const reads = await Promise.all(page.map((item) => limit(async (): Promise<ReadItem> => ({ item, read: await readImage(item) }))));
      return embedReadPage(catalog, model, runtime, plan, reads);
    },
  };
}

async function embedReadPage(catalog: Catalog, model: LoadedModel, runtime: EmbedRuntime, plan: EmbedPlan, reads: ReadItem[]): Promise<EmbeddedPage> {
  const { views, batchImages, wantPlanes } = plan;
  const failed: FailedResult[] = [];
  const readable: { item: WorkItem; hash: string; image: EncodedImage }[] = [];
  const fresh = new Set<string>();
  for (const { item, read } of reads) {
    if (!read.ok) {
      failed.push({ id: item.id, error: read.error });
      continue;
    }
    fresh.add(read.hash);
    readable.push({ item, hash: read.hash, image: { bytes: read.bytes, format: item.format === 'cifar' ? 'cifar' : 'encoded', embed: false } });
  }
  for (const h of catalog.embeddedHashes([...fresh], model.id, views)) fresh.delete(h);
  // The first copy of a hash in the page is embedded; the others are decoded for their size only.
  for (const r of readable) r.image.embed = fresh.delete(r.hash);
  const chunks = Array.from({ length: Math.ceil(readable.length / batchImages) }, (_, b) => readable.slice(b * batchImages, (b + 1) * batchImages));
  const batches = await Promise.all(chunks.map((chunk) => runtime.decodeAndEmbed!(chunk.map((r) => r.image), views, wantPlanes, plan.insets)));
  const ok: DecodedResult[] = [];
  const embeddings: EmbeddingRow[] = [];
  const planes: ImagePlane[] = [];
  const dims = model.card.output.dims;
  const stride = views * dims;
  const pixels = model.card.input.size ** 2;
  chunks.forEach((chunk, b) => {
    const { outcomes, vectors, luma, insets } = batches[b]!;
    const embedded = chunk.filter((r, i) => r.image.embed && outcomes[i]!.ok).length;
    const nextInsets = insetReader(vectors, embedded * stride, dims);
    let row = 0;
    let decodedInChunk = 0;
    chunk.forEach(({ item, hash, image }, i) => {
      const outcome = outcomes[i]!;
      if (!outcome.ok) {
        failed.push({ id: item.id, error: outcome.error });
        return;
      }
      if (wantPlanes) planes.push({ id: item.id, hash, luma: luma.subarray(decodedInChunk * pixels, ++decodedInChunk * pixels) });
      ok.push({ id: item.id, hash, width: outcome.width, height: outcome.height });
      if (image.embed) embeddings.push({ hash, views, vectors: vectors.slice(row * stride, (row + 1) * stride), insets: nextInsets(insets[row++]!) });
    });
  });
  return { ok, failed, embeddings, planes, lastId: reads[reads.length - 1]!.item.id };
}

/** Hands out the inset descriptors that follow the views in a batch's output, in order, to the images that have some. */
function insetReader(vectors: Float32Array, start: number, dims: number): (boxes: readonly Box[]) => Inset[] {
  let at = start;
  return (boxes) => boxes.map((box) => {
    const vector = vectors.slice(at, at + dims);
    at += dims;
    return { box, vector };
  });
}

function embedPage(catalog: Catalog, model: LoadedModel, runtime: EmbedRuntime, plan: EmbedPlan, decoded: DecodedItem[]): Promise<EmbeddedPage> {
  const { views, batchImages, wantPlanes } = plan;
  const ok: DecodedResult[] = [];
  const failed: FailedResult[] = [];
  const planes: ImagePlane[] = [];
  const toEmbed = new Map<string, ToEmbed>();
  const pixels = model.card.input.size ** 2;
  for (const { item, result: r } of decoded) {
    if (!r.ok) {
      failed.push({ id: item.id, error: r.error });
      continue;
    }
    ok.push({ id: item.id, hash: r.hash, width: r.width, height: r.height });
    if (wantPlanes) planes.push({ id: item.id, hash: r.hash, luma: lumaOfRgb(r.rgb!, pixels) });
    if (!toEmbed.has(r.hash)) toEmbed.set(r.hash, { item, rgb: r.rgb!, width: r.width, height: r.height });
  }
  // Exact duplicates (same bytes) of anything committed before cost no model time. (A duplicate
  // of a page still in flight is embedded twice; the catalog keeps one row.)
  for (const h of catalog.embeddedHashes([...toEmbed.keys()], model.id, views)) toEmbed.delete(h);
  const lastId = decoded[decoded.length - 1]!.item.id;
  // One model batch per call: the runtime hands concurrent calls to its idle sessions.
  const entries = [...toEmbed];
  const batches = Array.from({ length: Math.ceil(entries.length / batchImages) }, (_, b) => new Map(entries.slice(b * batchImages, (b + 1) * batchImages)));
  return Promise.all(batches.map((batch) => embedHashes(model, runtime, plan, batch))).then((rows) => ({ ok, failed, embeddings: rows.flat(), planes, lastId }));
}

/** An image of a decoded page to embed: its pixels, and where to decode it again for its insets. */
interface ToEmbed { item: WorkItem; rgb: Uint8Array; width: number; height: number }

async function embedHashes(model: LoadedModel, runtime: EmbedRuntime, plan: EmbedPlan, images: Map<string, ToEmbed>): Promise<EmbeddingRow[]> {
  if (images.size === 0) return [];
  const { views } = plan;
  const dims = model.card.output.dims;
  const { input } = model.card;
  const entries = [...images.values()];
  const rgbs = entries.map((e) => e.rgb);
  const batch = plan.insets
    ? await insetModelBatch(rgbs, views, input, entries.map((e) => insetSource(e, input.size, (side) => decodeImage(e.item, { size: side }))))
    : modelBatch(rgbs, views, input);
  const out = await runtime.embed(batch.pixels, batch.count);
  const nextInsets = insetReader(out, images.size * views * dims, dims);
  const rows: EmbeddingRow[] = [];
  let i = 0;
  for (const hash of images.keys()) {
    rows.push({ hash, views, vectors: out.slice(i * views * dims, (i + 1) * views * dims), insets: nextInsets(batch.insets[i]!) });
    i++;
  }
  return rows;
}

/** Decode without a model: hashes, sizes and errors only (the `scan` stage). */
export async function runDecodeOnly(catalog: Catalog, sourceIds: number[], concurrency: number, progress: Progress): Promise<{ decoded: number; failed: number }> {
  const limit = pLimit(concurrency);
  let afterId = 0;
  const totals = { decoded: 0, failed: 0 };
  for (;;) {
    const page = catalog.decodeWork(sourceIds, afterId, 256);
    if (page.length === 0) return totals;
    afterId = page[page.length - 1]!.id;
    const results = await Promise.all(page.map((item) => limit(async () => ({ item, r: await decodeImage(item, { size: 0 }) }))));
    const ok: DecodedResult[] = [];
    const failed: FailedResult[] = [];
    for (const { item, r } of results) {
      if (r.ok) ok.push({ id: item.id, hash: r.hash, width: r.width, height: r.height });
      else failed.push({ id: item.id, error: r.error });
    }
    catalog.commitDecoded(ok, failed, undefined, []);
    totals.decoded += ok.length;
    totals.failed += failed.length;
    progress.tick(page.length);
  }
}

/**
 * Worker-thread body of the verify stage: a PairVerifier with its own kernel and caches, over a
 * read-only connection to the catalog (the downstream planes are committed before matching
 * starts). The main thread keeps retrieval, decisions and commits; this thread only aligns, so a
 * run is no longer bound by one thread doing both.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Catalog } from '../state/catalog.js';
import { createAligner } from './aligner.js';
import { PairVerifier, type Candidate } from './run.js';
import type { Box } from '../embed/views.js';

/** One upstream image's candidates to verify, with its plane and the insets the embed stage found in it. */
export interface VerifyJob { upstreamId: number; luma: Uint8Array; candidates: Candidate[]; insets: Box[] }

const port = parentPort!;
const { db, size } = workerData as { db: string; size: number };
const catalog = Catalog.open(db, { readonly: true });
const verifier = new PairVerifier(catalog, createAligner(), size);

port.on('message', (m: { id: number; jobs?: VerifyJob[]; close?: boolean }) => {
  if (m.close) {
    catalog.close();
    port.close();
    return;
  }
  try {
    const before = { ...verifier.stats };
    const results = m.jobs!.map((j) => verifier.verify(j.upstreamId, j.luma, j.candidates, j.insets));
    const stats = { pairs: verifier.stats.pairs - before.pairs, ms: verifier.stats.ms - before.ms };
    port.postMessage({ id: m.id, results, stats });
  } catch (e) {
    port.postMessage({ id: m.id, error: (e as Error).message });
  }
});

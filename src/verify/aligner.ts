import { applyView } from '../embed/views.js';
import type { Alignment } from './geometry.js';
import { prepareDownstream, VerifyKernel, type DownstreamPlanes } from './kernel.js';
import { preparePlane, prepareUpstream, verifyPair, type ReferenceUpstream } from './reference.js';

/**
 * One implementation of the verifier: a downstream image in one view is prepared once (the
 * caller caches it); an upstream image is set once and verified against each of its candidates.
 */
export interface Aligner<Prepared = unknown> {
  readonly name: string;
  prepareDownstream(luma: Uint8Array): Prepared;
  setUpstream(luma: Uint8Array): void;
  verify(down: Prepared): Alignment;
}

/** The plain TypeScript verifier (reference.ts): slow, the statement of the method. */
export function referenceAligner(): Aligner {
  let up: ReferenceUpstream | undefined;
  return {
    name: 'reference',
    prepareDownstream: (luma) => preparePlane(luma),
    setUpstream: (luma) => void (up = prepareUpstream(preparePlane(luma))),
    verify: (down) => verifyPair(up!, down as ReturnType<typeof preparePlane>),
  };
}

/** The compiled verifier (kernel.ts, native/verify-wasm): what production runs. */
export function kernelAligner(): Aligner {
  const kernel = new VerifyKernel();
  return {
    name: 'wasm',
    prepareDownstream: (luma) => prepareDownstream(luma),
    setUpstream: (luma) => kernel.setUpstream(luma),
    verify: (down) => kernel.verify(down as DownstreamPlanes),
  };
}

/** The aligner production runs. */
export const createAligner = (): Aligner => kernelAligner();

/** A downstream luma plane in view k (the dihedral views of embed/views.ts). */
export const lumaInView = (luma: Uint8Array, size: number, view: number): Uint8Array => applyView(luma, size, view, 1);

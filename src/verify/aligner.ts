import { applyView } from '../embed/views.js';
import { GEOMETRY, type Alignment } from './geometry.js';
import { downstreamFromFine, prepareDownstream, VerifyKernel, type DownstreamPlanes } from './kernel.js';
import { preparePlane, prepareUpstream, verifyPair, type ReferenceUpstream } from './reference.js';

/**
 * One implementation of the verifier. A downstream image is prepared once (`prepareImage`: the
 * filtering, the costly part) and each view it is asked in is derived from that (`prepareView`:
 * cheap); the caller caches both. An upstream image is set once and verified against each of its
 * candidates.
 */
export interface Aligner<Image = unknown, Prepared = unknown> {
  readonly name: string;
  prepareImage(luma: Uint8Array): Image;
  prepareView(image: Image, view: number): Prepared;
  /** prepareView(prepareImage(luma), 0). */
  prepareDownstream(luma: Uint8Array): Prepared;
  setUpstream(luma: Uint8Array): void;
  verify(down: Prepared): Alignment;
}

/** The plain TypeScript verifier (reference.ts): slow, the statement of the method. */
export function referenceAligner(): Aligner {
  let up: ReferenceUpstream | undefined;
  return {
    name: 'reference',
    prepareImage: (luma) => luma,
    prepareView: (luma, view) => preparePlane(lumaInView(luma as Uint8Array, GEOMETRY.size, view)),
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
    // The fine plane of view k is view k of the fine plane (symmetric filters, replicated borders).
    prepareImage: (luma) => prepareDownstream(luma).fine,
    prepareView: (fine, view) => downstreamFromFine(planeInView(fine as Float32Array, view)),
    prepareDownstream: (luma) => prepareDownstream(luma),
    setUpstream: (luma) => kernel.setUpstream(luma),
    verify: (down) => kernel.verify(down as DownstreamPlanes),
  };
}

/** For each dihedral view, the source index of every pixel of a size×size plane (embed/views.ts's geometry). */
const VIEW_SOURCES = Array.from({ length: 8 }, (_, view) => {
  const n = GEOMETRY.size;
  const ids = Int32Array.from({ length: n * n }, (_, i) => i);
  return Int32Array.from(applyView(new Float32Array(ids), n, view, 1));
});

function planeInView(plane: Float32Array, view: number): Float32Array {
  if (view === 0) return plane;
  const sources = VIEW_SOURCES[view]!;
  const out = new Float32Array(plane.length);
  for (let i = 0; i < out.length; i++) out[i] = plane[sources[i]!]!;
  return out;
}

/** The aligner production runs. */
export const createAligner = (): Aligner => kernelAligner();

/** A downstream luma plane in view k (the dihedral views of embed/views.ts). */
export const lumaInView = (luma: Uint8Array, size: number, view: number): Uint8Array => applyView(luma, size, view, 1);

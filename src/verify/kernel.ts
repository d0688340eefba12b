/**
 * The verifier as production runs it: reference.ts's method compiled from C to WebAssembly with
 * SIMD (native/verify-wasm, built by its build.sh and committed). The reference is the spec and
 * test/verify/kernel.test.ts holds the two together (scores within ~1e-7 on the fixture pairs):
 * the planes are the reference's to the bit, the forward spectra are computed in double as there,
 * and only the per-pair work (cross-power, inverse FFTs, NCC and Gauss–Newton sums) is float32.
 * The control flow of verifyPair (hypothesis order, the cascade, the score) stays here in
 * TypeScript, on the reference's own scoreOf; the parameters come from GEOMETRY.
 *
 * Where the time goes, and why it is cheap (scripts/bench-verify.ts measures it; ~90 µs per
 * (pair, view) against ~6.7 ms for the reference):
 *  - an upstream image's hypothesis spectra (50) are computed once (setUpstream), two real
 *    transforms packed in each complex FFT, and only their Hermitian half kept, as unit phasors
 *    and magnitudes (the normalised cross-power then needs no square root or division);
 *  - a downstream image's planes (fine plane, gradients, spectrum) are computed once per view
 *    (prepareDownstream) and cached by the caller;
 *  - per (pair, view): the cross-power spectra, two packed into each complex inverse FFT
 *    (both are Hermitian: the real part of the result is one correlation surface, the imaginary
 *    part the other); unrolled radix-2 32-point FFTs on four columns at a time; the masked NCC
 *    and Gauss–Newton sums over four pixels at a time, the rows' partial sums carried in double.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';
import { GEOMETRY, type Affine, type Alignment } from './geometry.js';
import { gaussianTaps, HANN, hypothesisAffine, scoreOf } from './reference.js';

/** A downstream image in one view, prepared once and cached by the caller (plain typed arrays, so it can be stored/cached and copied into the module). */
export interface DownstreamPlanes {
  /** The band-passed, locally normalised 64×64 plane (reference.preparePlane's `fine`), row-major. */
  fine: Float32Array;
  /** Its gradients (reference.gradients), 64×64 each. */
  gx: Float32Array;
  gy: Float32Array;
  /**
   * Rows 0..16 of the 32×32 DFT of the Hann-windowed coarse plane (the rest is its conjugate
   * mirror), computed in double: 17×32 real parts of the unit phasors X/|X|, 17×32 imaginary
   * parts, then 17×32 magnitudes |X|.
   */
  spectrum: Float32Array;
}

interface Exports {
  memory: { buffer: ArrayBuffer };
  vk_taps_fine(): number;
  vk_taps_local(): number;
  vk_hann(): number;
  vk_hyp_cs(): number;
  vk_hyp_sn(): number;
  vk_luma(): number;
  vk_dn_fine(): number;
  vk_dn_gx(): number;
  vk_dn_gy(): number;
  vk_dn_spec(): number;
  vk_out_coarse(): number;
  vk_out_fine(): number;
  vk_max_hyp(): number;
  vk_max_taps(): number;
  vk_spec_len(): number;
  vk_init(nFine: number, nLocal: number, nHyp: number, eps: number): number;
  vk_set_upstream(): void;
  vk_prepare_down(): void;
  vk_prepare_from_fine(): void;
  vk_coarse(): void;
  vk_ncc(a: number, b: number, c: number, d: number, e: number, f: number): number;
  vk_refine(a: number, b: number, c: number, d: number, e: number, f: number, iterations: number, minCount: number): void;
}

/** The WebAssembly global, typed here because the project's lib settings (no DOM) leave it out. */
const Wasm = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: unknown) => { exports: unknown } } }).WebAssembly;

const N = GEOMETRY.size;
const C = GEOMETRY.coarse;
const PIXELS = N * N;
/** Values kept of a Hermitian 32×32 spectrum: rows 0..C/2. */
const HALF = (C / 2 + 1) * C;
/** A prepared spectrum: per kept frequency, the unit phasor's real and imaginary parts and the magnitude. */
const SPECTRUM = 3 * HALF;

let compiled: object | undefined;
const module = (): object => (compiled ??= new Wasm.Module(readFileSync(join(packageRoot(), 'native', 'verify-wasm', 'verify.wasm'))));

/** reference.refine stops when fewer pixels than this are valid. */
const MIN_REFINE_PIXELS = 64;


/** One WebAssembly instance with its parameters written and its memory views. */
class Instance {
  readonly e: Exports;
  readonly f32: Float32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;

  constructor() {
    if (N !== 64 || C !== 32) throw new Error(`verify kernel: built for 64×64 planes and a 32×32 coarse search, not ${N}/${C}`);
    this.e = new Wasm.Instance(module(), {}).exports as Exports;
    // The module has no allocator: its memory never grows, so these views stay valid.
    this.f32 = new Float32Array(this.e.memory.buffer);
    this.f64 = new Float64Array(this.e.memory.buffer);
    this.u8 = new Uint8Array(this.e.memory.buffer);
    if (this.e.vk_spec_len() !== SPECTRUM) throw new Error('verify kernel: spectrum layout mismatch');
    const fine = gaussianTaps(GEOMETRY.fineSigma);
    const local = gaussianTaps(GEOMETRY.localSigma);
    const hyps = GEOMETRY.hypotheses;
    if (fine.length > this.e.vk_max_taps() || local.length > this.e.vk_max_taps() || hyps.length > this.e.vk_max_hyp()) throw new Error('verify kernel: parameters exceed the module\'s tables');
    this.f32.set(fine, this.e.vk_taps_fine() >> 2);
    this.f32.set(local, this.e.vk_taps_local() >> 2);
    this.f64.set(HANN, this.e.vk_hann() >> 3);
    // The resampling's zoom·R(angle), as reference.upstreamSpectrum computes it.
    this.f64.set(hyps.map(([zoom, angle]) => zoom * Math.cos(angle)), this.e.vk_hyp_cs() >> 3);
    this.f64.set(hyps.map(([zoom, angle]) => zoom * Math.sin(angle)), this.e.vk_hyp_sn() >> 3);
    if (this.e.vk_init(fine.length, local.length, hyps.length, GEOMETRY.eps) !== 0) throw new Error('verify kernel: vk_init refused the parameters');
  }

  luma(luma: Uint8Array): void {
    if (luma.length !== PIXELS) throw new Error(`verify kernel: luma must be ${N}×${N} (${PIXELS} bytes), got ${luma.length}`);
    this.u8.set(luma, this.e.vk_luma());
  }

  prepareDownstream(luma: Uint8Array): DownstreamPlanes {
    this.luma(luma);
    this.e.vk_prepare_down();
    return this.downstreamPlanes();
  }

  /** The planes of a downstream view from its fine plane (the filtering is the costly part; see vk_prepare_from_fine). */
  fromFine(fine: Float32Array): DownstreamPlanes {
    if (fine.length !== PIXELS) throw new Error(`verify kernel: a fine plane is ${N}×${N} floats, got ${fine.length}`);
    this.f32.set(fine, this.e.vk_dn_fine() >> 2);
    this.e.vk_prepare_from_fine();
    return this.downstreamPlanes();
  }

  /** Copies (the next call reuses the module's memory), each its own buffer so that it can be stored or sent to another thread alone. */
  private downstreamPlanes(): DownstreamPlanes {
    const plane = (at: number, length: number) => this.f32.slice(at >> 2, (at >> 2) + length);
    return { fine: plane(this.e.vk_dn_fine(), PIXELS), gx: plane(this.e.vk_dn_gx(), PIXELS), gy: plane(this.e.vk_dn_gy(), PIXELS), spectrum: plane(this.e.vk_dn_spec(), SPECTRUM) };
  }
}

let shared: Instance | undefined;

/** luma: 64×64 Uint8Array (row-major). Same filters as reference.preparePlane. */
export function prepareDownstream(luma: Uint8Array): DownstreamPlanes {
  return (shared ??= new Instance()).prepareDownstream(luma);
}

/** A downstream view's planes from its fine plane (e.g. a stored view-0 fine plane put in another view). */
export function downstreamFromFine(fine: Float32Array): DownstreamPlanes {
  return (shared ??= new Instance()).fromFine(fine);
}

/** One per thread; holds a WebAssembly instance. */
export class VerifyKernel {
  readonly #m = new Instance();
  #hasUpstream = false;

  /** Prepare an upstream image (64×64 luma): planes + all hypothesis spectra, kept until the next call. */
  setUpstream(luma: Uint8Array): void {
    this.#m.luma(luma);
    this.#m.e.vk_set_upstream();
    this.#hasUpstream = true;
  }

  /** Verify the current upstream image against one downstream image in one view: same result shape and meaning as reference.verifyPair (score, ncc, overlap, affine, peak, refined). */
  verify(down: DownstreamPlanes): Alignment {
    if (!this.#hasUpstream) throw new Error('verify kernel: setUpstream first');
    const { e, f32, f64 } = this.#m;
    if (down.fine.length !== PIXELS || down.gx.length !== PIXELS || down.gy.length !== PIXELS || down.spectrum.length !== SPECTRUM) throw new Error('verify kernel: not a prepared downstream image');
    f32.set(down.fine, e.vk_dn_fine() >> 2);
    f32.set(down.spectrum, e.vk_dn_spec() >> 2);
    e.vk_coarse();

    // The hypotheses carried on: best peak first, ties to the earlier hypothesis (verifyPair's sort).
    const hyps = GEOMETRY.hypotheses;
    const coarse = e.vk_out_coarse() >> 3;
    const top: number[] = [];
    for (let h = 0; h < hyps.length; h++) {
      const peak = f64[coarse + 3 * h]!;
      let at = top.length;
      while (at > 0 && peak > f64[coarse + 3 * top[at - 1]!]!) at--;
      if (at < GEOMETRY.keep) top.splice(at, 0, h);
      if (top.length > GEOMETRY.keep) top.pop();
    }
    const peak = f64[coarse + 3 * top[0]!]!;

    const fine = e.vk_out_fine() >> 3;
    let gradients = false;
    let best: Alignment = { score: 0, ncc: 0, overlap: 0, affine: [1, 0, 0, 0, 1, 0], peak, refined: false };
    for (const h of top) {
      const [zoom, angle] = hyps[h]!;
      const start = hypothesisAffine(zoom, angle, f64[coarse + 3 * h + 1]!, f64[coarse + 3 * h + 2]!);
      const ncc0 = e.vk_ncc(...start);
      const overlap0 = f64[fine + 1]!;
      const score0 = scoreOf(ncc0, overlap0, start);
      if (score0 > best.score) best = { score: score0, ncc: ncc0, overlap: overlap0, affine: start, peak, refined: false };
      if (score0 < GEOMETRY.refineFrom) continue;
      if (!gradients) {
        // Only pairs that reach the refinement need the gradients in the module.
        f32.set(down.gx, e.vk_dn_gx() >> 2);
        f32.set(down.gy, e.vk_dn_gy() >> 2);
        gradients = true;
      }
      const m = this.#refine(start);
      const ncc1 = e.vk_ncc(...m);
      const overlap1 = f64[fine + 1]!;
      const score1 = scoreOf(ncc1, overlap1, m);
      if (score1 > best.score) best = { score: score1, ncc: ncc1, overlap: overlap1, affine: m, peak, refined: true };
    }
    return best;
  }

  /** reference.refine, in the module (its solve6 ported operation for operation). */
  #refine(start: Affine): Affine {
    const { e, f64 } = this.#m;
    e.vk_refine(...start, GEOMETRY.iterations, MIN_REFINE_PIXELS);
    const at = (e.vk_out_fine() >> 3) + 42;
    return Array.from(f64.subarray(at, at + 6)) as Affine;
  }
}

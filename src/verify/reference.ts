/**
 * The verifier in plain TypeScript: the readable statement of the method, and the reference the
 * compiled kernel (native/verify-wasm) is tested against. Production runs the kernel; this file
 * favours clarity over speed.
 *
 * Method (see ARCHITECTURE.md, "verify"): both images as 64×64 luma; band-passed and locally
 * normalised so that colour, brightness and contrast edits drop out; a coarse search at 32×32
 * over zoom × rotation with the translation from phase correlation; a 6-parameter affine refined
 * by Gauss–Newton at 64×64; the score is the normalised correlation over the upstream pixels whose
 * source lies inside the downstream image (padding, black corners, the world outside a crop
 * do not count).
 */
import { describeAffine, GEOMETRY, scoreOf, type Affine, type Alignment, type PreparedPlane } from './geometry.js';

export { describeAffine, scoreOf };

export { GEOMETRY };

const N = 64;
const C = 32;

export { lumaOfRgb } from './luma.js';

/** Gaussian taps for sigma, radius ceil(3 sigma), summing to 1. */
export function gaussianTaps(sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma);
  const taps = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += taps[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < taps.length; i++) taps[i] = taps[i]! / sum;
  return taps;
}

/** Separable blur of an n×n plane; borders replicate the edge pixel. */
export function blur(src: Float32Array, n: number, taps: Float32Array): Float32Array {
  const r = (taps.length - 1) / 2;
  const tmp = new Float32Array(n * n);
  const out = new Float32Array(n * n);
  const clamp = (i: number) => (i < 0 ? 0 : i >= n ? n - 1 : i);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += taps[k + r]! * src[y * n + clamp(x + k)]!;
      tmp[y * n + x] = s;
    }
  }
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += taps[k + r]! * tmp[clamp(y + k) * n + x]!;
      out[y * n + x] = s;
    }
  }
  return out;
}

const TAPS_FINE = gaussianTaps(GEOMETRY.fineSigma);
const TAPS_LOCAL = gaussianTaps(GEOMETRY.localSigma);

/**
 * Band-pass (fine blur minus local mean) divided by the local RMS: what is left is structure,
 * not colour, brightness or contrast. Then the 32×32 coarse plane (2×2 means) and gradients.
 */
export function preparePlane(luma: Uint8Array): PreparedPlane {
  const l = Float32Array.from(luma);
  const fine = blur(l, N, TAPS_FINE);
  const mean = blur(l, N, TAPS_LOCAL);
  const band = new Float32Array(N * N);
  for (let i = 0; i < band.length; i++) band[i] = fine[i]! - mean[i]!;
  const energy = blur(band.map((v) => v * v), N, TAPS_LOCAL);
  const fine64 = new Float32Array(N * N);
  for (let i = 0; i < band.length; i++) fine64[i] = band[i]! / (Math.sqrt(energy[i]!) + GEOMETRY.eps);
  const coarse = new Float32Array(C * C);
  for (let y = 0; y < C; y++) {
    for (let x = 0; x < C; x++) {
      const i = 2 * y * N + 2 * x;
      coarse[y * C + x] = 0.25 * (fine64[i]! + fine64[i + 1]! + fine64[i + N]! + fine64[i + N + 1]!);
    }
  }
  return { fine: fine64, coarse };
}

/** Bilinear sample of an n×n plane at (x, y); NaN outside [0, n-1]². */
function sample(p: Float32Array, n: number, x: number, y: number): number {
  if (!(x >= 0 && y >= 0 && x <= n - 1 && y <= n - 1)) return Number.NaN;
  const x0 = Math.min(Math.floor(x), n - 2);
  const y0 = Math.min(Math.floor(y), n - 2);
  const fx = x - x0;
  const fy = y - y0;
  const i = y0 * n + x0;
  const top = p[i]! + fx * (p[i + 1]! - p[i]!);
  const bottom = p[i + n]! + fx * (p[i + n + 1]! - p[i + n]!);
  return top + fy * (bottom - top);
}

/** In-place radix-2 complex FFT of length n (a power of two) over strided data. */
function fft1(re: Float64Array, im: Float64Array, off: number, stride: number, n: number, inverse: boolean): void {
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const a = off + i * stride;
      const b = off + j * stride;
      [re[a], re[b]] = [re[b]!, re[a]!];
      [im[a], im[b]] = [im[b]!, im[a]!];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = ((inverse ? 2 : -2) * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k);
        const wi = Math.sin(ang * k);
        const a = off + (i + k) * stride;
        const b = off + (i + k + len / 2) * stride;
        const tr = re[b]! * wr - im[b]! * wi;
        const ti = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - tr;
        im[b] = im[a]! - ti;
        re[a] = re[a]! + tr;
        im[a] = im[a]! + ti;
      }
    }
  }
}

function fft2(re: Float64Array, im: Float64Array, n: number, inverse: boolean): void {
  for (let y = 0; y < n; y++) fft1(re, im, y * n, 1, n, inverse);
  for (let x = 0; x < n; x++) fft1(re, im, x, n, n, inverse);
}

export const HANN = Float64Array.from({ length: C }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / C));

/** Coarse-plane pixel centres: 32-grid index i sits at 64-grid coordinate 2i + 0.5. */
const CENTRE_C = (C - 1) / 2;
const CENTRE_N = (N - 1) / 2;

/**
 * The upstream coarse plane resampled under hypothesis (zoom, angle) into the downstream frame:
 * W(d) = U(zoom·R(angle)(d − c) + c), zero outside U; windowed and transformed.
 */
function upstreamSpectrum(u: Float32Array, zoom: number, angle: number): { re: Float64Array; im: Float64Array } {
  const re = new Float64Array(C * C);
  const im = new Float64Array(C * C);
  const cs = zoom * Math.cos(angle);
  const sn = zoom * Math.sin(angle);
  for (let y = 0; y < C; y++) {
    for (let x = 0; x < C; x++) {
      const dx = x - CENTRE_C;
      const dy = y - CENTRE_C;
      const v = sample(u, C, cs * dx - sn * dy + CENTRE_C, sn * dx + cs * dy + CENTRE_C);
      re[y * C + x] = Number.isNaN(v) ? 0 : v * HANN[x]! * HANN[y]!;
    }
  }
  fft2(re, im, C, false);
  return { re, im };
}

function downstreamSpectrum(d: Float32Array): { re: Float64Array; im: Float64Array } {
  const re = new Float64Array(C * C);
  const im = new Float64Array(C * C);
  for (let y = 0; y < C; y++) for (let x = 0; x < C; x++) re[y * C + x] = d[y * C + x]! * HANN[x]! * HANN[y]!;
  fft2(re, im, C, false);
  return { re, im };
}

/** Peak of the phase correlation of D against a hypothesis' W: height and the shift δ with D(d) ≈ W(d + δ). */
function phaseCorrelate(d: { re: Float64Array; im: Float64Array }, w: { re: Float64Array; im: Float64Array }): { peak: number; dx: number; dy: number } {
  const re = new Float64Array(C * C);
  const im = new Float64Array(C * C);
  for (let i = 0; i < C * C; i++) {
    // D · conj(W), normalised to unit magnitude.
    const r = d.re[i]! * w.re[i]! + d.im[i]! * w.im[i]!;
    const m = d.im[i]! * w.re[i]! - d.re[i]! * w.im[i]!;
    const mag = Math.hypot(r, m) + 1e-9;
    re[i] = r / mag;
    im[i] = m / mag;
  }
  fft2(re, im, C, true);
  let best = 0;
  for (let i = 1; i < C * C; i++) if (re[i]! > re[best]!) best = i;
  const px = best % C;
  const py = (best - px) / C;
  const at = (x: number, y: number) => re[((y + C) % C) * C + ((x + C) % C)]!;
  const sub = (l: number, c: number, r: number) => {
    const den = l - 2 * c + r;
    return den < 0 ? Math.max(-0.5, Math.min(0.5, (0.5 * (l - r)) / den)) : 0;
  };
  const sx = px + sub(at(px - 1, py), at(px, py), at(px + 1, py));
  const sy = py + sub(at(px, py - 1), at(px, py), at(px, py + 1));
  // The correlation peaks at −δ (mod C).
  const wrap = (v: number) => (v > C / 2 ? v - C : v);
  return { peak: re[best]! / (C * C), dx: -wrap(sx), dy: -wrap(sy) };
}

/**
 * The affine map from upstream to downstream pixels (64-grid) of a coarse hypothesis: the copy
 * shows D zoomed by `zoom` and rotated by `angle` about the centre, then shifted; δ (32-grid) is
 * the phase correlation's shift. d = R(−angle)(u − c)/zoom + c − 2δ.
 */
export function hypothesisAffine(zoom: number, angle: number, dx: number, dy: number): Affine {
  const cs = Math.cos(angle) / zoom;
  const sn = Math.sin(angle) / zoom;
  // Linear part R(−angle)/zoom.
  const a = cs;
  const b = sn;
  const c = -sn;
  const d = cs;
  const tx = CENTRE_N - 2 * dx - (a * CENTRE_N + b * CENTRE_N);
  const ty = CENTRE_N - 2 * dy - (c * CENTRE_N + d * CENTRE_N);
  return [a, b, tx, c, d, ty];
}

/** Masked normalised correlation over upstream pixels whose source lies in D; and that share. */
export function maskedNcc(u: Float32Array, d: Float32Array, m: Affine): { ncc: number; overlap: number } {
  let n = 0;
  let su = 0;
  let sd = 0;
  let suu = 0;
  let sdd = 0;
  let sud = 0;
  for (let y = 0; y < N; y++) {
    for (let x = 0; x < N; x++) {
      const v = sample(d, N, m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]);
      if (Number.isNaN(v)) continue;
      const w = u[y * N + x]!;
      n++;
      su += w;
      sd += v;
      suu += w * w;
      sdd += v * v;
      sud += w * v;
    }
  }
  const overlap = n / (N * N);
  if (n < 16) return { ncc: 0, overlap };
  const cov = sud - (su * sd) / n;
  const den = Math.sqrt(Math.max(0, suu - (su * su) / n) * Math.max(0, sdd - (sd * sd) / n));
  return { ncc: den > 0 ? cov / den : 0, overlap };
}

/** Gradients of a 64-plane by central differences (one-sided at the border). */
export function gradients(p: Float32Array): { gx: Float32Array; gy: Float32Array } {
  const gx = new Float32Array(N * N);
  const gy = new Float32Array(N * N);
  for (let y = 0; y < N; y++) {
    for (let x = 0; x < N; x++) {
      const l = p[y * N + Math.max(0, x - 1)]!;
      const r = p[y * N + Math.min(N - 1, x + 1)]!;
      const t = p[Math.max(0, y - 1) * N + x]!;
      const b = p[Math.min(N - 1, y + 1) * N + x]!;
      gx[y * N + x] = (r - l) / (x === 0 || x === N - 1 ? 1 : 2);
      gy[y * N + x] = (b - t) / (y === 0 || y === N - 1 ? 1 : 2);
    }
  }
  return { gx, gy };
}

/**
 * Gauss–Newton on the 6 affine parameters: minimise Σ (D(M u) − U(u))² over the valid upstream
 * pixels. Both planes are normalised already, so no gain/bias terms are needed.
 */
export function refine(u: Float32Array, d: Float32Array, g: { gx: Float32Array; gy: Float32Array }, start: Affine, iterations: number): Affine {
  let m = [...start] as Affine;
  for (let it = 0; it < iterations; it++) {
    const h = new Float64Array(36);
    const b = new Float64Array(6);
    let count = 0;
    for (let y = 0; y < N; y++) {
      for (let x = 0; x < N; x++) {
        const sx = m[0] * x + m[1] * y + m[2];
        const sy = m[3] * x + m[4] * y + m[5];
        const v = sample(d, N, sx, sy);
        if (Number.isNaN(v)) continue;
        const ex = sample(g.gx, N, sx, sy);
        const ey = sample(g.gy, N, sx, sy);
        const r = v - u[y * N + x]!;
        const j = [ex * x, ex * y, ex, ey * x, ey * y, ey];
        for (let p = 0; p < 6; p++) {
          b[p] = b[p]! + j[p]! * r;
          for (let q = 0; q < 6; q++) h[p * 6 + q] = h[p * 6 + q]! + j[p]! * j[q]!;
        }
        count++;
      }
    }
    if (count < 64) break;
    const step = solve6(h, b);
    if (!step) break;
    m = m.map((v, i) => v - step[i]!) as Affine;
  }
  return m;
}

/** Solves H x = b (6×6, symmetric positive semi-definite) by Gaussian elimination with a small damping; null if singular. */
export function solve6(h: Float64Array, b: Float64Array): Float64Array | null {
  const a = new Float64Array(42);
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) a[i * 7 + j] = h[i * 6 + j]! + (i === j ? 1e-6 * (h[i * 6 + i]! + 1) : 0);
    a[i * 7 + 6] = b[i]!;
  }
  for (let c = 0; c < 6; c++) {
    let p = c;
    for (let r = c + 1; r < 6; r++) if (Math.abs(a[r * 7 + c]!) > Math.abs(a[p * 7 + c]!)) p = r;
    if (Math.abs(a[p * 7 + c]!) < 1e-12) return null;
    if (p !== c) for (let k = 0; k < 7; k++) [a[c * 7 + k], a[p * 7 + k]] = [a[p * 7 + k]!, a[c * 7 + k]!];
    for (let r = 0; r < 6; r++) {
      if (r === c) continue;
      const f = a[r * 7 + c]! / a[c * 7 + c]!;
      for (let k = c; k < 7; k++) a[r * 7 + k] = a[r * 7 + k]! - f * a[c * 7 + k]!;
    }
  }
  return Float64Array.from({ length: 6 }, (_, i) => a[i * 7 + 6]! / a[i * 7 + i]!);
}

/** Upstream-side work shared by every candidate: its spectra under every coarse hypothesis and its gradients. */
export interface ReferenceUpstream { plane: PreparedPlane; spectra: { re: Float64Array; im: Float64Array }[] }

export function prepareUpstream(plane: PreparedPlane): ReferenceUpstream {
  const spectra = GEOMETRY.hypotheses.map(([zoom, angle]) => upstreamSpectrum(plane.coarse, zoom, angle));
  return { plane, spectra };
}

/**
 * Verifies one (upstream, downstream-in-a-view) pair: the best alignment found and its score.
 * `refineBelow`: hypotheses whose unrefined score is below this are not refined (the cascade).
 */
export function verifyPair(up: ReferenceUpstream, down: PreparedPlane): Alignment {
  const dSpec = downstreamSpectrum(down.coarse);
  const peaks = up.spectra.map((w, h) => ({ h, ...phaseCorrelate(dSpec, w) }));
  peaks.sort((a, b) => b.peak - a.peak || a.h - b.h);
  const grads = gradients(down.fine);
  let best: Alignment = { score: 0, ncc: 0, overlap: 0, affine: [1, 0, 0, 0, 1, 0], peak: peaks[0]!.peak, refined: false };
  for (const p of peaks.slice(0, GEOMETRY.keep)) {
    const [zoom, angle] = GEOMETRY.hypotheses[p.h]!;
    const start = hypothesisAffine(zoom, angle, p.dx, p.dy);
    const s0 = maskedNcc(up.plane.fine, down.fine, start);
    const score0 = scoreOf(s0.ncc, s0.overlap, start);
    if (score0 > best.score) best = { score: score0, ncc: s0.ncc, overlap: s0.overlap, affine: start, peak: peaks[0]!.peak, refined: false };
    if (score0 < GEOMETRY.refineFrom) continue;
    const m = refine(up.plane.fine, down.fine, grads, start, GEOMETRY.iterations);
    const s1 = maskedNcc(up.plane.fine, down.fine, m);
    const score1 = scoreOf(s1.ncc, s1.overlap, m);
    if (score1 > best.score) best = { score: score1, ncc: s1.ncc, overlap: s1.overlap, affine: m, peak: peaks[0]!.peak, refined: true };
  }
  return best;
}

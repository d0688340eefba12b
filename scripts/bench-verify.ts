/**
 * The verifier's cost, compiled kernel (src/verify/kernel.ts) against the TypeScript reference
 * (src/verify/reference.ts), on the fixture photos: µs per setUpstream, per prepareDownstream
 * (one image in one view) and per verify (one pair in one view), and the speed-up. Single thread.
 * Not a test.
 *
 *   node dist/scripts/bench-verify.js [--rounds 7] [--warmup 1.5]
 *
 * Workload: the 13 planted copies of fixtures/ground-truth.csv in all 8 views (the matching view
 * is the one the reference scores highest), and each of their upstream images against 3 other
 * downstream images in all 8 views. Each figure is the median over rounds of the mean time of
 * one pass over its workload (wall clock; the min in brackets); the kernel is warmed first so
 * that V8 has tiered its WebAssembly up from the baseline compiler.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { applyView } from '../src/embed/views.js';
import { decodeRead } from '../src/scan/decode.js';
import { packageRoot } from '../src/util/package-root.js';
import { prepareDownstream, VerifyKernel, type DownstreamPlanes } from '../src/verify/kernel.js';
import { lumaOfRgb, preparePlane, prepareUpstream, verifyPair, type ReferenceUpstream } from '../src/verify/reference.js';
import { GEOMETRY, type PreparedPlane } from '../src/verify/geometry.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, warmup: { type: 'string', default: '1.5' } } });
const ROUNDS = Math.max(1, Number(values.rounds));
const WARMUP_S = Number(values.warmup);
const SIZE = 64;
const VIEWS = 8;

const fixtures = join(packageRoot(), 'fixtures');
async function lumaOf(path: string): Promise<Uint8Array> {
  const decoded = await decodeRead(readFileSync(path), path, null, { size: SIZE });
  if (!decoded.ok || !decoded.rgb) throw new Error(`cannot decode ${path}`);
  return lumaOfRgb(decoded.rgb, SIZE * SIZE);
}
const truth = readFileSync(join(fixtures, 'ground-truth.csv'), 'utf8').trim().split('\n').slice(1).map((line) => line.split(',').slice(0, 2) as [string, string]);
const downNames = readdirSync(join(fixtures, 'downstream')).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
const down = new Map<string, Uint8Array[]>();
for (const d of downNames) {
  const luma = await lumaOf(join(fixtures, 'downstream', d));
  down.set(d, Array.from({ length: VIEWS }, (_, v) => applyView(luma, SIZE, v, 1)));
}
const upNames = [...new Set(truth.map(([u]) => u))];
const up = new Map<string, Uint8Array>();
for (const u of upNames) up.set(u, await lumaOf(join(fixtures, 'upstream', u)));

// The workload, grouped by upstream image as the caller runs it: set it once, verify its candidates.
type Kind = 'matching view' | 'other views' | 'unrelated';
interface Job { down: string; view: number; kind: Kind }
const jobs = new Map<string, Job[]>();
{
  let next = 0;
  for (const [u, d] of truth) {
    const list: Job[] = [];
    for (let v = 0; v < VIEWS; v++) list.push({ down: d, view: v, kind: 'other views' });
    for (let k = 0; k < 3; k++) {
      let o = downNames[next++ % downNames.length]!;
      if (truth.some(([tu, td]) => tu === u && td === o)) o = downNames[next++ % downNames.length]!;
      for (let v = 0; v < VIEWS; v++) list.push({ down: o, view: v, kind: 'unrelated' });
    }
    jobs.set(u, list);
  }
}

// Reference planes and the matching view (where the reference scores highest).
const refDown = new Map<string, PreparedPlane[]>();
for (const [d, views] of down) refDown.set(d, views.map((l) => preparePlane(l)));
const refUp = new Map<string, ReferenceUpstream>();
for (const [u, l] of up) refUp.set(u, prepareUpstream(preparePlane(l)));
for (const [u, d] of truth) {
  const scores = refDown.get(d)!.map((p) => verifyPair(refUp.get(u)!, p).score);
  jobs.get(u)!.find((j) => j.down === d && j.view === scores.indexOf(Math.max(...scores)))!.kind = 'matching view';
}

const kernelDown = new Map<string, DownstreamPlanes[]>();
for (const [d, views] of down) kernelDown.set(d, views.map((l) => prepareDownstream(l)));
const kernel = new VerifyKernel();

/** Median and min over rounds of the mean µs per call of `pass`, which makes `calls` calls. */
function measure(pass: () => void, calls: number): { median: number; min: number } {
  const per: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    pass();
    per.push(((performance.now() - t) * 1000) / calls);
  }
  per.sort((a, b) => a - b);
  return { median: per[Math.floor(per.length / 2)]!, min: per[0]! };
}

/** One pass of verifies over the workload, of one kind or all; the time of setUpstream left out. */
function verifyPass(kind: Kind | 'all', run: (u: string, list: Job[]) => void): { pass: () => void; calls: number } {
  const selected = [...jobs].map(([u, list]) => [u, list.filter((j) => kind === 'all' || j.kind === kind)] as const);
  return { pass: () => selected.forEach(([u, list]) => run(u, list)), calls: selected.reduce((n, [, list]) => n + list.length, 0) };
}

const upstreamOf = (u: string) => up.get(u)!;
let sink = 0;
const kernelVerify = (u: string, list: Job[], timed: { t: number }) => {
  kernel.setUpstream(upstreamOf(u));
  const t = performance.now();
  for (const j of list) sink += kernel.verify(kernelDown.get(j.down)![j.view]!).score;
  timed.t += performance.now() - t;
};
const referenceVerify = (u: string, list: Job[], timed: { t: number }) => {
  const r = refUp.get(u)!;
  const t = performance.now();
  for (const j of list) sink += verifyPair(r, refDown.get(j.down)![j.view]!).score;
  timed.t += performance.now() - t;
};

/** verify timings exclude setUpstream: each round's time is summed inside the calls. */
function measureVerify(kind: Kind | 'all', impl: typeof kernelVerify, rounds = ROUNDS): { median: number; min: number } {
  const per: number[] = [];
  const { calls } = verifyPass(kind, () => {});
  for (let r = 0; r < rounds; r++) {
    const timed = { t: 0 };
    verifyPass(kind, (u, list) => impl(u, list, timed)).pass();
    per.push((timed.t * 1000) / calls);
  }
  per.sort((a, b) => a - b);
  return { median: per[Math.floor(per.length / 2)]!, min: per[0]! };
}

// Warm the kernel up (V8 runs new WebAssembly on its baseline compiler first).
const warmEnd = performance.now() + WARMUP_S * 1000;
while (performance.now() < warmEnd) {
  verifyPass('all', (u, list) => kernelVerify(u, list, { t: 0 })).pass();
  for (const views of down.values()) prepareDownstream(views[0]!);
}

const allUp = [...up.values()];
const allDown = [...down.values()].flat();
const kinds: (Kind | 'all')[] = ['all', 'matching view', 'other views', 'unrelated'];
const counts = Object.fromEntries(kinds.map((k) => [k, verifyPass(k, () => {}).calls]));
const names = [
  `setUpstream (planes + ${GEOMETRY.hypotheses.length} hypothesis spectra)`,
  'prepareDownstream (one image, one view)',
  ...kinds.map((kind) => `verify per (pair, view): ${kind} (${counts[kind]})`),
];
// The kernel first: the reference's garbage would put its collections in the kernel's rounds.
const kernelTimes = [
  measure(() => allUp.forEach((l) => kernel.setUpstream(l)), allUp.length),
  measure(() => allDown.forEach((l) => void prepareDownstream(l)), allDown.length),
  ...kinds.map((kind) => measureVerify(kind, kernelVerify)),
];
const referenceTimes = [
  measure(() => allUp.forEach((l) => void prepareUpstream(preparePlane(l))), allUp.length),
  measure(() => allDown.slice(0, 32).forEach((l) => void preparePlane(l)), 32),
  ...kinds.map((kind) => measureVerify(kind, referenceVerify, Math.min(ROUNDS, kind === 'all' ? 3 : 5))),
];
const rows = names.map((name, i) => [name, kernelTimes[i]!, referenceTimes[i]!] as const);

const fmt = (m: { median: number; min: number }) => `${m.median.toFixed(m.median < 100 ? 1 : 0)} (${m.min.toFixed(m.min < 100 ? 1 : 0)})`.padStart(16);
console.log(`verify: kernel (native/verify-wasm) vs reference (TypeScript), µs per call, median of rounds (min); node ${process.version}, one thread`);
console.log(`${''.padEnd(52)}${'kernel'.padStart(16)}${'reference'.padStart(16)}${'speed-up'.padStart(10)}`);
for (const [name, k, r] of rows) console.log(`${name.padEnd(52)}${fmt(k)}${fmt(r)}${`${(r.median / k.median).toFixed(0)}×`.padStart(10)}`);
if (Number.isNaN(sink)) console.log('');

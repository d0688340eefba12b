/**
 * How often the upstream inset search fires, per family of an eval suite (kept with `neardup eval
 * --work <dir>`), and on its distractors: `node dist/scripts/inset-probe.js <suite dir> [limit]`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../src/scan/decode.js';
import { trimUniformBorder } from '../src/embed/views.js';
import { INSET, findInset } from '../src/embed/inset.js';

const P = { ...INSET, ...(JSON.parse(process.env.INSET ?? '{}') as object) };
const [dir, limitArg] = process.argv.slice(2);
if (!dir) throw new Error('usage: inset-probe <suite dir> [limit]');
const limit = Number(limitArg ?? Infinity);
const family = new Map<string, string>();
for (const line of readFileSync(join(dir, 'ground-truth.csv'), 'utf8').trim().split('\n').slice(1)) {
  const [up, , fam] = line.split(',');
  family.set(up!, fam!);
}
const stats = new Map<string, { n: number; fired: number }>();
let ms = 0;
const files = readdirSync(join(dir, 'upstream')).sort().slice(0, limit);
for (const f of files) {
  const r = await decodeImage(join(dir, 'upstream', f), { size: 64 });
  if (!r.ok) continue;
  const t = performance.now();
  const box = findInset(trimUniformBorder(r.rgb!, 64), 64, P);
  ms += performance.now() - t;
  const fam = family.get(f) ?? family.get(`upstream/${f}`) ?? 'distractor';
  const s = stats.get(fam) ?? { n: 0, fired: 0 };
  s.n++;
  if (box) s.fired++;
  stats.set(fam, s);
}
for (const [fam, s] of [...stats].sort()) console.log(`${fam.padEnd(14)} ${String(s.n).padStart(6)}  fired ${(100 * s.fired / s.n).toFixed(1)}%`);
console.log(`findInset: ${(1000 * ms / files.length).toFixed(1)} µs per image`);

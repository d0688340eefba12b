/**
 * How often the upstream inset search fires, per family of an eval suite (kept with `neardup eval
 * --work <dir>`), and on its distractors, and how many extra descriptors it makes per image (the
 * pasted rectangle, its alternative, a collage's tiles): `node dist/scripts/inset-probe.js <suite dir> [limit]`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../src/scan/decode.js';
import { trimUniformBorder, uniformBorderBox } from '../src/embed/views.js';
import { INSET, findInsets } from '../src/embed/inset.js';

const P = { ...INSET, ...(JSON.parse(process.env.INSET ?? '{}') as object) };
const [dir, limitArg] = process.argv.slice(2);
if (!dir) throw new Error('usage: inset-probe <suite dir> [limit]');
const limit = Number(limitArg ?? Infinity);
const family = new Map<string, string>();
for (const line of readFileSync(join(dir, 'ground-truth.csv'), 'utf8').trim().split('\n').slice(1)) {
  const [up, , fam] = line.split(',');
  family.set(up!, fam!);
}
const stats = new Map<string, { n: number; fired: number; insets: number }>();
let ms = 0;
const files = readdirSync(join(dir, 'upstream')).sort().slice(0, limit);
for (const f of files) {
  const r = await decodeImage(join(dir, 'upstream', f), { size: 64 });
  if (!r.ok) continue;
  const trim = uniformBorderBox(r.rgb!, 64);
  const aspect = (r.width / r.height) * (trim ? trim.width / trim.height : 1);
  const t = performance.now();
  const boxes = findInsets(trimUniformBorder(r.rgb!, 64), 64, P, aspect);
  ms += performance.now() - t;
  const fam = family.get(f) ?? family.get(`upstream/${f}`) ?? 'distractor';
  const s = stats.get(fam) ?? { n: 0, fired: 0, insets: 0 };
  s.n++;
  if (boxes.length > 0) s.fired++;
  s.insets += boxes.length;
  stats.set(fam, s);
}
for (const [fam, s] of [...stats].sort()) {
  console.log(`${fam.padEnd(14)} ${String(s.n).padStart(6)}  fired ${(100 * s.fired / s.n).toFixed(1)}%  insets per image ${(s.insets / s.n).toFixed(3)}`);
}
console.log(`findInsets: ${(1000 * ms / files.length).toFixed(1)} µs per image`);

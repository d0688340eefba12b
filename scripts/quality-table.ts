/**
 * The README's per-family quality table from two model cards written by `neardup eval
 * --write-card` (before and now): retrieved, verified and cosine recall per family, and the
 * summary rows. `node dist/scripts/quality-table.js <before card.json> <now card.json>`; the
 * cards of earlier commits come from `git show <commit>:models/neardup-vit-s8-int8/card.json`.
 */
import { readFileSync } from 'node:fs';

interface FamilyRow { family: string; copies: number; candidates: number; verified: number; cosine: number }
interface Card {
  threshold: number;
  quality: { precision: number; recall: number; bestRecallAtP99: number; falseMatchRate: number };
  verify: { threshold: number; precision: number; recall: number; falsePer1e9Pairs: number; bestRecallAtP99: number; verifier: string; families: FamilyRow[] };
}

/** Short names of the eval families (src/eval/transforms.ts describes each in full). */
const LABEL: Readonly<Record<string, string>> = {
  crop50: 'crop to 50% area', shift: 'shift 10–20%, black band', rot90: 'rotation 90/180/270', rotsmall: 'rotation ±8–25°, corners cropped',
  squeeze: 'squeeze 0.6–1.6', colour: 'colour + hue', grayscale: 'grayscale', jpeg: 'JPEG q20–50 + downscale', mirror: 'mirror',
  combo: 'crop + colour + JPEG', shiftfill: 'shift, band white/grey/colour/edge/blurred', rotexpand: 'rotation ±8–25°, canvas expanded',
  border: 'border 5–20%', zoomout: 'zoom-out (45–75%) into a larger canvas', perspective: 'perspective 5–12%', overlay: 'text / logo overlay',
  blur: 'blur σ 1–2.5', crop25: 'crop to 25% area', combo2: 'crop + colour + blur + JPEG', zoomphoto: 'zoom-out (45–75%) into another photo',
  noise: 'gaussian noise σ 8–20', pixelate: 'pixelate (25–45% of the side)', rotinplace: 'rotation ±8–25° in the same canvas',
  mosaic: 'one tile of a 2–4-tile collage',
};

const [beforePath, nowPath] = process.argv.slice(2);
if (!beforePath || !nowPath) {
  console.error('usage: node dist/scripts/quality-table.js <before card.json> <now card.json>');
  process.exit(2);
}
const [before, now] = [beforePath, nowPath].map((p) => JSON.parse(readFileSync(p, 'utf8')) as Card);
const pc = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
const byFamily = (card: Card) => new Map(card.verify.families.map((f) => [f.family, f]));
const [fa, fb] = [byFamily(before), byFamily(now)];
const mean = (m: Map<string, FamilyRow>, field: 'candidates' | 'verified' | 'cosine', keys: string[]) => keys.reduce((s, k) => s + m.get(k)![field], 0) / keys.length;
const shared = [...fb.keys()].filter((k) => fa.has(k));
const all = [...fb.keys()];

console.log(`| family | retrieved (ceiling): before → **now** | verified: before → **now** | cosine now @ ${now.threshold} |`);
console.log('|---|---|---|---|');
for (const [k, f] of fb) console.log(`| ${LABEL[k] ?? k} | ${pc(fa.get(k)?.candidates)} → **${pc(f.candidates)}** | ${pc(fa.get(k)?.verified)} → **${pc(f.verified)}** | ${pc(f.cosine)} |`);
const same = shared.length < all.length ? `; same ${shared.length}: ` : '';
const sharedOf = (field: 'candidates' | 'verified') => (same ? `${same}**${pc(mean(fb, field, shared))}**` : '');
console.log(`| **all** | ${pc(mean(fa, 'candidates', [...fa.keys()]))} (${fa.size}) → **${pc(mean(fb, 'candidates', all))}**${sharedOf('candidates')} | ${pc(mean(fa, 'verified', [...fa.keys()]))} (${fa.size}) → **${pc(mean(fb, 'verified', all))}**${sharedOf('verified')} | ${pc(mean(fb, 'cosine', all))} |`);
console.log();
for (const [name, c] of [['before', before], ['now', now]] as const) {
  const v = c.verify, q = c.quality;
  console.log(`${name}: verified ${v.threshold}: precision ${pc(v.precision)}, recall ${pc(v.recall)}, ${Math.round(v.falsePer1e9Pairs)} false per 1e9 pairs (${v.verifier}); cosine ${c.threshold}: precision ${pc(q.precision)}, recall ${pc(q.recall)}, best recall at P ≥ 0.99 ${pc(q.bestRecallAtP99)}`);
}

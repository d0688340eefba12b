/**
 * Test corpora built from the committed fixtures: copies in temp folders, a larger upstream side
 * made of pixel-distinct variants, and the ground truth of the planted copies.
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { parseCsv } from '../../src/report/csv.js';
import { REPO_ROOT } from './cli.js';

export const FIXTURES = join(REPO_ROOT, 'fixtures');
export const FIXTURE_UPSTREAM = join(FIXTURES, 'upstream');
export const FIXTURE_DOWNSTREAM = join(FIXTURES, 'downstream');

const IMAGE_RE = /\.(png|jpe?g)$/i;

/** Image files under `dir`, recursively, as paths relative to `dir` with '/' separators, sorted. */
export function imagesUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (IMAGE_RE.test(name)) found.push(relative(dir, p).split('\\').join('/'));
    }
  };
  walk(dir);
  return found.sort();
}

export interface GroundTruthRow { upstream: string; downstream: string; family: string }

/** fixtures/ground-truth.csv: paths relative to the upstream and downstream folders. */
export function groundTruth(): GroundTruthRow[] {
  const [header, ...rows] = parseCsv(readFileSync(join(FIXTURES, 'ground-truth.csv'), 'utf8'));
  if (header?.join(',') !== 'upstream,downstream,family') throw new Error(`unexpected ground-truth header ${String(header)}`);
  return rows.map(([upstream, downstream, family]) => ({ upstream: upstream!, downstream: downstream!, family: family! }));
}

/** Copy a folder (regular files only; the fixtures hold no links). */
export async function copyDir(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true, verbatimSymlinks: true });
}

/**
 * An upstream folder of `fixtures/upstream` plus `variants` pixel-distinct re-encodings of every
 * image (brightness nudged, saved as PNG under v<n>/) and `byteCopies` byte-identical copies
 * (under dup/, exact duplicates the embed stage must reuse). Returns the number of images.
 */
export async function makeLargeUpstream(dir: string, variants: number, byteCopies: number): Promise<number> {
  await copyDir(FIXTURE_UPSTREAM, dir);
  const originals = imagesUnder(FIXTURE_UPSTREAM);
  let count = originals.length;
  for (let v = 1; v <= variants; v++) {
    const vdir = join(dir, `v${v}`);
    await mkdir(join(vdir, 'more'), { recursive: true });
    for (const rel of originals) {
      const png = await sharp(join(FIXTURE_UPSTREAM, rel)).modulate({ brightness: 1 + 0.04 * v }).png().toBuffer();
      await writeFile(join(vdir, rel.replace(/\.\w+$/, '.png')), png);
      count++;
    }
  }
  await mkdir(join(dir, 'dup'), { recursive: true });
  for (let i = 0; i < byteCopies; i++) {
    const rel = originals[(i * 7) % originals.length]!;
    await writeFile(join(dir, 'dup', `copy_${String(i).padStart(3, '0')}_${rel.replace(/\//g, '_')}`), await readFile(join(FIXTURE_UPSTREAM, rel)));
    count++;
  }
  return count;
}

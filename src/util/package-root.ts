import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding neardup's package.json (works from src/ via tsc output in dist/src/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'models'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('neardup: cannot find the package root (package.json beside models/)');
    dir = up;
  }
}

export const DEFAULT_MODEL = 'neardup-vit-s8';
export const defaultModelDir = (): string => join(packageRoot(), 'models', DEFAULT_MODEL);

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

/** The float model: the reference every runtime can run (tfjs included). */
export const FLOAT_MODEL = 'neardup-vit-s8';
/** Its int8 copy (training/quantize.py): same recall, ~1.5× faster per core on onnxruntime's CPU kernels. */
export const DEFAULT_MODEL = 'neardup-vit-s8-int8';
/** The bundled model for a runtime: int8 for onnxruntime, the float one for tfjs (no int8 kernels). */
export const defaultModelDir = (runtime = 'onnx'): string => join(packageRoot(), 'models', runtime.startsWith('onnx') ? DEFAULT_MODEL : FLOAT_MODEL);

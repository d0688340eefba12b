import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';

/**
 * native/jpeg-wasm's module, one instance per thread: libjpeg's scaled decoder and the pixel
 * loops of the resamplers (jpeg-scaled.ts and small.ts drive them). Every call that starts with
 * jw_input resets the module's arena, so nothing it allocates outlives the next image.
 */
export interface WasmExports {
  memory: { buffer: ArrayBuffer };
  jw_input(size: number): number;
  jw_decode(denom: number, maxPixels: number): number;
  jw_output(): number;
  jw_width(): number;
  jw_height(): number;
  jw_warnings(): number;
  jw_alloc(size: number): number;
  jw_pass(src: number, width: number, height: number, horizontal: number, outLen: number, taps: number, start: number, weights: number, bias: number, scale: number, shift: number): number;
  jw_widen(src: number, n: number): number;
  jw_fpass(src: number, width: number, height: number, horizontal: number, outLen: number, bounds: number, at: number, weights: number): number;
  jw_narrow(src: number, n: number): number;
}

/** The WebAssembly global, typed here because the project's lib settings (no DOM) leave it out. */
const Wasm = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: unknown) => { exports: unknown } } }).WebAssembly;

const compiled = new Wasm.Module(readFileSync(join(packageRoot(), 'native', 'jpeg-wasm', 'jpeg-scaled.wasm')));
const instantiate = (): WasmExports => new Wasm.Instance(compiled, {
  env: {
    // libjpeg's error_exit must not return; the throw unwinds the WebAssembly frames, and the
    // module's arena is reset at the next input, so nothing is left behind.
    jpeg_error: (code: number) => {
      throw new Error(`libjpeg error ${code}`);
    },
  },
}).exports as WasmExports;
let instance = instantiate();

/** This thread's instance (replaced by releaseIfLarge: do not keep it across images). */
export const wasmInstance = (): WasmExports => instance;

/**
 * WebAssembly memory never shrinks: after a file that needed more than this (a large progressive
 * JPEG holds all its coefficients, ~70 MB at 24 MP), the instance is replaced, so that each
 * thread decoding keeps a few MB, not its largest file's worth.
 */
const MAX_RETAINED_BYTES = 64 * 1024 * 1024;
export const releaseIfLarge = (): void => {
  if (instance.memory.buffer.byteLength > MAX_RETAINED_BYTES) instance = instantiate();
};

/** The module's memory now (for the test that it is given back). */
export const moduleMemoryBytes = (): number => instance.memory.buffer.byteLength;

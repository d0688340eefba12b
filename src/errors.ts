/**
 * Error families. A bad image is never an error: it becomes a catalog row with a status and a
 * reason. These are for systemic failures, and each maps to a process exit code in the CLI.
 */
export class NeardupError extends Error {
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
/** A bad flag, path, threshold or pipeline file: the user must change their input. Exit 2. */
export class ConfigError extends NeardupError {}
/** The model folder is missing, corrupt or its runtime cannot load it. Exit 3. */
export class ModelError extends NeardupError {}
/** The catalog is from a newer schema, locked by another run, or inconsistent. Exit 4. */
export class StateError extends NeardupError {}
/** The HNSW index could not be built, saved or loaded. Exit 5. */
export class IndexError extends NeardupError {}

for (const C of [NeardupError, ConfigError, ModelError, StateError, IndexError]) {
  Object.defineProperty(C.prototype, 'name', { value: C.name, enumerable: false });
}

/** Exit codes of the `neardup` command; documented in --help and the README. */
export const EXIT = Object.freeze({
  ok: 0,
  failure: 1,
  config: 2,
  model: 3,
  state: 4,
  index: 5,
  matchFound: 11,
  /** `certificate --check`: the data differs from what the certificate fingerprinted. */
  dataChanged: 12,
});

export function exitCodeFor(error: unknown): number {
  if (error instanceof ConfigError) return EXIT.config;
  if (error instanceof ModelError) return EXIT.model;
  if (error instanceof StateError) return EXIT.state;
  if (error instanceof IndexError) return EXIT.index;
  return EXIT.failure;
}

/** "Expected <what> for <name> but received <value> (<type>)" — every validation message. */
export function invalidOption(name: string, expected: string, received: unknown): ConfigError {
  const shown = typeof received === 'string' ? JSON.stringify(received) : String(received);
  return new ConfigError(`Expected ${expected} for ${name} but received ${shown} (${typeof received})`, 'E_CONFIG');
}

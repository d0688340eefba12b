import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { parse } from 'yaml';
import { ConfigError, invalidOption } from '../errors.js';
import type { RawOptions } from './options.js';

/** Commands a pipeline file can run, and the option keys each accepts. */
export const PIPELINE_COMMANDS = Object.freeze({
  audit: ['upstream', 'downstream', 'out', 'db', 'model', 'runtime', 'threshold', 'floor', 'k', 'verify', 'concurrency', 'batchSize', 'threads', 'wait', 'followLinks', 'failOnMatch', 'shard'],
  dedup: ['sources', 'out', 'db', 'model', 'runtime', 'threshold', 'floor', 'k', 'verify', 'concurrency', 'batchSize', 'threads', 'wait', 'followLinks', 'keep'],
} as const);
export type PipelineCommand = keyof typeof PIPELINE_COMMANDS;

const PATH_KEYS = new Set(['upstream', 'downstream', 'sources', 'out', 'db', 'model']);

export interface Pipeline { name: string; command: PipelineCommand; options: RawOptions }

/** Paths in a pipeline file are relative to the file, so it runs the same from any folder. */
function rebase(value: string, base: string): string {
  const prefix = /^(list:|glob:)/.exec(value)?.[0] ?? '';
  const rest = value.slice(prefix.length);
  if (isAbsolute(rest)) return value;
  const joined = relative(process.cwd(), join(base, rest)) || '.';
  return prefix + joined;
}

/** Read and validate `pipelines/<name>.yaml`: `command:` plus that command's options. */
export function loadPipeline(file: string): Pipeline {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? `Pipeline file ${file} does not exist` : `Pipeline file ${file} is not valid YAML: ${(error as Error).message}`, 'E_PIPELINE', { cause: error });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalidOption(`${file}`, 'a mapping with command: and options', doc);
  const { command, name, ...rest } = doc as Record<string, unknown>;
  if (typeof command !== 'string' || !(command in PIPELINE_COMMANDS)) throw invalidOption(`${file}: command`, `one of ${Object.keys(PIPELINE_COMMANDS).join(', ')}`, command);
  const allowed = PIPELINE_COMMANDS[command as PipelineCommand] as readonly string[];
  const base = dirname(file);
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rest)) {
    if (!allowed.includes(key)) throw new ConfigError(`Unknown key ${JSON.stringify(key)} in ${file} for command ${command}; allowed: ${allowed.join(', ')}`, 'E_PIPELINE');
    if (PATH_KEYS.has(key)) {
      const list = Array.isArray(value) ? value : [value];
      if (!list.every((v) => typeof v === 'string')) throw invalidOption(`${file}: ${key}`, 'a path or a list of paths', value);
      const rebased = (list as string[]).map((v) => rebase(v, base));
      options[key] = ['upstream', 'downstream', 'sources'].includes(key) ? rebased : rebased[0];
    } else options[key] = value;
  }
  return { name: typeof name === 'string' ? name : file, command: command as PipelineCommand, options: options as RawOptions };
}

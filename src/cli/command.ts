import { EXIT } from '../errors.js';
import type { RawOptions } from '../config/options.js';
import { helpText, parseFlags, type FlagSpec } from './flags.js';

/** Where a command writes; injected so tests can run commands in-process. */
export interface CommandIO {
  stdout(s: string): void;
  stderr(s: string): void;
  isTTY: boolean;
}

/** A command as COMMANDS holds it. */
export interface Command {
  summary: string;
  run(argv: string[], io: CommandIO): Promise<number>;
}

/** A command built from its flag list: --help handled, flags parsed, then the action. */
export function command(name: string, usage: string, summary: string, flags: FlagSpec[], positionals: boolean,
  action: (o: RawOptions & Record<string, unknown>, positionals: string[], io: CommandIO) => Promise<number>): Command {
  return {
    summary,
    async run(argv, io) {
      const parsed = parseFlags(name, argv, flags, positionals);
      if (parsed.help) {
        io.stdout(helpText(usage, summary, flags));
        return EXIT.ok;
      }
      return action(parsed.options, parsed.positionals, io);
    },
  };
}

#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, exitCodeFor, NeardupError } from '../errors.js';
import { VERSION } from '../version.js';
import { COMMANDS, type CommandIO } from './commands.js';

/** Command names padded to the longest one plus two spaces, so each summary stands apart. */
const NAME_WIDTH = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;

const USAGE = `neardup ${VERSION} — find near-duplicate images across datasets and purge them

Usage: neardup <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(NAME_WIDTH)}${c.summary}`).join('\n')}

Run \`neardup <command> --help\` for a command's options.
Exit codes: 0 ok, 1 unexpected failure, 2 bad flag/path/config, 3 model missing or corrupt,
4 catalog in use or from a newer neardup, 5 index failure, 11 matches found with --fail-on-match,
12 data differs from its certificate (certificate --check).`;

/** Run one neardup command line; returns the exit code (the library never calls process.exit). */
export async function main(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(`${USAGE}\n`);
    return name ? EXIT.ok : EXIT.config;
  }
  if (name === '--version' || name === '-v') {
    io.stdout(`${VERSION}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(`neardup: unknown command ${JSON.stringify(name)}; expected one of ${Object.keys(COMMANDS).join(', ')}. Run \`neardup --help\`.\n`);
    return EXIT.config;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof NeardupError) {
      io.stderr(`neardup ${name}: ${error.message}\n`);
    } else {
      io.stderr(`neardup ${name}: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
    }
    return exitCodeFor(error);
  }
}

function isEntryPoint(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const io: CommandIO = {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    isTTY: process.stderr.isTTY === true,
  };
  main(process.argv.slice(2), io).then((code) => {
    process.exitCode = code;
  });
}

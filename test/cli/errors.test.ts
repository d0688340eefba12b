/**
 * Error messages and exit codes of the real CLI, table-driven: each bad command line must exit
 * with its documented code (src/errors.ts EXIT), say what is wrong in one line on stderr (no stack
 * trace), print nothing on stdout and write no outputs. Plus `--help` for every command.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT } from '../../src/errors.js';
import { defaultModelDir } from '../../src/util/package-root.js';
import { removeDir, runCli, tmpDir } from '../helpers/cli.js';

const SIDES = ['--upstream', 'fixtures/upstream', '--downstream', 'fixtures/downstream'];

let root = '';
let emptyModel = '';
let corruptModel = '';
let badCardModel = '';

before(async () => {
  root = await tmpDir('neardup-errors-');
  emptyModel = join(root, 'empty-model');
  mkdirSync(emptyModel);
  // A faithful copy of the shipped model with one byte of the weights flipped.
  corruptModel = join(root, 'corrupt-model');
  await cp(defaultModelDir(), corruptModel, { recursive: true });
  const weights = readFileSync(join(corruptModel, 'model.onnx'));
  weights[Math.floor(weights.length / 2)] ^= 0xff;
  writeFileSync(join(corruptModel, 'model.onnx'), weights);
  badCardModel = join(root, 'bad-card-model');
  await cp(defaultModelDir(), badCardModel, { recursive: true });
  writeFileSync(join(badCardModel, 'card.json'), '{ "name": "broken", ');
});

after(async () => {
  await removeDir(root);
});

interface Row {
  name: string;
  /** Arguments; OUT is replaced by a fresh folder that must stay without outputs. */
  args: string[];
  code: number;
  /** Every pattern must match stderr. */
  message: RegExp[];
}

const OUT = '<out>';

const ROWS = (): Row[] => [
  { name: 'unknown flag', args: ['audit', ...SIDES, '--out', OUT, '--bogus'], code: EXIT.config, message: [/Unknown option '--bogus'/, /neardup audit --help/] },
  { name: 'unknown command', args: ['frobnicate', '--out', OUT], code: EXIT.config, message: [/unknown command "frobnicate"/, /audit/] },
  { name: 'threshold above 1', args: ['audit', ...SIDES, '--out', OUT, '--threshold', '2'], code: EXIT.config, message: [/threshold/, /"2"/, /-1 to 1/] },
  { name: 'threshold not a number', args: ['audit', ...SIDES, '--out', OUT, '--threshold', 'abc'], code: EXIT.config, message: [/threshold/, /"abc"/] },
  { name: 'empty threshold', args: ['audit', ...SIDES, '--out', OUT, '--threshold', ''], code: EXIT.config, message: [/threshold/] },
  { name: 'floor above threshold (cosine decisions)', args: ['audit', ...SIDES, '--out', OUT, '--verify', 'off', '--threshold', '0.5', '--floor', '0.9'], code: EXIT.config, message: [/floor/, /threshold/] },
  { name: 'verify neither on nor off', args: ['audit', ...SIDES, '--out', OUT, '--verify', 'maybe'], code: EXIT.config, message: [/verify/, /on or off/, /"maybe"/] },
  { name: 'k zero', args: ['audit', ...SIDES, '--out', OUT, '--k', '0'], code: EXIT.config, message: [/\bk\b/, /"0"/] },
  { name: 'fractional concurrency', args: ['audit', ...SIDES, '--out', OUT, '--concurrency', '1.5'], code: EXIT.config, message: [/concurrency/, /integer/] },
  { name: 'flag without its value', args: ['audit', ...SIDES, '--out'], code: EXIT.config, message: [/--out/] },
  { name: 'missing --out', args: ['audit', ...SIDES], code: EXIT.config, message: [/Missing --out/] },
  { name: 'missing --downstream', args: ['audit', '--upstream', 'fixtures/upstream', '--out', OUT], code: EXIT.config, message: [/Missing --downstream/] },
  { name: 'nonexistent upstream folder', args: ['audit', '--upstream', 'fixtures/no-such-folder', '--downstream', 'fixtures/downstream', '--out', OUT], code: EXIT.config, message: [/--upstream/, /fixtures\/no-such-folder/, /does not exist/] },
  { name: 'upstream is a file', args: ['audit', '--upstream', 'fixtures/ground-truth.csv', '--downstream', 'fixtures/downstream', '--out', OUT], code: EXIT.config, message: [/ground-truth\.csv/, /file/] },
  { name: 'missing file list', args: ['audit', '--upstream', 'list:fixtures/no-such-list.txt', '--downstream', 'fixtures/downstream', '--out', OUT], code: EXIT.config, message: [/no-such-list\.txt/, /does not exist/] },
  { name: '--model is an empty folder', args: ['audit', ...SIDES, '--out', OUT, '--model', '<empty-model>'], code: EXIT.model, message: [/card\.json/] },
  { name: '--model with altered model.onnx bytes', args: ['audit', ...SIDES, '--out', OUT, '--model', '<corrupt-model>'], code: EXIT.model, message: [/sha256/, /model\.onnx/] },
  { name: '--model with a card that is not JSON', args: ['audit', ...SIDES, '--out', OUT, '--model', '<bad-card-model>'], code: EXIT.model, message: [/card\.json/, /JSON/] },
  { name: 'unknown --runtime', args: ['audit', ...SIDES, '--out', OUT, '--runtime', 'cuda'], code: EXIT.config, message: [/runtime/, /"cuda"/, /onnx/, /tfjs/] },
];

describe('bad command lines: exit code and message', () => {
  for (const row of ROWS()) {
    test(`${row.name} → exit ${row.code}`, async () => {
      const out = join(root, `out-${row.name.replace(/\W+/g, '-')}`);
      const args = row.args.map((a) => (a === OUT ? out : a === '<empty-model>' ? emptyModel : a === '<corrupt-model>' ? corruptModel : a === '<bad-card-model>' ? badCardModel : a));
      const r = await runCli(args);
      assert.equal(r.code, row.code, `exit code for ${args.join(' ')}; stderr: ${r.stderr}`);
      for (const m of row.message) assert.match(r.stderr, m);
      assert.match(r.stderr, /^neardup( \w+)?: /, 'the message names the program and command');
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line on stderr: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
      assert.equal(r.stdout, '', 'nothing on stdout');
      assert.ok(!existsSync(join(out, 'summary.json')) && !existsSync(join(out, 'neardup.db')), 'no outputs and no catalog written');
    });
  }
});

/** Command names from `neardup --help` (the "Commands:" block). */
function commandsFromHelp(help: string): string[] {
  const block = help.split('Commands:\n')[1]?.split('\n\n')[0] ?? '';
  return block.split('\n').map((l) => /^ {2}(\S+)\s/.exec(l)?.[1]).filter((n): n is string => !!n);
}

/** Option rows of a command's help: `--name` and whether it takes an argument. */
function optionsFromHelp(help: string): { name: string; takesValue: boolean }[] {
  const block = help.split('Options:\n')[1] ?? '';
  return block.split('\n').map((l) => /^\s+(?:-\w, )?--([\w-]+)( <[^>]+>)?/.exec(l)).filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ name: m[1]!, takesValue: !!m[2] }));
}

describe('--help', () => {
  test('neardup --help exits 0 and lists the commands and exit codes', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    const commands = commandsFromHelp(r.stdout);
    for (const c of ['audit', 'scan', 'embed', 'index', 'match', 'purge', 'report']) assert.ok(commands.includes(c), `${c} listed`);
    assert.match(r.stdout, /Exit codes: 0 ok/);
    for (const code of Object.values(EXIT)) assert.match(r.stdout, new RegExp(`\\b${code} `), `exit code ${code} documented`);
  });

  test('neardup with no command prints the usage and exits 2', async () => {
    const r = await runCli([]);
    assert.equal(r.code, EXIT.config);
    assert.match(r.stdout, /Usage: neardup <command>/);
  });

  test('every command: --help exits 0, lists its flags, and accepts every flag it lists', async () => {
    const commands = commandsFromHelp((await runCli(['--help'])).stdout);
    assert.ok(commands.length >= 7);
    const problems: string[] = [];
    for (const command of commands) {
      for (const helpFlag of ['--help', '-h']) {
        const r = await runCli([command, helpFlag]);
        if (r.code !== 0) { problems.push(`${command} ${helpFlag}: exit ${r.code} ${r.stderr}`); continue; }
        if (!r.stdout.startsWith(`Usage: neardup ${command}`)) problems.push(`${command} ${helpFlag}: no usage line`);
        if (r.stderr !== '') problems.push(`${command} ${helpFlag}: stderr ${r.stderr}`);
        if (helpFlag === '-h') continue;
        const options = optionsFromHelp(r.stdout);
        const names = new Set(options.map((o) => o.name));
        if (!names.has('help')) problems.push(`${command}: --help not listed`);
        if (options.length < 2) problems.push(`${command}: lists ${options.length} options`);
        const usageLine = r.stdout.split('\n')[0]!;
        for (const m of usageLine.matchAll(/--([a-z][\w-]*)/g)) {
          if (!names.has(m[1]!)) problems.push(`${command}: usage mentions --${m[1]} but Options does not list it`);
        }
        // Every listed flag is really accepted: pass them all (with dummy values) plus --help.
        const all = options.filter((o) => o.name !== 'help').flatMap((o) => (o.takesValue ? [`--${o.name}`, 'x'] : [`--${o.name}`]));
        const accepted = await runCli([command, ...all, '--help']);
        if (accepted.code !== 0) problems.push(`${command}: a listed flag is rejected: ${accepted.stderr.trim()}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});

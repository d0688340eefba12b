import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPipeline } from '../../src/config/pipeline.js';
import { ConfigError } from '../../src/errors.js';
import { resolveOptions } from '../../src/config/options.js';

test('shipped pipelines load with paths relative to the file', () => {
  const p = loadPipeline('pipelines/decontaminate.yaml');
  assert.equal(p.command, 'audit');
  assert.deepEqual(p.options.upstream, ['fixtures/upstream']);
  assert.deepEqual(p.options.downstream, ['fixtures/downstream']);
  const d = loadPipeline('pipelines/dedup.yaml');
  assert.equal(d.command, 'dedup');
  assert.deepEqual(d.options.sources, ['fixtures']);
});

test('bad pipeline files fail with a message naming what to change', () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-pipe-'));
  const cases: [string, RegExp][] = [
    ['command: shred\n', /one of audit, dedup for .*command/],
    ['command: audit\nupstreem: [x]\n', /Unknown key "upstreem".*allowed: upstream/],
    ['command: audit\nupstream: 3\n', /a path or a list of paths/],
    ['{ not yaml', /not valid YAML/],
  ];
  for (const [text, message] of cases) {
    const file = join(dir, 'p.yaml');
    writeFileSync(file, text);
    assert.throws(() => loadPipeline(file), (e: unknown) => e instanceof ConfigError && message.test(e.message), text);
  }
  assert.throws(() => loadPipeline(join(dir, 'missing.yaml')), /does not exist/);
});

test('options are validated once with messages that name the option', () => {
  assert.throws(() => resolveOptions({ threshold: 'abc' }), /Expected a number from -1 to 1 for threshold but received "abc"/);
  assert.throws(() => resolveOptions({ concurrency: 0 }), /Expected an integer from 1 to 256 for concurrency/);
  assert.throws(() => resolveOptions({ runtime: 'tensorrt' }), /one of onnx, onnx-main-thread, tfjs for runtime/);
  assert.throws(() => resolveOptions({ threshold: 0.5, floor: 0.9, verify: 'off' }), /floor \(0.9\) must not exceed threshold/);
  // With verification the threshold is on the verified score and the floor a cosine: no order between them.
  assert.equal(resolveOptions({ threshold: 0.5, floor: 0.9 }).floor, 0.9);
  assert.throws(() => resolveOptions({ verify: 'yes' }), /Expected on or off for verify but received "yes"/);
  assert.throws(() => resolveOptions({}, { out: true }), /Missing --out/);
  const o = resolveOptions({ out: 'x', threshold: '0.9' });
  assert.equal(o.threshold, 0.9);
  assert.equal(o.db, join('x', 'neardup.db'));
  assert.ok(Object.isFrozen(o));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { audit } from '../../src/audit/run.js';
import { mergeShards } from '../../src/report/merge.js';
import { StateError } from '../../src/errors.js';
import { comparableOutputs as outputs, firstDifference } from '../helpers/outputs.js';

test('sharded audits merged give the outputs of one unsharded audit (N = 1, 3, 7)', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'neardup-shards-'));
  // A threshold low enough that many candidates and several matches exist whatever the model.
  const base = { upstream: ['fixtures/upstream'], downstream: ['fixtures/downstream'], threshold: 0.6 };
  await audit({ ...base, out: join(dir, 'whole') });
  const whole = outputs(join(dir, 'whole'));
  assert.ok(whole['matches.csv']!.split('\n').length > 3);
  for (const n of [1, 3, 7]) {
    const outs: string[] = [];
    let listed = 0;
    for (let i = 0; i < n; i++) {
      const out = join(dir, `n${n}-s${i}`);
      const r = await audit({ ...base, out, shard: `${i}/${n}` });
      listed += r.summary.counts.upstream;
      outs.push(out);
    }
    assert.equal(listed, 73, `every upstream image in exactly one of ${n} shards`);
    await mergeShards(outs, join(dir, `merged-${n}`));
    const merged = outputs(join(dir, `merged-${n}`));
    for (const f of Object.keys(whole)) assert.ok(merged[f] === whole[f], `${f} differs for N=${n}: ${firstDifference(merged[f]!, whole[f]!)}`);
  }
  await assert.rejects(audit({ ...base, out: join(dir, 'n3-s0'), shard: '1/3' }), StateError, 'a shard catalog refuses another shard');
  rmSync(dir, { recursive: true, force: true });
});

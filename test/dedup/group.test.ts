import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupDuplicates } from '../../src/dedup/run.js';

const img = (id: number, path: string, pixels = 100, bytes = 10, hash = `h${id}`) => ({ id, path, hash, pixels, bytes });

test('a chain A~B~C does not put unrelated A and C in one group', () => {
  const images = [img(1, 'a.png', 300), img(2, 'b.png', 200), img(3, 'c.png', 100)];
  const edges: Record<number, { id: number; score: number }[]> = {
    1: [{ id: 2, score: 0.95 }],
    2: [{ id: 1, score: 0.95 }, { id: 3, score: 0.95 }],
    3: [{ id: 2, score: 0.95 }],
  };
  const groups = groupDuplicates(images, (c) => edges[c.id] ?? [], 'largest');
  assert.equal(groups.length, 1);
  assert.equal(groups[0]!.keeper.path, 'a.png');
  assert.deepEqual(groups[0]!.duplicates.map((d) => d.path), ['b.png']);
});

test('keep policies pick the keeper', () => {
  const images = [img(1, 'z.png', 100, 999), img(2, 'a.png', 400, 5)];
  const both = () => [{ id: 1, score: 0.9 }, { id: 2, score: 0.9 }];
  assert.equal(groupDuplicates(images, both, 'largest')[0]!.keeper.path, 'a.png');
  assert.equal(groupDuplicates(images, both, 'largest-file')[0]!.keeper.path, 'z.png');
  assert.equal(groupDuplicates(images, both, 'first')[0]!.keeper.path, 'a.png');
});

test('exact duplicates group even without embedding neighbours', () => {
  const images = [img(1, 'a.png', 100, 10, 'same'), img(2, 'b.png', 100, 10, 'same'), img(3, 'c.png')];
  const groups = groupDuplicates(images, () => [], 'first');
  assert.equal(groups.length, 1);
  assert.deepEqual(groups[0]!.duplicates, [{ id: 2, path: 'b.png', score: 1 }]);
});

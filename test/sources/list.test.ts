/**
 * Source listing (src/sources/list.ts) on real folders: recursive, sorted, keys relative to the
 * root; `list:` files and `.txt` lists; globs; symlinks that leave the root reported, not followed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { globToRegExp, listSource, parseSource, type ListedEntry, type ListingError } from '../../src/sources/list.js';
import { removeDir, REPO_ROOT, tmpDir } from '../helpers/cli.js';
import { FIXTURE_UPSTREAM, imagesUnder } from '../helpers/corpus.js';

let root = '';

before(async () => {
  root = await tmpDir('neardup-list-');
  process.chdir(REPO_ROOT); // specs below are written as a user would, relative to the repository
});

after(async () => {
  await removeDir(root);
});

async function listAll(spec: string, options: { followLinks?: boolean; pageSize?: number } = {}): Promise<{ files: ListedEntry[]; errors: ListingError[] }> {
  const files: ListedEntry[] = [];
  const errors: ListingError[] = [];
  for await (const page of listSource(parseSource(spec), options)) {
    files.push(...page.files);
    errors.push(...page.errors);
  }
  return { files, errors };
}

/** Byte order of the UTF-8 keys: what "sorted" means for a listing. */
const sortedKeys = (keys: string[]) => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

const touch = (path: string, bytes = 'x') => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, bytes);
};

describe('folder sources', () => {
  test('the fixtures upstream folder: recursive, every image, keys relative to the root', async () => {
    const { files, errors } = await listAll('fixtures/upstream');
    assert.deepEqual(errors, []);
    assert.deepEqual([...files.map((f) => f.key)].sort(), imagesUnder(FIXTURE_UPSTREAM));
    assert.ok(files.some((f) => f.key.startsWith('more/')), 'nested folder listed');
    for (const f of files) {
      assert.ok(!f.key.startsWith('/') && !f.key.includes('fixtures'), `key ${f.key} is relative to the root`);
      assert.ok(f.path.endsWith(f.key));
      assert.ok(f.bytes > 0 && f.mtimeMs > 0);
    }
  });

  test('a tree is listed recursively, in sorted key order, with only image extensions', async () => {
    const dir = join(root, 'tree');
    const wanted = ['a.png', 'b/c.jpg', 'b/d/e.webp', 'b/z.png', 'c.JPEG', 'd.png', 'e/f.gif', 'z.tiff'];
    for (const k of wanted) touch(join(dir, k));
    for (const k of ['notes.txt', 'b/readme.md', 'e/data.json', 'noext']) touch(join(dir, k));
    mkdirSync(join(dir, 'empty'));
    const { files, errors } = await listAll(dir);
    assert.deepEqual(errors, []);
    const keys = files.map((f) => f.key);
    assert.deepEqual([...keys].sort(), [...wanted].sort(), 'every image, nothing else');
    assert.deepEqual(keys, sortedKeys(keys), 'listed in sorted key order');
  });

  test('paging does not change the listing', async () => {
    const dir = join(root, 'tree');
    const whole = (await listAll(dir)).files.map((f) => f.key);
    const pages: number[] = [];
    const paged: string[] = [];
    for await (const page of listSource(parseSource(dir), { pageSize: 3 })) {
      pages.push(page.files.length + page.errors.length);
      paged.push(...page.files.map((f) => f.key));
    }
    assert.deepEqual(paged, whole);
    assert.ok(pages.every((n) => n <= 3) && pages.length >= 3, `pages ${pages.join(',')}`);
  });

  test('a trailing slash names the same root and the same keys', async () => {
    const dir = join(root, 'tree');
    const a = (await listAll(dir)).files.map((f) => f.key);
    const b = (await listAll(`${dir}/`)).files.map((f) => f.key);
    assert.deepEqual(b, a);
  });
});

describe('symlinks', () => {
  let dir = '';
  let outside = '';

  before(() => {
    dir = join(root, 'links');
    outside = join(root, 'outside');
    touch(join(outside, 'secret.png'));
    touch(join(outside, 'sub', 'inner.png'));
    touch(join(dir, 'real.png'));
    touch(join(dir, 'sub', 'deep.png'));
    symlinkSync(join(outside, 'secret.png'), join(dir, 'escape.png'));
    symlinkSync(join(outside, 'sub'), join(dir, 'escape-dir'));
    symlinkSync('real.png', join(dir, 'alias.png'));
    symlinkSync('..', join(dir, 'sub', 'up-loop'));
  });

  test('a symlink leaving the root is reported, not followed', async () => {
    const { files, errors } = await listAll(dir);
    const keys = files.map((f) => f.key);
    assert.ok(!keys.includes('escape.png'), 'escaping file link not listed as a file');
    assert.ok(!keys.some((k) => k.startsWith('escape-dir/')), 'escaping folder link not walked');
    assert.ok(!files.some((f) => f.path.includes(outside)), 'nothing outside the root');
    const escape = errors.find((e) => e.key === 'escape.png');
    assert.ok(escape, `escape.png is reported: ${JSON.stringify(errors)}`);
    assert.match(escape.error, /outside the source root/);
    assert.match(escape.error, /not followed/);
  });

  test('a symlink inside the root is followed, and a folder loop is walked once', async () => {
    const { files } = await listAll(dir);
    const keys = files.map((f) => f.key);
    assert.ok(keys.includes('alias.png'));
    assert.ok(keys.includes('real.png'));
    assert.ok(keys.includes('sub/deep.png'));
    assert.ok(!keys.some((k) => k.includes('up-loop')), `the loop back to the root is not walked again: ${keys.join(', ')}`);
    assert.deepEqual(keys, sortedKeys(keys));
  });

  test('--follow-links follows links that leave the root', async () => {
    const { files, errors } = await listAll(dir, { followLinks: true });
    const keys = files.map((f) => f.key);
    assert.ok(keys.includes('escape.png'));
    assert.ok(keys.includes('escape-dir/inner.png'));
    assert.deepEqual(errors.filter((e) => e.key.startsWith('escape')), []);
  });
});

describe('list: files', () => {
  test('relative and absolute lines, comments and blanks; missing files are errors', async () => {
    const dir = join(root, 'listed');
    touch(join(dir, 'imgs', 'one.png'));
    touch(join(dir, 'imgs', 'two.jpg'));
    const abs = join(root, 'tree', 'a.png');
    const list = join(dir, 'files.txt');
    writeFileSync(list, `# a comment\nimgs/one.png\n\n  imgs/two.jpg  \r\n${abs}\nimgs/missing.png\n`);
    for (const spec of [`list:${list}`, list]) {
      const parsed = parseSource(spec);
      assert.equal(parsed.kind, 'list');
      assert.equal(parsed.root, dir);
      const { files, errors } = await listAll(spec);
      assert.deepEqual(files.map((f) => f.key), ['imgs/one.png', 'imgs/two.jpg', relative(dir, abs)]);
      assert.deepEqual(files.map((f) => f.path), [join(dir, 'imgs/one.png'), join(dir, 'imgs/two.jpg'), abs]);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.key, 'imgs/missing.png');
      assert.match(errors[0]!.error, /ENOENT|cannot be read/);
    }
  });

  test('a list that does not exist is a ConfigError naming it', () => {
    assert.throws(() => parseSource('list:/no/such/list.txt', '--upstream'), (e: unknown) =>
      e instanceof ConfigError && /\/no\/such\/list\.txt/.test(e.message) && /--upstream/.test(e.message));
  });
});

describe('globs', () => {
  test('fixtures/upstream/**/*.png lists every PNG at any depth, keys relative to the base', async () => {
    const spec = 'fixtures/upstream/**/*.png';
    const parsed = parseSource(spec);
    assert.equal(parsed.kind, 'glob');
    assert.equal(parsed.root, 'fixtures/upstream');
    const { files, errors } = await listAll(spec);
    assert.deepEqual(errors, []);
    const pngs = imagesUnder(FIXTURE_UPSTREAM).filter((k) => k.endsWith('.png'));
    assert.ok(pngs.some((k) => k.startsWith('more/')) && pngs.some((k) => !k.includes('/')));
    assert.deepEqual([...files.map((f) => f.key)].sort(), pngs);
  });

  test('* stays within one folder; glob: prefix, ?, [] and {} work', async () => {
    const base = 'fixtures/upstream';
    const top = (await listAll(`${base}/*.jpg`)).files.map((f) => f.key);
    assert.deepEqual([...top].sort(), imagesUnder(FIXTURE_UPSTREAM).filter((k) => k.endsWith('.jpg') && !k.includes('/')));
    const prefixed = (await listAll(`glob:${base}/*.jpg`)).files.map((f) => f.key);
    assert.deepEqual(prefixed, top);
    assert.deepEqual((await listAll(`${base}/img_000?.png`)).files.map((f) => f.key).sort(), ['img_0001.png', 'img_0003.png', 'img_0007.png', 'img_0008.png']);
    assert.deepEqual((await listAll(`${base}/**/img_00[0-1][0-4].{png,jpg}`)).files.map((f) => f.key).sort(),
      imagesUnder(FIXTURE_UPSTREAM).filter((k) => /(^|\/)img_00[01][0-4]\.(png|jpg)$/.test(k)));
  });

  test('globToRegExp anchors and escapes', () => {
    assert.ok(globToRegExp('**/*.png').test('a.png'));
    assert.ok(globToRegExp('**/*.png').test('x/y/a.png'));
    assert.ok(!globToRegExp('*.png').test('x/a.png'));
    assert.ok(!globToRegExp('*.png').test('a.pngx'));
    assert.ok(!globToRegExp('a.png').test('aXpng'), 'a dot is literal');
    assert.ok(globToRegExp('a+b(1).png').test('a+b(1).png'), 'regex metacharacters are literal');
  });

  test('a glob whose base folder does not exist is a ConfigError', () => {
    assert.throws(() => parseSource('no-such-dir/**/*.png', '--upstream'), (e: unknown) => e instanceof ConfigError && /no-such-dir/.test(e.message));
  });
});

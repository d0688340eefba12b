/**
 * Writes a corpus of hostile inputs — broken, deceptive, exotic or dangerous files and paths — that
 * the scan and embed stages must survive: each must end as a decoded image ('ok'), a recorded
 * per-file error ('error') or be left out of the catalog ('skipped'), never as a crash or a hang.
 * Generated at test time into a temp dir (not committed); every image is made procedurally so
 * this works without the shared data folder.
 *
 * Expectations assume the pipeline's decoder policy: sharp with `limitInputPixels` 100 megapixels
 * and `failOn: 'truncated'`, markup (SVG, HTML) refused before decoding, symlinks followed only
 * when they resolve to a regular file inside the corpus root, and non-UTF-8 names recorded as
 * errors (the catalog and every output are UTF-8 text; such a file must be renamed). Run as a script: `node dist/scripts/make-hostile.js <dir>`.
 */
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { mulberry32 } from '../src/util/rng.js';

/** What the pipeline must make of one hostile file. */
export type HostileExpect = 'ok' | 'error' | 'skipped';

/** One entry written by {@link makeHostileCorpus}. */
export interface HostileCase {
  /** Path relative to the corpus dir (for a non-UTF-8 name: its lossy UTF-8 rendering). */
  name: string;
  kind: string;
  expect: HostileExpect;
  /** The exact name bytes, only where `name` cannot represent them (non-UTF-8 names). */
  nameBytes?: Buffer;
}

type Builder = (dir: string) => Promise<HostileCase[]>;

/** A smooth colour gradient with a few hard edges, so every image has real structure. */
function gradient(width: number, height: number): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = Math.round((255 * x) / width);
      raw[i + 1] = Math.round((255 * y) / height);
      raw[i + 2] = ((x >> 3) + (y >> 3)) % 2 ? 200 : 40;
    }
  }
  return raw;
}

/** Seeded noise: incompressible, so a truncated file really loses image data. */
function noise(width: number, height: number, seed: number): Buffer {
  const rng = mulberry32(seed);
  return Buffer.from(Array.from({ length: width * height * 3 }, () => Math.floor(rng() * 256)));
}

const rgb = (raw: Buffer, width: number, height: number): sharp.Sharp =>
  sharp(raw, { raw: { width, height, channels: 3 } });
const base = (): sharp.Sharp => rgb(gradient(96, 64), 96, 64);

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 as PNG chunks need it (zlib.crc32 only exists from Node 20.15). */
function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([head, typed, crc]);
}

/**
 * A decompression bomb in under 100 bytes: a valid header declaring 30000×30000 RGB (900 megapixels,
 * 2.7 GB decoded) over a tiny IDAT. A decoder that allocates from the header alone falls over.
 */
export function pngBomb(width = 30000, height = 30000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, adaptive filter, no interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0))]);
}

/** Writes one file and describes it. */
function file(name: string, kind: string, expect: HostileExpect, make: () => Promise<Buffer> | Buffer): Builder {
  return async (dir) => {
    await writeFile(join(dir, name), await make());
    return [{ name, kind, expect }];
  };
}

async function animated(format: 'gif' | 'webp'): Promise<Buffer> {
  const frames = await Promise.all([base().png().toBuffer(), base().negate().png().toBuffer(),
    base().flop().png().toBuffer()]);
  const image = sharp(frames, { join: { animated: true } });
  return format === 'gif' ? image.gif({ delay: 100 }).toBuffer() : image.webp({ delay: 100 }).toBuffer();
}

async function truncated(format: 'jpeg' | 'png'): Promise<Buffer> {
  const image = rgb(noise(128, 128, 7), 128, 128);
  const full = format === 'jpeg' ? await image.jpeg({ quality: 90 }).toBuffer() : await image.png().toBuffer();
  return full.subarray(0, Math.floor(full.length / 2));
}

const svg = (href: string): Buffer => Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
  + `<rect width="64" height="64" fill="#08f"/><image href="${href}" width="64" height="64"/></svg>\n`);

/** Files named to break naive path handling: CSV columns, shell quoting, line-based logs. */
function oddName(name: string, kind: string): Builder {
  return file(name, kind, 'ok', () => base().png().toBuffer());
}

const nonUtf8Name: Builder = async (dir) => {
  const nameBytes = Buffer.concat([Buffer.from('latin1-'), Buffer.from([0xff, 0xe9]), Buffer.from('.png')]);
  await writeFile(Buffer.concat([Buffer.from(`${dir}/`), nameBytes]), await base().png().toBuffer());
  return [{ name: nameBytes.toString('utf8'), kind: 'name-non-utf8', expect: 'error', nameBytes }];
};

/** a -> b -> a: following it fails with ELOOP; a walker that recurses without a guard spins. */
const symlinkLoop: Builder = async (dir) => {
  await symlink('loop-b.jpg', join(dir, 'loop-a.jpg'));
  await symlink('loop-a.jpg', join(dir, 'loop-b.jpg'));
  return [{ name: 'loop-a.jpg', kind: 'symlink-loop', expect: 'skipped' },
    { name: 'loop-b.jpg', kind: 'symlink-loop', expect: 'skipped' }];
};

const danglingSymlink: Builder = async (dir) => {
  await symlink('no-such-file.png', join(dir, 'dangling.png'));
  return [{ name: 'dangling.png', kind: 'symlink-dangling', expect: 'skipped' }];
};

/** A valid image reachable only through a link leaving the corpus: reading it would escape the root. */
const symlinkOutside: Builder = async (dir) => {
  const outside = join(dirname(dir), `${basename(dir)}.outside`);
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret.png'), await base().png().toBuffer());
  await symlink(join(outside, 'secret.png'), join(dir, 'escape.png'));
  return [{ name: 'escape.png', kind: 'symlink-outside-root', expect: 'skipped' }];
};

/** Mode 000: root reads it anyway (CAP_DAC_OVERRIDE), anyone else gets EACCES. */
const unreadable: Builder = async (dir) => {
  await writeFile(join(dir, 'locked.png'), await base().png().toBuffer());
  await chmod(join(dir, 'locked.png'), 0o000);
  const expect: HostileExpect = process.getuid?.() === 0 ? 'ok' : 'error';
  return [{ name: 'locked.png', kind: 'unreadable-mode-000', expect }];
};

const dirNamedJpg: Builder = async (dir) => {
  await mkdir(join(dir, 'x.jpg'));
  return [{ name: 'x.jpg', kind: 'directory-named-jpg', expect: 'skipped' }];
};

/** Every hostile case, in writing order. */
const BUILDERS: readonly Builder[] = [
  file('good.png', 'good-png', 'ok', () => base().png().toBuffer()),
  file('good.jpg', 'good-jpeg', 'ok', () => base().jpeg({ quality: 85 }).toBuffer()),
  file('good.webp', 'good-webp', 'ok', () => base().webp({ quality: 80 }).toBuffer()),
  file('noise.JPEG', 'good-jpeg-upper-ext', 'ok', () => rgb(noise(64, 64, 3), 64, 64).jpeg().toBuffer()),
  file('really-a-jpeg.png', 'extension-mismatch', 'ok', () => base().jpeg().toBuffer()),
  file('truncated.jpg', 'truncated-jpeg', 'error', () => truncated('jpeg')),
  file('truncated.png', 'truncated-png', 'error', () => truncated('png')),
  file('empty.jpg', 'zero-byte', 'error', () => Buffer.alloc(0)),
  file('notes.jpg', 'text-as-jpg', 'error', () => Buffer.from('not an image, just some text\n')),
  file('page.png', 'html-as-png', 'error', () => Buffer.from('<!doctype html><html><body>404</body></html>\n')),
  file('bomb.png', 'png-bomb-30000x30000', 'error', () => pngBomb()),
  file('tall.png', 'png-1x20000', 'ok', () => rgb(gradient(1, 20000), 1, 20000).png().toBuffer()),
  file('animated.gif', 'animated-gif', 'ok', () => animated('gif')),
  file('animated.webp', 'animated-webp', 'ok', () => animated('webp')),
  file('cmyk.jpg', 'cmyk-jpeg', 'ok', () => base().toColourspace('cmyk').jpeg().toBuffer()),
  file('deep.png', 'png-16bit', 'ok', () => base().toColourspace('rgb16').png().toBuffer()),
  file('gray-alpha.png', 'png-gray-alpha', 'ok', () => base().toColourspace('b-w').ensureAlpha(0.5).png().toBuffer()),
  file('palette.png', 'png-palette', 'ok', () => base().png({ palette: true, colours: 16 }).toBuffer()),
  file('exif-rotated.jpg', 'jpeg-exif-orientation-6', 'ok', () => base().jpeg().withMetadata({ orientation: 6 }).toBuffer()),
  file('remote.svg', 'svg-external-url', 'error', () => svg('http://example.com/x.png')),
  file('local.svg', 'svg-local-file', 'error', () => svg('file:///etc/passwd')),
  file('pages.tiff', 'tiff-multipage', 'ok', async () => sharp(
    await Promise.all([base().png().toBuffer(), base().negate().png().toBuffer()]), { join: { animated: true } },
  ).tiff().toBuffer()),
  oddName('with space.png', 'name-space'),
  oddName('a,b.png', 'name-comma'),
  oddName('it\'s "quoted".png', 'name-quotes'),
  oddName('line\nbreak.png', 'name-newline'),
  nonUtf8Name,
  symlinkLoop,
  danglingSymlink,
  symlinkOutside,
  unreadable,
  dirNamedJpg,
];

/**
 * Writes every hostile case into `dir` (created if missing) and a sibling `<dir>.outside/` holding
 * the target of the escaping symlink; remove both when done.
 *
 * @returns one entry per top-level path written into `dir`, with the outcome the pipeline must reach.
 */
export async function makeHostileCorpus(dir: string): Promise<HostileCase[]> {
  await mkdir(dir, { recursive: true });
  const cases: HostileCase[] = [];
  for (const build of BUILDERS) cases.push(...(await build(dir)));
  return cases;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const target = process.argv[2];
  if (!target) {
    console.error('usage: node dist/scripts/make-hostile.js <dir>');
    process.exitCode = 2;
  } else {
    makeHostileCorpus(target).then(
      (cases) => { for (const c of cases) console.log(`${c.expect}\t${c.kind}\t${JSON.stringify(c.name)}`); },
      (error: unknown) => { console.error(error); process.exitCode = 1; },
    );
  }
}

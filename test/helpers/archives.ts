import { closeSync, openSync, writeSync } from 'node:fs';

/** Write a ustar archive (regular files only) — test fixture maker for the tar source. */
export function writeTar(path: string, members: { name: string; data: Buffer }[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const m of members) {
      const header = Buffer.alloc(512);
      header.write(m.name, 0, 100, 'utf8');
      header.write('0000644\0', 100, 'latin1');
      header.write('0000000\0', 108, 'latin1');
      header.write('0000000\0', 116, 'latin1');
      header.write(`${m.data.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
      header.write(`${(1_700_000_000).toString(8).padStart(11, '0')}\0`, 136, 'latin1');
      header.write('        ', 148, 'latin1');
      header.write('0', 156, 'latin1');
      header.write('ustar\0', 257, 'latin1');
      header.write('00', 263, 'latin1');
      let sum = 0;
      for (const b of header) sum += b;
      header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      writeSync(fd, header);
      writeSync(fd, m.data);
      const pad = (512 - (m.data.length % 512)) % 512;
      if (pad) writeSync(fd, Buffer.alloc(pad));
    }
    writeSync(fd, Buffer.alloc(1024));
  } finally {
    closeSync(fd);
  }
}

/** One CIFAR record: the label bytes, then the R, G and B 32×32 planes of interleaved `rgb`. */
function cifarRecord(labels: number[], rgb: Buffer): Buffer {
  const rec = Buffer.alloc(labels.length + 3072);
  labels.forEach((label, i) => (rec[i] = label));
  for (let p = 0; p < 1024; p++) {
    for (let c = 0; c < 3; c++) rec[labels.length + c * 1024 + p] = rgb[p * 3 + c]!;
  }
  return rec;
}

/** CIFAR-10 binary batch: per record one label byte, then the planes. */
export function cifar10Batch(images: { label: number; rgb: Buffer }[]): Buffer {
  return Buffer.concat(images.map(({ label, rgb }) => cifarRecord([label], rgb)));
}

/** CIFAR-100 binary file: per record a coarse and a fine label byte, then the planes. */
export function cifar100Batch(images: { coarse: number; fine: number; rgb: Buffer }[]): Buffer {
  return Buffer.concat(images.map(({ coarse, fine, rgb }) => cifarRecord([coarse, fine], rgb)));
}

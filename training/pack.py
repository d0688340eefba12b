#!/usr/bin/env python3
"""Pack train photos for a machine that cannot see ../shared (a GPU session's device).

    /usr/bin/python3 training/pack.py [--data ../shared/data/tiny-imagenet/train] [--count 24000]
                                      [--out .cache/pack] [--max-mib 50]

Writes into --out (ignored by git; a device run carries it):
  train.bin   the photos' original JPEG bytes, concatenated (decoded with PIL at load);
  train.json  offsets into train.bin and each photo's path relative to --data;
  text.npz    pre-rendered text masks for the overlay augmentation (the device may lack fonts).
The photos are a seeded random draw from --data, stopped at --count or --max-mib, whichever
comes first: the whole working tree that travels to a device is limited to 64 MiB.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment_v2 import text_bank  # noqa: E402
from data import list_images  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='../shared/data/tiny-imagenet/train')
    ap.add_argument('--count', type=int, default=24000)
    ap.add_argument('--max-mib', type=float, default=50)
    ap.add_argument('--out', default='.cache/pack')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--text', type=int, default=1024, help='text masks to render')
    ap.add_argument('--size', type=int, default=64)
    args = ap.parse_args()
    if os.sep + 'val' in os.path.abspath(args.data):
        sys.exit('refusing to pack an evaluation folder (val/): training sees train photos only')
    files = list_images(args.data)
    if not files:
        sys.exit(f'no images under {args.data}')
    order = np.random.default_rng(args.seed).permutation(len(files))
    os.makedirs(args.out, exist_ok=True)
    chosen, total, limit = [], 0, int(args.max_mib * 2 ** 20)
    for i in order[:args.count]:
        size = os.path.getsize(files[i])
        if total + size > limit:
            break
        chosen.append(i)
        total += size
    offsets, names = [0], []
    tmp = os.path.join(args.out, 'train.bin.tmp')
    with open(tmp, 'wb') as out:
        for i in sorted(chosen):
            with open(files[i], 'rb') as f:
                out.write(f.read())
            offsets.append(out.tell())
            names.append(os.path.relpath(files[i], args.data))
    os.replace(tmp, os.path.join(args.out, 'train.bin'))
    index = dict(source=os.path.abspath(args.data), seed=args.seed, count=len(names), offsets=offsets, names=names)
    with open(os.path.join(args.out, 'train.json'), 'w') as f:
        json.dump(index, f)
    np.savez_compressed(os.path.join(args.out, 'text.npz'), masks=text_bank(args.text, args.size, args.seed))
    print(json.dumps(dict(photos=len(names), mib=round(total / 2 ** 20, 2), out=args.out)))


if __name__ == '__main__':
    main()

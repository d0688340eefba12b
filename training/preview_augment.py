#!/usr/bin/env python3
"""Contact sheet of the v2 augmentations, to eyeball what the trainer and the held-out log see.

    /usr/bin/python3 training/preview_augment.py [--out .cache/augment-preview.png]

Row 0: train photos; rows 1-5: one mild and four hard training views; then one row per
held-out family (augment_v2.FAMILIES, in order; jpeg and combo* without their JPEG bank here).
"""
import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment_v2 import FAMILIES, Augmenter, text_bank  # noqa: E402
from data import load_photos  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='../shared/data/tiny-imagenet/train')
    ap.add_argument('--count', type=int, default=16)
    ap.add_argument('--seed', type=int, default=3)
    ap.add_argument('--out', default='.cache/augment-preview.png')
    args = ap.parse_args()
    x = torch.from_numpy(load_photos(args.data, 64, args.count)).float().div(255).permute(0, 3, 1, 2)
    aug = Augmenter('cpu', 64, torch.from_numpy(text_bank(256, 64, args.seed)))
    g = torch.Generator().manual_seed(args.seed)
    rows = [x] + [aug.view(x, g, s) for s in ('mild', 'hard', 'hard', 'hard', 'hard')]
    rows += [aug.family(x, name, torch.Generator().manual_seed(args.seed)) for name in FAMILIES]
    sheet = torch.cat([torch.cat(list(r), 2) for r in rows], 1).permute(1, 2, 0)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    Image.fromarray((sheet.numpy() * 255 + 0.5).astype(np.uint8)).save(args.out)
    print(f'{args.out}: rows = photos, mild, hard x4, ' + ', '.join(FAMILIES))


if __name__ == '__main__':
    main()

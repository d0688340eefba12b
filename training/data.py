"""Load Tiny-ImageNet train/ into one uint8 array [N, H, W, 3], cached as .npy."""
import os

import numpy as np
from PIL import Image


def list_images(root):
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.lower().endswith(('.jpeg', '.jpg', '.png')):
                out.append(os.path.join(dirpath, f))
    return sorted(out)


def load_train_images(root, cache, size):
    if os.path.exists(cache):
        return np.load(cache, mmap_mode=None)
    files = list_images(root)
    if not files:
        raise SystemExit(f'no images under {root}: set data: in pipelines/train.yaml')
    arr = np.zeros((len(files), size, size, 3), dtype=np.uint8)
    for i, f in enumerate(files):
        im = Image.open(f).convert('RGB')
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        arr[i] = np.asarray(im)
    tmp = cache + '.tmp.npy'
    np.save(tmp, arr)
    os.replace(tmp, cache)
    return arr

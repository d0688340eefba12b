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


def decode(data, size):
    import io
    im = Image.open(io.BytesIO(data)).convert('RGB')
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im)


def load_pack(folder, size, limit=0):
    """Photos written by pack.py: [N, size, size, 3] uint8, decoded with PIL."""
    import json
    with open(os.path.join(folder, 'train.json')) as f:
        offsets = json.load(f)['offsets']
    with open(os.path.join(folder, 'train.bin'), 'rb') as f:
        blob = f.read()
    n = len(offsets) - 1
    picks = range(n) if not limit or limit >= n else [i * n // limit for i in range(limit)]
    return np.stack([decode(blob[offsets[i]:offsets[i + 1]], size) for i in picks])


def load_photos(path, size, limit=0):
    """A pack.py folder, or a folder of photos (`limit` of them, spread evenly; 0 = all)."""
    if os.path.exists(os.path.join(path, 'train.bin')):
        return load_pack(path, size, limit)
    files = list_images(path)
    if not files:
        raise SystemExit(f'no images under {path}: set data: in the config')
    if limit and limit < len(files):
        files = [files[i * len(files) // limit] for i in range(limit)]
    return np.stack([decode(open(f, 'rb').read(), size) for f in files])

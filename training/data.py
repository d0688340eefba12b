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


def parallel_map(fn, items, min_items=4096):
    """fn over items in worker processes when there are many (a GPU machine has 16 cores idle
    while the photos decode); results in order. fn must be a module-level function."""
    workers = min(16, os.cpu_count() or 1)
    if len(items) < min_items or workers < 2:
        return [fn(x) for x in items]
    import multiprocessing
    ctx = multiprocessing.get_context('fork')
    with ctx.Pool(workers) as pool:
        return pool.map(fn, items, chunksize=max(1, len(items) // (workers * 4)))


def _decode64(data):
    return decode(data, 64)


def load_pack(folder, size, limit=0):
    """Photos written by pack.py: [N, size, size, 3] uint8, decoded with PIL."""
    import json
    with open(os.path.join(folder, 'train.json')) as f:
        offsets = json.load(f)['offsets']
    with open(os.path.join(folder, 'train.bin'), 'rb') as f:
        blob = f.read()
    n = len(offsets) - 1
    picks = range(n) if not limit or limit >= n else [i * n // limit for i in range(limit)]
    blobs = [blob[offsets[i]:offsets[i + 1]] for i in picks]
    return np.stack(parallel_map(_decode64, blobs) if size == 64 else [decode(b, size) for b in blobs])


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

#!/usr/bin/env python3
"""Export a training checkpoint to models/<name>/model.onnx plus card.json.

    /usr/bin/python3 training/export.py --config pipelines/train.yaml --name neardup-vit-s8

The card keeps everything the runtimes need (input size, mean/std, patch, dims) and the training
facts; `neardup calibrate` and `neardup eval --write-card` add the threshold and quality table.
"""
import argparse
import datetime
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit import ViT, MEAN, STD, LN_EPS  # noqa: E402
from train import DEFAULTS, parse_simple_yaml  # noqa: E402


def background_mean(model, cfg, n):
    """Mean raw (pre-L2) descriptor of n training images (the cached train array; never val/).

    Subtracting it from the head's bias centres the descriptors (as SSCD's centring does) so that
    unrelated images score lower, without changing the graph: both runtimes stay identical."""
    import numpy as np
    images = np.load(os.path.join(cfg['work'], 'train-u8.npy'), mmap_mode='r')
    idx = np.random.default_rng(12345).choice(len(images), size=min(n, len(images)), replace=False)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    total = None
    with torch.no_grad():
        for i in range(0, len(idx), 500):
            x = torch.from_numpy(np.ascontiguousarray(images[np.sort(idx[i:i + 500])])).float().div(255).permute(0, 3, 1, 2)
            z = model.raw((x - mean) / std).sum(0)
            total = z if total is None else total + z
    return total / len(idx)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', default='pipelines/train.yaml')
    ap.add_argument('--name', default='neardup-vit-s8')
    ap.add_argument('--checkpoint', default=None)
    ap.add_argument('--out', default='models')
    ap.add_argument('--centre', type=int, default=0, help='train images for a centring mean (default 0: off; it cost 1.5 points of recall@P99 in an A/B on the v1 model)')
    args = ap.parse_args()
    cfg = dict(DEFAULTS)
    cfg.update(parse_simple_yaml(args.config))
    ckpt_path = args.checkpoint or os.path.join(cfg['work'], 'ckpt.pt')
    ck = torch.load(ckpt_path)
    tcfg = ck['cfg']
    model = ViT(dim=tcfg['dim'], depth=tcfg['depth'], heads=tcfg['heads'], patch=tcfg['patch'],
                image=tcfg['image'], out_dim=tcfg['out_dim'])
    model.load_state_dict(ck['model'])
    model.eval()
    centre = None
    if args.centre > 0:
        centre = background_mean(model, cfg, args.centre)
        with torch.no_grad():
            model.head.bias -= centre

    out_dir = os.path.join(args.out, args.name)
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, 'model.onnx')
    dummy = torch.zeros(2, 3, tcfg['image'], tcfg['image'])
    torch.onnx.export(model, dummy, onnx_path + '.tmp', input_names=['pixels'], output_names=['embedding'],
                      dynamic_axes={'pixels': {0: 'batch'}, 'embedding': {0: 'batch'}}, opset_version=17,
                      do_constant_folding=True)
    os.replace(onnx_path + '.tmp', onnx_path)
    with open(onnx_path, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    card_path = os.path.join(out_dir, 'card.json')
    card = {}
    if os.path.exists(card_path):
        with open(card_path) as f:
            card = json.load(f)
    card.update({
        'name': args.name,
        'format': 'onnx',
        'weights': 'model.onnx',
        'sha256': sha,
        'architecture': {
            'type': 'vit', 'image': tcfg['image'], 'patch': tcfg['patch'], 'dim': tcfg['dim'],
            'depth': tcfg['depth'], 'heads': tcfg['heads'], 'mlp_ratio': 4, 'out_dim': tcfg['out_dim'],
            'pooling': 'cls', 'layer_norm_eps': LN_EPS, 'patch_order': 'row,col,channel (NHWC)',
            'post': f'head bias centred on the mean raw descriptor of {args.centre} train images, then L2' if centre is not None else 'L2',
        },
        'input': {'size': tcfg['image'], 'resize': 'fill', 'layout': 'NCHW', 'mean': MEAN, 'std': STD,
                  'scale': '1/255', 'colourspace': 'srgb'},
        'output': {'name': 'embedding', 'dims': tcfg['out_dim'], 'normalised': True},
        'training': {
            'data': 'tiny-imagenet/train (50,000 photos, 64x64), 1,000 held out for validation',
            'framework': f'PyTorch {torch.__version__} (Debian python3-torch) on CPU with OpenBLAS',
            'recipe': {k: tcfg[k] for k in ('batch', 'steps', 'lr', 'min_lr', 'weight_decay', 'warmup',
                                            'temperature', 'koleo', 'clip', 'seed')},
            'loss': 'symmetric InfoNCE over 2N views (T=temperature) + koleo * KoLeo entropy term',
            'augmentations': 'training/augment.py (mild view + hard view)',
            'steps_seen': ck['step'],
            'views_seen': ck['step'] * tcfg['batch'] * 2,
            'held_out_log': ck.get('log', []),
            'command': '/usr/bin/python3 training/train.py --config pipelines/train.yaml',
        },
        'exported': datetime.date.today().isoformat(),
    })
    with open(card_path + '.tmp', 'w') as f:
        json.dump(card, f, indent=2)
    os.replace(card_path + '.tmp', card_path)
    print(json.dumps({'onnx': onnx_path, 'sha256': sha, 'step': ck['step']}))


if __name__ == '__main__':
    main()

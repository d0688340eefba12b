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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', default='pipelines/train.yaml')
    ap.add_argument('--name', default='neardup-vit-s8')
    ap.add_argument('--checkpoint', default=None)
    ap.add_argument('--out', default='models')
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

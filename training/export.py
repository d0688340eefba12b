#!/usr/bin/env python3
"""Export a training checkpoint (train.py or train_v2.py) to <out>/<name>/model.onnx plus card.json.

    /usr/bin/python3 training/export.py --config pipelines/train.yaml --name neardup-vit-s8
    /usr/bin/python3 training/export.py --checkpoint .cache/train-v2/ckpt.pt --name neardup-vit-s8-v2 --out .cache/models

The weights go into a copy of --template (the shipped float graph) when the architecture matches,
so the quantizer and both runtimes meet the graph they were built for; otherwise torch.onnx.export.

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
from onnx_weights import architecture_of, write_vit_into_onnx  # noqa: E402


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


STALE_WITH_NEW_WEIGHTS = ('threshold', 'calibration', 'quality', 'verify')


def load_checkpoint(path):
    """(model, training config, checkpoint) for a v1 (train.py) or v2 (train_v2.py) checkpoint."""
    ck = torch.load(path, map_location='cpu', weights_only=False)
    tcfg = dict(ck['cfg'])
    if ck.get('format') == 'neardup-train-v2':
        tcfg.update(architecture_of(ck['model']))
    model = ViT(dim=tcfg['dim'], depth=tcfg['depth'], heads=tcfg['heads'], patch=tcfg['patch'],
                image=tcfg['image'], out_dim=tcfg['out_dim'])
    model.load_state_dict(ck['model'])
    return model.eval(), tcfg, ck


def write_onnx(model, tcfg, onnx_path, template):
    """Into a copy of the template graph when there is one (same graph as shipped, any PyTorch);
    else through torch.onnx.export as v1 did (the TorchScript exporter: PyTorch 2.x needs dynamo=False)."""
    if template:
        write_vit_into_onnx(model, template, onnx_path + '.tmp')
    else:
        dummy = torch.zeros(2, 3, tcfg['image'], tcfg['image'])
        extra = {'dynamo': False} if int(torch.__version__.split('.')[0]) >= 2 else {}
        torch.onnx.export(model, dummy, onnx_path + '.tmp', input_names=['pixels'], output_names=['embedding'],
                          dynamic_axes={'pixels': {0: 'batch'}, 'embedding': {0: 'batch'}}, opset_version=17,
                          do_constant_folding=True, **extra)
    os.replace(onnx_path + '.tmp', onnx_path)


def training_facts(ck, tcfg):
    if ck.get('format') != 'neardup-train-v2':
        return {
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
        }
    photos = ck.get('photos', {})
    return {
        'data': f"{photos.get('train', '?')} train photos from {tcfg['data']} (64x64), "
                f"{photos.get('held_out', tcfg['holdout'])} more held out for the log; never val/",
        'framework': f"PyTorch {ck.get('torch', '?')} on {ck.get('device', '?')}",
        'warm_start': tcfg['init'] + (f" (sha256 {tcfg['init_sha256'][:12]})" if tcfg.get('init_sha256') else ''),
        'recipe': {k: tcfg[k] for k in ('batch', 'steps', 'lr', 'min_lr', 'weight_decay', 'warmup', 'temperature',
                                        'koleo', 'clip', 'queue', 'queue_start', 'p_lowres_pair', 'p_jpeg_mild',
                                        'p_jpeg_hard', 'amp', 'seed') if k in tcfg},
        'loss': 'symmetric InfoNCE over 2N views' + (' plus a FIFO queue of past descriptors as extra negatives'
                                                      if tcfg.get('queue') else ' (in-batch negatives)')
                + ' (T=temperature) + koleo * KoLeo entropy term',
        'augmentations': 'training/augment_v2.py (mild view + hard view; JPEG from re-encoded banks; '
                         'pair-level downscale to 16-48 px with p_lowres_pair)',
        'steps_seen': ck['step'],
        'views_seen': ck['views_seen'],
        'train_seconds': round(ck.get('train_seconds', 0), 1),
        'held_out_log': ck.get('log', []),
        'command': '/usr/bin/python3 training/train_v2.py --config pipelines/train-v2.yaml (see training/README.md)',
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', default='pipelines/train.yaml')
    ap.add_argument('--name', default='neardup-vit-s8')
    ap.add_argument('--checkpoint', default=None)
    ap.add_argument('--out', default='models')
    ap.add_argument('--template', default='models/neardup-vit-s8/model.onnx',
                    help='ONNX graph to write the weights into (same architecture); "" = torch.onnx.export')
    ap.add_argument('--centre', type=int, default=0, help='train images for a centring mean (default 0: off; it cost 1.5 points of recall@P99 in an A/B on the v1 model)')
    args = ap.parse_args()
    cfg = dict(DEFAULTS)
    if os.path.exists(args.config):
        cfg.update(parse_simple_yaml(args.config))
    ckpt_path = args.checkpoint or os.path.join(cfg['work'], 'ckpt.pt')
    model, tcfg, ck = load_checkpoint(ckpt_path)
    centre = None
    if args.centre > 0:
        if ck.get('format') == 'neardup-train-v2':
            sys.exit('--centre reads the v1 train-u8.npy cache; not wired for v2 checkpoints')
        centre = background_mean(model, cfg, args.centre)
        with torch.no_grad():
            model.head.bias -= centre

    out_dir = os.path.join(args.out, args.name)
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, 'model.onnx')
    write_onnx(model, tcfg, onnx_path, args.template if args.template and os.path.exists(args.template) else '')
    with open(onnx_path, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    card_path = os.path.join(out_dir, 'card.json')
    card = {}
    if os.path.exists(card_path):
        with open(card_path) as f:
            card = json.load(f)
    if card.get('sha256') not in (None, sha):
        # A threshold or quality table measured on other weights would be wrong for these.
        for key in STALE_WITH_NEW_WEIGHTS:
            card.pop(key, None)
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
        'training': training_facts(ck, tcfg),
        'exported': datetime.date.today().isoformat(),
    })
    with open(card_path + '.tmp', 'w') as f:
        json.dump(card, f, indent=2)
    os.replace(card_path + '.tmp', card_path)
    print(json.dumps({'onnx': onnx_path, 'sha256': sha, 'step': ck['step']}))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Parity of the ONNX <-> PyTorch weight transfer, against onnxruntime (via node, as neardup runs it).

    /usr/bin/python3 training/check_parity.py [--onnx models/neardup-vit-s8/model.onnx] [--images N]

1. warm start: the torch ViT loaded from the ONNX file vs onnxruntime on the file itself;
2. export: the same ViT with every weight perturbed, written back into the graph
   (onnx_weights.write_vit_into_onnx), vs onnxruntime on the written file.
Both on real train photos (never val/). Fails (exit 1) if max |delta| >= 1e-4.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import list_images  # noqa: E402
from onnx_weights import load_vit_from_onnx, write_vit_into_onnx  # noqa: E402
from vit import MEAN, STD  # noqa: E402


def photos(root, n, size):
    from PIL import Image
    files = list_images(root)
    picks = [files[i * len(files) // n] for i in range(n)]
    arr = np.stack([np.asarray(Image.open(f).convert('RGB').resize((size, size), Image.BILINEAR)) for f in picks])
    x = torch.from_numpy(arr).float().div(255).permute(0, 3, 1, 2)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def onnxruntime_embed(model_path, x, work):
    pixels, out = os.path.join(work, 'pixels.f32'), os.path.join(work, 'out.f32')
    x.contiguous().numpy().astype(np.float32).tofile(pixels)
    subprocess.run(['node', os.path.join(HERE, 'ort_embed.mjs'), model_path, pixels, str(len(x)), out], check=True)
    return torch.from_numpy(np.fromfile(out, dtype=np.float32).reshape(len(x), -1))


def check_export(args):
    from export import load_checkpoint
    model = load_checkpoint(args.checkpoint)[0]
    x = photos(args.data, args.images, model.grid * model.patch)
    with tempfile.TemporaryDirectory() as work, torch.no_grad():
        delta = (model(x) - onnxruntime_embed(args.onnx, x, work)).abs().max().item()
    print(json.dumps(dict(checkpoint=args.checkpoint, onnx=args.onnx, images=len(x), max_abs_delta=delta, ok=delta < 1e-4)))
    sys.exit(0 if delta < 1e-4 else 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--onnx', default='models/neardup-vit-s8/model.onnx')
    ap.add_argument('--data', default='../shared/data/tiny-imagenet/train')
    ap.add_argument('--images', type=int, default=32)
    ap.add_argument('--checkpoint', help='instead: compare this checkpoint in torch with --onnx (its export)')
    args = ap.parse_args()
    if args.checkpoint:
        return check_export(args)
    model = load_vit_from_onnx(args.onnx).eval()
    x = photos(args.data, args.images, model.grid * model.patch)
    report = {}
    with tempfile.TemporaryDirectory() as work, torch.no_grad():
        ref = onnxruntime_embed(args.onnx, x, work)
        report['warm_start_max_abs_delta'] = (model(x) - ref).abs().max().item()
        g = torch.Generator().manual_seed(7)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.01)
        written = os.path.join(work, 'written.onnx')
        write_vit_into_onnx(model, args.onnx, written)
        ref2 = onnxruntime_embed(written, x, work)
        report['export_max_abs_delta'] = (model(x) - ref2).abs().max().item()
        report['perturbation_moved_embeddings_by'] = (ref2 - ref).abs().max().item()
    report['images'] = len(x)
    report['ok'] = report['warm_start_max_abs_delta'] < 1e-4 and report['export_max_abs_delta'] < 1e-4
    print(json.dumps(report))
    sys.exit(0 if report['ok'] else 1)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Train neardup's copy-detection ViT (InfoNCE over strong augmentations) and export it to ONNX.

Run with Debian's Python, which sees python3-torch:
    /usr/bin/python3 training/train.py --config pipelines/train.yaml

Deterministic for a seed: every step draws its batch and augmentations from a generator seeded
with (seed, step), so a resumed run continues exactly where a killed one stopped.
Checkpoints go to <work>/ckpt.pt (atomic rename) every `checkpoint_every` steps.
"""
import argparse
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vit import ViT, MEAN, STD  # noqa: E402
from augment import augment_batch  # noqa: E402
from data import load_train_images  # noqa: E402


def parse_simple_yaml(path):
    """The training config is flat `key: value` YAML; no PyYAML on Debian's minimal python."""
    cfg = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].rstrip()
            if not line.strip() or line.startswith(' ') or ':' not in line:
                continue
            key, value = line.split(':', 1)
            value = value.strip()
            if value == '':
                continue
            try:
                cfg[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                cfg[key.strip()] = value.strip('"\'')
    return cfg


DEFAULTS = dict(
    seed=1, data='../shared/data/tiny-imagenet/train', work='.cache/train', holdout=1000,
    dim=128, depth=4, heads=4, patch=8, image=64, out_dim=128,
    batch=256, steps=6000, lr=1e-3, min_lr=1e-5, weight_decay=0.05, warmup=300,
    temperature=0.05, koleo=5.0, clip=1.0, threads=2,
    checkpoint_every=100, eval_every=500, log_every=20, time_budget_s=0,
)


def load_config(path, assignments, defaults):
    """defaults, then the pipeline file (when it exists), then key=value overrides (JSON values,
    else strings); an unknown key stops the run. Returns the config and the overrides alone."""
    cfg = dict(defaults)
    if os.path.exists(path):
        cfg.update(parse_simple_yaml(path))
    overrides = {}
    for kv in assignments:
        k, v = kv.split('=', 1)
        if k not in defaults:
            sys.exit(f'unknown training option {k}; known: {", ".join(sorted(defaults))}')
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    cfg.update(overrides)
    return cfg, overrides


def lr_at(step, cfg):
    if step < cfg['warmup']:
        return cfg['lr'] * (step + 1) / cfg['warmup']
    t = (step - cfg['warmup']) / max(1, cfg['steps'] - cfg['warmup'])
    return cfg['min_lr'] + 0.5 * (cfg['lr'] - cfg['min_lr']) * (1 + math.cos(math.pi * min(1.0, t)))


def normalise(x):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def info_nce(z1, z2, temperature):
    """Symmetric InfoNCE: each view's twin is the positive, all other 2N-2 views are negatives."""
    z = torch.cat([z1, z2], 0)
    n = z1.shape[0]
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float('-inf'))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets)


def koleo(z1, z2):
    """Entropy (KoLeo) term: push each descriptor away from its nearest non-matching neighbour."""
    z = torch.cat([z1, z2], 0)
    n = z1.shape[0]
    with torch.no_grad():
        sim = z @ z.t()
        sim.fill_diagonal_(-2)
        idx = torch.arange(2 * n)
        twin = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        sim[idx, twin] = -2
        nearest = sim.argmax(1)
    dist = (z - z[nearest]).norm(dim=1)
    return -torch.log(dist + 1e-6).mean()


def held_out_metric(model, held, seed):
    """Top-1 retrieval accuracy and the max-negative cosine tail on held-out train images."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        x = held.float().div(255).permute(0, 3, 1, 2)
        refs = model(normalise(x))
        q = augment_batch(held, g, strength='eval')
        queries = model(normalise(q))
        sim = queries @ refs.t()
        top1 = (sim.argmax(1) == torch.arange(len(held))).float().mean().item()
        pos = sim.diag()
        neg = sim.clone()
        neg.fill_diagonal_(-2)
        max_neg = neg.max(1).values
        p99 = torch.quantile(max_neg, 0.99).item()
        recall_at_p99 = (pos > p99).float().mean().item()
    model.train()
    return dict(top1=round(top1, 4), pos_mean=round(pos.mean().item(), 4),
                max_neg_p99=round(p99, 4), recall_above_neg_p99=round(recall_at_p99, 4))


def save_checkpoint(path, model, opt, step, cfg, log):
    tmp = path + '.tmp'
    torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, cfg=cfg, log=log), tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', default='pipelines/train.yaml')
    ap.add_argument('--set', action='append', default=[], help='override: key=value (JSON value)')
    ap.add_argument('--bench', type=int, default=0, help='time N steps and exit')
    args = ap.parse_args()

    cfg, _ = load_config(args.config, args.set, DEFAULTS)
    torch.set_num_threads(int(cfg['threads']))
    os.makedirs(cfg['work'], exist_ok=True)
    ckpt_path = os.path.join(cfg['work'], 'ckpt.pt')

    images = load_train_images(cfg['data'], os.path.join(cfg['work'], 'train-u8.npy'), cfg['image'])
    # A fixed held-out slice of train/ (never val/) for the validation metric.
    perm = np.random.default_rng(cfg['seed']).permutation(len(images))
    held = torch.from_numpy(images[np.sort(perm[:cfg['holdout']])])
    train = torch.from_numpy(images[np.sort(perm[cfg['holdout']:])])
    print(f'train images {len(train)}, held-out {len(held)}', flush=True)

    torch.manual_seed(cfg['seed'])
    model = ViT(dim=cfg['dim'], depth=cfg['depth'], heads=cfg['heads'], patch=cfg['patch'],
                image=cfg['image'], out_dim=cfg['out_dim'])
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and 'pos' not in n and 'cls' not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and 'pos' not in n and 'cls' not in n)]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=cfg['weight_decay']),
                             dict(params=no_decay, weight_decay=0.0)], lr=cfg['lr'])
    step, log = 0, []
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck['model'])
        opt.load_state_dict(ck['opt'])
        step, log = ck['step'], ck['log']
        print(f'resumed at step {step}', flush=True)

    t0 = time.time()
    started = step
    while step < cfg['steps']:
        g = torch.Generator().manual_seed(cfg['seed'] * 1_000_003 + step)
        idx = torch.randint(0, len(train), (cfg['batch'],), generator=g)
        batch = train[idx]
        v1 = augment_batch(batch, g, strength='mild')
        v2 = augment_batch(batch, g, strength='hard')
        for group in opt.param_groups:
            group['lr'] = lr_at(step, cfg)
        z1, z2 = model(normalise(v1)), model(normalise(v2))
        nce = info_nce(z1, z2, cfg['temperature'])
        ent = koleo(z1, z2)
        loss = nce + cfg["koleo"] * ent
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg['clip'])
        opt.step()
        step += 1

        if step % cfg['log_every'] == 0:
            with torch.no_grad():
                pos = (z1 * z2).sum(1).mean().item()
                s = z1 @ z2.t()
                s.fill_diagonal_(-2)
                nearest_neg = s.max(1).values.mean().item()
                mean_norm = torch.cat([z1, z2]).mean(0).norm().item()
            rate = (step - started) * cfg['batch'] * 2 / (time.time() - t0)
            entry = dict(step=step, loss=round(nce.item(), 4), chance=round(math.log(2 * cfg['batch'] - 1), 3),
                         koleo=round(ent.item(), 4), pos=round(pos, 4), nearest_neg=round(nearest_neg, 4),
                         mean_norm=round(mean_norm, 4), lr=round(lr_at(step, cfg), 6), views_per_s=round(rate, 1))
            print(json.dumps(entry), flush=True)
        if args.bench and step - started >= args.bench:
            print(json.dumps(dict(bench_steps=args.bench, views_per_s=round((step - started) * cfg['batch'] * 2 / (time.time() - t0), 1))))
            return
        if step % cfg['eval_every'] == 0 or step == cfg['steps']:
            metric = held_out_metric(model, held, cfg['seed'])
            metric['step'] = step
            log.append(metric)
            print(json.dumps(dict(eval=metric)), flush=True)
        if step % cfg['checkpoint_every'] == 0 or step == cfg['steps']:
            save_checkpoint(ckpt_path, model, opt, step, cfg, log)
        if cfg['time_budget_s'] and time.time() - t0 > cfg['time_budget_s']:
            save_checkpoint(ckpt_path, model, opt, step, cfg, log)
            print(f'time budget reached at step {step}; rerun to resume', flush=True)
            return
    print('training finished', flush=True)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Embedder trainer v2 (issue 14): warm start from the shipped ONNX, copy-family augmentations as
batched torch ops, an XBM-style queue of hard negatives, resumable, the same code on CPU and CUDA.

    /usr/bin/python3 training/train_v2.py --config pipelines/train-v2.yaml [--set key=value ...]
    /usr/bin/python3 training/train_v2.py --config pipelines/train-v2.yaml --bench 5

A run lives in <work>: ckpt.pt (model, optimiser, queue, RNG, log; atomic rename, every
`checkpoint_every` steps or `checkpoint_every_s` seconds, on SIGTERM/SIGINT and at the time
budget) and log.jsonl (one JSON object per progress line or held-out evaluation). Rerunning the
same command resumes from ckpt.pt; `--set` values given on the command line override the
checkpoint's config (e.g. a new time budget), the config file does not.

Batches and augmentations are drawn from generators seeded by (seed, step) and the batch order
is a seeded permutation per epoch, so a resumed run draws what the killed one would have.
`steps: "auto"` fixes the step count from the speed measured during warm-up and the time budget.
"""
import argparse
import hashlib
import json
import os
import signal
import sys
import time

STARTED = time.time()
if sys.platform.startswith('linux') and 'MALLOC_MMAP_THRESHOLD_' not in os.environ:
    # glibc hands every large tensor back to the kernel and page-faults it in again on the next
    # allocation: 3-10x slower augmentation on CPU. Keep freed memory in the heap instead.
    os.execve(sys.executable, [sys.executable] + sys.argv,
              dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(2 ** 30), MALLOC_TRIM_THRESHOLD_=str(2 ** 30)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment_v2 import FAMILIES, JPEG_FAMILIES, LOWRES_SIZES, Augmenter, Draw, jpeg_bank, text_bank  # noqa: E402
from data import load_photos  # noqa: E402
from onnx_weights import architecture_of, onnx_state_dict  # noqa: E402
from train import load_config, lr_at  # noqa: E402
from vit import MEAN, STD, ViT  # noqa: E402

DEFAULTS = dict(
    seed=1, data='../shared/data/tiny-imagenet/train', limit=0, work='.cache/train-v2', holdout=1000,
    init='models/neardup-vit-s8/model.onnx', heads=4,
    batch=128, steps=3000, lr=3e-4, min_lr=1e-5, weight_decay=0.05, warmup=200,
    temperature=0.05, koleo=3.0, clip=1.0,
    queue=8192, queue_start=200,
    p_lowres_pair=0.25, p_jpeg_mild=0.15, p_jpeg_hard=0.3, jpeg_banks=2, text_masks=1024,
    device='auto', amp='auto', compile=False, threads=2,
    checkpoint_every=200, checkpoint_every_s=300, eval_every=500, log_every=20, log_every_s=10,
    time_budget_s=0, reserve_s=30, eval_batch=500,
)
FORMAT = 'neardup-train-v2'


# --- configuration and data ---

def pick_device(cfg):
    name = cfg['device']
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        sys.exit('--set device=cuda but torch sees no GPU')
    return torch.device(name)


class Data:
    """Photos as uint8 [N,H,W,3] on the device, their JPEG banks, the held-out split, text masks."""

    def __init__(self, cfg, device):
        t0 = time.time()
        photos = load_photos(cfg['data'], 64, cfg['limit'])
        banks = [jpeg_bank(photos, cfg['seed'] * 101 + j) for j in range(cfg['jpeg_banks'])]
        perm = np.random.default_rng(cfg['seed']).permutation(len(photos))
        held, train = np.sort(perm[:cfg['holdout']]), np.sort(perm[cfg['holdout']:])
        if len(train) < 2:
            sys.exit(f'{len(photos)} photos: too few for holdout {cfg["holdout"]}')
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        self.train = [to(photos[train])] + [to(b[train]) for b in banks]
        self.held = [to(photos[held])] + [to(b[held]) for b in banks]
        masks = os.path.join(cfg['data'], 'text.npz')
        self.text = torch.from_numpy(np.load(masks)['masks'] if os.path.exists(masks)
                                     else text_bank(cfg['text_masks'], 64, cfg['seed']))
        self.seconds = time.time() - t0
        self.perms = {}

    def batch_ids(self, step, size, seed):
        """Train indices of a step's batch: consecutive slices of one seeded permutation per epoch."""
        n = len(self.train[0])
        pos = torch.arange(step * size, (step + 1) * size)
        epochs = pos // n
        out = torch.empty(size, dtype=torch.long)
        for e in epochs.unique().tolist():
            if e not in self.perms:
                g = torch.Generator().manual_seed(seed * 1_000_003 + e)
                self.perms = {k: v for k, v in self.perms.items() if k >= e - 1}
                self.perms[e] = torch.randperm(n, generator=g)
            sel = epochs == e
            out[sel] = self.perms[e][pos[sel] % n]
        return out.to(self.train[0].device)


def to_float(u8):
    return u8.permute(0, 3, 1, 2).float().div(255)


def gather_base(sets, ids, d, p_jpeg):
    """Each image from the original or, with p_jpeg, one of the JPEG banks (uniformly)."""
    x = sets[0][ids]
    if len(sets) > 1:
        which = torch.where(d.bern(p_jpeg), 1 + d.choice([1] * (len(sets) - 1)), torch.zeros_like(ids))
        for j in range(1, len(sets)):
            x = torch.where((which == j).view(-1, 1, 1, 1), sets[j][ids], x)
    return to_float(x)


# --- model, loss, queue ---

class Queue:
    """FIFO of detached past descriptors and their photo ids (-1: empty slot).

    Kept in fp16, in memory as in the checkpoint: a resumed run then sees the very queue the
    killed one had, and 16k entries keep the checkpoint under a device run's 16 MB file limit."""

    def __init__(self, size, dim, device):
        self.feats = torch.zeros(size, dim, device=device, dtype=torch.float16)
        self.ids = torch.full((size,), -1, dtype=torch.long, device=device)
        self.ptr = 0

    def push(self, z, ids):
        size = len(self.ids)
        z, ids = z[-size:], ids[-size:]
        pos = (self.ptr + torch.arange(len(z), device=z.device)) % size
        self.feats[pos] = z.detach().half()
        self.ids[pos] = ids
        self.ptr = (self.ptr + len(z)) % size

    def state(self):
        return dict(feats=self.feats.cpu(), ids=self.ids.cpu(), ptr=self.ptr)

    def load(self, state):
        if state['feats'].shape == self.feats.shape:
            self.feats.copy_(state['feats'])
            self.ids.copy_(state['ids'])
            self.ptr = state['ptr']


def contrastive(z1, z2, ids, queue, temperature):
    """Symmetric InfoNCE over the 2N views plus the queue as extra negatives.

    A view's negatives exclude every view or queue entry of its own photo (the batch can straddle
    two epochs, and the queue holds older views of photos in this batch). Returns the loss and
    each view's hardest negative cosine."""
    z = torch.cat([z1, z2]).float()
    n = len(z1)
    ids2 = torch.cat([ids, ids])
    twin = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    sim = z @ z.t()
    pos = sim[torch.arange(2 * n, device=z.device), twin]
    negs = [sim.masked_fill(ids2.unsqueeze(1) == ids2.unsqueeze(0), float('-inf'))]
    if queue is not None:
        q = z @ queue.feats.float().t()
        negs.append(q.masked_fill((queue.ids.unsqueeze(0) == ids2.unsqueeze(1)) | (queue.ids < 0).unsqueeze(0),
                                  float('-inf')))
    neg = torch.cat(negs, 1)
    logits = torch.cat([pos.unsqueeze(1), neg], 1) / temperature
    loss = F.cross_entropy(logits, torch.zeros(2 * n, dtype=torch.long, device=z.device))
    return loss, pos.detach(), neg.detach().max(1).values


def koleo(z1, z2):
    """KoLeo entropy term (as v1): -mean log distance to the nearest view of another photo."""
    z = torch.cat([z1, z2])
    n = len(z1)
    with torch.no_grad():
        sim = z @ z.t()
        idx = torch.arange(2 * n, device=z.device)
        sim[idx, idx] = -2
        sim[idx, (idx + n) % (2 * n)] = -2
        nearest = sim.argmax(1)
    return -torch.log((z - z[nearest]).norm(dim=1) + 1e-6).mean()


class Embedder:
    def __init__(self, model, device, amp):
        self.model, self.device, self.amp = model, device, amp
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        self.raw = model.raw

    def __call__(self, x):
        """Unit descriptors in fp32; the network itself runs in bf16 under autocast on CUDA."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            z = self.raw((x - self.mean) / self.std)
        return F.normalize(z.float(), dim=1)


def build_model(cfg, device, log):
    init = cfg['init']
    if init and init.endswith('.onnx'):
        state = onnx_state_dict(init)
        # The file may be replaced by this run's own export later: the card names the weights by hash.
        with open(init, 'rb') as f:
            cfg['init_sha256'] = hashlib.sha256(f.read()).hexdigest()
    elif init:
        state = torch.load(init, map_location='cpu', weights_only=False)['model']
    else:
        state = None
    arch = architecture_of(state) if state is not None else dict(dim=128, depth=4, patch=8, image=64, out_dim=128)
    torch.manual_seed(cfg['seed'])
    model = ViT(heads=cfg['heads'], **arch)
    if state is not None:
        model.load_state_dict(state)
        log(dict(warm_start=init, sha256=cfg.get('init_sha256')))
    return model.to(device)


def build_optimizer(model, cfg, device):
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and 'pos' not in n and 'cls' not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and 'pos' not in n and 'cls' not in n)]
    groups = [dict(params=decay, weight_decay=cfg['weight_decay']), dict(params=rest, weight_decay=0.0)]
    if device.type == 'cuda':
        try:
            return torch.optim.AdamW(groups, lr=cfg['lr'], fused=True)
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(groups, lr=cfg['lr'])


# --- held-out evaluation ---

def held_out(emb, aug, data, cfg):
    """On the fixed held-out slice of train: per family, the share of copies whose own original
    ranks first among all held-out originals, and the share above the negatives' P99 (P99 over
    every copy of its most similar wrong original). The copies are the same at every call."""
    model = emb.model
    model.eval()
    size = cfg['eval_batch']
    chunks = lambda x: [x[i:i + size] for i in range(0, len(x), size)]  # noqa: E731
    with torch.no_grad():
        clean = to_float(data.held[0])
        low = aug.lowres(clean, torch.ones(len(clean), dtype=torch.bool, device=clean.device),
                         torch.zeros(len(clean), dtype=torch.long, device=clean.device), sizes=(32,))
        refs = torch.cat([emb(c) for c in chunks(clean)])
        refs_low = torch.cat([emb(c) for c in chunks(low)])
        per, pos_all, neg_all = {}, [], []
        for fi, name in enumerate(FAMILIES):
            g = torch.Generator(device=clean.device).manual_seed(cfg['seed'] * 7919 + fi)
            base = low if name == 'cifar' else to_float(data.held[1]) if name in JPEG_FAMILIES and len(data.held) > 1 else clean
            q = torch.cat([emb(aug.family(c, name, g)) for c in chunks(base)])
            sim = q @ (refs_low if name == 'cifar' else refs).t()
            idx = torch.arange(len(q), device=q.device)
            pos = sim[idx, idx]
            neg = sim.clone()
            neg[idx, idx] = -2
            per[name] = dict(top1=(sim.argmax(1) == idx).float().mean().item())
            pos_all.append(pos)
            neg_all.append(neg.max(1).values)
        neg = torch.cat(neg_all)
        p99 = torch.quantile(neg, 0.99).item()
        for name, pos in zip(FAMILIES, pos_all):
            per[name]['above_p99'] = (pos > p99).float().mean().item()
    model.train()
    r4 = lambda v: round(v, 4)  # noqa: E731
    return dict(top1=r4(float(np.mean([v['top1'] for v in per.values()]))), neg_p99=r4(p99),
                pos_mean=r4(torch.cat(pos_all).mean().item()),
                families={k: {m: r4(v) for m, v in d.items()} for k, d in per.items()})


# --- the run ---

class Run:
    def __init__(self, cfg, overrides, bench):
        self.device = pick_device(cfg)
        if self.device.type == 'cpu':
            torch.set_num_threads(int(cfg['threads']))
        os.makedirs(cfg['work'], exist_ok=True)
        self.ckpt_path = os.path.join(cfg['work'], 'ckpt.pt')
        self.log_path = os.path.join(cfg['work'], 'log.jsonl')
        self.bench = bench
        self.stop = False
        resume = None if bench or not os.path.exists(self.ckpt_path) else torch.load(
            self.ckpt_path, map_location='cpu', weights_only=False)
        if resume is not None:
            cfg = dict(resume['cfg'], **overrides)
        self.cfg = cfg
        self.amp = cfg['amp'] == 'bf16' or (cfg['amp'] == 'auto' and self.device.type == 'cuda')
        self.data = Data(cfg, self.device)
        self.aug = Augmenter(self.device, 64, self.data.text)
        self.model = build_model(cfg if resume is None else dict(cfg, init=''), self.device, self.emit)
        self.opt = build_optimizer(self.model, cfg, self.device)
        self.emb = Embedder(self.model, self.device, self.amp)
        if cfg['compile'] and hasattr(torch, 'compile') and self.device.type == 'cuda':
            self.emb.raw = torch.compile(self.model.raw)
        self.queue = Queue(cfg['queue'], self.model.head.out_features, self.device) if cfg['queue'] else None
        self.step, self.evals, self.train_seconds, self.views = 0, [], 0.0, 0
        if resume is not None:
            self.restore(resume)
        self.emit(dict(device=str(self.device), gpu=torch.cuda.get_device_name(0) if self.device.type == 'cuda' else None,
                       torch=torch.__version__, amp=self.amp, train_photos=len(self.data.train[0]),
                       held_out=len(self.data.held[0]), load_s=round(self.data.seconds, 1), step=self.step,
                       steps=cfg['steps']))

    # persistence

    def restore(self, ck):
        if ck.get('format') != FORMAT:
            sys.exit(f'{self.ckpt_path} is not a v2 checkpoint: use another work: folder')
        self.model.load_state_dict(ck['model'])
        self.opt.load_state_dict(ck['opt'])
        self.step, self.evals = ck['step'], ck['log']
        self.train_seconds, self.views = ck['train_seconds'], ck['views_seen']
        if self.queue is not None and ck.get('queue'):
            self.queue.load(ck['queue'])
        torch.set_rng_state(ck['rng']['cpu'])
        if self.device.type == 'cuda' and ck['rng'].get('cuda'):
            torch.cuda.set_rng_state_all(ck['rng']['cuda'])
        self.emit(dict(resumed=self.step))

    def save(self):
        if self.bench:
            return
        rng = dict(cpu=torch.get_rng_state(), cuda=torch.cuda.get_rng_state_all() if self.device.type == 'cuda' else [])
        state = dict(format=FORMAT, model={k: v.cpu() for k, v in self.model.state_dict().items()},
                     opt=self.opt.state_dict(), step=self.step, cfg=self.cfg, log=self.evals,
                     queue=self.queue.state() if self.queue is not None else None, rng=rng,
                     train_seconds=self.seconds_trained(), views_seen=self.views, torch=torch.__version__,
                     photos=dict(train=len(self.data.train[0]), held_out=len(self.data.held[0])),
                     device=torch.cuda.get_device_name(0) if self.device.type == 'cuda' else 'cpu')
        tmp = self.ckpt_path + '.tmp'
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt_path)
        self.last_save = time.time()

    def seconds_trained(self):
        """Training seconds over every run of this work folder (evaluations and saves included)."""
        return self.train_seconds + (time.time() - self.t_run if hasattr(self, 't_run') else 0.0)

    def emit(self, entry):
        line = json.dumps(entry)
        print(line, flush=True)
        if not getattr(self, 'bench', False) and hasattr(self, 'log_path'):
            with open(self.log_path, 'a') as f:
                f.write(line + '\n')

    # one step

    def views_of(self, step):
        cfg = self.cfg
        ids = self.data.batch_ids(step, cfg['batch'], cfg['seed'])
        g = torch.Generator(device=self.device).manual_seed(cfg['seed'] * 1_000_003 + step)
        d = Draw(g, len(ids), self.device)
        pair_low, sizes = d.bern(cfg['p_lowres_pair']), d.choice([1] * len(LOWRES_SIZES))
        x1 = self.aug.lowres(gather_base(self.data.train, ids, d, cfg['p_jpeg_mild']), pair_low, sizes)
        x2 = self.aug.lowres(gather_base(self.data.train, ids, d, cfg['p_jpeg_hard']), pair_low, sizes)
        return ids, self.aug.view(x1, g, 'mild'), self.aug.view(x2, g, 'hard')

    def train_step(self):
        cfg = self.cfg
        t0 = time.time()
        ids, v1, v2 = self.views_of(self.step)
        if self.bench:
            self.sync()
            self.augment_seconds = getattr(self, 'augment_seconds', 0.0) + time.time() - t0
        for group in self.opt.param_groups:
            group['lr'] = lr_at(self.step, cfg)
        z1, z2 = self.emb(v1), self.emb(v2)
        use_queue = self.queue is not None and self.step >= cfg['queue_start']
        nce, pos, hardest = contrastive(z1, z2, ids, self.queue if use_queue else None, cfg['temperature'])
        ent = koleo(z1, z2)
        loss = nce + cfg['koleo'] * ent
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg['clip'])
        self.opt.step()
        if self.queue is not None and self.step >= cfg['queue_start'] - cfg['queue'] // (2 * cfg['batch']) - 1:
            self.queue.push(torch.cat([z1, z2]), torch.cat([ids, ids]))
        self.step += 1
        self.views += 2 * len(ids)
        return dict(loss=nce, koleo=ent, pos=pos, hardest=hardest, queue=use_queue)

    def progress(self, out, rate):
        h = out['hardest']
        return dict(step=self.step, steps=self.cfg['steps'], loss=round(out['loss'].item(), 4),
                    koleo=round(out['koleo'].item(), 4), pos=round(out['pos'].mean().item(), 4),
                    hardest_neg_mean=round(h.mean().item(), 4),
                    hardest_neg_p99=round(torch.quantile(h.float(), 0.99).item(), 4), queue=out['queue'],
                    lr=round(lr_at(self.step, self.cfg), 7), views_per_s=round(rate, 1),
                    views_seen=self.views, elapsed_s=round(time.time() - STARTED, 1))

    # schedule and budget

    def fix_auto_steps(self, done, seconds):
        """steps: "auto" -> the count that fits the time budget at the speed measured so far."""
        cfg = self.cfg
        rate = done / max(1e-6, seconds)
        left = cfg['time_budget_s'] - cfg['reserve_s'] - (time.time() - STARTED)
        evals = 1 + left * rate / cfg['eval_every'] if cfg['eval_every'] else 0
        cfg['steps'] = self.step + max(1, int(0.95 * rate * (left - evals * self.eval_seconds)))
        self.emit(dict(auto_steps=cfg['steps'], steps_per_s=round(rate, 2), budget_left_s=round(left, 1)))

    def out_of_time(self):
        b = self.cfg['time_budget_s']
        return bool(b) and time.time() - STARTED > b - self.cfg['reserve_s']

    def evaluate(self):
        t0 = time.time()
        metric = held_out(self.emb, self.aug, self.data, self.cfg)
        metric['step'] = self.step
        self.eval_seconds = time.time() - t0
        self.evals.append(metric)
        self.emit(dict(eval=metric, eval_s=round(self.eval_seconds, 1)))

    def sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()

    def auto_pending(self):
        return self.cfg['steps'] in ('auto', 0)

    def run(self):
        cfg = self.cfg
        if self.auto_pending() and not cfg['time_budget_s']:
            sys.exit('steps: "auto" needs time_budget_s')
        self.eval_seconds = 0.0
        if self.step == 0 and not self.bench and cfg['eval_every']:
            self.evaluate()
        started, t0, t_from, last_print = self.step, time.time(), None, 0.0
        self.t_run = t0
        self.last_save = time.time()
        while self.auto_pending() or self.step < cfg['steps']:
            out = self.train_step()
            if self.step - started == 2:
                self.sync()
                t_from = time.time()
            if self.auto_pending() and (self.step - started >= 30 or self.step >= cfg['warmup'] - 1):
                self.sync()
                if t_from is None or self.step - started <= 2:
                    self.fix_auto_steps(self.step - started, time.time() - t0)
                else:
                    self.fix_auto_steps(self.step - started - 2, time.time() - t_from)
            if self.bench and self.step - started >= self.bench + 2:
                self.sync()
                rate = (self.step - started - 2) * 2 * cfg['batch'] / (time.time() - t_from)
                share = self.augment_seconds / (time.time() - t0)
                self.emit(dict(bench_steps=self.bench, batch=cfg['batch'], views_per_s=round(rate, 1),
                               steps_per_s=round(rate / (2 * cfg['batch']), 3), augment_share=round(share, 3),
                               device=str(self.device), amp=self.amp))
                return
            now = time.time()
            if self.step % cfg['log_every'] == 0 or now - last_print > cfg['log_every_s']:
                last_print = now
                self.emit(self.progress(out, (self.step - started) * 2 * cfg['batch'] / (now - t0)))
            if cfg['eval_every'] and self.step % cfg['eval_every'] == 0:
                self.evaluate()
            if (self.step % cfg['checkpoint_every'] == 0 or now - self.last_save > cfg['checkpoint_every_s']
                    or self.stop or self.out_of_time()):
                self.save()
            if self.stop or self.out_of_time():
                self.save()
                self.emit(dict(stopped=self.step, reason='signal' if self.stop else 'time budget',
                               resume='rerun the same command'))
                return
        if not self.evals or self.evals[-1]['step'] != self.step:
            self.evaluate()
        self.save()
        self.emit(dict(finished=self.step, views_seen=self.views, train_seconds=round(self.seconds_trained(), 1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', default='pipelines/train-v2.yaml')
    ap.add_argument('--set', action='append', default=[], help='override: key=value (JSON value)')
    ap.add_argument('--bench', type=int, default=0, help='time N steps (after 2 warm-up steps) and exit; no checkpoint')
    args = ap.parse_args()
    cfg, overrides = load_config(args.config, args.set, DEFAULTS)
    if args.bench:
        cfg.update(queue_start=0, eval_every=0, steps=10 ** 9)
    run = Run(cfg, overrides, args.bench)

    def on_signal(signum, frame):
        run.stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run.run()


if __name__ == '__main__':
    main()

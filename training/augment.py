"""Batched copy-detection augmentations on CPU tensors, all drawn from one torch.Generator.

One affine warp per image covers resized crop, aspect squeeze, shift with padding and small
rotation; then colour jitter with hue, grayscale, blur, downscale and JPEG re-encoding.
Exact 90-degree rotations and mirrors are left to the multi-view downstream index.
"""
import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

STRENGTHS = {
    # area range of the crop, p(rotation), max rotation, p(shift with padding), p(colour), colour amount,
    # p(gray), p(blur), p(downscale), p(jpeg)
    'mild': dict(area=(0.55, 1.0), p_rot=0.1, rot=10, p_shift=0.15, p_color=0.5, color=0.3,
                 p_gray=0.05, p_blur=0.1, p_down=0.1, p_jpeg=0.2, jpeg=(40, 95)),
    'hard': dict(area=(0.25, 1.0), p_rot=0.35, rot=25, p_shift=0.3, p_color=0.8, color=0.6,
                 p_gray=0.2, p_blur=0.3, p_down=0.25, p_jpeg=0.3, jpeg=(15, 90)),
    'eval': dict(area=(0.35, 1.0), p_rot=0.3, rot=20, p_shift=0.3, p_color=0.7, color=0.5,
                 p_gray=0.15, p_blur=0.2, p_down=0.2, p_jpeg=0.3, jpeg=(20, 90)),
}


def uniform(g, n, lo, hi):
    return torch.rand(n, generator=g) * (hi - lo) + lo


def bernoulli(g, n, p):
    return torch.rand(n, generator=g) < p


def geometric(x, g, s):
    n = x.shape[0]
    area = uniform(g, n, *s['area'])
    log_ratio = uniform(g, n, math.log(0.5), math.log(2.0))
    ratio = torch.exp(log_ratio)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    # Crop centre anywhere that keeps the crop inside the image.
    cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - sx)
    cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - sy)
    # Shift with padding: the whole image slides 10-25% and the uncovered band is black or edge.
    shift = bernoulli(g, n, s['p_shift'])
    amount = uniform(g, n, 0.2, 0.5) * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    axis_x = torch.rand(n, generator=g) < 0.5
    cx = torch.where(shift & axis_x, amount, cx)
    cy = torch.where(shift & ~axis_x, amount, cy)
    sx = torch.where(shift, torch.ones(n), sx)
    sy = torch.where(shift, torch.ones(n), sy)
    angle = uniform(g, n, -s['rot'], s['rot']) * math.pi / 180 * bernoulli(g, n, s['p_rot'])
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = -sin * sy
    theta[:, 1, 0] = sin * sx
    theta[:, 1, 1] = cos * sy
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    zeros = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    border = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    use_border = bernoulli(g, n, 0.5).view(n, 1, 1, 1)
    return torch.where(use_border, border, zeros)


def rgb_to_gray(x):
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def colour(x, g, s):
    n = x.shape[0]
    on = bernoulli(g, n, s['p_color']).view(n, 1, 1, 1).float()
    a = s['color']
    bright = uniform(g, n, 1 - a, 1 + a).view(n, 1, 1, 1)
    contrast = uniform(g, n, 1 - a, 1 + a).view(n, 1, 1, 1)
    sat = uniform(g, n, 1 - a, 1 + a).view(n, 1, 1, 1)
    hue = uniform(g, n, -0.15, 0.15) * 2 * math.pi
    y = x * bright
    mean = rgb_to_gray(y).mean((2, 3), keepdim=True)
    y = (y - mean) * contrast + mean
    gray = rgb_to_gray(y)
    y = (y - gray) * sat + gray
    # Hue rotation in YIQ space.
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    c, sn = torch.cos(hue), torch.sin(hue)
    rot = torch.zeros(n, 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1] = c
    rot[:, 1, 2] = -sn
    rot[:, 2, 1] = sn
    rot[:, 2, 2] = c
    m = from_yiq @ rot @ to_yiq
    y = torch.einsum('nij,njhw->nihw', m, y)
    y = y.clamp(0, 1)
    x = on * y + (1 - on) * x
    to_gray = bernoulli(g, n, s['p_gray']).view(n, 1, 1, 1)
    return torch.where(to_gray, rgb_to_gray(x).expand(-1, 3, -1, -1), x)


def blur(x, g, s):
    n = x.shape[0]
    sel = bernoulli(g, n, s['p_blur']).nonzero().flatten()
    if len(sel) == 0:
        return x
    sigma = float(uniform(g, 1, 0.4, 1.5))
    r = 3
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    sub = x[sel]
    c = sub.shape[1]
    sub = F.pad(sub, (r, r, r, r), mode='reflect')
    sub = F.conv2d(sub, k.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    sub = F.conv2d(sub, k.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)
    x = x.clone()
    x[sel] = sub
    return x


def downscale(x, g, s):
    n, _, h, w = x.shape
    sel = bernoulli(g, n, s['p_down']).nonzero().flatten()
    if len(sel) == 0:
        return x
    size = int(uniform(g, 1, 16, 48))
    small = F.interpolate(x[sel], size=(size, size), mode='bilinear', align_corners=False, antialias=True)
    x = x.clone()
    x[sel] = F.interpolate(small, size=(h, w), mode='bilinear', align_corners=False)
    return x


def jpeg(x, g, s):
    n = x.shape[0]
    sel = bernoulli(g, n, s['p_jpeg']).nonzero().flatten().tolist()
    if not sel:
        return x
    qualities = torch.randint(s['jpeg'][0], s['jpeg'][1] + 1, (len(sel),), generator=g).tolist()
    x = x.clone()
    for i, q in zip(sel, qualities):
        arr = (x[i].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format='JPEG', quality=int(q))
        buf.seek(0)
        out = np.asarray(Image.open(buf).convert('RGB'), dtype=np.float32) / 255
        x[i] = torch.from_numpy(out).permute(2, 0, 1)
    return x


def augment_batch(batch_u8, g, strength='hard'):
    """batch_u8: [B, H, W, 3] uint8 -> [B, 3, H, W] float in [0, 1]."""
    s = STRENGTHS[strength]
    x = batch_u8.float().div(255).permute(0, 3, 1, 2).contiguous()
    x = geometric(x, g, s)
    x = colour(x, g, s)
    x = blur(x, g, s)
    x = downscale(x, g, s)
    x = jpeg(x, g, s)
    return x.clamp(0, 1)

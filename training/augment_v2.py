"""Copy-detection augmentations v2: batched torch ops that run unchanged on CPU and CUDA.

Every edit of src/eval/transforms.ts that the embedder must be invariant to is here, with
per-image random parameters drawn from one torch.Generator on the batch's device:

  geometry   one projective map per image (output -> source), composed from a crop, a rotation
             (inscribed, corners cut; or on an expanded canvas, corners kept), a keystone warp and
             one canvas edit (shift, border/padding, zoom-out), sampled with grid_sample at 2x and
             box-filtered down (the zoom-outs need the anti-aliasing);
  fill       what shows where the map leaves the source: black, white, grey, a random colour, the
             replicated edge, the photo blurred under it, smooth colour noise, or another photo;
  overlay    text (pre-rendered masks, see text_bank) and semi-transparent box/disc logos;
  colour     brightness/contrast/saturation/hue, grayscale; blur with a per-image sigma; gaussian noise;
  resolution down to 16-48 px and back, per view and (in train_v2.py) per pair.

JPEG is not a torch op: train_v2.py keeps re-encoded copies of every photo (a bank made once at
load) and a view starts from one of them with some probability. So its artifacts are applied
before the geometry rather than after it, an approximation to what a re-encoded copy is.

Two drivers share the primitives: view() draws a random composition for training, family()
makes one copy per image of a named held-out family with the eval's own parameter ranges.
Exact 90-degree rotations and mirrors stay with the multi-view index, as in v1.
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

FILLS = ('black', 'white', 'grey', 'colour', 'edge', 'blur', 'noise', 'photo')
CANVAS = ('none', 'shift', 'border', 'zoomout')
LOWRES_SIZES = (16, 20, 24, 32, 32, 32, 40, 48)

VIEWS = {
    # The mild view is the 'original' side of a pair: mostly whole, lightly edited.
    'mild': dict(area=(0.55, 1.0), aspect=(0.75, 1.33), p_rot=0.1, rot=10, p_expand=0.3, p_inplace=0.2, p_noise=0.05, p_persp=0.05,
                 persp=(0.02, 0.06), canvas=(0.85, 0.05, 0.05, 0.05),
                 fills=(0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.0), p_overlay=0.05, p_color=0.5, color=0.3,
                 hue=0.08, p_gray=0.05, p_blur=0.1, blur=(0.3, 1.0), p_down=0.1),
    # The hard view covers every family of the eval and their combinations.
    'hard': dict(area=(0.2, 1.0), aspect=(0.5, 2.0), p_rot=0.35, rot=25, p_expand=0.4, p_inplace=0.25, p_noise=0.15, p_persp=0.2,
                 persp=(0.03, 0.14), canvas=(0.4, 0.2, 0.2, 0.2),
                 fills=(0.25, 0.15, 0.1, 0.15, 0.1, 0.1, 0.1, 0.05), p_overlay=0.2, p_color=0.8, color=0.4,
                 hue=0.17, p_gray=0.2, p_blur=0.3, blur=(0.3, 2.5), p_down=0.2),
}

# Held-out families (names as in src/eval/transforms.ts where they exist there).
FAMILIES = ('crop50', 'crop25', 'shift', 'shiftfill', 'rotsmall', 'rotexpand', 'border', 'zoomout',
            'perspective', 'overlay', 'blur', 'colour', 'grayscale', 'jpeg', 'combo', 'combo2',
            'lowres32', 'cifar', 'rotinplace', 'noise', 'pixelate')
# Families whose copy starts from the JPEG bank; 'cifar' is matched against 32-px references.
JPEG_FAMILIES = ('jpeg', 'combo', 'combo2')


class Draw:
    """Random draws of one batch, all from one generator on the batch's device."""

    def __init__(self, g, n, device):
        self.g, self.n, self.device = g, n, device

    def u(self, lo, hi):
        return torch.rand(self.n, generator=self.g, device=self.device) * (hi - lo) + lo

    def bern(self, p):
        return torch.rand(self.n, generator=self.g, device=self.device) < p

    def sign(self):
        return torch.where(self.bern(0.5), 1.0, -1.0)

    def choice(self, probs):
        """Index into probs (need not sum to 1) per image."""
        p = torch.tensor(probs, dtype=torch.float32, device=self.device)
        cum = torch.cumsum(p / p.sum(), 0)
        r = torch.rand(self.n, generator=self.g, device=self.device)
        return (r.unsqueeze(1) > cum.unsqueeze(0)).sum(1).clamp(max=len(probs) - 1)

    def int(self, lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=self.g, device=self.device).item())


def affine(a, b, c, d, e, f):
    """[n,3,3] from the six per-image coefficients of (x, y) -> (a x + b y + c, d x + e y + f)."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, c, d, e, f, zero, zero, one], 1).view(-1, 3, 3)


def eye(n, device):
    return torch.eye(3, device=device).expand(n, 3, 3).contiguous()


def select(on, m):
    """m where on, identity elsewhere (per image)."""
    return torch.where(on.view(-1, 1, 1), m, eye(len(m), m.device))


# --- geometric edits, each as the map from its output to its input, in [-1, 1] coordinates ---

def crop_map(d, area, aspect, min_area=None):
    """A window of ~area of the image, aspect log-uniform in `aspect`, anywhere inside;
    min_area (per image) raises the lower end of the area range."""
    lo = area[0] if min_area is None else torch.maximum(min_area, torch.full_like(min_area, area[0]))
    a = lo + torch.rand(d.n, generator=d.g, device=d.device) * (area[1] - lo)
    ratio = torch.exp(d.u(math.log(aspect[0]), math.log(aspect[1])))
    sx = torch.sqrt(a * ratio).clamp(max=1.0)
    sy = torch.sqrt(a / ratio).clamp(max=1.0)
    cx = d.u(-1, 1) * (1 - sx)
    cy = d.u(-1, 1) * (1 - sy)
    return affine(sx, torch.zeros_like(sx), cx, torch.zeros_like(sx), sy, cy)


ROTATE = ('inscribed', 'expand', 'inplace')


def rotation_map(d, lo, hi, mode):
    """Rotate by lo..hi degrees either way. mode (ROTATE index per image): the inscribed centre
    blown up (corners cut, rotsmall), the whole rotated image shrunk to fit (black corners,
    rotexpand), or the same canvas (corners cut and black corners in, rotinplace)."""
    angle = d.u(lo, hi) * d.sign() * math.pi / 180
    c, s = torch.cos(angle), torch.sin(angle)
    k = c.abs() + s.abs()
    k = torch.where(mode == 1, k, torch.where(mode == 0, 1 / k, torch.ones_like(k)))
    zero = torch.zeros_like(c)
    return affine(c * k, s * k, zero, -s * k, c * k, zero)


def shift_map(d, lo, hi):
    """Translate along one axis by lo..hi of the size; the vacated band needs a fill."""
    amount = 2 * d.u(lo, hi) * d.sign()
    on_x = d.bern(0.5)
    zero, one = torch.zeros_like(amount), torch.ones_like(amount)
    return affine(one, zero, torch.where(on_x, amount, zero), zero, one, torch.where(on_x, zero, amount))


def border_map(d, lo, hi):
    """Pad each side by lo..hi of the size (half the time all four equal); the canvas grows and is
    resized back (the model input is a fill-resize), so the photo shrinks inside its frame."""
    first = d.u(lo, hi)
    same = d.bern(0.5)
    t, b, l, r = first, *[torch.where(same, first, d.u(lo, hi)) for _ in range(3)]
    zero = torch.zeros_like(t)
    return affine(1 + l + r, zero, r - l, zero, 1 + t + b, b - t)


def zoomout_map(d, lo, hi):
    """Scale to lo..hi and paste anywhere on a same-size canvas."""
    s = d.u(lo, hi)
    cx = d.u(-1, 1) * (1 - s)
    cy = d.u(-1, 1) * (1 - s)
    zero = torch.zeros_like(s)
    return affine(1 / s, zero, -cx / s, zero, 1 / s, -cy / s)


def homography(src, dst):
    """[n,3,3] mapping the 4 points src[n,4,2] onto dst[n,4,2] (8x8 linear solve per image)."""
    n = src.shape[0]
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)
    b = torch.cat([u, v], 1)
    h = torch.linalg.solve(a, b.unsqueeze(-1)).squeeze(-1)
    return torch.cat([h, torch.ones(n, 1, device=src.device)], 1).view(n, 3, 3)


def perspective_map(d, lo, hi):
    """Keystone: one edge, or one horizontal and one vertical edge, shrunk lo..hi of its length."""
    two = d.bern(0.5)
    single = d.choice((1, 1, 1, 1))
    horizontal = torch.where(d.bern(0.5), 0, 1)
    vertical = torch.where(d.bern(0.5), 2, 3)
    corners = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float32, device=d.device)
    quad = corners.expand(d.n, 4, 2).clone()
    # edge -> (corner i, corner j, axis): top, bottom, left, right; corners TL, TR, BR, BL.
    for edge, (i, j, axis) in enumerate(((0, 1, 0), (3, 2, 0), (0, 3, 1), (1, 2, 1))):
        chosen = torch.where(two, (horizontal == edge) | (vertical == edge), single == edge)
        f = d.u(lo, hi) * chosen
        quad[:, i, axis] += f
        quad[:, j, axis] -= f
    return homography(quad, corners.expand(d.n, 4, 2))


# --- fills, overlays, colour, blur, resolution ---

def fill_images(x, kind, d):
    """[n,3,H,W] canvas per image for its fill kind (FILLS index); 'edge' is handled by warp.
    The costlier kinds are made only when some image of the batch has them."""
    n, _, h, w = x.shape
    solid = torch.rand(n, 3, generator=d.g, device=d.device)
    for k, value in ((0, 0.0), (1, 1.0), (2, 128 / 255)):
        solid = torch.where((kind == k).unsqueeze(1), value, solid)
    out = solid.view(n, 3, 1, 1).expand(n, 3, h, w)
    makers = (
        (5, lambda: F.interpolate(F.adaptive_avg_pool2d(x, 4), size=(h, w), mode='bilinear', align_corners=False)),
        (6, lambda: 0.75 * smooth_noise(n, d.int(3, 6), h, d) + 0.25 * smooth_noise(n, d.int(12, 20), h, d)),
        (7, lambda: x.roll(1, 0)),
    )
    for k, make in makers:
        on = kind == k
        if bool(on.any()):
            out = torch.where(on.view(n, 1, 1, 1), make(), out)
    return out


def noisy(x, on, sigma, d):
    """Additive gaussian noise of per-image sigma where on (sensor noise, re-photographed copies)."""
    noise = torch.randn(x.shape, generator=d.g, device=x.device) * sigma.view(-1, 1, 1, 1)
    return x + noise * on.view(-1, 1, 1, 1)


def pixelated(x, factor):
    """Down to factor of the side (area) and back up with nearest-neighbour blocks, per image."""
    h, w = x.shape[-2:]
    out = []
    for i in range(x.shape[0]):
        side = max(1, int(round(h * float(factor[i]))))
        small = F.interpolate(x[i:i + 1], size=(side, side), mode='area')
        out.append(F.interpolate(small, size=(h, w), mode='nearest'))
    return torch.cat(out)


def smooth_noise(n, cells, size, d):
    c = torch.rand(n, 3, cells, cells, generator=d.g, device=d.device)
    return F.interpolate(c, size=(size, size), mode='bilinear', align_corners=False)


class Augmenter:
    def __init__(self, device, size=64, text_bank=None, supersample=2):
        self.device, self.size, self.ss = device, size, supersample
        s = size * supersample
        t = (torch.arange(s, dtype=torch.float32, device=device) + 0.5) / s * 2 - 1
        yy, xx = torch.meshgrid(t, t, indexing='ij')
        self.base = torch.stack([xx, yy, torch.ones_like(xx)], -1).view(-1, 3)
        p = (torch.arange(size, dtype=torch.float32, device=device) + 0.5) / size * 2 - 1
        self.py, self.px = torch.meshgrid(p, p, indexing='ij')
        # Text masks (alpha in [0,1]); none means the overlay is logos only.
        self.text = None if text_bank is None else text_bank.to(device).float().div(255)

    # geometry

    def warp(self, x, m, fill_kind, d):
        """Sample x through output->source maps m; outside the source, the fill of fill_kind.

        Sampled at `supersample` times the size and box-filtered down; the fill is blended in at
        the output size by the covered share of each pixel, which is the same as filling the
        supersampled image, since a fill pixel is constant over its block."""
        n, s = x.shape[0], self.size * self.ss
        pts = self.base.unsqueeze(0) @ m.transpose(1, 2)
        w = pts[..., 2:]
        w = torch.where(w.abs() < 1e-6, torch.full_like(w, 1e-6), w)
        uv = pts[..., :2] / w
        content = F.grid_sample(x, uv.view(n, s, s, 2), mode='bilinear', padding_mode='border', align_corners=False)
        inside = (uv.abs() <= 1).all(-1).view(n, 1, s, s).float()
        edge = (fill_kind == FILLS.index('edge')).view(n, 1, 1, 1)
        covered = torch.where(edge, 1.0, F.avg_pool2d(inside, self.ss))
        content = torch.where(edge, F.avg_pool2d(content, self.ss), F.avg_pool2d(content * inside, self.ss))
        return content + (1 - covered) * fill_images(x, fill_kind, d)

    # overlays

    def overlay(self, x, on, d, p_logo=2 / 3):
        n, h = x.shape[0], self.size
        colour = torch.rand(n, 3, 1, 1, generator=d.g, device=d.device)
        logo_on = on & d.bern(p_logo)
        r = d.u(0.08, 0.15) * 2
        cx, cy = d.u(-1, 1) * (1 - r), d.u(-1, 1) * (1 - r)
        disc = d.bern(0.5).view(n, 1, 1)
        dx, dy = self.px.unsqueeze(0) - cx.view(n, 1, 1), self.py.unsqueeze(0) - cy.view(n, 1, 1)
        inside = torch.where(disc, dx ** 2 + dy ** 2 <= r.view(n, 1, 1) ** 2,
                             (dx.abs() <= r.view(n, 1, 1)) & (dy.abs() <= r.view(n, 1, 1)))
        alpha = inside.float() * d.u(0.3, 0.7).view(n, 1, 1) * logo_on.view(n, 1, 1)
        logo_colour = torch.rand(n, 3, 1, 1, generator=d.g, device=d.device)
        x = x * (1 - alpha.unsqueeze(1)) + logo_colour * alpha.unsqueeze(1)
        if self.text is not None:
            pick = torch.randint(0, len(self.text), (n,), generator=d.g, device=d.device)
            a = self.text[pick].unsqueeze(1) * on.view(n, 1, 1, 1)
            if a.shape[-1] != h:
                a = F.interpolate(a, size=(h, h), mode='bilinear', align_corners=False)
            x = x * (1 - a) + colour * a
        return x

    # colour

    def colour(self, x, on, d, bright, contrast, sat, hue):
        """Brightness, contrast, saturation (factors per image) and hue rotation (turns) where on."""
        n = x.shape[0]
        y = x * bright.view(n, 1, 1, 1)
        mean = gray(y).mean((2, 3), keepdim=True)
        y = (y - mean) * contrast.view(n, 1, 1, 1) + mean
        g = gray(y)
        y = (y - g) * sat.view(n, 1, 1, 1) + g
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                              device=x.device)
        from_yiq = torch.linalg.inv(to_yiq)
        c, s = torch.cos(hue * 2 * math.pi), torch.sin(hue * 2 * math.pi)
        rot = torch.zeros(n, 3, 3, device=x.device)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
        y = torch.einsum('nij,njhw->nihw', from_yiq @ rot @ to_yiq, y).clamp(0, 1)
        return torch.where(on.view(n, 1, 1, 1), y, x)

    def blur(self, x, on, sigma, radius=7):
        """Gaussian blur with a per-image sigma (one grouped separable convolution over the images on)."""
        idx = on.nonzero().flatten()
        if len(idx) == 0:
            return x
        sub = x[idx]
        n, c, h, w = sub.shape
        t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
        k = torch.exp(-t.view(1, -1) ** 2 / (2 * sigma[idx].clamp(min=0.05).view(-1, 1) ** 2))
        k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)
        y = F.pad(sub.reshape(1, n * c, h, w), (radius,) * 4, mode='reflect')
        y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
        y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c).view(n, c, h, w)
        return x.index_copy(0, idx, y)

    def lowres(self, x, on, size_idx, sizes=LOWRES_SIZES):
        """Down to sizes[size_idx] (box filter) and back up (bilinear) where on."""
        h, w = x.shape[-2:]
        chosen = torch.tensor(sizes, device=x.device)[size_idx]
        for s in sorted(set(sizes)):
            idx = (on & (chosen == s)).nonzero().flatten()
            if len(idx):
                y = F.interpolate(F.interpolate(x[idx], size=(s, s), mode='area'), size=(h, w),
                                  mode='bilinear', align_corners=False)
                x = x.index_copy(0, idx, y)
        return x

    # drivers

    def view(self, x, g, strength):
        """One random training view per image of x ([n,3,H,W] float in [0,1])."""
        s = VIEWS[strength]
        n = x.shape[0]
        d = Draw(g, n, x.device)
        canvas = d.choice(s['canvas'])
        # A tight crop shrunk again into a border or zoom-out leaves a positive with ~10 px of
        # content, which only adds noise: those two get crops of at least 60% of the area.
        shrinks = (canvas == 2) | (canvas == 3)
        m = crop_map(d, s['area'], s['aspect'], torch.where(shrinks, 0.6, 0.0))
        inplace, expand = s['p_inplace'], s['p_expand']
        m = m @ select(d.bern(s['p_rot']), rotation_map(d, 0, s['rot'], d.choice((1 - inplace - expand, expand, inplace))))
        m = m @ select(d.bern(s['p_persp']), perspective_map(d, *s['persp']))
        m = m @ select(canvas == 1, shift_map(d, 0.05, 0.3))
        m = m @ select(canvas == 2, border_map(d, 0.03, 0.25))
        m = m @ select(canvas == 3, zoomout_map(d, 0.35, 0.85))
        x = self.warp(x, m, d.choice(s['fills']), d)
        x = self.overlay(x, d.bern(s['p_overlay']), d)
        a, hue = s['color'], s['hue']
        x = self.colour(x, d.bern(s['p_color']), d, d.u(1 - a, 1 + a), d.u(1 - a, 1 + a), d.u(1 - a, 1 + a),
                        d.u(-hue, hue))
        x = torch.where(d.bern(s['p_gray']).view(n, 1, 1, 1), gray(x).expand(-1, 3, -1, -1), x)
        x = self.blur(x, d.bern(s['p_blur']), d.u(*s['blur']))
        x = self.lowres(x, d.bern(s['p_down']), d.choice([1] * len(LOWRES_SIZES)))
        x = noisy(x, d.bern(s['p_noise']), d.u(2 / 255, 20 / 255), d)
        return x.clamp(0, 1)

    def family(self, x, name, g):
        """One copy per image of x in held-out family `name`, with the eval's parameter ranges."""
        n = x.shape[0]
        d = Draw(g, n, x.device)
        yes = torch.ones(n, dtype=torch.bool, device=x.device)
        black = torch.zeros(n, dtype=torch.long, device=x.device)
        jitter = (0.85 ** 2, 1.15 ** 2)
        if name in ('crop50', 'crop25', 'combo', 'combo2', 'cifar'):
            area = {'crop50': (0.45, 0.55), 'crop25': (0.22, 0.28), 'combo': (0.6, 0.75),
                    'combo2': (0.5, 0.8), 'cifar': (0.6, 0.9)}[name]
            x = self.warp(x, crop_map(d, area, jitter), black, d)
        elif name == 'shift':
            x = self.warp(x, shift_map(d, 0.1, 0.2), black, d)
        elif name == 'shiftfill':
            fill = torch.tensor([1, 2, 3, 4, 5], device=x.device)[d.choice((1, 1, 1, 1, 1))]
            x = self.warp(x, shift_map(d, 0.1, 0.2), fill, d)
        elif name in ('rotsmall', 'rotexpand', 'rotinplace'):
            mode = torch.full((n,), ('rotsmall', 'rotexpand', 'rotinplace').index(name), device=x.device)
            x = self.warp(x, rotation_map(d, 8, 25, mode), black, d)
        elif name == 'border':
            fill = torch.tensor([0, 1, 3], device=x.device)[d.choice((1, 1, 1))]
            x = self.warp(x, border_map(d, 0.05, 0.2), fill, d)
        elif name == 'zoomout':
            fill = torch.tensor([0, 1, 3, 6], device=x.device)[d.choice((1, 1, 1, 3))]
            x = self.warp(x, zoomout_map(d, 0.45, 0.75), fill, d)
        elif name == 'perspective':
            x = self.warp(x, perspective_map(d, 0.05, 0.12), black, d)
        elif name == 'overlay':
            x = self.overlay(x, yes, d)
        elif name == 'blur':
            x = self.blur(x, yes, d.u(1.0, 2.5))
        elif name == 'grayscale':
            x = gray(x).expand(-1, 3, -1, -1)
        elif name == 'jpeg':
            x = self.lowres(x, yes, d.choice((1, 1, 1)), sizes=(32, 40, 48))
        elif name == 'noise':
            x = noisy(x, yes, d.u(8 / 255, 20 / 255), d)
        elif name == 'pixelate':
            x = pixelated(x, d.u(0.25, 0.45))
        elif name == 'lowres32':
            x = self.lowres(x, yes, torch.zeros(n, dtype=torch.long, device=x.device), sizes=(32,))
        if name in ('colour', 'combo', 'combo2', 'cifar'):
            hue = d.u(20, 60) / 360 * d.sign()
            x = self.colour(x, yes, d, d.u(0.7, 1.3), torch.ones(n, device=x.device), d.u(0.7, 1.3), hue)
        if name == 'combo2':
            x = self.blur(x, yes, d.u(0.5, 1.5))
        return x.clamp(0, 1)


def gray(x):
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


# --- banks made once on the CPU at load time ---

def jpeg_bank(images, seed, quality=(15, 90)):
    """A re-encoded copy of every photo ([N,H,W,3] uint8), quality drawn per photo."""
    from data import parallel_map
    qualities = np.random.default_rng(seed).integers(quality[0], quality[1] + 1, len(images))
    return np.stack(parallel_map(_reencode, list(zip(images, qualities.tolist()))))


def _reencode(item):
    import io
    from PIL import Image
    img, q = item
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format='JPEG', quality=int(q))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert('RGB'))


WORDS = ('sale', 'photo', 'stock', 'news', 'daily', 'preview', 'share', 'follow', 'best', 'deal', 'new',
         'free', 'hot', 'top', 'wow', 'like', 'see', 'more', 'link', 'shop', 'view', 'home', 'blog', 'sold',
         '2024', '#1', '50%', 'HD', 'LIVE', 'NEW', 'www', '.com')


def text_bank(count, size, seed):
    """Alpha masks [count,size,size] uint8 of 1-3 words, 8-20% of the height, at random places
    (as the eval's overlay family draws them). Made where PIL has a TrueType font (pack.py does it
    on the dev box and the mask file travels): a bare GPU machine may have no fonts."""
    from PIL import Image, ImageDraw, ImageFont
    rng = np.random.default_rng(seed)
    fonts = [f for f in ('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
                         '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
                         '/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf') if os.path.exists(f)]
    out = np.zeros((count, size, size), dtype=np.uint8)
    for i in range(count):
        px = max(4, int(round(size * rng.uniform(0.08, 0.2))))
        font = ImageFont.truetype(fonts[rng.integers(len(fonts))], px) if fonts else ImageFont.load_default()
        text = ' '.join(rng.choice(WORDS, rng.integers(1, 4)))
        im = Image.new('L', (size, size), 0)
        x, y = int(rng.integers(0, size // 2 + 1)), int(rng.integers(px, size + 1))
        ImageDraw.Draw(im).text((x, y), text, fill=255, font=font, anchor='ls' if fonts else None)
        out[i] = np.asarray(im)
    return out


"""The copy-detection ViT (as in the ViT paper): linear patch embedding, class token, learned
position embeddings, pre-norm encoder blocks, projection head to an L2-normalised descriptor.

Written with plain Linear/matmul ops (no conv, no fused attention) so that the ONNX graph and the
TensorFlow.js re-implementation in src/embed/backend/ compute exactly the same function.
Patch vectors are flattened in (row, col, channel) order from an NHWC view of the image.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
LN_EPS = 1e-6


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (d // h) ** -0.5
        att = att.softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x


class ViT(nn.Module):
    def __init__(self, dim=128, depth=4, heads=4, patch=8, image=64, out_dim=128):
        super().__init__()
        self.patch = patch
        self.grid = image // patch
        self.patch_embed = nn.Linear(patch * patch * 3, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, out_dim)
        nn.init.trunc_normal_(self.cls, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        """x: [B, 3, H, W] normalised float. Returns [B, out_dim] with unit L2 norm."""
        z = self.raw(x)
        return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def raw(self, x):
        """The descriptor before L2 normalisation."""
        b = x.shape[0]
        p, g = self.patch, self.grid
        x = x.permute(0, 2, 3, 1).reshape(b, g, p, g, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(b, g * g, p * p * 3)
        x = self.patch_embed(x)
        x = torch.cat([self.cls.expand(b, -1, -1), x], 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 0]))

"""Move ViT weights between PyTorch and the exported ONNX graph, in both directions.

The ONNX model in models/ is enough to continue training on a new machine: export.py's graph
keeps biases, norms, cls, pos and head.weight under their PyTorch names, but constant folding
stores each nn.Linear weight transposed under an anonymous name (onnx::MatMul_NNN). That
MatMul's output feeds an Add whose other input is the layer's named bias, which names the layer.

Writing back into the same graph (instead of re-running torch.onnx.export) keeps the node
structure the quantizer and the runtimes were built against byte for byte, and does not depend
on the exporter of whichever PyTorch the training machine has (2.x defaults to another one).
"""
import json
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from vit import ViT


def _linear_weight_names(model):
    """{initializer name of a transposed Linear weight: torch parameter name of that weight}."""
    inits = {t.name for t in model.graph.initializer}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out = {}
    for node in model.graph.node:
        if node.op_type != 'MatMul' or node.input[1] not in inits:
            continue
        biases = [i for c in consumers.get(node.output[0], []) if c.op_type == 'Add'
                  for i in c.input if i in inits and i.endswith('.bias')]
        if len(biases) != 1:
            raise ValueError(f'MatMul {node.name}: cannot tell which layer its weight belongs to')
        out[node.input[1]] = biases[0][:-len('.bias')] + '.weight'
    return out


def _gemm_transposed(model, name):
    """Whether a Gemm reads initializer `name` as B with transB=1 (a Linear weight as stored)."""
    for node in model.graph.node:
        if node.op_type == 'Gemm' and len(node.input) > 1 and node.input[1] == name:
            return any(a.name == 'transB' and a.i == 1 for a in node.attribute)
    return True


def architecture_of(state):
    """ViT constructor arguments implied by a state dict's shapes (heads is not visible; 4 as shipped)."""
    dim = state['cls'].shape[-1]
    tokens = state['pos'].shape[1] - 1
    patch = int(round((state['patch_embed.weight'].shape[1] / 3) ** 0.5))
    depth = len({k.split('.')[1] for k in state if k.startswith('blocks.')})
    grid = int(round(tokens ** 0.5))
    return dict(dim=dim, depth=depth, patch=patch, image=grid * patch, out_dim=state['head.weight'].shape[0])


def onnx_state_dict(path):
    """The PyTorch state dict stored in an export.py ONNX file."""
    model = onnx.load(path)
    renames = _linear_weight_names(model)
    state = {}
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t).astype(np.float32)
        if t.name in renames:
            state[renames[t.name]] = torch.from_numpy(np.ascontiguousarray(arr.T))
        elif t.name == 'head.weight' and not _gemm_transposed(model, t.name):
            state[t.name] = torch.from_numpy(np.ascontiguousarray(arr.T))
        else:
            state[t.name] = torch.from_numpy(arr.copy())
    return state


def load_vit_from_onnx(path, heads=None):
    """The ViT of an ONNX file; heads come from the card.json beside it (the graph hides them)."""
    if heads is None:
        card = os.path.join(os.path.dirname(os.path.abspath(path)), 'card.json')
        heads = json.load(open(card))['architecture']['heads'] if os.path.exists(card) else 4
    state = onnx_state_dict(path)
    model = ViT(heads=heads, **architecture_of(state))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f'{path}: not this ViT (missing {missing}, unexpected {unexpected})')
    return model


def write_vit_into_onnx(model, template, out_path):
    """Copy the trained weights into a copy of `template` (same architecture) and save to out_path."""
    graph_model = onnx.load(template)
    renames = _linear_weight_names(graph_model)
    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    written = set()
    for t in graph_model.graph.initializer:
        key = renames.get(t.name, t.name)
        if key not in state:
            continue
        arr = state[key]
        if t.name in renames or (t.name == 'head.weight' and not _gemm_transposed(graph_model, t.name)):
            arr = arr.T
        old = numpy_helper.to_array(t)
        if old.shape != arr.shape:
            raise ValueError(f'{key}: template has {old.shape}, model has {arr.shape}; use the torch exporter')
        t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), t.name))
        written.add(key)
    if written != set(state):
        raise ValueError(f'template lacks {sorted(set(state) - written)}; use the torch exporter')
    onnx.save(graph_model, out_path)

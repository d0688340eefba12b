#!/usr/bin/env python3
"""Graph surgery for the int8 model; driven by `node dist/scripts/quantize.js` (which calibrates).

    /usr/bin/python3 training/quantize.py taps  --model models/neardup-vit-s8 --out <taps.onnx> --list <taps.json>
    /usr/bin/python3 training/quantize.py write --model models/neardup-vit-s8 --ranges <ranges.json> --out models/neardup-vit-s8-int8

Done by hand because onnxruntime's Python quantiser is not installable here (no PyPI).

Static quantization: every MatMul against a constant weight becomes QuantizeLinear (uint8, with a
fixed scale and zero point calibrated on real photos) + com.microsoft MatMulIntegerToFloat with
per-output-column int8 weights. Fixed activation scales matter: onnxruntime's dynamic
quantization scales each batch by its own range, so an image's embedding would depend on the
other images in its batch, and a resumed or sharded run would not reproduce an unsharded one.

Then training/fuse.py fuses attention, bias adds and GELU, which onnxruntime's own optimiser
misses in a quantized graph.

Weights use 7 bits (|q| <= 63), not 8: on AVX2 without VNNI, onnxruntime's u8×s8 kernel adds pairs
of products in int16 (vpmaddubsw), and 255·127·2 overflows it (measured: cosine to the float
model fell to 0.96 on some images with 127).

The float model stays the reference (tfjs runs it; the int8 file runs on onnxruntime only). The
int8 model gets its own card and id, so its embeddings never mix with the float model's.
"""
import argparse
import datetime
import hashlib
import json
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

from fuse import fuse

QMAX = 63


def weight_matmul_indices(model):
    """Positions of the MatMul nodes whose second input is a constant 2-D weight, in graph order."""
    inits = {i.name: i for i in model.graph.initializer}
    return [k for k, n in enumerate(model.graph.node) if n.op_type == 'MatMul' and n.input[1] in inits and len(inits[n.input[1]].dims) == 2]


def taps(model):
    """Expose each quantized MatMul's activation input as an extra graph output, for calibration."""
    names = []
    for k in weight_matmul_indices(model):
        name = model.graph.node[k].input[0]
        if name not in names:
            names.append(name)
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return names


def quantize_weight(w):
    """Per-column symmetric scales: each output feature keeps its own range."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / QMAX
    q = np.clip(np.round(w / scale), -QMAX, QMAX).astype(np.int8)
    return q, scale.astype(np.float32)


def activation_params(lo, hi):
    """uint8 asymmetric: [lo, hi] (widened to contain 0) onto 0..255."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    zero = int(np.clip(round(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zero)


def quantize(model, ranges):
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    targets = set(weight_matmul_indices(model))
    nodes, done_inputs = [], {}
    for k, node in enumerate(graph.node):
        if k not in targets:
            nodes.append(node)
            continue
        a = node.input[0]
        if a not in done_inputs:
            scale, zero = activation_params(*ranges[a])
            base = f'{a}_quant'
            graph.initializer.extend([numpy_helper.from_array(np.array(scale), base + '_scale'), numpy_helper.from_array(np.array(zero), base + '_zero')])
            nodes.append(helper.make_node('QuantizeLinear', [a, base + '_scale', base + '_zero'], [base], name=base))
            done_inputs[a] = base
        w = node.input[1]
        q, w_scale = quantize_weight(numpy_helper.to_array(inits[w]).astype(np.float32))
        graph.initializer.extend([
            numpy_helper.from_array(q, w + '_int8'),
            numpy_helper.from_array(w_scale, w + '_scale'),
            numpy_helper.from_array(np.zeros(q.shape[1], np.int8), w + '_zero'),
        ])
        base = done_inputs[a]
        nodes.append(helper.make_node('MatMulIntegerToFloat', [base, w + '_int8', base + '_scale', w + '_scale', base + '_zero', w + '_zero'],
                                      list(node.output), name=node.name + '_int8', domain='com.microsoft'))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == 'com.microsoft' for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    return len(targets)


def load(model_dir):
    with open(os.path.join(model_dir, 'card.json')) as f:
        card = json.load(f)
    return card, onnx.load(os.path.join(model_dir, card['weights']))


def write(args):
    card, model = load(args.model)
    with open(args.ranges) as f:
        calibration = json.load(f)
    count = quantize(model, {k: tuple(v) for k, v in calibration['ranges'].items()})
    method = f'static: {count} MatMul -> QuantizeLinear (uint8, fixed scale) + com.microsoft MatMulIntegerToFloat, int8 weights per output column (|q| <= {QMAX})'
    if not args.unfused:
        method += '; fused: ' + fuse(model, card['architecture']['heads'])
    onnx.checker.check_model(model)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, 'model.onnx')
    onnx.save(model, path + '.tmp')
    os.replace(path + '.tmp', path)
    with open(path, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    source_id = f"{card['name']}@{card['sha256'][:12]}"
    card.update({
        'name': os.path.basename(os.path.normpath(args.out)),
        'weights': 'model.onnx',
        'sha256': sha,
        'runtimes': ['onnx'],
        'quantization': {
            'from': source_id,
            'method': method,
            'calibration': calibration.get('source'),
            'at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        },
    })
    # The float model's calibration does not carry over: eval --write-card measures this one.
    for stale in ('threshold', 'calibration', 'quality'):
        card.pop(stale, None)
    with open(os.path.join(args.out, 'card.json'), 'w') as f:
        json.dump(card, f, indent=2)
        f.write('\n')
    print(f'{count} MatMuls quantized: {path} ({sha[:12]}), from {source_id}')


def write_taps(args):
    _, model = load(args.model)
    names = taps(model)
    onnx.save(model, args.out)
    with open(args.list, 'w') as f:
        json.dump(names, f)
    print(f'{len(names)} activations tapped: {args.out}')


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='command', required=True)
    t = sub.add_parser('taps')
    t.add_argument('--model', default='models/neardup-vit-s8')
    t.add_argument('--out', required=True)
    t.add_argument('--list', required=True)
    w = sub.add_parser('write')
    w.add_argument('--model', default='models/neardup-vit-s8')
    w.add_argument('--ranges', required=True)
    w.add_argument('--out', default='models/neardup-vit-s8-int8')
    w.add_argument('--unfused', action='store_true', help='skip training/fuse.py (to compare against)')
    args = ap.parse_args()
    (write_taps if args.command == 'taps' else write)(args)


if __name__ == '__main__':
    main()

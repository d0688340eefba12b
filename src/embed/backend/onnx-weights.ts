/**
 * A minimal, dependency-free reader for ONNX model files: just enough protobuf to pull out the
 * float initializers and the node list, so that the tfjs runtime can run the same weights as
 * onnxruntime without a second weights file that could drift from the ONNX one.
 *
 * Field numbers come from onnx/onnx.proto (stable since IR version 3):
 * ModelProto.graph = 7; GraphProto.node = 1, initializer = 5;
 * NodeProto.input = 1, output = 2, name = 3, op_type = 4, attribute = 5;
 * AttributeProto.name = 1, f = 2, i = 3, ints = 8;
 * TensorProto.dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9, data_location = 14.
 */
import { readFile } from 'node:fs/promises';
import { ModelError } from '../../errors.js';

/** A float32 tensor: row-major `data` with shape `dims`. */
export interface OnnxTensor {
  dims: number[];
  data: Float32Array;
}

/** The attribute values this reader understands (others are skipped). */
export interface OnnxAttribute {
  f?: number;
  i?: number;
  ints?: number[];
}

/** One graph node, as much as is needed to follow which node consumes which initializer. */
export interface OnnxNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

/** The parts of ModelProto.graph this reader keeps. */
export interface OnnxGraph {
  /** FLOAT initializers under their names in the file (non-float ones are left out). */
  initializers: Map<string, OnnxTensor>;
  /** Nodes in file order, which torch.onnx.export writes in topological order. */
  nodes: OnnxNode[];
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;
const DATA_TYPE_FLOAT = 1;
const DATA_LOCATION_EXTERNAL = 1;

/** Cursor over one protobuf message (a sub-range of the file's bytes). */
class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    // Multiplication instead of bit shifts: int64 values (dims, lengths) overflow 32-bit bitwise
    // ops, and every value we need fits a double exactly (< 2^53).
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error(`truncated varint at byte ${this.pos}`);
      const byte = this.buf[this.pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new Error(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** The bounds of a length-delimited field's payload; advances past it. */
  span(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    const stop = start + length;
    if (stop > this.end) throw new Error(`field of ${length} bytes at byte ${start} runs past its message`);
    this.pos = stop;
    return [start, stop];
  }

  string(): string {
    const [start, stop] = this.span();
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, stop - start).toString('utf8');
  }

  float32(): number {
    if (this.pos + 4 > this.end) throw new Error(`truncated float at byte ${this.pos}`);
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4);
    this.pos += 4;
    return view.getFloat32(0, true);
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) this.pos += 8;
    else if (wire === WIRE_LEN) this.span();
    else if (wire === WIRE_I32) this.pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wire} at byte ${this.pos}`);
    if (this.pos > this.end) throw new Error(`field runs past its message at byte ${this.pos}`);
  }

  /** Yields [field number, wire type] for each field; the caller must consume or skip it. */
  *fields(): Generator<[number, number]> {
    while (this.pos < this.end) {
      const key = this.varint();
      yield [Math.floor(key / 8), key % 8];
    }
  }

  sub(): Reader {
    const [start, stop] = this.span();
    return new Reader(this.buf, start, stop);
  }
}

/** Repeated int64: proto3 writes them packed, older writers unpacked; accept both. */
function readInt64s(r: Reader, wire: number, into: number[]): void {
  if (wire === WIRE_LEN) {
    const packed = r.sub();
    while (!packed.done) into.push(packed.varint());
  } else {
    into.push(r.varint());
  }
}

function readAttribute(r: Reader): [string, OnnxAttribute] {
  let name = '';
  const attribute: OnnxAttribute = {};
  for (const [field, wire] of r.fields()) {
    if (field === 1 && wire === WIRE_LEN) name = r.string();
    else if (field === 2 && wire === WIRE_I32) attribute.f = r.float32();
    else if (field === 3 && wire === WIRE_VARINT) attribute.i = r.varint();
    else if (field === 8) readInt64s(r, wire, (attribute.ints ??= []));
    else r.skip(wire);
  }
  return [name, attribute];
}

function readNode(r: Reader): OnnxNode {
  const node: OnnxNode = { name: '', opType: '', inputs: [], outputs: [], attributes: new Map() };
  for (const [field, wire] of r.fields()) {
    if (field === 1 && wire === WIRE_LEN) node.inputs.push(r.string());
    else if (field === 2 && wire === WIRE_LEN) node.outputs.push(r.string());
    else if (field === 3 && wire === WIRE_LEN) node.name = r.string();
    else if (field === 4 && wire === WIRE_LEN) node.opType = r.string();
    else if (field === 5 && wire === WIRE_LEN) {
      const [name, attribute] = readAttribute(r.sub());
      node.attributes.set(name, attribute);
    } else r.skip(wire);
  }
  return node;
}

/** Returns [name, tensor], or [name, null] for a non-float tensor (shape constants and the like). */
function readTensor(r: Reader): [string, OnnxTensor | null] {
  let name = '';
  let dataType = 0;
  let external = false;
  const dims: number[] = [];
  let raw: [number, number] | null = null;
  const floats: number[] = [];
  for (const [field, wire] of r.fields()) {
    if (field === 1) readInt64s(r, wire, dims);
    else if (field === 2 && wire === WIRE_VARINT) dataType = r.varint();
    else if (field === 4 && wire === WIRE_LEN) {
      const packed = r.sub();
      while (!packed.done) floats.push(packed.float32());
    } else if (field === 4 && wire === WIRE_I32) floats.push(r.float32());
    else if (field === 8 && wire === WIRE_LEN) name = r.string();
    else if (field === 9 && wire === WIRE_LEN) raw = r.span();
    else if (field === 14 && wire === WIRE_VARINT) external = r.varint() === DATA_LOCATION_EXTERNAL;
    else r.skip(wire);
  }
  if (dataType !== DATA_TYPE_FLOAT) return [name, null];
  if (external) {
    // torch.onnx.export only does this past 2 GiB; our models are a few MB.
    throw new Error(`initializer "${name}" keeps its data in an external file, which this reader does not support`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  if (raw !== null) {
    const [start, stop] = raw;
    if (stop - start !== count * 4) {
      throw new Error(`initializer "${name}" has ${stop - start} bytes of raw_data for shape [${dims.join(', ')}]`);
    }
    // raw_data is little-endian and need not be 4-byte aligned in the file, so read through a
    // DataView rather than aliasing the file buffer.
    data = new Float32Array(count);
    const view = new DataView(r.buf.buffer, r.buf.byteOffset + start, stop - start);
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
  } else {
    if (floats.length !== count) {
      throw new Error(`initializer "${name}" has ${floats.length} floats for shape [${dims.join(', ')}]`);
    }
    data = Float32Array.from(floats);
  }
  return [name, { dims, data }];
}

/**
 * Parse an ONNX ModelProto's graph: its FLOAT initializers (by their names in the file) and its
 * nodes. Throws a plain Error naming the byte offset when the bytes are not a well-formed model.
 */
export function parseOnnxModel(bytes: Uint8Array): OnnxGraph {
  const graph: OnnxGraph = { initializers: new Map(), nodes: [] };
  const model = new Reader(bytes, 0, bytes.length);
  let sawGraph = false;
  for (const [field, wire] of model.fields()) {
    if (field !== 7 || wire !== WIRE_LEN) {
      model.skip(wire);
      continue;
    }
    sawGraph = true;
    const g = model.sub();
    for (const [gField, gWire] of g.fields()) {
      if (gField === 1 && gWire === WIRE_LEN) graph.nodes.push(readNode(g.sub()));
      else if (gField === 5 && gWire === WIRE_LEN) {
        const [name, tensor] = readTensor(g.sub());
        if (tensor) graph.initializers.set(name, tensor);
      } else g.skip(gWire);
    }
  }
  if (!sawGraph) throw new Error('no graph (ModelProto field 7) found');
  return graph;
}

/** The FLOAT initializers of an ONNX model under their names in the file (e.g. `onnx::MatMul_413`). */
export function readOnnxInitializers(bytes: Uint8Array): Map<string, OnnxTensor> {
  return parseOnnxModel(bytes).initializers;
}

function transpose2d(t: OnnxTensor): OnnxTensor {
  const [rows, cols] = t.dims;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c];
  }
  return { dims: [cols, rows], data: out };
}

/** Is `perm` the 2-D swap (Transpose with no perm attribute reverses the axes, which is the same)? */
const isSwap = (node: OnnxNode): boolean => {
  const perm = node.attributes.get('perm')?.ints;
  return perm === undefined || (perm.length === 2 && perm[0] === 1 && perm[1] === 0);
};

/**
 * The logical name of the Linear layer whose weight feeds `node` (a MatMul or Gemm), from the most
 * to the least robust evidence: the bias it is added to (`blocks.0.qkv.bias` names
 * `blocks.0.qkv`; biases are 1-D, so constant folding never renames them), then the node's scope
 * path (`/blocks.0/qkv/MatMul`), then the initializer's own name when it is already `X.weight`.
 */
function linearName(node: OnnxNode, weightName: string, graph: OnnxGraph, consumers: Map<string, OnnxNode[]>): string | null {
  const fromBias = (name: string | undefined): string | null =>
    name !== undefined && name.endsWith('.bias') && graph.initializers.has(name) ? name.slice(0, -'.bias'.length) : null;
  if (node.opType === 'Gemm') {
    const named = fromBias(node.inputs[2]);
    if (named) return named;
  } else {
    for (const add of consumers.get(node.outputs[0]) ?? []) {
      if (add.opType !== 'Add') continue;
      const other = add.inputs[0] === node.outputs[0] ? add.inputs[1] : add.inputs[0];
      const named = fromBias(other);
      if (named) return named;
    }
  }
  const scope = node.name.split('/').filter(Boolean).slice(0, -1);
  if (scope.length > 0) return scope.join('.');
  if (weightName.endsWith('.weight')) return weightName.slice(0, -'.weight'.length);
  return null;
}

/**
 * Map a torch-exported graph's initializers to the PyTorch parameter names and layouts, i.e. the
 * same keys and shapes as `model.state_dict()` (`patch_embed.weight` [out, in], `blocks.0.qkv.bias`,
 * `pos`, ...).
 *
 * Why: with constant folding, torch.onnx.export stores each Linear weight that feeds a MatMul
 * pre-transposed ([in, out]) under a generated name such as `onnx::MatMul_413`, and the number
 * changes with every export. The rule, so that a re-trained file of the same architecture maps the
 * same way without hard-coded names:
 *  1. For every MatMul or Gemm whose second input is (possibly through 2-D Transpose nodes) a 2-D
 *     initializer, that initializer is a Linear weight. Its orientation is worked out from the ops:
 *     MatMul computes x·B, each Transpose and a Gemm `transB=1` flip B, and the result is stored
 *     as [out, in] like PyTorch.
 *  2. Its name is `<layer>.weight`, where `<layer>` comes from the bias added to the product (see
 *     {@link linearName}), else the node's scope path, else the initializer's own `.weight` name.
 *  3. Every other float initializer (cls, pos, biases, LayerNorm parameters) keeps its own name,
 *     which torch.onnx.export takes from the state_dict.
 * MatMuls between activations (attention scores, attention × values) have no initializer input
 * and are ignored. Throws if two weights map to one name or a weight cannot be named.
 */
export function namedParameters(graph: OnnxGraph): Map<string, OnnxTensor> {
  const producer = new Map<string, OnnxNode>();
  const consumers = new Map<string, OnnxNode[]>();
  for (const node of graph.nodes) {
    for (const out of node.outputs) producer.set(out, node);
    for (const input of node.inputs) {
      const list = consumers.get(input);
      if (list) list.push(node);
      else consumers.set(input, [node]);
    }
  }

  const params = new Map<string, OnnxTensor>();
  const consumed = new Set<string>();
  for (const node of graph.nodes) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
    let source = node.inputs[1];
    // `flipped` tracks whether the initializer, as stored, is the transpose of the B that the
    // node multiplies by (B is [in, out]); PyTorch's [out, in] is exactly that transpose.
    let flipped = node.opType === 'Gemm' && node.attributes.get('transB')?.i === 1;
    let via = producer.get(source);
    while (via && via.opType === 'Transpose' && isSwap(via)) {
      flipped = !flipped;
      source = via.inputs[0];
      via = producer.get(source);
    }
    const tensor = graph.initializers.get(source);
    if (!tensor || tensor.dims.length !== 2) continue;
    const layer = linearName(node, source, graph, consumers);
    if (layer === null) throw new Error(`cannot tell which layer the weight "${source}" (used by ${node.opType} "${node.name}") belongs to`);
    const key = `${layer}.weight`;
    if (params.has(key)) throw new Error(`two weights map to "${key}" (the second is "${source}")`);
    params.set(key, flipped ? tensor : transpose2d(tensor));
    consumed.add(source);
  }
  for (const [name, tensor] of graph.initializers) {
    if (consumed.has(name) || params.has(name)) continue;
    params.set(name, tensor);
  }
  return params;
}

/**
 * Read an ONNX file and return its parameters under PyTorch names and layouts (see
 * {@link namedParameters}). Throws ModelError when the file is missing or not a parseable model.
 */
export async function readModelParameters(path: string): Promise<Map<string, OnnxTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new ModelError(`Cannot read model weights ${path}: check the model folder (--model) and its card's "weights"`, 'E_MODEL_MISSING', { cause });
  }
  try {
    return namedParameters(parseOnnxModel(bytes));
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new ModelError(`Cannot read the weights in ${path} (${why}): the file is not an ONNX model this reader understands; re-export it with training/export.py`, 'E_MODEL_CORRUPT', { cause });
  }
}

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ModelError } from '../errors.js';
import { INPUT_ID } from './views.js';

/** What models/<name>/card.json holds; written by training/export.py, extended by calibrate/eval. */
export interface ModelCard {
  name: string;
  format: 'onnx';
  weights: string;
  sha256: string;
  architecture: {
    type: 'vit';
    image: number;
    patch: number;
    dim: number;
    depth: number;
    heads: number;
    mlp_ratio: number;
    out_dim: number;
    pooling: 'cls';
    layer_norm_eps: number;
  };
  input: { size: number; resize: 'fill'; layout: 'NCHW'; mean: [number, number, number]; std: [number, number, number] };
  output: { name: string; dims: number; normalised: boolean };
  /** Default decision threshold (cosine) where precision reaches 0.99 on the development benchmark. */
  threshold?: number;
  calibration?: Record<string, unknown>;
  quality?: Record<string, unknown>;
  /**
   * The verify stage's calibration for this model: the verified-score threshold and the cosine
   * floor of the candidates, measured at scale (see `neardup eval --scale`), and its quality table.
   */
  verify?: { threshold: number; floor: number; k?: number; verifier?: string; quality?: Record<string, unknown> };
  training?: Record<string, unknown>;
  /** Runtime families that can run these weights (absent: all). The int8 model is onnx-only. */
  runtimes?: string[];
  /** For a quantized model: its float source and how it was made (training/quantize.py). */
  quantization?: { from: string; method: string };
}

export interface LoadedModel {
  dir: string;
  card: ModelCard;
  weightsPath: string;
  /** Stable id used to key embeddings: name + first 12 hex of the weights' sha256. */
  id: string;
}

/** Read and verify a model folder: card present and well-formed, weights present, sha256 matching. */
export function loadModel(dir: string): LoadedModel {
  const abs = resolve(dir);
  const cardPath = join(abs, 'card.json');
  if (!existsSync(cardPath)) {
    throw new ModelError(`No model card at ${cardPath}: --model must point at a folder with card.json and model.onnx (e.g. models/neardup-vit-s8)`, 'E_MODEL_MISSING');
  }
  let card: ModelCard;
  try {
    card = JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard;
  } catch (cause) {
    throw new ModelError(`Model card ${cardPath} is not valid JSON: restore it from the repository or re-export the model`, 'E_MODEL_CORRUPT', { cause });
  }
  for (const field of ['name', 'weights', 'sha256', 'architecture', 'input', 'output'] as const) {
    if (card[field] === undefined) {
      throw new ModelError(`Model card ${cardPath} lacks "${field}": re-export the model with training/export.py`, 'E_MODEL_CORRUPT');
    }
  }
  const weightsPath = join(abs, card.weights);
  if (!existsSync(weightsPath)) {
    throw new ModelError(`Model weights ${weightsPath} are missing: the card names "${card.weights}"`, 'E_MODEL_MISSING');
  }
  const sha = createHash('sha256').update(readFileSync(weightsPath)).digest('hex');
  if (sha !== card.sha256) {
    throw new ModelError(`Model weights ${weightsPath} do not match the card's sha256 (${card.sha256.slice(0, 12)}…, file has ${sha.slice(0, 12)}…): the file is corrupt or was replaced without re-exporting`, 'E_MODEL_CORRUPT');
  }
  return { dir: abs, card, weightsPath, id: `${card.name}@${sha.slice(0, 12)}+${INPUT_ID}` };
}

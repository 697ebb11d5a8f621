/**
 * Stateless ops with torch.nn.functional's semantics. Each checks its
 * arguments in TypeScript (PyTorch's message where it has one) and runs one
 * native call; the arithmetic is native.
 */
import { binding } from './binding';
import { invalidType, invalidValue, shapeError } from './errors';
import { normalizeDim, numelOf, Tensor } from './tensor';

type Float32Tensor = Tensor<'float32'>;

function checkFloat(name: string, value: unknown): Float32Tensor {
  if (!(value instanceof Tensor)) throw invalidType(name, 'a Tensor', value);
  if (value.dtype !== 'float32') throw invalidType(name, 'a float32 Tensor', value);
  return value as Float32Tensor;
}

function checkOptionalFloat(name: string, value: unknown): Float32Tensor | null {
  return value === undefined || value === null ? null : checkFloat(name, value);
}

function emptyLike(shape: readonly number[]): Float32Tensor {
  return new Tensor(new Float32Array(numelOf(shape)), shape);
}

/**
 * y = input · weightᵀ + bias (torch.nn.functional.linear).
 * input: [*, inFeatures] (1-D allowed), weight: [outFeatures, inFeatures],
 * bias: [outFeatures] or null. Returns [*, outFeatures].
 */
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null): Float32Tensor {
  const x = checkFloat('input', input);
  const w = checkFloat('weight', weight);
  const b = checkOptionalFloat('bias', bias);
  if (x.ndim === 0) throw shapeError('linear(): input must have at least one dimension, but got a 0-d tensor');
  if (w.ndim !== 2) throw shapeError(`linear(): weight must be 2-D [out_features, in_features], but got shape [${w.shape.join(', ')}]`);
  const [outFeatures, inFeatures] = w.shape;
  const k = x.shape[x.ndim - 1];
  const m = numelOf(x.shape.slice(0, -1));  // rows of the flattened [m, k] input
  if (k !== inFeatures) {
    throw shapeError(`mat1 and mat2 shapes cannot be multiplied (${m}x${k} and ${inFeatures}x${outFeatures})`);
  }
  if (b !== null && (b.ndim !== 1 || b.shape[0] !== outFeatures)) {
    throw shapeError(`linear(): bias must have shape [${outFeatures}], but got shape [${b.shape.join(', ')}]`);
  }
  const out = emptyLike([...x.shape.slice(0, -1), outFeatures]);
  if (out.numel === 0) return out;
  if (k === 0) {
    if (b !== null) for (let row = 0; row < m; row++) out.data.set(b.data, row * outFeatures);
    return out;
  }
  binding.gemm({
    batch: 1, m, n: outFeatures, k,
    a: x.data, aRowStride: k, aColStride: 1,
    // B(p, j) = W[j][p]: PyTorch's [out, in] weight read as its transpose.
    b: w.data, bRowStride: 1, bColStride: k,
    c: out.data, ldc: outFeatures, cBatchStride: 0,
    bias: b?.data ?? null,
  });
  return out;
}

/** Broadcast of two batch shapes, with PyTorch's message when they do not match. */
function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const ndim = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < ndim; i++) {
    const sizeA = a[a.length - ndim + i] ?? 1;
    const sizeB = b[b.length - ndim + i] ?? 1;
    if (sizeA !== sizeB && sizeA !== 1 && sizeB !== 1) {
      throw shapeError(`The size of tensor a (${sizeA}) must match the size of tensor b (${sizeB}) at non-singleton dimension ${i}`);
    }
    out.push(sizeA === 1 ? sizeB : sizeA);
  }
  return out;
}

/** Element offset of each output batch into an operand of batch shape `shape` broadcast to `outBatch`. */
function batchOffsets(shape: readonly number[], outBatch: readonly number[], matrixSize: number): Float64Array {
  const count = numelOf(outBatch);
  const offsets = new Float64Array(count);
  const lead = outBatch.length - shape.length;
  // Stride of each broadcast batch dim in the operand (0 where it has size 1 or is absent).
  const strides = outBatch.map((_, d) => {
    const own = d - lead;
    if (own < 0 || shape[own] === 1) return 0;
    return numelOf(shape.slice(own + 1)) * matrixSize;
  });
  for (let index = 0; index < count; index++) {
    let rest = index;
    let offset = 0;
    for (let d = outBatch.length - 1; d >= 0; d--) {
      offset += (rest % outBatch[d]) * strides[d];
      rest = Math.floor(rest / outBatch[d]);
    }
    offsets[index] = offset;
  }
  return offsets;
}

/**
 * Matrix product with torch.matmul's rules: 1-D · 1-D is a dot product
 * (0-d result), a 1-D operand gains and then loses a dimension, and batch
 * dimensions broadcast.
 */
export function matmul(input: Tensor, other: Tensor): Float32Tensor {
  const a = checkFloat('input', input);
  const b = checkFloat('other', other);
  if (a.ndim === 0 || b.ndim === 0) {
    throw shapeError(`both arguments to matmul need to be at least 1D, but they are ${a.ndim}D and ${b.ndim}D`);
  }
  if (a.ndim === 1 && b.ndim === 1 && a.shape[0] !== b.shape[0]) {
    throw shapeError(`inconsistent tensor size, expected tensor [${a.shape[0]}] and src [${b.shape[0]}] to have the same number of elements, but got ${a.shape[0]} and ${b.shape[0]} elements respectively`);
  }
  // View 1-D operands as matrices: [k] -> [1, k] on the left, [k] -> [k, 1] on the right.
  const aShape = a.ndim === 1 ? [1, a.shape[0]] : a.shape;
  const bShape = b.ndim === 1 ? [b.shape[0], 1] : b.shape;
  const [m, k] = aShape.slice(-2);
  const [kB, n] = bShape.slice(-2);
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  if (k !== kB) {
    if (aBatch.length === 0 && bBatch.length === 0) {
      throw shapeError(`mat1 and mat2 shapes cannot be multiplied (${m}x${k} and ${kB}x${n})`);
    }
    throw shapeError(`Expected size for first two dimensions of batch2 tensor to be: [${numelOf(broadcastShapes(aBatch, bBatch))}, ${k}] but got: [${numelOf(broadcastShapes(aBatch, bBatch))}, ${kB}].`);
  }
  const outBatch = broadcastShapes(aBatch, bBatch);
  const outShape = [...outBatch, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])];
  const out = emptyLike(outShape);
  if (out.numel === 0 || k === 0) return out;
  const batch = numelOf(outBatch);
  binding.gemm({
    batch, m, n, k,
    a: a.data, aRowStride: k, aColStride: 1, aOffsets: batchOffsets(aBatch, outBatch, m * k),
    b: b.data, bRowStride: n, bColStride: 1, bOffsets: batchOffsets(bBatch, outBatch, k * n),
    c: out.data, ldc: n, cBatchStride: m * n,
  });
  return out;
}

/**
 * Softmax along `dim` (torch.softmax). One difference from PyTorch, on
 * purpose: a slice whose every element is -inf gives zeros, not NaN (what
 * attention needs for a query that may attend to nothing).
 */
export function softmax(input: Tensor, dim: number): Float32Tensor {
  const x = checkFloat('input', input);
  const axis = normalizeDim(dim, x.ndim);
  const out = emptyLike(x.shape);
  if (x.numel === 0) return out;
  const n = x.ndim === 0 ? 1 : x.shape[axis];
  binding.softmax({
    x: x.data, y: out.data, scale: 1,
    outer: numelOf(x.shape.slice(0, axis)), n, inner: numelOf(x.shape.slice(axis + 1)),
  });
  return out;
}

/**
 * Layer normalization over the trailing `normalizedShape` dimensions
 * (torch.nn.functional.layer_norm), with PyTorch's biased variance.
 * weight and bias: of shape normalizedShape, or null.
 */
export function layerNorm(input: Tensor, normalizedShape: readonly number[], weight?: Tensor | null,
  bias?: Tensor | null, eps = 1e-5): Float32Tensor {
  const x = checkFloat('input', input);
  if (!Array.isArray(normalizedShape) || normalizedShape.length === 0 ||
      normalizedShape.some((size) => !Number.isSafeInteger(size) || size < 1)) {
    throw invalidValue('normalizedShape', 'a non-empty array of positive integers', normalizedShape);
  }
  const w = checkOptionalFloat('weight', weight);
  const b = checkOptionalFloat('bias', bias);
  if (typeof eps !== 'number' || !(eps >= 0)) throw invalidValue('eps', 'a non-negative number', eps);
  const tail = x.shape.slice(x.ndim - normalizedShape.length);
  if (x.ndim < normalizedShape.length || tail.some((size, i) => size !== normalizedShape[i])) {
    throw shapeError(`Given normalized_shape=[${normalizedShape.join(', ')}], expected input with shape [*, ${normalizedShape.join(', ')}], but got input of size[${x.shape.join(', ')}]`);
  }
  for (const [name, param] of [['weight', w], ['bias', b]] as const) {
    if (param !== null && (param.ndim !== normalizedShape.length || param.shape.some((s, i) => s !== normalizedShape[i]))) {
      throw shapeError(`Expected ${name} to be of same shape as normalized_shape, but got ${name} of shape [${param.shape.join(', ')}] and normalized_shape = [${normalizedShape.join(', ')}]`);
    }
  }
  const out = emptyLike(x.shape);
  if (x.numel === 0) return out;
  const n = numelOf(normalizedShape);
  binding.layerNorm({ x: x.data, y: out.data, rows: x.numel / n, n, eps, weight: w?.data ?? null, bias: b?.data ?? null });
  return out;
}

function unary(kind: 'relu' | 'gelu', input: Tensor): Float32Tensor {
  const x = checkFloat('input', input);
  const out = emptyLike(x.shape);
  binding.activation(kind, x.data, out.data);
  return out;
}

/** max(0, x) elementwise (NaN stays NaN, as in PyTorch). */
export function relu(input: Tensor): Float32Tensor {
  return unary('relu', input);
}

export interface GeluOptions {
  /** only 'none', PyTorch's default exact erf form, is implemented */
  approximate?: 'none';
}

/** 0.5 · x · (1 + erf(x / √2)) elementwise: PyTorch's default, exact GELU. */
export function gelu(input: Tensor, options: GeluOptions = {}): Float32Tensor {
  if (options.approximate !== undefined && options.approximate !== 'none') {
    throw invalidValue('options.approximate', "'none' (the tanh approximation is not implemented)", options.approximate);
  }
  return unary('gelu', input);
}

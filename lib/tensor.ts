/**
 * Tensor: a dtype, a shape and one contiguous row-major typed array.
 *
 * | dtype     | data           |
 * |-----------|----------------|
 * | 'float32' | Float32Array   |
 * | 'bool'    | Uint8Array (0 / 1) |
 * | 'int32'   | Int32Array     |
 * | 'int64'   | BigInt64Array  |
 */
import { invalidType, invalidValue } from './errors';

export type DType = 'float32' | 'bool' | 'int32' | 'int64';
export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'bool'
    ? Uint8Array
    : D extends 'int32'
      ? Int32Array
      : BigInt64Array;
export type TensorData = Float32Array | Uint8Array | Int32Array | BigInt64Array;
export type NestedArray = number | boolean | bigint | NestedArray[];

const DTYPES: readonly DType[] = ['float32', 'bool', 'int32', 'int64'];

// By tag, not instanceof: arrays made by the addon or in another realm (a
// vm context, jest's sandbox) have other constructors but the same tag.
const DTYPE_OF_TAG: Record<string, DType> = {
  Float32Array: 'float32', Uint8Array: 'bool', Int32Array: 'int32', BigInt64Array: 'int64',
};

function dtypeOfArray(data: unknown): DType | undefined {
  if (!ArrayBuffer.isView(data)) return undefined;
  return DTYPE_OF_TAG[(data as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag]];
}

function allocate(dtype: DType, length: number): TensorData {
  switch (dtype) {
    case 'float32': return new Float32Array(length);
    case 'bool': return new Uint8Array(length);
    case 'int32': return new Int32Array(length);
    case 'int64': return new BigInt64Array(length);
  }
}

function checkDType(name: string, dtype: unknown): DType {
  if (typeof dtype !== 'string' || !DTYPES.includes(dtype as DType)) {
    throw invalidType(name, `one of ${DTYPES.map((d) => `'${d}'`).join(', ')}`, dtype);
  }
  return dtype as DType;
}

/** Checks a shape (non-negative safe integers) and returns a frozen copy. */
export function checkShape(name: string, shape: unknown): readonly number[] {
  if (!Array.isArray(shape)) throw invalidType(name, 'an array of non-negative integers', shape);
  shape.forEach((size, i) => {
    if (typeof size !== 'number') throw invalidType(`${name}[${i}]`, 'a non-negative integer', size);
    if (!Number.isSafeInteger(size) || size < 0) throw invalidValue(`${name}[${i}]`, 'a non-negative integer', size);
  });
  return Object.freeze([...shape]);
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

export class Tensor<D extends DType = DType> {
  readonly data: TypedArrayFor<D>;
  readonly shape: readonly number[];
  readonly dtype: D;

  /**
   * Wraps `data` (not copied) as a tensor of `shape`. The dtype follows the
   * array type; passing `dtype` checks that it agrees.
   */
  constructor(data: TypedArrayFor<D>, shape: readonly number[], dtype?: D) {
    const arrayDType = dtypeOfArray(data);
    if (arrayDType === undefined) {
      throw invalidType('data', 'a Float32Array, Uint8Array, Int32Array or BigInt64Array', data);
    }
    if (dtype !== undefined && checkDType('dtype', dtype) !== arrayDType) {
      throw invalidType('data', `the typed array of dtype '${dtype}'`, data);
    }
    this.shape = checkShape('shape', shape);
    const numel = numelOf(this.shape);
    if (data.length !== numel) {
      throw invalidValue('data', `${numel} elements for shape [${this.shape.join(', ')}]`, data);
    }
    this.data = data;
    this.dtype = arrayDType as D;
  }

  get numel(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The size of one dimension (negative counts from the end), or the whole shape. */
  size(): readonly number[];
  size(dim: number): number;
  size(dim?: number): number | readonly number[] {
    if (dim === undefined) return this.shape;
    return this.shape[normalizeDim(dim, this.ndim, 'dim')];
  }

  /** A tensor sharing this data with another shape; one size may be -1. */
  reshape(shape: readonly number[]): Tensor<D> {
    if (!Array.isArray(shape)) throw invalidType('shape', 'an array of integers', shape);
    const inferred = shape.indexOf(-1);
    let resolved = [...shape];
    if (inferred !== -1) {
      const rest = numelOf(shape.filter((_, i) => i !== inferred));
      if (rest === 0 || this.numel % rest !== 0) {
        throw invalidValue('shape', `a shape of ${this.numel} elements`, `[${shape.join(', ')}]`);
      }
      resolved[inferred] = this.numel / rest;
    }
    resolved = [...checkShape('shape', resolved)];
    if (numelOf(resolved) !== this.numel) {
      throw invalidValue('shape', `a shape of ${this.numel} elements`, `[${shape.join(', ')}]`);
    }
    return new Tensor(this.data, resolved, this.dtype);
  }

  /** The elements as nested JS arrays (numbers; bigints for int64; booleans for bool). */
  toArray(): NestedArray {
    const values = Array.from(this.data as ArrayLike<number | bigint>, (v) =>
      this.dtype === 'bool' ? v !== 0 : v,
    ) as NestedArray[];
    const build = (offset: number, dim: number): NestedArray => {
      if (dim === this.ndim) return values[offset];
      const stride = numelOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(offset + i * stride, dim + 1));
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
  item(): number | bigint | boolean {
    if (this.numel !== 1) throw invalidValue('tensor', 'a tensor with one element', this);
    return this.dtype === 'bool' ? this.data[0] !== 0 : this.data[0];
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype})`;
  }
}

/** Maps a possibly negative dim into [0, ndim), with PyTorch's message when out of range. */
export function normalizeDim(dim: number, ndim: number, name = 'dim'): number {
  if (typeof dim !== 'number' || !Number.isInteger(dim)) throw invalidType(name, 'an integer', dim);
  const range = Math.max(ndim, 1);
  if (dim < -range || dim >= range) {
    throw invalidValue(name, `a dimension in the range [${-range}, ${range - 1}]`, dim);
  }
  return dim < 0 ? dim + range : dim;
}

export interface TensorOptions {
  dtype?: DType;
  shape?: readonly number[];
}

function inferShape(values: NestedArray, path: string): number[] {
  if (!Array.isArray(values)) return [];
  if (values.length === 0) return [0];
  const inner = inferShape(values[0], `${path}[0]`);
  values.forEach((value, i) => {
    const shape = inferShape(value, `${path}[${i}]`);
    if (shape.length !== inner.length || shape.some((size, d) => size !== inner[d])) {
      throw invalidValue(`${path}[${i}]`, `a nested array of shape [${inner.join(', ')}]`, value);
    }
  });
  return [values.length, ...inner];
}

/**
 * A tensor from nested arrays (shape inferred, like torch.tensor) or from a
 * typed array (copied; shape defaults to 1-D). dtype defaults to 'float32',
 * or to the typed array's own dtype.
 */
export function tensor(values: NestedArray | TensorData | Float64Array, options: TensorOptions = {}): Tensor {
  const fromArray = ArrayBuffer.isView(values);
  const dtype = checkDType('options.dtype',
    options.dtype ?? (fromArray ? dtypeOfArray(values) ?? 'float32' : 'float32'));
  let flat: ArrayLike<number | bigint | boolean>;
  let shape: readonly number[];
  if (fromArray) {
    if (dtypeOfArray(values) === undefined && Object.prototype.toString.call(values) !== '[object Float64Array]') {
      throw invalidType('values', 'nested arrays or a Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array', values);
    }
    flat = values as unknown as ArrayLike<number | bigint>;
    shape = options.shape ?? [flat.length];
  } else {
    const inferred = inferShape(values as NestedArray, 'values');
    flat = (Array.isArray(values) ? (values as unknown[]).flat(Infinity as 1) : [values]) as (number | bigint | boolean)[];
    shape = options.shape ?? inferred;
  }
  const data = allocate(dtype, flat.length);
  for (let i = 0; i < flat.length; i++) {
    const value = flat[i];
    if (dtype === 'int64') {
      (data as BigInt64Array)[i] = typeof value === 'bigint' ? value : BigInt(Math.trunc(Number(value)));
    } else if (dtype === 'bool') {
      (data as Uint8Array)[i] = value ? 1 : 0;
    } else {
      if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'bigint') {
        throw invalidType(`values[${i}]`, 'a number', value);
      }
      (data as Float32Array | Int32Array)[i] = Number(value);
    }
  }
  return new Tensor(data, checkShape('options.shape', shape));
}

export function full(shape: readonly number[], value: number, options: { dtype?: DType } = {}): Tensor {
  const dtype = checkDType('options.dtype', options.dtype ?? 'float32');
  const data = allocate(dtype, numelOf(checkShape('shape', shape)));
  if (dtype === 'int64') (data as BigInt64Array).fill(BigInt(Math.trunc(value)));
  else (data as Float32Array).fill(dtype === 'bool' ? (value ? 1 : 0) : value);
  return new Tensor(data, shape);
}

export function zeros(shape: readonly number[], options: { dtype?: DType } = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: readonly number[], options: { dtype?: DType } = {}): Tensor {
  return full(shape, 1, options);
}

/**
 * A seeded pseudo-random generator (xoshiro128**, seeded through splitmix32),
 * so that examples, tests and benchmarks draw the same numbers on every run.
 * It is not PyTorch's generator: the same seed gives different numbers there.
 */
export class Generator {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal: number | undefined;

  constructor(seed = 0) {
    this.manualSeed(seed);
  }

  manualSeed(seed: number): this {
    if (!Number.isSafeInteger(seed)) throw invalidType('seed', 'an integer', seed);
    let state = (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
    const splitmix = (): number => {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix();
    this.s1 = splitmix();
    this.s2 = splitmix();
    this.s3 = splitmix();
    this.spareNormal = undefined;
    return this;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) on a grid of 2^-24, so it stays below 1 when rounded to float32. */
  nextFloat(): number {
    return (this.nextUint32() >>> 8) / 2 ** 24;
  }

  /** Standard normal (Box–Muller). */
  nextNormal(): number {
    if (this.spareNormal !== undefined) {
      const spare = this.spareNormal;
      this.spareNormal = undefined;
      return spare;
    }
    const u1 = 1 - this.nextFloat();  // (0, 1], so log(u1) is finite
    const u2 = this.nextFloat();
    const radius = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const defaultGenerator = new Generator(0);

/** A seed drawn from the default generator (for lazily initialised parameters). */
export function drawSeed(): number {
  return defaultGenerator.nextUint32();
}

/** Reseeds the generator randn / rand use when no generator is given (torch.manual_seed). */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}

export interface RandomOptions {
  /** draw from a fresh generator with this seed */
  seed?: number;
  /** draw from this generator */
  generator?: Generator;
}

function pickGenerator(options: RandomOptions): Generator {
  if (options.generator !== undefined) return options.generator;
  if (options.seed !== undefined) return new Generator(options.seed);
  return defaultGenerator;
}

/** float32 samples of the standard normal distribution. */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor<'float32'> {
  const generator = pickGenerator(options);
  const data = new Float32Array(numelOf(checkShape('shape', shape)));
  for (let i = 0; i < data.length; i++) data[i] = generator.nextNormal();
  return new Tensor(data, shape);
}

/** float32 samples uniform in [0, 1). */
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor<'float32'> {
  const generator = pickGenerator(options);
  const data = new Float32Array(numelOf(checkShape('shape', shape)));
  for (let i = 0; i < data.length; i++) data[i] = generator.nextFloat();
  return new Tensor(data, shape);
}

/**
 * The basic modules: Linear, LayerNorm, Dropout, Embedding and the sinusoidal
 * PositionalEncoding of PyTorch's word_language_model example.
 */
import { dtypeError, invalidType, invalidValue, shapeError } from '../errors';
import { numelOf, Tensor } from '../tensor';
import { checkBoolean, checkDropout, checkFloatTensor, checkNumber, checkPositiveInteger, checkTensor, shapeString } from './checks';
import { describeInput, ForwardOptions, ForwardRunner, Graph, PreparedForward, Value } from './graph';
import { LinearWeightRows, nativeParameter, packedLinearWeight } from './handles';
import { filled, lazy, normal, uniform } from './init';
import { LazyTensor, Module } from './module';
import type { ActivationName } from '../../binding';

export interface LinearOptions {
  bias?: boolean;
}

/** y = x · weightᵀ + bias, weight [outFeatures, inFeatures] (torch.nn.Linear). */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly runner = new ForwardRunner();

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    this.inFeatures = checkPositiveInteger('inFeatures', inFeatures);
    this.outFeatures = checkPositiveInteger('outFeatures', outFeatures);
    const bound = 1 / Math.sqrt(inFeatures);
    this.registerParameter('weight', lazy([outFeatures, inFeatures], (g) => uniform([outFeatures, inFeatures], bound, g)));
    this.registerParameter('bias', checkBoolean('options.bias', options.bias, true) ? lazy([outFeatures], (g) => uniform([outFeatures], bound, g)) : null);
  }

  get weight(): Tensor {
    return this.parameter('weight')!;
  }

  get bias(): Tensor | null {
    return this.parameter('bias');
  }

  protected override linearWeightRows(): LinearWeightRows[] {
    const weight = this.loadedParameter('weight');
    return weight === null ? [] : [{ weight, first: 0, rows: this.outFeatures }];
  }

  /** Adds this layer to a graph: x [rows, inFeatures] -> [rows, outFeatures]. */
  emit(graph: Graph, x: Value, activation: ActivationName = 'none'): Value {
    const bias = this.bias;
    const weight = packedLinearWeight({ weight: this.weight, first: 0, rows: this.outFeatures });
    return graph.linear(x, weight, bias === null ? null : nativeParameter(bias), activation);
  }

  private check(input: unknown): Tensor {
    const x = checkFloatTensor('input', input);
    const k = x.ndim === 0 ? 0 : x.shape[x.ndim - 1];
    if (x.ndim === 0 || k !== this.inFeatures) {
      const rows = x.ndim <= 1 ? 1 : numelOf(x.shape.slice(0, -1));
      throw shapeError(`mat1 and mat2 shapes cannot be multiplied (${rows}x${k} and ${this.inFeatures}x${this.outFeatures})`);
    }
    return x;
  }

  private prepare(input: unknown): PreparedForward {
    const x = this.check(input);
    const shape = [...x.shape.slice(0, -1), this.outFeatures];
    return { signature: describeInput(x), inputs: [x], build: (g, [v]) => [{ value: this.emit(g, v), shape }] };
  }

  forwardSync(input: Tensor): Tensor {
    return this.runner.runSync(this.prepare(input), false)[0];
  }

  async forward(input: Tensor, options: ForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(input), false, options.signal))[0];
  }

  clone(): Linear {
    return this.copyStateInto(new Linear(this.inFeatures, this.outFeatures, { bias: this.bias !== null }));
  }
}

export interface LayerNormOptions {
  eps?: number;
  elementwiseAffine?: boolean;
  bias?: boolean;
}

/** Layer normalisation over the trailing normalizedShape dims, biased variance (torch.nn.LayerNorm). */
export class LayerNorm extends Module {
  readonly normalizedShape: readonly number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  private readonly runner = new ForwardRunner();

  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    if (!Array.isArray(shape) || shape.length === 0) throw invalidType('normalizedShape', 'a positive integer or a non-empty array of them', normalizedShape);
    shape.forEach((size, i) => checkPositiveInteger(`normalizedShape[${i}]`, size));
    this.normalizedShape = Object.freeze([...shape]);
    this.eps = checkNumber('options.eps', options.eps, 1e-5);
    this.elementwiseAffine = checkBoolean('options.elementwiseAffine', options.elementwiseAffine, true);
    const bias = checkBoolean('options.bias', options.bias, true);
    this.registerParameter('weight', this.elementwiseAffine ? filled(shape, 1) : null);
    this.registerParameter('bias', this.elementwiseAffine && bias ? filled(shape, 0) : null);
  }

  get weight(): Tensor | null {
    return this.parameter('weight');
  }

  get bias(): Tensor | null {
    return this.parameter('bias');
  }

  /** Adds this layer to a graph: x [rows, n] -> [rows, n], n = prod(normalizedShape). */
  emit(graph: Graph, x: Value): Value {
    const weight = this.weight, bias = this.bias;
    return graph.layerNorm(x, numelOf(this.normalizedShape), this.eps,
      weight === null ? null : nativeParameter(weight), bias === null ? null : nativeParameter(bias));
  }

  private check(input: unknown): Tensor {
    const x = checkFloatTensor('input', input);
    const n = this.normalizedShape;
    const tail = x.shape.slice(x.ndim - n.length);
    if (x.ndim < n.length || tail.some((size, i) => size !== n[i])) {
      throw shapeError(`Given normalized_shape=${shapeString(n)}, expected input with shape [*, ${n.join(', ')}], but got input of size${shapeString(x.shape)}`);
    }
    return x;
  }

  private prepare(input: unknown): PreparedForward {
    const x = this.check(input);
    return { signature: describeInput(x), inputs: [x], build: (g, [v]) => [{ value: this.emit(g, v), shape: x.shape }] };
  }

  forwardSync(input: Tensor): Tensor {
    return this.runner.runSync(this.prepare(input), false)[0];
  }

  async forward(input: Tensor, options: ForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(input), false, options.signal))[0];
  }

  clone(): LayerNorm {
    return this.copyStateInto(new LayerNorm(this.normalizedShape, {
      eps: this.eps, elementwiseAffine: this.elementwiseAffine, bias: this.bias !== null,
    }));
  }
}

/** torch.nn.Dropout in eval mode: the identity. p is checked and kept. */
export class Dropout extends Module {
  readonly p: number;

  constructor(p = 0.5) {
    super();
    this.p = checkDropout('p', p);
  }

  forwardSync(input: Tensor): Tensor {
    return checkTensor('input', input);
  }

  async forward(input: Tensor): Promise<Tensor> {
    return this.forwardSync(input);
  }

  clone(): Dropout {
    return new Dropout(this.p);
  }
}

export interface EmbeddingOptions {
  paddingIdx?: number | null;
}

/** A lookup table [numEmbeddings, embeddingDim] indexed by int32 or int64 tensors (torch.nn.Embedding). */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | null;
  private readonly runner = new ForwardRunner();

  constructor(numEmbeddings: number, embeddingDim: number, options: EmbeddingOptions = {}) {
    super();
    this.numEmbeddings = checkPositiveInteger('numEmbeddings', numEmbeddings);
    this.embeddingDim = checkPositiveInteger('embeddingDim', embeddingDim);
    let paddingIdx = options.paddingIdx ?? null;
    if (paddingIdx !== null) {
      if (!Number.isInteger(paddingIdx)) throw invalidType('options.paddingIdx', 'an integer', paddingIdx);
      if (paddingIdx >= numEmbeddings || paddingIdx < -numEmbeddings) {
        throw invalidValue('options.paddingIdx', 'an index within num_embeddings (Padding_idx must be within num_embeddings)', paddingIdx);
      }
      if (paddingIdx < 0) paddingIdx += numEmbeddings;
    }
    this.paddingIdx = paddingIdx;
    this.registerParameter('weight', lazy([numEmbeddings, embeddingDim], (g) => {
      const weight = normal([numEmbeddings, embeddingDim], g);
      if (paddingIdx !== null) weight.data.fill(0, paddingIdx * embeddingDim, (paddingIdx + 1) * embeddingDim);
      return weight;
    }));
  }

  get weight(): Tensor {
    return this.parameter('weight')!;
  }

  private check(input: unknown): Tensor {
    const indices = checkTensor('input', input);
    if (indices.dtype !== 'int32' && indices.dtype !== 'int64') {
      throw dtypeError(`Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got ${indices.dtype} instead (while checking arguments for embedding)`);
    }
    return indices;
  }

  private prepare(input: unknown): PreparedForward {
    const indices = this.check(input);
    const shape = [...indices.shape, this.embeddingDim];
    return {
      signature: describeInput(indices), inputs: [indices],
      build: (g, [v]) => [{ value: g.embedding(v, this.numEmbeddings, this.embeddingDim, nativeParameter(this.weight)), shape }],
    };
  }

  forwardSync(input: Tensor): Tensor {
    return this.runner.runSync(this.prepare(input), false)[0];
  }

  async forward(input: Tensor, options: ForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(input), false, options.signal))[0];
  }

  clone(): Embedding {
    return this.copyStateInto(new Embedding(this.numEmbeddings, this.embeddingDim, { paddingIdx: this.paddingIdx }));
  }
}

export interface PositionalEncodingOptions {
  dropout?: number;
  maxLen?: number;
}

/**
 * The sinusoidal encoding of "Attention Is All You Need", as PyTorch's
 * word_language_model example writes it: buffer `pe` [maxLen, 1, dModel] with
 * pe[p, 0, 2i] = sin(p · w_i), pe[p, 0, 2i+1] = cos(p · w_i),
 * w_i = exp(2i · -ln(10000) / dModel); forward(x [L, N, dModel]) = x + pe[:L].
 */
export class PositionalEncoding extends Module {
  readonly dModel: number;
  readonly maxLen: number;
  readonly dropout: Dropout;
  private readonly runner = new ForwardRunner();

  constructor(dModel: number, options: PositionalEncodingOptions = {}) {
    super();
    this.dModel = checkPositiveInteger('dModel', dModel);
    this.maxLen = checkPositiveInteger('options.maxLen', options.maxLen ?? 5000);
    this.dropout = this.registerModule('dropout', new Dropout(checkDropout('options.dropout', options.dropout)));
    const maxLen = this.maxLen;
    this.registerBuffer('pe', new LazyTensor([maxLen, 1, dModel], () => {
      // Computed with float32 rounding at each step, as PyTorch does it in float32.
      const f = Math.fround;
      const pe = new Float32Array(maxLen * dModel);
      const scale = f(-Math.log(10000) / dModel);
      for (let i = 0; 2 * i < dModel; i++) {
        const frequency = f(Math.exp(f(2 * i * scale)));
        for (let position = 0; position < maxLen; position++) {
          const angle = f(position * frequency);
          pe[position * dModel + 2 * i] = Math.sin(angle);
          if (2 * i + 1 < dModel) pe[position * dModel + 2 * i + 1] = Math.cos(angle);
        }
      }
      return new Tensor(pe, [maxLen, 1, dModel]);
    }));
  }

  get pe(): Tensor {
    return this.buffer('pe')!;
  }

  private prepare(input: unknown): PreparedForward {
    const x = checkFloatTensor('x', input);
    if (x.ndim !== 3 || x.shape[2] !== this.dModel) {
      throw shapeError(`Expected x of shape [seq_len, batch, ${this.dModel}] but got ${shapeString(x.shape)}`);
    }
    const [seqLen, batch] = x.shape;
    if (seqLen > this.maxLen) {
      throw shapeError(`The size of tensor a (${seqLen}) must match the size of tensor b (${this.maxLen}) at non-singleton dimension 0`);
    }
    const pe = new Tensor((this.pe.data as Float32Array).subarray(0, seqLen * this.dModel), [seqLen, 1, this.dModel]);
    const build = (g: Graph, [xv, pv]: Value[]) => [{ value: g.add(xv, pv, seqLen, batch, this.dModel), shape: x.shape }];
    return { signature: describeInput(x), inputs: [x, pe], build };
  }

  forwardSync(x: Tensor): Tensor {
    return this.runner.runSync(this.prepare(x), false)[0];
  }

  async forward(x: Tensor, options: ForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(x), false, options.signal))[0];
  }

  clone(): PositionalEncoding {
    return this.copyStateInto(new PositionalEncoding(this.dModel, { dropout: this.dropout.p, maxLen: this.maxLen }));
  }
}

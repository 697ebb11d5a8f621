/**
 * torch.nn.MultiheadAttention, PyTorch's math path
 * (F.multi_head_attention_forward): in-projection, optional bias_k / bias_v
 * and zero-attention rows, scaled dot-product attention per head with
 * additive masks, out-projection. One native plan per call signature.
 */
import { dtypeError, shapeError, valueError } from '../errors';
import { Tensor } from '../tensor';
import { checkBoolean, checkDropout, checkFloatTensor, checkPositiveInteger, checkTensor, shapeString } from './checks';
import { describeInput, ForwardOptions, ForwardRunner, Graph, PreparedForward, ShapedValue, Value } from './graph';
import { LinearWeightRows, nativeParameter, packedLinearWeight } from './handles';
import { filled, lazy, xavierUniform } from './init';
import { Linear, LinearOptions } from './basic';
import { Module } from './module';

export interface MultiheadAttentionOptions {
  dropout?: number;
  bias?: boolean;
  addBiasKv?: boolean;
  addZeroAttn?: boolean;
  kdim?: number | null;
  vdim?: number | null;
  batchFirst?: boolean;
}

export interface MultiheadAttentionForwardOptions extends ForwardOptions {
  keyPaddingMask?: Tensor | null;
  needWeights?: boolean;
  attnMask?: Tensor | null;
  averageAttnWeights?: boolean;
  isCausal?: boolean;
}

/** How the rows of a [rows, features] value are laid out: batch-first [N, T] or sequence-first [T, N]. */
export interface SequenceLayout {
  batch: number;
  batchFirst: boolean;
}

/** A mask in the graph, already additive (0 / -inf or the user's floats). */
export interface MaskValue {
  value: Value;
  /** attn_mask only: [batch * heads, L, S] rather than [L, S] */
  perHead: boolean;
  /** attn_mask only: the caller's is_causal hint came with it */
  isCausal?: boolean;
}

/** Turns a bool or float mask input into an additive float mask value. */
export function additiveMask(graph: Graph, value: Value, dtype: Tensor['dtype']): Value {
  return dtype === 'bool' ? graph.additiveMask(value) : value;
}

/** PyTorch's _canonical_mask dtype rule. */
export function checkMaskDType(name: string, mask: Tensor | null | undefined): void {
  if (mask && mask.dtype !== 'bool' && mask.dtype !== 'float32') {
    throw dtypeError(`only bool and floating types of ${name} are supported`);
  }
}

function strides(layout: SequenceLayout, length: number, width: number) {
  return layout.batchFirst ? { batchStride: length * width, seqStride: width } : { batchStride: width, seqStride: layout.batch * width };
}

/**
 * MultiheadAttention's out_proj: a Linear whose bias starts at zero (PyTorch's
 * _reset_parameters: constant_(out_proj.bias, 0.)), PyTorch's class name kept
 * for loadStateDict's messages. Linear's constructor still draws the bias
 * seed, so the seeds of every later parameter stay the same.
 */
class NonDynamicallyQuantizableLinear extends Linear {
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions) {
    super(inFeatures, outFeatures, options);
    if (this.hasParameter('bias')) this.registerParameter('bias', filled([outFeatures], 0));
  }
}

export class MultiheadAttention extends Module {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly headDim: number;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly addZeroAttn: boolean;
  readonly outProj: Linear;
  private readonly hasBias: boolean;
  private readonly runner = new ForwardRunner();

  constructor(embedDim: number, numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    this.embedDim = checkPositiveInteger('embedDim', embedDim);
    this.numHeads = checkPositiveInteger('numHeads', numHeads);
    this.kdim = options.kdim == null ? embedDim : checkPositiveInteger('options.kdim', options.kdim);
    this.vdim = options.vdim == null ? embedDim : checkPositiveInteger('options.vdim', options.vdim);
    this.batchFirst = checkBoolean('options.batchFirst', options.batchFirst, false);
    this.dropout = checkDropout('options.dropout', options.dropout ?? 0);
    this.addZeroAttn = checkBoolean('options.addZeroAttn', options.addZeroAttn, false);
    this.hasBias = checkBoolean('options.bias', options.bias, true);
    const addBiasKv = checkBoolean('options.addBiasKv', options.addBiasKv, false);
    this.headDim = Math.floor(embedDim / numHeads);
    if (this.headDim * numHeads !== embedDim) throw valueError('embed_dim must be divisible by num_heads');

    if (this.qkvSameEmbedDim) {
      this.registerParameter('in_proj_weight', lazy([3 * embedDim, embedDim], (g) => xavierUniform([3 * embedDim, embedDim], g)));
    } else {
      this.registerParameter('q_proj_weight', lazy([embedDim, embedDim], (g) => xavierUniform([embedDim, embedDim], g)));
      this.registerParameter('k_proj_weight', lazy([embedDim, this.kdim], (g) => xavierUniform([embedDim, this.kdim], g)));
      this.registerParameter('v_proj_weight', lazy([embedDim, this.vdim], (g) => xavierUniform([embedDim, this.vdim], g)));
    }
    this.registerParameter('in_proj_bias', this.hasBias ? filled([3 * embedDim], 0) : null);
    this.outProj = this.registerModule('out_proj', new NonDynamicallyQuantizableLinear(embedDim, embedDim, { bias: this.hasBias }));
    const biasKv = () => lazy([1, 1, embedDim], (g) => xavierUniform([1, embedDim], g).reshape([1, 1, embedDim]));
    this.registerParameter('bias_k', addBiasKv ? biasKv() : null);
    this.registerParameter('bias_v', addBiasKv ? biasKv() : null);
  }

  /** PyTorch's _qkv_same_embed_dim: one packed in_proj_weight instead of three. */
  get qkvSameEmbedDim(): boolean {
    return this.kdim === this.embedDim && this.vdim === this.embedDim;
  }

  /**
   * The weight rows projecting q (0), k (1) or v (2): a third of
   * in_proj_weight [3E, E], or q/k/v_proj_weight [E, E / kdim / vdim]; null
   * when `read` finds no tensor.
   */
  private projectionRows(which: 0 | 1 | 2, read: (name: string) => Tensor | null): LinearWeightRows | null {
    const E = this.embedDim;
    const weight = read(this.qkvSameEmbedDim ? 'in_proj_weight' : ['q_proj_weight', 'k_proj_weight', 'v_proj_weight'][which]);
    return weight === null ? null : { weight, first: this.qkvSameEmbedDim ? which * E : 0, rows: E };
  }

  /**
   * What loadStateDict packs of in_proj_weight: all of it as one matrix for
   * self-attention (one GEMM projects q, k and v), or a matrix per projection
   * for cross-attention (q from one input, k and v from another). Standalone
   * modules assume self-attention; TransformerDecoderLayer marks its
   * multihead_attn. Either way a forward packs what it lacks on first use.
   * @internal
   */
  inProjectionUse: 'self' | 'cross' = 'self';

  /** in_proj_weight whole, [3E, E]: the B operand of the fused q/k/v projection. */
  private fusedProjectionRows(read: (name: string) => Tensor | null): LinearWeightRows | null {
    const weight = this.qkvSameEmbedDim ? read('in_proj_weight') : null;
    return weight === null ? null : { weight, first: 0, rows: 3 * this.embedDim };
  }

  protected override linearWeightRows(): LinearWeightRows[] {
    if (this.inProjectionUse === 'self') {
      const fused = this.fusedProjectionRows((name) => this.loadedParameter(name));
      if (fused !== null) return [fused];
    }
    return ([0, 1, 2] as const).map((which) => this.projectionRows(which, (name) => this.loadedParameter(name)))
      .filter((rows): rows is LinearWeightRows => rows !== null);
  }

  /** Projection weight and bias of q (0), k (1) or v (2). */
  private projection(which: 0 | 1 | 2) {
    const E = this.embedDim;
    const weight = packedLinearWeight(this.projectionRows(which, (name) => this.parameter(name))!);
    const bias = this.parameter('in_proj_bias');
    return { weight, bias: bias === null ? null : nativeParameter(bias, which * E, E) };
  }

  /**
   * Adds attention to a graph. query [L rows per batch, embedDim], key
   * [S, kdim], value [S, vdim], rows laid out by `layout`; masks additive.
   * Returns the output [L rows, embedDim] in the same layout and, if asked,
   * the weights [N, H, L, S] or averaged [N, L, S].
   */
  emit(graph: Graph, query: Value, key: Value, value: Value, layout: SequenceLayout, tgtLen: number, srcLen: number,
    attnMask: MaskValue | null, keyPaddingMask: Value | null, needWeights: boolean, averageWeights: boolean): { output: Value; weights: Value | null } {
    const E = this.embedDim, N = layout.batch, H = this.numHeads;
    const project = (x: Value, which: 0 | 1 | 2) => {
      const { weight, bias } = this.projection(which);
      return graph.linear(x, weight, bias);
    };
    // Self-attention projects q, k and v in one GEMM by the whole in_proj_weight,
    // as PyTorch's _in_projection_packed does: one pass over the input and one
    // parallel region instead of three. The attention step then reads q, k
    // and v as column ranges of that [rows, 3E] value. Extra key rows
    // (bias_k, add_zero_attn) need k and v apart.
    const fusedRows = query === key && key === value && this.parameter('bias_k') === null && !this.addZeroAttn
      ? this.fusedProjectionRows((name) => this.parameter(name)) : null;
    const fused = fusedRows !== null;
    let q: Value, k: Value, v: Value;
    if (fused) {
      const bias = this.parameter('in_proj_bias');
      q = k = v = graph.linear(query, packedLinearWeight(fusedRows), bias === null ? null : nativeParameter(bias));
    } else {
      q = project(query, 0);
      k = project(key, 1);
      v = project(value, 2);
    }
    const width = fused ? 3 * E : E;
    let S = srcLen;
    // PyTorch's is_causal route (F.multi_head_attention_forward): with the
    // hint, no key padding mask and no weights wanted, the mask is dropped and
    // attention runs with is_causal=True (key j hidden from query i > j); the
    // native driver then skips the key tiles above the diagonal.
    const causal = attnMask?.isCausal === true && keyPaddingMask === null && !needWeights;
    let mask = causal ? null : attnMask?.value ?? null;
    let padding = keyPaddingMask;
    const maskRows = attnMask === null ? 0 : attnMask.perHead ? N * H * tgtLen : tgtLen;
    // Extra key/value rows (bias_k / bias_v, then a zero row), each unmasked.
    const appendKeys = (rowK: Tensor | null, rowV: Tensor | null) => {
      const outer = layout.batchFirst ? N : 1, width = layout.batchFirst ? E : N * E;
      k = graph.appendRow(k, outer, S, width, rowK === null ? null : nativeParameter(rowK));
      v = graph.appendRow(v, outer, S, width, rowV === null ? null : nativeParameter(rowV));
      if (mask !== null) mask = graph.padColumn(mask, maskRows, S);
      if (padding !== null) padding = graph.padColumn(padding, N, S);
      S += 1;
    };
    const biasK = this.parameter('bias_k');
    if (biasK !== null) appendKeys(biasK, this.parameter('bias_v'));
    if (this.addZeroAttn) appendKeys(null, null);

    const { output, weights } = graph.attention({
      kind: 'attention', batch: N, heads: H, tgtLen, srcLen: S, headDim: this.headDim, vHeadDim: this.headDim,
      q: { ...strides(layout, tgtLen, width), offset: 0 },
      k: { ...strides(layout, S, width), offset: fused ? E : 0 },
      v: { ...strides(layout, S, width), offset: fused ? 2 * E : 0 },
      outBatchStride: strides(layout, tgtLen, E).batchStride, outSeqStride: strides(layout, tgtLen, E).seqStride,
      scale: 1 / Math.sqrt(this.headDim), attnMaskPerHead: attnMask?.perHead ?? false, causal,
    }, q, k, v, mask, padding, N * tgtLen * E, needWeights);
    const out = this.outProj.emit(graph, output);
    if (weights === null || !averageWeights) return { output: out, weights };
    return { output: out, weights: graph.averageHeads(weights, N, H, tgtLen * S) };
  }

  /**
   * Checks a call as F.multi_head_attention_forward does and returns its
   * geometry (the layers check through it too, with their mask names). Shapes: batched query [N, L, E] (batchFirst) or [L, N, E],
   * key/value [.., S, kdim/vdim]; unbatched query [L, E].
   */
  checkCall(query: unknown, key: unknown, value: unknown, options: MultiheadAttentionForwardOptions,
    names = { attnMask: 'attn_mask', keyPaddingMask: 'key_padding_mask' }) {
    const q = checkFloatTensor('query', query);
    const k = checkFloatTensor('key', key);
    const v = checkFloatTensor('value', value);
    const kpm = options.keyPaddingMask == null ? null : checkTensor('keyPaddingMask', options.keyPaddingMask);
    const mask = options.attnMask == null ? null : checkTensor('attnMask', options.attnMask);
    checkMaskDType(names.keyPaddingMask, kpm);
    checkMaskDType(names.attnMask, mask);
    const H = this.numHeads;
    if (q.ndim === 3) {
      if (k.ndim !== 3 || v.ndim !== 3) throw shapeError(`For batched (3-D) \`query\`, expected \`key\` and \`value\` to be 3-D but found ${k.ndim}-D and ${v.ndim}-D tensors respectively`);
      if (kpm && kpm.ndim !== 2) throw shapeError(`For batched (3-D) \`query\`, expected \`key_padding_mask\` to be \`None\` or 2-D but found ${kpm.ndim}-D tensor instead`);
      if (mask && mask.ndim !== 2 && mask.ndim !== 3) throw shapeError(`For batched (3-D) \`query\`, expected \`attn_mask\` to be \`None\`, 2-D or 3-D but found ${mask.ndim}-D tensor instead`);
    } else if (q.ndim === 2) {
      if (k.ndim !== 2 || v.ndim !== 2) throw shapeError(`For unbatched (2-D) \`query\`, expected \`key\` and \`value\` to be 2-D but found ${k.ndim}-D and ${v.ndim}-D tensors respectively`);
      if (kpm && kpm.ndim !== 1) throw shapeError(`For unbatched (2-D) \`query\`, expected \`key_padding_mask\` to be \`None\` or 1-D but found ${kpm.ndim}-D tensor instead`);
      if (mask && mask.ndim !== 2 && mask.ndim !== 3) throw shapeError(`For unbatched (2-D) \`query\`, expected \`attn_mask\` to be \`None\`, 2-D or 3-D but found ${mask.ndim}-D tensor instead`);
      if (mask && mask.ndim === 3 && shapeString(mask.shape) !== shapeString([H, q.shape[0], k.shape[0]])) {
        throw shapeError(`Expected \`attn_mask\` shape to be ${shapeString([H, q.shape[0], k.shape[0]])} but got ${shapeString(mask.shape)}`);
      }
    } else {
      throw shapeError(`query should be unbatched 2D or batched 3D tensor but received ${q.ndim}-D query tensor`);
    }
    const batched = q.ndim === 3;
    const batchFirst = batched && this.batchFirst;
    // (length, batch) of each sequence tensor.
    const dims = (t: Tensor) => (!batched ? [t.shape[0], 1] : batchFirst ? [t.shape[1], t.shape[0]] : [t.shape[0], t.shape[1]]);
    const [L, N] = dims(q);
    const [S, keyBatch] = dims(k);
    const [valueLength, valueBatch] = dims(v);
    const E = q.shape[q.ndim - 1];
    if (E !== this.embedDim) throw shapeError(`was expecting embedding dimension of ${this.embedDim}, but got ${E}`);
    if (this.qkvSameEmbedDim) {
      if (shapeString(k.shape) !== shapeString(v.shape)) throw shapeError(`key shape ${shapeString(k.shape)} does not match value shape ${shapeString(v.shape)}`);
    } else if (S !== valueLength || keyBatch !== valueBatch) {
      throw shapeError(`key's sequence and batch dims ${shapeString([S, keyBatch])} do not match value's ${shapeString([valueLength, valueBatch])}`);
    }
    if (keyBatch !== N) throw shapeError(`key's batch size ${keyBatch} does not match query's ${N}`);
    if (k.shape[k.ndim - 1] !== this.kdim) throw shapeError(`mat1 and mat2 shapes cannot be multiplied (${S * N}x${k.shape[k.ndim - 1]} and ${this.kdim}x${this.embedDim})`);
    if (v.shape[v.ndim - 1] !== this.vdim) throw shapeError(`mat1 and mat2 shapes cannot be multiplied (${S * N}x${v.shape[v.ndim - 1]} and ${this.vdim}x${this.embedDim})`);
    if (mask) {
      if (mask.ndim === 2 && shapeString(mask.shape) !== shapeString([L, S])) {
        throw shapeError(`The shape of the 2D attn_mask is ${shapeString(mask.shape)}, but should be ${shapeString([L, S])}.`);
      }
      if (mask.ndim === 3 && shapeString(mask.shape) !== shapeString([N * H, L, S])) {
        throw shapeError(`The shape of the 3D attn_mask is ${shapeString(mask.shape)}, but should be ${shapeString([N * H, L, S])}.`);
      }
    }
    if (kpm && kpm.numel !== N * S) {
      throw shapeError(`expecting key_padding_mask shape of ${shapeString([N, S])}, but got ${shapeString(kpm.shape)}`);
    }
    if (checkBoolean('options.isCausal', options.isCausal, false) && !mask) {
      throw shapeError('Need attn_mask if specifying the is_causal hint. You may use the Transformer module method `generate_square_subsequent_mask` to create this mask.');
    }
    return { q, k, v, kpm, mask, batched, batchFirst, L, N, S, E };
  }

  private prepare(query: Tensor, key: Tensor, value: Tensor, options: MultiheadAttentionForwardOptions): PreparedForward {
    const c = this.checkCall(query, key, value, options);
    const needWeights = checkBoolean('options.needWeights', options.needWeights, true);
    const average = checkBoolean('options.averageAttnWeights', options.averageAttnWeights, true);
    const inputs = [c.q, c.k, c.v, ...(c.mask ? [c.mask] : []), ...(c.kpm ? [c.kpm] : [])];
    const isCausal = options.isCausal === true;
    // One tensor given as query, key and value is self-attention: one fused projection.
    const selfAttention = c.k === c.q && c.v === c.q;
    const signature = [c.q, c.k, c.v, c.mask, c.kpm].map(describeInput).join('|') + `|${needWeights}|${average}|${isCausal}|${selfAttention}`;
    const layout: SequenceLayout = { batch: c.N, batchFirst: !c.batched || c.batchFirst };
    const build = (g: Graph, values: Value[]): ShapedValue[] => {
      const [qv, kv, vv] = selfAttention ? [values[0], values[0], values[0]] : values;
      let next = 3;
      const mask = c.mask ? { value: additiveMask(g, values[next++], c.mask.dtype), perHead: c.mask.ndim === 3, isCausal } : null;
      const kpm = c.kpm ? additiveMask(g, values[next++], c.kpm.dtype) : null;
      const { output, weights } = this.emit(g, qv, kv, vv, layout, c.L, c.S, mask, kpm, needWeights, average);
      const outputs: ShapedValue[] = [{ value: output, shape: c.q.shape }];
      if (weights !== null) {
        const S = c.S + (this.hasParameter('bias_k') ? 1 : 0) + (this.addZeroAttn ? 1 : 0);
        const perHead = [this.numHeads, c.L, S];
        const shape = average ? [c.L, S] : perHead;
        outputs.push({ value: weights, shape: c.batched ? [c.N, ...shape] : shape });
      }
      return outputs;
    };
    return { signature, inputs, build };
  }

  /** Returns [attnOutput, attnWeights | null], shapes as PyTorch's. */
  forwardSync(query: Tensor, key: Tensor, value: Tensor, options: MultiheadAttentionForwardOptions = {}): [Tensor, Tensor | null] {
    const [output, weights] = this.runner.runSync(this.prepare(query, key, value, options), false);
    return [output, weights ?? null];
  }

  async forward(query: Tensor, key: Tensor, value: Tensor, options: MultiheadAttentionForwardOptions = {}): Promise<[Tensor, Tensor | null]> {
    const [output, weights] = await this.runner.run(this.prepare(query, key, value, options), false, options.signal);
    return [output, weights ?? null];
  }

  clone(): MultiheadAttention {
    return this.copyStateInto(new MultiheadAttention(this.embedDim, this.numHeads, {
      dropout: this.dropout, bias: this.hasBias, addBiasKv: this.hasParameter('bias_k'), addZeroAttn: this.addZeroAttn,
      kdim: this.kdim, vdim: this.vdim, batchFirst: this.batchFirst,
    }));
  }
}

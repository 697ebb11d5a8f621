/**
 * The Transformer family, after PyTorch's torch/nn/modules/transformer.py
 * (math path, fast path off): TransformerEncoderLayer, TransformerEncoder,
 * TransformerDecoderLayer, TransformerDecoder and Transformer. A stack's
 * whole forward is one native plan; a JavaScript activation function makes
 * it run step by step instead (the slower eager path).
 */
import type { ActivationName } from '../../binding';
import { invalidType, shapeError, valueError } from '../errors';
import { Tensor } from '../tensor';
import { Dropout, LayerNorm, Linear } from './basic';
import { checkBoolean, checkDropout, checkFloatTensor, checkNumber, checkPositiveInteger } from './checks';
import { ModuleList } from './container';
import { describeInput, ForwardOptions, ForwardRunner, Graph, PreparedForward, ShapedValue, Value } from './graph';
import { additiveMask, MaskValue, MultiheadAttention, SequenceLayout } from './attention';
import { Module } from './module';

/** 'relu', 'gelu' (exact erf form), or a function applied in JavaScript. */
export type Activation = 'relu' | 'gelu' | ((input: Tensor) => Tensor);

export interface TransformerLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  activation?: Activation;
  layerNormEps?: number;
  batchFirst?: boolean;
  normFirst?: boolean;
  bias?: boolean;
}

function checkActivation(value: unknown): Activation {
  if (value === undefined) return 'relu';
  if (typeof value === 'function') return value as Activation;
  if (value === 'relu' || value === 'gelu') return value;
  if (typeof value === 'string') throw valueError(`activation should be relu/gelu, not ${value}`);
  throw invalidType('options.activation', "'relu', 'gelu' or a function", value);
}

/** Options shared by both layer kinds, resolved with PyTorch's defaults. */
class LayerConfig {
  readonly dModel: number;
  readonly nhead: number;
  readonly dimFeedforward: number;
  readonly dropout: number;
  readonly activation: Activation;
  readonly layerNormEps: number;
  readonly batchFirst: boolean;
  readonly normFirst: boolean;
  readonly bias: boolean;

  constructor(dModel: number, nhead: number, options: TransformerLayerOptions) {
    this.dModel = checkPositiveInteger('dModel', dModel);
    this.nhead = checkPositiveInteger('nhead', nhead);
    this.dimFeedforward = checkPositiveInteger('options.dimFeedforward', options.dimFeedforward ?? 2048);
    this.dropout = checkDropout('options.dropout', options.dropout);
    this.activation = checkActivation(options.activation);
    this.layerNormEps = checkNumber('options.layerNormEps', options.layerNormEps, 1e-5);
    this.batchFirst = checkBoolean('options.batchFirst', options.batchFirst, false);
    this.normFirst = checkBoolean('options.normFirst', options.normFirst, false);
    this.bias = checkBoolean('options.bias', options.bias, true);
  }

  options(): TransformerLayerOptions {
    const { dimFeedforward, dropout, activation, layerNormEps, batchFirst, normFirst, bias } = this;
    return { dimFeedforward, dropout, activation, layerNormEps, batchFirst, normFirst, bias };
  }
}

/** The feed-forward block: linear2(act(linear1(x))), the activation fused into linear1 unless it is a function. */
function feedForward(graph: Graph, x: Value, linear1: Linear, linear2: Linear, activation: Activation, rows: number): Value {
  const hidden = typeof activation === 'function'
    ? graph.custom(linear1.emit(graph, x), [rows, linear1.outFeatures], activation)
    : linear1.emit(graph, x, activation as ActivationName);
  return linear2.emit(graph, hidden);
}

/** Shapes of one forward's sequence input: batched [N, T, E] / [T, N, E], or unbatched [T, E]. */
function sequenceLayout(x: Tensor, batchFirst: boolean): { layout: SequenceLayout; length: number } {
  if (x.ndim === 2) return { layout: { batch: 1, batchFirst: true }, length: x.shape[0] };
  return batchFirst ? { layout: { batch: x.shape[0], batchFirst: true }, length: x.shape[1] }
    : { layout: { batch: x.shape[1], batchFirst: false }, length: x.shape[0] };
}

/** Optional mask tensors become graph inputs in this order; the builder reads them back the same way. */
class MaskInputs {
  readonly tensors: Tensor[] = [];
  private readonly present: (Tensor | null)[] = [];
  private readonly causalHints: boolean[] = [];

  /** isCausal: the is_causal hint given with an attention mask (see MultiheadAttention.emit). */
  add(mask: Tensor | null | undefined, isCausal?: boolean): this {
    this.present.push(mask ?? null);
    this.causalHints.push(isCausal === true);
    if (mask) this.tensors.push(mask);
    return this;
  }

  signature(): string {
    return this.present.map((mask, i) => describeInput(mask) + (this.causalHints[i] ? ':causal' : '')).join('|');
  }

  /** The additive mask values, in the order they were added (null where absent). */
  values(graph: Graph, values: Value[]): (MaskValue | null)[] {
    let next = 0;
    return this.present.map((mask, i) => mask === null ? null
      : { value: additiveMask(graph, values[next++], mask.dtype), perHead: mask.ndim === 3, isCausal: this.causalHints[i] });
  }
}

/** A layer or a stack that adds an encoder pass to a graph. */
interface EncoderPass {
  emit(graph: Graph, x: Value, layout: SequenceLayout, length: number, mask: MaskValue | null, keyPaddingMask: Value | null): Value;
}

/** The graph inputs and build of an encoder call on src (already checked). */
function prepareEncoder(pass: EncoderPass, batchFirst: boolean, src: Tensor, mask: Tensor | null | undefined,
  keyPaddingMask: Tensor | null | undefined, isCausal: boolean | undefined): PreparedForward {
  const masks = new MaskInputs().add(mask, isCausal).add(keyPaddingMask);
  const { layout, length } = sequenceLayout(src, batchFirst);
  const build = (g: Graph, [x, ...maskValues]: Value[]): ShapedValue[] => {
    const [maskValue, kpm] = masks.values(g, maskValues);
    return [{ value: pass.emit(g, x, layout, length, maskValue, kpm?.value ?? null), shape: src.shape }];
  };
  return { signature: `${describeInput(src)}|${masks.signature()}`, inputs: [src, ...masks.tensors], build };
}

export interface EncoderLayerForwardOptions extends ForwardOptions {
  srcMask?: Tensor | null;
  srcKeyPaddingMask?: Tensor | null;
  isCausal?: boolean;
}

export class TransformerEncoderLayer extends Module {
  readonly config: LayerConfig;
  readonly selfAttn: MultiheadAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  private readonly runner = new ForwardRunner();

  constructor(dModel: number, nhead: number, options: TransformerLayerOptions = {}) {
    super();
    const c = (this.config = new LayerConfig(dModel, nhead, options));
    this.selfAttn = this.registerModule('self_attn', new MultiheadAttention(c.dModel, c.nhead, { dropout: c.dropout, bias: c.bias, batchFirst: c.batchFirst }));
    this.linear1 = this.registerModule('linear1', new Linear(c.dModel, c.dimFeedforward, { bias: c.bias }));
    this.registerModule('dropout', new Dropout(c.dropout));
    this.linear2 = this.registerModule('linear2', new Linear(c.dimFeedforward, c.dModel, { bias: c.bias }));
    this.norm1 = this.registerModule('norm1', new LayerNorm(c.dModel, { eps: c.layerNormEps, bias: c.bias }));
    this.norm2 = this.registerModule('norm2', new LayerNorm(c.dModel, { eps: c.layerNormEps, bias: c.bias }));
    this.registerModule('dropout1', new Dropout(c.dropout));
    this.registerModule('dropout2', new Dropout(c.dropout));
  }

  get usesJavaScriptActivation(): boolean {
    return typeof this.config.activation === 'function';
  }

  /** Adds the layer to a graph; x holds `length` rows per batch in `layout`. */
  emit(graph: Graph, x: Value, layout: SequenceLayout, length: number, mask: MaskValue | null, keyPaddingMask: Value | null): Value {
    const rows = x.count / this.config.dModel;
    const sa = (y: Value) => this.selfAttn.emit(graph, y, y, y, layout, length, length, mask, keyPaddingMask, false, false).output;
    const ff = (y: Value) => feedForward(graph, y, this.linear1, this.linear2, this.config.activation, rows);
    if (this.config.normFirst) {
      x = graph.add(x, sa(this.norm1.emit(graph, x)));
      return graph.add(x, ff(this.norm2.emit(graph, x)));
    }
    x = this.norm1.emit(graph, graph.add(x, sa(x)));
    return this.norm2.emit(graph, graph.add(x, ff(x)));
  }

  /** Checks src and its masks through self_attn, with the layer's mask names. */
  check(src: unknown, mask: Tensor | null | undefined, keyPaddingMask: Tensor | null | undefined, isCausal: boolean | undefined) {
    checkFloatTensor('src', src);
    return this.selfAttn.checkCall(src, src, src, { attnMask: mask, keyPaddingMask, isCausal },
      { attnMask: 'src_mask', keyPaddingMask: 'src_key_padding_mask' });
  }

  private prepare(src: Tensor, options: EncoderLayerForwardOptions): PreparedForward {
    this.check(src, options.srcMask, options.srcKeyPaddingMask, options.isCausal);
    return prepareEncoder(this, this.config.batchFirst, src, options.srcMask, options.srcKeyPaddingMask, options.isCausal);
  }

  forwardSync(src: Tensor, options: EncoderLayerForwardOptions = {}): Tensor {
    return this.runner.runSync(this.prepare(src, options), this.usesJavaScriptActivation)[0];
  }

  async forward(src: Tensor, options: EncoderLayerForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(src, options), this.usesJavaScriptActivation, options.signal))[0];
  }

  clone(): TransformerEncoderLayer {
    return this.copyStateInto(new TransformerEncoderLayer(this.config.dModel, this.config.nhead, this.config.options()));
  }
}

export interface TransformerEncoderOptions {
  norm?: LayerNorm | null;
  /** accepted for PyTorch compatibility; simdformer has no nested tensors (padded positions are computed) */
  enableNestedTensor?: boolean;
  /** accepted for PyTorch compatibility; no effect */
  maskCheck?: boolean;
}

export interface EncoderForwardOptions extends ForwardOptions {
  mask?: Tensor | null;
  srcKeyPaddingMask?: Tensor | null;
  isCausal?: boolean;
}

export class TransformerEncoder extends Module {
  readonly layers: ModuleList<TransformerEncoderLayer>;
  readonly numLayers: number;
  readonly norm: LayerNorm | null;
  readonly enableNestedTensor: boolean;
  readonly maskCheck: boolean;
  private readonly runner = new ForwardRunner();

  /** Deep-copies `encoderLayer` numLayers times, as PyTorch does. */
  constructor(encoderLayer: TransformerEncoderLayer, numLayers: number, options: TransformerEncoderOptions = {}) {
    super();
    if (!(encoderLayer instanceof TransformerEncoderLayer)) throw invalidType('encoderLayer', 'a TransformerEncoderLayer', encoderLayer);
    this.numLayers = checkPositiveInteger('numLayers', numLayers);
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: numLayers }, () => encoderLayer.clone())));
    if (options.norm != null && !(options.norm instanceof LayerNorm)) throw invalidType('options.norm', 'a LayerNorm or null', options.norm);
    this.norm = this.registerModule('norm', options.norm ?? null);
    this.enableNestedTensor = checkBoolean('options.enableNestedTensor', options.enableNestedTensor, true);
    this.maskCheck = checkBoolean('options.maskCheck', options.maskCheck, true);
  }

  private get first(): TransformerEncoderLayer {
    return this.layers.at(0);
  }

  get usesJavaScriptActivation(): boolean {
    return [...this.layers].some((layer) => layer.usesJavaScriptActivation);
  }

  emit(graph: Graph, x: Value, layout: SequenceLayout, length: number, mask: MaskValue | null, keyPaddingMask: Value | null): Value {
    for (const layer of this.layers) x = layer.emit(graph, x, layout, length, mask, keyPaddingMask);
    return this.norm === null ? x : this.norm.emit(graph, x);
  }

  check(src: unknown, options: EncoderForwardOptions) {
    return this.first.check(src, options.mask, options.srcKeyPaddingMask, options.isCausal);
  }

  private prepare(src: Tensor, options: EncoderForwardOptions): PreparedForward {
    this.check(src, options);
    return prepareEncoder(this, this.first.config.batchFirst, src, options.mask, options.srcKeyPaddingMask, options.isCausal);
  }

  forwardSync(src: Tensor, options: EncoderForwardOptions = {}): Tensor {
    return this.runner.runSync(this.prepare(src, options), this.usesJavaScriptActivation)[0];
  }

  async forward(src: Tensor, options: EncoderForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(src, options), this.usesJavaScriptActivation, options.signal))[0];
  }

  clone(): TransformerEncoder {
    return this.copyStateInto(new TransformerEncoder(this.first, this.numLayers, {
      norm: this.norm?.clone() ?? null, enableNestedTensor: this.enableNestedTensor, maskCheck: this.maskCheck,
    }));
  }
}

export interface DecoderForwardOptions extends ForwardOptions {
  tgtMask?: Tensor | null;
  memoryMask?: Tensor | null;
  tgtKeyPaddingMask?: Tensor | null;
  memoryKeyPaddingMask?: Tensor | null;
  tgtIsCausal?: boolean;
  memoryIsCausal?: boolean;
}

/** The masks of a decoder call, as additive graph values. */
interface DecoderMasks {
  tgtMask: MaskValue | null;
  memoryMask: MaskValue | null;
  tgtKeyPaddingMask: Value | null;
  memoryKeyPaddingMask: Value | null;
}

function decoderMaskInputs(options: DecoderForwardOptions): MaskInputs {
  return new MaskInputs().add(options.tgtMask, options.tgtIsCausal).add(options.memoryMask, options.memoryIsCausal)
    .add(options.tgtKeyPaddingMask).add(options.memoryKeyPaddingMask);
}

function decoderMaskValues(masks: MaskInputs, graph: Graph, values: Value[]): DecoderMasks {
  const [tgtMask, memoryMask, tgtKpm, memoryKpm] = masks.values(graph, values);
  return { tgtMask, memoryMask, tgtKeyPaddingMask: tgtKpm?.value ?? null, memoryKeyPaddingMask: memoryKpm?.value ?? null };
}

/** A layer or a stack that adds a decoder pass to a graph. */
interface DecoderPass {
  emit(graph: Graph, x: Value, memory: Value, layout: SequenceLayout, tgtLength: number, memoryLength: number, masks: DecoderMasks): Value;
}

/** The graph inputs and build of a decoder call on tgt and memory (already checked). */
function prepareDecoder(pass: DecoderPass, batchFirst: boolean, tgt: Tensor, memory: Tensor, options: DecoderForwardOptions): PreparedForward {
  const masks = decoderMaskInputs(options);
  const { layout, length } = sequenceLayout(tgt, batchFirst);
  const memoryLength = sequenceLayout(memory, batchFirst).length;
  const build = (g: Graph, [x, m, ...maskValues]: Value[]): ShapedValue[] =>
    [{ value: pass.emit(g, x, m, layout, length, memoryLength, decoderMaskValues(masks, g, maskValues)), shape: tgt.shape }];
  return { signature: `${describeInput(tgt)}|${describeInput(memory)}|${masks.signature()}`, inputs: [tgt, memory, ...masks.tensors], build };
}

export class TransformerDecoderLayer extends Module {
  readonly config: LayerConfig;
  readonly selfAttn: MultiheadAttention;
  readonly multiheadAttn: MultiheadAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;
  private readonly runner = new ForwardRunner();

  constructor(dModel: number, nhead: number, options: TransformerLayerOptions = {}) {
    super();
    const c = (this.config = new LayerConfig(dModel, nhead, options));
    const attention = () => new MultiheadAttention(c.dModel, c.nhead, { dropout: c.dropout, bias: c.bias, batchFirst: c.batchFirst });
    this.selfAttn = this.registerModule('self_attn', attention());
    this.multiheadAttn = this.registerModule('multihead_attn', attention());
    this.multiheadAttn.inProjectionUse = 'cross';
    this.linear1 = this.registerModule('linear1', new Linear(c.dModel, c.dimFeedforward, { bias: c.bias }));
    this.registerModule('dropout', new Dropout(c.dropout));
    this.linear2 = this.registerModule('linear2', new Linear(c.dimFeedforward, c.dModel, { bias: c.bias }));
    const norm = () => new LayerNorm(c.dModel, { eps: c.layerNormEps, bias: c.bias });
    this.norm1 = this.registerModule('norm1', norm());
    this.norm2 = this.registerModule('norm2', norm());
    this.norm3 = this.registerModule('norm3', norm());
    this.registerModule('dropout1', new Dropout(c.dropout));
    this.registerModule('dropout2', new Dropout(c.dropout));
    this.registerModule('dropout3', new Dropout(c.dropout));
  }

  get usesJavaScriptActivation(): boolean {
    return typeof this.config.activation === 'function';
  }

  /** x: tgtLength rows per batch, memory: memoryLength rows per batch, both in `layout`. */
  emit(graph: Graph, x: Value, memory: Value, layout: SequenceLayout, tgtLength: number, memoryLength: number, masks: DecoderMasks): Value {
    const rows = x.count / this.config.dModel;
    const sa = (y: Value) => this.selfAttn.emit(graph, y, y, y, layout, tgtLength, tgtLength, masks.tgtMask, masks.tgtKeyPaddingMask, false, false).output;
    const mha = (y: Value) => this.multiheadAttn.emit(graph, y, memory, memory, layout, tgtLength, memoryLength, masks.memoryMask, masks.memoryKeyPaddingMask, false, false).output;
    const ff = (y: Value) => feedForward(graph, y, this.linear1, this.linear2, this.config.activation, rows);
    if (this.config.normFirst) {
      x = graph.add(x, sa(this.norm1.emit(graph, x)));
      x = graph.add(x, mha(this.norm2.emit(graph, x)));
      return graph.add(x, ff(this.norm3.emit(graph, x)));
    }
    x = this.norm1.emit(graph, graph.add(x, sa(x)));
    x = this.norm2.emit(graph, graph.add(x, mha(x)));
    return this.norm3.emit(graph, graph.add(x, ff(x)));
  }

  check(tgt: unknown, memory: unknown, options: DecoderForwardOptions) {
    checkFloatTensor('tgt', tgt);
    checkFloatTensor('memory', memory);
    this.selfAttn.checkCall(tgt, tgt, tgt, { attnMask: options.tgtMask, keyPaddingMask: options.tgtKeyPaddingMask, isCausal: options.tgtIsCausal },
      { attnMask: 'tgt_mask', keyPaddingMask: 'tgt_key_padding_mask' });
    this.multiheadAttn.checkCall(tgt, memory, memory, { attnMask: options.memoryMask, keyPaddingMask: options.memoryKeyPaddingMask, isCausal: options.memoryIsCausal },
      { attnMask: 'memory_mask', keyPaddingMask: 'memory_key_padding_mask' });
  }

  private prepare(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions): PreparedForward {
    this.check(tgt, memory, options);
    return prepareDecoder(this, this.config.batchFirst, tgt, memory, options);
  }

  forwardSync(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions = {}): Tensor {
    return this.runner.runSync(this.prepare(tgt, memory, options), this.usesJavaScriptActivation)[0];
  }

  async forward(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(tgt, memory, options), this.usesJavaScriptActivation, options.signal))[0];
  }

  clone(): TransformerDecoderLayer {
    return this.copyStateInto(new TransformerDecoderLayer(this.config.dModel, this.config.nhead, this.config.options()));
  }
}

export interface TransformerDecoderOptions {
  norm?: LayerNorm | null;
}

export class TransformerDecoder extends Module {
  readonly layers: ModuleList<TransformerDecoderLayer>;
  readonly numLayers: number;
  readonly norm: LayerNorm | null;
  private readonly runner = new ForwardRunner();

  constructor(decoderLayer: TransformerDecoderLayer, numLayers: number, options: TransformerDecoderOptions = {}) {
    super();
    if (!(decoderLayer instanceof TransformerDecoderLayer)) throw invalidType('decoderLayer', 'a TransformerDecoderLayer', decoderLayer);
    this.numLayers = checkPositiveInteger('numLayers', numLayers);
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: numLayers }, () => decoderLayer.clone())));
    if (options.norm != null && !(options.norm instanceof LayerNorm)) throw invalidType('options.norm', 'a LayerNorm or null', options.norm);
    this.norm = this.registerModule('norm', options.norm ?? null);
  }

  private get first(): TransformerDecoderLayer {
    return this.layers.at(0);
  }

  get usesJavaScriptActivation(): boolean {
    return [...this.layers].some((layer) => layer.usesJavaScriptActivation);
  }

  emit(graph: Graph, x: Value, memory: Value, layout: SequenceLayout, tgtLength: number, memoryLength: number, masks: DecoderMasks): Value {
    for (const layer of this.layers) x = layer.emit(graph, x, memory, layout, tgtLength, memoryLength, masks);
    return this.norm === null ? x : this.norm.emit(graph, x);
  }

  check(tgt: unknown, memory: unknown, options: DecoderForwardOptions) {
    this.first.check(tgt, memory, options);
  }

  private prepare(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions): PreparedForward {
    this.check(tgt, memory, options);
    return prepareDecoder(this, this.first.config.batchFirst, tgt, memory, options);
  }

  forwardSync(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions = {}): Tensor {
    return this.runner.runSync(this.prepare(tgt, memory, options), this.usesJavaScriptActivation)[0];
  }

  async forward(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(tgt, memory, options), this.usesJavaScriptActivation, options.signal))[0];
  }

  clone(): TransformerDecoder {
    return this.copyStateInto(new TransformerDecoder(this.first, this.numLayers, { norm: this.norm?.clone() ?? null }));
  }
}

export interface TransformerOptions extends TransformerLayerOptions {
  dModel?: number;
  nhead?: number;
  numEncoderLayers?: number;
  numDecoderLayers?: number;
  customEncoder?: TransformerEncoder | null;
  customDecoder?: TransformerDecoder | null;
}

export interface TransformerForwardOptions extends ForwardOptions {
  srcMask?: Tensor | null;
  tgtMask?: Tensor | null;
  memoryMask?: Tensor | null;
  srcKeyPaddingMask?: Tensor | null;
  tgtKeyPaddingMask?: Tensor | null;
  memoryKeyPaddingMask?: Tensor | null;
  srcIsCausal?: boolean;
  tgtIsCausal?: boolean;
  memoryIsCausal?: boolean;
}

export class Transformer extends Module {
  readonly encoder: TransformerEncoder;
  readonly decoder: TransformerDecoder;
  readonly dModel: number;
  readonly nhead: number;
  readonly batchFirst: boolean;
  private readonly options: TransformerOptions;
  private readonly runner = new ForwardRunner();

  constructor(options: TransformerOptions = {}) {
    super();
    this.options = { ...options };
    this.dModel = checkPositiveInteger('options.dModel', options.dModel ?? 512);
    this.nhead = checkPositiveInteger('options.nhead', options.nhead ?? 8);
    const layerOptions: TransformerLayerOptions = { ...options };
    const config = new LayerConfig(this.dModel, this.nhead, layerOptions);
    this.batchFirst = config.batchFirst;
    if (options.customEncoder != null && !(options.customEncoder instanceof TransformerEncoder)) {
      throw invalidType('options.customEncoder', 'a TransformerEncoder or null', options.customEncoder);
    }
    if (options.customDecoder != null && !(options.customDecoder instanceof TransformerDecoder)) {
      throw invalidType('options.customDecoder', 'a TransformerDecoder or null', options.customDecoder);
    }
    const norm = () => new LayerNorm(this.dModel, { eps: config.layerNormEps, bias: config.bias });
    this.encoder = this.registerModule('encoder', options.customEncoder ?? new TransformerEncoder(
      new TransformerEncoderLayer(this.dModel, this.nhead, layerOptions),
      checkPositiveInteger('options.numEncoderLayers', options.numEncoderLayers ?? 6), { norm: norm() }));
    this.decoder = this.registerModule('decoder', options.customDecoder ?? new TransformerDecoder(
      new TransformerDecoderLayer(this.dModel, this.nhead, layerOptions),
      checkPositiveInteger('options.numDecoderLayers', options.numDecoderLayers ?? 6), { norm: norm() }));
  }

  /** A float [sz, sz] mask with -inf above the diagonal and 0 elsewhere (PyTorch's causal mask). */
  static generateSquareSubsequentMask(sz: number): Tensor<'float32'> {
    checkPositiveInteger('sz', sz);
    const data = new Float32Array(sz * sz);
    for (let i = 0; i < sz; i++) data.fill(-Infinity, i * sz + i + 1, (i + 1) * sz);
    return new Tensor(data, [sz, sz]);
  }

  get usesJavaScriptActivation(): boolean {
    return this.encoder.usesJavaScriptActivation || this.decoder.usesJavaScriptActivation;
  }

  private prepare(src: Tensor, tgt: Tensor, options: TransformerForwardOptions) {
    checkFloatTensor('src', src);
    checkFloatTensor('tgt', tgt);
    const batched = src.ndim === 3;
    if (batched && tgt.ndim === 3) {
      const batchDim = this.batchFirst ? 0 : 1;
      if (src.shape[batchDim] !== tgt.shape[batchDim]) throw shapeError('the batch number of src and tgt must be equal');
    }
    if (src.shape[src.ndim - 1] !== this.dModel || tgt.shape[tgt.ndim - 1] !== this.dModel) {
      throw shapeError('the feature number of src and tgt must be equal to d_model');
    }
    this.encoder.check(src, { mask: options.srcMask, srcKeyPaddingMask: options.srcKeyPaddingMask, isCausal: options.srcIsCausal });
    const decoderOptions: DecoderForwardOptions = {
      tgtMask: options.tgtMask, memoryMask: options.memoryMask, tgtKeyPaddingMask: options.tgtKeyPaddingMask,
      memoryKeyPaddingMask: options.memoryKeyPaddingMask, tgtIsCausal: options.tgtIsCausal, memoryIsCausal: options.memoryIsCausal,
    };
    // memory has src's shape.
    this.decoder.check(tgt, src, decoderOptions);
    const srcMasks = new MaskInputs().add(options.srcMask, options.srcIsCausal).add(options.srcKeyPaddingMask);
    const tgtMasks = decoderMaskInputs(decoderOptions);
    const source = sequenceLayout(src, this.batchFirst);
    const target = sequenceLayout(tgt, this.batchFirst);
    const srcMaskCount = srcMasks.tensors.length;
    const build = (g: Graph, [s, t, ...maskValues]: Value[]): ShapedValue[] => {
      const [srcMask, srcKpm] = srcMasks.values(g, maskValues.slice(0, srcMaskCount));
      const memory = this.encoder.emit(g, s, source.layout, source.length, srcMask, srcKpm?.value ?? null);
      const masks = decoderMaskValues(tgtMasks, g, maskValues.slice(srcMaskCount));
      return [{ value: this.decoder.emit(g, t, memory, target.layout, target.length, source.length, masks), shape: tgt.shape }];
    };
    return {
      signature: `${describeInput(src)}|${describeInput(tgt)}|${srcMasks.signature()}|${tgtMasks.signature()}`,
      inputs: [src, tgt, ...srcMasks.tensors, ...tgtMasks.tensors], build,
    };
  }

  forwardSync(src: Tensor, tgt: Tensor, options: TransformerForwardOptions = {}): Tensor {
    return this.runner.runSync(this.prepare(src, tgt, options), this.usesJavaScriptActivation)[0];
  }

  async forward(src: Tensor, tgt: Tensor, options: TransformerForwardOptions = {}): Promise<Tensor> {
    return (await this.runner.run(this.prepare(src, tgt, options), this.usesJavaScriptActivation, options.signal))[0];
  }

  clone(): Transformer {
    return this.copyStateInto(new Transformer({ ...this.options, customEncoder: this.encoder.clone(), customDecoder: this.decoder.clone() }));
  }
}


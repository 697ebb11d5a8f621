/** simdformer.nn: PyTorch's torch.nn Transformer family, inference only. */
export { Module } from './module';
export type { LoadStateDictResult, StateDict } from './module';
export { Linear, LayerNorm, Dropout, Embedding, PositionalEncoding } from './basic';
export type { LinearOptions, LayerNormOptions, EmbeddingOptions, PositionalEncodingOptions } from './basic';
export { ModuleList } from './container';
export type { ForwardOptions } from './graph';
export { MultiheadAttention } from './attention';
export type { MultiheadAttentionOptions, MultiheadAttentionForwardOptions } from './attention';
export {
  TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer, TransformerDecoder, Transformer,
} from './transformer';
export type {
  Activation, TransformerLayerOptions, TransformerEncoderOptions, TransformerDecoderOptions, TransformerOptions,
  EncoderLayerForwardOptions, EncoderForwardOptions, DecoderForwardOptions, TransformerForwardOptions,
} from './transformer';

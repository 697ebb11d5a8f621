/**
 * Errors thrown by simdformer. One formula for every argument error, after
 * sharp: `Expected <what> for <argument> but received <value> of type <type>`,
 * or PyTorch's own wording where PyTorch has one (`mat1 and mat2 shapes cannot
 * be multiplied (2x7 and 8x16)`). TypeError for a wrong type or dtype,
 * RangeError for a wrong value or shape, and a `code` on every error.
 */

export type ErrorCode =
  | 'ERR_SIMDFORMER_INVALID_ARG_TYPE'
  | 'ERR_SIMDFORMER_OUT_OF_RANGE'
  | 'ERR_SIMDFORMER_SHAPE_MISMATCH'
  | 'ERR_SIMDFORMER_DTYPE_MISMATCH'
  | 'ERR_SIMDFORMER_UNSUPPORTED_ISA'
  | 'ERR_SIMDFORMER_NATIVE_LOAD'
  | 'ERR_SIMDFORMER_STATE_DICT'
  | 'ERR_SIMDFORMER_INVALID_PLAN'
  | 'ERR_SIMDFORMER_OUT_OF_MEMORY'
  | 'ERR_SIMDFORMER_INVALID_SAFETENSORS'
  | 'ERR_SIMDFORMER_UNSUPPORTED_DTYPE';

export interface SimdformerError extends Error {
  code: ErrorCode;
}

function withCode<E extends Error>(error: E, code: ErrorCode): E & SimdformerError {
  return Object.assign(error, { code });
}

/** A short description of a received value: `-3 of type number`, `Tensor of shape [2, 3] and dtype float32`. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const view = value as ArrayBufferView & { length?: number };
    return `${view.constructor.name} of length ${view.length ?? view.byteLength}`;
  }
  if (typeof value === 'object') {
    const maybeTensor = value as { shape?: unknown; dtype?: unknown };
    if (Array.isArray(maybeTensor.shape) && typeof maybeTensor.dtype === 'string') {
      return `Tensor of shape [${maybeTensor.shape.join(', ')}] and dtype ${maybeTensor.dtype}`;
    }
    return `an object (${(value as object).constructor?.name ?? 'Object'})`;
  }
  if (typeof value === 'string') return `'${value}' of type string`;
  if (typeof value === 'function') return 'a function';
  return `${String(value)} of type ${typeof value}`;
}

export function invalidType(name: string, expected: string, received: unknown): SimdformerError {
  return withCode(new TypeError(`Expected ${expected} for ${name} but received ${describe(received)}`),
    'ERR_SIMDFORMER_INVALID_ARG_TYPE');
}

export function invalidValue(name: string, expected: string, received: unknown): SimdformerError {
  return withCode(new RangeError(`Expected ${expected} for ${name} but received ${describe(received)}`),
    'ERR_SIMDFORMER_OUT_OF_RANGE');
}

/** A value error worded as PyTorch words it (`embed_dim must be divisible by num_heads`). */
export function valueError(message: string): SimdformerError {
  return withCode(new RangeError(message), 'ERR_SIMDFORMER_OUT_OF_RANGE');
}

/** A shape error with PyTorch's message where it has one. */
export function shapeError(message: string): SimdformerError {
  return withCode(new RangeError(message), 'ERR_SIMDFORMER_SHAPE_MISMATCH');
}

/** A dtype error with PyTorch's message where it has one. */
export function dtypeError(message: string): SimdformerError {
  return withCode(new TypeError(message), 'ERR_SIMDFORMER_DTYPE_MISMATCH');
}

export function nativeLoadError(message: string, cause: unknown): SimdformerError {
  return withCode(new Error(message, { cause }), 'ERR_SIMDFORMER_NATIVE_LOAD');
}

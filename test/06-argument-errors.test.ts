// Every argument check throws its documented error (class, code, message);
// nothing reaches native code with a shape or buffer it could overrun.
import { binding } from '../lib/binding';
import { functional as F, info, Tensor, tensor, zeros } from '../lib';
import { expectError } from './helpers';

const SHAPE = 'ERR_SIMDFORMER_SHAPE_MISMATCH';
const TYPE = 'ERR_SIMDFORMER_INVALID_ARG_TYPE';
const RANGE = 'ERR_SIMDFORMER_OUT_OF_RANGE';

describe('functional argument checks', () => {
  test('linear', () => {
    expectError(() => F.linear(zeros([2, 7]), zeros([16, 8])), RangeError, SHAPE,
      'mat1 and mat2 shapes cannot be multiplied (2x7 and 8x16)');
    expectError(() => F.linear(zeros([7]), zeros([16, 8])), RangeError, SHAPE,
      'mat1 and mat2 shapes cannot be multiplied (1x7 and 8x16)');
    expectError(() => F.linear(zeros([2, 8]), zeros([16, 8]), zeros([15])), RangeError, SHAPE,
      'linear(): bias must have shape [16], but got shape [15]');
    expectError(() => F.linear(zeros([2, 8]), zeros([16, 8, 1])), RangeError, SHAPE,
      'linear(): weight must be 2-D [out_features, in_features], but got shape [16, 8, 1]');
    expectError(() => F.linear(zeros([2, 8], { dtype: 'int32' }), zeros([16, 8])), TypeError, TYPE,
      'Expected a float32 Tensor for input but received Tensor of shape [2, 8] and dtype int32');
    expectError(() => F.linear([1, 2] as unknown as Tensor, zeros([16, 8])), TypeError, TYPE,
      'Expected a Tensor for input but received an Array of length 2');
    expectError(() => F.linear(zeros([]), zeros([1, 1])), RangeError, SHAPE,
      'linear(): input must have at least one dimension, but got a 0-d tensor');
  });

  test('matmul', () => {
    expectError(() => F.matmul(zeros([2, 7]), zeros([8, 16])), RangeError, SHAPE,
      'mat1 and mat2 shapes cannot be multiplied (2x7 and 8x16)');
    expectError(() => F.matmul(zeros([3]), zeros([4])), RangeError, SHAPE,
      'inconsistent tensor size, expected tensor [3] and src [4] to have the same number of elements, but got 3 and 4 elements respectively');
    expectError(() => F.matmul(zeros([2, 3, 4]), zeros([3, 4, 5])), RangeError, SHAPE,
      'The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0');
    expectError(() => F.matmul(zeros([3, 2, 7]), zeros([3, 8, 16])), RangeError, SHAPE,
      'Expected size for first two dimensions of batch2 tensor to be: [3, 7] but got: [3, 8].');
    expectError(() => F.matmul(zeros([]), zeros([2])), RangeError, SHAPE,
      'both arguments to matmul need to be at least 1D, but they are 0D and 1D');
    expectError(() => F.matmul(zeros([2, 2]), zeros([2, 2], { dtype: 'bool' })), TypeError, TYPE,
      'Expected a float32 Tensor for other but received Tensor of shape [2, 2] and dtype bool');
  });

  test('softmax', () => {
    expectError(() => F.softmax(zeros([2, 3]), 2), RangeError, RANGE,
      'Expected a dimension in the range [-2, 1] for dim but received 2 of type number');
    expectError(() => F.softmax(zeros([2, 3]), 0.5), TypeError, TYPE,
      'Expected an integer for dim but received 0.5 of type number');
  });

  test('layerNorm', () => {
    expectError(() => F.layerNorm(zeros([2, 3, 4]), [5]), RangeError, SHAPE,
      'Given normalized_shape=[5], expected input with shape [*, 5], but got input of size[2, 3, 4]');
    expectError(() => F.layerNorm(zeros([2, 5]), [5], zeros([4])), RangeError, SHAPE,
      'Expected weight to be of same shape as normalized_shape, but got weight of shape [4] and normalized_shape = [5]');
    expectError(() => F.layerNorm(zeros([2, 5]), [5], null, zeros([5, 1])), RangeError, SHAPE,
      'Expected bias to be of same shape as normalized_shape, but got bias of shape [5, 1] and normalized_shape = [5]');
    expectError(() => F.layerNorm(zeros([2, 5]), [], null, null), RangeError, RANGE,
      'Expected a non-empty array of positive integers for normalizedShape but received an Array of length 0');
    expectError(() => F.layerNorm(zeros([2, 5]), [5], null, null, -1), RangeError, RANGE,
      'Expected a non-negative number for eps but received -1 of type number');
  });

  test('relu and gelu', () => {
    expectError(() => F.relu(tensor([1], { dtype: 'int64' })), TypeError, TYPE,
      'Expected a float32 Tensor for input but received Tensor of shape [1] and dtype int64');
    expectError(() => F.gelu(zeros([1]), { approximate: 'tanh' as 'none' }), RangeError, RANGE,
      "Expected 'none' (the tanh approximation is not implemented) for options.approximate but received 'tanh' of type string");
  });

  test('empty tensors give empty results without native calls', () => {
    expect(F.linear(zeros([0, 4]), zeros([3, 4])).shape).toEqual([0, 3]);
    expect(Array.from(F.linear(zeros([2, 0]), zeros([3, 0]), tensor([1, 2, 3])).data)).toEqual([1, 2, 3, 1, 2, 3]);
    expect(F.matmul(zeros([2, 0]), zeros([0, 3])).toArray()).toEqual([[0, 0, 0], [0, 0, 0]]);
    expect(F.softmax(zeros([0, 3]), 1).shape).toEqual([0, 3]);
  });
});

describe('binding argument checks', () => {
  const a = new Float32Array(6);
  const c = new Float32Array(4);
  const valid = { batch: 1, m: 2, n: 2, k: 3, a, aRowStride: 3, aColStride: 1, b: new Float32Array(6), bRowStride: 2, bColStride: 1, c, ldc: 2, cBatchStride: 0 };

  test('gemm checks every index it will reach', () => {
    expect(() => binding.gemm(valid)).not.toThrow();
    expectError(() => binding.gemm({ ...valid, a: new Float32Array(5) }), RangeError, RANGE,
      'Expected args.a to hold a 2x3 view at offset 0 with strides (3, 1) but it has only 5 elements');
    expectError(() => binding.gemm({ ...valid, c: new Float32Array(3) }), RangeError, RANGE, /Expected args.c to hold/);
    expectError(() => binding.gemm({ ...valid, ldc: 1 }), RangeError, RANGE,
      'Expected an integer >= 2 for args.ldc but received 1 of type number');
    expectError(() => binding.gemm({ ...valid, m: -1 }), RangeError, RANGE,
      'Expected an integer >= 1 for args.m but received -1 of type number');
    expectError(() => binding.gemm({ ...valid, a: new Float64Array(6) as unknown as Float32Array }), TypeError, TYPE,
      'Expected a Float32Array for args.a but received Float64Array of length 6');
    expectError(() => binding.gemm({ ...valid, batch: 2, aOffsets: new Float64Array([0, 1]), cBatchStride: 4, c: new Float32Array(8), b: new Float32Array(6) }),
      RangeError, RANGE, 'Expected args.a to hold a 2x3 view at offset 1 with strides (3, 1) but it has only 6 elements');
    expectError(() => binding.gemm({ ...valid, bias: new Float32Array(3) }), RangeError, RANGE,
      'Expected args.bias of length n (2) but received a Float32Array of length 3');
    expectError(() => binding.gemm({ ...valid, activation: 'tanh' as 'relu' }), TypeError, TYPE,
      "Expected one of 'none', 'relu', 'gelu' for args.activation but received 'tanh' of type string");
    expectError(() => binding.gemm(null as never), TypeError, TYPE, 'Expected an object for args but received null');
  });

  test('a PackedB must match the problem and the ISA', () => {
    const packed = binding.packB(new Float32Array(6), 3, 2, 2, 1);
    expect({ k: packed.k, n: packed.n, isa: packed.isa }).toEqual({ k: 3, n: 2, isa: info().isa });
    expect(packed.bytes).toBeGreaterThanOrEqual(6 * 4);
    expectError(() => binding.gemm({ ...valid, k: 2, a: new Float32Array(4), aRowStride: 2, b: packed }), RangeError, RANGE,
      'Expected args.b packed as [k, n] = [2, 2] but received a PackedB of [3, 2]');
    if (info().isa !== 'ref') {
      expectError(() => binding.gemm({ ...valid, b: packed, isa: 'ref' }), RangeError, RANGE,
        `Expected args.b packed for ISA 'ref' but received a PackedB packed for '${info().isa}'`);
    }
    const PackedClass = (packed as unknown as { constructor: new () => unknown }).constructor;
    expectError(() => new PackedClass(), TypeError, TYPE, 'PackedB cannot be constructed from JavaScript; use packB()');
  });

  test('an ISA is checked by name and by what the CPU can run', () => {
    expectError(() => binding.activation('relu', new Float32Array(1), new Float32Array(1), 'sse' as 'ref'), TypeError, TYPE,
      "Expected one of 'ref', 'avx2', 'avx512', 'amx', 'neon' for isa but received 'sse' of type string");
    const missing = (['avx2', 'avx512', 'neon'] as const).find((isa) => !info().availableIsas.includes(isa))!;
    expectError(() => binding.activation('relu', new Float32Array(1), new Float32Array(1), missing), RangeError,
      'ERR_SIMDFORMER_UNSUPPORTED_ISA', new RegExp(`^Expected an ISA this CPU can run \\('ref'.*\\) for isa but received '${missing}'`));
  });

  test('row ops check lengths', () => {
    expectError(() => binding.softmax({ x: new Float32Array(6), y: new Float32Array(5), outer: 2, n: 3, inner: 1, scale: 1 }),
      RangeError, RANGE, 'Expected args.y of length 6 but received a Float32Array of length 5');
    expectError(() => binding.softmax({ x: new Float32Array(6), y: new Float32Array(6), outer: 2, n: 3, inner: 1, scale: 1, mask: new Float32Array(3), maskRows: 2 }),
      RangeError, RANGE, 'Expected args.mask of length 6 but received a Float32Array of length 3');
    expectError(() => binding.softmax({ x: new Float32Array(6), y: new Float32Array(6), outer: 3, n: 2, inner: 1, scale: 1, mask: new Float32Array(4), maskRows: 2 }),
      RangeError, RANGE, 'Expected args.maskRows to divide args.outer (3) but received 2');
    expectError(() => binding.layerNorm({ x: new Float32Array(6), y: new Float32Array(6), rows: 2, n: 3, eps: 1e-5, weight: new Float32Array(2) }),
      RangeError, RANGE, 'Expected args.weight of length 3 but received a Float32Array of length 2');
    expectError(() => binding.activation('gelu', new Float32Array(3), new Float32Array(2)), RangeError, RANGE,
      'Expected y of length 3 but received a Float32Array of length 2');
  });
});

describe('sizes whose products would wrap around 64 bits are rejected, not run', () => {
  test('gemm: a huge ldc', () => {
    expectError(() => binding.gemm({ batch: 1, m: 4097, n: 1, k: 1, a: new Float32Array(1), aRowStride: 0, aColStride: 1,
      b: new Float32Array(1), bRowStride: 1, bColStride: 1, c: new Float32Array(1), ldc: 2 ** 52, cBatchStride: 0 }),
    RangeError, RANGE, 'args.m * args.ldc is too large');
  });

  test('plans: averageHeads and embedding sizes', () => {
    expectError(() => binding.createPlan({
      values: [{ type: 'float32', count: 0 }, { type: 'float32', count: 4096 }],
      steps: [{ kind: 'averageHeads', inputs: [0], output: 1, batch: 4096, heads: 2 ** 52, size: 1 }], inputs: [0], outputs: [1],
    }), RangeError, 'ERR_SIMDFORMER_INVALID_PLAN', /sizes do not match \[batch, heads, size\]/);
    expectError(() => binding.createPlan({
      values: [{ type: 'int64', count: 4096 }, { type: 'float32', count: 0 }],
      steps: [{ kind: 'embedding', inputs: [0], output: 1, num: 4096, dim: 2 ** 52, table: binding.createParameter(new Float32Array(0)) }],
      inputs: [0], outputs: [1],
    }), RangeError, 'ERR_SIMDFORMER_INVALID_PLAN', /needs int64 indices and a \[num, dim\] table/);
  });

  test('attention: heads * headDim', () => {
    const strides = { batchStride: 0, seqStride: 0 };
    expectError(() => binding.attention({
      batch: 1, heads: 4096, tgtLen: 1, srcLen: 1, headDim: 2 ** 52, vHeadDim: 1, q: new Float32Array(1), qStrides: strides,
      k: new Float32Array(1), kStrides: strides, v: new Float32Array(1), vStrides: strides, out: new Float32Array(1), outStrides: strides, scale: 1,
    }), RangeError, RANGE, 'args.heads * args.headDim is too large');
  });
});

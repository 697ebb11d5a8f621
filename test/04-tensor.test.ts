// Tensor construction, shapes, dtypes and the seeded random generators.
import { Generator, manualSeed, ones, rand, randn, Tensor, tensor, zeros } from '../lib';
import { expectError } from './helpers';

describe('Tensor', () => {
  test('wraps a typed array with its dtype', () => {
    const t = new Tensor(new Float32Array(6), [2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([2, 3]);
    expect(t.numel).toBe(6);
    expect(t.ndim).toBe(2);
    expect(t.size(-1)).toBe(3);
    expect(new Tensor(new Uint8Array(2), [2]).dtype).toBe('bool');
    expect(new Tensor(new Int32Array(2), [2]).dtype).toBe('int32');
    expect(new Tensor(new BigInt64Array(2), [1, 2]).dtype).toBe('int64');
    expect(new Tensor(new Float32Array([7]), []).item()).toBe(7);
  });

  test('rejects a data length that does not match the shape', () => {
    expectError(() => new Tensor(new Float32Array(5), [2, 3]), RangeError, 'ERR_SIMDFORMER_OUT_OF_RANGE',
      'Expected 6 elements for shape [2, 3] for data but received Float32Array of length 5');
  });

  test('rejects bad shapes, data types and dtype disagreements', () => {
    expectError(() => new Tensor(new Float32Array(2), [2, -1]), RangeError, 'ERR_SIMDFORMER_OUT_OF_RANGE',
      'Expected a non-negative integer for shape[1] but received -1 of type number');
    expectError(() => new Tensor(new Float32Array(2), [2.5]), RangeError, 'ERR_SIMDFORMER_OUT_OF_RANGE',
      'Expected a non-negative integer for shape[0] but received 2.5 of type number');
    expectError(() => new Tensor(new Float32Array(2), '2' as unknown as number[]), TypeError,
      'ERR_SIMDFORMER_INVALID_ARG_TYPE', "Expected an array of non-negative integers for shape but received '2' of type string");
    expectError(() => new Tensor(new Float64Array(2) as unknown as Float32Array, [2]), TypeError,
      'ERR_SIMDFORMER_INVALID_ARG_TYPE',
      'Expected a Float32Array, Uint8Array, Int32Array or BigInt64Array for data but received Float64Array of length 2');
    expectError(() => new Tensor(new Float32Array(2), [2], 'int32' as 'float32'), TypeError,
      'ERR_SIMDFORMER_INVALID_ARG_TYPE', "Expected the typed array of dtype 'int32' for data but received Float32Array of length 2");
  });

  test('reshape shares data and infers one -1', () => {
    const t = tensor([[1, 2, 3], [4, 5, 6]]);
    const r = t.reshape([3, -1]);
    expect(r.shape).toEqual([3, 2]);
    expect(r.data).toBe(t.data);
    expect(r.toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(() => t.reshape([4, -1])).toThrow(RangeError);
    expect(() => t.reshape([7])).toThrow('Expected a shape of 6 elements for shape but received');
  });
});

describe('tensor()', () => {
  test('infers the shape of nested arrays', () => {
    const t = tensor([[[1], [2]], [[3], [4]]]);
    expect(t.shape).toEqual([2, 2, 1]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(tensor(5).shape).toEqual([]);
    expect(tensor([]).shape).toEqual([0]);
  });

  test('converts to the requested dtype', () => {
    expect(Array.from(tensor([true, false, true], { dtype: 'bool' }).data as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(tensor([1, 2], { dtype: 'int64' }).data as BigInt64Array)).toEqual([1n, 2n]);
    expect(tensor([1, 2], { dtype: 'int32' }).data).toBeInstanceOf(Int32Array);
    expect(tensor(new Float64Array([0.5, 1.5]), { shape: [2, 1] }).toArray()).toEqual([[0.5], [1.5]]);
    expect(tensor([[true, false]], { dtype: 'bool' }).toArray()).toEqual([[true, false]]);
  });

  test('rejects ragged nested arrays and unknown dtypes', () => {
    expectError(() => tensor([[1, 2], [3]]), RangeError, 'ERR_SIMDFORMER_OUT_OF_RANGE',
      'Expected a nested array of shape [2] for values[1] but received an Array of length 1');
    expectError(() => tensor([1], { dtype: 'float16' as 'float32' }), TypeError, 'ERR_SIMDFORMER_INVALID_ARG_TYPE',
      "Expected one of 'float32', 'bool', 'int32', 'int64' for options.dtype but received 'float16' of type string");
    expectError(() => tensor([1, 2, 3], { shape: [2, 2] }), RangeError, 'ERR_SIMDFORMER_OUT_OF_RANGE',
      'Expected 4 elements for shape [2, 2] for data but received Float32Array of length 3');
  });

  test('zeros and ones', () => {
    expect(Array.from(zeros([2, 2]).data as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(Array.from(ones([3], { dtype: 'int64' }).data as BigInt64Array)).toEqual([1n, 1n, 1n]);
  });
});

describe('seeded random tensors', () => {
  test('the same seed gives the same numbers, another seed others', () => {
    expect(randn([100], { seed: 7 }).data).toEqual(randn([100], { seed: 7 }).data);
    expect(randn([100], { seed: 7 }).data).not.toEqual(randn([100], { seed: 8 }).data);
    manualSeed(3);
    const first = rand([50]).data;
    manualSeed(3);
    expect(rand([50]).data).toEqual(first);
    const generator = new Generator(11);
    expect(randn([10], { generator }).data).not.toEqual(randn([10], { generator }).data);
  });

  test('randn is standard normal and rand uniform in [0, 1)', () => {
    const n = 200000;
    const normal = randn([n], { seed: 1 }).data as Float32Array;
    const mean = normal.reduce((s, v) => s + v, 0) / n;
    const variance = normal.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    const uniform = rand([n], { seed: 2 }).data as Float32Array;
    expect(uniform.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(Math.abs(uniform.reduce((s, v) => s + v, 0) / n - 0.5)).toBeLessThan(0.01);
  });
});

/** Parameter initialisation for freshly constructed modules (PyTorch's schemes, our seeded generator). */
import { drawSeed, Generator, rand, randn, Tensor } from '../tensor';
import { LazyTensor } from './module';

/**
 * A parameter made on first read (module.ts LazyTensor), from a generator
 * seeded now from the default one, so the values depend on construction
 * order only, as with eager initialisation.
 */
export function lazy(shape: readonly number[], make: (generator: Generator) => Tensor): LazyTensor {
  const seed = drawSeed();
  return new LazyTensor(shape, () => make(new Generator(seed)));
}

/** U(-bound, bound) of `shape`: PyTorch's Linear init uses bound = 1 / sqrt(fan_in). */
export function uniform(shape: readonly number[], bound: number, generator?: Generator): Tensor<'float32'> {
  const t = rand(shape, { generator });
  for (let i = 0; i < t.data.length; i++) t.data[i] = (2 * t.data[i] - 1) * bound;
  return t;
}

/** Xavier (Glorot) uniform for a [fanOut, fanIn] weight. */
export function xavierUniform(shape: readonly [number, number], generator?: Generator): Tensor<'float32'> {
  return uniform(shape, Math.sqrt(6 / (shape[0] + shape[1])), generator);
}

export function normal(shape: readonly number[], generator?: Generator): Tensor<'float32'> {
  return randn(shape, { generator });
}

/**
 * A constant parameter (LayerNorm's ones and zeros, zero biases), made on
 * first read like the random ones but drawing no seed: a model whose weights
 * are then loaded never allocates it.
 */
export function filled(shape: readonly number[], value: number): LazyTensor {
  return new LazyTensor(shape, () => new Tensor<'float32'>(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape));
}

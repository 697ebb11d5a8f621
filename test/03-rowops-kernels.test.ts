// Row-wise ops (softmax, layer norm, ReLU, GELU) on every ISA this machine
// can run: each SIMD kernel against 'ref', and 'ref' against the formulas
// below in double precision (ggml test-backend-ops style, one tolerance per
// op). Set ROWOPS_REPORT=1 to print the largest errors seen.
//
// Tolerances, |got - expected| <= rtol * |expected| + atol:
//   softmax     ISA vs ref  rtol 2e-6, atol 1e-10. The SIMD exp is within
//               1 ulp and the sum is a float sum over 64 lanes; s - max is
//               rounded to float, which costs |s - max| * 2^-24 relative.
//               ref vs f64  rtol 2e-7 (the final rounding to float).
//   layer norm  ISA vs ref  rtol 1e-5, atol 2e-6 (float sums of x - x[0]).
//               ref vs f64  rtol 2e-7, atol 1e-7.
//   GELU        ISA vs ref  rtol 1e-6 (4 ulp measured), atol 1e-37 for
//               results that underflow to subnormals.
//               ref vs f64  rtol 2e-7, atol 1e-44.
//   ReLU        exact, including -0 and NaN.
import { binding } from '../lib/binding';
import type { IsaName } from '../binding';
import { random, uniform } from './helpers';

const REPORT = process.env.ROWOPS_REPORT === '1';
const SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 257, 1000, 4096];
const isas = binding.info().availableIsas;
const simdIsas = isas.filter((isa) => isa !== 'ref');



// Largest errors per label, printed at the end with ROWOPS_REPORT=1.
const worst = new Map<string, { abs: number; rel: number }>();

function expectClose(label: string, got: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number): void {
  expect(got.length).toBe(expected.length);
  const seen = worst.get(label) ?? { abs: 0, rel: 0 };
  for (let i = 0; i < got.length; ++i) {
    const g = got[i];
    const e = expected[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      if (!Object.is(g, e)) throw new Error(`${label}: element ${i} is ${g}, expected ${e}`);
      continue;
    }
    const diff = Math.abs(g - e);
    if (!(diff <= rtol * Math.abs(e) + atol)) {
      throw new Error(`${label}: element ${i} is ${g}, expected ${e} (diff ${diff}, allowed ${rtol} * |e| + ${atol})`);
    }
    seen.abs = Math.max(seen.abs, diff);
    if (Math.abs(e) > 1e-30) seen.rel = Math.max(seen.rel, diff / Math.abs(e));
  }
  worst.set(label, seen);
}

function expectSameBits(got: Float32Array, expected: Float32Array): void {
  expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(
    Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))).toBe(true);
}

afterAll(() => {
  if (!REPORT) return;
  const lines = [...worst.entries()].map(([label, e]) => `${label.padEnd(34)} max abs ${e.abs.toExponential(2)}  max rel ${e.rel.toExponential(2)}`);
  console.log(lines.join('\n'));
});

// ---- Formulas in double precision -------------------------------------------

/** softmax over the middle axis of [outer, n, inner]; scores rounded to float like the kernels. */
function softmax64(x: Float32Array, outer: number, n: number, inner: number, scale: number,
                   mask: Float32Array | null, maskRows: number): Float64Array {
  const y = new Float64Array(x.length);
  const s = new Float64Array(n);
  for (let o = 0; o < outer; ++o) {
    for (let i = 0; i < inner; ++i) {
      let max = -Infinity;
      for (let j = 0; j < n; ++j) {
        const m = mask ? mask[(o % maskRows) * n + j] : 0;
        s[j] = Math.fround(Math.fround(scale) * x[(o * n + j) * inner + i] + m);
        if (s[j] > max) max = s[j];
      }
      if (max === -Infinity) max = 0;
      let sum = 0;
      for (let j = 0; j < n; ++j) sum += Math.exp(s[j] - max);
      for (let j = 0; j < n; ++j) y[(o * n + j) * inner + i] = sum === 0 ? 0 : Math.exp(s[j] - max) / sum;
    }
  }
  return y;
}

function layerNorm64(x: Float32Array, rows: number, n: number, eps: number,
                     weight: Float32Array | null, bias: Float32Array | null): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; ++r) {
    let sum = 0;
    for (let j = 0; j < n; ++j) sum += x[r * n + j];
    const mean = sum / n;
    let squares = 0;
    for (let j = 0; j < n; ++j) squares += (x[r * n + j] - mean) ** 2;
    const rstd = 1 / Math.sqrt(squares / n + Math.fround(eps));
    for (let j = 0; j < n; ++j) {
      y[r * n + j] = (x[r * n + j] - mean) * rstd * (weight ? weight[j] : 1) + (bias ? bias[j] : 0);
    }
  }
  return y;
}

/**
 * erfc in double: Maclaurin series of erf for |z| < 3 (terms stay below ~1e3,
 * so ~1e-13 relative), Lentz's continued fraction
 * erfc(z) = exp(-z^2)/sqrt(pi) / (z + 1/2 / (z + 1 / (z + 3/2 / (z + ...)))) above.
 */
function erfc64(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 0) return 2 - erfc64(-z);
  if (z < 3) {
    let term = z;
    let sum = z;
    for (let k = 1; k < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); ++k) {
      term *= (-z * z) / k;
      sum += term / (2 * k + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (z === Infinity) return 0;
  const tiny = 1e-300;
  let f = z;
  let c = z;
  let d = 0;
  for (let k = 1; k < 500; ++k) {
    const a = k / 2;
    d = z + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = z + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

function gelu64(x: number): number {
  return 0.5 * x * erfc64(-x / Math.SQRT2);
}

// ---- Callers -----------------------------------------------------------------

function runSoftmax(isa: IsaName, x: Float32Array, outer: number, n: number, inner: number, scale: number,
                    mask: Float32Array | null = null, maskRows = 1, y = new Float32Array(x.length)): Float32Array {
  binding.softmax({ x, outer, n, inner, scale, mask, maskRows, y, isa });
  return y;
}

function runLayerNorm(isa: IsaName, x: Float32Array, rows: number, n: number, eps: number,
                      weight: Float32Array | null, bias: Float32Array | null, y = new Float32Array(x.length)): Float32Array {
  binding.layerNorm({ x, rows, n, eps, weight, bias, y, isa });
  return y;
}

function runActivation(isa: IsaName, kind: 'relu' | 'gelu', x: Float32Array, y = new Float32Array(x.length)): Float32Array {
  binding.activation(kind, x, y, isa);
  return y;
}

/** Scores with about a quarter of the mask at -inf; row 0 of the mask fully -inf when `fullyMasked`. */
function makeMask(rng: () => number, rows: number, n: number, fullyMasked: boolean): Float32Array {
  const mask = uniform(rng, rows * n, -2, 2);
  for (let i = 0; i < mask.length; ++i) if (rng() < 0.25) mask[i] = -Infinity;
  if (fullyMasked) mask.fill(-Infinity, 0, n);
  return mask;
}

// ---- Softmax ------------------------------------------------------------------

describe('softmax', () => {
  test.each(SIZES)('ref matches the double formula, n = %i', (n) => {
    const rng = random(n);
    const rows = 3;
    const x = uniform(rng, rows * n, -8, 8);
    const mask = makeMask(rng, rows, n, true);
    expectClose('softmax ref vs f64', runSoftmax('ref', x, rows, n, 1, 0.125),
      softmax64(x, rows, n, 1, 0.125, null, 1), 2e-7, 0);
    expectClose('softmax+mask ref vs f64', runSoftmax('ref', x, rows, n, 1, 1, mask, rows),
      softmax64(x, rows, n, 1, 1, mask, rows), 2e-7, 0);
  });

  describe.each(simdIsas)('%s', (isa) => {
    test.each(SIZES)('matches ref with scale and -inf mask entries, n = %i', (n) => {
      const rng = random(1000 + n);
      const rows = 4;
      const x = uniform(rng, rows * n, -8, 8);
      const mask = makeMask(rng, rows, n, false);
      for (const scale of [1, 0.125, 3]) {
        expectClose(`softmax ${isa} vs ref`, runSoftmax(isa, x, rows, n, 1, scale), runSoftmax('ref', x, rows, n, 1, scale), 2e-6, 1e-10);
        const withMask = runSoftmax(isa, x, rows, n, 1, scale, mask, rows);
        expectClose(`softmax+mask ${isa} vs ref`, withMask, runSoftmax('ref', x, rows, n, 1, scale, mask, rows), 2e-6, 1e-10);
        for (let i = 0; i < mask.length; ++i) if (mask[i] === -Infinity) expect(withMask[i]).toBe(0);
      }
    });

    test.each(SIZES)('wide score ranges (exp underflow), n = %i', (n) => {
      const rng = random(2000 + n);
      const x = uniform(rng, 2 * n, -120, 40);
      expectClose(`softmax wide ${isa} vs ref`, runSoftmax(isa, x, 2, n, 1, 1), runSoftmax('ref', x, 2, n, 1, 1), 2e-6, 1e-10);
    });

    test.each(SIZES)('in place (x === y) gives the same bits, n = %i', (n) => {
      const rng = random(3000 + n);
      const x = uniform(rng, 2 * n, -5, 5);
      const mask = makeMask(rng, 2, n, false);
      const expected = runSoftmax(isa, x, 2, n, 1, 0.5, mask, 2);
      const inPlace = Float32Array.from(x);
      runSoftmax(isa, inPlace, 2, n, 1, 0.5, mask, 2, inPlace);
      expectSameBits(inPlace, expected);
    });
  });

  test.each(isas)('%s: a fully masked row gives zeros, NaN propagates, +inf gives NaN', (isa) => {
    for (const n of [1, 5, 16, 17, 33]) {
      const x = new Float32Array(3 * n).fill(0.5);
      const mask = new Float32Array(3 * n);
      mask.fill(-Infinity, 0, n); // row 0 fully masked
      x[n + (n >> 1)] = NaN; // row 1 holds a NaN
      const y = runSoftmax(isa, x, 3, n, 1, 1, mask, 3);
      expect(Array.from(y.subarray(0, n))).toEqual(new Array(n).fill(0));
      expect(Array.from(y.subarray(n, 2 * n)).every(Number.isNaN)).toBe(true);
      expectClose(`softmax uniform ${isa}`, y.subarray(2 * n), new Array(n).fill(1 / n), 2e-7, 0);
      // A NaN next to -inf terms only, and scores of -inf without a mask.
      const lone = new Float32Array(n).fill(-Infinity);
      lone[n - 1] = NaN;
      expect(Array.from(runSoftmax(isa, lone, 1, n, 1, 1)).every(Number.isNaN)).toBe(true);
      expect(Array.from(runSoftmax(isa, new Float32Array(n).fill(-Infinity), 1, n, 1, 1))).toEqual(new Array(n).fill(0));
      const plusInf = new Float32Array(n).fill(1);
      plusInf[0] = Infinity;
      expect(Number.isNaN(runSoftmax(isa, plusInf, 1, n, 1, 1)[0])).toBe(true);
    }
  });

  test.each(isas)('%s: mask broadcast over rows (maskRows < rows)', (isa) => {
    const rng = random(4000);
    const n = 33;
    const outer = 12;
    const maskRows = 3;
    const x = uniform(rng, outer * n, -4, 4);
    const mask = makeMask(rng, maskRows, n, true);
    const y = runSoftmax(isa, x, outer, n, 1, 0.25, mask, maskRows);
    expectClose(`softmax broadcast ${isa} vs f64`, y, softmax64(x, outer, n, 1, 0.25, mask, maskRows), 2e-6, 1e-10);
    for (let o = 0; o < outer; o += maskRows) expect(Array.from(y.subarray(o * n, o * n + n))).toEqual(new Array(n).fill(0));
  });

  test.each(isas)('%s: inner > 1 (softmax along a middle axis)', (isa) => {
    const rng = random(5000);
    for (const [outer, n, inner] of [[2, 7, 3], [3, 33, 17], [1, 257, 40], [2, 1, 5]]) {
      const x = uniform(rng, outer * n * inner, -6, 6);
      const y = runSoftmax(isa, x, outer, n, inner, 0.5);
      expectClose(`softmax inner>1 ${isa} vs f64`, y, softmax64(x, outer, n, inner, 0.5, null, 1), 2e-6, 1e-10);
      const inPlace = Float32Array.from(x);
      runSoftmax(isa, inPlace, outer, n, inner, 0.5, null, 1, inPlace);
      expectSameBits(inPlace, y);
    }
  });
});

// ---- Layer norm ---------------------------------------------------------------

describe('layerNorm', () => {
  const affineCases: Array<[string, boolean, boolean]> = [
    ['no weight or bias', false, false], ['weight', true, false], ['bias', false, true], ['weight and bias', true, true],
  ];

  test.each(SIZES)('ref matches the double formula, n = %i', (n) => {
    const rng = random(6000 + n);
    const x = uniform(rng, 3 * n, -3, 5);
    const weight = uniform(rng, n, -2, 2);
    const bias = uniform(rng, n, -1, 1);
    expectClose('layernorm ref vs f64', runLayerNorm('ref', x, 3, n, 1e-5, weight, bias),
      layerNorm64(x, 3, n, 1e-5, weight, bias), 2e-7, 1e-7);
    const offset = uniform(rng, 3 * n, 1e4 - 1, 1e4 + 1);
    expectClose('layernorm 1e4 ref vs f64', runLayerNorm('ref', offset, 3, n, 1e-5, null, null),
      layerNorm64(offset, 3, n, 1e-5, null, null), 2e-7, 1e-7);
  });

  describe.each(simdIsas)('%s', (isa) => {
    test.each(SIZES)('matches ref with and without weight / bias, n = %i', (n) => {
      const rng = random(7000 + n);
      const x = uniform(rng, 3 * n, -3, 5);
      const weight = uniform(rng, n, -2, 2);
      const bias = uniform(rng, n, -1, 1);
      for (const [, useWeight, useBias] of affineCases) {
        const w = useWeight ? weight : null;
        const b = useBias ? bias : null;
        for (const eps of [1e-5, 0.5]) {
          expectClose(`layernorm ${isa} vs ref`, runLayerNorm(isa, x, 3, n, eps, w, b), runLayerNorm('ref', x, 3, n, eps, w, b), 1e-5, 2e-6);
        }
        const inPlace = Float32Array.from(x);
        runLayerNorm(isa, inPlace, 3, n, 1e-5, w, b, inPlace);
        expectSameBits(inPlace, runLayerNorm(isa, x, 3, n, 1e-5, w, b));
      }
    });

    test.each(SIZES)('large offset: values around 1e4 with spread 1, n = %i', (n) => {
      const rng = random(8000 + n);
      const x = uniform(rng, 2 * n, 1e4 - 1, 1e4 + 1);
      const expected = layerNorm64(x, 2, n, 1e-5, null, null);
      expectClose(`layernorm 1e4 ${isa} vs ref`, runLayerNorm(isa, x, 2, n, 1e-5, null, null), runLayerNorm('ref', x, 2, n, 1e-5, null, null), 1e-5, 2e-6);
      expectClose(`layernorm 1e4 ${isa} vs f64`, runLayerNorm(isa, x, 2, n, 1e-5, null, null), expected, 1e-5, 2e-6);
    });
  });

  test.each(isas)('%s: constant rows give bias, eps sets the scale, NaN propagates', (isa) => {
    for (const n of [1, 9, 33]) {
      const bias = Float32Array.from({ length: n }, (_, i) => i - 3);
      expect(Array.from(runLayerNorm(isa, new Float32Array(n).fill(7), 1, n, 1e-5, null, bias))).toEqual(Array.from(bias));
      const x = Float32Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1));
      // With eps = 3 and variance 1 (n even) the output is x / 2.
      if (n % 2 === 0) expectClose(`layernorm eps ${isa}`, runLayerNorm(isa, x, 1, n, 3, null, null), Array.from(x, (v) => v / 2), 1e-6, 0);
      const withNaN = new Float32Array(n).fill(1);
      withNaN[n - 1] = NaN;
      expect(Array.from(runLayerNorm(isa, withNaN, 1, n, 1e-5, null, null)).every(Number.isNaN)).toBe(true);
    }
  });
});

// ---- Activations --------------------------------------------------------------

describe('activations', () => {
  const extremes = Float32Array.from([10, -10, 1e30, -1e30, Infinity, -Infinity, 0, -0, NaN, 3, -3, -5, -13.5, 1e-30, -1e-30, 0.5]);

  test.each(SIZES)('ref GELU matches the double formula, n = %i', (n) => {
    const x = uniform(random(9000 + n), n, -15, 15);
    expectClose('gelu ref vs f64', runActivation('ref', 'gelu', x), Array.from(x, gelu64), 2e-7, 1e-44);
  });

  test.each(isas)('%s: GELU at extreme inputs', (isa) => {
    const y = runActivation(isa, 'gelu', extremes);
    expectClose(`gelu extremes ${isa} vs f64`, y, Array.from(extremes, gelu64), 1e-6, 1e-44);
    expect(y[4]).toBe(Infinity);
    expect(Number.isNaN(y[5])).toBe(true); // PyTorch: -inf * 0
    expect(Number.isNaN(y[8])).toBe(true);
    expect(y[3] === 0).toBe(true); // -1e30 * Phi(-1e30) underflows (PyTorch gives 0 as well)
  });

  test.each(isas)('%s: ReLU keeps NaN and -0, zeroes negatives', (isa) => {
    const y = runActivation(isa, 'relu', extremes);
    extremes.forEach((v, i) => expect(Object.is(y[i], Number.isNaN(v) ? NaN : v < 0 ? 0 : v)).toBe(true));
  });

  describe.each(simdIsas)('%s', (isa) => {
    test.each(SIZES)('GELU and ReLU match ref, in place too, n = %i', (n) => {
      const x = uniform(random(10000 + n), n, -14, 14);
      const gelu = runActivation(isa, 'gelu', x);
      expectClose(`gelu ${isa} vs ref`, gelu, runActivation('ref', 'gelu', x), 1e-6, 1e-37);
      expectSameBits(runActivation(isa, 'relu', x), runActivation('ref', 'relu', x));
      const inPlace = Float32Array.from(x);
      runActivation(isa, 'gelu', inPlace, inPlace);
      expectSameBits(inPlace, gelu);
    });
  });
});

// ---- Threads ------------------------------------------------------------------

describe('threads', () => {
  const initialThreads = binding.info().numThreads;
  afterAll(() => binding.setNumThreads(initialThreads));

  test.each(isas)('%s: 1 and 2 threads give identical bits', (isa) => {
    const rng = random(11000);
    // Enough rows for several tasks (32768 values each); the scalar reference is slow.
    const rows = isa === 'ref' ? 48 : 192;
    const n = 1000;
    const x = uniform(rng, rows * n, -6, 6);
    const mask = makeMask(rng, 4, n, true);
    const weight = uniform(rng, n, -2, 2);
    const bias = uniform(rng, n, -1, 1);
    const run = () => [
      runSoftmax(isa, x, rows, n, 1, 0.125, mask, 4),
      runSoftmax(isa, x, rows / 8, n / 8, 64, 0.5),
      runLayerNorm(isa, x, rows, n, 1e-5, weight, bias),
      runActivation(isa, 'gelu', x),
      runActivation(isa, 'relu', x),
    ];
    binding.setNumThreads(1);
    const single = run();
    binding.setNumThreads(2);
    const dual = run();
    single.forEach((y, i) => expectSameBits(dual[i], y));
  });
});

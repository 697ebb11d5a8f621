// GEMM on every ISA this machine can run: each SIMD micro-kernel (through the
// driver) against 'ref', and 'ref' against a plain triple loop in double
// precision below. Shapes straddle each ISA's register tile (mr x nr) and its
// kc block; C is pre-filled with NaN, so a kernel that reads C when it must
// not, or writes outside its tile, shows up. Every case runs on 1 and 2
// threads, and the two results must be bit-for-bit equal. Set
// GEMM_REPORT=1 to print the largest errors seen.
//
// Tolerance per element, from the standard bound on a float dot product
// (|fl(sum) - sum| <= gamma_k * sum |a_p b_p|, gamma_k ~ k * 2^-24):
//   dot  = sum_p |a_ip b_pj| + |bias_j|           (in double)
//   ref vs f64   |got - exp| <= k * 2^-24 * dot + 2e-7 * |exp|
//   ISA vs ref   |got - exp| <= 2 * k * 2^-24 * dot + 2e-6 * |exp|
// The second term covers the activation (GELU's vector erf is within a few
// ulp); GELU's slope is at most 1.13, so it does not grow the first term
// beyond the factor 2 of headroom.
import { binding } from '../lib/binding';
import type { ActivationName, GemmArgs, IsaName } from '../binding';
import { random, uniform } from './helpers';

const REPORT = process.env.GEMM_REPORT === '1';
const isas = binding.info().availableIsas;
const simdIsas = isas.filter((isa) => isa !== 'ref');
const initialThreads = binding.info().numThreads;
const U = 2 ** -24;



/** erf in double: Maclaurin series below 3, erfc's continued fraction (Lentz) above. */
function erf64(x: number): number {
  const z = Math.abs(x);
  let result: number;
  if (z < 3) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * sum; ++n) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    result = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...))))
    const tiny = 1e-300;
    let f = z;
    let c = z;
    let d = 0;
    for (let n = 1; n < 500; ++n) {
      const an = n / 2;
      d = z + an * d;
      d = Math.abs(d) < tiny ? 1 / tiny : 1 / d;
      c = z + an / c;
      if (Math.abs(c) < tiny) c = tiny;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    result = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -result : result;
}

function activate64(x: number, activation: ActivationName): number {
  if (activation === 'relu') return x > 0 ? x : 0;
  if (activation === 'gelu') return 0.5 * x * (1 + erf64(x / Math.SQRT2));
  return x;
}

// ---- Problems -----------------------------------------------------------------

/** How A and B sit in memory: the strides a Linear or attention would pass. */
type Layout = 'rowMajor' | 'transposed' | 'strided';

interface Case {
  batch: number;
  m: number;
  n: number;
  k: number;
  aLayout: Layout;
  bLayout: Layout;
  bias: boolean;
  activation: ActivationName;
  /** distinct B per batch entry (bOffsets) instead of one shared B */
  bPerBatch?: boolean;
  /** B given as a PackedB (then it is shared by the batch) */
  packed?: boolean;
}

interface Problem {
  c: Case;
  a: Float32Array;
  aRowStride: number;
  aColStride: number;
  aOffsets: Float64Array;
  b: Float32Array;
  bRowStride: number;
  bColStride: number;
  bOffsets: Float64Array;
  bias: Float32Array | null;
  ldc: number;
  cBatchStride: number;
  cLength: number;
}

/** Strides of an [rows, cols] operand stored in `layout`, with padding so strides are not the shape. */
function strides(layout: Layout, rows: number, cols: number): { row: number; col: number; size: number } {
  if (layout === 'rowMajor') return { row: cols + 3, col: 1, size: (rows - 1) * (cols + 3) + cols };
  if (layout === 'transposed') return { row: 1, col: rows + 2, size: (cols - 1) * (rows + 2) + rows };
  // Neither stride is 1: every other element of a row-major array.
  return { row: 2 * cols + 1, col: 2, size: (rows - 1) * (2 * cols + 1) + 2 * (cols - 1) + 1 };
}

function makeProblem(c: Case, seed: number): Problem {
  const rng = random(seed);
  const as = strides(c.aLayout, c.m, c.k);
  const bs = strides(c.bLayout, c.k, c.n);
  // Batch entries sit at uneven offsets (gaps of 5 elements) in one array.
  const aOffsets = Float64Array.from({ length: c.batch }, (_, i) => i * (as.size + 5));
  const bCount = c.bPerBatch ? c.batch : 1;
  const bOffsets = Float64Array.from({ length: c.batch }, (_, i) => (c.bPerBatch ? i * (bs.size + 5) : 0));
  const ldc = c.n + 3;
  const cBatchStride = c.m * ldc + 7;
  return {
    c,
    a: uniform(rng, c.batch * (as.size + 5)),
    aRowStride: as.row,
    aColStride: as.col,
    aOffsets,
    b: uniform(rng, bCount * (bs.size + 5)),
    bRowStride: bs.row,
    bColStride: bs.col,
    bOffsets,
    bias: c.bias ? uniform(rng, c.n) : null,
    ldc,
    cBatchStride,
    cLength: (c.batch - 1) * cBatchStride + (c.m - 1) * ldc + c.n,
  };
}

/** Runs the problem on `isa` with the pool's current threads; C starts as NaN everywhere. */
function run(p: Problem, isa: IsaName): Float32Array {
  const c = new Float32Array(p.cLength).fill(NaN);
  const args: GemmArgs = {
    batch: p.c.batch,
    m: p.c.m,
    n: p.c.n,
    k: p.c.k,
    a: p.a,
    aRowStride: p.aRowStride,
    aColStride: p.aColStride,
    aOffsets: p.aOffsets,
    b: p.c.packed ? binding.packB(p.b, p.c.k, p.c.n, p.bRowStride, p.bColStride, isa) : p.b,
    bRowStride: p.bRowStride,
    bColStride: p.bColStride,
    bOffsets: p.c.packed ? null : p.bOffsets,
    c,
    ldc: p.ldc,
    cBatchStride: p.cBatchStride,
    bias: p.bias,
    activation: p.c.activation,
    isa,
  };
  binding.gemm(args);
  return c;
}

/** C in double and, per element, sum |a b| + |bias| (the scale of its rounding error). */
function reference(p: Problem): { c: Float64Array; dot: Float64Array } {
  const { batch, m, n, k, activation } = p.c;
  const c = new Float64Array(p.cLength).fill(NaN);
  const dot = new Float64Array(p.cLength);
  for (let b = 0; b < batch; ++b) {
    for (let i = 0; i < m; ++i) {
      for (let j = 0; j < n; ++j) {
        let sum = p.bias ? p.bias[j] : 0;
        let scale = Math.abs(sum);
        let a = p.aOffsets[b] + i * p.aRowStride;
        let w = p.bOffsets[b] + j * p.bColStride;
        for (let q = 0; q < k; ++q, a += p.aColStride, w += p.bRowStride) {
          const product = p.a[a] * p.b[w];
          sum += product;
          scale += Math.abs(product);
        }
        const index = b * p.cBatchStride + i * p.ldc + j;
        c[index] = activate64(sum, activation);
        dot[index] = scale;
      }
    }
  }
  return { c, dot };
}

// Largest errors relative to the allowed error, per label, printed with GEMM_REPORT=1.
const worst = new Map<string, number>();

afterAll(() => {
  binding.setNumThreads(initialThreads);
  if (!REPORT) return;
  console.log([...worst.entries()].map(([label, r]) => `${label.padEnd(12)} max error / allowed ${r.toFixed(3)}`).join('\n'));
});

/**
 * got vs expected where expected is finite, with the tolerance above; where
 * expected is NaN (gaps between rows and batch entries), got must still be
 * the NaN it was filled with: nothing outside C's [m, n] tiles is written.
 */
function expectClose(label: string, got: Float32Array, expected: ArrayLike<number>, dot: Float64Array, k: number,
                     factor: number, rtol: number): void {
  let ratio = worst.get(label) ?? 0;
  for (let i = 0; i < got.length; ++i) {
    const e = expected[i];
    const g = got[i];
    if (Number.isNaN(e)) {
      if (!Number.isNaN(g)) throw new Error(`${label}: element ${i} outside C was written (${g})`);
      continue;
    }
    const allowed = factor * k * U * dot[i] + rtol * Math.abs(e) + 1e-30;
    const diff = Math.abs(g - e);
    if (!(diff <= allowed)) {
      throw new Error(`${label}: element ${i} is ${g}, expected ${e} (diff ${diff}, allowed ${allowed})`);
    }
    ratio = Math.max(ratio, diff / allowed);
  }
  worst.set(label, ratio);
}

function expectSameBits(label: string, got: Float32Array, expected: Float32Array): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < g.length; ++i) {
    if (g[i] !== e[i]) throw new Error(`${label}: element ${i} differs between 1 and 2 threads (${got[i]} vs ${expected[i]})`);
  }
}

/**
 * Runs every problem on ref and on each SIMD ISA with 1 thread and checks
 * the results, then runs them all again with 2 threads (one resize per
 * phase) and checks that nothing changed by a single bit.
 */
function check(...problems: Problem[]): void {
  binding.setNumThreads(1);
  const single = problems.map((p) => {
    const expected = reference(p);
    const ref = run(p, 'ref');
    expectClose('ref vs f64', ref, expected.c, expected.dot, p.c.k, 1, 2e-7);
    const simd = simdIsas.map((isa) => {
      const got = run(p, isa);
      expectClose(`${isa} vs ref`, got, ref, expected.dot, p.c.k, 2, 2e-6);
      return got;
    });
    return { ref, simd };
  });
  binding.setNumThreads(2);
  problems.forEach((p, i) => {
    expectSameBits('ref threads', run(p, 'ref'), single[i].ref);
    simdIsas.forEach((isa, j) => expectSameBits(`${isa} threads`, run(p, isa), single[i].simd[j]));
  });
}

// ---- Shapes -------------------------------------------------------------------

const tiles = isas.map((isa) => binding.gemmKernelInfo(isa));
const unique = (values: number[]): number[] => [...new Set(values.filter((v) => v >= 1))].sort((x, y) => x - y);
const mrs = tiles.map((t) => t.mr);
const nrs = tiles.map((t) => t.nr);
const kcs = tiles.map((t) => t.kc);
const maxMr = Math.max(...mrs);
const maxNr = Math.max(...nrs);

// Every ISA's edges: 1, mr - 1, mr, mr + 1 (likewise nr), 3 nr + 1.
const M_EDGES = unique([1, ...mrs.flatMap((mr) => [mr - 1, mr, mr + 1])]);
const N_EDGES = unique([1, ...nrs.flatMap((nr) => [nr - 1, nr, nr + 1, 3 * nr + 1])]);
const K_SMALL = [1, 7];
const LAYOUTS: Layout[] = ['rowMajor', 'transposed', 'strided'];
const EPILOGUES: Array<[boolean, ActivationName]> = [
  [false, 'none'], [true, 'none'], [false, 'relu'], [true, 'relu'], [false, 'gelu'], [true, 'gelu'],
];

function epilogue(index: number): { bias: boolean; activation: ActivationName } {
  const [bias, activation] = EPILOGUES[index % EPILOGUES.length];
  return { bias, activation };
}

describe('gemm micro-kernels vs ref vs a double-precision triple loop', () => {
  test('tile edges: m, n around every ISA\'s mr, nr; small k', () => {
    const problems: Problem[] = [];
    for (const m of M_EDGES) {
      for (const n of N_EDGES) {
        for (const k of K_SMALL) {
          const index = problems.length;
          problems.push(makeProblem({ batch: 1, m, n, k, aLayout: LAYOUTS[index % 3], bLayout: LAYOUTS[(index + 1) % 3],
                                      ...epilogue(index) }, 1000 + index));
        }
      }
    }
    check(...problems);
  });

  test('k crossing kc: kc - 1, kc, kc + 1, 2 kc + 3 for every ISA\'s kc', () => {
    const ks = unique(kcs.flatMap((kc) => [kc - 1, kc, kc + 1, 2 * kc + 3]));
    const problems: Problem[] = [];
    for (const k of ks) {
      for (const [m, n] of [[maxMr + 1, maxNr + 1], [2 * maxMr, 3 * maxNr + 1]]) {
        const index = problems.length;
        problems.push(makeProblem({ batch: 1, m, n, k, aLayout: LAYOUTS[index % 3], bLayout: LAYOUTS[(index + 2) % 3],
                                    ...epilogue(index) }, 2000 + index));
      }
    }
    check(...problems);
  });

  test('multiples of the tiles and 257 (split over 2 threads)', () => {
    const lcmMr = mrs.reduce((x, y) => (x * y) / gcd(x, y));
    check(
      makeProblem({ batch: 1, m: 257, n: 257, k: 300, aLayout: 'rowMajor', bLayout: 'transposed', bias: true,
                        activation: 'gelu' }, 3001),
      makeProblem({ batch: 1, m: lcmMr * 2, n: 4 * maxNr, k: 2 * Math.max(...kcs), aLayout: 'rowMajor',
                        bLayout: 'transposed', bias: true, activation: 'relu' }, 3002),
      makeProblem({ batch: 1, m: 8, n: 1000, k: 300, aLayout: 'rowMajor', bLayout: 'transposed', bias: true,
                        activation: 'none' }, 3003),
      makeProblem({ batch: 1, m: 200, n: 33, k: 600, aLayout: 'transposed', bLayout: 'rowMajor', bias: false,
                        activation: 'gelu' }, 3004),
    );
  });

  // 'amx' runs problems of >= 96 rows per task (192 on 2 threads) through
  // the matrix unit and smaller ones through the AVX-512 kernel; these reach
  // the AMX path's 32 x 32 block edges (rows and columns 1, 15, 16, 17 past
  // a multiple of 32), its kc (256) and nc (512) blocks, and k under 32.
  test('large-M problems: AMX block edges, kc and nc blocks, tiny k', () => {
    const shapes: Array<[number, number, number]> = [
      [193, 17, 1], [207, 31, 31], [208, 513, 33], [209, 48, 256], [224, 1, 257], [225, 1040, 520], [255, 16, 700],
    ];
    check(...shapes.map(([m, n, k], i) => makeProblem({
      batch: 1, m, n, k, aLayout: LAYOUTS[i % 3], bLayout: LAYOUTS[(i + 1) % 3], ...epilogue(i),
    }, 5000 + i)));
  });

  test('batch with offsets: shared B, one B per entry, and a PackedB', () => {
    check(
      makeProblem({ batch: 3, m: 37, n: 45, k: 70, aLayout: 'rowMajor', bLayout: 'transposed', bias: true,
                        activation: 'none', bPerBatch: true }, 4001),
      makeProblem({ batch: 5, m: 19, n: 64, k: 33, aLayout: 'rowMajor', bLayout: 'rowMajor', bias: false,
                        activation: 'relu', bPerBatch: false }, 4002),
      makeProblem({ batch: 3, m: 100, n: 130, k: 300, aLayout: 'transposed', bLayout: 'transposed', bias: true,
                        activation: 'gelu', bPerBatch: true }, 4003),
      makeProblem({ batch: 2, m: 29, n: 97, k: 513, aLayout: 'rowMajor', bLayout: 'transposed', bias: true,
                        activation: 'gelu', packed: true }, 4004),
      makeProblem({ batch: 1, m: 8, n: 600, k: 400, aLayout: 'rowMajor', bLayout: 'transposed', bias: true,
                        activation: 'relu', packed: true }, 4005),
    );
  });

  test('k = 1 with zeros and GELU\'s far tails', () => {
    const p = makeProblem({ batch: 1, m: 3, n: 5, k: 1, aLayout: 'rowMajor', bLayout: 'rowMajor', bias: false,
                            activation: 'gelu' }, 5001);
    // A is [3, 1] with row stride 4, B is [1, 5]: products 0, +-10 .. +-30, +-6 .. +-18.
    [0, -10, 6].forEach((value, i) => (p.a[i * p.aRowStride] = value));
    p.b.set([1, -1, 0.5, 2, -3]);
    check(p);
  });
});

function gcd(x: number, y: number): number {
  return y === 0 ? x : gcd(y, x % y);
}

describe('plan: a residual add folded into the GEMM of the Linear before it', () => {
  // out = x · Wᵀ + bias + r. The Plan folds the add into the Linear's GEMM
  // when nothing else reads the Linear's output; making that output a plan
  // output too keeps the add apart. Both must give the same bits (float
  // addition commutes) and match a double-precision reference.
  const rows = 200, k = 40, n = 72;
  const rng = random(17);
  const x = uniform(rng, rows * k), w = uniform(rng, n * k), bias = uniform(rng, n), r = uniform(rng, rows * n);
  const weight = binding.packB(w, k, n, 1, k); // B = Wᵀ [k, n]: element (p, j) at j * k + p
  const biasParam = binding.createParameter(bias);
  const f32 = (count: number) => ({ type: 'float32' as const, count });

  function reference(): Float64Array {
    const out = new Float64Array(rows * n);
    for (let i = 0; i < rows; ++i) {
      for (let j = 0; j < n; ++j) {
        let sum = bias[j];
        for (let p = 0; p < k; ++p) sum += x[i * k + p] * w[j * k + p];
        out[i * n + j] = sum + r[i * n + j];
      }
    }
    return out;
  }

  test('folded and separate adds agree bit for bit, either operand order, and match the reference', () => {
    // values: 0 x, 1 r, 2 linear out, 3 sum
    const steps = (order: 'pr' | 'rp') => [
      { kind: 'linear' as const, inputs: [0] as [number], output: 2, weight, bias: biasParam },
      { kind: 'add' as const, inputs: (order === 'pr' ? [2, 1] : [1, 2]) as [number, number], output: 3, outer: 1, mid: 1, inner: rows * n },
    ];
    const values = [f32(rows * k), f32(rows * n), f32(rows * n), f32(rows * n)];
    const [folded] = binding.createPlan({ values, inputs: [0, 1], outputs: [3], steps: steps('pr') }).run([x, r]);
    const [foldedSwapped] = binding.createPlan({ values, inputs: [0, 1], outputs: [3], steps: steps('rp') }).run([x, r]);
    const [separate, linearOut] = binding.createPlan({ values, inputs: [0, 1], outputs: [3, 2], steps: steps('pr') }).run([x, r]);
    expect(Buffer.from(folded.buffer).equals(Buffer.from(separate.buffer))).toBe(true);
    expect(Buffer.from(foldedSwapped.buffer).equals(Buffer.from(separate.buffer))).toBe(true);
    const expected = reference();
    let worst = 0;
    for (let i = 0; i < rows * n; ++i) {
      expect(separate[i]).toBe(Math.fround(linearOut[i] + r[i]));
      worst = Math.max(worst, Math.abs(folded[i] - expected[i]));
    }
    expect(worst).toBeLessThan(1e-5);
  });

  test('a residual written after the Linear: the other operand is folded instead, same result', () => {
    // values: 0 x, 1 p = linear(x), 2 q = linear2(x) with the same weight, 3 p + q.
    // p is written before q's step, so the add folds into q's GEMM with p as the residual.
    const values = [f32(rows * k), f32(rows * n), f32(rows * n), f32(rows * n)];
    const steps = [
      { kind: 'linear' as const, inputs: [0] as [number], output: 1, weight, bias: biasParam },
      { kind: 'linear' as const, inputs: [0] as [number], output: 2, weight, bias: null },
      { kind: 'add' as const, inputs: [1, 2] as [number, number], output: 3, outer: 1, mid: 1, inner: rows * n },
    ];
    const [sum] = binding.createPlan({ values, inputs: [0], outputs: [3], steps }).run([x]);
    const [sumApart, p, q] = binding.createPlan({ values, inputs: [0], outputs: [3, 1, 2], steps }).run([x]);
    for (let i = 0; i < rows * n; ++i) expect(sumApart[i]).toBe(Math.fround(p[i] + q[i]));
    expect(Buffer.from(sum.buffer).equals(Buffer.from(sumApart.buffer))).toBe(true);
  });
});

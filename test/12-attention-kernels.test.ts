// Fused (FlashAttention-style) attention against the math path and a
// float64 reference, on every ISA this machine can run, through
// binding.attention (which takes an `isa`, as binding.gemm does); then the
// plan's 'attention' step with `causal`, and the modules' route to it.
//
// Tolerance, per output element (n, i, h, d):
//   |got - expected| <= 1e-5 * sum_j p_ij |v_jd| + 1e-30
// i.e. 1e-5 relative to the magnitude of the terms of the weighted sum (an
// output near 0 by cancellation is held to its terms' size, not to 0).
// Probabilities (math path weights): |got - p| <= 1e-5 * p + 1e-7.
// Rows whose keys are all masked must be exactly 0 (no NaN) on both paths.
// Set ATTENTION_REPORT=1 to print the largest errors seen per ISA.
import { binding } from '../lib/binding';
import { nn, tensor, randn } from '../lib';
import type { AttentionArgs, IsaName, PlanStep } from '../binding';
import { expectError, random, uniform } from './helpers';

const REPORT = process.env.ATTENTION_REPORT === '1';
const isas = binding.info().availableIsas;
const RTOL = 1e-5;



type MaskKind = 'none' | '2d' | '3d';

interface Case {
  name: string;
  batch: number;
  heads: number;
  tgtLen: number;
  srcLen: number;
  headDim: number;
  vHeadDim?: number;
  batchFirst: boolean;
  mask?: MaskKind;
  padding?: boolean;
  causal?: boolean;
  /** fills the masks (after random values): e.g. -inf rows or tiles */
  shape?: (m: Masks, c: Case) => void;
  /** multiplies q, so scores spread further and the running max moves more */
  spread?: number;
}

interface Masks {
  attnMask: Float32Array | null;
  keyPaddingMask: Float32Array | null;
}

interface Problem {
  args: Omit<AttentionArgs, 'out' | 'isa'>;
  outLength: number;
}

function stridesFor(c: Case, length: number, width: number) {
  return c.batchFirst ? { batchStride: length * width, seqStride: width } : { batchStride: width, seqStride: c.batch * width };
}

function build(c: Case, seed: number): Problem {
  const rng = random(seed);
  const { batch: N, heads: H, tgtLen: L, srcLen: S, headDim: D } = c;
  const Dv = c.vHeadDim ?? D;
  const q = uniform(rng, N * L * H * D, -1, 1).map((x) => x * (c.spread ?? 1));
  const k = uniform(rng, N * S * H * D, -1, 1);
  const v = uniform(rng, N * S * H * Dv, -1, 1);
  const masks: Masks = { attnMask: null, keyPaddingMask: null };
  if (c.mask === '2d' || c.mask === '3d') {
    const count = (c.mask === '3d' ? N * H : 1) * L * S;
    masks.attnMask = uniform(rng, count, -2, 2);
    // A sprinkle of -inf entries (bool masks arrive as 0 / -inf).
    for (let i = 0; i < count; ++i) if (rng() < 0.1) masks.attnMask[i] = -Infinity;
  }
  if (c.padding) {
    masks.keyPaddingMask = new Float32Array(N * S);
    for (let i = 0; i < N * S; ++i) masks.keyPaddingMask[i] = rng() < 0.2 ? -Infinity : 0;
  }
  c.shape?.(masks, c);
  return {
    args: {
      batch: N, heads: H, tgtLen: L, srcLen: S, headDim: D, vHeadDim: Dv,
      q, qStrides: stridesFor(c, L, H * D), k, kStrides: stridesFor(c, S, H * D), v, vStrides: stridesFor(c, S, H * Dv),
      outStrides: stridesFor(c, L, H * Dv), scale: 1 / Math.sqrt(D),
      attnMask: masks.attnMask, attnMaskPerHead: c.mask === '3d', keyPaddingMask: masks.keyPaddingMask, causal: c.causal ?? false,
    },
    outLength: N * L * H * Dv,
  };
}

interface Reference {
  out: Float64Array;
  /** sum_j p_ij |v_jd|, the error scale of each output element */
  magnitude: Float64Array;
  /** [N, H, L, S] */
  weights: Float64Array;
  /** per output element: its row's keys are all masked */
  masked: Uint8Array;
}

/** The formula in float64: softmax(scale * q·k + masks) · v, causal j > i masked, all -inf rows → zeros. */
function reference(a: Problem['args']): Reference {
  const { batch: N, heads: H, tgtLen: L, srcLen: S, headDim: D, vHeadDim: Dv } = a;
  const outLength = N * L * H * Dv;
  const ref: Reference = {
    out: new Float64Array(outLength), magnitude: new Float64Array(outLength),
    weights: new Float64Array(N * H * L * S), masked: new Uint8Array(outLength),
  };
  const scores = new Float64Array(S);
  for (let n = 0; n < N; ++n) {
    for (let h = 0; h < H; ++h) {
      for (let i = 0; i < L; ++i) {
        const qBase = n * a.qStrides.batchStride + i * a.qStrides.seqStride + h * D;
        let max = -Infinity;
        for (let j = 0; j < S; ++j) {
          const kBase = n * a.kStrides.batchStride + j * a.kStrides.seqStride + h * D;
          let dot = 0;
          for (let d = 0; d < D; ++d) dot += a.q[qBase + d] * a.k[kBase + d];
          let s = a.scale * dot;
          if (a.attnMask) s += a.attnMask[(a.attnMaskPerHead ? (n * H + h) * L * S : 0) + i * S + j];
          if (a.keyPaddingMask) s += a.keyPaddingMask[n * S + j];
          if (a.causal && j > i) s = -Infinity;
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j < S; ++j) sum += (scores[j] = max === -Infinity ? 0 : Math.exp(scores[j] - max));
        const outBase = n * a.outStrides.batchStride + i * a.outStrides.seqStride + h * Dv;
        for (let j = 0; j < S; ++j) {
          const p = sum === 0 ? 0 : scores[j] / sum;
          ref.weights[((n * H + h) * L + i) * S + j] = p;
          if (p === 0) continue;
          const vBase = n * a.vStrides.batchStride + j * a.vStrides.seqStride + h * Dv;
          for (let d = 0; d < Dv; ++d) {
            ref.out[outBase + d] += p * a.v[vBase + d];
            ref.magnitude[outBase + d] += p * Math.abs(a.v[vBase + d]);
          }
        }
        if (sum === 0) ref.masked.fill(1, outBase, outBase + Dv);
      }
    }
  }
  return ref;
}

const worst = new Map<string, number>();

/** Checks got against expected with the error scale of the reference; returns the largest error / scale. */
function expectClose(label: string, got: Float32Array, expected: ArrayLike<number>, ref: Reference): void {
  let largest = 0;
  for (let e = 0; e < got.length; ++e) {
    if (ref.masked[e]) {
      if (!Object.is(got[e], 0) && got[e] !== 0) throw new Error(`${label}: element ${e} of a fully masked row is ${got[e]}, expected 0`);
      continue;
    }
    const allowed = RTOL * ref.magnitude[e] + 1e-30;
    const diff = Math.abs(got[e] - expected[e]);
    if (!(diff <= allowed)) {
      throw new Error(`${label}: element ${e} is ${got[e]}, expected ${expected[e]} (diff ${diff}, allowed ${allowed})`);
    }
    if (ref.magnitude[e] > 0) largest = Math.max(largest, diff / ref.magnitude[e]);
  }
  const key = label.split(' ')[0];
  worst.set(key, Math.max(worst.get(key) ?? 0, largest));
}

afterAll(() => {
  if (!REPORT) return;
  console.log([...worst.entries()].map(([label, e]) => `${label.padEnd(16)} max |error| / sum p|v| ${e.toExponential(2)}`).join('\n'));
});

// Masks that make rows, tiles or whole batch entries -inf.
const fullyMaskedRows = (m: Masks, c: Case) => {
  // Rows 0 and 3 of the attention mask see nothing; batch entry 1 has every key padded.
  for (const row of [0, 3]) m.attnMask?.fill(-Infinity, row * c.srcLen, (row + 1) * c.srcLen);
  m.keyPaddingMask?.fill(-Infinity, c.srcLen, 2 * c.srcLen);
};
const leadingTileMasked = (m: Masks, c: Case) => {
  // Every row: the first 140 keys (more than one key tile on every ISA) are
  // -inf, the rest finite: the running max is -inf for whole tiles first.
  for (let i = 0; i < c.tgtLen; ++i) m.attnMask!.fill(-Infinity, i * c.srcLen, i * c.srcLen + 140);
};
const trailingTileMasked = (m: Masks, c: Case) => {
  // Finite keys first, then a whole tile of -inf.
  for (let i = 0; i < c.tgtLen; ++i) m.attnMask!.fill(-Infinity, i * c.srcLen + 20, (i + 1) * c.srcLen);
};
const risingScores = (m: Masks, c: Case) => {
  // A ramp: every key tile raises the running max, so every tile rescales.
  for (let i = 0; i < c.tgtLen; ++i) for (let j = 0; j < c.srcLen; ++j) m.attnMask![i * c.srcLen + j] = 0.05 * j;
};

const CASES: Case[] = [
  { name: 'no mask, d12', batch: 2, heads: 3, tgtLen: 5, srcLen: 7, headDim: 12, batchFirst: true },
  { name: 'no mask, d64, seq-first', batch: 2, heads: 2, tgtLen: 150, srcLen: 150, headDim: 64, batchFirst: false, spread: 4 },
  { name: '2-D mask, d20, S % tile', batch: 1, heads: 3, tgtLen: 37, srcLen: 150, headDim: 20, batchFirst: false, mask: '2d' },
  { name: '3-D mask, d36', batch: 2, heads: 2, tgtLen: 71, srcLen: 130, headDim: 36, batchFirst: true, mask: '3d' },
  { name: 'key padding, d64', batch: 3, heads: 1, tgtLen: 9, srcLen: 200, headDim: 64, batchFirst: true, padding: true },
  { name: 'both masks, d12, seq-first', batch: 2, heads: 2, tgtLen: 66, srcLen: 129, headDim: 12, batchFirst: false, mask: '2d', padding: true },
  { name: 'both masks 3-D, d20', batch: 2, heads: 2, tgtLen: 20, srcLen: 33, headDim: 20, batchFirst: true, mask: '3d', padding: true },
  { name: 'causal L = S, d64', batch: 2, heads: 2, tgtLen: 150, srcLen: 150, headDim: 64, batchFirst: true, causal: true, spread: 3 },
  { name: 'causal L > S, d36', batch: 1, heads: 2, tgtLen: 200, srcLen: 90, headDim: 36, batchFirst: false, causal: true },
  { name: 'causal L < S, d20', batch: 2, heads: 1, tgtLen: 40, srcLen: 300, headDim: 20, batchFirst: true, causal: true },
  { name: 'causal + both masks, d12', batch: 2, heads: 2, tgtLen: 75, srcLen: 75, headDim: 12, batchFirst: false, mask: '3d', padding: true, causal: true },
  { name: 'fully masked rows', batch: 2, heads: 2, tgtLen: 8, srcLen: 140, headDim: 12, batchFirst: true, mask: '2d', padding: true, shape: fullyMaskedRows },
  { name: 'causal fully masked rows', batch: 2, heads: 1, tgtLen: 8, srcLen: 8, headDim: 20, batchFirst: false, mask: '2d', padding: true, causal: true, shape: fullyMaskedRows },
  { name: 'leading -inf tile', batch: 1, heads: 2, tgtLen: 10, srcLen: 300, headDim: 36, batchFirst: true, mask: '2d', shape: leadingTileMasked },
  { name: 'trailing -inf tile', batch: 1, heads: 2, tgtLen: 10, srcLen: 300, headDim: 36, batchFirst: false, mask: '2d', shape: trailingTileMasked },
  { name: 'rising scores', batch: 1, heads: 1, tgtLen: 16, srcLen: 400, headDim: 64, batchFirst: true, mask: '2d', shape: risingScores },
  { name: 'L = 1', batch: 2, heads: 2, tgtLen: 1, srcLen: 257, headDim: 64, batchFirst: false, padding: true },
  { name: 'S = 1', batch: 2, heads: 2, tgtLen: 130, srcLen: 1, headDim: 12, batchFirst: true, mask: '2d' },
  { name: 'L = S = 1', batch: 1, heads: 1, tgtLen: 1, srcLen: 1, headDim: 36, batchFirst: true },
  { name: 'causal L = 1', batch: 2, heads: 2, tgtLen: 1, srcLen: 40, headDim: 20, batchFirst: true, causal: true },
  { name: 'v head dim 12, head dim 20', batch: 2, heads: 2, tgtLen: 30, srcLen: 140, headDim: 20, vHeadDim: 12, batchFirst: false, mask: '2d' },
];

function run(problem: Problem, isa: IsaName, algorithm: 'fused' | 'math', weights?: Float32Array) {
  const out = new Float32Array(problem.outLength).fill(NaN);
  const result = binding.attention({ ...problem.args, out, isa, algorithm, weights: weights ?? null });
  return { out, scratchBytes: result.scratchBytes };
}

describe.each(isas)('attention on %s', (isa) => {
  test.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, index) => {
    const problem = build(c, 1000 + index);
    const ref = reference(problem.args);
    const fused = run(problem, isa, 'fused');
    const weights = new Float32Array(c.batch * c.heads * c.tgtLen * c.srcLen).fill(NaN);
    const math = run(problem, isa, 'math', weights);
    expectClose(`${isa}:fused ${c.name} vs f64`, fused.out, ref.out, ref);
    expectClose(`${isa}:math ${c.name} vs f64`, math.out, ref.out, ref);
    expectClose(`${isa}:fused-vs-math ${c.name}`, fused.out, math.out, ref);
    for (let i = 0; i < weights.length; ++i) {
      const p = ref.weights[i];
      if (!(Math.abs(weights[i] - p) <= 1e-5 * p + 1e-7)) throw new Error(`${isa} ${c.name}: weight ${i} is ${weights[i]}, expected ${p}`);
    }
  });

  test('fused scratch stops growing at its tile sizes; the math path holds [L, S]', () => {
    const shape = (tgtLen: number, srcLen: number): Case => ({ name: 's', batch: 1, heads: 1, tgtLen, srcLen, headDim: 64, batchFirst: true });
    const tiny = run(build(shape(64, 64), 1), isa, 'fused').scratchBytes;
    const capped = run(build(shape(600, 200), 2), isa, 'fused').scratchBytes;  // past the 512-query group and 192-key tile
    const large = build(shape(1100, 1100), 3);
    expect(tiny).toBeLessThanOrEqual(capped);
    expect(run(large, isa, 'fused').scratchBytes).toBe(capped);
    expect(capped).toBeLessThan(512 * 1024);
    expect(run(large, isa, 'math').scratchBytes).toBeGreaterThanOrEqual(1100 * 1100 * 4);
  });

  test('up to 16 queries go row by row: one row of scores, with or without weights', () => {
    const shape = (tgtLen: number): Case => ({ name: 's', batch: 1, heads: 2, tgtLen, srcLen: 300, headDim: 20, batchFirst: true });
    expect(run(build(shape(16), 4), isa, 'fused').scratchBytes).toBe(300 * 4);
    expect(run(build(shape(16), 5), isa, 'math', new Float32Array(2 * 16 * 300)).scratchBytes).toBe(0);
    expect(run(build(shape(17), 6), isa, 'fused').scratchBytes).toBeGreaterThan(300 * 4);
  });
});

describe('plan attention step', () => {
  // [q, k, v, attnMask | -1, keyPaddingMask | -1] as plan inputs; out as the output.
  function planFor(problem: Problem, step: Partial<Extract<PlanStep, { kind: 'attention' }>>, withMask: boolean) {
    const a = problem.args;
    const values = [
      { type: 'float32' as const, count: a.q.length }, { type: 'float32' as const, count: a.k.length },
      { type: 'float32' as const, count: a.v.length },
    ];
    if (withMask) values.push({ type: 'float32', count: a.tgtLen * a.srcLen });
    const out = values.push({ type: 'float32', count: problem.outLength }) - 1;
    const inputs = withMask ? [0, 1, 2, 3] : [0, 1, 2];
    return binding.createPlan({
      values, inputs, outputs: [out],
      steps: [{
        kind: 'attention', inputs: [0, 1, 2, withMask ? 3 : -1, -1], output: out,
        batch: a.batch, heads: a.heads, tgtLen: a.tgtLen, srcLen: a.srcLen, headDim: a.headDim, vHeadDim: a.vHeadDim,
        q: a.qStrides, k: a.kStrides, v: a.vStrides, outBatchStride: a.outStrides.batchStride, outSeqStride: a.outStrides.seqStride,
        scale: a.scale, ...step,
      }],
    });
  }

  test('causal: true equals an explicit causal mask, and the f64 reference', () => {
    const c: Case = { name: 'plan', batch: 2, heads: 2, tgtLen: 150, srcLen: 150, headDim: 64, batchFirst: false, causal: true };
    const problem = build(c, 7);
    const ref = reference(problem.args);
    const causalMask = new Float32Array(c.tgtLen * c.srcLen);
    for (let i = 0; i < c.tgtLen; ++i) causalMask.fill(-Infinity, i * c.srcLen + i + 1, (i + 1) * c.srcLen);
    const a = problem.args;
    const [viaFlag] = planFor(problem, { causal: true }, false).run([a.q, a.k, a.v]);
    const [viaMask] = planFor(problem, {}, true).run([a.q, a.k, a.v, causalMask]);
    expectClose('plan:causal-flag', viaFlag, ref.out, ref);
    expectClose('plan:causal-mask', viaMask, ref.out, ref);
  });
});

describe('plan attention step: q, k and v as column ranges of one value', () => {
  // Self-attention's fused projection writes rows [q | k | v] of width 3E;
  // the step reads each through its offset and the 3E row stride.
  test('equals separate q, k, v arrays, in both layouts; an offset past the value is rejected', () => {
    for (const batchFirst of [true, false]) {
      const c: Case = { name: 'fused', batch: 2, heads: 4, tgtLen: 37, srcLen: 37, headDim: 16, batchFirst };
      const problem = build(c, 23);
      const a = problem.args;
      const E = c.heads * c.headDim, rows = c.batch * c.tgtLen;
      // Row r of q (in either layout, rows are E apart) goes to row r of qkv.
      const qkv = new Float32Array(rows * 3 * E);
      for (let r = 0; r < rows; ++r) {
        qkv.set(a.q.subarray(r * E, (r + 1) * E), r * 3 * E);
        qkv.set(a.k.subarray(r * E, (r + 1) * E), r * 3 * E + E);
        qkv.set(a.v.subarray(r * E, (r + 1) * E), r * 3 * E + 2 * E);
      }
      const wide = stridesFor(c, c.tgtLen, 3 * E);
      const step = (vOffset: number) => ({
        kind: 'attention' as const, inputs: [0, 0, 0, -1, -1] as [number, number, number, number, number], output: 1,
        batch: c.batch, heads: c.heads, tgtLen: c.tgtLen, srcLen: c.srcLen, headDim: c.headDim, vHeadDim: c.headDim,
        q: { ...wide, offset: 0 }, k: { ...wide, offset: E }, v: { ...wide, offset: vOffset },
        outBatchStride: a.outStrides.batchStride, outSeqStride: a.outStrides.seqStride, scale: a.scale,
      });
      const values = [{ type: 'float32' as const, count: qkv.length }, { type: 'float32' as const, count: problem.outLength }];
      const [fused] = binding.createPlan({ values, inputs: [0], outputs: [1], steps: [step(2 * E)] }).run([qkv]);
      const [separate] = binding.createPlan({
        values: [{ type: 'float32', count: a.q.length }, { type: 'float32', count: a.k.length }, { type: 'float32', count: a.v.length },
          { type: 'float32', count: problem.outLength }],
        inputs: [0, 1, 2], outputs: [3],
        steps: [{ ...step(2 * E), inputs: [0, 1, 2, -1, -1], output: 3, q: a.qStrides, k: a.kStrides, v: a.vStrides }],
      }).run([a.q, a.k, a.v]);
      expect(Buffer.from(fused.buffer).equals(Buffer.from(separate.buffer))).toBe(true);
      expectError(() => binding.createPlan({ values, inputs: [0], outputs: [1], steps: [step(2 * E + 1)] }),
        RangeError, 'ERR_SIMDFORMER_INVALID_PLAN', /q, k, v or output too small/);
    }
  });
});

describe('modules take the causal route as PyTorch does', () => {
  const steps: PlanStep[][] = [];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    steps.length = 0;
    const original = binding.createPlan.bind(binding);
    spy = jest.spyOn(binding, 'createPlan').mockImplementation((description) => {
      steps.push(description.steps);
      return original(description);
    });
  });
  afterEach(() => spy.mockRestore());
  const attentionSteps = () => steps.flat().filter((s): s is Extract<PlanStep, { kind: 'attention' }> => s.kind === 'attention');

  test('encoder with isCausal and a causal mask: causal step, mask dropped, same output', () => {
    const layer = new nn.TransformerEncoderLayer(32, 4, { dimFeedforward: 64, batchFirst: true });
    const encoder = new nn.TransformerEncoder(layer, 2);
    const src = randn([2, 150, 32], { seed: 3 });
    const mask = nn.Transformer.generateSquareSubsequentMask(150);
    const hinted = encoder.forwardSync(src, { mask, isCausal: true });
    const hintedSteps = attentionSteps();
    expect(hintedSteps).toHaveLength(2);
    for (const step of hintedSteps) {
      expect(step.causal).toBe(true);
      expect(step.inputs[3]).toBe(-1);
    }
    steps.length = 0;
    const plain = encoder.forwardSync(src, { mask });
    expect(attentionSteps().every((s) => !s.causal && s.inputs[3] !== -1)).toBe(true);
    const a = hinted.data as Float32Array, b = plain.data as Float32Array;
    for (let i = 0; i < a.length; ++i) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(b[i])));
  });

  test('self-attention projects q, k and v in one GEMM; cross-attention and distinct tensors do not', () => {
    const E = 32;
    const linearWidths = () => steps.flat().filter((s): s is Extract<PlanStep, { kind: 'linear' }> => s.kind === 'linear').map((s) => s.weight.n);
    const decoder = new nn.TransformerDecoderLayer(E, 4, { dimFeedforward: 64, batchFirst: true });
    decoder.forwardSync(randn([2, 5, E], { seed: 1 }), randn([2, 7, E], { seed: 2 }));
    // self-attention [3E], its out_proj, cross-attention q, k, v, its out_proj, two feed-forward layers
    expect(linearWidths()).toEqual([3 * E, E, E, E, E, E, 64, E]);
    steps.length = 0;
    const mha = new nn.MultiheadAttention(E, 4);
    const x = randn([5, 2, E], { seed: 3 });
    const [same] = mha.forwardSync(x, x, x);
    expect(linearWidths()).toEqual([3 * E, E]);
    steps.length = 0;
    const copy = () => tensor(x.data as Float32Array, { shape: [5, 2, E] }); // a copy: another tensor
    const [apart] = mha.forwardSync(x, copy(), copy());
    expect(linearWidths()).toEqual([E, E, E, E]);
    expect(Buffer.from((same.data as Float32Array).buffer).equals(Buffer.from((apart.data as Float32Array).buffer))).toBe(true);
  });

  test('no causal route with a key padding mask or when weights are wanted', () => {
    const mha = new nn.MultiheadAttention(16, 2, { batchFirst: true });
    const x = randn([2, 6, 16], { seed: 4 });
    const mask = nn.Transformer.generateSquareSubsequentMask(6);
    const padding = tensor([[false, false, false, false, false, true], [false, false, false, false, false, false]], { dtype: 'bool' });
    mha.forwardSync(x, x, x, { attnMask: mask, isCausal: true, keyPaddingMask: padding, needWeights: false });
    mha.forwardSync(x, x, x, { attnMask: mask, isCausal: true, needWeights: true });
    expect(attentionSteps().some((s) => s.causal)).toBe(false);
    mha.forwardSync(x, x, x, { attnMask: mask, isCausal: true, needWeights: false });
    expect(attentionSteps().filter((s) => s.causal)).toHaveLength(1);
  });
});

describe('binding.attention arguments', () => {
  const problem = build({ name: 'args', batch: 1, heads: 1, tgtLen: 4, srcLen: 4, headDim: 8, batchFirst: true }, 9);
  test('a too-short q, weights with the fused algorithm, overlapping output, an unknown algorithm', () => {
    const out = new Float32Array(problem.outLength);
    const range = 'ERR_SIMDFORMER_OUT_OF_RANGE';
    expectError(() => binding.attention({ ...problem.args, q: problem.args.q.subarray(1), out }), RangeError, range, /^Expected args\.q to hold/);
    expectError(() => binding.attention({ ...problem.args, out, algorithm: 'fused', weights: new Float32Array(16) }), RangeError, range,
      "Expected args.algorithm 'math' or undefined with args.weights but received 'fused'");
    expectError(() => binding.attention({ ...problem.args, out: problem.args.q }), RangeError, range, /not to overlap/);
    expectError(() => binding.attention({ ...problem.args, out, algorithm: 'flash' as 'fused' }), TypeError, 'ERR_SIMDFORMER_INVALID_ARG_TYPE',
      /args\.algorithm/);
  });
});

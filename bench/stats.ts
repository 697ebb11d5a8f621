/** Summaries of timing samples. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  count: number;
}

export function summarize(values: readonly number[]): Summary {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), count: values.length };
}

/**
 * The median over paired samples of ours[i] / theirs[i], over the i where
 * both were measured (null: that engine sat the round out). Each pair was
 * measured back to back, so slow drift of the machine cancels in the ratio.
 */
export function medianRatio(ours: readonly (number | null)[], theirs: readonly (number | null)[]): number {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(ours.length, theirs.length); i++) {
    const [a, b] = [ours[i], theirs[i]];
    if (a !== null && b !== null) ratios.push(a / b);
  }
  return median(ratios);
}

/** The largest |a[i] - b[i]| over the indices `include` accepts (all by default); NaN anywhere counts as Infinity. */
export function maxAbsDiff(a: Float32Array, b: Float32Array, include: (index: number) => boolean = () => true): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (!include(i)) continue;
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

/** Wall-clock seconds one call of fn takes. */
export function seconds(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** count floats in [-1, 1) from a seeded linear congruential generator (benchmark inputs; values do not matter). */
export function random(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed;
  for (let i = 0; i < count; ++i) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = 2 * (state / 4294967296) - 1;
  }
  return out;
}

/**
 * GEMM throughput beside the machine's measured FMA peak: `npm run bench:gemm`
 * (after `tsc`), or `node dist/bench/gemm.js [--json FILE] [--isa avx512,avx2]`.
 *
 * Each problem is a Linear's forward pass, y = x · Wᵀ + 0 with x [M, K]
 * row-major and W [N, K] packed once beforehand (packB), as a Linear packs
 * its weight at load. Every (ISA, threads) pair first measures its peak:
 * fmaPeak on one thread, fmaPeakParallel on every pool thread. A figure is
 * the median of several timed samples taken after a warm-up run, each sample
 * repeating the call for at least ~0.1 s.
 */
import * as fs from 'fs';
import * as os from 'os';
import { binding } from '../lib/binding';
import type { IsaName, PackedB } from '../binding';

interface Shape {
  m: number;
  k: number;
  n: number;
}

const SHAPES: Shape[] = [
  { m: 1024, k: 512, n: 512 },
  { m: 1024, k: 512, n: 1536 },
  { m: 1024, k: 512, n: 2048 },
  { m: 1024, k: 2048, n: 512 },
  { m: 8, k: 512, n: 2048 },
  { m: 2048, k: 2048, n: 2048 },
];
const THREADS = [1, 2];
const SAMPLES = 7;
const SAMPLE_SECONDS = 0.1;
const PEAK_SAMPLE_SECONDS = 0.05;
// The scalar reference runs at a few GFLOP/s: it gets the shapes up to this
// many flops only, and fewer samples.
const REF_MAX_FLOPS = 1.1e9;
const REF_SAMPLES = 3;

interface Options {
  json: string | null;
  isas: IsaName[];
}

function parseArgs(argv: string[]): Options {
  const available = binding.info().availableIsas;
  const options: Options = { json: null, isas: available };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--json' && i + 1 < argv.length) {
      options.json = argv[++i];
    } else if (argv[i] === '--isa' && i + 1 < argv.length) {
      const wanted = argv[++i].split(',') as IsaName[];
      options.isas = available.filter((isa) => wanted.includes(isa));
    } else {
      throw new Error(`unknown argument ${argv[i]}; usage: gemm.js [--json FILE] [--isa LIST]`);
    }
  }
  return options;
}

/**
 * Resizes the pool, then gives the new worker a moment to start (works around
 * a start-up race in ThreadPool::worker_main; see test/02-gemm-kernels.test.ts).
 */
function setThreads(threads: number): void {
  binding.setNumThreads(threads);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function seconds(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * The best GFLOP/s of the peak loop over several samples, on one thread or on
 * every pool thread at once: the peak is what the machine can do, and on a
 * shared machine a neighbour's burst only ever lowers a sample.
 */
function measurePeak(isa: IsaName, parallel: boolean): number {
  const peak = (iterations: number) =>
    parallel ? binding.fmaPeakParallel(isa, iterations) : binding.fmaPeak(isa, iterations);
  // Calibrate the iteration count to about PEAK_SAMPLE_SECONDS per sample.
  let iterations = 1 << 16;
  for (;;) {
    const { seconds: s } = peak(iterations);
    if (s >= PEAK_SAMPLE_SECONDS / 4) {
      iterations = Math.max(1, Math.round((iterations * PEAK_SAMPLE_SECONDS) / s));
      break;
    }
    iterations *= 4;
  }
  const rates: number[] = [];
  for (let i = 0; i < SAMPLES; ++i) {
    const { flops, seconds: s } = peak(iterations);
    rates.push(flops / s / 1e9);
  }
  return Math.max(...rates);
}

interface Result {
  isa: IsaName;
  threads: number;
  m: number;
  k: number;
  n: number;
  gflops: number;
  peakGflops: number;
  percentOfPeak: number;
  samples: number[];
}

function random(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed;
  for (let i = 0; i < count; ++i) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 4294967296 - 0.5;
  }
  return out;
}

/** Median GFLOP/s of y = x · Wᵀ for one shape on the current pool. */
function measureGemm(isa: IsaName, shape: Shape, weight: PackedB, x: Float32Array, y: Float32Array,
                     samples: number): number[] {
  const { m, k, n } = shape;
  const call = () =>
    binding.gemm({ batch: 1, m, n, k, a: x, aRowStride: k, aColStride: 1, b: weight, c: y, ldc: n, cBatchStride: m * n, isa });
  const once = seconds(call);  // warm-up: first touch of y and the per-thread scratch
  const reps = Math.max(1, Math.ceil(SAMPLE_SECONDS / Math.max(once, 1e-6)));
  const flops = 2 * m * n * k * reps;
  const rates: number[] = [];
  for (let i = 0; i < samples; ++i) {
    rates.push(flops / seconds(() => { for (let r = 0; r < reps; ++r) call(); }) / 1e9);
  }
  return rates;
}

function pad(text: string | number, width: number): string {
  return String(text).padStart(width);
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  const initialThreads = binding.info().numThreads;
  const kernels = Object.fromEntries(options.isas.map((isa) => [isa, binding.gemmKernelInfo(isa)]));
  const peaks: Record<string, Record<number, number>> = {};
  const results: Result[] = [];
  const notes = [
    'y = x · Wᵀ with x [M, K] row-major and W [N, K] prepacked once with packB (as a Linear packs its weight at load)',
    `median of ${SAMPLES} samples after one warm-up call; each sample repeats the call for >= ${SAMPLE_SECONDS} s`,
    'peak: fmaPeak on one thread for 1 thread, fmaPeakParallel on every pool thread otherwise, best of ' +
      `${SAMPLES} samples, measured in this run just before that ISA's GEMMs`,
    `ref: only shapes of <= ${REF_MAX_FLOPS / 1e9} GFLOP (the scalar reference is slow), ${REF_SAMPLES} samples`,
  ];

  console.log(`simdformer GEMM benchmark, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs`);
  for (const note of notes) console.log(`  ${note}`);
  console.log('');
  console.log(`${'isa'.padEnd(7)}${pad('threads', 8)}${pad('M x K x N', 20)}${pad('GFLOP/s', 10)}${pad('peak', 9)}${pad('% peak', 8)}`);

  for (const isa of options.isas) {
    const info = kernels[isa];
    for (const threads of THREADS) {
      setThreads(threads);
      const peak = measurePeak(isa, threads > 1);
      (peaks[isa] ??= {})[threads] = peak;
      for (const shape of SHAPES) {
        const flops = 2 * shape.m * shape.n * shape.k;
        if (isa === 'ref' && flops > REF_MAX_FLOPS) continue;
        const x = random(shape.m * shape.k, 1);
        const w = random(shape.n * shape.k, 2);
        const y = new Float32Array(shape.m * shape.n);
        const weight = binding.packB(w, shape.k, shape.n, 1, shape.k, isa);  // B(p, j) = W[j][p]
        const samples = measureGemm(isa, shape, weight, x, y, isa === 'ref' ? REF_SAMPLES : SAMPLES);
        const gflops = median(samples);
        const result: Result = {
          isa, threads, ...shape, gflops, peakGflops: peak, percentOfPeak: (100 * gflops) / peak, samples,
        };
        results.push(result);
        console.log(`${isa.padEnd(7)}${pad(threads, 8)}${pad(`${shape.m} x ${shape.k} x ${shape.n}`, 20)}` +
                    `${pad(gflops.toFixed(1), 10)}${pad(peak.toFixed(1), 9)}${pad(result.percentOfPeak.toFixed(1), 8)}`);
      }
    }
    console.log(`${''.padEnd(7)}${info.name}: mr ${info.mr}, nr ${info.nr}, mc ${info.mc}, kc ${info.kc}, nc ${info.nc}`);
  }
  setThreads(initialThreads);

  const report = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    node: process.version,
    notes,
    kernels,
    peakGflops: peaks,
    results,
  };
  const json = JSON.stringify(report, null, 2);
  if (options.json !== null) fs.writeFileSync(options.json, `${json}\n`);
  console.log('');
  console.log(json);
}

main();

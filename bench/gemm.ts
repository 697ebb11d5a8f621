/**
 * GEMM throughput beside the machine's measured FMA peak: `npm run bench:gemm`
 * (after `tsc`), or `node dist/bench/gemm.js [--json FILE] [--isa avx512,avx2]`.
 *
 * Each problem is a Linear's forward pass, y = x · Wᵀ + 0 with x [M, K]
 * row-major and W [N, K] packed once beforehand (packB), as a Linear packs
 * its weight at load. A figure is the median of several timed samples taken
 * after a warm-up call, each repeating the call for at least ~0.1 s, and each
 * right after a sample of the peak loop (fmaPeak on one thread,
 * fmaPeakParallel on every pool thread) in the same conditions.
 */
import * as fs from 'fs';
import * as os from 'os';
import { binding } from '../lib/binding';
import type { IsaName, PackedB } from '../binding';
import { median, random, seconds } from './stats';

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
const PEAK_SAMPLE_SECONDS = 0.03;
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
 * The peak loop of one ISA on one thread (fmaPeak) or on every pool thread
 * at once (fmaPeakParallel), calibrated to about PEAK_SAMPLE_SECONDS a sample.
 */
class PeakMeter {
  private readonly iterations: number;
  readonly samples: number[] = [];

  constructor(private readonly isa: IsaName, private readonly parallel: boolean) {
    let iterations = 1 << 16;
    for (;;) {
      const { seconds: s } = this.run(iterations);
      if (s >= PEAK_SAMPLE_SECONDS / 4) {
        this.iterations = Math.max(1, Math.round((iterations * PEAK_SAMPLE_SECONDS) / s));
        break;
      }
      iterations *= 4;
    }
  }

  /** One sample in GFLOP/s, kept for best(). */
  sample(): number {
    const { flops, seconds: s } = this.run(this.iterations);
    this.samples.push(flops / s / 1e9);
    return this.samples[this.samples.length - 1];
  }

  /** The best sample: what the machine can do; a neighbour's burst only ever lowers a sample. */
  best(): number {
    return Math.max(...this.samples);
  }

  private run(iterations: number): { flops: number; seconds: number } {
    return this.parallel ? binding.fmaPeakParallel(this.isa, iterations) : binding.fmaPeak(this.isa, iterations);
  }
}

interface Result {
  isa: IsaName;
  threads: number;
  m: number;
  k: number;
  n: number;
  /** median of the samples */
  gflops: number;
  /** best peak sample of this ISA and thread count over the whole run */
  peakGflops: number;
  /** gflops / peakGflops */
  percentOfPeak: number;
  /** median over samples of the sample / the peak sample taken just before it */
  percentOfAdjacentPeak: number;
  samples: number[];
  adjacentPeaks: number[];
}

/**
 * GFLOP/s samples of y = x · Wᵀ for one shape on the current pool, each right
 * after a peak sample, so that a sample and its peak see the same neighbours.
 */
function measureGemm(isa: IsaName, shape: Shape, weight: PackedB, x: Float32Array, y: Float32Array,
                     samples: number, peak: PeakMeter): { rates: number[]; peaks: number[] } {
  const { m, k, n } = shape;
  const call = () =>
    binding.gemm({ batch: 1, m, n, k, a: x, aRowStride: k, aColStride: 1, b: weight, c: y, ldc: n, cBatchStride: m * n, isa });
  const once = seconds(call);  // warm-up: first touch of y and the per-thread scratch
  const reps = Math.max(1, Math.ceil(SAMPLE_SECONDS / Math.max(once, 1e-6)));
  const flops = 2 * m * n * k * reps;
  const rates: number[] = [];
  const peaks: number[] = [];
  for (let i = 0; i < samples; ++i) {
    peaks.push(peak.sample());
    rates.push(flops / seconds(() => { for (let r = 0; r < reps; ++r) call(); }) / 1e9);
  }
  return { rates, peaks };
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
    `GFLOP/s: median of ${SAMPLES} samples after one warm-up call; each sample repeats the call for >= ${SAMPLE_SECONDS} s`,
    'peak: fmaPeak on one thread for 1 thread, fmaPeakParallel on every pool thread for 2; a peak sample ' +
      `(~${PEAK_SAMPLE_SECONDS} s) is taken right before every GEMM sample; "peak" is the best of them for that ISA ` +
      'and thread count, "% peak" = GFLOP/s / peak',
    '"% adj": median over samples of GFLOP/s / the peak sample just before it (robust to neighbours on a shared machine)',
    `ref: only shapes of <= ${REF_MAX_FLOPS / 1e9} GFLOP (the scalar reference is slow), ${REF_SAMPLES} samples`,
  ];

  console.log(`simdformer GEMM benchmark, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs`);
  for (const note of notes) console.log(`  ${note}`);
  console.log('');
  console.log(`${'isa'.padEnd(7)}${pad('threads', 8)}${pad('M x K x N', 20)}${pad('GFLOP/s', 10)}${pad('peak', 9)}` +
              `${pad('% peak', 8)}${pad('% adj', 7)}`);

  for (const isa of options.isas) {
    const info = kernels[isa];
    for (const threads of THREADS) {
      binding.setNumThreads(threads);
      const peak = new PeakMeter(isa, threads > 1);
      const block: Result[] = [];
      for (const shape of SHAPES) {
        const flops = 2 * shape.m * shape.n * shape.k;
        if (isa === 'ref' && flops > REF_MAX_FLOPS) continue;
        const x = random(shape.m * shape.k, 1);
        const w = random(shape.n * shape.k, 2);
        const y = new Float32Array(shape.m * shape.n);
        const weight = binding.packB(w, shape.k, shape.n, 1, shape.k, isa);  // B(p, j) = W[j][p]
        const { rates, peaks: adjacent } = measureGemm(isa, shape, weight, x, y,
                                                        isa === 'ref' ? REF_SAMPLES : SAMPLES, peak);
        block.push({
          isa, threads, ...shape, gflops: median(rates), peakGflops: 0, percentOfPeak: 0,
          percentOfAdjacentPeak: 100 * median(rates.map((rate, i) => rate / adjacent[i])),
          samples: rates, adjacentPeaks: adjacent,
        });
      }
      (peaks[isa] ??= {})[threads] = peak.best();
      for (const result of block) {
        result.peakGflops = peak.best();
        result.percentOfPeak = (100 * result.gflops) / result.peakGflops;
        results.push(result);
        console.log(`${isa.padEnd(7)}${pad(threads, 8)}${pad(`${result.m} x ${result.k} x ${result.n}`, 20)}` +
                    `${pad(result.gflops.toFixed(1), 10)}${pad(result.peakGflops.toFixed(1), 9)}` +
                    `${pad(result.percentOfPeak.toFixed(1), 8)}${pad(result.percentOfAdjacentPeak.toFixed(1), 7)}`);
      }
    }
    console.log(`${''.padEnd(7)}${info.name}: mr ${info.mr}, nr ${info.nr}, mc ${info.mc}, kc ${info.kc}, nc ${info.nc}`);
  }
  binding.setNumThreads(initialThreads);

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

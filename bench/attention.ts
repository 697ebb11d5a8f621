/**
 * Fused (FlashAttention-style) attention against the unfused math path:
 * `npm run bench:attention` (after `tsc`), or
 * `node dist/bench/attention.js [--json FILE] [--isa NAME] [--lengths 128,512,2048] [--samples N]`.
 *
 * The problem is a MultiheadAttention's core after its projections: batch 8,
 * 8 heads, head dim 64 (d_model 512), self-attention L = S, batch-first
 * q / k / v [8, L, 512], scale 1/8; with and without causal masking (the
 * plan step's `causal` flag, which both paths honour: the fused one skips
 * the key tiles above the diagonal, the math path still computes every
 * score). Both run through binding.attention on the same arrays:
 *   fused  algorithm 'fused': key tiles and an online softmax, no [L, S] matrix;
 *   math   algorithm 'math':  scores [L, S] per (batch, head), softmax, P · V
 *          (the path taken when weights are wanted, here without writing them).
 * Time: median of several samples after one warm-up call, each sample
 * repeating the call for at least ~0.2 s; fused and math samples alternate.
 * Memory: peak native bytes = plan.arenaBytes of a plan holding just this
 * attention step (q, k, v and the output, the same for both paths) + the
 * per-thread scratch the driver reports (binding.attention's scratchBytes,
 * computed from its tile sizes; for the math path the [L, S] scores plus the
 * GEMM driver's packing buffers) times the pool's threads.
 */
import * as fs from 'fs';
import * as os from 'os';
import { binding } from '../lib/binding';
import type { AttentionArgs, IsaName, Plan } from '../binding';
import { median, random, seconds } from './stats';

const BATCH = 8;
const HEADS = 8;
const HEAD_DIM = 64;
const SAMPLE_SECONDS = 0.2;

interface Options {
  json: string | null;
  isa: IsaName;
  lengths: number[];
  samples: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { json: null, isa: binding.info().isa, lengths: [128, 512, 2048], samples: 5 };
  for (let i = 0; i < argv.length; ++i) {
    const value = argv[i + 1];
    if (argv[i] === '--json' && value !== undefined) options.json = argv[++i];
    else if (argv[i] === '--isa' && value !== undefined) options.isa = argv[++i] as IsaName;
    else if (argv[i] === '--lengths' && value !== undefined) options.lengths = argv[++i].split(',').map(Number);
    else if (argv[i] === '--samples' && value !== undefined) options.samples = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}; usage: attention.js [--json FILE] [--isa NAME] [--lengths LIST] [--samples N]`);
  }
  if (!binding.info().availableIsas.includes(options.isa)) throw new Error(`ISA ${options.isa} is not available here`);
  return options;
}

/**
 * Median milliseconds per call of each of `calls`, sampled in turns (a sample
 * of the first, then of the second, ...) so that a neighbour's load on the
 * shared machine falls on all of them alike.
 */
function timeCalls(calls: (() => void)[], samples: number): { ms: number; samplesMs: number[] }[] {
  const reps = calls.map((call) => {
    const once = seconds(call);  // warm-up: first touch of the output and the per-thread scratch
    return Math.max(1, Math.ceil(SAMPLE_SECONDS / Math.max(once, 1e-6)));
  });
  const samplesMs: number[][] = calls.map(() => []);
  for (let i = 0; i < samples; ++i) {
    calls.forEach((call, c) => {
      samplesMs[c].push((1000 * seconds(() => { for (let r = 0; r < reps[c]; ++r) call(); })) / reps[c]);
    });
  }
  return samplesMs.map((ms) => ({ ms: median(ms), samplesMs: ms }));
}

/** A plan holding only this attention step, for its arena size. */
function attentionPlan(args: AttentionArgs): Plan {
  const count = args.q.length;
  return binding.createPlan({
    values: [{ type: 'float32', count }, { type: 'float32', count }, { type: 'float32', count }, { type: 'float32', count }],
    inputs: [0, 1, 2],
    outputs: [3],
    steps: [{
      kind: 'attention', inputs: [0, 1, 2, -1, -1], output: 3, batch: args.batch, heads: args.heads,
      tgtLen: args.tgtLen, srcLen: args.srcLen, headDim: args.headDim, vHeadDim: args.vHeadDim,
      q: args.qStrides, k: args.kStrides, v: args.vStrides,
      outBatchStride: args.outStrides.batchStride, outSeqStride: args.outStrides.seqStride, scale: args.scale, causal: args.causal,
    }],
  });
}

interface Result {
  length: number;
  causal: boolean;
  fusedMs: number;
  mathMs: number;
  speedup: number;
  arenaBytes: number;
  fusedScratchBytesPerThread: number;
  mathScratchBytesPerThread: number;
  fusedPeakBytes: number;
  mathPeakBytes: number;
  fusedSamplesMs: number[];
  mathSamplesMs: number[];
  maxAbsDifference: number;
}

const mib = (bytes: number) => (bytes / (1 << 20)).toFixed(1);
const pad = (text: string | number, width: number) => String(text).padStart(width);

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  const threads = binding.info().numThreads;
  const E = HEADS * HEAD_DIM;
  const notes = [
    `batch ${BATCH}, ${HEADS} heads, head dim ${HEAD_DIM}, self-attention L = S, batch-first [N, L, ${E}], ISA ${options.isa}, ${threads} threads`,
    'fused: binding.attention algorithm "fused"; math: algorithm "math" (materialises [L, S] per (batch, head)); causal: the causal flag on both',
    `time: median of ${options.samples} samples after one warm-up call, each sample repeating the call for >= ${SAMPLE_SECONDS} s; fused and math samples alternate`,
    'peak memory: plan.arenaBytes of a plan with just this step (q, k, v, out; equal for both) + scratchBytes per thread x threads',
  ];
  console.log(`simdformer attention benchmark, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs`);
  for (const note of notes) console.log(`  ${note}`);
  console.log('');
  console.log(`${pad('L = S', 6)}${pad('causal', 8)}${pad('fused ms', 11)}${pad('math ms', 11)}${pad('speedup', 9)}` +
              `${pad('arena MiB', 11)}${pad('fused scratch', 15)}${pad('math scratch', 14)}${pad('fused peak', 12)}${pad('math peak', 11)}`);

  const results: Result[] = [];
  for (const length of options.lengths) {
    const count = BATCH * length * E;
    const q = random(count, 1), k = random(count, 2), v = random(count, 3);
    const fusedOut = new Float32Array(count), mathOut = new Float32Array(count);
    const strides = { batchStride: length * E, seqStride: E };
    for (const causal of [false, true]) {
      const args: AttentionArgs = {
        batch: BATCH, heads: HEADS, tgtLen: length, srcLen: length, headDim: HEAD_DIM, vHeadDim: HEAD_DIM,
        q, qStrides: strides, k, kStrides: strides, v, vStrides: strides, out: fusedOut, outStrides: strides,
        scale: 1 / Math.sqrt(HEAD_DIM), causal, isa: options.isa,
      };
      const fusedScratch = binding.attention({ ...args, algorithm: 'fused' }).scratchBytes;
      const mathScratch = binding.attention({ ...args, out: mathOut, algorithm: 'math' }).scratchBytes;
      let maxAbsDifference = 0;
      for (let i = 0; i < count; ++i) maxAbsDifference = Math.max(maxAbsDifference, Math.abs(fusedOut[i] - mathOut[i]));
      const [fused, math] = timeCalls([
        () => binding.attention({ ...args, algorithm: 'fused' }),
        () => binding.attention({ ...args, out: mathOut, algorithm: 'math' }),
      ], options.samples);
      const arenaBytes = attentionPlan(args).arenaBytes;
      const result: Result = {
        length, causal, fusedMs: fused.ms, mathMs: math.ms, speedup: math.ms / fused.ms, arenaBytes,
        fusedScratchBytesPerThread: fusedScratch, mathScratchBytesPerThread: mathScratch,
        fusedPeakBytes: arenaBytes + threads * fusedScratch, mathPeakBytes: arenaBytes + threads * mathScratch,
        fusedSamplesMs: fused.samplesMs, mathSamplesMs: math.samplesMs, maxAbsDifference,
      };
      results.push(result);
      console.log(`${pad(length, 6)}${pad(causal ? 'yes' : 'no', 8)}${pad(result.fusedMs.toFixed(2), 11)}${pad(result.mathMs.toFixed(2), 11)}` +
                  `${pad(`${result.speedup.toFixed(2)}x`, 9)}${pad(mib(arenaBytes), 11)}${pad(`${(fusedScratch / 1024).toFixed(0)} KiB`, 15)}` +
                  `${pad(`${mib(mathScratch)} MiB`, 14)}${pad(mib(result.fusedPeakBytes), 12)}${pad(mib(result.mathPeakBytes), 11)}`);
    }
  }

  const report = { cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, node: process.version, notes, results };
  const json = JSON.stringify(report, null, 2);
  if (options.json !== null) fs.writeFileSync(options.json, `${json}\n`);
}

main();

// The one typed contract of the native module (build/Release/simdformer.node
// or prebuilds/<platform>-<arch>/*.node). lib/ imports the binding only
// through this file (see lib/binding.ts). Every function validates its
// arguments and throws TypeError / RangeError with a `code`; none can crash
// the process on bad input. Buffers are used synchronously, in place.

/**
 * 'amx': the AVX-512 table with GEMM on the matrix unit (AMX-BF16), each
 * float split into three bfloat16 parts so results keep float32 accuracy.
 */
export type IsaName = 'ref' | 'avx2' | 'avx512' | 'amx' | 'neon';
export type ActivationName = 'none' | 'relu' | 'gelu';

export interface NativeInfo {
  /** package version the addon was built from */
  version: string;
  /** the kernel table in use: SIMDFORMER_ISA if set, else the best available */
  isa: IsaName;
  /** what this CPU and OS can run, best last; always includes 'ref' */
  availableIsas: IsaName[];
  /** threads of the native pool (SIMDFORMER_NUM_THREADS, setNumThreads, or usable CPUs) */
  numThreads: number;
}

/**
 * Shape and block sizes of one ISA's GEMM micro-kernel (for 'amx', the
 * 32 x 32 block of the tile kernel; mc is 0 there: a task splits all its rows).
 */
export interface GemmKernelInfo {
  name: string;
  mr: number;
  nr: number;
  mc: number;
  kc: number;
  nc: number;
}

/** A [k, n] B operand packed once for one ISA's micro-kernel (a Linear weight). */
export interface PackedB {
  readonly k: number;
  readonly n: number;
  readonly isa: IsaName;
  readonly bytes: number;
  /**
   * false while packBBatchInBackground has not packed it yet: gemm and
   * plans then multiply by its source, B packed per call (the same result
   * bits, more slowly).
   */
  readonly ready: boolean;
}

/** One B operand of packBBatch, as packB's arguments: element (p, j) of [k, n] at b[p * rowStride + j * colStride]. */
export interface PackBOperand {
  b: Float32Array;
  k: number;
  n: number;
  rowStride: number;
  colStride: number;
}

/**
 * C[b] = act(A[b] · B[b] + bias) for b < batch (C is overwritten, never read).
 * A[b](i, p) = a[aOffsets[b] + i * aRowStride + p * aColStride], likewise B;
 * C[b](i, j) = c[b * cBatchStride + i * ldc + j]. Strides are >= 0 element
 * counts; every index reached is checked against the array's length.
 * With a PackedB, b's strides and offsets are not used.
 */
export interface GemmArgs {
  batch: number;
  m: number;
  n: number;
  k: number;
  a: Float32Array;
  aRowStride: number;
  aColStride: number;
  aOffsets?: Float64Array | null;
  b: Float32Array | PackedB;
  bRowStride?: number;
  bColStride?: number;
  bOffsets?: Float64Array | null;
  c: Float32Array;
  ldc: number;
  cBatchStride: number;
  bias?: Float32Array | null;
  activation?: ActivationName;
  isa?: IsaName;
}

export interface SoftmaxArgs {
  /** x viewed as [outer, n, inner]; softmax along n */
  x: Float32Array;
  outer: number;
  n: number;
  inner: number;
  scale: number;
  /** [maskRows, n] added to row o as mask[o % maskRows]; only with inner === 1 */
  mask?: Float32Array | null;
  maskRows?: number;
  y: Float32Array;
  isa?: IsaName;
}

/**
 * Multi-head attention on caller-owned arrays (the plan's 'attention' step
 * without a plan), for testing each ISA and benchmarking: element (n, l, h, d)
 * of q at n * qStrides.batchStride + l * qStrides.seqStride + h * headDim + d;
 * likewise k, v (S rows) and out (vHeadDim). Masks are additive floats:
 * attnMask [L, S] or [batch * heads, L, S] (attnMaskPerHead), keyPaddingMask
 * [batch, S]; causal masks key j for query i when j > i. algorithm 'fused'
 * (the default without weights) never materialises the scores; 'math' (the
 * default, and the only choice, with weights [batch, heads, L, S]) does.
 * Outputs must not overlap inputs.
 */
export interface AttentionArgs {
  batch: number;
  heads: number;
  tgtLen: number;
  srcLen: number;
  headDim: number;
  vHeadDim: number;
  q: Float32Array;
  qStrides: SequenceStrides;
  k: Float32Array;
  kStrides: SequenceStrides;
  v: Float32Array;
  vStrides: SequenceStrides;
  out: Float32Array;
  outStrides: SequenceStrides;
  scale: number;
  attnMask?: Float32Array | null;
  attnMaskPerHead?: boolean;
  keyPaddingMask?: Float32Array | null;
  causal?: boolean;
  weights?: Float32Array | null;
  algorithm?: 'fused' | 'math';
  isa?: IsaName;
}

export interface AttentionResult {
  /** scratch each thread running this call holds (fused: its tiles; math: the [L, S] scores and GEMM packing) */
  scratchBytes: number;
}

export interface LayerNormArgs {
  x: Float32Array;
  rows: number;
  n: number;
  eps: number;
  weight?: Float32Array | null;
  bias?: Float32Array | null;
  y: Float32Array;
  isa?: IsaName;
}

/** An immutable float32 parameter copied into native memory (a bias, a layer-norm weight, an embedding table). */
export interface Parameter {
  readonly length: number;
}

export type PlanValueType = 'float32' | 'bool' | 'int64';

/** A flat array of the plan: float32 intermediates and outputs; bool masks and int64 indices only as inputs. */
export interface PlanValue {
  type: PlanValueType;
  count: number;
}

export interface SequenceStrides {
  batchStride: number;
  seqStride: number;
}

/** q, k or v of a plan's attention step: strides, and where the view starts in its value (default 0). */
export interface PlanSequence extends SequenceStrides {
  offset?: number;
}

/**
 * One step of a plan; `inputs` and `output` are value ids (-1 for an absent
 * optional input). Shapes are flat: each step states the sizes it needs.
 */
export type PlanStep =
  /** out[rows, n] = act(x[rows, k] · weightᵀ + bias); weight packed as [k, n] */
  | { kind: 'linear'; inputs: [number]; output: number; weight: PackedB; bias?: Parameter | null; activation?: ActivationName }
  /** layer norm over rows of n */
  | { kind: 'layerNorm'; inputs: [number]; output: number; n: number; eps: number; weight?: Parameter | null; bias?: Parameter | null }
  /** out[o, m, i] = a[o, m, i] + b[o, i] (mid = 1: a plain add) */
  | { kind: 'add'; inputs: [number, number]; output: number; outer: number; mid: number; inner: number }
  /** bool mask -> 0 / -inf; a float mask is copied */
  | { kind: 'additiveMask'; inputs: [number]; output: number }
  /**
   * Multi-head attention on projected q [.., heads * headDim], k, v [.., heads * vHeadDim]:
   * element (n, l, h, d) of q at q.offset + n * q.batchStride + l * q.seqStride + h * headDim + d; likewise k, v, out.
   * inputs: [q, k, v, attnMask ([L, S] or [batch * heads, L, S] when attnMaskPerHead) | -1, keyPaddingMask ([batch, S]) | -1], masks additive.
   * weights: a value id receiving per-head probabilities [batch, heads, L, S].
   * causal: also mask key j for query i when j > i (PyTorch's SDPA is_causal, top-left aligned).
   * Without weights the fused (FlashAttention-style) driver runs; with weights the math path.
   */
  | {
      kind: 'attention'; inputs: [number, number, number, number, number]; output: number; weights?: number | null;
      batch: number; heads: number; tgtLen: number; srcLen: number; headDim: number; vHeadDim: number;
      q: PlanSequence; k: PlanSequence; v: PlanSequence; outBatchStride: number; outSeqStride: number;
      scale: number; attnMaskPerHead?: boolean; causal?: boolean;
    }
  /** out[n, i] = mean over h of x[n, h, i] */
  | { kind: 'averageHeads'; inputs: [number]; output: number; batch: number; heads: number; size: number }
  /** out[o, rows + 1, width]: x with one more row per o, `row` tiled across the width, or zeros */
  | { kind: 'appendRow'; inputs: [number]; output: number; outer: number; rows: number; width: number; row?: Parameter | null }
  /** out[rows, cols + 1]: x with a zero column */
  | { kind: 'padColumn'; inputs: [number]; output: number; rows: number; cols: number }
  /** out[i, :] = table[indices[i], :] (an index outside [0, num) rejects the run) */
  | { kind: 'embedding'; inputs: [number]; output: number; num: number; dim: number; table: Parameter };

export interface PlanDescription {
  values: PlanValue[];
  /** value ids given to run(), in order */
  inputs: number[];
  steps: PlanStep[];
  /** value ids returned by run(), in order (float32) */
  outputs: number[];
}

/**
 * A checked plan: run() executes every step natively on the calling thread;
 * runAsync() copies the inputs, runs off the JS thread and settles a Promise.
 * Inputs: Float32Array (float32), Uint8Array (bool), BigInt64Array or
 * Int32Array (int64). Outputs: new Float32Arrays.
 */
export interface Plan {
  readonly arenaBytes: number;
  run(inputs: ArrayBufferView[]): Float32Array[];
  /**
   * Copies the inputs, queues the run on the native executor (a dedicated
   * thread, not libuv's pool; one run at a time, process-wide) and settles
   * when it ends. cancel() stops it before it starts or at the next step; it
   * then rejects with an AbortError (name 'AbortError', code 'ABORT_ERR').
   */
  runAsync(inputs: ArrayBufferView[]): Promise<Float32Array[]> & { cancel(): void };
}

/** Monitoring counters: executor jobs (process-wide) and native bytes held by arenas, packed weights and parameters. */
export interface NativeStats {
  queued: number;
  running: number;
  completed: number;
  failed: number;
  nativeBytes: number;
}

export interface Binding {
  info(): NativeInfo;
  /** n >= 1; waits for running work, then resizes the pool */
  setNumThreads(n: number): void;
  gemmKernelInfo(isa?: IsaName): GemmKernelInfo;
  packB(b: Float32Array, k: number, n: number, rowStride: number, colStride: number, isa?: IsaName): PackedB;
  /**
   * packB for every operand, in parallel on the native pool (in pieces of
   * about 1 MiB, into one block of memory on huge pages that the returned
   * PackedBs share; stats().nativeBytes counts the block, less the 2 MiB
   * pages given back as PackedBs are collected); returns when all are
   * packed. Once an operand is packed, the whole pages of its array that
   * are unmodified pages of a mapped file (mapFile) leave the resident set:
   * reading them again maps them back from the page cache, with the same
   * values (pages JavaScript wrote to are kept).
   */
  packBBatch(operands: PackBOperand[], isa?: IsaName): PackedB[];
  /**
   * packBBatch off the JavaScript thread, for operands that all lie in
   * mapFile() memory (else null, nothing done): returns at once with
   * handles not ready yet, which the native side packs on the executor in
   * turns of a few milliseconds between queued forwards. The handles keep
   * the mapping alive while they may read it. `done` settles once every
   * operand is packed (each one's unmodified file pages then leave the
   * resident set, as with packBBatch), or rejects with
   * ERR_SIMDFORMER_OUT_OF_MEMORY when the packed copy's memory could not be
   * had (the handles keep working, unpacked). While pending, it keeps the
   * event loop alive.
   */
  packBBatchInBackground(operands: PackBOperand[], isa?: IsaName): { handles: PackedB[]; done: Promise<void> } | null;
  gemm(args: GemmArgs): void;
  softmax(args: SoftmaxArgs): void;
  layerNorm(args: LayerNormArgs): void;
  activation(kind: ActivationName, x: Float32Array, y: Float32Array, isa?: IsaName): void;
  attention(args: AttentionArgs): AttentionResult;
  stats(): NativeStats;
  createParameter(data: Float32Array): Parameter;
  /** Checks the description (RangeError ERR_SIMDFORMER_INVALID_PLAN naming the bad step) and builds a plan. */
  createPlan(description: PlanDescription): Plan;
  /**
   * The open file `fd`, a regular file of exactly `length` bytes, mapped
   * copy-on-write (MAP_PRIVATE, readable and writable: writes change this
   * process's pages, never the file) as an ArrayBuffer, unmapped when it is
   * collected; `fd` may be closed at once. null where mapping is not possible
   * (no mmap in this build, another kind of file or size, mmap failing, a
   * runtime that forbids external ArrayBuffers): read the file instead.
   */
  mapFile(fd: number, length: number): ArrayBuffer | null;
  /** Runs the ISA's peak FMA loop on the calling thread; returns float ops and seconds. */
  fmaPeak(isa: IsaName, iterations: number): { flops: number; seconds: number };
  /** Runs the ISA's peak FMA loop on every pool thread at once; returns total float ops and wall seconds. */
  fmaPeakParallel(isa: IsaName, iterations: number): { flops: number; seconds: number };
}

declare const binding: Binding;
export default binding;

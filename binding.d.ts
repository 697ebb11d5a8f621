// The one typed contract of the native module (build/Release/simdformer.node
// or prebuilds/<platform>-<arch>/*.node). lib/ imports the binding only
// through this file (see lib/binding.ts). Every function validates its
// arguments and throws TypeError / RangeError with a `code`; none can crash
// the process on bad input. Buffers are used synchronously, in place.

export type IsaName = 'ref' | 'avx2' | 'avx512' | 'neon';
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

/** Shape and block sizes of one ISA's GEMM micro-kernel. */
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

export interface Binding {
  info(): NativeInfo;
  /** n >= 1; waits for running work, then resizes the pool */
  setNumThreads(n: number): void;
  gemmKernelInfo(isa?: IsaName): GemmKernelInfo;
  packB(b: Float32Array, k: number, n: number, rowStride: number, colStride: number, isa?: IsaName): PackedB;
  gemm(args: GemmArgs): void;
  softmax(args: SoftmaxArgs): void;
  layerNorm(args: LayerNormArgs): void;
  activation(kind: ActivationName, x: Float32Array, y: Float32Array, isa?: IsaName): void;
  /** Runs the ISA's peak FMA loop on the calling thread; returns float ops and seconds. */
  fmaPeak(isa: IsaName, iterations: number): { flops: number; seconds: number };
  /** Runs the ISA's peak FMA loop on every pool thread at once; returns total float ops and wall seconds. */
  fmaPeakParallel(isa: IsaName, iterations: number): { flops: number; seconds: number };
}

declare const binding: Binding;
export default binding;

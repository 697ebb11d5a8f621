/**
 * Native copies of weights (packed Linear weights, parameters), made once per
 * tensor (and slice) and shared by every plan that uses them. A tensor that
 * is (re)registered in a module forgets its copies, so a forward after
 * loadStateDict always sees the tensor's current values, `assign` included.
 */
import type { PackedB, Parameter } from '../../binding';
import { binding } from '../binding';
import { Tensor } from '../tensor';

const nativeHandles = new WeakMap<Tensor, Map<string, PackedB | Parameter>>();

function cachedHandle<H extends PackedB | Parameter>(tensor: Tensor, key: string, make: () => H): H {
  let handles = nativeHandles.get(tensor);
  if (handles === undefined) nativeHandles.set(tensor, (handles = new Map()));
  let handle = handles.get(key) as H | undefined;
  if (handle === undefined) handles.set(key, (handle = make()));
  return handle;
}

export function forgetNativeHandles(tensor: Tensor): void {
  nativeHandles.delete(tensor);
}

/** Rows [first, first + rows) of a PyTorch Linear weight [out, in]: what one GEMM multiplies by. */
export interface LinearWeightRows {
  weight: Tensor;
  first: number;
  rows: number;
}

/** The rows as the GEMM's B operand (their transpose, [in, rows]), for packB / packBBatch. */
function operand({ weight, first, rows }: LinearWeightRows) {
  const inFeatures = weight.shape[1];
  const b = (weight.data as Float32Array).subarray(first * inFeatures, (first + rows) * inFeatures);
  return { b, k: inFeatures, n: rows, rowStride: 1, colStride: inFeatures };
}

function packedKey(rows: LinearWeightRows): string {
  return `packed:${rows.first}:${rows.rows}`;
}

/** The packed B operand of these rows, packed on first use. */
export function packedLinearWeight(rows: LinearWeightRows): PackedB {
  return cachedHandle(rows.weight, packedKey(rows), () => {
    const { b, k, n, rowStride, colStride } = operand(rows);
    return binding.packB(b, k, n, rowStride, colStride);
  });
}

/** The background packings of handles not packed yet: what whenPacked() waits for. */
const packing = new WeakMap<PackedB, Promise<void>>();

/**
 * Packs those of `weights` not packed yet, in one native call, so that the
 * next forward finds them ready (Module.loadStateDict calls this). Weights
 * that are views of a mapped file (loadSafetensors, then loadStateDict with
 * assign) are packed in the background, off the JavaScript thread: forwards
 * meanwhile read them as they are (the same results, more slowly); the others
 * are packed now, in parallel on the native threads.
 */
export function packLinearWeights(weights: readonly LinearWeightRows[]): void {
  const pending: LinearWeightRows[] = [];
  const isPending = (rows: LinearWeightRows) =>
    pending.some((p) => p.weight === rows.weight && p.first === rows.first && p.rows === rows.rows);
  for (const rows of weights) {
    if (nativeHandles.get(rows.weight)?.has(packedKey(rows)) !== true && !isPending(rows)) pending.push(rows);
  }
  if (pending.length === 0) return;
  const operands = pending.map(operand);
  const background = binding.packBBatchInBackground(operands);
  let packed: PackedB[];
  if (background !== null) {
    packed = background.handles;
    // Handled here, so that an out-of-memory rejection reaches whoever awaits
    // whenPacked() and is no unhandled rejection otherwise.
    background.done.catch(() => undefined);
    for (const handle of packed) packing.set(handle, background.done);
  } else {
    packed = binding.packBBatch(operands);
  }
  pending.forEach((rows, i) => cachedHandle(rows.weight, packedKey(rows), () => packed[i]));
}

/**
 * Settles once every one of these weights that is packed in the background
 * is packed and its file pages are let go of (its batch's `done`).
 */
export function whenPacked(weights: readonly LinearWeightRows[]): Promise<void> {
  const waits = new Set<Promise<void>>();
  for (const rows of weights) {
    const handle = nativeHandles.get(rows.weight)?.get(packedKey(rows)) as PackedB | undefined;
    const done = handle !== undefined ? packing.get(handle) : undefined;
    if (done !== undefined) waits.add(done);
  }
  return Promise.all(waits).then(() => undefined);
}

/** Elements [start, start + length) of a float32 tensor as a native parameter. */
export function nativeParameter(tensor: Tensor, start = 0, length = tensor.numel - start): Parameter {
  return cachedHandle(tensor, `param:${start}:${length}`, () =>
    binding.createParameter((tensor.data as Float32Array).subarray(start, start + length)));
}

/**
 * simdformer: PyTorch's nn.Transformer family for Node.js.
 *
 *   import { tensor, randn, functional as F, info } from 'simdformer';
 */
import type { IsaName, NativeInfo, NativeStats } from '../binding';
import { binding } from './binding';
import { invalidType, invalidValue } from './errors';

export * as functional from './functional';
export * as nn from './nn';
export {
  loadSafetensors, loadSafetensorsSync, saveSafetensors, saveSafetensorsSync, serializeSafetensors, SafetensorsError,
} from './safetensors';
export {
  Tensor, tensor, zeros, ones, full, randn, rand, manualSeed, Generator,
} from './tensor';
export type { DType, TensorData, NestedArray, TensorOptions, RandomOptions } from './tensor';
export type { SimdformerError, ErrorCode } from './errors';
export type { IsaName, NativeInfo, NativeStats };

/**
 * What the native layer is running with: package version, the instruction
 * set chosen at load (SIMDFORMER_ISA or the best available), what this CPU
 * can run, and the native thread count.
 */
export function info(): NativeInfo {
  return binding.info();
}

/**
 * Sets the number of native compute threads (default: the CPUs this process
 * may use, from its affinity mask and cgroup quota, or SIMDFORMER_NUM_THREADS).
 */
export function setNumThreads(n: number): void {
  if (typeof n !== 'number') throw invalidType('n', 'an integer in [1, 1024]', n);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw invalidValue('n', 'an integer in [1, 1024]', n);
  binding.setNumThreads(n);
}

export function getNumThreads(): number {
  return binding.info().numThreads;
}

/**
 * Monitoring counters. queued / running / completed / failed count forward()
 * jobs on the native executor (process-wide, shared with worker threads);
 * nativeBytes is the native memory held by plan arenas, packed weights and
 * parameters, which returns to its baseline when work ends.
 */
export function stats(): NativeStats {
  return binding.stats();
}

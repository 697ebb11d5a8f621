/**
 * Reads the benchmark's input files (safetensors with F32 and BOOL tensors)
 * in plain JavaScript, so a peer's process never loads simdformer's addon
 * (its peak RSS stays its own). The files come from scripts/export_onnx.py
 * or from the suite itself, so this checks only what it relies on.
 */
import * as fs from 'fs';

export interface RawTensor {
  dtype: 'float32' | 'bool';
  shape: number[];
  /** float32: Float32Array; bool: Uint8Array of 0 / 1 */
  data: Float32Array | Uint8Array;
}

export function readTensorFile(file: string): Map<string, RawTensor> {
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, {
    dtype: string; shape: number[]; data_offsets: [number, number];
  }>;
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, RawTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = entry.data_offsets;
    // copied into a fresh buffer: the file's data need not be 4-byte aligned
    const slice = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end));
    if (entry.dtype === 'F32') {
      tensors.set(name, { dtype: 'float32', shape: entry.shape, data: new Float32Array(slice.buffer, 0, slice.length / 4) });
    } else if (entry.dtype === 'BOOL') {
      tensors.set(name, { dtype: 'bool', shape: entry.shape, data: slice.map((v) => (v ? 1 : 0)) });
    } else {
      throw new Error(`${file}: tensor '${name}' has dtype ${entry.dtype}; the benchmark's inputs are F32 or BOOL`);
    }
  }
  return tensors;
}

/** Peak and current resident set size of this process, from /proc/self/status (KiB). */
export function memoryKiB(): { vmHWM: number; vmRSS: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { vmHWM: field('VmHWM'), vmRSS: field('VmRSS') };
}

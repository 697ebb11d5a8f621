/**
 * How the suite talks to an engine's process (bench/worker.ts for simdformer
 * and onnxruntime-node, bench/torch_worker.py for PyTorch): one JSON object
 * a line. Requests go to the worker's stdin; replies come on its stdout as
 * lines starting with REPLY_PREFIX, so anything else a library prints there
 * is passed through as a log line.
 *
 *   worker starts: loads the case's model, runs one forward, replies
 *                  { type: 'ready', engine, version, loadMs, firstForwardMs, loadPhases, packedMs? }
 *   { cmd: 'run', reps }      -> { type: 'times', ms: [reps numbers] }   (each forward timed alone)
 *   { cmd: 'output', file }   -> { type: 'output', file }                (last output, float32 little-endian)
 *   { cmd: 'exit' }           -> { type: 'bye', vmHWMKiB, vmRSSKiB, detail?, rssTrailKiB? }  (then it exits)
 *   a failure                 -> { type: 'error', message }
 *
 * loadMs: from reading the weights file to a model that a forward can be
 * called on (simdformer: loadSafetensors + construct + loadStateDict;
 * onnxruntime: InferenceSession.create; PyTorch: load_file + construct +
 * load_state_dict + eval). firstForwardMs: the first forward after that.
 * loadPhases splits loadMs into its steps (read, construct, loadStateDict,
 * ...). packedMs (simdformer): from the same start until the weights that
 * loadStateDict packs in the background were packed (Module.whenPacked);
 * the first forward ran meanwhile, on the weights as they were. The peers
 * pack theirs within loadMs.
 */
export const REPLY_PREFIX = '@@bench ';

export interface WorkerArgs {
  engine: string;
  cacheDir: string;
  caseName: string;
  threads: number;
}

export type Request =
  | { cmd: 'run'; reps: number }
  | { cmd: 'output'; file: string }
  | { cmd: 'exit' };

export type Reply =
  | { type: 'ready'; engine: string; version: string; loadMs: number; firstForwardMs: number; loadPhases: Record<string, number>; packedMs?: number }
  | { type: 'times'; ms: number[] }
  | { type: 'output'; file: string }
  | {
    type: 'bye'; vmHWMKiB: number; vmRSSKiB: number;
    /** bytes at exit: JS array buffers, JS heap, simdformer's native bytes (stats().nativeBytes) */
    detail?: Record<string, number>;
    /** VmRSS after each load step and the first forward */
    rssTrailKiB?: Record<string, number>;
  }
  | { type: 'error'; message: string };

/**
 * One JavaScript engine of the end-to-end benchmark in a process of its own,
 * so its peak RSS is its own: `node dist/bench/worker.js '<WorkerArgs JSON>'`,
 * started by bench/suite.ts and driven over stdin / stdout (bench/protocol.ts).
 *
 * Engines: simdformer (this package, loaded only here) and onnxruntime-node
 * (the ONNX file exported from the same PyTorch module, intraOpNumThreads =
 * the suite's thread count, one inter-op thread, sequential execution, every
 * graph optimisation). Both are timed through their async API, which is what
 * a Node service calls.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import { buildSimdformerModule, Manifest } from './cases';
import { REPLY_PREFIX, Reply, Request, WorkerArgs } from './protocol';
import { memoryKiB, RawTensor, readTensorFile } from './tensor-file';

interface LoadedEngine {
  version: string;
  /** milliseconds spent in each step of the load, in order */
  phases: Record<string, number>;
  run(): Promise<Float32Array>;
  /** settles once work the load left running in the background is done (simdformer's packing) */
  settled?(): Promise<void>;
}

type Loader = (manifest: Manifest, args: WorkerArgs, inputs: Map<string, RawTensor>) => Promise<LoadedEngine>;

/** VmRSS (KiB) after each step of the load and the first forward, reported at exit. */
const rssTrail: Record<string, number> = {};
/**
 * Milliseconds spent reading VmRSS so far: instrumentation, not loading,
 * so the load's figures leave it out (a read of /proc costs ~0.1 ms, which
 * is a few % of a small model's load).
 */
let rssProbeMs = 0;
function markRss(step: string): void {
  const start = process.hrtime.bigint();
  rssTrail[step] = memoryKiB().vmRSS;
  rssProbeMs += milliseconds(start);
}
/** Extra figures for the exit reply (simdformer: its native bytes). */
let exitDetail: () => Record<string, number> = () => ({});

function reply(message: Reply): void {
  process.stdout.write(`${REPLY_PREFIX}${JSON.stringify(message)}\n`);
}

function milliseconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

/** Imports what an engine needs before the load clock starts (module loading is not model loading). */
function importEngine(engine: string): () => Loader {
  if (engine === 'simdformer') {
    const sf = require('../lib') as typeof import('../lib');
    return () => async (manifest, args, inputs) => {
      sf.setNumThreads(args.threads);
      const entry = manifest.cases[args.caseName];
      const model = manifest.models[entry.model];
      let clock = process.hrtime.bigint();
      let probed = rssProbeMs;
      const lap = () => {
        const elapsed = milliseconds(clock) - (rssProbeMs - probed);
        clock = process.hrtime.bigint();
        probed = rssProbeMs;
        return elapsed;
      };
      const weights = await sf.loadSafetensors(path.join(args.cacheDir, model.weights));
      const read = lap();
      markRss('loadSafetensors');
      const module = buildSimdformerModule(sf, model);
      const construct = lap();
      markRss('construct');
      module.loadStateDict(weights, { assign: true });
      const phases = { loadSafetensors: read, construct, loadStateDict: lap() };
      markRss('loadStateDict');
      exitDetail = () => ({ nativeBytes: sf.stats().nativeBytes });
      const tensor = (name: string) => {
        const t = inputs.get(name)!;
        return new sf.Tensor(t.data, t.shape, t.dtype);
      };
      let run: () => Promise<import('../lib').Tensor>;
      if (module instanceof sf.nn.Transformer) {
        const [src, tgt, tgtMask] = [tensor('src'), tensor('tgt'), tensor('tgt_mask')];
        run = () => module.forward(src, tgt, { tgtMask });
      } else {
        const src = tensor('src');
        const srcKeyPaddingMask = entry.keyPaddingMask ? tensor(entry.keyPaddingMask) : null;
        run = () => module.forward(src, { srcKeyPaddingMask });
      }
      return {
        version: `${sf.info().version} (${sf.info().isa})`, phases,
        run: async () => (await run()).data as Float32Array,
        settled: () => module.whenPacked(),
      };
    };
  }
  if (engine === 'onnxruntime') {
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const version = (require('onnxruntime-node/package.json') as { version: string }).version;
    return () => async (manifest, args, inputs) => {
      const entry = manifest.cases[args.caseName];
      if (entry.onnx === null) throw new Error(`case ${args.caseName} has no ONNX file`);
      const start = process.hrtime.bigint();
      const session = await ort.InferenceSession.create(path.join(args.cacheDir, entry.onnx), {
        intraOpNumThreads: args.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
      });
      markRss('InferenceSession.create');
      const feeds: Record<string, import('onnxruntime-node').Tensor> = {};
      for (const name of entry.inputOrder) {
        const t = inputs.get(name)!;
        feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
      }
      const outputName = session.outputNames[0];
      return {
        version,
        phases: { 'InferenceSession.create': milliseconds(start) },
        run: async () => (await session.run(feeds))[outputName].data as Float32Array,
      };
    };
  }
  throw new Error(`unknown engine ${engine}; expected simdformer or onnxruntime`);
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as WorkerArgs;
  const loader = importEngine(args.engine)();
  const manifest = JSON.parse(fs.readFileSync(path.join(args.cacheDir, 'manifest.json'), 'utf8')) as Manifest;
  const inputs = readTensorFile(path.join(args.cacheDir, manifest.cases[args.caseName].inputs));

  markRss('start');
  const loadStart = process.hrtime.bigint();
  const probedBefore = rssProbeMs;
  const engine = await loader(manifest, args, inputs);
  const loadMs = milliseconds(loadStart) - (rssProbeMs - probedBefore);
  const firstStart = process.hrtime.bigint();
  let output = await engine.run();
  const firstForwardMs = milliseconds(firstStart);
  markRss('first forward');
  let packedMs: number | undefined;
  if (engine.settled) {
    await engine.settled();
    packedMs = milliseconds(loadStart) - (rssProbeMs - probedBefore);
    markRss('packed');
  }
  reply({ type: 'ready', engine: args.engine, version: engine.version, loadMs, firstForwardMs, loadPhases: engine.phases, packedMs });

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const request = JSON.parse(line) as Request;
    if (request.cmd === 'run') {
      const ms: number[] = [];
      for (let i = 0; i < request.reps; i++) {
        const start = process.hrtime.bigint();
        output = await engine.run();
        ms.push(milliseconds(start));
      }
      reply({ type: 'times', ms });
    } else if (request.cmd === 'output') {
      fs.writeFileSync(request.file, new Uint8Array(output.buffer, output.byteOffset, output.byteLength));
      reply({ type: 'output', file: request.file });
    } else {
      const memory = memoryKiB();
      const { arrayBuffers, heapUsed } = process.memoryUsage();
      reply({
        type: 'bye', vmHWMKiB: memory.vmHWM, vmRSSKiB: memory.vmRSS,
        detail: { ...exitDetail(), arrayBuffers, heapUsed }, rssTrailKiB: rssTrail,
      });
      break;
    }
  }
  process.exit(0);
}

main().catch((error: unknown) => {
  reply({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
});

/**
 * `npm run bench`: simdformer end to end against onnxruntime-node and
 * PyTorch, on the same PyTorch modules, weights and inputs (fp32, eval).
 *
 *   npm run bench -- [--quick] [--cases enc6,enc4-small] [--threads 2]
 *                    [--engines simdformer,onnxruntime] [--rounds N] [--no-load]
 *                    [--json FILE] [--cache DIR]
 *
 * Each engine runs in its own process (bench/worker.ts, bench/torch_worker.py),
 * so its peak RSS (VmHWM) is its own. After a warm-up the engines take turns,
 * one turn each per round, the first of the round rotating, so drift of the
 * machine hits all of them alike; a figure is the median over every timed
 * forward, a ratio the median over rounds of simdformer's turn / the peer's
 * turn. Every engine's output is compared with the others' (max abs
 * difference) before any time is reported, so a fast wrong answer cannot win.
 * Model load is timed in fresh processes, alternating engines.
 *
 * The models, weights and inputs come from scripts/export_onnx.py (run here
 * when its cache is missing or stale and torch is available); see
 * bench/cases.ts. --json writes github-action-benchmark's
 * customSmallerIsBetter format, which `npm run bench:compare` reads.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CaseInfo, CASES, DEFAULT_CACHE, EngineName, ENGINES, PeerName, prepareCache, PreparedCache, probeTorch,
} from './cases';
import { EngineProcess } from './child';
import { caseTable, CaseResult, jsonEntries, loadTable, LoadResult, memoryLines, targets, table } from './report';
import { maxAbsDiff, median, summarize } from './stats';
import { readTensorFile } from './tensor-file';

/** Outputs of two engines further apart than this make the case's figures invalid. */
const OUTPUT_TOLERANCE = 1e-3;
/** Pause between two engines' turns: lets a pool's spinning threads go to sleep before the next engine starts. */
const SETTLE_MS = 20;
const LOAD_SAMPLES = 5;
const QUICK_LOAD_SAMPLES = 3;
/**
 * Timed forwards an engine may spend per case and thread count. An engine
 * slower than this allows (PyTorch on a reference BLAS takes ~10 s per enc6
 * forward) sits out evenly spaced rounds, keeps at least one, and skips the
 * warm-up beyond its first forward when that took over SLOW_FORWARD_MS.
 */
const ENGINE_BUDGET_MS = 30_000;
const QUICK_ENGINE_BUDGET_MS = 10_000;
const SLOW_FORWARD_MS = 1_000;

interface Options {
  quick: boolean;
  cases: CaseInfo[];
  threads: number[];
  engines: EngineName[];
  rounds: number | null;
  load: boolean;
  json: string | null;
  cache: string;
}

const USAGE = `usage: suite.js [--quick] [--cases ${[...new Set(CASES.flatMap((c) => [c.group, c.name]))].join(',')}] [--threads 1,2]
                [--engines ${ENGINES.join(',')}] [--rounds N] [--no-load] [--json FILE] [--cache DIR]`;

function parseArgs(argv: string[]): Options {
  const options: Options = {
    quick: false, cases: CASES, threads: [1, 2], engines: [...ENGINES], rounds: null, load: true, json: null, cache: DEFAULT_CACHE,
  };
  const list = (i: number) => {
    if (i >= argv.length) throw new RangeError(`${argv[i - 1]} needs a value; ${USAGE}`);
    return argv[i].split(',').map((s) => s.trim()).filter(Boolean);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--no-load') options.load = false;
    else if (arg === '--cases') {
      const wanted = list(++i);
      const unknown = wanted.filter((w) => !CASES.some((c) => c.name === w || c.group === w));
      if (unknown.length) throw new RangeError(`unknown case ${unknown.join(', ')}; ${USAGE}`);
      options.cases = CASES.filter((c) => wanted.includes(c.name) || wanted.includes(c.group));
    } else if (arg === '--threads') {
      options.threads = list(++i).map(Number);
      if (options.threads.some((t) => !Number.isInteger(t) || t < 1)) throw new RangeError(`expected positive integers for --threads; ${USAGE}`);
    } else if (arg === '--engines') {
      const wanted = list(++i);
      const unknown = wanted.filter((w) => !(ENGINES as readonly string[]).includes(w));
      if (unknown.length) throw new RangeError(`unknown engine ${unknown.join(', ')}; ${USAGE}`);
      if (!wanted.includes('simdformer')) throw new RangeError('--engines must include simdformer: every figure is relative to it');
      options.engines = ENGINES.filter((e) => wanted.includes(e));
    } else if (arg === '--rounds') {
      options.rounds = Number(argv[++i]);
      if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new RangeError(`expected a positive integer for --rounds; ${USAGE}`);
    } else if (arg === '--json') {
      if (i + 1 >= argv.length) throw new RangeError(`--json needs a file; ${USAGE}`);
      options.json = argv[++i];
    } else if (arg === '--cache') {
      if (i + 1 >= argv.length) throw new RangeError(`--cache needs a folder; ${USAGE}`);
      options.cache = path.resolve(argv[++i]);
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new RangeError(`unknown argument ${arg}; ${USAGE}`);
  }
  return options;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const rotate = <T>(items: readonly T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]);

function cpuName(): string {
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
    if (model) return model.trim();
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model ?? 'unknown CPU';
}

/** One case at one thread count: start the engines, check their outputs agree, time them in turns. */
async function runCase(
  info: CaseInfo, threads: number, engines: EngineName[], prepared: PreparedCache, options: Options, log: (line: string) => void,
): Promise<CaseResult> {
  const result: CaseResult = { info, threads, engines: [], diffs: [], failures: [] };
  const running: { engine: EngineName; process: EngineProcess; version: string; firstMs: number }[] = [];
  for (const engine of engines) {
    try {
      const { process: child, ready } = await EngineProcess.start(engine, { engine, cacheDir: prepared.dir, caseName: info.name, threads });
      running.push({ engine, process: child, version: ready.version, firstMs: ready.firstForwardMs });
    } catch (error) {
      result.failures.push({ engine, message: (error as Error).message });
    }
  }
  try {
    // warm-up; an engine's last warm-up turn (or its first forward) estimates its time per forward
    const perForward = new Map(running.map((r) => [r.engine, r.firstMs]));
    const warmupTurns = Math.max(1, Math.ceil(info.warmup / info.repsPerTurn));
    for (let i = 0; i < warmupTurns; i++) {
      for (const r of running.filter((r) => r.firstMs <= SLOW_FORWARD_MS)) {
        perForward.set(r.engine, median(await r.process.run(info.repsPerTurn)));
        await sleep(SETTLE_MS);
      }
    }
    await collectOutputs(result, running, prepared);

    const rounds = options.rounds ?? (options.quick ? info.quickRounds : info.rounds);
    const budget = options.quick ? QUICK_ENGINE_BUDGET_MS : ENGINE_BUDGET_MS;
    const stride = new Map(running.map((r) => {
      const turnsAffordable = Math.max(1, Math.floor(budget / (perForward.get(r.engine)! * info.repsPerTurn)));
      return [r.engine, Math.ceil(rounds / Math.min(rounds, turnsAffordable))];
    }));
    for (const r of running.filter((r) => stride.get(r.engine)! > 1)) {
      log(`  ${r.engine} takes ${(perForward.get(r.engine)! / 1000).toFixed(1)} s a forward: it runs in 1 round of ${stride.get(r.engine)}`);
    }
    const times = new Map(running.map((r) => [r.engine, [] as number[]]));
    const turns = new Map(running.map((r) => [r.engine, [] as (number | null)[]]));
    for (let round = 0; round < rounds; round++) {
      for (const r of rotate(running, round)) {
        if (round % stride.get(r.engine)! !== 0) {
          turns.get(r.engine)!.push(null);
          continue;
        }
        const ms = await r.process.run(info.repsPerTurn);
        times.get(r.engine)!.push(...ms);
        turns.get(r.engine)!.push(median(ms));
        await sleep(SETTLE_MS);
      }
    }
    for (const r of running) {
      const bye = await r.process.exit();
      const all = times.get(r.engine)!;
      result.engines.push({
        engine: r.engine, version: r.version, times: all, turns: turns.get(r.engine)!, summary: summarize(all), vmHWMKiB: bye.vmHWMKiB,
        rssTrailKiB: bye.rssTrailKiB ?? {}, exitBytes: bye.detail ?? {},
      });
    }
  } catch (error) {
    // a worker died mid-case: report it, keep the suite going
    const culprit = running.find((r) => r.process.failed)?.engine ?? 'simdformer';
    result.failures.push({ engine: culprit, message: (error as Error).message });
  } finally {
    for (const r of running) r.process.kill();
  }
  return result;
}

/**
 * Compares every pair of engines' outputs (each worker writes its last one).
 * In a padded case, pairs with PyTorch compare real tokens only: its
 * nested-tensor fast path returns zeros for padded tokens, which simdformer
 * and the exported math path compute.
 */
async function collectOutputs(result: CaseResult, running: { engine: EngineName; process: EngineProcess }[], prepared: PreparedCache): Promise<void> {
  const outDir = path.join(prepared.dir, 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const outputs = new Map<EngineName, Float32Array>();
  for (const r of running) {
    const file = path.join(outDir, `${result.info.name}-${result.threads}t-${r.engine}.f32`);
    await r.process.writeOutput(file);
    const bytes = fs.readFileSync(file);
    outputs.set(r.engine, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
  }
  const entry = prepared.manifest.cases[result.info.name];
  let realTokens: ((i: number) => boolean) | undefined;
  if (entry.keyPaddingMask) {
    const mask = readTensorFile(path.join(prepared.dir, entry.inputs)).get(entry.keyPaddingMask)!.data;
    const dModel = entry.outputShape[entry.outputShape.length - 1];
    realTokens = (i) => mask[Math.floor(i / dModel)] === 0;
  }
  const names = [...outputs.keys()];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const [a, b] = [names[i], names[j]];
      const onlyReal = realTokens !== undefined && (a === 'pytorch' || b === 'pytorch');
      result.diffs.push({
        a, b, maxAbsDiff: maxAbsDiff(outputs.get(a)!, outputs.get(b)!, onlyReal ? realTokens : undefined),
        note: onlyReal ? 'real tokens only' : null,
      });
    }
  }
}

/** Model load: fresh processes, alternating engines; each loads, runs one forward and exits. */
async function runLoad(model: string, caseName: string, threads: number, engines: EngineName[], prepared: PreparedCache, samples: number): Promise<LoadResult> {
  const result: LoadResult = { model, threads, engines: engines.map((engine) => ({ engine, ready: [], first: [], phases: {}, packed: [] })), failures: [] };
  for (let sample = 0; sample < samples; sample++) {
    for (const slot of rotate(result.engines, sample)) {
      if (result.failures.some((f) => f.engine === slot.engine)) continue;
      try {
        const { process: child, ready } = await EngineProcess.start(slot.engine, { engine: slot.engine, cacheDir: prepared.dir, caseName, threads });
        await child.exit();
        slot.ready.push(ready.loadMs);
        slot.first.push(ready.firstForwardMs);
        for (const [phase, ms] of Object.entries(ready.loadPhases)) (slot.phases[phase] ??= []).push(ms);
        if (ready.packedMs !== undefined) slot.packed.push(ready.packedMs);
      } catch (error) {
        result.failures.push({ engine: slot.engine, message: (error as Error).message });
      }
      await sleep(SETTLE_MS);
    }
  }
  result.engines = result.engines.filter((e) => e.ready.length > 0);
  return result;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string) => console.error(line);
  const cpu = cpuName();
  if (!fs.existsSync(path.join(__dirname, 'worker.js'))) throw new Error('dist/bench/worker.js is missing: run npm run build first');

  const torch = probeTorch();
  const prepared = await prepareCache(options.cache, torch, log);
  const engines = options.engines.filter((engine) => {
    const reason = engine === 'simdformer' ? null : prepared.peers[engine as PeerName];
    if (reason) log(`skipping ${engine}: ${reason}`);
    return reason === null;
  });

  const busy = os.loadavg()[0];
  if (busy > 0.5) log(`warning: load average ${busy.toFixed(2)} before the start: something else is using the CPU; ratios hold up better than times`);
  const started = Date.now();
  const cases: CaseResult[] = [];
  for (const info of options.cases) {
    for (const threads of options.threads) {
      log(`${info.name}, ${threads} thread${threads > 1 ? 's' : ''}: ${engines.join(', ')}...`);
      cases.push(await runCase(info, threads, engines, prepared, options, log));
    }
  }
  const loads: LoadResult[] = [];
  if (options.load) {
    const threads = Math.max(...options.threads);
    for (const model of [...new Set(options.cases.map((c) => prepared.manifest.cases[c.name].model))]) {
      const caseName = options.cases.find((c) => prepared.manifest.cases[c.name].model === model)!.name;
      log(`load ${model}: ${engines.join(', ')}...`);
      loads.push(await runLoad(model, caseName, threads, engines, prepared, options.quick ? QUICK_LOAD_SAMPLES : LOAD_SAMPLES));
    }
  }

  const versions = new Map<string, string>();
  for (const r of cases) for (const e of r.engines) versions.set(e.engine, e.version);
  console.log(`\nsimdformer end to end: ${cpu}, ${os.availableParallelism()} CPUs, Node ${process.version}`);
  console.log(`engines: ${[...versions].map(([e, v]) => `${e} ${v}`).join(', ')}`);
  console.log(`fp32, eval, same weights and inputs; times are per forward (median, min, max over every timed run; engines in alternating turns);`);
  console.log(`simdformer/this: median over rounds of simdformer's turn / that engine's turn (below 1: simdformer is faster); ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  console.log(caseTable(cases));
  const memory = memoryLines(cases.filter((c) => c.engines.length > 0));
  if (memory) console.log(`\nwhere the memory goes\n${memory}`);
  if (loads.length) {
    console.log(`\nmodel load (fresh process per sample; ready: from the safetensors / ONNX file to a model a forward can be called on)\n`);
    console.log(loadTable(loads));
  }
  const goals = targets(cases, loads);
  if (goals.length) {
    console.log('\ntargets (2 threads, simdformer / onnxruntime)');
    console.log(table(['', 'ratio', 'target', '', ''], goals.map((g) => [
      g.what, g.value.toFixed(3), `<= ${g.limit}`, g.value <= g.limit ? 'met' : 'MISSED', g.detail,
    ]), [false, true, true, false, false]));
  }

  let ok = true;
  for (const r of cases) {
    for (const d of r.diffs) {
      if (!(d.maxAbsDiff <= OUTPUT_TOLERANCE)) {
        ok = false;
        console.log(`\nWRONG OUTPUT: ${r.info.name} (${r.threads} threads): ${d.a} and ${d.b} differ by ${d.maxAbsDiff} (tolerance ${OUTPUT_TOLERANCE}); its times are not comparable`);
      }
    }
    for (const f of r.failures) {
      ok = false;
      console.log(`\nFAILED: ${r.info.name} (${r.threads} threads): ${f.message}`);
    }
  }
  for (const r of loads) {
    for (const f of r.failures) {
      ok = false;
      console.log(`\nFAILED: load ${r.model}: ${f.message}`);
    }
  }
  if (options.json) {
    fs.writeFileSync(options.json, `${JSON.stringify(jsonEntries(cases, loads, cpu), null, 2)}\n`);
    log(`\nwrote ${options.json}`);
  }
  return ok ? 0 : 1;
}

main().then((code) => {
  process.exitCode = code;
}, (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 2;
});

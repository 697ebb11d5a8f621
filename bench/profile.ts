/**
 * Where simdformer's forward time goes, from `perf` samples of the
 * benchmark's own worker (bench/worker.ts) on one case:
 *
 *   node dist/bench/profile.js [--case enc6] [--threads 2] [--reps 10]
 *
 * Needs Linux perf (Debian: apt-get install linux-perf) and the cache of
 * `npm run bench`. Hardware counters are not needed: it samples the
 * cpu-clock software event (which works in VMs without a PMU), with DWARF
 * call stacks, and only while the timed forwards run (perf's control FIFO
 * turns sampling on after the warm-up and off before exit). Each sample is
 * put in one category by its whole stack, so the GEMM micro-kernel calls made
 * inside attention count as attention:
 *
 *   attention     a frame of the attention driver (flash_attention, attention)
 *   GEMM          a frame of gemm / packing (Linear layers, fused epilogues)
 *   layer norm    a layer-norm frame
 *   row ops       softmax / activation frames outside attention
 *   thread pool   the pool's own frames with nothing above them (spinning, waking, waiting)
 *   plan glue     anything else under Plan::run (copies, residual adds, layout changes)
 *   JS / V8       frames of node itself or JIT code (input copies, promises, GC)
 *   other         the rest (kernel, libc outside the plan)
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { DEFAULT_CACHE, readManifest, ROOT } from './cases';
import { REPLY_PREFIX, Reply } from './protocol';
import { median } from './stats';

export const CATEGORIES = ['attention', 'GEMM', 'layer norm', 'row ops', 'thread pool', 'plan glue', 'JS / V8', 'other'] as const;
export type Category = (typeof CATEGORIES)[number];

/** The category of one sample, from its frames' symbols (innermost first) and the innermost frame's object. */
export function classify(symbols: readonly string[], innermostObject: string): Category {
  const any = (pattern: RegExp) => symbols.some((s) => pattern.test(s));
  if (any(/flash_attention|attention/i)) return 'attention';
  if (any(/gemm|pack_a|pack_b/i)) return 'GEMM';
  if (any(/layer_?norm/i)) return 'layer norm';
  if (any(/softmax|activation|relu|gelu/i)) return 'row ops';
  const user = symbols.filter((s) => !/^\[?unknown\]?$/.test(s));
  if (user.length > 0 && /ThreadPool/.test(user[0]) && !any(/Plan::run/)) return 'thread pool';
  if (any(/Plan::run|PlanJob/)) return 'plan glue';
  if (/^(node|\[JIT\]|perf-\d+\.map)/.test(path.basename(innermostObject)) || any(/v8::|node::|Builtins_/)) return 'JS / V8';
  return 'other';
}

/** Counts the samples of `perf script -F ip,sym,dso` output by category. */
export function categorize(script: string): Map<Category, number> {
  const counts = new Map<Category, number>(CATEGORIES.map((c) => [c, 0]));
  for (const block of script.split(/\n\s*\n/)) {
    const frames = block.split('\n').map((l) => l.trim()).filter((l) => /^[0-9a-f]+ /.test(l));
    if (frames.length === 0) continue;
    const parsed = frames.map((f) => {
      const m = /^[0-9a-f]+ (.*?)(?: \(([^)]*)\))?$/.exec(f);
      return { symbol: m?.[1] ?? '', object: m?.[2] ?? '' };
    });
    const category = classify(parsed.map((p) => p.symbol), parsed[0].object);
    counts.set(category, counts.get(category)! + 1);
  }
  return counts;
}

interface Options {
  caseName: string;
  threads: number;
  reps: number;
  cache: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { caseName: 'enc6', threads: 2, reps: 10, cache: DEFAULT_CACHE };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--case' && value) options.caseName = argv[++i];
    else if (argv[i] === '--threads' && value) options.threads = Number(argv[++i]);
    else if (argv[i] === '--reps' && value) options.reps = Number(argv[++i]);
    else if (argv[i] === '--cache' && value) options.cache = path.resolve(argv[++i]);
    else throw new RangeError(`unknown argument ${argv[i]}; usage: profile.js [--case NAME] [--threads N] [--reps N] [--cache DIR]`);
  }
  return options;
}

async function record(options: Options, dir: string): Promise<{ perfData: string; times: number[] }> {
  const control = path.join(dir, 'control');
  const ack = path.join(dir, 'ack');
  for (const fifo of [control, ack]) {
    if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error(`mkfifo ${fifo} failed`);
  }
  const perfData = path.join(dir, 'perf.data');
  const args = { engine: 'simdformer', cacheDir: options.cache, caseName: options.caseName, threads: options.threads };
  const child = spawn('perf', [
    'record', '-D', '-1', '--control', `fifo:${control},${ack}`, '-F', '499', '-e', 'cpu-clock',
    '--call-graph', 'dwarf,16384', '-o', perfData, '--',
    process.execPath, path.join(ROOT, 'dist', 'bench', 'worker.js'), JSON.stringify(args),
  ], { env: { ...process.env, SIMDFORMER_NUM_THREADS: String(options.threads) }, stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const replies: Reply[] = [];
  let wake: (() => void) | null = null;
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith(REPLY_PREFIX)) return;
    replies.push(JSON.parse(line.slice(REPLY_PREFIX.length)) as Reply);
    wake?.();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const next = async (): Promise<Reply> => {
    while (replies.length === 0) {
      const gone = await Promise.race([new Promise<false>((resolve) => { wake = () => resolve(false); }), exited.then(() => true)]);
      if (gone && replies.length === 0) throw new Error(`perf or the worker exited early:\n${stderr.join('')}`);
    }
    const reply = replies.shift()!;
    if (reply.type === 'error') throw new Error(reply.message);
    return reply;
  };
  const send = (request: object) => child.stdin!.write(`${JSON.stringify(request)}\n`);
  // perf keeps both FIFOs open: write one command, read one reply (not to EOF, which never comes).
  // Opened once the worker is ready, so perf certainly has its ends open and the opens do not block.
  let controlFd = -1;
  let ackFd = -1;
  const perfCommand = async (command: string) => {
    fs.writeSync(controlFd, `${command}\n`);
    fs.readSync(ackFd, Buffer.alloc(64));
  };

  await next(); // ready
  controlFd = fs.openSync(control, 'w');
  ackFd = fs.openSync(ack, 'r');
  send({ cmd: 'run', reps: 2 }); // warm-up, unsampled
  await next();
  await perfCommand('enable');
  send({ cmd: 'run', reps: options.reps });
  const timed = await next();
  await perfCommand('disable');
  send({ cmd: 'exit' });
  await next();
  child.stdin!.end();
  fs.closeSync(controlFd);
  fs.closeSync(ackFd);
  const code = await exited;
  if (code !== 0) throw new Error(`perf record exited with ${code}:\n${stderr.join('')}`);
  return { perfData, times: timed.type === 'times' ? timed.ms : [] };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (spawnSync('perf', ['--version']).status !== 0) throw new Error('perf not found (Debian: apt-get install linux-perf)');
  const manifest = readManifest(options.cache);
  if (!manifest?.cases[options.caseName]) throw new Error(`no case ${options.caseName} in ${options.cache}: run npm run bench first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simdformer-profile-'));
  try {
    const { perfData, times } = await record(options, dir);
    const script = spawnSync('perf', ['script', '-i', perfData, '-F', 'ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}`);
    const counts = categorize(script.stdout);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const forward = median(times);
    console.log(`simdformer ${options.caseName}, ${options.threads} thread(s): ${times.length} forwards, median ${forward.toFixed(1)} ms; ${total} samples (cpu-clock, all threads)`);
    console.log('category       share   ms of a forward (share x median)');
    for (const [category, count] of [...counts].sort((a, b) => b[1] - a[1])) {
      if (count === 0) continue;
      const share = count / total;
      console.log(`${category.padEnd(13)} ${(share * 100).toFixed(1).padStart(5)}%   ${(share * forward).toFixed(1).padStart(7)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}

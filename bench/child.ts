/**
 * An engine's worker process, seen from the suite: start it, send requests,
 * await replies (bench/protocol.ts). A worker that dies or reports an error
 * rejects the pending request with its stderr's last lines.
 */
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import { EngineName, pythonEnv, ROOT, TORCH_PYTHON, TORCH_WORKER } from './cases';
import { REPLY_PREFIX, Reply, Request, WorkerArgs } from './protocol';

type ReadyReply = Extract<Reply, { type: 'ready' }>;
type ByeReply = Extract<Reply, { type: 'bye' }>;

const STDERR_LINES_KEPT = 20;

export class EngineProcess {
  readonly engine: EngineName;
  private readonly child: ChildProcess;
  private readonly label: string;
  private readonly stderr: string[] = [];
  private waiting: { resolve: (reply: Reply) => void; reject: (error: Error) => void } | null = null;
  private exited: Error | null = null;
  private errored = false;

  private constructor(engine: EngineName, args: WorkerArgs) {
    this.engine = engine;
    this.label = `${engine} (${args.caseName}, ${args.threads} thread${args.threads > 1 ? 's' : ''})`;
    const threads = String(args.threads);
    // Thread counts for every library's own knobs too, so no engine starts more threads than asked for.
    const env = { SIMDFORMER_NUM_THREADS: threads, OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads };
    this.child = engine === 'pytorch'
      ? spawn(TORCH_PYTHON, [TORCH_WORKER, JSON.stringify(args)], { env: pythonEnv(env), stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'worker.js'), JSON.stringify({ ...args, engine })], {
        env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'],
      });
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => this.onLine(line));
    readline.createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderr.push(line);
      if (this.stderr.length > STDERR_LINES_KEPT) this.stderr.shift();
    });
    this.child.on('exit', (code, signal) => {
      this.exited = this.failure(`exited (${signal ?? `code ${code}`})`);
      this.waiting?.reject(this.exited);
      this.waiting = null;
    });
  }

  /** Starts the worker and waits until its model is loaded and has run once. */
  static async start(engine: EngineName, args: WorkerArgs): Promise<{ process: EngineProcess; ready: ReadyReply }> {
    const child = new EngineProcess(engine, args);
    const ready = await child.next();
    if (ready.type !== 'ready') throw child.failure(`sent ${ready.type} before it was ready`);
    return { process: child, ready };
  }

  async run(reps: number): Promise<number[]> {
    const reply = await this.request({ cmd: 'run', reps });
    if (reply.type !== 'times') throw this.failure(`answered run with ${reply.type}`);
    return reply.ms;
  }

  async writeOutput(file: string): Promise<void> {
    const reply = await this.request({ cmd: 'output', file });
    if (reply.type !== 'output') throw this.failure(`answered output with ${reply.type}`);
  }

  /** Ends the worker; returns its peak and current RSS. */
  async exit(): Promise<ByeReply> {
    const reply = await this.request({ cmd: 'exit' });
    if (reply.type !== 'bye') throw this.failure(`answered exit with ${reply.type}`);
    return reply;
  }

  /** Whether the worker exited or reported an error. */
  get failed(): boolean {
    return this.exited !== null || this.errored;
  }

  kill(): void {
    if (this.exited === null && this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  private request(request: Request): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    const reply = this.next();
    this.child.stdin!.write(`${JSON.stringify(request)}\n`);
    return reply;
  }

  private next(): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  private onLine(line: string): void {
    if (!line.startsWith(REPLY_PREFIX)) {
      this.stderr.push(line);
      return;
    }
    const reply = JSON.parse(line.slice(REPLY_PREFIX.length)) as Reply;
    const waiting = this.waiting;
    this.waiting = null;
    if (reply.type === 'error') this.errored = true;
    if (reply.type === 'error') waiting?.reject(this.failure(`failed:\n${reply.message}`));
    else waiting?.resolve(reply);
  }

  private failure(what: string): Error {
    const tail = this.stderr.length ? `\n  its last output:\n    ${this.stderr.join('\n    ')}` : '';
    return new Error(`${this.label} ${what}${tail}`);
  }
}

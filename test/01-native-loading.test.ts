// The addon loads, reports what it chose, and honours SIMDFORMER_ISA and
// SIMDFORMER_NUM_THREADS; CPU detection agrees with the kernel's view of the CPU.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { getNumThreads, info, setNumThreads } from '../lib';
import { loadBinding, root, runNode } from './helpers';

const packageVersion = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;

describe('info()', () => {
  test('reports version, ISA, available ISAs and threads', () => {
    const { version, isa, availableIsas, numThreads } = info();
    expect(version).toBe(packageVersion);
    expect(availableIsas[0]).toBe('ref');
    expect(availableIsas).toContain(isa);
    expect(Number.isInteger(numThreads) && numThreads >= 1).toBe(true);
    if (process.env.SIMDFORMER_ISA === undefined) expect(isa).toBe(availableIsas[availableIsas.length - 1]);
  });

  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = new Set((cpuinfo.match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/));
  (process.arch === 'x64' && cpuinfo !== '' ? test : test.skip)('x86-64 ISAs agree with /proc/cpuinfo', () => {
    // The kernel lists a flag only when the OS supports its register state too.
    const avx2 = flags.has('avx2') && flags.has('fma');
    const avx512 = avx2 && ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f));
    // AMX also needs the process's tile permission (Linux 5.16+), which a kernel listing amx_tile grants.
    const amx = avx512 && ['avx512_bf16', 'amx_tile', 'amx_bf16'].every((f) => flags.has(f));
    const expected = ['ref', ...(avx2 ? ['avx2'] : []), ...(avx512 ? ['avx512'] : []), ...(amx ? ['amx'] : [])];
    expect(info().availableIsas).toEqual(expected);
  });
});

describe('SIMDFORMER_ISA', () => {
  test.each(info().availableIsas)('forces %s', (isa) => {
    const run = runNode(`console.log(${loadBinding}.info().isa)`, { SIMDFORMER_ISA: isa });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe(isa);
  });

  test('an unknown name fails to load with a clear error', () => {
    const run = runNode(`try { ${loadBinding} } catch (e) { console.log(e.constructor.name, e.code, e.message) }`,
      { SIMDFORMER_ISA: 'sse9' });
    expect(run.stdout.trim()).toBe(
      "RangeError ERR_SIMDFORMER_UNSUPPORTED_ISA SIMDFORMER_ISA must be one of ref, avx2, avx512, amx, neon but got 'sse9'");
  });

  test('an ISA this CPU cannot run fails to load with a clear error', () => {
    const missing = (['avx2', 'avx512', 'amx', 'neon'] as const).find((isa) => !info().availableIsas.includes(isa))!;
    const run = runNode(`try { ${loadBinding} } catch (e) { console.log(e.code, e.message) }`, { SIMDFORMER_ISA: missing });
    expect(run.stdout.trim()).toBe(`ERR_SIMDFORMER_UNSUPPORTED_ISA SIMDFORMER_ISA='${missing}' cannot run on this CPU/OS; ` +
      `available: ${info().availableIsas.join(', ')}`);
  });
});

describe('threads', () => {
  const initial = getNumThreads();
  afterAll(() => setNumThreads(initial));

  test('default is the CPUs this process may use (affinity), not the host count', () => {
    const run = runNode(`console.log(${loadBinding}.info().numThreads)`, { SIMDFORMER_NUM_THREADS: undefined });
    expect(Number(run.stdout)).toBe(os.availableParallelism());
  });

  const taskset = ['/usr/bin/taskset', '/bin/taskset'].find((p) => fs.existsSync(p));
  (taskset && os.availableParallelism() > 1 ? test : test.skip)('an affinity mask of one CPU gives one thread', () => {
    const run = runNode(`console.log(${loadBinding}.info().numThreads)`, { SIMDFORMER_NUM_THREADS: undefined },
      [taskset!, '-c', '0']);
    expect(run.stdout.trim()).toBe('1');
  });

  test('SIMDFORMER_NUM_THREADS sets the pool size', () => {
    const run = runNode(`console.log(${loadBinding}.info().numThreads)`, { SIMDFORMER_NUM_THREADS: '3' });
    expect(run.stdout.trim()).toBe('3');
  });

  test('setNumThreads resizes the pool and checks its argument', () => {
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(2);
    expect(getNumThreads()).toBe(2);
    expect(() => setNumThreads(0)).toThrow(RangeError);
    expect(() => setNumThreads(1.5)).toThrow('Expected an integer in [1, 1024] for n but received 1.5 of type number');
    expect(() => setNumThreads('2' as unknown as number)).toThrow(TypeError);
  });
});

describe('worker_threads', () => {
  test('the addon loads and computes in several workers at once', () => {
    // Each worker loads its own instance (per-environment state) and runs a GEMM.
    const code = `
      const { Worker } = require('worker_threads');
      const src = \`
        const { parentPort } = require('worker_threads');
        const b = ${loadBinding.replace(/\\/g, '\\\\')};
        const a = new Float32Array([1, 2, 3, 4]), w = new Float32Array([5, 6, 7, 8]), c = new Float32Array(4);
        const packed = b.packB(w, 2, 2, 2, 1);
        b.gemm({ batch: 1, m: 2, n: 2, k: 2, a, aRowStride: 2, aColStride: 1, b: packed, c, ldc: 2, cBatchStride: 0 });
        parentPort.postMessage(Array.from(c));
      \`;
      Promise.all([0, 1, 2, 3].map(() => new Promise((resolve, reject) => {
        const w = new Worker(src, { eval: true });
        w.on('message', resolve); w.on('error', reject);
      }))).then((r) => console.log(JSON.stringify(r)));`;
    const run = runNode(code);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual(Array(4).fill([19, 22, 43, 50]));
  });
});

// Serving behaviour of forward(): off the event loop, queued without
// oversubscription, cancellable, leak-free, safe in worker threads and with
// detached input buffers. Timing bounds are loose on purpose (shared CI).
import * as fs from 'fs';
import { monitorEventLoopDelay } from 'perf_hooks';
import { nn, randn, stats, Tensor, tensor } from '../lib';
import { loadBinding, runNode } from './helpers';

jest.setTimeout(120000);

function encoder(dModel = 64, layers = 2, seed = 0): nn.TransformerEncoder {
  const layer = new nn.TransformerEncoderLayer(dModel, 4, { dimFeedforward: 4 * dModel, batchFirst: true });
  const stack = new nn.TransformerEncoder(layer, layers, { norm: new nn.LayerNorm(dModel) });
  // Deterministic weights, whatever ran before in this process.
  const weights = new Map([...stack.stateDict()].map(([key, value], i) => [key, randn(value.shape as number[], { seed: seed + i })]));
  stack.loadStateDict(weights);
  return stack;
}

function sameValues(a: Tensor, b: Tensor): boolean {
  return a.shape.join() === b.shape.join() && Buffer.compare(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength),
    Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)) === 0;
}

async function waitIdle(): Promise<void> {
  for (let i = 0; i < 200 && (stats().queued > 0 || stats().running > 0); i++) await new Promise((r) => setTimeout(r, 10));
}

test('forward() keeps the event loop and libuv free while inference runs back to back', async () => {
  const model = encoder(256, 4);
  const x = randn([4, 128, 256], { seed: 1 });
  await model.forward(x);

  const idle = monitorEventLoopDelay({ resolution: 1 });
  idle.enable();
  await new Promise((r) => setTimeout(r, 500));
  idle.disable();

  const busy = monitorEventLoopDelay({ resolution: 1 });
  const readTimes: number[] = [];
  const until = Date.now() + 2000;
  busy.enable();
  const reader = (async () => {
    while (Date.now() < until) {
      const start = performance.now();
      await fs.promises.readFile(__filename);
      readTimes.push(performance.now() - start);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  let forwards = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (Date.now() < until) {
      await model.forward(x);
      forwards++;
    }
  }));
  await reader;
  busy.disable();
  const idleP99 = idle.percentile(99) / 1e6, busyP99 = busy.percentile(99) / 1e6;
  expect(forwards).toBeGreaterThan(4);
  expect(busyP99).toBeLessThan(idleP99 + 20);
  readTimes.sort((a, b) => a - b);
  // A file read issued during inference completes in milliseconds, not after it.
  expect(readTimes[Math.floor(readTimes.length / 2)]).toBeLessThan(20);
});

test('200 mixed calls at concurrency 16 settle once each with the serial result or the right error', async () => {
  const model = encoder(32, 2, 100);
  const inputs = [0, 1, 2, 3].map((i) => randn([2, 5 + i, 32], { seed: 10 + i }));
  const serial = inputs.map((x) => model.forwardSync(x));
  const bad = randn([2, 5, 31], { seed: 9 });
  let maxRunning = 0;
  const outcomes: string[] = new Array(200).fill('');
  let next = 0;
  const worker = async () => {
    while (next < 200) {
      const i = next++;
      const kind = i % 5;
      try {
        if (kind === 3) {
          await model.forward(bad);
          outcomes[i] += 'resolved-bad;';
        } else if (kind === 4) {
          // Even: aborted before the call (no work at all); odd: aborted while queued or running.
          const controller = new AbortController();
          if (i % 2 === 0) controller.abort();
          const pending = model.forward(inputs[i % 4], { signal: controller.signal });
          if (i % 2 === 1) setImmediate(() => controller.abort());
          const result = await pending;
          // Aborting after the job finished is allowed to lose the race.
          outcomes[i] += sameValues(result, serial[i % 4]) ? 'ok;' : 'wrong;';
        } else {
          const result = await model.forward(inputs[i % 4]);
          outcomes[i] += sameValues(result, serial[i % 4]) ? 'ok;' : 'wrong;';
        }
      } catch (error) {
        const e = error as { name: string; code?: string; message: string };
        if (kind === 3 && e.code === 'ERR_SIMDFORMER_SHAPE_MISMATCH' && /embedding dimension of 32, but got 31/.test(e.message)) outcomes[i] += 'rejected-bad;';
        else if (kind === 4 && e.name === 'AbortError' && e.code === 'ABORT_ERR') outcomes[i] += 'aborted;';
        else outcomes[i] += `unexpected ${e.name} ${e.message};`;
      }
      maxRunning = Math.max(maxRunning, stats().running);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  outcomes.forEach((outcome, i) => {
    const kind = i % 5;
    if (kind === 3) expect(outcome).toBe('rejected-bad;');
    else if (kind === 4) expect(['aborted;', 'ok;']).toContain(outcome);
    else expect(outcome).toBe('ok;');
  });
  // Every call aborted before it was issued (even i) never ran.
  outcomes.forEach((outcome, i) => { if (i % 5 === 4 && i % 2 === 0) expect(outcome).toBe('aborted;'); });
  expect(maxRunning).toBeLessThanOrEqual(1);
  await waitIdle();
  expect(stats().queued).toBe(0);
  expect(stats().running).toBe(0);
});

test('aborting a running forward stops it at the next step', async () => {
  const model = encoder(256, 6, 200);
  const x = randn([8, 128, 256], { seed: 3 });
  await model.forward(x);
  const started = performance.now();
  await model.forward(x);
  const full = performance.now() - started;
  const controller = new AbortController();
  const pending = model.forward(x, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('client went away')), full / 4);
  const error = await pending.then(() => null, (e: Error) => e);
  expect(error?.name).toBe('AbortError');
  expect((error?.cause as Error).message).toBe('client went away');
});

test('an async error points at the caller, not at the callback that settled it', async () => {
  const embedding = new nn.Embedding(4, 2);
  const error = await embedding.forward(tensor([7], { dtype: 'int64' })).then(() => null, (e: Error) => e);
  expect(error?.message).toMatch(/^index out of range in self/);
  expect(error?.stack).toContain('13-serving.test.ts');
});

test('2,000 forwards after warm-up: RSS and nativeBytes stay flat', async () => {
  const model = encoder(32, 2, 300);
  const x = randn([2, 8, 32], { seed: 4 });
  for (let i = 0; i < 200; i++) await model.forward(x);
  global.gc?.();
  const rss = process.memoryUsage().rss;
  const native = stats().nativeBytes;
  for (let i = 0; i < 2000; i++) {
    if (i % 2 === 0) await model.forward(x); else model.forwardSync(x);
  }
  global.gc?.();
  // No growth (objects of earlier tests may be collected meanwhile, so it may shrink).
  expect(stats().nativeBytes - native).toBeLessThanOrEqual(0);
  expect(process.memoryUsage().rss - rss).toBeLessThan(5 * 1024 * 1024);
});

test('a detached input buffer during an in-flight forward: no crash, the right result', async () => {
  const model = encoder(32, 2, 400);
  const x = randn([2, 6, 32], { seed: 5 });
  const expected = model.forwardSync(x);
  const copy = new Tensor(x.data.slice(), x.shape);
  const pending = model.forward(copy);
  structuredClone(copy.data.buffer, { transfer: [copy.data.buffer as ArrayBuffer] });
  expect(copy.data.byteLength).toBe(0);
  expect(sameValues(await pending, expected)).toBe(true);
  // A detached buffer given to forward is an argument error, not a crash.
  await expect(model.forward(copy)).rejects.toThrow();
});

test('main thread + 4 workers run at once; terminating workers mid-forward 20 times never crashes', () => {
  // Raw plans in each worker: many large linear steps, tens of ms per run.
  const code = `
    const { Worker } = require('worker_threads');
    const src = \`
      const { parentPort, workerData } = require('worker_threads');
      const b = ${loadBinding.replace(/\\/g, '\\\\')};
      const k = 384, w = new Float32Array(k * k).map((_, i) => ((i * 7919) % 13) / 13 - 0.5);
      const packed = b.packB(w, k, k, 1, k);
      const values = [{ type: 'float32', count: 256 * k }];
      const steps = [];
      for (let s = 0; s < 16; s++) { values.push({ type: 'float32', count: 256 * k }); steps.push({ kind: 'linear', inputs: [s], output: s + 1, weight: packed, activation: 'gelu' }); }
      const plan = b.createPlan({ values, inputs: [0], steps, outputs: [16] });
      const input = new Float32Array(256 * k).map((_, i) => ((i * 31) % 17) / 17 - 0.5);
      const expected = plan.run([input])[0];
      const same = (a) => Buffer.compare(Buffer.from(a.buffer), Buffer.from(expected.buffer)) === 0;
      (async () => {
        for (let i = 0; i < workerData.runs; i++) {
          const out = (await plan.runAsync([input]))[0];
          if (!same(out)) { parentPort.postMessage('wrong'); return; }
          parentPort.postMessage('ran');
        }
        parentPort.postMessage('done');
      })();
    \`;
    const start = (runs) => new Worker(src, { eval: true, workerData: { runs } });
    (async () => {
      // Main + 4 workers at once, all correct.
      const ok = await Promise.all([0, 1, 2, 3].map(() => new Promise((resolve) => {
        const w = start(2); w.on('message', (m) => { if (m !== 'ran') { resolve(m); w.terminate(); } });
        w.on('error', (e) => resolve('error ' + e.message));
      })));
      // Terminate workers mid-forward, 20 times.
      let terminated = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => {
          const w = start(1000);
          w.once('message', () => setTimeout(() => w.terminate().then(() => { terminated++; resolve(); }), (i % 4) * 3));
          w.on('error', () => resolve());
        });
      }
      console.log(JSON.stringify({ ok, terminated }));
    })();
  `;
  const run = runNode(code);
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(JSON.parse(run.stdout)).toEqual({ ok: ['done', 'done', 'done', 'done'], terminated: 20 });
});

/**
 * `npm run bench:serving`: how forward() behaves inside a Node service.
 * - event-loop delay (p50 / p99 / max, perf_hooks.monitorEventLoopDelay) idle
 *   and during continuous inference at concurrency 8;
 * - throughput (forwards / s) at concurrency 1, 2, 4, 8: queued calls must not
 *   collapse throughput (target: concurrency 8 >= 0.9 x the best).
 * Model: TransformerEncoder d_model 256, 4 heads, ff 1024, 4 layers, batch 4 x 128.
 * Options: --seconds N per measurement (default 3), --json FILE.
 */
import * as fs from 'fs';
import * as os from 'os';
import { monitorEventLoopDelay } from 'perf_hooks';
import { info, nn, randn } from '../lib';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const seconds = Number(option('--seconds') ?? 3);

function model(): nn.TransformerEncoder {
  const layer = new nn.TransformerEncoderLayer(256, 4, { dimFeedforward: 1024, batchFirst: true });
  return new nn.TransformerEncoder(layer, 4, { norm: new nn.LayerNorm(256) });
}

interface Delay {
  p50: number;
  p99: number;
  max: number;
}

async function measureDelay(work: () => Promise<void>): Promise<Delay> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  await work();
  histogram.disable();
  return { p50: histogram.percentile(50) / 1e6, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 };
}

async function throughput(encoder: nn.TransformerEncoder, concurrency: number, forSeconds: number): Promise<number> {
  const x = randn([4, 128, 256], { seed: 1 });
  const until = performance.now() + forSeconds * 1000;
  let done = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await encoder.forward(x);
      done++;
    }
  }));
  return done / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const encoder = model();
  const x = randn([4, 128, 256], { seed: 1 });
  for (let i = 0; i < 5; i++) await encoder.forward(x);
  const { isa, numThreads, version } = info();
  console.log(`simdformer ${version} serving benchmark: ${os.cpus()[0].model}, isa ${isa}, ${numThreads} threads`);
  console.log('model: TransformerEncoder d_model 256, 4 heads, ff 1024, 4 layers, input [4, 128, 256]\n');

  const idle = await measureDelay(() => new Promise((resolve) => setTimeout(resolve, seconds * 1000)));
  let busyRate = 0;
  const busy = await measureDelay(async () => {
    busyRate = await throughput(encoder, 8, seconds);
  });
  console.log('event-loop delay (ms)      p50      p99      max');
  console.log(`idle                  ${idle.p50.toFixed(2).padStart(8)} ${idle.p99.toFixed(2).padStart(8)} ${idle.max.toFixed(2).padStart(8)}`);
  console.log(`inference, conc. 8    ${busy.p50.toFixed(2).padStart(8)} ${busy.p99.toFixed(2).padStart(8)} ${busy.max.toFixed(2).padStart(8)}   (${busyRate.toFixed(1)} forwards/s)`);

  const rates: Record<number, number> = {};
  for (const concurrency of [1, 2, 4, 8]) rates[concurrency] = await throughput(encoder, concurrency, seconds);
  const best = Math.max(...Object.values(rates));
  console.log('\nconcurrency   forwards/s   x best');
  for (const [concurrency, rate] of Object.entries(rates)) {
    console.log(`${concurrency.padStart(11)} ${rate.toFixed(1).padStart(12)} ${(rate / best).toFixed(2).padStart(8)}`);
  }
  const result = { cpu: os.cpus()[0].model, isa, threads: numThreads, seconds, delayMs: { idle, busy }, throughput: rates, concurrency8VsBest: rates[8] / best };
  const json = option('--json');
  if (json) fs.writeFileSync(json, JSON.stringify(result, null, 2));
  console.log(`\n${JSON.stringify(result)}`);
}

void main();

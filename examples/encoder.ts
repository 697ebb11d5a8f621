/**
 * `npm start`: a PyTorch-sized TransformerEncoder (d_model 512, 8 heads,
 * feed-forward 2048, 6 layers, batch_first) with seeded weights, run on a
 * [8, 128, 512] batch with a key padding mask; prints the ISA, threads and
 * time. Each forward is one native job off the event loop.
 */
import { info, manualSeed, nn, randn, stats, tensor } from '../lib';

const [dModel, heads, dimFeedforward, layers, batch, seq] = [512, 8, 2048, 6, 8, 128];

async function main(): Promise<void> {
  manualSeed(0);
  const layer = new nn.TransformerEncoderLayer(dModel, heads, { dimFeedforward, activation: 'gelu', batchFirst: true });
  const encoder = new nn.TransformerEncoder(layer, layers, { norm: new nn.LayerNorm(dModel) });
  const src = randn([batch, seq, dModel], { seed: 42 });
  // The last 16 positions of every other sequence are padding.
  const padding = tensor(Array.from({ length: batch }, (_, b) => Array.from({ length: seq }, (_, s) => b % 2 === 1 && s >= seq - 16)), { dtype: 'bool' });

  const { version, isa, numThreads } = info();
  console.log(`simdformer ${version}: isa=${isa} threads=${numThreads}`);
  console.log(`TransformerEncoder: ${layers} layers, d_model ${dModel}, ${heads} heads, ff ${dimFeedforward}, gelu, input [${batch}, ${seq}, ${dModel}] with a key padding mask`);

  let output = await encoder.forward(src, { srcKeyPaddingMask: padding });
  const times: number[] = [];
  for (let run = 0; run < 7; run++) {
    const start = performance.now();
    output = await encoder.forward(src, { srcKeyPaddingMask: padding });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1];
  // Dense matmul work per forward: 4 d×d projections + 2 d×ff per token, plus scores and context.
  const tokens = batch * seq;
  const flops = layers * (2 * tokens * (4 * dModel * dModel + 2 * dModel * dimFeedforward) + 4 * batch * seq * seq * dModel);
  console.log(`forward: median ${median.toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times[times.length - 1].toFixed(1)}) ` +
    `over ${times.length} runs, ${(flops / median / 1e6).toFixed(0)} GFLOP/s of matmul work`);
  console.log(`output[0, 0, :4] = [${Array.from((output.data as Float32Array).subarray(0, 4), (v) => v.toFixed(5)).join(', ')}]`);
  console.log(`native memory: ${(stats().nativeBytes / 2 ** 20).toFixed(1)} MiB`);
}

void main();

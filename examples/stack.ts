/**
 * `npm start`: a Transformer-encoder-sized stack of simdformer ops with seeded
 * weights (d_model 512, 8 heads, feed-forward 2048, 6 layers, batch 8 x 128
 * tokens), run a few times; prints the ISA, threads and time.
 *
 * Until the nn modules land this composes functional ops by hand: per layer,
 * Q/K/V projections, per-(sequence, head) scores with softmax, the output
 * projection, layer norm, and the GELU feed-forward.
 */
import { functional as F, info, randn, Tensor } from '../lib';

const dModel = 512;
const heads = 8;
const headDim = dModel / heads;
const dimFeedforward = 2048;
const layers = 6;
const batch = 8;
const seq = 128;

type Float32Tensor = Tensor<'float32'>;

function scaled(t: Float32Tensor, scale: number): Float32Tensor {
  for (let i = 0; i < t.data.length; i++) t.data[i] *= scale;
  return t;
}

/** A seeded layer in PyTorch's Linear initialisation range. */
function linearWeights(outFeatures: number, inFeatures: number, seed: number) {
  return {
    weight: scaled(randn([outFeatures, inFeatures], { seed }), 1 / Math.sqrt(inFeatures)),
    bias: scaled(randn([outFeatures], { seed: seed + 1 }), 0.02),
  };
}

const stack = Array.from({ length: layers }, (_, l) => ({
  q: linearWeights(dModel, dModel, 100 * l + 1),
  k: linearWeights(dModel, dModel, 100 * l + 3),
  v: linearWeights(dModel, dModel, 100 * l + 5),
  out: linearWeights(dModel, dModel, 100 * l + 7),
  ff1: linearWeights(dimFeedforward, dModel, 100 * l + 9),
  ff2: linearWeights(dModel, dimFeedforward, 100 * l + 11),
}));

/** Copies head h of rows [b * seq, (b + 1) * seq) of a [batch * seq, dModel] tensor into [seq, headDim]. */
function headSlice(x: Float32Tensor, b: number, h: number): Float32Tensor {
  const out = new Float32Array(seq * headDim);
  for (let s = 0; s < seq; s++) {
    out.set(x.data.subarray((b * seq + s) * dModel + h * headDim, (b * seq + s) * dModel + (h + 1) * headDim), s * headDim);
  }
  return new Tensor(out, [seq, headDim]);
}

function forward(input: Float32Tensor): Float32Tensor {
  let x = input.reshape([batch * seq, dModel]) as Float32Tensor;
  for (const layer of stack) {
    const q = F.linear(x, layer.q.weight, layer.q.bias);
    const k = F.linear(x, layer.k.weight, layer.k.bias);
    const v = F.linear(x, layer.v.weight, layer.v.bias);
    const attended = new Float32Array(batch * seq * dModel);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const qh = scaled(headSlice(q, b, h), 1 / Math.sqrt(headDim));
        // scores = q · kᵀ is exactly linear(q, k): [seq, headDim] x [seq, headDim]ᵀ
        const probabilities = F.softmax(F.linear(qh, headSlice(k, b, h)), -1);
        const context = F.matmul(probabilities, headSlice(v, b, h));
        for (let s = 0; s < seq; s++) {
          attended.set(context.data.subarray(s * headDim, (s + 1) * headDim), (b * seq + s) * dModel + h * headDim);
        }
      }
    }
    x = F.layerNorm(F.linear(new Tensor(attended, [batch * seq, dModel]), layer.out.weight, layer.out.bias), [dModel]);
    const hidden = F.gelu(F.linear(x, layer.ff1.weight, layer.ff1.bias));
    x = F.layerNorm(F.linear(hidden, layer.ff2.weight, layer.ff2.bias), [dModel]);
  }
  return x.reshape([batch, seq, dModel]) as Float32Tensor;
}

function main(): void {
  const { version, isa, numThreads } = info();
  console.log(`simdformer ${version}: isa=${isa} threads=${numThreads}`);
  console.log(`stack: ${layers} layers, d_model ${dModel}, ${heads} heads, ff ${dimFeedforward}, input [${batch}, ${seq}, ${dModel}]`);
  const input = randn([batch, seq, dModel], { seed: 42 });
  const times: number[] = [];
  let output = forward(input);
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint();
    output = forward(input);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  // Dense matmul work per forward: 6 d x d projections + 2 d x ff per token, plus scores and context.
  const tokens = batch * seq;
  const flops = layers * (2 * tokens * (4 * dModel * dModel + 2 * dModel * dimFeedforward) + 4 * batch * seq * seq * dModel);
  const median = times[Math.floor(times.length / 2)];
  console.log(`forward: median ${median.toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times[times.length - 1].toFixed(1)}) over ${times.length} runs, ` +
    `${(flops / median / 1e6).toFixed(1)} GFLOP/s of matmul work`);
  const sample = Array.from(output.data.subarray(0, 4), (v) => v.toFixed(5)).join(', ');
  console.log(`output[0, 0, :4] = [${sample}]`);
}

main();

// Module behaviour beyond single forwards: the PyTorch → safetensors →
// simdformer → safetensors round trip, JavaScript activations, deep copies,
// plan rebuilds after new weights, and async / sync agreement.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { functional as F, loadSafetensorsSync, manualSeed, nn, randn, saveSafetensorsSync, Tensor, tensor } from '../lib';

const fixture = path.join(__dirname, 'fixtures', 'modules', 'transformer_batch_first_all_masks.safetensors');

function transformerFromFixture(): nn.Transformer {
  const model = new nn.Transformer({ dModel: 20, nhead: 4, numEncoderLayers: 2, numDecoderLayers: 2, dimFeedforward: 40, activation: 'gelu', batchFirst: true });
  const stateDict = new Map([...loadSafetensorsSync(fixture)].filter(([key]) => !key.startsWith('__')));
  model.loadStateDict(stateDict);
  return model;
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let max = 0;
  for (let i = 0; i < a.numel; i++) max = Math.max(max, Math.abs((a.data[i] as number) - (b.data[i] as number)));
  return max;
}

test('PyTorch state_dict -> safetensors -> simdformer -> saveSafetensors -> loaded back bit for bit', () => {
  expect(fs.existsSync(fixture)).toBe(true);
  const model = transformerFromFixture();
  const original = new Map([...loadSafetensorsSync(fixture)].filter(([key]) => !key.startsWith('__')));
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'simdformer-')), 'model.safetensors');
  saveSafetensorsSync(file, model.stateDict());
  const reloaded = loadSafetensorsSync(file);
  expect([...reloaded.keys()].sort()).toEqual([...original.keys()].sort());
  for (const [key, value] of original) {
    const back = reloaded.get(key)!;
    expect(back.shape).toEqual(value.shape);
    expect(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength))
      .toEqual(Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength));
  }
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('a JavaScript activation runs the same forward as the fused one', async () => {
  const fused = new nn.TransformerEncoderLayer(16, 4, { dimFeedforward: 32, activation: 'gelu' });
  let calls = 0;
  const custom = new nn.TransformerEncoderLayer(16, 4, {
    dimFeedforward: 32, activation: (x) => { calls++; return F.gelu(x); },
  });
  custom.loadStateDict(fused.stateDict());
  const src = randn([5, 2, 16], { seed: 3 });
  const mask = nn.Transformer.generateSquareSubsequentMask(5);
  expect(maxAbsDiff(custom.forwardSync(src, { srcMask: mask }), fused.forwardSync(src, { srcMask: mask }))).toBeLessThan(1e-6);
  expect(maxAbsDiff(await custom.forward(src), fused.forwardSync(src))).toBeLessThan(1e-6);
  expect(calls).toBe(2);
  expect(() => new nn.TransformerEncoderLayer(16, 4, { activation: () => zerosLike() }).forwardSync(src)).toThrow(/float32 Tensor of 20480 elements/);
});

function zerosLike(): Tensor {
  return tensor([0]);
}

test('stacks deep-copy their layer', () => {
  const layer = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 });
  const encoder = new nn.TransformerEncoder(layer, 2);
  const weight = (key: string) => encoder.stateDict().get(key)!.data;
  expect(weight('layers.0.linear1.weight')).toEqual(weight('layers.1.linear1.weight'));
  expect(weight('layers.0.linear1.weight')).not.toBe(weight('layers.1.linear1.weight'));
  expect(weight('layers.0.linear1.weight')).not.toBe(layer.linear1.weight.data);
});

test('loadStateDict makes the next forward use the new weights', () => {
  const linear = new nn.Linear(4, 3);
  const x = randn([2, 4], { seed: 5 });
  const before = linear.forwardSync(x);
  const other = new nn.Linear(4, 3);
  linear.loadStateDict(other.stateDict());
  const after = linear.forwardSync(x);
  expect(maxAbsDiff(after, other.forwardSync(x))).toBe(0);
  expect(maxAbsDiff(after, before)).toBeGreaterThan(0);
  expect(maxAbsDiff(after, F.linear(x, other.weight, other.bias))).toBeLessThan(1e-6);
});

test('forward and forwardSync agree, and outputs do not alias inputs', async () => {
  const model = transformerFromFixture();
  const src = randn([2, 6, 20], { seed: 7 });
  const tgt = randn([2, 5, 20], { seed: 8 });
  const tgtMask = nn.Transformer.generateSquareSubsequentMask(5);
  const sync = model.forwardSync(src, tgt, { tgtMask });
  const results = await Promise.all([0, 1, 2, 3].map(() => model.forward(src, tgt, { tgtMask })));
  for (const result of results) expect(maxAbsDiff(result, sync)).toBe(0);
  expect(sync.data.buffer).not.toBe(tgt.data.buffer);
});

test('an embedding index out of range rejects the forward with PyTorch\'s message', async () => {
  const embedding = new nn.Embedding(5, 3);
  expect(() => embedding.forwardSync(tensor([1, 5], { dtype: 'int64' }))).toThrow(/^index out of range in self/);
  await expect(embedding.forward(tensor([-1], { dtype: 'int32' }))).rejects.toThrow(/^index out of range in self/);
});

test('parameters are made lazily, with values fixed at construction whatever the read order', () => {
  manualSeed(5);
  const a1 = new nn.Linear(4, 3), b1 = new nn.Linear(4, 3);
  const b1Weight = b1.weight.data.slice();  // read b before a
  const a1Weight = a1.weight.data.slice();
  manualSeed(5);
  const a2 = new nn.Linear(4, 3), b2 = new nn.Linear(4, 3);
  expect(a2.weight.data).toEqual(a1Weight);
  expect(b2.weight.data).toEqual(b1Weight);
  expect(a1Weight).not.toEqual(b1Weight);
  // A stack's layers are deep copies with equal values, made or not.
  const encoder = new nn.TransformerEncoder(new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }), 2);
  const state = encoder.stateDict();
  expect(state.get('layers.0.self_attn.in_proj_weight')!.data).toEqual(state.get('layers.1.self_attn.in_proj_weight')!.data);
});

test('loadStateDict with assign takes the given tensors, without it copies them', () => {
  const linear = new nn.Linear(4, 3);
  const weights = new nn.Linear(4, 3).stateDict();
  linear.loadStateDict(weights);
  expect(linear.weight).not.toBe(weights.get('weight'));
  expect(linear.weight.data).toEqual(weights.get('weight')!.data);
  linear.loadStateDict(weights, { assign: true });
  expect(linear.weight).toBe(weights.get('weight'));
  expect(linear.bias).toBe(weights.get('bias'));
});

test('changing a tensor loaded with assign and loading it again reaches the next forward', () => {
  const linear = new nn.Linear(2, 2, { bias: false });
  const weight = tensor([[1, 0], [0, 1]]);
  linear.loadStateDict(new Map([['weight', weight]]), { assign: true });
  const x = tensor([[1, 2]]);
  expect(Array.from(linear.forwardSync(x).data as Float32Array)).toEqual([1, 2]);
  (weight.data as Float32Array).set([2, 0, 0, 2]);
  linear.loadStateDict(new Map([['weight', weight]]), { assign: true });
  expect(Array.from(linear.forwardSync(x).data as Float32Array)).toEqual([2, 4]);
});

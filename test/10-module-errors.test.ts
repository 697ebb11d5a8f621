// The nn modules reject bad calls as PyTorch does, with its message: a
// TypeError for a wrong dtype and a RangeError for a wrong shape or value,
// each with a `code`. forward() rejects with the same error forwardSync()
// throws. Where simdformer wraps PyTorch's words in its own formula, only
// PyTorch's words are pinned (a regular expression).
import * as path from 'path';
import { loadSafetensorsSync, nn, randn, Tensor, zeros } from '../lib';
import { expectError } from './helpers';

const SHAPE = 'ERR_SIMDFORMER_SHAPE_MISMATCH';
const DTYPE = 'ERR_SIMDFORMER_DTYPE_MISMATCH';
const RANGE = 'ERR_SIMDFORMER_OUT_OF_RANGE';
const STATE_DICT = 'ERR_SIMDFORMER_STATE_DICT';

/** Expects the promise to reject with an error of class `type`, `code` and a message matching `message`. */
async function expectRejection(
  promise: Promise<unknown>, type: new (...args: never[]) => Error, code: string, message: string | RegExp,
): Promise<void> {
  const error = await promise.then(() => undefined, (reason: unknown) => reason);
  expectError(() => {
    if (error !== undefined) throw error;
  }, type, code, message);
}

function mask(shape: number[], dtype: 'bool' | 'float32' | 'int32' | 'int64' = 'bool'): Tensor {
  return zeros(shape, { dtype });
}

describe('MultiheadAttention argument errors', () => {
  const mha = new nn.MultiheadAttention(8, 2);
  const x = randn([5, 2, 8], { seed: 1 });

  test('a query of the wrong feature size', async () => {
    const query = randn([5, 2, 7], { seed: 2 });
    expectError(() => mha.forwardSync(query, query, query), RangeError, SHAPE, 'was expecting embedding dimension of 8, but got 7');
    await expectRejection(mha.forward(query, query, query), RangeError, SHAPE, 'was expecting embedding dimension of 8, but got 7');
  });

  test('a 4-D query', async () => {
    const query = randn([1, 5, 2, 8], { seed: 3 });
    const message = 'query should be unbatched 2D or batched 3D tensor but received 4-D query tensor';
    expectError(() => mha.forwardSync(query, query, query), RangeError, SHAPE, message);
    await expectRejection(mha.forward(query, query, query), RangeError, SHAPE, message);
  });

  test('a key padding mask of the wrong dtype or shape', async () => {
    for (const dtype of ['int32', 'int64'] as const) {
      expectError(() => mha.forwardSync(x, x, x, { keyPaddingMask: mask([2, 5], dtype) }), TypeError, DTYPE,
        'only bool and floating types of key_padding_mask are supported');
    }
    expectError(() => mha.forwardSync(x, x, x, { keyPaddingMask: mask([2, 4]) }), RangeError, SHAPE,
      'expecting key_padding_mask shape of [2, 5], but got [2, 4]');
    await expectRejection(mha.forward(x, x, x, { keyPaddingMask: mask([2, 4]) }), RangeError, SHAPE,
      'expecting key_padding_mask shape of [2, 5], but got [2, 4]');
  });

  test('an attention mask of the wrong shape or dtype', async () => {
    expectError(() => mha.forwardSync(x, x, x, { attnMask: mask([3, 4]) }), RangeError, SHAPE,
      'The shape of the 2D attn_mask is [3, 4], but should be [5, 5].');
    expectError(() => mha.forwardSync(x, x, x, { attnMask: mask([3, 5, 5], 'float32') }), RangeError, SHAPE,
      'The shape of the 3D attn_mask is [3, 5, 5], but should be [4, 5, 5].');
    expectError(() => mha.forwardSync(x, x, x, { attnMask: mask([5, 5], 'int32') }), TypeError, DTYPE,
      /attn_mask/);
    await expectRejection(mha.forward(x, x, x, { attnMask: mask([3, 4]) }), RangeError, SHAPE,
      'The shape of the 2D attn_mask is [3, 4], but should be [5, 5].');
  });

  test('embed_dim not divisible by num_heads', () => {
    expectError(() => new nn.MultiheadAttention(8, 3), RangeError, RANGE, /embed_dim must be divisible by num_heads/);
    expectError(() => new nn.TransformerEncoderLayer(10, 4), RangeError, RANGE, /embed_dim must be divisible by num_heads/);
  });
});

describe('Transformer layer and model argument errors', () => {
  const layer = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 });
  const src = randn([5, 2, 8], { seed: 4 });

  test('the encoder layer checks its input like MultiheadAttention', async () => {
    expectError(() => layer.forwardSync(randn([1, 5, 2, 8], { seed: 5 })), RangeError, SHAPE,
      'query should be unbatched 2D or batched 3D tensor but received 4-D query tensor');
    expectError(() => layer.forwardSync(randn([5, 2, 7], { seed: 6 })), RangeError, SHAPE,
      'was expecting embedding dimension of 8, but got 7');
    expectError(() => layer.forwardSync(src, { srcKeyPaddingMask: mask([2, 5], 'int32') }), TypeError, DTYPE,
      /^only bool and floating types of (src_)?key_padding_mask are supported$/);
    expectError(() => layer.forwardSync(src, { srcMask: mask([4, 4]) }), RangeError, SHAPE,
      'The shape of the 2D attn_mask is [4, 4], but should be [5, 5].');
    await expectRejection(layer.forward(randn([5, 2, 7], { seed: 6 })), RangeError, SHAPE,
      'was expecting embedding dimension of 8, but got 7');
  });

  test('src and tgt with different batch sizes', async () => {
    const options = { dModel: 8, nhead: 2, numEncoderLayers: 1, numDecoderLayers: 1, dimFeedforward: 16 };
    const sequenceFirst = new nn.Transformer(options);
    expectError(() => sequenceFirst.forwardSync(randn([5, 2, 8]), randn([4, 3, 8])), RangeError, SHAPE,
      'the batch number of src and tgt must be equal');
    await expectRejection(sequenceFirst.forward(randn([5, 2, 8]), randn([4, 3, 8])), RangeError, SHAPE,
      'the batch number of src and tgt must be equal');
    const batchFirst = new nn.Transformer({ ...options, batchFirst: true });
    expectError(() => batchFirst.forwardSync(randn([2, 5, 8]), randn([3, 4, 8])), RangeError, SHAPE,
      'the batch number of src and tgt must be equal');
  });

  test('an unknown activation', () => {
    const message = /activation should be relu\/gelu, not tanh/;
    const activation = 'tanh' as unknown as 'relu';
    expectError(() => new nn.TransformerEncoderLayer(8, 2, { activation }), RangeError, RANGE, message);
    expectError(() => new nn.TransformerDecoderLayer(8, 2, { activation }), RangeError, RANGE, message);
    expectError(() => new nn.Transformer({ dModel: 8, nhead: 2, activation }), RangeError, RANGE, message);
  });
});

describe('loadStateDict strict errors', () => {
  const linear = (): nn.Linear => new nn.Linear(4, 2);
  const header = /^Error\(s\) in loading state_dict for Linear:\n\t/;
  const missing = 'Missing key(s) in state_dict: "bias".';
  const unexpected = 'Unexpected key(s) in state_dict: "foo".';
  const sizeMismatch = 'size mismatch for weight: copying a param with shape [3, 4] from checkpoint, the shape in current model is [2, 4].';

  function messageOf(fn: () => unknown): string {
    try {
      fn();
    } catch (error) {
      expect((error as Error).constructor.name).toBe('RangeError');
      expect((error as { code?: string }).code).toBe(STATE_DICT);
      return (error as Error).message;
    }
    throw new Error('expected loadStateDict to throw');
  }

  test('a missing key', () => {
    const message = messageOf(() => linear().loadStateDict(new Map([['weight', zeros([2, 4])]])));
    expect(message).toMatch(header);
    expect(message).toContain(missing);
  });

  test('an unexpected key', () => {
    const message = messageOf(() => linear().loadStateDict(new Map([['weight', zeros([2, 4])], ['bias', zeros([2])], ['foo', zeros([1])]])));
    expect(message).toMatch(header);
    expect(message).toContain(unexpected);
  });

  test('a size mismatch', () => {
    const message = messageOf(() => linear().loadStateDict(new Map([['weight', zeros([3, 4])], ['bias', zeros([2])]])));
    expect(message).toMatch(header);
    expect(message).toContain(sizeMismatch);
  });

  test('every problem in one error, in PyTorch\'s order, and the module left unchanged', () => {
    const module = linear();
    const before = Float32Array.from(module.stateDict().get('weight')!.data as Float32Array);
    const message = messageOf(() => module.loadStateDict(new Map([['weight', zeros([3, 4])], ['foo', zeros([1])]])));
    expect(message).toMatch(header);
    const positions = [missing, unexpected, sizeMismatch].map((part) => message.indexOf(part));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(module.stateDict().get('weight')!.data).toEqual(before);
  });

  test('strict: false reports missing and unexpected keys but still rejects a size mismatch', () => {
    expect(linear().loadStateDict(new Map([['weight', zeros([2, 4])], ['foo', zeros([1])]]), { strict: false }))
      .toEqual({ missingKeys: ['bias'], unexpectedKeys: ['foo'] });
    expect(messageOf(() => linear().loadStateDict(new Map([['weight', zeros([3, 4])]]), { strict: false }))).toContain(sizeMismatch);
  });

  test('nested keys of a PyTorch checkpoint name the top-level class', () => {
    // A state_dict PyTorch saved for TransformerEncoderLayer(16, 4, 32), loaded into a bias=False layer.
    const file = path.join(__dirname, 'fixtures', 'modules', 'encoder_layer_relu.safetensors');
    const state = new Map([...loadSafetensorsSync(file)].filter(([key]) => !key.startsWith('__')));
    const message = messageOf(() => new nn.TransformerEncoderLayer(16, 4, { dimFeedforward: 32, bias: false }).loadStateDict(state));
    expect(message).toMatch(/^Error\(s\) in loading state_dict for TransformerEncoderLayer:\n\t/);
    const keys = /\n\tUnexpected key\(s\) in state_dict: ((?:"[^"]+"(?:, )?)+)\.(\n|$)/.exec(message)?.[1];
    expect(keys?.split(', ').sort()).toEqual([
      '"linear1.bias"', '"linear2.bias"', '"norm1.bias"', '"norm2.bias"', '"self_attn.in_proj_bias"', '"self_attn.out_proj.bias"',
    ]);
    expect(message).not.toContain('Missing key(s)');
  });
});

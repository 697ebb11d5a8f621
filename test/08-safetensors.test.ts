// safetensors in and out: files PyTorch wrote load with PyTorch's values,
// every validation rule has its error, saving round-trips bit for bit and
// writes what PyTorch writes and reads.
//
// UPDATE_SAFETENSORS_FIXTURES=1 rewrites fixtures/safetensors/from-simdformer.safetensors;
// then rerun scripts/gen_safetensors_fixtures.py so from-simdformer.json records
// PyTorch's reading of it.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  loadSafetensors, loadSafetensorsSync, saveSafetensors, saveSafetensorsSync, serializeSafetensors, SafetensorsError,
} from '../lib/safetensors';
import { Tensor } from '../lib/tensor';
import { expectError } from './helpers';

const FIXTURES = path.join(__dirname, 'fixtures', 'safetensors');
const INVALID = 'ERR_SIMDFORMER_INVALID_SAFETENSORS';
const UNSUPPORTED = 'ERR_SIMDFORMER_UNSUPPORTED_DTYPE';

interface ExpectedTensor {
  name: string;
  safetensorsDtype: string;
  torchDtype: string;
  shape: number[];
  dtype: string;
  values: (number | string)[];
}
interface ExpectedFile {
  sha256?: string;
  metadata: Record<string, string>;
  tensors: ExpectedTensor[];
}

function readExpected(name: string): ExpectedFile {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));
}

/** Values as the fixtures' JSON holds them: float32 as the uint32 of its bits, int64 as strings, bool as 0 / 1. */
function valuesOf(tensor: Tensor): (number | string)[] {
  const data = tensor.data;
  if (tensor.dtype === 'float32') return Array.from(new Uint32Array(data.buffer, data.byteOffset, tensor.numel));
  if (tensor.dtype === 'int64') return Array.from(data as BigInt64Array, String);
  return Array.from(data as Int32Array | Uint8Array);
}

function floatsFromBits(bits: number[], shape: number[]): Tensor {
  return new Tensor(new Float32Array(Uint32Array.from(bits).buffer), shape);
}

function bytesOf(tensor: Tensor): Buffer {
  return Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
}

/** A safetensors file: the prefix (the header's byte length unless given), the header, the data. */
function file(header: string | Uint8Array, data: number[] = [], headerLength?: bigint): Uint8Array {
  const json = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return new Uint8Array(Buffer.concat([prefix, json, Buffer.from(data)]));
}

function f32(name: string, shape: number[], offsets: number[]): string {
  return `"${name}":{"dtype":"F32","shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'simdformer-safetensors-'));
}

/** The state dict written to from-simdformer.safetensors for PyTorch to read. */
function simdformerStateDict(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['encoder.layers.0.linear1.weight', floatsFromBits([
      0x7fc00001, 0xffa00001, 0x80000000, 0x00000001,  // NaN payloads (quiet, signalling), -0, smallest subnormal
      0x7f800000, 0xff7fffff, 0x3f800000, 0xbeaaaaab,  // inf, lowest finite, 1, -1/3
    ], [2, 4])],
    ['encoder.layers.0.linear1.bias', new Tensor(Float32Array.from([0.5, -2, 1e-3]), [3])],
    ['__proto__', new Tensor(Float32Array.from([1.5]), [1])],
    ['ünïcode.名前', new Tensor(Int32Array.from([-2147483648, 2147483647]), [2])],
    ['zeta', new Tensor(Int32Array.from([3]), [1])],
    ['position_ids', new Tensor(BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]), [3])],
    ['step', new Tensor(BigInt64Array.from([12345n]), [])],
    ['mask', new Tensor(Uint8Array.from([1, 0, 1, 1, 0]), [5])],
    ['empty', new Tensor(new Float32Array(0), [0, 3])],
  ]);
}

const simdformerMetadata = new Map([
  ['format', 'pt'],
  ['__proto__', 'an ordinary key'],
  ['note', 'quote " backslash \\ newline \n tab \t control \u0001 ünïcode 名前 😀'],
]);

describe('loading files PyTorch wrote', () => {
  const fixture = path.join(FIXTURES, 'torch-all-dtypes.safetensors');
  const expected = readExpected('torch-all-dtypes.json');
  const loaded = loadSafetensorsSync(fixture);

  test('every tensor, in file order', () => {
    expect([...loaded.keys()]).toEqual(expected.tensors.map((t) => t.name));
  });

  test.each(expected.tensors.map((t) => [`${t.name} (${t.safetensorsDtype} → ${t.dtype})`, t] as const))(
    '%s has PyTorch\'s values', (_, want) => {
      const tensor = loaded.get(want.name)!;
      expect(tensor).toBeInstanceOf(Tensor);
      expect(tensor.dtype).toBe(want.dtype);
      expect(tensor.shape).toEqual(want.shape);
      expect(valuesOf(tensor)).toEqual(want.values);
    });

  test('a tensor named __proto__ is an ordinary key', () => {
    expect(loaded.get('__proto__')!.toArray()).toEqual([1, 2]);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  test('async, from bytes and from an unaligned Buffer give the same tensors', async () => {
    const bytes = fs.readFileSync(fixture);
    const unaligned = new Uint8Array(bytes.length + 1).subarray(1);
    unaligned.set(bytes);
    for (const other of [await loadSafetensors(fixture), loadSafetensorsSync(bytes), await loadSafetensors(unaligned),
      loadSafetensorsSync(unaligned)]) {
      expect([...other.keys()]).toEqual([...loaded.keys()]);
      for (const [name, tensor] of other) {
        expect(tensor.dtype).toBe(loaded.get(name)!.dtype);
        expect(tensor.shape).toEqual(loaded.get(name)!.shape);
        expect(valuesOf(tensor)).toEqual(valuesOf(loaded.get(name)!));
      }
    }
  });

  test('tensors loaded from bytes do not alias them', () => {
    const bytes = new Uint8Array(fs.readFileSync(fixture));
    const weight = loadSafetensorsSync(bytes).get('encoder.weight')!;
    const before = valuesOf(weight);
    bytes.fill(0xff);
    expect(valuesOf(weight)).toEqual(before);
  });

  test('metadata, sync and async', async () => {
    const sync = loadSafetensorsSync(fixture, { metadata: true });
    const async = await loadSafetensors(fixture, { metadata: true });
    for (const contents of [sync, async]) {
      expect({ ...contents.metadata }).toEqual(expected.metadata);
      expect([...contents.tensors.keys()]).toEqual([...loaded.keys()]);
    }
    expect(loadSafetensorsSync(file('{}'), { metadata: true }).metadata).toEqual({});
  });

  test('serializing what PyTorch wrote gives its exact bytes', () => {
    const bytes = fs.readFileSync(path.join(FIXTURES, 'torch-native-dtypes.safetensors'));
    const { tensors, metadata } = loadSafetensorsSync(bytes, { metadata: true });
    expect(Buffer.from(serializeSafetensors(tensors, metadata)).equals(bytes)).toBe(true);
  });
});

describe('saving', () => {
  const stateDict = simdformerStateDict();

  test('round trip bit for bit (NaN payloads, -0, subnormals, int64 extremes, 0-d, empty, __proto__)', () => {
    const loaded = loadSafetensorsSync(serializeSafetensors(stateDict));
    expect([...loaded.keys()].sort()).toEqual([...stateDict.keys()].sort());
    for (const [name, tensor] of stateDict) {
      const back = loaded.get(name)!;
      expect(back.dtype).toBe(tensor.dtype);
      expect(back.shape).toEqual(tensor.shape);
      expect(bytesOf(back).equals(bytesOf(tensor))).toBe(true);
    }
  });

  test('the reference layout: __metadata__ first, dtypes by alignment then names, aligned data', () => {
    const bytes = Buffer.from(serializeSafetensors(stateDict, { format: 'pt' }));
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const text = bytes.subarray(8, 8 + headerLength).toString('utf8');
    expect(text).toMatch(/^\{"__metadata__":\{"format":"pt"\},"position_ids":\{"dtype":"I64","shape":\[3\],"data_offsets":\[0,24\]\}.*\} *$/);
    const header = JSON.parse(text);
    expect(Object.keys(header)).toEqual(['__metadata__', 'position_ids', 'step', '__proto__', 'empty',
      'encoder.layers.0.linear1.bias', 'encoder.layers.0.linear1.weight', 'zeta', 'ünïcode.名前', 'mask']);
    const size: Record<string, number> = { I64: 8, F32: 4, I32: 4, BOOL: 1 };
    for (const [name, entry] of Object.entries(header) as [string, { dtype: string; data_offsets: number[] }][]) {
      if (name !== '__metadata__') expect(entry.data_offsets[0] % size[entry.dtype]).toBe(0);
    }
  });

  test('a Record, a Map, no metadata and empty metadata', () => {
    const record = { b: stateDict.get('zeta')!, a: stateDict.get('mask')! };
    const map = new Map([['a', record.a], ['b', record.b]]);
    expect(serializeSafetensors(record, { k: 'v' })).toEqual(serializeSafetensors(map, new Map([['k', 'v']])));
    const empty = Buffer.from(serializeSafetensors({}));
    expect(empty.equals(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]))).toBe(true);
    expect(Buffer.from(serializeSafetensors({}, {})).subarray(8).toString()).toBe('{"__metadata__":{}}     ');
  });

  test('bool tensors are written as 0 / 1', () => {
    const loaded = loadSafetensorsSync(serializeSafetensors({ m: new Tensor(Uint8Array.from([0, 2, 255]), [3]) }));
    expect(valuesOf(loaded.get('m')!)).toEqual([0, 1, 1]);
  });

  test('saveSafetensorsSync and saveSafetensors write the serialized bytes', async () => {
    const dir = tempDir();
    try {
      const expected = Buffer.from(serializeSafetensors(stateDict, simdformerMetadata));
      saveSafetensorsSync(path.join(dir, 'sync.safetensors'), stateDict, simdformerMetadata);
      await saveSafetensors(path.join(dir, 'async.safetensors'), stateDict, simdformerMetadata);
      expect(fs.readFileSync(path.join(dir, 'sync.safetensors')).equals(expected)).toBe(true);
      expect(fs.readFileSync(path.join(dir, 'async.safetensors')).equals(expected)).toBe(true);
      const { tensors, metadata } = await loadSafetensors(path.join(dir, 'async.safetensors'), { metadata: true });
      expect(new Map(Object.entries(metadata))).toEqual(simdformerMetadata);
      expect(bytesOf(tensors.get('encoder.layers.0.linear1.weight')!))
        .toEqual(bytesOf(stateDict.get('encoder.layers.0.linear1.weight')!));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('argument errors', () => {
    const t = new Tensor(Float32Array.from([1]), [1]);
    const TYPE = 'ERR_SIMDFORMER_INVALID_ARG_TYPE';
    const RANGE = 'ERR_SIMDFORMER_OUT_OF_RANGE';
    expectError(() => serializeSafetensors([t] as never), TypeError, TYPE,
      'Expected a Map or an object of Tensors for stateDict but received an Array of length 1');
    expectError(() => serializeSafetensors(t as never), TypeError, TYPE,
      'Expected a Map or an object of Tensors for stateDict but received Tensor of shape [1] and dtype float32');
    expectError(() => serializeSafetensors({ w: [1, 2] } as never), TypeError, TYPE,
      "Expected a Tensor for stateDict['w'] but received an Array of length 2");
    expectError(() => serializeSafetensors(new Map([[3, t]]) as never), TypeError, TYPE,
      'Expected a string for a key of stateDict but received 3 of type number');
    expectError(() => serializeSafetensors({ __metadata__: t }), RangeError, RANGE,
      "Expected a tensor name other than __metadata__ for a key of stateDict but received '__metadata__' of type string");
    expectError(() => serializeSafetensors({ ['a\uD800']: t }), RangeError, RANGE,
      "Expected a string without lone surrogates (it must encode as UTF-8) for a key of stateDict but received 'a\uD800' of type string");
    expectError(() => serializeSafetensors({ w: t }, { k: 1 } as never), TypeError, TYPE,
      "Expected a string for metadata['k'] but received 1 of type number");
    expectError(() => serializeSafetensors({ w: t }, 'pt' as never), TypeError, TYPE,
      "Expected a Map or an object of strings for metadata but received 'pt' of type string");
    expectError(() => saveSafetensorsSync(5 as never, { w: t }), TypeError, TYPE,
      'Expected a file path string for path but received 5 of type number');
    expectError(() => loadSafetensorsSync(5 as never), TypeError, TYPE,
      'Expected a file path string or a Uint8Array for pathOrBuffer but received 5 of type number');
    expectError(() => loadSafetensorsSync(file('{}'), { metadata: 'yes' } as never), TypeError, TYPE,
      "Expected a boolean for options.metadata but received 'yes' of type string");
  });
});

describe('a round trip through PyTorch', () => {
  const fixture = path.join(FIXTURES, 'from-simdformer.safetensors');
  const serialized = Buffer.from(serializeSafetensors(simdformerStateDict(), simdformerMetadata));
  if (process.env.UPDATE_SAFETENSORS_FIXTURES) fs.writeFileSync(fixture, serialized);
  const committed = fs.readFileSync(fixture);
  const pytorch = readExpected('from-simdformer.json');

  test('the committed file is what serializeSafetensors writes today', () => {
    expect(committed.equals(serialized)).toBe(true);
  });

  test('from-simdformer.json records PyTorch reading this file (else rerun the generator)', () => {
    expect(pytorch.sha256).toBe(createHash('sha256').update(committed).digest('hex'));
  });

  test('PyTorch read every tensor and the metadata as written', () => {
    const torchDtypes: Record<string, string> = {
      float32: 'torch.float32', int32: 'torch.int32', int64: 'torch.int64', bool: 'torch.bool',
    };
    const stateDict = simdformerStateDict();
    expect(pytorch.tensors.map((t) => t.name).sort()).toEqual([...stateDict.keys()].sort());
    for (const read of pytorch.tensors) {
      const written = stateDict.get(read.name)!;
      expect({ name: read.name, dtype: read.torchDtype, shape: read.shape, values: read.values }).toEqual({
        name: read.name, dtype: torchDtypes[written.dtype], shape: written.shape, values: valuesOf(written),
      });
    }
    expect(new Map(Object.entries(pytorch.metadata))).toEqual(simdformerMetadata);
  });
});

describe('validation', () => {
  const F32_ONE = [0, 0, 0x80, 0x3f];
  const ok = (header: string, data: number[] = F32_ONE): Uint8Array => file(header, data);

  // [rule, bytes, message after 'Invalid safetensors data: ']
  const invalid: [string, Uint8Array, string][] = [
    ['shorter than 8 bytes', new Uint8Array([1, 2]),
      'expected at least 8 bytes (the header length) but received 2'],
    ['header length over 100,000,000', file('{}', [], 100_000_001n),
      'the header length 100000001 is over the limit of 100000000 bytes'],
    ['header length 2^64 - 1', file('{}', [], 2n ** 64n - 1n),
      'the header length 18446744073709551615 is over the limit of 100000000 bytes'],
    ['header past the end of the file', file('{}', [], 50n),
      'the header length 50 runs past the end of the data (8 + 50 > 10 bytes)'],
    ['bad UTF-8', file(Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])),  // {"\xff":1}
      'the header is not valid UTF-8'],
    ['overlong UTF-8', file(Uint8Array.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d])),
      'the header is not valid UTF-8'],
    ['truncated JSON', ok('{"a":', []),
      'the header is not valid JSON: expected a JSON value at character 5 but found the end of the header'],
    ['trailing comma', ok(`{${f32('a', [1], [0, 4])},}`),
      "the header is not valid JSON: expected a string key at character 54 but found '}'"],
    ['NUL padding', ok('{}\u0000', []),
      'the header is not valid JSON: expected the end of the header after the JSON value at character 2 but found U+0000'],
    ['byte order mark', ok('\ufeff{}', []),
      'the header is not valid JSON: expected a JSON value at character 0 but found U+FEFF'],
    ['lone surrogate escape', ok('{"\\ud800":{}}', []),
      "the header is not valid JSON: expected a low surrogate escape after a high surrogate at character 8 but found '\"'"],
    ['raw control character in a string', ok('{"a\tb":{}}', []),
      'the header is not valid JSON: expected an escaped control character at character 3 but found U+0009'],
    ['nesting deeper than 128', ok(`{"a":{"x":${'['.repeat(200)}`, []),
      'the header is not valid JSON: nested deeper than 128 levels at character 137'],
    ['JSON that is not an object', ok('[1,2]', []),
      'expected a JSON object for the header but received [1,2]'],
    ['tensor entry that is not an object', ok('{"a":5}', []),
      "expected an object with dtype, shape and data_offsets for tensor 'a' but received 5"],
    ['missing data_offsets', ok('{"a":{"dtype":"F32","shape":[1]}}'),
      "the entry of tensor 'a' has no data_offsets"],
    ['unknown dtype', ok('{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}'),
      "expected a safetensors dtype (BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, "
      + "F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64) for the dtype of tensor 'a' but received \"f32\""],
    ['dtype named like an Object.prototype member', ok('{"a":{"dtype":"constructor","shape":[1],"data_offsets":[0,4]}}'),
      "expected a safetensors dtype (BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, "
      + "F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64) for the dtype of tensor 'a' but received \"constructor\""],
    ['negative dimension', ok(`{${f32('a', [-1], [0, 4])}}`),
      "expected an array of non-negative integers for the shape of tensor 'a' but received [-1]"],
    ['fractional dimension', ok('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}'),
      "expected an array of non-negative integers for the shape of tensor 'a' but received [1.0]"],
    ['shape that is not an array', ok('{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}'),
      "expected an array of non-negative integers for the shape of tensor 'a' but received 1"],
    ['three offsets', ok(`{${f32('a', [1], [0, 4, 4])}}`),
      "expected two non-negative integers no larger than 2^53 - 1 for the data_offsets of tensor 'a' but received [0,4,4]"],
    ['negative offset', ok(`{${f32('a', [1], [-1, 4])}}`),
      "expected two non-negative integers no larger than 2^53 - 1 for the data_offsets of tensor 'a' but received [-1,4]"],
    ['offset past 2^53', ok('{"a":{"dtype":"F32","shape":[1],"data_offsets":[9007199254740992,9007199254740996]}}'),
      "expected two non-negative integers no larger than 2^53 - 1 for the data_offsets of tensor 'a' "
      + 'but received [9007199254740992,9007199254740996]'],
    ['a gap before the first tensor', ok(`{${f32('a', [1], [4, 8])}}`, [...F32_ONE, ...F32_ONE]),
      "tensor 'a' starts at byte 4 of the data buffer but the tensors before it end at byte 0: "
      + 'the bytes in between belong to no tensor (gaps are not allowed)'],
    ['a gap between tensors', ok(`{${f32('a', [1], [0, 4])},${f32('b', [1], [8, 12])}}`, new Array(12).fill(0)),
      "tensor 'b' starts at byte 8 of the data buffer but the tensors before it end at byte 4: "
      + 'the bytes in between belong to no tensor (gaps are not allowed)'],
    ['overlapping tensors', ok(`{${f32('a', [1], [0, 4])},${f32('b', [1], [2, 6])}}`, new Array(8).fill(0)),
      "the data_offsets [2, 6] of tensor 'b' overlap those of tensor 'a' ([0, 4]) (overlaps are not allowed)"],
    ['offsets that end before they begin', ok(`{${f32('a', [0], [4, 0])}}`),
      "the data_offsets [4, 0] of tensor 'a' end before they begin"],
    ['byte size that does not match the shape', ok(`{${f32('a', [2], [0, 4])}}`),
      "tensor 'a' has 4 bytes (data_offsets [0, 4]) but shape [2] of dtype F32 needs 8"],
    ['shape too large to address', ok(`{${f32('a', [2 ** 40, 2 ** 40], [0, 4])}}`),
      "the shape [1099511627776, 1099511627776] of tensor 'a' is too large to address (over 2^53 - 1 bits)"],
    ['4-bit tensor of an odd number of elements', ok('{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', [0, 0]),
      "tensor 'a' has 3 elements of 4 bits, which is not a whole number of bytes"],
    ['trailing bytes after the last tensor', ok(`{${f32('a', [1], [0, 4])}}`, [...F32_ONE, 0]),
      'the data buffer has 5 bytes but its tensors end at byte 4 (trailing bytes after the last tensor are not allowed)'],
    ['data and no tensors', ok('{}', [1, 2, 3]),
      'the data buffer has 3 bytes but its tensors end at byte 0 (trailing bytes after the last tensor are not allowed)'],
    ['tensor past the end of the file', ok(`{${f32('a', [2], [0, 8])}}`),
      "tensor 'a' ends at byte 8 of the data buffer but the buffer has only 4 bytes"],
    ['duplicate tensor names', ok(`{${f32('a', [1], [0, 4])},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`),
      "the header names tensor 'a' twice (duplicate keys are not allowed)"],
    ['duplicate field in a tensor entry', ok('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
      "the entry of tensor 'a' has key 'dtype' twice (duplicate keys are not allowed)"],
    ['duplicate metadata key', ok('{"__metadata__":{"k":"1","k":"2"}}', []),
      "__metadata__ has key 'k' twice (duplicate keys are not allowed)"],
    ['duplicate __metadata__', ok('{"__metadata__":{},"__metadata__":{}}', []),
      'the header has key __metadata__ twice (duplicate keys are not allowed)'],
    ['metadata value that is not a string', ok('{"__metadata__":{"epoch":1}}', []),
      "expected a string for __metadata__ key 'epoch' but received 1"],
    ['metadata that is not an object', ok('{"__metadata__":["pt"]}', []),
      'expected an object of strings for __metadata__ but received ["pt"]'],
  ];

  test.each(invalid)('%s', (_, bytes, message) => {
    expectError(() => loadSafetensorsSync(bytes), SafetensorsError, INVALID, `Invalid safetensors data: ${message}`);
  });

  test.each([
    ['F8_E4M3', 1], ['U64', 8], ['C64', 8],
  ] as const)('unsupported dtype %s', (dtype, size) => {
    const bytes = ok(`{"a":{"dtype":"${dtype}","shape":[1],"data_offsets":[0,${size}]}}`, new Array(size).fill(0));
    expectError(() => loadSafetensorsSync(bytes), SafetensorsError, UNSUPPORTED,
      `Cannot load safetensors data: tensor 'a' has dtype ${dtype}, which simdformer does not support `
      + '(supported: F32, I32, I64, F16, BF16, F64, BOOL, U8, I8, I16, U16, U32)');
  });

  test('errors from a file name it, sync and async', async () => {
    const dir = tempDir();
    try {
      const target = path.join(dir, 'bad.safetensors');
      fs.writeFileSync(target, ok(`{${f32('a', [1], [0, 4])}}`, [...F32_ONE, 0]));
      const message = `Invalid safetensors file '${target}': the data buffer has 5 bytes but its tensors end at byte 4 `
        + '(trailing bytes after the last tensor are not allowed)';
      expectError(() => loadSafetensorsSync(target), SafetensorsError, INVALID, message);
      await expect(loadSafetensors(target)).rejects.toMatchObject({ name: 'SafetensorsError', code: INVALID, message });
      fs.writeFileSync(target, new Uint8Array(3));
      await expect(loadSafetensors(target)).rejects.toMatchObject({
        code: INVALID, message: `Invalid safetensors file '${target}': expected at least 8 bytes (the header length) but received 3`,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing file gives Node\'s ENOENT, sync and async', async () => {
    const missing = path.join(os.tmpdir(), 'simdformer-no-such-file.safetensors');
    expect(() => loadSafetensorsSync(missing)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    await expect(loadSafetensors(missing)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('what the reference accepts: whitespace around the JSON, header order ≠ data order, null metadata, extra fields', () => {
    const padded = loadSafetensorsSync(ok(` \n{${f32('a', [1], [0, 4])}} \t\r\n  `));
    expect(padded.get('a')!.toArray()).toEqual([1]);
    const reordered = loadSafetensorsSync(ok(`{${f32('b', [1], [4, 8])},${f32('a', [1], [0, 4])}}`, [...F32_ONE, 0, 0, 0, 0x40]));
    expect([...reordered.keys()]).toEqual(['a', 'b']);
    expect(reordered.get('b')!.item()).toBe(2);
    expect(loadSafetensorsSync(ok('{"__metadata__":null}', []), { metadata: true }).metadata).toEqual({});
    const extra = loadSafetensorsSync(ok('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":{"y":[null,true]}}}'));
    expect(extra.get('a')!.item()).toBe(1);
  });

  test('escaped names, empty tensors sharing an offset, and the lossless integer widenings', () => {
    const names = loadSafetensorsSync(ok(`{"\\u0061\\ud83d\\ude00\\n":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},${f32('b', [1], [0, 4])},`
      + `"c":{"dtype":"BOOL","shape":[0],"data_offsets":[4,4]}}`));
    expect([...names.keys()]).toEqual(['a😀\n', 'b', 'c']);
    const ints = loadSafetensorsSync(ok('{"u16":{"dtype":"U16","shape":[2],"data_offsets":[0,4]},'
      + '"u32":{"dtype":"U32","shape":[1],"data_offsets":[4,8]},"flag":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]}}',
    [0xff, 0xff, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x02]));
    expect(ints.get('u16')!.dtype).toBe('int32');
    expect(ints.get('u16')!.toArray()).toEqual([65535, 1]);
    expect(ints.get('u32')!.dtype).toBe('int64');
    expect(ints.get('u32')!.toArray()).toEqual([4294967295n]);
    expect(ints.get('flag')!.toArray()).toEqual([false, true]);
  });
});

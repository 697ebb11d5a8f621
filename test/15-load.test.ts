// Model load: a safetensors path is mapped copy-on-write instead of read (the
// same tensors byte for byte, views of the mapping; writable without touching
// the file; misaligned tensors copied; the same errors), saving over a mapped
// file, loadStateDict packing the Linear weights so the first forward packs
// nothing (mapped weights packed in the background, forwards meanwhile
// giving the same bits), a packed weight's file pages leaving the resident
// set, and loading in a worker thread.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { PackedB } from '../binding';
import { binding } from '../lib/binding';
import { loadSafetensors, loadSafetensorsSync, nn, saveSafetensors, saveSafetensorsSync, SafetensorsError, stats, Tensor } from '../lib';
import { expectError, loadBinding, root, runNode } from './helpers';

const SAFETENSORS_FIXTURES = path.join(__dirname, 'fixtures', 'safetensors');
const MODULE_FIXTURES = path.join(__dirname, 'fixtures', 'modules');
const TRANSFORMER_FIXTURE = path.join(MODULE_FIXTURES, 'transformer_batch_first_all_masks.safetensors');
const linux = process.platform === 'linux';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'simdformer-load-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());

/** A copy of `source` in the temporary folder, so tests may change or replace it. */
function copyOf(source: string, name = path.basename(source)): string {
  const file = path.join(tmp, name);
  fs.copyFileSync(source, file);
  return file;
}

/** Loads with mapping refused, as on a platform without mmap: the read path. */
function withoutMapping<T>(load: () => T): T {
  const spy = jest.spyOn(binding, 'mapFile').mockReturnValue(null);
  let result: T;
  try {
    result = load();
  } catch (error) {
    spy.mockRestore();
    throw error;
  }
  if (!(result instanceof Promise)) {
    spy.mockRestore();
    return result;
  }
  return result.finally(() => spy.mockRestore()) as T;
}

function bytesOf(tensor: Tensor): Buffer {
  return Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
}

/** Whether the tensor is a view of a buffer larger than itself (the file's mapping), not a buffer of its own. */
function isView(tensor: Tensor): boolean {
  return tensor.data.buffer.byteLength > tensor.data.byteLength;
}

function expectSameTensors(actual: Map<string, Tensor>, expected: Map<string, Tensor>): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [key, tensor] of expected) {
    const other = actual.get(key)!;
    expect({ key, dtype: other.dtype, shape: other.shape }).toEqual({ key, dtype: tensor.dtype, shape: tensor.shape });
    expect(bytesOf(other).equals(bytesOf(tensor))).toBe(true);
  }
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A safetensors file with `header` (JSON text, written as given: no padding) and `data`. */
function handmade(header: object | string, data: Uint8Array): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The error `fn` throws (or rejects with), as a plain record. */
async function errorOf(fn: () => unknown): Promise<{ name: string; code?: string; message: string }> {
  try {
    await fn();
  } catch (error) {
    const { name, message, code } = error as SafetensorsError;
    return { name, code, message };
  }
  throw new Error('expected an error');
}

describe('mapped loading', () => {
  const files = [
    ...fs.readdirSync(SAFETENSORS_FIXTURES).filter((name) => name.endsWith('.safetensors')).map((name) => path.join(SAFETENSORS_FIXTURES, name)),
    TRANSFORMER_FIXTURE,
  ];

  test.each(files.map((file) => [path.basename(file), file]))('%s: mapped, read and from bytes give the same tensors', async (_, file) => {
    const fromBytes = loadSafetensorsSync(fs.readFileSync(file));
    const mapped = loadSafetensorsSync(file);
    expectSameTensors(mapped, fromBytes);
    expectSameTensors(await loadSafetensors(file), fromBytes);
    expectSameTensors(withoutMapping(() => loadSafetensorsSync(file)), fromBytes);
    const read = await withoutMapping(() => loadSafetensors(file));
    expectSameTensors(read, fromBytes);
    expect([...read.values()].some(isView)).toBe(false);
    // Aligned float32 / int32 / int64 tensors are views of the mapping; other dtypes are converted into arrays of their own.
    const size = fs.statSync(file).size;
    for (const tensor of mapped.values()) {
      const aligned = tensor.data.byteOffset % tensor.data.BYTES_PER_ELEMENT === 0;
      expect(tensor.data.buffer.byteLength === size).toBe(isView(tensor));
      if (isView(tensor)) expect(aligned).toBe(true);
    }
    if (file === TRANSFORMER_FIXTURE) expect([...mapped.values()].filter((t) => t.dtype === 'float32').every(isView)).toBe(true);
  });

  test('writing to a mapped tensor changes neither the file nor a later load', async () => {
    const file = copyOf(TRANSFORMER_FIXTURE);
    const before = sha256(file);
    const first = new Map([...loadSafetensorsSync(file)].filter(([, tensor]) => tensor.dtype === 'float32'));
    const original = new Map([...first].map(([key, tensor]) => [key, Buffer.from(bytesOf(tensor))]));
    for (const tensor of first.values()) (tensor.data as Float32Array).fill(12345);
    const second = await loadSafetensors(file);
    expect(sha256(file)).toBe(before);
    for (const [key, bytes] of original) expect(bytesOf(second.get(key)!).equals(bytes)).toBe(true);
    for (const tensor of first.values()) expect((tensor.data as Float32Array).every((v) => v === 12345)).toBe(true);
  });

  test('misaligned tensors are copied to aligned arrays of their own; aligned ones stay views', () => {
    // Offsets in the data buffer, which starts 8-byte aligned (the header is padded with spaces):
    // a, c, d sit at multiples of their element size; b (I64 at 12), e (F32 at 33) and g (I64 at 37) do not.
    const layout = [
      ['p', 'U8', Uint8Array.of(1, 2, 3, 4)], ['a', 'F32', Float32Array.of(1.5, -2)], ['b', 'I64', BigInt64Array.of(-3n)],
      ['c', 'F32', Float32Array.of(7)], ['d', 'I32', Int32Array.of(9, 10)], ['q', 'U8', Uint8Array.of(5)],
      ['e', 'F32', Float32Array.of(0.25)], ['g', 'I64', BigInt64Array.of(1n << 40n)],
    ] as const;
    const header: Record<string, object> = {};
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (const [name, dtype, values] of layout) {
      header[name] = { dtype, shape: [values.length], data_offsets: [offset, offset + values.byteLength] };
      parts.push(new Uint8Array(values.buffer));
      offset += values.byteLength;
    }
    const json = JSON.stringify(header);
    const bytes = handmade(json.padEnd(Math.ceil(json.length / 8) * 8, ' '), Buffer.concat(parts));
    const file = path.join(tmp, 'misaligned.safetensors');
    fs.writeFileSync(file, bytes);
    const loaded = loadSafetensorsSync(file);
    expectSameTensors(loaded, loadSafetensorsSync(bytes));
    expect(Array.from(loaded.get('e')!.data as Float32Array)).toEqual([0.25]);
    expect(Array.from(loaded.get('g')!.data as BigInt64Array)).toEqual([1n << 40n]);
    const views = ['a', 'b', 'c', 'd', 'e', 'g'].filter((name) => isView(loaded.get(name)!));
    expect(views).toEqual(['a', 'c', 'd']);
    for (const tensor of loaded.values()) expect(tensor.data.byteOffset % tensor.data.BYTES_PER_ELEMENT).toBe(0);
  });

  test('a truncated or invalid file gives the typed error the read path gives', async () => {
    const whole = fs.readFileSync(TRANSFORMER_FIXTURE);
    const headerEnd = 8 + Number(whole.readBigUInt64LE(0));
    const cases: [string, Uint8Array][] = [
      ['empty', whole.subarray(0, 0)],
      ['5 bytes', whole.subarray(0, 5)],
      ['half a header', whole.subarray(0, headerEnd >> 1)],
      ['data cut short', whole.subarray(0, headerEnd + 100)],
      ['trailing byte', Buffer.concat([whole, Buffer.of(0)])],
      ['not JSON', handmade('{"a":', new Uint8Array(0))],
      ['unsupported dtype', handmade({ a: { dtype: 'U64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8))],
    ];
    for (const [name, bytes] of cases) {
      const file = path.join(tmp, `bad-${name.replace(/ /g, '-')}.safetensors`);
      fs.writeFileSync(file, bytes);
      const read = await errorOf(() => withoutMapping(() => loadSafetensorsSync(file)));
      expect(read.name).toBe('SafetensorsError');
      expect(read.code).toMatch(/^ERR_SIMDFORMER_(INVALID_SAFETENSORS|UNSUPPORTED_DTYPE)$/);
      expect({ name, error: await errorOf(() => loadSafetensorsSync(file)) }).toEqual({ name, error: read });
      expect({ name, error: await errorOf(() => loadSafetensors(file)) }).toEqual({ name, error: read });
    }
    expect((await errorOf(() => loadSafetensors(tmp))).message).toMatch(/EISDIR/);
    expect((await errorOf(() => loadSafetensorsSync(path.join(tmp, 'missing')))).message).toMatch(/ENOENT/);
  });

  test('saving over a mapped file replaces it: tensors loaded from it keep their values', async () => {
    for (const save of ['sync', 'async'] as const) {
      const file = copyOf(TRANSFORMER_FIXTURE, `replaced-${save}.safetensors`);
      fs.chmodSync(file, 0o640);
      const link = path.join(tmp, `link-${save}`);
      fs.symlinkSync(file, link);
      const loaded = new Map([...loadSafetensorsSync(link)].filter(([, tensor]) => tensor.dtype === 'float32'));
      const original = new Map([...loaded].map(([key, tensor]) => [key, Buffer.from(bytesOf(tensor))]));
      const changed = new Map([...loaded].map(([key, tensor]) => [key, new Tensor((tensor.data as Float32Array).map((v) => v + 1), tensor.shape)]));
      if (save === 'sync') saveSafetensorsSync(link, changed);
      else await saveSafetensors(link, changed);
      // The old tensors still read their pages (truncating the file in place would make this a SIGBUS).
      for (const [key, tensor] of loaded) expect(bytesOf(tensor).equals(original.get(key)!)).toBe(true);
      expectSameTensors(loadSafetensorsSync(file), changed);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.statSync(file).mode & 0o777).toBe(0o640);
    }
    expect(fs.readdirSync(tmp).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    // A file nobody has mapped is written in place.
    const unmapped = path.join(tmp, 'in-place.safetensors');
    saveSafetensorsSync(unmapped, new Map([['x', new Tensor(Float32Array.of(1), [1])]]));
    const inode = fs.statSync(unmapped).ino;
    saveSafetensorsSync(unmapped, new Map([['x', new Tensor(Float32Array.of(2), [1])]]));
    expect(fs.statSync(unmapped).ino).toBe(inode);
  });

  test('the binding checks its arguments and declines what it cannot map', () => {
    expectError(() => binding.mapFile('3' as never, 10), TypeError, 'ERR_SIMDFORMER_INVALID_ARG_TYPE',
      'Expected an integer in [0, 2147483647] for fd but received \'3\' of type string');
    expectError(() => binding.mapFile(0, 0), RangeError, 'ERR_SIMDFORMER_OUT_OF_RANGE',
      'Expected an integer >= 1 for length but received 0 of type number');
    const directory = fs.openSync(tmp, 'r');
    const file = fs.openSync(TRANSFORMER_FIXTURE, 'r');
    try {
      const size = fs.fstatSync(file).size;
      expect(binding.mapFile(directory, 4096)).toBeNull();
      expect(binding.mapFile(file, size + 1)).toBeNull();
      const mapped = binding.mapFile(file, size);
      if (linux) expect(Buffer.from(mapped!).equals(fs.readFileSync(TRANSFORMER_FIXTURE))).toBe(true);
    } finally {
      fs.closeSync(directory);
      fs.closeSync(file);
    }
  });
});

describe('packing at load', () => {
  function transformer(): nn.Transformer {
    return new nn.Transformer({ dModel: 20, nhead: 4, numEncoderLayers: 2, numDecoderLayers: 2, dimFeedforward: 40, activation: 'gelu', batchFirst: true });
  }

  /** The fixture's forward: [output, PyTorch's output]. */
  function runFixture(model: nn.Transformer, file: Map<string, Tensor>): [Tensor, Tensor] {
    const input = (name: string) => file.get(`__input__.${name}`)!;
    const output = model.forwardSync(input('src'), input('tgt'), {
      srcMask: input('src_mask'), tgtMask: input('tgt_mask'), memoryMask: input('memory_mask'),
      srcKeyPaddingMask: input('src_key_padding_mask'), tgtKeyPaddingMask: input('tgt_key_padding_mask'),
      memoryKeyPaddingMask: input('memory_key_padding_mask'),
    });
    return [output, file.get('__output__.0')!];
  }

  const weightsOf = (file: Map<string, Tensor>) => new Map([...file].filter(([key]) => !key.startsWith('__')));

  test('a model loaded from a mapped file (assign) gives the outputs of one loaded from bytes, and PyTorch\'s', () => {
    const mappedFile = loadSafetensorsSync(TRANSFORMER_FIXTURE);
    const mapped = transformer();
    mapped.loadStateDict(weightsOf(mappedFile), { assign: true });
    const [output, expected] = runFixture(mapped, mappedFile);

    const bytesFile = loadSafetensorsSync(fs.readFileSync(TRANSFORMER_FIXTURE));
    const copied = transformer();
    copied.loadStateDict(weightsOf(bytesFile));
    expect(bytesOf(runFixture(copied, bytesFile)[0]).equals(bytesOf(output))).toBe(true);

    expect(output.shape).toEqual(expected.shape);
    const data = output.data as Float32Array;
    expect(Math.max(...data.map((v, i) => Math.abs(v - (expected.data as Float32Array)[i])))).toBeLessThanOrEqual(1e-4);
  });

  test('loadStateDict packs every Linear weight in one call, so forwards pack nothing; mapped weights in the background', async () => {
    const file = loadSafetensorsSync(TRANSFORMER_FIXTURE);
    const model = transformer();
    const packB = jest.spyOn(binding, 'packB');
    const packBBatch = jest.spyOn(binding, 'packBBatch');
    const background = jest.spyOn(binding, 'packBBatchInBackground');
    const before = stats().nativeBytes;
    model.loadStateDict(weightsOf(file), { assign: true });
    // Encoder layers: in_proj_weight whole (self-attention's fused q/k/v projection), out_proj, linear1, linear2;
    // decoder layers: the same for self-attention, cross-attention's q, k, v (thirds of in_proj_weight) and out_proj.
    // Every one is a view of the mapped file: packed in the background, in one batch.
    expect(background).toHaveBeenCalledTimes(1);
    expect(background.mock.calls[0][0]).toHaveLength(2 * 4 + 2 * 8);
    expect(background.mock.results[0].value).not.toBeNull();
    expect(packBBatch).not.toHaveBeenCalled();
    const linearFloats = [...model.stateDict()].filter(([key]) => /(proj_weight|\.weight)$/.test(key) && !/norm/.test(key))
      .reduce((total, [, t]) => total + t.numel, 0);
    expect(stats().nativeBytes - before).toBeGreaterThanOrEqual(4 * linearFloats);
    const early = runFixture(model, file);
    await model.whenPacked();
    const handles = (background.mock.results[0].value as { handles: PackedB[] }).handles;
    expect(handles.every((handle) => handle.ready)).toBe(true);
    const late = runFixture(model, file);
    expect(late.map(bytesOf)).toEqual(early.map(bytesOf));
    expect(packB).not.toHaveBeenCalled();

    // Copies (no assign) are packed at once, in parallel: packBBatchInBackground declines them.
    const copied = transformer();
    copied.loadStateDict(weightsOf(file));
    expect(background).toHaveBeenCalledTimes(2);
    expect(background.mock.results[1].value).toBeNull();
    expect(packBBatch).toHaveBeenCalledTimes(1);
    expect(packBBatch.mock.calls[0][0]).toHaveLength(2 * 4 + 2 * 8);
    expect(packBBatch.mock.results[0].value.every((handle: PackedB) => handle.ready)).toBe(true);
    await copied.whenPacked();  // nothing to wait for
    expect(runFixture(copied, file).map(bytesOf)).toEqual(late.map(bytesOf));
    expect(packB).not.toHaveBeenCalled();

    // Weights left to their lazy initialisation are packed by the first forward that reads them, as before.
    const partial = new nn.Linear(20, 30);
    partial.loadStateDict(new Map([['bias', new Tensor(new Float32Array(30), [30])]]), { strict: false });
    expect(packBBatch).toHaveBeenCalledTimes(1);
    partial.forwardSync(new Tensor(new Float32Array(20), [1, 20]));
    expect(packB).toHaveBeenCalledTimes(1);
  });

  (linux ? test : test.skip)('once packed, a mapped weight\'s file pages leave the resident set; written pages stay', async () => {
    const rows = 1024, columns = 512;  // a 2 MiB weight
    const weight = new Float32Array(rows * columns).map((_, i) => Math.sin(i));
    const file = path.join(tmp, 'resident.safetensors');
    saveSafetensorsSync(file, new Map([['weight', new Tensor(weight, [rows, columns])], ['bias', new Tensor(new Float32Array(rows), [rows])]]));
    /** KiB of the file's mapping resident in this process (/proc/self/smaps). */
    const residentKiB = () => {
      let total = 0;
      let inMapping = false;
      for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
        if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inMapping = line.endsWith(file);
        else if (inMapping && line.startsWith('Rss:')) total += Number(line.split(/\s+/)[1]);
      }
      return total;
    };
    const loaded = loadSafetensorsSync(file);
    const data = loaded.get('weight')!.data as Float32Array;
    expect(data.every((v, i) => v === weight[i])).toBe(true);  // touches every page
    expect(residentKiB()).toBeGreaterThanOrEqual(2048);
    data[1000] = 42;  // this page becomes a private copy

    const linear = new nn.Linear(columns, rows);
    linear.loadStateDict(loaded, { assign: true });
    await linear.whenPacked();
    expect(residentKiB()).toBeLessThanOrEqual(64);  // the written page, the header's, the bias's (fault-around maps neighbours)
    // The values are all still there: read again from the page cache, the written one from its private copy.
    expect(data[1000]).toBe(42);
    expect(data.every((v, i) => i === 1000 || v === weight[i])).toBe(true);
    const expected = weight.slice();
    expected[1000] = 42;
    const reference = new nn.Linear(columns, rows);
    reference.loadStateDict(new Map([['weight', new Tensor(expected, [rows, columns])], ['bias', loaded.get('bias')!]]));
    const x = new Tensor(new Float32Array(2 * columns).map((_, i) => Math.cos(i)), [2, columns]);
    expect(bytesOf(linear.forwardSync(x)).equals(bytesOf(reference.forwardSync(x)))).toBe(true);
  });

  test('loading in a worker thread works, and the worker exits and unmaps its file', async () => {
    const file = copyOf(TRANSFORMER_FIXTURE, 'worker.safetensors');
    // The worker runs the TypeScript sources through the typescript package, as jest does here.
    const code = `
      const fs = require('fs');
      const ts = require('typescript');
      require.extensions['.ts'] = (module, filename) => module._compile(ts.transpileModule(fs.readFileSync(filename, 'utf8'),
        { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText, filename);
      const { parentPort, workerData } = require('worker_threads');
      const { loadSafetensors, nn } = require(workerData.lib);
      (async () => {
        const weights = await loadSafetensors(workerData.file);
        const mapped = fs.readFileSync('/proc/self/maps', 'utf8').includes(workerData.file);
        const linear = new nn.Linear(20, 60);
        linear.loadStateDict(new Map([['weight', weights.get('encoder.layers.0.self_attn.in_proj_weight')],
          ['bias', weights.get('encoder.layers.0.self_attn.in_proj_bias')]]), { assign: true });
        const output = await linear.forward(weights.get('__input__.src'));
        parentPort.postMessage({ mapped, output: output.data });
      })();
    `;
    const worker = new Worker(code, { eval: true, workerData: { file, lib: path.join(root, 'lib') } });
    const [message, exitCode] = await new Promise<[{ mapped: boolean; output: Float32Array }, number]>((resolve, reject) => {
      let received: { mapped: boolean; output: Float32Array };
      worker.on('message', (m) => { received = m; });
      worker.on('error', reject);
      worker.on('exit', (code) => resolve([received, code]));
    });
    expect(exitCode).toBe(0);
    const weights = loadSafetensorsSync(fs.readFileSync(file));
    const linear = new nn.Linear(20, 60);
    linear.loadStateDict(new Map([['weight', weights.get('encoder.layers.0.self_attn.in_proj_weight')!],
      ['bias', weights.get('encoder.layers.0.self_attn.in_proj_bias')!]]));
    expect(Buffer.from(message.output.buffer).equals(bytesOf(linear.forwardSync(weights.get('__input__.src')!)))).toBe(true);
    if (linux) {
      expect(message.mapped).toBe(true);
      // The worker's environment ended: its mapping's finalizer ran.
      expect(fs.readFileSync('/proc/self/maps', 'utf8').includes(file)).toBe(false);
    }
  });
});

describe('packing in the background', () => {
  const isas = binding.info().availableIsas;
  let occupier: nn.TransformerEncoder;
  beforeAll(() => {
    occupier = new nn.TransformerEncoder(new nn.TransformerEncoderLayer(512, 8, { dimFeedforward: 2048, batchFirst: true }), 4);
  });

  /**
   * Forwards queued on the executor that keep it busy for a few hundred
   * milliseconds (4 layers of d 512 over 1024 tokens, three times): a batch
   * queued after them waits, however the JS thread's own GEMMs (which take
   * turns with theirs on the pool) are slowed meanwhile.
   */
  function occupyExecutor(): Promise<unknown> {
    const x = new Tensor(new Float32Array(8 * 128 * 512).fill(0.5), [8, 128, 512]);
    return Promise.all([occupier.forward(x), occupier.forward(x), occupier.forward(x)]);
  }

  /** C = A · B with B a PackedB, on `isa`. */
  function product(packed: PackedB, m: number, isa: (typeof isas)[number]): Buffer {
    const a = new Float32Array(m * packed.k).map((_, i) => Math.cos(0.11 * i));
    const c = new Float32Array(m * packed.n);
    binding.gemm({ batch: 1, m, n: packed.n, k: packed.k, a, aRowStride: packed.k, aColStride: 1, b: packed, c, ldc: packed.n, cBatchStride: m * packed.n, isa });
    return Buffer.from(c.buffer);
  }

  test.each(isas)('%s: until packed, a weight multiplies as it is, with the bits it has once packed', async (isa) => {
    const k = 300, n = 70;
    const file = path.join(tmp, `background-${isa}.safetensors`);
    saveSafetensorsSync(file, new Map([['w', new Tensor(new Float32Array(n * k).map((_, i) => Math.sin(0.37 * i)), [n, k])]]));
    const w = loadSafetensorsSync(file).get('w')!.data as Float32Array;  // a view of the file's mapping
    // A Linear weight whole, and rows 10 to 39 of it (as a third of a fused in_proj_weight is).
    const operands = [{ b: w, k, n, rowStride: 1, colStride: k }, { b: w.subarray(10 * k, 40 * k), k, n: 30, rowStride: 1, colStride: k }];
    const reference = binding.packBBatch(operands.map((o) => ({ ...o, b: o.b.slice() })), isa);
    const busy = occupyExecutor();
    const background = binding.packBBatchInBackground(operands, isa)!;
    expect(background).not.toBeNull();
    expect(background.handles.map((h) => [h.k, h.n, h.isa, h.bytes, h.ready])).toEqual(reference.map((h) => [h.k, h.n, isa, h.bytes, false]));
    // Row counts on both sides of the AMX driver's choice for an unpacked B (96 rows per task).
    const rows = [1, 40, 200];
    const early = background.handles.map((h) => rows.map((m) => product(h, m, isa)));
    expect(background.handles.map((h) => h.ready)).toEqual([false, false]);  // the products above read the source
    expect(early).toEqual(reference.map((h) => rows.map((m) => product(h, m, isa))));
    await busy;
    await background.done;
    expect(background.handles.map((h) => h.ready)).toEqual([true, true]);
    expect(background.handles.map((h) => rows.map((m) => product(h, m, isa)))).toEqual(early);
  });

  test('only operands in a mapped file qualify; too large a batch is an out-of-memory error', () => {
    const file = path.join(tmp, 'background-mixed.safetensors');
    saveSafetensorsSync(file, new Map([['w', new Tensor(new Float32Array(64 * 64).fill(1), [64, 64])]]));
    const mapped = { b: loadSafetensorsSync(file).get('w')!.data as Float32Array, k: 64, n: 64, rowStride: 1, colStride: 64 };
    const own = { ...mapped, b: mapped.b.slice() };
    expect(binding.packBBatchInBackground([own])).toBeNull();
    expect(binding.packBBatchInBackground([mapped, own])).toBeNull();
    expect(binding.packBBatchInBackground([])).toBeNull();
    const before = stats().nativeBytes;
    expectError(() => binding.packBBatchInBackground([mapped, { ...mapped, k: 2 ** 40, n: 2 ** 40, rowStride: 0, colStride: 0 }]),
      RangeError, 'ERR_SIMDFORMER_OUT_OF_MEMORY', 'simdformer: out of memory');
    expect(stats().nativeBytes).toBe(before);
  });

  test('a worker terminated while its weights are being packed leaves the process working', async () => {
    const file = copyOf(TRANSFORMER_FIXTURE, 'terminated.safetensors');
    const code = `
      const fs = require('fs');
      const ts = require('typescript');
      require.extensions['.ts'] = (module, filename) => module._compile(ts.transpileModule(fs.readFileSync(filename, 'utf8'),
        { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText, filename);
      const { parentPort, workerData } = require('worker_threads');
      const { loadSafetensorsSync, nn } = require(workerData.lib);
      const model = new nn.Transformer({ dModel: 20, nhead: 4, numEncoderLayers: 2, numDecoderLayers: 2, dimFeedforward: 40, activation: 'gelu', batchFirst: true });
      parentPort.once('message', () => {
        model.loadStateDict(new Map([...loadSafetensorsSync(workerData.file)].filter(([key]) => !key.startsWith('__'))), { assign: true });
        parentPort.postMessage('loaded');
      });
      parentPort.postMessage('started');
    `;
    const worker = new Worker(code, { eval: true, workerData: { file, lib: path.join(root, 'lib') } });
    let busy: Promise<unknown> | undefined;
    const exitCode = await new Promise<number>((resolve, reject) => {
      worker.on('message', (message) => {
        if (message === 'started') {
          busy = occupyExecutor();  // the executor is process-wide: the worker's batch waits behind these forwards
          worker.postMessage('load');
        } else {
          void worker.terminate();
        }
      });
      worker.on('error', reject);
      worker.on('exit', resolve);
    });
    expect(exitCode).toBe(1);  // terminated, not ended: its packing was still pending (it keeps the loop alive)
    await busy;
    // The executor goes on: a forward after the worker's cancelled batch runs.
    const layer = new nn.Linear(4, 3);
    const x = new Tensor(new Float32Array([1, 2, 3, 4]), [1, 4]);
    expect(bytesOf(await layer.forward(x))).toEqual(bytesOf(layer.forwardSync(x)));
  });
});

describe('packing in one region', () => {
  const isas = binding.info().availableIsas;

  /** B operand [k, n] with seeded values, as a Linear's weight (columns contiguous) or row-major. */
  function operand(k: number, n: number, linear: boolean, seed: number) {
    const b = new Float32Array(k * n).map((_, i) => Math.sin(seed + 0.37 * i));
    return linear ? { b, k, n, rowStride: 1, colStride: k } : { b, k, n, rowStride: n, colStride: 1 };
  }

  /** C = A · B with B a PackedB, on `isa`. */
  function product(packed: ReturnType<typeof binding.packB>, m: number, isa: (typeof isas)[number]): Float32Array {
    const a = new Float32Array(m * packed.k).map((_, i) => Math.cos(0.11 * i));
    const c = new Float32Array(m * packed.n);
    binding.gemm({ batch: 1, m, n: packed.n, k: packed.k, a, aRowStride: packed.k, aColStride: 1, b: packed, c, ldc: packed.n, cBatchStride: m * packed.n, isa });
    return c;
  }

  test.each(isas)('%s: a batch packed in pieces multiplies exactly as operands packed one by one', (isa) => {
    // Edges of the pieces: one kc block or several, a partial last one, column groups past the AMX nc (512)
    // and the micro-kernels' 16 nr panels, sizes that are not multiples of 32 or nr, a 1 x 1 operand.
    const operands = [
      operand(1, 1, true, 1), operand(31, 33, false, 2), operand(300, 70, true, 3), operand(513, 1030, true, 4),
      operand(2055, 100, false, 5), operand(64, 2100, false, 6), operand(512, 512, true, 7),
    ];
    const batch = binding.packBBatch(operands, isa);
    expect(batch.map((p) => [p.k, p.n, p.isa])).toEqual(operands.map((o) => [o.k, o.n, isa]));
    operands.forEach((o, i) => {
      const single = binding.packB(o.b, o.k, o.n, o.rowStride, o.colStride, isa);
      expect(batch[i].bytes).toBe(single.bytes);
      const m = 40;
      expect(Buffer.from(product(batch[i], m, isa).buffer).equals(Buffer.from(product(single, m, isa).buffer))).toBe(true);
    });
  });

  test('nativeBytes counts a region once; as its weights go, the pages only they used are given back, the last one frees it all', () => {
    // A fresh process whose collector can be called: handles are freed by garbage collection.
    const run = runNode(`
      const binding = ${loadBinding};
      require('v8').setFlagsFromString('--expose-gc');
      const gc = require('vm').runInNewContext('gc');
      const settle = async () => { for (let i = 0; i < 4; i++) { gc(); await new Promise((resolve) => setImmediate(resolve)); } };
      (async () => {
        const results = {};
        for (const isa of binding.info().availableIsas) {
          await settle();
          const base = binding.stats().nativeBytes;
          const operand = (seed) => ({ b: new Float32Array(512 * 1024).fill(seed), k: 512, n: 1024, rowStride: 1024, colStride: 1 });
          const handles = binding.packBBatch([operand(1), operand(2), operand(3)], isa);
          const steps = [binding.stats().nativeBytes - base];
          const sizes = handles.map((h) => h.bytes);
          for (const i of [0, 2, 1]) {
            handles[i] = null;
            await settle();
            steps.push(binding.stats().nativeBytes - base);
          }
          results[isa] = { sizes, steps };
        }
        console.log(JSON.stringify(results));
      })();
    `);
    expect(run.stderr).toBe('');
    const results = JSON.parse(run.stdout) as Record<string, { sizes: number[]; steps: number[] }>;
    const hugePage = 2 ** 21;
    for (const [isa, { sizes, steps }] of Object.entries(results)) {
      // The region's layout: slices back to back on 64-byte boundaries, the whole rounded up to 4 KiB.
      const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((sum, size) => sum + Math.ceil(size / 64) * 64, 0));
      const region = Math.ceil((offsets[2] + sizes[2]) / 4096) * 4096;
      const pagesOf = (i: number) => new Set(Array.from({ length: Math.ceil(region / hugePage) }, (_, p) => p)
        .filter((p) => p * hugePage < offsets[i] + sizes[i] && offsets[i] < (p + 1) * hugePage));
      const length = (p: number) => Math.min(hugePage, region - p * hugePage);
      const only = (i: number, alive: number[]) => [...pagesOf(i)].filter((p) => alive.every((j) => !pagesOf(j).has(p)));
      const freed = (i: number, alive: number[]) => only(i, alive).reduce((sum, p) => sum + length(p), 0);
      const afterFirst = region - freed(0, [1, 2]);
      const afterSecond = afterFirst - freed(2, [1]);
      expect({ isa, steps }).toEqual({ isa, steps: [region, afterFirst, afterSecond, 0] });
      expect(freed(0, [1, 2])).toBeGreaterThan(0);  // the test frees pages at each step, not only at the end
    }
  });

  test('an operand too large to pack is an out-of-memory error, not a crash, and leaves nothing allocated', () => {
    const before = stats().nativeBytes;
    const one = new Float32Array(1);
    // Strides of 0 let a 1-element array stand for any [k, n]: 3 x 2^40 x 2^40 bfloat16 overflows size_t.
    const huge = { b: one, k: 2 ** 40, n: 2 ** 40, rowStride: 0, colStride: 0 };
    const small = { b: new Float32Array(64 * 64), k: 64, n: 64, rowStride: 64, colStride: 1 };
    for (const isa of binding.info().availableIsas) {
      expectError(() => binding.packB(one, huge.k, huge.n, 0, 0, isa), RangeError, 'ERR_SIMDFORMER_OUT_OF_MEMORY', 'simdformer: out of memory');
      expectError(() => binding.packBBatch([small, huge], isa), RangeError, 'ERR_SIMDFORMER_OUT_OF_MEMORY', 'simdformer: out of memory');
      // 2^40 weights fit in size_t but not in memory; mapping that much is refused unless the kernel overcommits
      // without limit (vm.overcommit_memory 1), where the test would fill memory instead.
      if (linux && fs.readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim() !== '1') {
        expectError(() => binding.packB(one, 2 ** 20, 2 ** 20, 0, 0, isa), RangeError, 'ERR_SIMDFORMER_OUT_OF_MEMORY', 'simdformer: out of memory');
        expectError(() => binding.packBBatch([small, { ...huge, k: 2 ** 20, n: 2 ** 20 }], isa), RangeError,
          'ERR_SIMDFORMER_OUT_OF_MEMORY', 'simdformer: out of memory');
      }
    }
    expect(stats().nativeBytes).toBe(before);
  });

  test('a weight loaded again is packed alone, into a region of its own; the model gives the outputs of one loaded at once', () => {
    const file = loadSafetensorsSync(TRANSFORMER_FIXTURE);
    const weights = new Map([...file].filter(([key]) => !key.startsWith('__')));
    const model = new nn.Transformer({ dModel: 20, nhead: 4, numEncoderLayers: 2, numDecoderLayers: 2, dimFeedforward: 40, activation: 'gelu', batchFirst: true });
    model.loadStateDict(weights, { assign: true });
    const src = file.get('__input__.src')!;
    const tgt = file.get('__input__.tgt')!;
    model.forwardSync(src, tgt);

    const key = 'encoder.layers.1.linear1.weight';
    const replacement = new Tensor((weights.get(key)!.data as Float32Array).map((v) => -2 * v), weights.get(key)!.shape);
    const packBBatch = jest.spyOn(binding, 'packBBatch');
    model.loadStateDict(new Map([[key, replacement]]), { strict: false });
    expect(packBBatch).toHaveBeenCalledTimes(1);
    expect(packBBatch.mock.calls[0][0]).toHaveLength(1);
    const output = model.forwardSync(src, tgt);

    const reference = new nn.Transformer({ dModel: 20, nhead: 4, numEncoderLayers: 2, numDecoderLayers: 2, dimFeedforward: 40, activation: 'gelu', batchFirst: true });
    reference.loadStateDict(new Map([...weights, [key, replacement]]));
    expect(bytesOf(output).equals(bytesOf(reference.forwardSync(src, tgt)))).toBe(true);
  });
});

describe('the header', () => {
  /** A file with these header entries (JSON text) over `data`, padded as writers pad. */
  function file(entries: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
    const json = `{${entries}}`;
    return handmade(json.padEnd(Math.ceil(json.length / 8) * 8, ' '), data);
  }

  const f32 = (begin: number, end: number, shape = `[${(end - begin) / 4}]`) => `{"dtype":"F32","shape":${shape},"data_offsets":[${begin},${end}]}`;
  const data = new Uint8Array(Float32Array.of(1.5, -2).buffer);

  // Headers that JSON.parse would read differently from the reference reader: each must load (or fail) as
  // the strict parser says.
  test.each([
    ['escaped name', `"a\\u0062":${f32(0, 8)}`, { names: ['ab'] }],
    ['array-index names keep header order', `"1":${f32(0, 0, '[0]')},"0":${f32(0, 0, '[0]')},"x":${f32(0, 8)}`, { names: ['1', '0', 'x'] }],
    ['unknown field in an entry', `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":[1,2]}`, { names: ['a'] }],
    ['__proto__ and null metadata', `"__metadata__":null,"__proto__":${f32(0, 8)}`, { names: ['__proto__'] }],
    ['metadata', `"__metadata__":{"format":"pt","__proto__":"x"},"a":${f32(0, 8)}`, { names: ['a'], metadata: JSON.parse('{"format":"pt","__proto__":"x"}') }],
    ['duplicate tensor', `"a":${f32(0, 8)},"a":${f32(0, 8)}`, { error: "the header names tensor 'a' twice (duplicate keys are not allowed)" }],
    ['duplicate field', `"a":{"dtype":"F32","shape":[2],"shape":[2],"data_offsets":[0,8]}`, { error: "the entry of tensor 'a' has key 'shape' twice (duplicate keys are not allowed)" }],
    ['exponent', `"a":${f32(0, 8, '[2e0]')}`, { error: "expected an array of non-negative integers for the shape of tensor 'a' but received [2e0]" }],
    ['negative zero', `"a":{"dtype":"F32","shape":[2],"data_offsets":[-0,8]}`, { error: "expected two non-negative integers no larger than 2^53 - 1 for the data_offsets of tensor 'a' but received [-0,8]" }],
    ['past 2^53', `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,9007199254740993]}`, { error: "expected two non-negative integers no larger than 2^53 - 1 for the data_offsets of tensor 'a' but received [0,9007199254740993]" }],
    ['lone surrogate', `"a\\ud800":${f32(0, 8)}`, { error: /lone high surrogate|low surrogate escape/ }],
    ['true for null metadata', `"__metadata__":true,"a":${f32(0, 8)}`, { error: 'expected an object of strings for __metadata__ but received true' }],
  ] as const)('%s', (_, entries, expected) => {
    const bytes = file(entries, data);
    if ('error' in expected) {
      let message = '';
      try {
        loadSafetensorsSync(bytes);
      } catch (error) {
        message = (error as Error).message;
      }
      if (typeof expected.error === 'string') expect(message).toBe(`Invalid safetensors data: ${expected.error}`);
      else expect(message).toMatch(expected.error);
      return;
    }
    const { tensors, metadata } = loadSafetensorsSync(bytes, { metadata: true });
    expect([...tensors.keys()]).toEqual(expected.names);
    expect(Object.entries(metadata)).toEqual(Object.entries('metadata' in expected ? expected.metadata : {}));
  });

  test('a header as writers make it is read by JSON.parse (the strict parser only runs for the others)', () => {
    const parse = jest.spyOn(JSON, 'parse');
    const tensors = loadSafetensorsSync(TRANSFORMER_FIXTURE);
    expect(parse).toHaveBeenCalledTimes(1);
    expect(tensors.size).toBeGreaterThan(40);
    parse.mockClear();
    loadSafetensorsSync(file(`"a\\u0062":${f32(0, 8)}`, data));
    expect(parse).not.toHaveBeenCalled();
  });
});

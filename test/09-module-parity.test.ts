/**
 * Parity of the nn modules with PyTorch: every case in
 * test/fixtures/modules/index.json (written by `npm run fixtures:modules`,
 * i.e. scripts/gen_module_fixtures.py, from torch itself) is built as a
 * simdformer module from the recorded constructor options, loaded with
 * PyTorch's state_dict (strict), and run with forwardSync and with the async
 * forward on PyTorch's inputs; each output must have PyTorch's shape and be
 * within the case's max abs difference (1e-4 unless the case says otherwise).
 *
 * Each case's `<case>.safetensors` holds the state_dict under PyTorch's keys,
 * the inputs under `__input__.<name>` and PyTorch's outputs under
 * `__output__.<i>`; the index says how to build and call the module (see the
 * generator's header for the format).
 *
 * Runs with whatever ISA the addon chose at load; `npm test` runs it once
 * per ISA with SIMDFORMER_ISA=ref|avx2|avx512.
 */
import * as fs from 'fs';
import * as path from 'path';
import { info, loadSafetensorsSync, nn, Tensor } from '../lib';

const FIXTURE_DIR = path.join(__dirname, 'fixtures', 'modules');
const INPUT_PREFIX = '__input__.';
const OUTPUT_PREFIX = '__output__.';

/** A constructor argument or option that is a module (an encoder layer, a final norm), or a forward option that is an input. */
type ModuleRef = { module: Ctor };
type InputRef = { input: string };

interface Ctor {
  class: keyof typeof CLASSES;
  /** PyTorch >= 2.1's keywords; `emulated` ones were emulated under 1.13. */
  torch: { kwargs: Record<string, unknown>; emulated?: string[] };
  simdformer: { args: unknown[]; options: Record<string, unknown> };
}

interface OutputRecord {
  name: string;
  /** null: PyTorch returned None (MultiheadAttention with need_weights=False). */
  key: string | null;
  shape?: number[];
}

interface ModuleCase {
  name: string;
  file: string;
  description: string;
  module: Ctor;
  /** Key → shape, in PyTorch's state_dict order. */
  stateDict: Record<string, number[]>;
  /** State a freshly built module must already hold (a buffer computed, not drawn at random). */
  deterministicState?: string[];
  inputs: Record<string, { dtype: string; shape: number[] }>;
  forward: { inputs: string[]; options: Record<string, unknown>; torchKwargs: Record<string, unknown> };
  outputs: OutputRecord[];
  atol?: number;
  note?: string;
}

interface ModuleIndex {
  torch: string;
  atol: number;
  cases: ModuleCase[];
}

type Output = Tensor | [Tensor, Tensor | null];

/** What the parity test needs of every module class. */
interface RunnableModule {
  forwardSync(...args: unknown[]): Output;
  forward(...args: unknown[]): Promise<Output>;
  loadStateDict(stateDict: Map<string, Tensor>, options?: { strict?: boolean }): { missingKeys: string[]; unexpectedKeys: string[] };
  stateDict(): Map<string, Tensor>;
}

type ModuleClass = new (...args: never[]) => RunnableModule;

const CLASSES = {
  Linear: nn.Linear,
  LayerNorm: nn.LayerNorm,
  Embedding: nn.Embedding,
  PositionalEncoding: nn.PositionalEncoding,
  MultiheadAttention: nn.MultiheadAttention,
  TransformerEncoderLayer: nn.TransformerEncoderLayer,
  TransformerEncoder: nn.TransformerEncoder,
  TransformerDecoderLayer: nn.TransformerDecoderLayer,
  TransformerDecoder: nn.TransformerDecoder,
  Transformer: nn.Transformer,
} satisfies Record<string, ModuleClass>;

function isModuleRef(value: unknown): value is ModuleRef {
  return typeof value === 'object' && value !== null && 'module' in value;
}

function isInputRef(value: unknown): value is InputRef {
  return typeof value === 'object' && value !== null && 'input' in value;
}

/** `new nn.<class>(...args, options)`; the Transformer takes its options only. */
function build(ctor: Ctor): RunnableModule {
  const resolve = (value: unknown): unknown => (isModuleRef(value) ? build(value.module) : value);
  const args = ctor.simdformer.args.map(resolve);
  const options = Object.fromEntries(Object.entries(ctor.simdformer.options).map(([key, value]) => [key, resolve(value)]));
  const Class = CLASSES[ctor.class] as unknown as new (...args: unknown[]) => RunnableModule;
  return new Class(...args, options);
}

/** Splits a fixture file into the state_dict and the forward inputs and expected outputs. */
function readCase(testCase: ModuleCase): { state: Map<string, Tensor>; inputs: Map<string, Tensor>; expected: Map<string, Tensor> } {
  const tensors = loadSafetensorsSync(path.join(FIXTURE_DIR, testCase.file));
  const state = new Map<string, Tensor>();
  const inputs = new Map<string, Tensor>();
  const expected = new Map<string, Tensor>();
  for (const [key, tensor] of tensors) {
    if (key.startsWith(INPUT_PREFIX)) inputs.set(key.slice(INPUT_PREFIX.length), tensor);
    else if (key.startsWith(OUTPUT_PREFIX)) expected.set(key, tensor);
    else state.set(key, tensor);
  }
  return { state, inputs, expected };
}

/** The positional tensors and the options object of a forward call (no options object when there are none). */
function forwardArguments(testCase: ModuleCase, inputs: Map<string, Tensor>): unknown[] {
  const tensor = (name: string): Tensor => {
    const value = inputs.get(name);
    if (value === undefined) throw new Error(`${testCase.file} has no ${INPUT_PREFIX}${name}`);
    return value;
  };
  // A repeated name passes the same Tensor object, as self-attention callers do.
  const args: unknown[] = testCase.forward.inputs.map(tensor);
  const options = Object.entries(testCase.forward.options);
  if (options.length > 0) {
    args.push(Object.fromEntries(options.map(([key, value]) => [key, isInputRef(value) ? tensor(value.input) : value])));
  }
  return args;
}

function asList(output: Output): (Tensor | null)[] {
  return Array.isArray(output) ? output : [output];
}

function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Index into a row-major array of `shape` as "[i, j, ...]", for messages. */
function position(index: number, shape: readonly number[]): string {
  const coordinates: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    coordinates.unshift(index % shape[d]);
    index = Math.floor(index / shape[d]);
  }
  return shapeString(coordinates);
}

/** Every way `actual` differs from PyTorch's `expected`; empty when they agree within `atol`. */
function differences(label: string, actual: Tensor | null, expected: Tensor | undefined, atol: number): string[] {
  if (expected === undefined) return actual === null ? [] : [`${label}: a Tensor, expected null (PyTorch returned None)`];
  if (!(actual instanceof Tensor)) return [`${label}: ${String(actual)}, expected a Tensor of shape ${shapeString(expected.shape)}`];
  if (actual.dtype !== 'float32') return [`${label}: dtype ${actual.dtype}, expected float32`];
  if (shapeString(actual.shape) !== shapeString(expected.shape)) {
    return [`${label}: shape ${shapeString(actual.shape)}, expected ${shapeString(expected.shape)}`];
  }
  const got = actual.data as Float32Array;
  const want = expected.data as Float32Array;
  const problems: string[] = [];
  let maxDifference = 0;
  let worst = -1;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(want[i]) || !Number.isFinite(got[i])) {
      const same = Number.isNaN(want[i]) ? Number.isNaN(got[i]) : got[i] === want[i];
      if (!same) problems.push(`${label}${position(i, expected.shape)}: ${got[i]}, expected ${want[i]}`);
      continue;
    }
    const difference = Math.abs(got[i] - want[i]);
    if (difference > maxDifference) {
      maxDifference = difference;
      worst = i;
    }
  }
  if (maxDifference > atol) {
    problems.push(
      `${label}: max abs difference ${maxDifference.toExponential(3)} > ${atol} at ${position(worst, expected.shape)}: ` +
        `${got[worst]}, expected ${want[worst]}`,
    );
  }
  return problems.slice(0, 10);
}

function compareOutputs(label: string, testCase: ModuleCase, output: Output, expected: Map<string, Tensor>, atol: number): string[] {
  const actual = asList(output);
  if (actual.length !== testCase.outputs.length) {
    return [`${label}: ${actual.length} outputs, expected ${testCase.outputs.length} (${testCase.outputs.map((o) => o.name).join(', ')})`];
  }
  return testCase.outputs.flatMap((record, i) =>
    differences(`${label} ${record.name}`, actual[i], record.key === null ? undefined : expected.get(record.key), atol));
}

const index: ModuleIndex = JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, 'index.json'), 'utf8'));

describe(`nn modules match PyTorch ${index.torch} (isa: ${info().isa})`, () => {
  for (const testCase of index.cases) {
    test(testCase.name, async () => {
      const atol = testCase.atol ?? index.atol;
      const { state, inputs, expected } = readCase(testCase);
      const module = build(testCase.module);

      // A fresh module has PyTorch's state_dict structure, and computed buffers already hold PyTorch's values.
      const fresh = module.stateDict();
      expect([...fresh.keys()]).toEqual(Object.keys(testCase.stateDict));
      expect(Object.fromEntries([...fresh].map(([key, tensor]) => [key, [...tensor.shape]]))).toEqual(testCase.stateDict);
      for (const key of testCase.deterministicState ?? []) {
        expect(differences(`fresh ${key}`, fresh.get(key) ?? null, state.get(key), atol)).toEqual([]);
      }

      expect(module.loadStateDict(state, { strict: true })).toEqual({ missingKeys: [], unexpectedKeys: [] });

      for (const [name, { dtype, shape }] of Object.entries(testCase.inputs)) {
        expect([name, inputs.get(name)?.dtype, inputs.get(name)?.shape]).toEqual([name, dtype, shape]);
      }
      const args = forwardArguments(testCase, inputs);
      expect(compareOutputs('forwardSync', testCase, module.forwardSync(...args), expected, atol)).toEqual([]);
      expect(compareOutputs('forward', testCase, await module.forward(...args), expected, atol)).toEqual([]);
    });
  }
});

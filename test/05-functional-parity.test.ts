/**
 * Parity of the functional ops with PyTorch: every case in
 * test/fixtures/functional.json (written by `npm run fixtures`, i.e.
 * scripts/gen_fixtures.py, from torch itself) is rebuilt as simdformer
 * Tensors, run through the op, and compared with PyTorch's output: same
 * shape, NaN and ±inf in the same places, and every finite element within
 * the case's tolerance (1e-5 unless the fixture says otherwise and why).
 *
 * Runs with whatever ISA the addon chose at load; `npm test` runs it once
 * per ISA with SIMDFORMER_ISA=ref|avx2|avx512.
 */
import * as fs from 'fs';
import * as path from 'path';
import { functional as F, info, Tensor } from '../lib';

const DEFAULT_ATOL = 1e-5;

/** A float32 value as the fixture writes it: JSON has no NaN or infinity. */
type FixtureValue = number | 'nan' | 'inf' | '-inf';

interface FixtureTensor {
  shape: number[];
  dtype: 'float32';
  data: FixtureValue[];
}

interface FixtureCase {
  name: string;
  op: 'linear' | 'matmul' | 'softmax' | 'layer_norm' | 'relu' | 'gelu';
  inputs: Record<string, FixtureTensor>;
  /** PyTorch's keyword names; a null value is passed explicitly as null. */
  args: Record<string, unknown>;
  output: FixtureTensor;
  atol?: number;
  note?: string;
}

interface Fixture {
  torch: string;
  cases: FixtureCase[];
}

function decodeValue(value: FixtureValue): number {
  switch (value) {
    case 'nan': return NaN;
    case 'inf': return Infinity;
    case '-inf': return -Infinity;
    default: return value;
  }
}

function decode(fixtureTensor: FixtureTensor): { shape: number[]; data: Float32Array } {
  return { shape: fixtureTensor.shape, data: Float32Array.from(fixtureTensor.data, decodeValue) };
}

function toTensor(fixtureTensor: FixtureTensor): Tensor {
  const { shape, data } = decode(fixtureTensor);
  return new Tensor(data, shape);
}

/** An optional input: the tensor if the case has it, the explicit null if args say so, else undefined. */
function optionalInput(testCase: FixtureCase, name: string): Tensor | null | undefined {
  if (testCase.inputs[name] !== undefined) return toTensor(testCase.inputs[name]);
  return testCase.args[name] === null ? null : undefined;
}

function run(testCase: FixtureCase): Tensor {
  const input = toTensor(testCase.inputs.input);
  switch (testCase.op) {
    case 'linear':
      return F.linear(input, toTensor(testCase.inputs.weight), optionalInput(testCase, 'bias'));
    case 'matmul':
      return F.matmul(input, toTensor(testCase.inputs.other));
    case 'softmax':
      return F.softmax(input, testCase.args.dim as number);
    case 'layer_norm':
      return F.layerNorm(
        input,
        testCase.args.normalized_shape as number[],
        optionalInput(testCase, 'weight'),
        optionalInput(testCase, 'bias'),
        testCase.args.eps as number | undefined,
      );
    case 'relu':
      return F.relu(input);
    case 'gelu':
      return F.gelu(input);
  }
}

/** Index into a row-major array of `shape` as "[i, j, ...]", for messages. */
function position(index: number, shape: readonly number[]): string {
  const coordinates: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    coordinates.unshift(index % shape[d]);
    index = Math.floor(index / shape[d]);
  }
  return `[${coordinates.join(', ')}]`;
}

/** Every way `actual` differs from PyTorch's `expected`; empty when they agree within `atol`. */
function differences(actual: Tensor, expected: FixtureTensor, atol: number): string[] {
  const reference = decode(expected);
  if (actual.dtype !== 'float32') return [`dtype ${actual.dtype}, expected float32`];
  if (actual.shape.length !== reference.shape.length || actual.shape.some((size, d) => size !== reference.shape[d])) {
    return [`shape [${actual.shape.join(', ')}], expected [${reference.shape.join(', ')}]`];
  }
  const values = actual.data as Float32Array;
  const problems: string[] = [];
  let maxDifference = 0;
  let worst = -1;
  for (let i = 0; i < reference.data.length; i++) {
    const want = reference.data[i];
    const got = values[i];
    if (!Number.isFinite(want) || !Number.isFinite(got)) {
      const same = Number.isNaN(want) ? Number.isNaN(got) : got === want;
      if (!same) problems.push(`${position(i, reference.shape)}: ${got}, expected ${want}`);
      continue;
    }
    const difference = Math.abs(got - want);
    if (difference > maxDifference) {
      maxDifference = difference;
      worst = i;
    }
  }
  if (maxDifference > atol) {
    problems.push(
      `max abs difference ${maxDifference.toExponential(3)} > ${atol} at ${position(worst, reference.shape)}: ` +
        `${values[worst]}, expected ${reference.data[worst]}`,
    );
  }
  return problems.slice(0, 10);
}

const fixture: Fixture = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'functional.json'), 'utf8'),
);

describe(`functional ops match PyTorch ${fixture.torch} (isa: ${info().isa})`, () => {
  for (const testCase of fixture.cases) {
    test(testCase.name, () => {
      expect(differences(run(testCase), testCase.output, testCase.atol ?? DEFAULT_ATOL)).toEqual([]);
    });
  }
});

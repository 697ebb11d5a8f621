/**
 * The CI regression check of `npm run bench:compare` (bench/compare.ts): a
 * pure function over two github-action-benchmark customSmallerIsBetter
 * arrays, and the exit code of the command line around it.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BenchmarkEntry, compareBenchmarks, formatComparison, parseEntries } from '../bench/compare';

const entry = (name: string, value: number, unit = 'ms'): BenchmarkEntry => ({ name, unit, value });

describe('compareBenchmarks', () => {
  const base = [
    entry('enc6 [2 threads] simdformer', 100),
    entry('enc4-small [2 threads] simdformer', 1.5),
    entry('enc6 [2 threads] onnxruntime', 160),
    entry('load enc6 simdformer', 20),
  ];

  test('an entry slower beyond the threshold fails; within it, it does not', () => {
    const current = [
      entry('enc6 [2 threads] simdformer', 112), // +12%
      entry('enc4-small [2 threads] simdformer', 1.62), // +8%
      entry('enc6 [2 threads] onnxruntime', 160),
      entry('load enc6 simdformer', 20),
    ];
    const { changes, failures } = compareBenchmarks(base, current, { thresholdPercent: 10 });
    expect(failures.map((f) => f.name)).toEqual(['enc6 [2 threads] simdformer']);
    expect(changes[0]).toMatchObject({ status: 'slower', base: 100, current: 112 });
    expect(changes[0].changePercent).toBeCloseTo(12);
    expect(changes[1]).toMatchObject({ status: 'unchanged' });
    expect(changes[1].changePercent).toBeCloseTo(8);
  });

  test('exactly at the threshold is not a failure', () => {
    const { failures } = compareBenchmarks([entry('a', 100)], [entry('a', 110)], { thresholdPercent: 10 });
    expect(failures).toEqual([]);
  });

  test('faster entries are reported and never fail', () => {
    const { changes, failures } = compareBenchmarks(base, [entry('enc6 [2 threads] simdformer', 60)], { thresholdPercent: 10 });
    expect(failures).toEqual([]);
    expect(changes[0]).toMatchObject({ status: 'faster' });
    expect(changes[0].changePercent).toBeCloseTo(-40);
  });

  test('new and missing entries are reported and never fail', () => {
    const current = [entry('enc6 [2 threads] simdformer', 100), entry('transformer [2 threads] simdformer', 350)];
    const { changes, failures } = compareBenchmarks(base, current, { thresholdPercent: 10 });
    expect(failures).toEqual([]);
    expect(changes.find((c) => c.name === 'transformer [2 threads] simdformer')).toMatchObject({ status: 'new', base: null, current: 350 });
    expect(changes.filter((c) => c.status === 'missing').map((c) => c.name)).toEqual([
      'enc4-small [2 threads] simdformer', 'enc6 [2 threads] onnxruntime', 'load enc6 simdformer',
    ]);
  });

  test('--match gates only matching entries; the others are still reported', () => {
    const current = [entry('enc6 [2 threads] simdformer', 100), entry('enc6 [2 threads] onnxruntime', 200)];
    const gatedAll = compareBenchmarks(base, current, { thresholdPercent: 10 });
    expect(gatedAll.failures.map((f) => f.name)).toEqual(['enc6 [2 threads] onnxruntime']);
    const gatedOurs = compareBenchmarks(base, current, { thresholdPercent: 10, match: 'simdformer' });
    expect(gatedOurs.failures).toEqual([]);
    expect(gatedOurs.changes[1]).toMatchObject({ status: 'slower', gated: false });
    expect(formatComparison(gatedOurs, { thresholdPercent: 10, match: 'simdformer' })).toMatch(/slower \(not gated\)/);
  });

  test('a changed unit is reported, not compared', () => {
    const { changes, failures } = compareBenchmarks([entry('x', 1, 'ms')], [entry('x', 1000, 'us')], { thresholdPercent: 10 });
    expect(failures).toEqual([]);
    expect(changes[0]).toMatchObject({ status: 'unit-changed', changePercent: null });
  });

  test('a zero base: zero stays unchanged, anything more is slower', () => {
    expect(compareBenchmarks([entry('z', 0)], [entry('z', 0)], { thresholdPercent: 10 }).changes[0].status).toBe('unchanged');
    expect(compareBenchmarks([entry('z', 0)], [entry('z', 1)], { thresholdPercent: 10 }).failures).toHaveLength(1);
  });

  test('a negative threshold is a RangeError', () => {
    expect(() => compareBenchmarks(base, base, { thresholdPercent: -1 })).toThrow(RangeError);
  });

  test('the report names each failure', () => {
    const comparison = compareBenchmarks([entry('a', 1)], [entry('a', 2)], { thresholdPercent: 10 });
    expect(formatComparison(comparison, { thresholdPercent: 10 })).toMatch(/FAIL: 1 slower by more than 10%: a$/m);
  });
});

describe('parseEntries', () => {
  test('accepts the suite\'s format, extra fields included', () => {
    expect(parseEntries([{ name: 'a', unit: 'ms', value: 1, extra: 'min 1' }], 'f')).toHaveLength(1);
  });

  test.each([
    ['not an array', { name: 'a' }, TypeError],
    ['a missing value', [{ name: 'a', unit: 'ms' }], TypeError],
    ['a non-finite value', [{ name: 'a', unit: 'ms', value: null }], TypeError],
    ['a duplicate name', [{ name: 'a', unit: 'ms', value: 1 }, { name: 'a', unit: 'ms', value: 2 }], RangeError],
  ])('rejects %s', (_, value, type) => {
    expect(() => parseEntries(value, 'f')).toThrow(type);
  });
});

describe('bench:compare command line', () => {
  const compiled = path.join(__dirname, '..', 'dist', 'bench', 'compare.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simdformer-compare-'));
  const write = (name: string, entries: unknown) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(entries));
    return file;
  };
  const run = (...args: string[]) => spawnSync(process.execPath, [compiled, ...args], { encoding: 'utf8' });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // dist/ is built by `npm ci` (prepare) and `npm run build`
  const maybe = fs.existsSync(compiled) ? test : test.skip;

  maybe('exits 1 on a regression beyond --threshold, 0 otherwise, 2 on bad input', () => {
    const base = write('base.json', [entry('a', 100), entry('b', 10)]);
    const slower = write('slower.json', [entry('a', 125), entry('b', 10)]);
    const same = write('same.json', [entry('a', 104), entry('b', 9)]);
    const regression = run(base, slower, '--threshold', '10');
    expect(regression.status).toBe(1);
    expect(regression.stdout).toMatch(/a\s+100\.0 ms\s+125\.0 ms\s+\+25\.0%\s+slower/);
    expect(run(base, slower, '--threshold', '30').status).toBe(0);
    expect(run(base, same).status).toBe(0);
    expect(run(base).status).toBe(2);
    expect(run(base, write('bad.json', { a: 1 })).status).toBe(2);
  });
});

/**
 * Compares two benchmark results in github-action-benchmark's
 * `customSmallerIsBetter` format (what `npm run bench -- --json FILE` writes):
 *
 *   npm run bench:compare -- BASE.json NEW.json [--threshold 10] [--match simdformer]
 *
 * prints each entry's change and exits 1 when an entry got slower (larger)
 * by more than the threshold percent, 2 on a usage or input error, else 0.
 * Entries are matched by name; a name in only one file is reported as new or
 * missing and never fails the comparison (a case was added or filtered out).
 * `--match TEXT` gates only the entries whose name contains TEXT (others are
 * still printed): the suite's JSON also holds the peers' figures, whose noise
 * should not fail a CI run of simdformer.
 */
import * as fs from 'fs';

/** One entry of github-action-benchmark's customSmallerIsBetter / customBiggerIsBetter JSON. */
export interface BenchmarkEntry {
  name: string;
  unit: string;
  value: number;
  range?: string;
  extra?: string;
}

export type ChangeStatus = 'slower' | 'faster' | 'unchanged' | 'new' | 'missing' | 'unit-changed';

export interface Change {
  name: string;
  unit: string;
  base: number | null;
  current: number | null;
  /** (current - base) / base in percent; null when either side is absent or the units differ */
  changePercent: number | null;
  status: ChangeStatus;
  /** whether this entry can fail the comparison (--match) */
  gated: boolean;
}

export interface Comparison {
  changes: Change[];
  /** gated entries slower beyond the threshold */
  failures: Change[];
}

export interface CompareOptions {
  /** percent; an entry fails when it is larger than base by more than this */
  thresholdPercent: number;
  /** only entries whose name contains this string can fail; all by default */
  match?: string;
}

/** Checks that `value` is an array of entries with a unique string name, a string unit and a finite number value. */
export function parseEntries(value: unknown, label: string): BenchmarkEntry[] {
  if (!Array.isArray(value)) throw new TypeError(`Expected an array of { name, unit, value } for ${label} but received ${typeof value}`);
  const seen = new Set<string>();
  return value.map((entry: unknown, i) => {
    const e = entry as Partial<BenchmarkEntry> | null;
    if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || typeof e.unit !== 'string'
        || typeof e.value !== 'number' || !Number.isFinite(e.value)) {
      throw new TypeError(`Expected { name: string, unit: string, value: finite number } for ${label}[${i}] but received ${JSON.stringify(entry)}`);
    }
    if (seen.has(e.name)) throw new RangeError(`Expected unique names in ${label} but '${e.name}' appears twice`);
    seen.add(e.name);
    return e as BenchmarkEntry;
  });
}

/** Compares entries by name; smaller is better. Order: the new file's, then the entries missing from it. */
export function compareBenchmarks(base: readonly BenchmarkEntry[], current: readonly BenchmarkEntry[], options: CompareOptions): Comparison {
  const { thresholdPercent, match } = options;
  if (!(thresholdPercent >= 0)) throw new RangeError(`Expected a non-negative number for thresholdPercent but received ${thresholdPercent}`);
  const gated = (name: string) => match === undefined || name.includes(match);
  const baseByName = new Map(base.map((e) => [e.name, e]));
  const currentNames = new Set(current.map((e) => e.name));
  const changes: Change[] = current.map((now) => {
    const before = baseByName.get(now.name);
    const common = { name: now.name, unit: now.unit, current: now.value, gated: gated(now.name) };
    if (before === undefined) return { ...common, base: null, changePercent: null, status: 'new' };
    if (before.unit !== now.unit) return { ...common, base: before.value, changePercent: null, status: 'unit-changed' };
    const changePercent = before.value === 0
      ? (now.value === 0 ? 0 : Infinity)
      : ((now.value - before.value) * 100) / Math.abs(before.value);
    const status: ChangeStatus = changePercent > thresholdPercent ? 'slower'
      : changePercent < -thresholdPercent ? 'faster' : 'unchanged';
    return { ...common, base: before.value, changePercent, status };
  });
  for (const before of base) {
    if (!currentNames.has(before.name)) {
      changes.push({
        name: before.name, unit: before.unit, base: before.value, current: null, changePercent: null,
        status: 'missing', gated: gated(before.name),
      });
    }
  }
  return { changes, failures: changes.filter((c) => c.gated && c.status === 'slower') };
}

function formatValue(value: number | null, unit: string): string {
  if (value === null) return '-';
  const digits = Math.abs(value) >= 100 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return `${value.toFixed(digits)} ${unit}`;
}

/** The comparison as a table a person reads in a CI log. */
export function formatComparison(comparison: Comparison, options: CompareOptions): string {
  const rows = comparison.changes.map((c) => [
    c.name,
    formatValue(c.base, c.unit),
    formatValue(c.current, c.unit),
    c.changePercent === null ? '' : `${c.changePercent >= 0 ? '+' : ''}${c.changePercent.toFixed(1)}%`,
    c.status === 'slower' && !c.gated ? 'slower (not gated)' : c.status,
  ]);
  const header = ['entry', 'base', 'new', 'change', 'status'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 || i === 4 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  const out = [line(header), ...rows.map(line)];
  const scope = options.match === undefined ? 'any entry' : `entries matching '${options.match}'`;
  out.push('');
  out.push(comparison.failures.length === 0
    ? `OK: no ${scope === 'any entry' ? 'entry' : scope} slower by more than ${options.thresholdPercent}%`
    : `FAIL: ${comparison.failures.length} slower by more than ${options.thresholdPercent}%: ${comparison.failures.map((f) => f.name).join(', ')}`);
  return out.join('\n');
}

const USAGE = 'usage: compare.js BASE.json NEW.json [--threshold PERCENT (default 10)] [--match TEXT]';

function main(argv: string[]): number {
  const files: string[] = [];
  const options: CompareOptions = { thresholdPercent: 10 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--threshold' && i + 1 < argv.length) options.thresholdPercent = Number(argv[++i]);
    else if (argv[i] === '--match' && i + 1 < argv.length) options.match = argv[++i];
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log(USAGE);
      return 0;
    } else if (argv[i].startsWith('--')) throw new RangeError(`unknown option ${argv[i]}; ${USAGE}`);
    else files.push(argv[i]);
  }
  if (files.length !== 2) throw new RangeError(`expected two files but received ${files.length}; ${USAGE}`);
  const [base, current] = files.map((file) => parseEntries(JSON.parse(fs.readFileSync(file, 'utf8')), file));
  const comparison = compareBenchmarks(base, current, options);
  console.log(formatComparison(comparison, options));
  return comparison.failures.length === 0 ? 0 : 1;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  }
}

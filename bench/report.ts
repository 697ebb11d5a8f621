/**
 * The end-to-end suite's results (bench/suite.ts) as tables for a person and
 * as github-action-benchmark's customSmallerIsBetter entries for CI.
 */
import { CaseInfo, EngineName, LOAD_TARGET_RATIO } from './cases';
import type { BenchmarkEntry } from './compare';
import { median, medianRatio, Summary } from './stats';

export interface EngineResult {
  engine: EngineName;
  version: string;
  /** every timed forward */
  times: number[];
  /** the median of each round's turn, for paired ratios; null: the engine sat that round out */
  turns: (number | null)[];
  summary: Summary;
  vmHWMKiB: number;
  /** VmRSS after each load step and the first forward (KiB), and byte counts at exit (JS engines only) */
  rssTrailKiB: Record<string, number>;
  exitBytes: Record<string, number>;
}

export interface CaseResult {
  info: CaseInfo;
  threads: number;
  engines: EngineResult[];
  /** max abs difference of each pair's outputs */
  diffs: { a: EngineName; b: EngineName; maxAbsDiff: number; note: string | null }[];
  /** engines that failed, and how */
  failures: { engine: EngineName; message: string }[];
}

export interface LoadResult {
  model: string;
  threads: number;
  engines: { engine: EngineName; ready: number[]; first: number[]; phases: Record<string, number[]>; packed: number[] }[];
  failures: { engine: EngineName; message: string }[];
}

const ms = (v: number) => (v >= 100 ? v.toFixed(1) : v >= 10 ? v.toFixed(2) : v.toFixed(3));
const mib = (kib: number) => kib / 1024;
const pad = (s: string, n: number, right = false) => (right ? s.padStart(n) : s.padEnd(n));

export function table(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c ?? '', widths[i], rightAligned[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function caseTable(results: CaseResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    const ours = r.engines.find((e) => e.engine === 'simdformer');
    r.engines.forEach((e, i) => {
      const diff = ours && e !== ours ? r.diffs.find((d) => [d.a, d.b].includes('simdformer') && [d.a, d.b].includes(e.engine)) : undefined;
      rows.push([
        i === 0 ? r.info.name : '', i === 0 ? String(r.threads) : '', e.engine,
        `${ms(e.summary.median)} ms`, ms(e.summary.min), ms(e.summary.max), String(e.summary.count),
        ours && e !== ours ? medianRatio(ours.turns, e.turns).toFixed(2) : '',
        `${mib(e.vmHWMKiB).toFixed(0)} MiB`,
        diff ? `${diff.maxAbsDiff.toExponential(1)}${diff.note ? ` (${diff.note})` : ''}` : '',
      ]);
    });
    for (const f of r.failures) rows.push([r.engines.length ? '' : r.info.name, '', f.engine, 'FAILED (see below)', '', '', '', '', '', '']);
  }
  return table(['case', 'threads', 'engine', 'median', 'min', 'max', 'runs', 'simdformer/this', 'peak RSS', 'max|Δ| vs simdformer'], rows,
    [false, true, false, true, true, true, true, true, true, false]);
}

export function loadTable(results: LoadResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    const ours = r.engines.find((e) => e.engine === 'simdformer');
    r.engines.forEach((e, i) => {
      const total = e.ready.map((v, k) => v + e.first[k]);
      const oursTotal = ours?.ready.map((v, k) => v + ours.first[k]);
      rows.push([
        i === 0 ? r.model : '', i === 0 ? String(r.threads) : '', e.engine,
        `${ms(median(e.ready))} ms`, `${ms(median(e.first))} ms`, `${ms(median(total))} ms`, String(e.ready.length),
        ours && e !== ours ? (median(ours.ready) / median(e.ready)).toFixed(3) : '',
        ours && e !== ours ? (median(oursTotal!) / median(total)).toFixed(2) : '',
      ]);
    });
  }
  const phases = results.flatMap((r) => r.engines.map((e) => `  ${r.model} ${e.engine}: ready = ${
    Object.entries(e.phases).map(([phase, v]) => `${phase} ${ms(median(v))}`).join(' + ')} ms${e.packed.length > 0
    ? `; weights packed (in the background, the first forward running meanwhile) ${ms(median(e.packed))} ms after the start` : ''}`));
  return `${table(['model', 'threads', 'engine', 'ready', 'first forward', 'ready+first', 'samples', 'simdformer/this ready', 'simdformer/this ready+first'],
    rows, [false, true, false, true, true, true, true, true, true])}\n\nwhere the load time goes (medians)\n${phases.join('\n')}`;
}

/** VmRSS step by step for the engines that report it, at the largest thread count. */
export function memoryLines(results: CaseResult[]): string {
  const threads = Math.max(...results.map((r) => r.threads));
  const lines: string[] = [];
  for (const r of results.filter((c) => c.threads === threads)) {
    for (const e of r.engines.filter((x) => Object.keys(x.rssTrailKiB).length > 0)) {
      const trail = Object.entries(e.rssTrailKiB).map(([step, kib]) => `${step} ${mib(kib).toFixed(0)}`).join(', ');
      const exit = Object.entries(e.exitBytes).map(([k, bytes]) => `${k} ${(bytes / 2 ** 20).toFixed(0)}`).join(', ');
      lines.push(`  ${r.info.name} ${e.engine}: RSS after ${trail}; peak ${mib(e.vmHWMKiB).toFixed(0)} (MiB); at exit ${exit} MiB`);
    }
  }
  return lines.join('\n');
}

export interface Target {
  what: string;
  value: number;
  limit: number;
  detail: string;
}

export function targets(cases: CaseResult[], loads: LoadResult[]): Target[] {
  const out: Target[] = [];
  for (const r of cases.filter((c) => c.threads === 2)) {
    const ours = r.engines.find((e) => e.engine === 'simdformer');
    const ort = r.engines.find((e) => e.engine === 'onnxruntime');
    if (!ours || !ort) continue;
    out.push({
      what: `${r.info.name} time`, value: medianRatio(ours.turns, ort.turns), limit: r.info.targetRatio,
      detail: `${ms(ours.summary.median)} / ${ms(ort.summary.median)} ms`,
    });
    out.push({
      what: `${r.info.name} peak RSS`, value: ours.vmHWMKiB / ort.vmHWMKiB, limit: 1,
      detail: `${mib(ours.vmHWMKiB).toFixed(0)} / ${mib(ort.vmHWMKiB).toFixed(0)} MiB`,
    });
  }
  for (const r of loads) {
    const ours = r.engines.find((e) => e.engine === 'simdformer');
    const ort = r.engines.find((e) => e.engine === 'onnxruntime');
    if (!ours || !ort) continue;
    out.push({
      what: `${r.model} load (ready)`, value: median(ours.ready) / median(ort.ready), limit: LOAD_TARGET_RATIO,
      detail: `${ms(median(ours.ready))} / ${ms(median(ort.ready))} ms (ready+first forward: ${ms(median(ours.ready.map((v, k) => v + ours.first[k])))} / ${ms(median(ort.ready.map((v, k) => v + ort.first[k])))} ms)`,
    });
  }
  return out;
}

export function jsonEntries(cases: CaseResult[], loads: LoadResult[], cpu: string): BenchmarkEntry[] {
  const entries: BenchmarkEntry[] = [];
  for (const r of cases) {
    const label = `${r.info.name} [${r.threads} thread${r.threads > 1 ? 's' : ''}]`;
    const ours = r.engines.find((e) => e.engine === 'simdformer');
    for (const e of r.engines) {
      entries.push({
        name: `${label} ${e.engine}`, unit: 'ms', value: e.summary.median,
        extra: `median of ${e.summary.count} forwards, min ${ms(e.summary.min)} max ${ms(e.summary.max)}; ${e.engine} ${e.version}; ${cpu}`,
      });
    }
    for (const e of r.engines) {
      if (!ours || e === ours) continue;
      const diff = r.diffs.find((d) => [d.a, d.b].includes('simdformer') && [d.a, d.b].includes(e.engine));
      entries.push({
        name: `${label} simdformer/${e.engine}`, unit: 'ratio', value: medianRatio(ours.turns, e.turns),
        extra: `median over ${ours.turns.filter((t, k) => t !== null && e.turns[k] !== null).length} paired turns; max abs output difference ${diff?.maxAbsDiff.toExponential(1)}`,
      });
    }
    for (const e of r.engines) entries.push({ name: `${label} peak RSS ${e.engine}`, unit: 'MiB', value: Number(mib(e.vmHWMKiB).toFixed(1)) });
  }
  for (const r of loads) {
    for (const e of r.engines) {
      entries.push({ name: `load ${r.model} ${e.engine}`, unit: 'ms', value: median(e.ready), extra: `ready to run, median of ${e.ready.length} fresh processes` });
      entries.push({
        name: `load+first forward ${r.model} ${e.engine}`, unit: 'ms', value: median(e.ready.map((v, k) => v + e.first[k])),
        extra: `ready to run plus the first forward, median of ${e.ready.length} fresh processes`,
      });
      if (e.packed.length > 0) {
        entries.push({
          name: `load to packed ${r.model} ${e.engine}`, unit: 'ms', value: median(e.packed),
          extra: `until the weights packed in the background were packed (the first forward ran meanwhile), median of ${e.packed.length} fresh processes`,
        });
      }
    }
  }
  return entries;
}

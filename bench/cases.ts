/**
 * The end-to-end benchmark's cases and the cache of models and inputs they
 * run on (`.cache/bench/`, ignored by git).
 *
 * The cache is written by `scripts/export_onnx.py` from PyTorch modules:
 * weights as safetensors, one ONNX file and one inputs file per case, and a
 * manifest.json describing them. Without torch the suite cannot export ONNX,
 * so it writes weights and inputs of the same shapes itself
 * (`generateWithoutTorch`), runs simdformer alone and says why the peers
 * were skipped.
 */
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const EXPORT_SCRIPT = path.join(ROOT, 'scripts', 'export_onnx.py');
export const TORCH_WORKER = path.join(ROOT, 'bench', 'torch_worker.py');
export const DEFAULT_CACHE = path.join(ROOT, '.cache', 'bench');
/**
 * The Python with torch: Debian's python3-torch installs torch 1.13 for
 * /usr/bin/python3 only (the first python3 on PATH may have none);
 * SIMDFORMER_BENCH_PYTHON picks another (a venv with a newer torch).
 */
export const TORCH_PYTHON = process.env.SIMDFORMER_BENCH_PYTHON || '/usr/bin/python3';
/** The safetensors package, unpacked from its wheel (it is not installed). */
export const SAFETENSORS_SITE = '/tmp/st-site';
export const SAFETENSORS_WHEEL_DIR = '/opt/pypi/files';

export const ENGINES = ['simdformer', 'onnxruntime', 'pytorch'] as const;
export type EngineName = (typeof ENGINES)[number];
export type PeerName = Exclude<EngineName, 'simdformer'>;

export interface CaseInfo {
  /** name in the table and the JSON */
  name: string;
  /** `--cases` selects a case by its name or its group */
  group: string;
  description: string;
  /** timed forwards per turn of an engine; a round gives each engine one turn */
  repsPerTurn: number;
  rounds: number;
  quickRounds: number;
  warmup: number;
  /** the brief's target for simdformer / onnxruntime at 2 threads */
  targetRatio: number;
}

export const CASES: CaseInfo[] = [
  {
    name: 'enc6', group: 'enc6', description: 'TransformerEncoder 6 x (d 512, 8 heads, ff 2048), [8, 128, 512]',
    repsPerTurn: 1, rounds: 15, quickRounds: 5, warmup: 2, targetRatio: 0.65,
  },
  {
    name: 'enc6-pad', group: 'enc6', description: 'enc6 with a key padding mask (8 lengths, 761 of 1024 tokens)',
    repsPerTurn: 1, rounds: 15, quickRounds: 5, warmup: 2, targetRatio: 0.65,
  },
  {
    name: 'transformer', group: 'transformer', description: 'Transformer 6 + 6 layers, d 512, src and tgt [8, 128, 512], causal tgt mask',
    repsPerTurn: 1, rounds: 11, quickRounds: 5, warmup: 2, targetRatio: 0.65,
  },
  {
    name: 'enc4-small', group: 'enc4-small', description: 'TransformerEncoder 4 x (d 256, 4 heads, ff 1024), [1, 32, 256]',
    repsPerTurn: 25, rounds: 15, quickRounds: 5, warmup: 50, targetRatio: 0.7,
  },
];

/** The brief's targets beyond the per-case ratios. */
export const LOAD_TARGET_RATIO = 0.1;

/** Valid tokens per sequence of enc6-pad; scripts/export_onnx.py holds the same list. */
export const PADDED_LENGTHS = [128, 97, 64, 120, 33, 128, 80, 111];

export interface ModelEntry {
  module: 'TransformerEncoder' | 'Transformer';
  config: {
    dModel: number;
    nhead: number;
    dimFeedforward: number;
    numLayers?: number;
    numEncoderLayers?: number;
    numDecoderLayers?: number;
  };
  /** relative to the cache folder */
  weights: string;
  parameters: number;
}

export interface CaseEntry {
  model: string;
  /** null when the cache was generated without torch */
  onnx: string | null;
  inputs: string;
  inputOrder: string[];
  inputShapes: Record<string, number[]>;
  outputShape: number[];
  keyPaddingMask: string | null;
}

export interface Manifest {
  format: number;
  scriptSha256: string;
  /** torch.__version__, or null for a cache generated without torch */
  torch: string | null;
  opset: number | null;
  models: Record<string, ModelEntry>;
  cases: Record<string, CaseEntry>;
}

export const MANIFEST_FORMAT = 1;

type Simdformer = typeof import('../lib');
type Tensor = import('../lib').Tensor;

export function sha256OfFile(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function readManifest(cacheDir: string): Manifest | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(cacheDir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return null;
  }
}

/** PYTHONPATH for the torch processes: the unpacked safetensors wheel. */
export function pythonEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const pythonPath = [SAFETENSORS_SITE, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return { ...process.env, PYTHONPATH: pythonPath, ...extra };
}

export interface TorchStatus {
  available: boolean;
  version: string | null;
  /** why not, in words a person can act on */
  reason: string | null;
}

/**
 * Whether /usr/bin/python3 can import torch and safetensors. When the
 * safetensors wheel is on disk but not unpacked, unpacks it into
 * /tmp/st-site (Python's zipfile: no unzip binary needed).
 */
export function probeTorch(): TorchStatus {
  if (!fs.existsSync(TORCH_PYTHON)) {
    return { available: false, version: null, reason: `${TORCH_PYTHON} not found (Debian: apt-get install python3-torch libopenblas0-openmp)` };
  }
  const torch = spawnSync(TORCH_PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (torch.status !== 0) {
    return { available: false, version: null, reason: `${TORCH_PYTHON} has no torch (Debian: apt-get install python3-torch libopenblas0-openmp)` };
  }
  const version = torch.stdout.trim();
  const hasSafetensors = () => spawnSync(TORCH_PYTHON, ['-c', 'import safetensors.torch'], { env: pythonEnv() }).status === 0;
  if (!hasSafetensors()) {
    const wheel = fs.existsSync(SAFETENSORS_WHEEL_DIR)
      ? fs.readdirSync(SAFETENSORS_WHEEL_DIR).find((f) => /^safetensors-.*-abi3-.*x86_64.*\.whl$/.test(f))
      : undefined;
    if (wheel) {
      spawnSync(TORCH_PYTHON, ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])',
        path.join(SAFETENSORS_WHEEL_DIR, wheel), SAFETENSORS_SITE]);
    }
    if (!hasSafetensors()) {
      return {
        available: false, version,
        reason: `torch ${version} found, but not the safetensors Python package (expected in ${SAFETENSORS_SITE}: unzip its wheel there)`,
      };
    }
  }
  return { available: true, version, reason: null };
}

export interface PreparedCache {
  dir: string;
  manifest: Manifest;
  /** the peers that can run on it, and why the others cannot */
  peers: Record<PeerName, string | null>;
}

/**
 * A cache the suite can run on: the existing one if it was written by the
 * current export script, else a fresh export (needs torch), else one
 * generated without torch (simdformer alone).
 */
export async function prepareCache(dir: string, torch: TorchStatus, log: (line: string) => void): Promise<PreparedCache> {
  const scriptSha = sha256OfFile(EXPORT_SCRIPT);
  let manifest = readManifest(dir);
  const exported = manifest !== null && manifest.format === MANIFEST_FORMAT && manifest.torch !== null;
  if (!(exported && manifest!.scriptSha256 === scriptSha)) {
    if (torch.available) {
      log(`exporting models and inputs with torch ${torch.version} into ${path.relative(ROOT, dir) || dir} (scripts/export_onnx.py, about a minute)...`);
      const result = spawnSync(TORCH_PYTHON, [EXPORT_SCRIPT, '--out', dir], { env: pythonEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
      if (result.status !== 0) throw new Error(`scripts/export_onnx.py failed (exit code ${result.status})`);
      manifest = readManifest(dir);
    } else if (exported) {
      log(`warning: ${path.relative(ROOT, dir)} was exported by an older scripts/export_onnx.py and torch is not here to redo it; using it as it is`);
    } else {
      log(`no exported models: ${torch.reason}.`);
      dir = path.join(dir, 'generated');
      manifest = readManifest(dir);
      if (manifest?.format !== MANIFEST_FORMAT) {
        log('  Generating weights and inputs of the same shapes with simdformer; the onnxruntime and PyTorch peers are skipped.');
        manifest = await generateWithoutTorch(dir);
      } else {
        log(`  Using the weights and inputs simdformer generated in ${dir}; the onnxruntime and PyTorch peers are skipped.`);
      }
    }
  }
  if (manifest === null) throw new Error(`no manifest.json in ${dir}`);
  const noOnnx = manifest.torch === null ? `no ONNX files: ${torch.reason ?? 'the cache was generated without torch'}` : null;
  const onnxruntime = noOnnx ?? onnxruntimeMissing();
  const pytorch = torch.available ? null : torch.reason;
  return { dir, manifest, peers: { onnxruntime, pytorch } };
}

function onnxruntimeMissing(): string | null {
  try {
    require.resolve('onnxruntime-node');
    return null;
  } catch {
    return 'onnxruntime-node is not installed (it is a devDependency: npm ci)';
  }
}

/**
 * Weights and inputs with the shapes of the exported ones, written with
 * simdformer itself, for a machine without torch. Values are seeded: matrices
 * xavier-uniform, LayerNorm weights near 1, small biases, like the export.
 */
async function generateWithoutTorch(dir: string): Promise<Manifest> {
  // Loaded here, not at the top: the suite's parent process stays free of the addon.
  const sf = require('../lib') as Simdformer;
  const generator = new sf.Generator(20240601);
  fs.mkdirSync(dir, { recursive: true });
  const models: Record<string, ModelEntry> = {
    'enc6': { module: 'TransformerEncoder', config: { dModel: 512, nhead: 8, dimFeedforward: 2048, numLayers: 6 }, weights: '', parameters: 0 },
    'transformer': {
      module: 'Transformer', config: { dModel: 512, nhead: 8, dimFeedforward: 2048, numEncoderLayers: 6, numDecoderLayers: 6 },
      weights: '', parameters: 0,
    },
    'enc4-small': { module: 'TransformerEncoder', config: { dModel: 256, nhead: 4, dimFeedforward: 1024, numLayers: 4 }, weights: '', parameters: 0 },
  };
  for (const [name, model] of Object.entries(models)) {
    const state = new Map<string, Tensor>();
    for (const [key, value] of buildSimdformerModule(sf, model).stateDict()) {
      const t = value.shape.length > 1
        ? sf.rand(value.shape, { generator })
        : sf.randn(value.shape, { generator });
      const data = t.data as Float32Array;
      const isNormWeight = /(^|\.)norm\d*\.weight$/.test(key);
      const bound = value.shape.length > 1 ? Math.sqrt(6 / (value.shape[0] + value.shape[1])) : 0;
      for (let i = 0; i < data.length; i++) {
        data[i] = value.shape.length > 1 ? (2 * data[i] - 1) * bound : isNormWeight ? 1 + 0.1 * data[i] : 0.02 * data[i];
      }
      state.set(key, t);
    }
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    model.weights = `${name}/weights.safetensors`;
    model.parameters = [...state.values()].reduce((n, t) => n + t.numel, 0);
    await sf.saveSafetensors(path.join(dir, model.weights), state);
  }
  const cases: Record<string, CaseEntry> = {};
  const write = async (name: string, model: string, inputs: Map<string, Tensor>, keyPaddingMask: string | null) => {
    await sf.saveSafetensors(path.join(dir, `${name}.inputs.safetensors`), inputs);
    const shapes = Object.fromEntries([...inputs].map(([k, t]) => [k, [...t.shape]]));
    cases[name] = {
      model, onnx: null, inputs: `${name}.inputs.safetensors`, inputOrder: [...inputs.keys()], inputShapes: shapes,
      outputShape: shapes.tgt ?? shapes.src, keyPaddingMask,
    };
  };
  await write('enc6', 'enc6', new Map([['src', sf.randn([8, 128, 512], { generator })]]), null);
  const mask = new Uint8Array(8 * 128);
  PADDED_LENGTHS.forEach((length, b) => mask.fill(1, b * 128 + length, (b + 1) * 128));
  await write('enc6-pad', 'enc6', new Map<string, Tensor>([
    ['src', sf.randn([8, 128, 512], { generator })], ['src_key_padding_mask', new sf.Tensor(mask, [8, 128], 'bool')],
  ]), 'src_key_padding_mask');
  await write('transformer', 'transformer', new Map([
    ['src', sf.randn([8, 128, 512], { generator })], ['tgt', sf.randn([8, 128, 512], { generator })],
    ['tgt_mask', sf.nn.Transformer.generateSquareSubsequentMask(128)],
  ]), null);
  await write('enc4-small', 'enc4-small', new Map([['src', sf.randn([1, 32, 256], { generator })]]), null);
  const manifest: Manifest = {
    format: MANIFEST_FORMAT, scriptSha256: '', torch: null, opset: null, models, cases,
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

type SimdformerModule = InstanceType<Simdformer['nn']['TransformerEncoder']> | InstanceType<Simdformer['nn']['Transformer']>;

/** simdformer's module for a model entry, built as the export builds PyTorch's (batch_first, PyTorch's defaults). */
export function buildSimdformerModule(sf: Simdformer, model: ModelEntry): SimdformerModule {
  const { dModel, nhead, dimFeedforward } = model.config;
  if (model.module === 'TransformerEncoder') {
    const layer = new sf.nn.TransformerEncoderLayer(dModel, nhead, { dimFeedforward, batchFirst: true });
    return new sf.nn.TransformerEncoder(layer, model.config.numLayers!);
  }
  return new sf.nn.Transformer({
    dModel, nhead, dimFeedforward, batchFirst: true,
    numEncoderLayers: model.config.numEncoderLayers, numDecoderLayers: model.config.numDecoderLayers,
  });
}

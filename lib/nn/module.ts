/**
 * Module: parameters, buffers and submodules with PyTorch's names, so a
 * state_dict saved by PyTorch loads by the same keys. Inference only.
 */
import { invalidType, shapeError, SimdformerError } from '../errors';
import { Tensor } from '../tensor';

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

let weightsVersion = 0;

/** Bumped whenever any parameter or buffer is replaced; cached plans built before are rebuilt. */
export function currentWeightsVersion(): number {
  return weightsVersion;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}

function copyTensor(source: Tensor, dtype: Tensor['dtype']): Tensor {
  if (source.dtype === dtype) return new Tensor(source.data.slice() as Tensor['data'], source.shape);
  // A checkpoint tensor of another dtype (float64 from an old export, int32 for int64): convert as PyTorch's copy_ does.
  const length = source.numel;
  const values = Array.from(source.data as ArrayLike<number | bigint>, Number);
  switch (dtype) {
    case 'float32': return new Tensor(Float32Array.from(values), source.shape);
    case 'int32': return new Tensor(Int32Array.from(values), source.shape);
    case 'int64': return new Tensor(BigInt64Array.from(values, (v) => BigInt(Math.trunc(v))), source.shape);
    case 'bool': return new Tensor(Uint8Array.from(values, (v) => (v ? 1 : 0)), source.shape);
  }
  throw new Error(`unreachable ${length}`);
}

export abstract class Module {
  private readonly parameters = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, Tensor | null>();
  private readonly modules = new Map<string, Module | null>();

  /** Always false: simdformer runs inference only (dropout is the identity). */
  readonly training = false;

  /** Registers (or replaces) a parameter under PyTorch's name; null keeps the slot empty, like PyTorch's None. */
  protected registerParameter(name: string, value: Tensor | null): void {
    this.parameters.set(name, value);
    weightsVersion++;
  }

  protected registerBuffer(name: string, value: Tensor | null): void {
    this.buffers.set(name, value);
    weightsVersion++;
  }

  protected registerModule<M extends Module | null>(name: string, module: M): M {
    this.modules.set(name, module);
    return module;
  }

  protected parameter(name: string): Tensor | null {
    return this.parameters.get(name) ?? null;
  }

  protected buffer(name: string): Tensor | null {
    return this.buffers.get(name) ?? null;
  }

  /** Child modules in registration order. */
  children(): Module[] {
    return [...this.modules.values()].filter((m): m is Module => m !== null);
  }

  /** Parameters by dotted name (`layers.0.self_attn.in_proj_weight`), in PyTorch's order. */
  namedParameters(prefix = ''): Map<string, Tensor> {
    const result = new Map<string, Tensor>();
    for (const [name, value] of this.parameters) if (value !== null) result.set(prefix + name, value);
    for (const [name, module] of this.modules) {
      if (module !== null) for (const [key, value] of module.namedParameters(`${prefix}${name}.`)) result.set(key, value);
    }
    return result;
  }

  /** Parameters and buffers by dotted name, in PyTorch's state_dict order (own parameters, own buffers, then children). */
  stateDict(prefix = ''): Map<string, Tensor> {
    const result = new Map<string, Tensor>();
    for (const [name, value] of this.parameters) if (value !== null) result.set(prefix + name, value);
    for (const [name, value] of this.buffers) if (value !== null) result.set(prefix + name, value);
    for (const [name, module] of this.modules) {
      if (module !== null) for (const [key, value] of module.stateDict(`${prefix}${name}.`)) result.set(key, value);
    }
    return result;
  }

  /**
   * Copies tensors from `stateDict` into this module's parameters and
   * buffers. With strict (the default), missing and unexpected keys are
   * errors; a shape mismatch always is. All problems are reported in one
   * error, worded as PyTorch words them.
   */
  loadStateDict(stateDict: StateDict, options: { strict?: boolean } = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    if (!(stateDict instanceof Map) && (typeof stateDict !== 'object' || stateDict === null)) {
      throw invalidType('stateDict', 'a Map or an object of Tensors', stateDict);
    }
    const entries = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
    const slots = this.slots();
    const missingKeys = [...slots.keys()].filter((key) => !entries.has(key));
    const unexpectedKeys = [...entries.keys()].filter((key) => !slots.has(key));
    const mismatches: string[] = [];
    for (const [key, slot] of slots) {
      const value = entries.get(key);
      if (value === undefined) continue;
      if (!(value instanceof Tensor)) throw invalidType(`stateDict['${key}']`, 'a Tensor', value);
      if (!sameShape(value.shape, slot.current.shape)) {
        mismatches.push(`size mismatch for ${key}: copying a param with shape [${value.shape.join(', ')}] from checkpoint, ` +
          `the shape in current model is [${slot.current.shape.join(', ')}].`);
      }
    }
    const errors: string[] = [];
    if (strict && missingKeys.length > 0) errors.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length > 0) errors.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    errors.push(...mismatches);
    if (errors.length > 0) {
      const error = shapeError(`Error(s) in loading state_dict for ${this.constructor.name}:\n\t${errors.join('\n\t')}`);
      (error as SimdformerError).code = 'ERR_SIMDFORMER_STATE_DICT';
      throw error;
    }
    for (const [key, slot] of slots) {
      const value = entries.get(key);
      if (value !== undefined) slot.set(copyTensor(value, slot.current.dtype));
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Every parameter and buffer slot below this module, by dotted name. */
  private slots(prefix = ''): Map<string, { current: Tensor; set: (value: Tensor) => void }> {
    const result = new Map<string, { current: Tensor; set: (value: Tensor) => void }>();
    for (const [name, value] of this.parameters) {
      if (value !== null) result.set(prefix + name, { current: value, set: (v) => this.registerParameter(name, v) });
    }
    for (const [name, value] of this.buffers) {
      if (value !== null) result.set(prefix + name, { current: value, set: (v) => this.registerBuffer(name, v) });
    }
    for (const [name, module] of this.modules) {
      if (module !== null) for (const [key, slot] of module.slots(`${prefix}${name}.`)) result.set(key, slot);
    }
    return result;
  }

  /** A deep copy: same options, copies of every parameter and buffer (PyTorch's copy.deepcopy of a layer). */
  abstract clone(): Module;

  /** Copies this module's parameters and buffers into `target` (same structure). */
  protected copyStateInto<M extends Module>(target: M): M {
    target.loadStateDict(this.stateDict());
    return target;
  }
}

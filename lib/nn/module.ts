/**
 * Module: parameters, buffers and submodules with PyTorch's names, so a
 * state_dict saved by PyTorch loads by the same keys. Inference only.
 */
import { invalidType, shapeError, SimdformerError } from '../errors';
import { Tensor } from '../tensor';
import { forgetNativeHandles, LinearWeightRows, packLinearWeights, whenPacked } from './handles';

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/**
 * A parameter not yet materialised: its shape and how to make it. Fresh
 * modules initialise their parameters lazily, on first read, so building a
 * model whose weights are then loaded costs nothing. Each initialiser draws
 * from its own generator seeded at construction, so values do not depend on
 * the order parameters are first read.
 */
export class LazyTensor {
  constructor(readonly shape: readonly number[], readonly make: () => Tensor) {}
}

type Slot = Tensor | LazyTensor | null;

function materialise(slot: Slot): Tensor | null {
  return slot instanceof LazyTensor ? slot.make() : slot;
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

interface SlotInfo {
  value: Tensor | LazyTensor;
  shape: readonly number[];
  dtype: Tensor['dtype'];
  set: (value: Tensor | LazyTensor) => void;
}

export abstract class Module {
  private readonly parameters = new Map<string, Slot>();
  private readonly buffers = new Map<string, Slot>();
  private readonly modules = new Map<string, Module | null>();

  /** Always false: simdformer runs inference only (dropout is the identity). */
  readonly training = false;

  /** Registers (or replaces) a parameter under PyTorch's name; null keeps the slot empty, like PyTorch's None. */
  protected registerParameter(name: string, value: Slot): void {
    if (value instanceof Tensor) forgetNativeHandles(value);
    this.parameters.set(name, value);
    weightsVersion++;
  }

  protected registerBuffer(name: string, value: Slot): void {
    if (value instanceof Tensor) forgetNativeHandles(value);
    this.buffers.set(name, value);
    weightsVersion++;
  }

  protected registerModule<M extends Module | null>(name: string, module: M): M {
    this.modules.set(name, module);
    return module;
  }

  protected parameter(name: string): Tensor | null {
    return this.read(this.parameters, name);
  }

  protected buffer(name: string): Tensor | null {
    return this.read(this.buffers, name);
  }

  /** The parameter if it holds a tensor already; null when empty or not yet made (never materialises). */
  protected loadedParameter(name: string): Tensor | null {
    const slot = this.parameters.get(name) ?? null;
    return slot instanceof Tensor ? slot : null;
  }

  /**
   * The Linear weights (or row slices of them) this module's own forward
   * multiplies by, among its loaded parameters (loadedParameter): packed
   * ahead of the first forward by loadStateDict. Children report their own.
   */
  protected linearWeightRows(): LinearWeightRows[] {
    return [];
  }

  /** Whether a parameter slot is filled (without materialising it). */
  protected hasParameter(name: string): boolean {
    return (this.parameters.get(name) ?? null) !== null;
  }

  private read(slots: Map<string, Slot>, name: string): Tensor | null {
    const slot = slots.get(name) ?? null;
    if (!(slot instanceof LazyTensor)) return slot;
    const tensor = materialise(slot)!;
    slots.set(name, tensor);  // the same values as if made at construction: no version bump
    return tensor;
  }

  /** Child modules in registration order. */
  children(): Module[] {
    return [...this.modules.values()].filter((m): m is Module => m !== null);
  }

  /** Parameters by dotted name (`layers.0.self_attn.in_proj_weight`), in PyTorch's order. */
  namedParameters(prefix = ''): Map<string, Tensor> {
    const result = new Map<string, Tensor>();
    for (const name of this.parameters.keys()) {
      const value = this.parameter(name);
      if (value !== null) result.set(prefix + name, value);
    }
    for (const [name, module] of this.modules) {
      if (module !== null) for (const [key, value] of module.namedParameters(`${prefix}${name}.`)) result.set(key, value);
    }
    return result;
  }

  /** Parameters and buffers by dotted name, in PyTorch's state_dict order (own parameters, own buffers, then children). */
  stateDict(prefix = ''): Map<string, Tensor> {
    const result = new Map<string, Tensor>();
    for (const name of this.parameters.keys()) {
      const value = this.parameter(name);
      if (value !== null) result.set(prefix + name, value);
    }
    for (const name of this.buffers.keys()) {
      const value = this.buffer(name);
      if (value !== null) result.set(prefix + name, value);
    }
    for (const [name, module] of this.modules) {
      if (module !== null) for (const [key, value] of module.stateDict(`${prefix}${name}.`)) result.set(key, value);
    }
    return result;
  }

  /**
   * Copies tensors from `stateDict` into this module's parameters and
   * buffers. With strict (the default), missing and unexpected keys are
   * errors; a shape mismatch always is. All problems are reported in one
   * error, worded as PyTorch words them. With `assign` (PyTorch's
   * `assign=True`), the module takes the given tensors themselves instead of
   * copies (a tensor of another dtype is still converted): loading a file
   * then costs no second copy, and later changes to those tensors reach the
   * module after its next loadStateDict.
   *
   * The Linear weights of this module and its children are then packed for
   * the GEMM (in parallel, on the native threads), so that forwards run at
   * full speed; weights left to their lazy initialisation are packed by the
   * first forward that reads them. Weights taken with `assign` from a file
   * that loadSafetensors mapped are packed in the background instead, so
   * this returns before they are packed: a forward meanwhile runs on them as
   * they are, with the same result, more slowly (whenPacked() tells when
   * they are). Writing to such a tensor before then races the packing: the
   * module may see either value.
   */
  loadStateDict(stateDict: StateDict, options: { strict?: boolean; assign?: boolean } = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const assign = options.assign ?? false;
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
      if (!sameShape(value.shape, slot.shape)) {
        mismatches.push(`size mismatch for ${key}: copying a param with shape [${value.shape.join(', ')}] from checkpoint, ` +
          `the shape in current model is [${slot.shape.join(', ')}].`);
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
      if (value === undefined) continue;
      slot.set(assign && value.dtype === slot.dtype ? value : copyTensor(value, slot.dtype));
    }
    packLinearWeights(this.modulesBelow().flatMap((module) => module.linearWeightRows()));
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Settles once the Linear weights of this module and its children that
   * loadStateDict packs in the background are packed (at once if none is
   * being packed): forwards from then on run at full speed. Rejects with
   * ERR_SIMDFORMER_OUT_OF_MEMORY if the packed copies' memory could not be
   * had; forwards then go on reading the weights as they are.
   */
  whenPacked(): Promise<void> {
    return whenPacked(this.modulesBelow().flatMap((module) => module.linearWeightRows()));
  }

  /** This module and every module below it. */
  private modulesBelow(): Module[] {
    return [this, ...this.children().flatMap((child) => child.modulesBelow())];
  }

  /** Every parameter and buffer slot below this module, by dotted name (lazy ones stay unmade). */
  private slots(prefix = ''): Map<string, SlotInfo> {
    const result = new Map<string, SlotInfo>();
    const info = (value: Tensor | LazyTensor, set: (v: Tensor | LazyTensor) => void): SlotInfo =>
      ({ value, shape: value.shape, dtype: value instanceof LazyTensor ? 'float32' : value.dtype, set });
    for (const [name, value] of this.parameters) {
      if (value !== null) result.set(prefix + name, info(value, (v) => this.registerParameter(name, v)));
    }
    for (const [name, value] of this.buffers) {
      if (value !== null) result.set(prefix + name, info(value, (v) => this.registerBuffer(name, v)));
    }
    for (const [name, module] of this.modules) {
      if (module !== null) for (const [key, slot] of module.slots(`${prefix}${name}.`)) result.set(key, slot);
    }
    return result;
  }

  /** A deep copy: same options, copies of every parameter and buffer (PyTorch's copy.deepcopy of a layer). */
  abstract clone(): Module;

  /**
   * Copies this module's parameters and buffers into `target`, a module of
   * the same structure: tensors are copied, parameters not yet made stay
   * lazy (they will make the same values).
   */
  protected copyStateInto<M extends Module>(target: M): M {
    const targets = target.slots();
    for (const [key, slot] of this.slots()) {
      const value = slot.value;
      targets.get(key)!.set(value instanceof LazyTensor ? value : copyTensor(value, value.dtype));
    }
    return target;
  }
}

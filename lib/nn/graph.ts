/**
 * How a module's forward reaches native code. Modules describe their
 * computation against a Graph: values are flat arrays, steps are native ops
 * (binding.d.ts PlanStep). A PlanGraph records the steps and compiles them
 * into one native Plan, cached per input signature, so a whole forward (an
 * encoder stack, a full Transformer) is one native job with no JavaScript
 * between steps. An EagerGraph runs each step at once; it exists only for
 * user-supplied activation functions, which must run in JavaScript.
 */
import type { ActivationName, PackedB, Parameter, Plan, PlanStep, PlanValue } from '../../binding';
import { binding } from '../binding';
import { invalidType } from '../errors';
import { Tensor } from '../tensor';
import { currentWeightsVersion } from './module';

export interface Value {
  readonly id: number;
  readonly count: number;
}

/** A graph output and the shape the caller gets it back in. */
export interface ShapedValue {
  value: Value;
  shape: readonly number[];
}

type StepSpec = PlanStep extends infer S ? (S extends PlanStep ? Omit<S, 'inputs' | 'output'> : never) : never;

function valueType(tensor: Tensor): PlanValue['type'] {
  return tensor.dtype === 'float32' ? 'float32' : tensor.dtype === 'bool' ? 'bool' : 'int64';
}

export abstract class Graph {
  /** A value holding a forward input. */
  abstract input(tensor: Tensor): Value;

  /** A user function applied in JavaScript (EagerGraph only). */
  abstract custom(x: Value, shape: readonly number[], fn: (input: Tensor) => Tensor): Value;

  protected abstract emit(spec: StepSpec, inputs: readonly (Value | null)[], count: number, secondCount?: number): Value[];

  /** [rows, k] -> [rows, n]: act(x · Wᵀ + bias) */
  linear(x: Value, weight: PackedB, bias: Parameter | null, activation: ActivationName = 'none'): Value {
    return this.emit({ kind: 'linear', weight, bias, activation }, [x], (x.count / weight.k) * weight.n)[0];
  }

  layerNorm(x: Value, n: number, eps: number, weight: Parameter | null, bias: Parameter | null): Value {
    return this.emit({ kind: 'layerNorm', n, eps, weight, bias }, [x], x.count)[0];
  }

  /** a + b, with b [outer, inner] broadcast over the middle dim of a [outer, mid, inner]. */
  add(a: Value, b: Value, outer = 1, mid = 1, inner = a.count): Value {
    return this.emit({ kind: 'add', outer, mid, inner }, [a, b], a.count)[0];
  }

  additiveMask(x: Value): Value {
    return this.emit({ kind: 'additiveMask' }, [x], x.count)[0];
  }

  attention(spec: Omit<Extract<StepSpec, { kind: 'attention' }>, 'weights'>, q: Value, k: Value, v: Value,
    attnMask: Value | null, keyPaddingMask: Value | null, outCount: number, needWeights: boolean): { output: Value; weights: Value | null } {
    const weightsCount = needWeights ? spec.batch * spec.heads * spec.tgtLen * spec.srcLen : undefined;
    const [output, weights] = this.emit(spec as StepSpec, [q, k, v, attnMask, keyPaddingMask], outCount, weightsCount);
    return { output, weights: weights ?? null };
  }

  averageHeads(x: Value, batch: number, heads: number, size: number): Value {
    return this.emit({ kind: 'averageHeads', batch, heads, size }, [x], batch * size)[0];
  }

  appendRow(x: Value, outer: number, rows: number, width: number, row: Parameter | null): Value {
    return this.emit({ kind: 'appendRow', outer, rows, width, row }, [x], outer * (rows + 1) * width)[0];
  }

  padColumn(x: Value, rows: number, cols: number): Value {
    return this.emit({ kind: 'padColumn', rows, cols }, [x], rows * (cols + 1))[0];
  }

  embedding(indices: Value, num: number, dim: number, table: Parameter): Value {
    return this.emit({ kind: 'embedding', num, dim, table }, [indices], indices.count * dim)[0];
  }
}

/** Records steps for one native Plan. */
export class PlanGraph extends Graph {
  private readonly values: PlanValue[] = [];
  private readonly steps: PlanStep[] = [];
  private readonly inputs: number[] = [];

  input(tensor: Tensor): Value {
    const id = this.values.push({ type: valueType(tensor), count: tensor.numel }) - 1;
    this.inputs.push(id);
    return { id, count: tensor.numel };
  }

  custom(): Value {
    throw new Error('PlanGraph cannot run JavaScript functions; use an EagerGraph');
  }

  protected emit(spec: StepSpec, inputs: readonly (Value | null)[], count: number, secondCount?: number): Value[] {
    const output = this.values.push({ type: 'float32', count }) - 1;
    const outputs: Value[] = [{ id: output, count }];
    const step = { ...spec, inputs: inputs.map((v) => (v === null ? -1 : v.id)), output } as PlanStep & { weights?: number };
    if (secondCount !== undefined) {
      step.weights = this.values.push({ type: 'float32', count: secondCount }) - 1;
      outputs.push({ id: step.weights, count: secondCount });
    }
    this.steps.push(step as PlanStep);
    return outputs;
  }

  compile(outputs: readonly Value[]): Plan {
    return binding.createPlan({ values: this.values, inputs: this.inputs, steps: this.steps, outputs: outputs.map((v) => v.id) });
  }
}

/** Runs every step as it is described (one native call each), keeping values in JavaScript. */
export class EagerGraph extends Graph {
  private readonly arrays: ArrayBufferView[] = [];
  private readonly types: PlanValue['type'][] = [];

  input(tensor: Tensor): Value {
    const id = this.arrays.push(tensor.data) - 1;
    this.types.push(valueType(tensor));
    return { id, count: tensor.numel };
  }

  custom(x: Value, shape: readonly number[], fn: (input: Tensor) => Tensor): Value {
    const result = fn(new Tensor(this.arrays[x.id] as Float32Array, shape));
    if (!(result instanceof Tensor) || result.dtype !== 'float32' || result.numel !== x.count) {
      throw new TypeError(`activation function must return a float32 Tensor of ${x.count} elements`);
    }
    const id = this.arrays.push(result.data) - 1;
    this.types.push('float32');
    return { id, count: x.count };
  }

  protected emit(spec: StepSpec, inputs: readonly (Value | null)[], count: number, secondCount?: number): Value[] {
    const present = inputs.filter((v): v is Value => v !== null);
    const values: PlanValue[] = present.map((v) => ({ type: this.types[v.id], count: v.count }));
    const local = (v: Value | null) => (v === null ? -1 : present.indexOf(v));
    const output = values.push({ type: 'float32', count }) - 1;
    const step = { ...spec, inputs: inputs.map(local), output } as PlanStep & { weights?: number };
    const outputIds = [output];
    if (secondCount !== undefined) {
      step.weights = values.push({ type: 'float32', count: secondCount }) - 1;
      outputIds.push(step.weights);
    }
    const plan = binding.createPlan({ values, inputs: present.map((_, i) => i), steps: [step as PlanStep], outputs: outputIds });
    return plan.run(present.map((v) => this.arrays[v.id])).map((array, i) => {
      const id = this.arrays.push(array) - 1;
      this.types.push('float32');
      return { id, count: i === 0 ? count : secondCount! };
    });
  }

  tensor(output: ShapedValue): Tensor {
    return new Tensor(this.arrays[output.value.id] as Float32Array, output.shape);
  }
}

/** Options every async forward takes besides its own. */
export interface ForwardOptions {
  /** aborts the call: rejected with an AbortError before it starts, or at the next step while it runs */
  signal?: AbortSignal;
}

/** Describes a forward: registers `inputs` on the graph, returns the outputs with their shapes. */
export type Build = (graph: Graph, inputs: Value[]) => ShapedValue[];

/** A checked forward call: its plan signature, its input tensors in graph order, and how to build it. */
export interface PreparedForward {
  signature: string;
  inputs: Tensor[];
  build: Build;
}

interface CachedPlan {
  plan: Plan;
  shapes: (readonly number[])[];
  version: number;
}

const MAX_CACHED_PLANS = 16;

/**
 * Runs forwards for one module: compiles `build` into a native Plan once per
 * input signature (shapes, dtypes, flags) and reuses it while the weights
 * stay the same; eager when the module has JavaScript activations.
 */
export class ForwardRunner {
  private readonly plans = new Map<string, CachedPlan>();

  private planFor(signature: string, inputs: readonly Tensor[], build: Build): CachedPlan {
    const version = currentWeightsVersion();
    const cached = this.plans.get(signature);
    if (cached !== undefined && cached.version === version) {
      // Most recently used last, so the oldest is evicted first.
      this.plans.delete(signature);
      this.plans.set(signature, cached);
      return cached;
    }
    const graph = new PlanGraph();
    const outputs = build(graph, inputs.map((t) => graph.input(t)));
    const entry = { plan: graph.compile(outputs.map((o) => o.value)), shapes: outputs.map((o) => o.shape), version };
    this.plans.delete(signature);
    this.plans.set(signature, entry);
    if (this.plans.size > MAX_CACHED_PLANS) this.plans.delete(this.plans.keys().next().value as string);
    return entry;
  }

  runSync({ signature, inputs, build }: PreparedForward, eager: boolean): Tensor[] {
    if (eager) {
      const graph = new EagerGraph();
      const outputs = build(graph, inputs.map((t) => graph.input(t)));
      return outputs.map((o) => graph.tensor(o));
    }
    const { plan, shapes } = this.planFor(signature, inputs, build);
    return plan.run(inputs.map((t) => t.data)).map((data, i) => new Tensor(data, shapes[i]));
  }

  /**
   * Runs off the JavaScript thread. An aborted `signal` rejects with an
   * AbortError: before the call, with no work done; while queued or running,
   * at the next step.
   */
  async run(call: PreparedForward, eager: boolean, signal?: AbortSignal): Promise<Tensor[]> {
    const { signature, inputs, build } = call;
    checkSignal(signal);
    if (signal?.aborted) throw abortError(signal);
    if (eager) return this.runSync(call, eager);
    const { plan, shapes } = this.planFor(signature, inputs, build);
    const pending = plan.runAsync(inputs.map((t) => t.data));
    const cancel = () => pending.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      const outputs = await pending;
      return outputs.map((data, i) => new Tensor(data, shapes[i]));
    } catch (error) {
      if ((error as { name?: string }).name === 'AbortError' && signal) (error as Error).cause = signal.reason;
      throw error;
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
  }
}

function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
}

/** What Node's own APIs reject with on abort: name 'AbortError', code 'ABORT_ERR', the signal's reason as cause. */
export function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** A signature fragment for an optional tensor: its dtype and shape, or '-'. */
export function describeInput(tensor: Tensor | null | undefined): string {
  return tensor ? `${tensor.dtype}[${tensor.shape.join('x')}]` : '-';
}

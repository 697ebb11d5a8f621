/** Argument checks shared by the modules, worded as PyTorch words them. */
import { dtypeError, invalidType, invalidValue } from '../errors';
import { Tensor } from '../tensor';

export function checkTensor(name: string, value: unknown): Tensor {
  if (!(value instanceof Tensor)) throw invalidType(name, 'a Tensor', value);
  return value;
}

export function checkFloatTensor(name: string, value: unknown): Tensor<'float32'> {
  const t = checkTensor(name, value);
  if (t.dtype !== 'float32') throw dtypeError(`Expected a float32 Tensor for ${name} but received Tensor of shape [${t.shape.join(', ')}] and dtype ${t.dtype}`);
  return t as Tensor<'float32'>;
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidType(name, 'a positive integer', value);
  if (!Number.isSafeInteger(value) || value < 1) throw invalidValue(name, 'a positive integer', value);
  return value;
}

export function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidType(name, 'a boolean', value);
  return value;
}

export function checkNumber(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalidType(name, 'a number', value);
  return value;
}

/** Dropout probability: PyTorch's check, accepted and unused (inference only). */
export function checkDropout(name: string, value: unknown): number {
  const p = checkNumber(name, value, 0.1);
  if (p < 0 || p > 1) throw invalidValue(name, 'a dropout probability between 0 and 1', value);
  return p;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

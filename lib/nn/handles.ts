/**
 * Native copies of weights (packed Linear weights, parameters), made once per
 * tensor (and slice) and shared by every plan that uses them. A tensor that
 * is (re)registered in a module forgets its copies, so a forward after
 * loadStateDict always sees the tensor's current values, `assign` included.
 */
import type { PackedB, Parameter } from '../../binding';
import { Tensor } from '../tensor';

const nativeHandles = new WeakMap<Tensor, Map<string, PackedB | Parameter>>();

export function cachedHandle<H extends PackedB | Parameter>(tensor: Tensor, key: string, make: () => H): H {
  let handles = nativeHandles.get(tensor);
  if (handles === undefined) nativeHandles.set(tensor, (handles = new Map()));
  let handle = handles.get(key) as H | undefined;
  if (handle === undefined) handles.set(key, (handle = make()));
  return handle;
}

export function forgetNativeHandles(tensor: Tensor): void {
  nativeHandles.delete(tensor);
}

/** torch.nn.ModuleList: children named 0, 1, 2, ... */
import { Module } from './module';

export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[];

  constructor(modules: readonly M[] = []) {
    super();
    this.items = [...modules];
    this.items.forEach((module, i) => this.registerModule(String(i), module));
  }

  get length(): number {
    return this.items.length;
  }

  at(index: number): M {
    return this.items[index];
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  clone(): ModuleList<M> {
    return new ModuleList(this.items.map((m) => m.clone() as M));
  }
}

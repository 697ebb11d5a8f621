// Shared by the tests: the package root and a way to run a snippet of
// JavaScript in a fresh node process (the ISA and thread count are fixed when
// the addon loads, so tests of that need their own process).
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Generator } from '../lib/tensor';

export const root = path.resolve(__dirname, '..');

export interface NodeRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `code` with `node -e` in the package root, with extra environment variables. */
export function runNode(code: string, env: Record<string, string | undefined> = {}, command: string[] = []): NodeRun {
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete merged[key];
  const argv = [...command, process.execPath, '-e', code];
  const result = spawnSync(argv[0], argv.slice(1), { cwd: root, env: merged as NodeJS.ProcessEnv, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Code that loads the raw binding the way lib/binding.ts does. */
export const loadBinding = `require('node-gyp-build')(${JSON.stringify(root)})`;

/** Expects `fn` to throw an error of class `type` with `code` and a message matching `message`. */
export function expectError(fn: () => unknown, type: new (...args: never[]) => Error, code: string, message: string | RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  // Compared by name: errors made by native code come from Node's realm, not jest's sandbox.
  expect(thrown).toBeDefined();
  expect((thrown as Error).constructor.name).toBe(type.name);
  expect((thrown as { code?: string }).code).toBe(code);
  if (typeof message === 'string') expect((thrown as Error).message).toBe(message);
  else expect((thrown as Error).message).toMatch(message);
}

/** A seeded uniform [0, 1) source (the library's Generator), so a failing case reproduces. */
export function random(seed: number): () => number {
  const generator = new Generator(seed);
  return () => generator.nextFloat();
}

/** count floats uniform in [low, high). */
export function uniform(rng: () => number, count: number, low = -1, high = 1): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; ++i) out[i] = low + (high - low) * rng();
  return out;
}

/**
 * Loads the native addon: prebuilds/<platform>-<arch>/ first, then
 * build/Release/ (node-gyp-build's order). The binding's type is the one
 * contract in binding.d.ts; nothing else in lib/ touches the .node file.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Binding } from '../binding';
import { nativeLoadError } from './errors';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild: (root: string) => unknown = require('node-gyp-build');

/** The package root: the nearest folder above this file whose package.json is simdformer's. */
function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'simdformer') return dir;
    if (path.dirname(dir) === dir) throw new Error(`simdformer: no package.json above ${__dirname}`);
  }
}

function load(): Binding {
  const root = packageRoot();
  try {
    return nodeGypBuild(root) as Binding;
  } catch (error) {
    // An ISA forced by SIMDFORMER_ISA that this CPU cannot run is the addon's
    // own error: pass it through unchanged.
    if ((error as { code?: string }).code === 'ERR_SIMDFORMER_UNSUPPORTED_ISA') throw error;
    const tried = [
      path.join(root, 'prebuilds', `${process.platform}-${process.arch}`),
      path.join(root, 'build', 'Release'),
    ];
    throw nativeLoadError(
      `simdformer: could not load the native addon (${(error as Error).message}).\n` +
        `Looked in:\n  ${tried.join('\n  ')}\n` +
        'Build it from source with `npm run build:native` (needs CMake >= 3.19 and a C++17 compiler), ' +
        'or reinstall with `npm install simdformer --build-from-source`.',
      error,
    );
  }
}

export const binding: Binding = load();

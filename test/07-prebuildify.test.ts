// `npm run prebuildify` (prebuildify driving cmake-js through
// scripts/cmake-js-shim.js) produces prebuilds/<platform>-<arch>/*.node, and
// node-gyp-build loads it from a package folder that has no build/ at all;
// before that, loading from the bare folder fails with a useful error.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { root } from './helpers';

test('npm run prebuildify produces a prebuilt binary that loads', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simdformer-prebuildify-'));
  try {
    for (const entry of ['package.json', 'CMakeLists.txt', 'binding.d.ts', 'native', 'scripts']) {
      fs.cpSync(path.join(root, entry), path.join(dir, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    // The loader, compiled to JS beside the copy.
    fs.mkdirSync(path.join(dir, 'lib'));
    for (const file of ['binding', 'errors']) {
      const source = fs.readFileSync(path.join(root, 'lib', `${file}.ts`), 'utf8');
      const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } });
      fs.writeFileSync(path.join(dir, 'lib', `${file}.js`), js.outputText);
    }

    // Before any build, loading fails with where it looked and how to build.
    const missing = spawnSync(process.execPath, ['-e', `
      try { require('./lib/binding') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`],
      { cwd: dir, encoding: 'utf8' });
    const loadError = JSON.parse(missing.stdout);
    expect(loadError.code).toBe('ERR_SIMDFORMER_NATIVE_LOAD');
    expect(loadError.message).toContain(path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`));
    expect(loadError.message).toContain(path.join(dir, 'build', 'Release'));
    expect(loadError.message).toContain('npm run build:native');
    const build = spawnSync('npm', ['run', 'prebuildify'], { cwd: dir, encoding: 'utf8' });
    expect(build.status).toBe(0);

    const platformDir = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
    const binaries = fs.readdirSync(platformDir).filter((f) => f.endsWith('.node'));
    expect(binaries.length).toBe(1);
    fs.rmSync(path.join(dir, 'build'), { recursive: true, force: true });

    const check = spawnSync(process.execPath, ['-e', `
      const b = require('node-gyp-build')(${JSON.stringify(dir)});
      const c = new Float32Array(1);
      b.gemm({ batch: 1, m: 1, n: 1, k: 2, a: new Float32Array([2, 3]), aRowStride: 2, aColStride: 1,
               b: new Float32Array([4, 5]), bRowStride: 1, bColStride: 1, c, ldc: 1, cBatchStride: 0 });
      console.log(JSON.stringify({ path: require('node-gyp-build').resolve(${JSON.stringify(dir)}), c: c[0], isa: b.info().isa }));
    `], { cwd: dir, encoding: 'utf8' });
    expect(check.stderr).toBe('');
    const result = JSON.parse(check.stdout);
    expect(result.path).toBe(path.join(platformDir, binaries[0]));
    expect(result.c).toBe(23);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 600000);

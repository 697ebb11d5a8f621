#!/usr/bin/env node
// `npm test`: the whole jest suite with the ISA chosen at load (the best this
// machine has, or SIMDFORMER_ISA), then the PyTorch parity suites again under
// every other ISA this machine can run. The ISA is fixed when the addon loads,
// so each of those runs is its own jest process with SIMDFORMER_ISA set.
// Arguments are passed to jest; with arguments, only that one run is made.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const jestBin = require.resolve('jest/bin/jest', { paths: [root] });

function runJest(args, env) {
  const result = spawnSync(process.execPath, [jestBin, ...args], { cwd: root, stdio: 'inherit', env });
  return result.status === 0;
}

const args = process.argv.slice(2);
let ok = runJest(args, process.env);
if (args.length === 0) {
  const { isa, availableIsas } = require('node-gyp-build')(root).info();
  for (const other of availableIsas.filter((name) => name !== isa)) {
    console.log(`\n=== parity suites with SIMDFORMER_ISA=${other} ===`);
    ok = runJest(['--testPathPattern', 'parity'], { ...process.env, SIMDFORMER_ISA: other }) && ok;
  }
}
process.exit(ok ? 0 : 1);

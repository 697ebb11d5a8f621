#!/usr/bin/env node
// prebuildify drives node-gyp; simdformer builds with CMake. prebuildify calls
// this file in node-gyp's place (`--node-gyp scripts/cmake-js-shim.js`) with
// node-gyp's arguments (`rebuild --target=... --arch=...`). We build a Node-API
// binary, so the target version does not matter: run cmake-js and leave the
// result in build/Release/, where prebuildify collects it.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const arch = (process.argv.find((a) => a.startsWith('--arch=')) || '').slice('--arch='.length);
const args = [cmakeJs, 'rebuild', '--runtime=node'];
if (arch) args.push(`--arch=${arch}`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);

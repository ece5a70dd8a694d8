#!/usr/bin/env node
// Builds the MPI addon when Open MPI is installed. Never fails the install (unless
// --strict): without MPI, or when the build fails, the reason is written to
// build/kiln-mpi-build.json and `loadMpi()` reports it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const report = (status) => {
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(join(root, 'build', 'kiln-mpi-build.json'), `${JSON.stringify(status, null, 2)}\n`);
};

const { flags } = require('./mpi-config.cjs');
if (process.env.KILN_SKIP_MPI === '1' || flags('libs') === null) {
  const reason = process.env.KILN_SKIP_MPI === '1' ? 'KILN_SKIP_MPI=1' : 'Open MPI not found (no mpicxx, no pkg-config ompi); install libopenmpi-dev';
  report({ built: false, reason });
  console.log(`@kiln/mpi: not built: ${reason}`);
  process.exit(strict ? 1 : 0);
}

const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const args = [nodeGyp, 'rebuild', '--jobs', 'max'];
// Build against the headers installed with this Node, offline (node-gyp would download them).
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
if (result.status !== 0) {
  const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-20).join('\n');
  report({ built: false, reason: `node-gyp failed (exit ${result.status})`, log: tail });
  console.log(`@kiln/mpi: build failed; MPI stays unavailable.\n${tail}`);
  process.exit(strict ? 1 : 0);
}
report({ built: true });
console.log('@kiln/mpi: built build/Release/kiln_mpi.node');

#!/usr/bin/env node
// `pnpm lint` entry: prints each boundary violation and exits 1 if there is any.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBoundaries, direction } from './boundaries.mjs';

const root = process.argv[2] ? path.resolve(process.argv[2]) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const problems = checkBoundaries(root);
for (const p of problems) console.error(p);
if (problems.length > 0) {
  console.error(`\n${problems.length} boundary violation(s); the rule: ${direction()}, packages imported by name only.`);
  process.exit(1);
}
console.log('package boundaries: ok');

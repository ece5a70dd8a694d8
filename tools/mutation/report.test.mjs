import { describe, expect, it } from 'vitest';
import { MODULES } from './modules.mjs';
import { equivalentReason, renderMarkdown, summarize, TARGET } from './report.mjs';
import { functionLines, mutatePatterns } from './run.mjs';

const mutant = (status, line, mutatorName = 'EqualityOperator', replacement = 'a <= b') => ({
  status,
  mutatorName,
  replacement,
  location: { start: { line, column: 1 }, end: { line, column: 9 } },
});

describe('summarize', () => {
  it('counts statuses and scores (killed + timeout) over the valid mutants', () => {
    const s = summarize({
      files: {
        'src/b.ts': { mutants: [mutant('Killed', 1), mutant('Survived', 7, 'StringLiteral', '""'), mutant('CompileError', 2)] },
        'src/a.ts': { mutants: [mutant('Timeout', 3), mutant('NoCoverage', 4), mutant('Killed', 5), mutant('Ignored', 6)] },
      },
    });
    expect({ ...s, files: undefined, survivors: undefined }).toEqual({
      killed: 2,
      timeout: 1,
      survived: 1,
      noCoverage: 1,
      compileError: 1,
      runtimeError: 0,
      ignored: 1,
      score: 60,
      files: undefined,
      survivors: undefined,
    });
    expect(s.files['src/a.ts']).toEqual({ killed: 1, timeout: 1, survived: 0, noCoverage: 1, score: 66.7 });
    expect(s.survivors).toEqual([
      { file: 'src/a.ts', line: 4, mutator: 'EqualityOperator', replacement: 'a <= b', status: 'noCoverage' },
      { file: 'src/b.ts', line: 7, mutator: 'StringLiteral', replacement: '""', status: 'survived' },
    ]);
    expect(() => summarize({ files: { x: { mutants: [mutant('Pending', 1)] } } })).toThrow(/unknown mutant status Pending/);
  });
});

describe('renderMarkdown', () => {
  it('has one row per module, marks scores below the target, and lists survivors', () => {
    const [first, second] = MODULES;
    const md = renderMarkdown({
      stryker: '9.6.1',
      modules: {
        [first.name]: {
          killed: 90,
          timeout: 0,
          survived: 10,
          noCoverage: 0,
          compileError: 3,
          score: 90,
          seconds: 120,
          survivors: [],
          run: { commit: 'abc1234', dirty: true, date: '2026-12-03', concurrency: 1, timeoutMS: 15000, incremental: true },
        },
        [second.name]: {
          killed: 70,
          timeout: 0,
          survived: 30,
          noCoverage: 0,
          compileError: 0,
          score: 70,
          seconds: 60,
          run: { commit: 'def5678', date: '2026-12-02' },
          survivors: [{ file: 'src/x.ts', line: 3, mutator: 'BlockStatement', replacement: '{}', status: 'survived' }],
        },
      },
    });
    expect(md).toContain(
      `| ${first.name} | ${first.package} | 90 | 0 | 10 | 0 | 3 | **90%** yes | 2.0 | abc1234+ 2026-12-03, c=1, timeout 15 s, incremental |`,
    );
    expect(md).toContain(`| ${second.name} | ${second.package} | 70 | 0 | 30 | 0 | 0 | **70%** **no** | 1.0 | def5678 2026-12-02 |`);
    expect(md).toContain(`target ≥ ${TARGET}%`);
    expect(md).toContain(`- \`${second.package}/src/x.ts:3\` BlockStatement: \`{}\``);
    for (const m of MODULES.slice(2)) expect(md).toContain(`| ${m.name} | ${m.package} | — | — | — | — | — | not run | | |`);
  });
});

describe('equivalent mutants', () => {
  it('are marked only where file, line and replacement all match, and still count', () => {
    const module = { name: 'm', package: 'packages/x', mutate: ['src/x.ts'], tests: ['src/x.test.ts'], why: 'w', equivalent: [{ at: 'src/x.ts:3', replacement: 'i <= n', why: 'past the end' }] };
    const survivor = (line, replacement) => ({ file: 'src/x.ts', line, mutator: 'EqualityOperator', replacement, status: 'survived' });
    expect(equivalentReason(module, survivor(3, 'i <= n'))).toBe('past the end');
    expect(equivalentReason(module, survivor(4, 'i <= n'))).toBeUndefined();
    expect(equivalentReason(module, survivor(3, 'i >= n'))).toBeUndefined();
    const md = renderMarkdown(
      {
        stryker: '9.6.1',
        modules: { m: { killed: 8, timeout: 0, survived: 2, noCoverage: 0, compileError: 0, score: 80, survivors: [survivor(3, 'i <= n'), survivor(9, 'i <= n')] } },
      },
      [module],
    );
    expect(md).toContain('2 surviving, 1 of them judged equivalent.');
    expect(md).toContain('- `packages/x/src/x.ts:3` EqualityOperator: `i <= n`: equivalent, past the end');
    expect(md).toContain('- `packages/x/src/x.ts:9` EqualityOperator: `i <= n`\n');
    expect(md).toContain('| m | packages/x | 8 | 0 | 2 | 0 | 0 | **80%** yes |');
  });
});

describe('run.mjs mutate patterns', () => {
  it('turns { file, functions } into the named functions’ line ranges', () => {
    const source = ['import x from "y";', '', 'export function tokenMatches(a, b) {', '  if (a) {', '    return b;', '  }', '  return false;', '}', 'const after = 1;'].join('\n');
    expect(functionLines(source, 'tokenMatches')).toEqual([3, 8]);
    expect(() => functionLines(source, 'missing', 'src/server.ts')).toThrow("src/server.ts: no top-level function 'missing' to mutate");
    const module = { package: 'apps/eval-server', mutate: ['src/schemas.ts', { file: 'src/server.ts', functions: ['tokenMatches'] }] };
    expect(mutatePatterns(module, () => source)).toEqual(['src/schemas.ts', 'src/server.ts:3-8']);
  });

  it('every module names a package, code to mutate and its tests', () => {
    expect(new Set(MODULES.map((m) => m.name)).size).toBe(MODULES.length);
    for (const m of MODULES) {
      expect(m.package, m.name).toMatch(/^(packages|apps)\//);
      expect(m.mutate.length, m.name).toBeGreaterThan(0);
      expect(m.tests.length, m.name).toBeGreaterThan(0);
      expect(m.why, m.name).toBeTruthy();
    }
  });
});

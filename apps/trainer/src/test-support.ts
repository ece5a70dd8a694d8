/** Helpers for the CLI end-to-end tests: spawn the built `kiln` binary. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KILN_BIN = fileURLToPath(new URL('../bin/kiln.mjs', import.meta.url));

export interface KilnResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function tempDir(prefix = 'kiln-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function spawnKiln(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<KilnResult> } {
  const child = spawn(process.execPath, [KILN_BIN, ...args], {
    env: { ...process.env, KILN_BACKEND: 'cpu', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<KilnResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function kiln(args: string[], env: Record<string, string> = {}): Promise<KilnResult> {
  return spawnKiln(args, env).done;
}

export function countLines(path: string): number {
  if (!existsSync(path)) return 0;
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim()).length;
}

/** Resolves once `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

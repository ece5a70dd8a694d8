/** Entry of the `kiln` binary (bin/kiln.mjs imports this and exits with its code). */
import { runCli } from './cli/main.js';
import { commands, groups } from './commands/index.js';

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env }, commands, groups);
}

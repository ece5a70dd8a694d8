import { type BackendChoice, describeBackendChoice, initBackend } from '@kiln/tensor';
import type { CommandContext } from '../cli/command.js';

/** Brings up the best backend (KILN_BACKEND forces one) and says which, unless quiet. */
export async function startBackend(ctx: Pick<CommandContext, 'quiet' | 'stdout'>): Promise<BackendChoice> {
  const choice = await initBackend();
  if (!ctx.quiet) ctx.stdout.write(`${describeBackendChoice(choice)}\n`);
  return choice;
}

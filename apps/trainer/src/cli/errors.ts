/** Bad command line or config: the CLI prints it with a hint and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A subcommand whose library has not landed in this build; exit code 1. */
export class NotAvailableError extends Error {
  override name = 'NotAvailableError';
}

/** Exit codes of the `kiln` command. 130 follows the shell convention for SIGINT. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

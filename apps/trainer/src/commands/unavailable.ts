/**
 * A subcommand whose library has not landed in this build yet: it parses its flags like
 * every other command (so usage errors still exit 2) and then fails with exit code 1.
 */
import type { CommandSpec } from '../cli/command.js';
import { NotAvailableError } from '../cli/errors.js';
import type { Schema } from '../cli/schema.js';

export function unavailableCommand(path: string[], summary: string, pkg: string, schema: Schema = {}): CommandSpec {
  return {
    path,
    summary: `${summary} [not available yet]`,
    schema,
    async handler() {
      throw new NotAvailableError(`kiln ${path.join(' ')} is not available yet: it needs ${pkg}, which this build of @kiln/trainer does not include`);
    },
  };
}

/**
 * An error in what the caller gave (the data or the options), as opposed to a bug: no case
 * has the group attribute, fewer than two groups have enough cases, a bad option. The CLI
 * turns it into a usage error (exit 2) with the message as it is.
 */
export class LincoInputError extends Error {
  override name = 'LincoInputError';
}

/** True for a LincoInputError, also one thrown by another copy of this module. */
export function isLincoInputError(err: unknown): err is LincoInputError {
  return err instanceof LincoInputError || (err instanceof Error && err.name === 'LincoInputError');
}

/**
 * The eval server's bearer token for `--server`: `--token`, else KILN_EVAL_TOKEN (the
 * variable the server reads too), else KILN_TOKEN (the name `kiln` used to read; accepted
 * with a warning so that old scripts keep reporting).
 */
export const TOKEN_VARIABLE = 'KILN_EVAL_TOKEN';
export const OLD_TOKEN_VARIABLE = 'KILN_TOKEN';

export function resolveToken(flag: string | undefined, env: Record<string, string | undefined>): { token: string | undefined; warning?: string } {
  if (flag) return { token: flag };
  if (env[TOKEN_VARIABLE]) return { token: env[TOKEN_VARIABLE] };
  if (env[OLD_TOKEN_VARIABLE]) {
    return { token: env[OLD_TOKEN_VARIABLE], warning: `${OLD_TOKEN_VARIABLE} is read for compatibility; set ${TOKEN_VARIABLE} instead (the eval server reads it too)` };
  }
  return { token: undefined };
}

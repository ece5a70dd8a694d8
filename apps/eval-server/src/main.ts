/** `kiln-eval-server`: starts the server from flags and environment. */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DataFolder, DataFolderError, FILE_MODE } from './data-folder.js';
import { TokenError, allowedHosts, checkToken } from './security.js';
import { createServer } from './server.js';

/** The one environment variable for the token, read by `kiln` (apps/trainer) as well. */
export const TOKEN_VARIABLE = 'KILN_EVAL_TOKEN';
/** The name `kiln` used to read; still accepted, with a warning. */
export const OLD_TOKEN_VARIABLE = 'KILN_TOKEN';
/** Where a generated token is kept, inside the data folder. */
export const TOKEN_FILE = 'token';

const HELP = `kiln-eval-server — runs, metrics, evaluations and a dashboard for Kiln

Usage: kiln-eval-server [--host 127.0.0.1] [--port 8787] [--data-dir ./kiln-eval-data] [options]

  --host ADDRESS          address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --port N                0 picks a free port; the URL is printed on start
  --data-dir DIR          database and artifacts (created 0700, files 0600)
  --token TOKEN           bearer token for every write (or ${TOKEN_VARIABLE}); at least 16
                          characters. Without one, a token is generated into DIR/${TOKEN_FILE}
                          (mode 0600) and reused on later starts
  --read-token            reads under /api/ need the token too (the dashboard asks for it)
  --allow-host NAME       also answer requests for this Host name (repeatable, or a comma
                          list; '*' turns the check off). Loopback names are always allowed,
                          and the --host address when it is a specific one
  --auth-failures N       failed authentications per client address and minute before
                          it is refused with 429 (default 20)
  --max-upload-mb MB      largest artifact upload (default 64)
  --job-memory-mb MB      memory limit of an evaluation job's process (default 2048)
  --job-timeout-s S       time limit of an evaluation job (default 600)
  --log                   request log on stdout

Exit codes: 0 stopped by a signal, 1 failed, 2 bad usage (a bad flag, a port in use, a data
directory that is a file).
`;

class UsageError extends Error {}

function positive(values: Record<string, unknown>, flag: string, integer = false): number {
  const raw = values[flag] as string;
  const n = Number(raw);
  if (!(n > 0) || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The token from --token, the environment or the token file; generates the file when none. */
function resolveToken(flag: string | undefined, env: NodeJS.ProcessEnv, dataDir: string, say: (line: string) => void): string {
  if (flag !== undefined) {
    checkToken(flag, '--token');
    return flag;
  }
  if (env[TOKEN_VARIABLE]) {
    checkToken(env[TOKEN_VARIABLE]!, TOKEN_VARIABLE);
    return env[TOKEN_VARIABLE]!;
  }
  if (env[OLD_TOKEN_VARIABLE]) {
    process.stderr.write(`kiln-eval-server: warning: ${OLD_TOKEN_VARIABLE} is read for compatibility; set ${TOKEN_VARIABLE} instead (the kiln command reads it too)\n`);
    checkToken(env[OLD_TOKEN_VARIABLE]!, OLD_TOKEN_VARIABLE);
    return env[OLD_TOKEN_VARIABLE]!;
  }
  const file = join(dataDir, TOKEN_FILE);
  if (existsSync(file)) {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, FILE_MODE);
    const token = readFileSync(file, 'utf8').trim();
    checkToken(token, `the token in ${file}`);
    say(`write token: ${file} (kept from an earlier start)`);
    return token;
  }
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: FILE_MODE, flag: 'wx' });
  say(`write token: generated into ${file} (mode 0600); for kiln: export ${TOKEN_VARIABLE}=$(cat ${file})`);
  return token;
}

/** http://host:port of the socket the server really listens on. */
export function listenUrl(address: AddressInfo): string {
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): UsageError | undefined {
  const where = `${host}:${port}`;
  if (err.code === 'EADDRINUSE') return new UsageError(`${where} is already in use; stop what listens there or pick another --port (0 picks a free one)`);
  if (err.code === 'EACCES') return new UsageError(`no permission to listen on ${where} (ports below 1024 need privileges); pick another --port`);
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return new UsageError(`--host ${host} is not an address of this machine`);
  return undefined;
}

export async function main(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const fail = (message: string, code: number) => {
    process.stderr.write(`kiln-eval-server: ${message}\n`);
    return code;
  };
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8787' },
        'data-dir': { type: 'string', default: './kiln-eval-data' },
        token: { type: 'string' },
        'read-token': { type: 'boolean', default: false },
        'allow-host': { type: 'string', multiple: true, default: [] },
        'auth-failures': { type: 'string', default: '20' },
        'max-upload-mb': { type: 'string', default: '64' },
        'job-memory-mb': { type: 'string', default: '2048' },
        'job-timeout-s': { type: 'string', default: '600' },
        log: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n${HELP}`, 2);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const host = values.host as string;
  let port: number;
  let started: Awaited<ReturnType<typeof createServer>>;
  try {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port as string) || port > 65535) throw new UsageError(`--port must be an integer in 0..65535, got ${JSON.stringify(values.port)}`);
    const maxMb = positive(values, 'max-upload-mb');
    const jobMb = positive(values, 'job-memory-mb');
    const jobSeconds = positive(values, 'job-timeout-s');
    const authFailures = positive(values, 'auth-failures', true);
    const extraHosts = (values['allow-host'] as string[]).flatMap((h) => h.split(',')).map((h) => h.trim()).filter(Boolean);
    const dataDir = resolve(values['data-dir'] as string);
    new DataFolder(dataDir); // creates it (0700) or says why it cannot be used, before a token file goes in
    const token = resolveToken(values.token as string | undefined, env, dataDir, say);
    started = await createServer({
      dataDir,
      token,
      requireTokenForReads: Boolean(values['read-token']),
      allowedHosts: allowedHosts(host, extraHosts),
      authFailures: { limit: authFailures, windowMs: 60_000 },
      maxUploadBytes: Math.round(maxMb * 1024 * 1024),
      jobLimits: { memoryBytes: Math.round(jobMb * 1024 * 1024), timeMs: Math.round(jobSeconds * 1000) },
      logger: Boolean(values.log),
    });
  } catch (err) {
    if (err instanceof UsageError || err instanceof DataFolderError || err instanceof TokenError) return fail(err.message, 2);
    return fail(`failed to start: ${(err as Error).message}`, 1);
  }
  try {
    await started.app.listen({ host, port });
  } catch (err) {
    await started.app.close();
    const usage = listenError(err as NodeJS.ErrnoException, host, port);
    return usage ? fail(usage.message, 2) : fail(`cannot listen on ${host}:${port}: ${(err as Error).message}`, 1);
  }
  const url = listenUrl(started.app.server.address() as AddressInfo);
  const everywhere = host === '0.0.0.0' || host === '::';
  if (everywhere && (values['allow-host'] as string[]).length === 0) {
    say('note: only loopback Host names are served; add --allow-host NAME for the names other machines use to reach this one');
  }
  say(`kiln eval server listening on ${url}${everywhere ? ' (every interface)' : ''} (data: ${started.folder.root})`);
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await started.app.close();
  return 0;
}

/** `kiln-eval-server`: starts the server from flags and environment. */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createServer } from './server.js';

const HELP = `kiln-eval-server — runs, metrics, evaluations and a dashboard for Kiln

Usage: kiln-eval-server [--host 127.0.0.1] [--port 8787] [--data-dir ./kiln-eval-data]
                        [--token TOKEN] [--max-upload-mb 64]

  --token       bearer token for every write (or KILN_EVAL_TOKEN); one is generated
                and printed when neither is given
  --port 0      picks a free port; the URL is printed on start
`;

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8787' },
        'data-dir': { type: 'string', default: './kiln-eval-data' },
        token: { type: 'string' },
        'max-upload-mb': { type: 'string', default: '64' },
        log: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`kiln-eval-server: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const port = Number(values.port);
  const maxMb = Number(values['max-upload-mb']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`kiln-eval-server: --port must be an integer in 0..65535, got ${JSON.stringify(values.port)}\n`);
    return 2;
  }
  if (!(maxMb > 0)) {
    process.stderr.write(`kiln-eval-server: --max-upload-mb must be a positive number, got ${JSON.stringify(values['max-upload-mb'])}\n`);
    return 2;
  }
  let token = (values.token as string | undefined) ?? process.env.KILN_EVAL_TOKEN;
  if (!token) {
    token = randomBytes(18).toString('base64url');
    process.stdout.write(`no --token or KILN_EVAL_TOKEN given; this run's write token: ${token}\n`);
  }
  const server = await createServer({ dataDir: values['data-dir'] as string, token, maxUploadBytes: Math.round(maxMb * 1024 * 1024), logger: Boolean(values.log) });
  const address = await server.app.listen({ host: values.host as string, port });
  process.stdout.write(`kiln eval server listening on ${address} (data: ${server.folder.root})\n`);
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.app.close();
  return 0;
}

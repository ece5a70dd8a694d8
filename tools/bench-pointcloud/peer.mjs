// A long-lived step server in a child process (the PyTorch peer, or a pre-training loop of
// another checkout): it answers one JSON line when ready, then one per "step" line, so the
// benchmark can alternate its steps with its own and both sides see the same machine load.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Starts `command args` and waits for its ready line; `env` is added to this process's environment. */
export async function startPeer(command, args, env = {}) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`${command} ${args.join(' ')} exited early (${await exited})`);
    return JSON.parse(value);
  };
  const hello = await next();
  return {
    hello,
    /** Runs one step; resolves to the peer's answer ({ ms, ... }). */
    step: async () => {
      child.stdin.write('step\n');
      return next();
    },
    close: async () => {
      child.stdin.end('quit\n');
      await exited;
    },
  };
}

// Answers binding.gyp's questions about Open MPI: `cflags` or `libs`, from the compiler
// wrapper `mpicxx --showme:*` when present, else pkg-config's `ompi-cxx`/`ompi`.
const { execFileSync } = require('node:child_process');

function tryRun(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function flags(kind) {
  const wrapper = process.env.KILN_MPICXX || 'mpicxx';
  const fromWrapper = tryRun(wrapper, [kind === 'cflags' ? '--showme:compile' : '--showme:link']);
  if (fromWrapper) return fromWrapper;
  for (const pkg of ['ompi-cxx', 'ompi']) {
    const fromPc = tryRun('pkg-config', [kind === 'cflags' ? '--cflags' : '--libs', pkg]);
    if (fromPc !== null) return fromPc;
  }
  return null;
}

if (require.main === module) {
  const kind = process.argv[2];
  if (kind === 'found') {
    process.stdout.write(flags('libs') === null ? '0' : '1');
  } else {
    const out = flags(kind);
    if (out === null) {
      console.error('mpi-config: neither mpicxx nor pkg-config ompi found');
      process.exit(1);
    }
    process.stdout.write(out);
  }
}

module.exports = { flags };

#!/usr/bin/env node
// Release rehearsal against a real registry. On a throwaway clone of HEAD it
//   1. starts Verdaccio on loopback with an empty storage folder (our scope is local-only;
//      everything else is proxied to the registry npm is configured with on this machine),
//   2. runs the release scripts as a maintainer would (`pnpm version-packages`, `pnpm release`),
//   3. installs from that registry alone, in fresh folders: @kiln/moe-core (and runs its README
//      example) and `npm install -g @kiln/trainer` (and runs `kiln` on two tiny presets),
//   4. cuts a second release with one changeset for one package and checks that exactly that
//      package and its dependents are bumped and published.
// Exit code 0 only when every step passed. `--keep` leaves the work folder for inspection.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { extractExamples, runExample } from '@kiln/readme-examples';

const require = createRequire(import.meta.url);
const source = resolve(import.meta.dirname, '../..');
const keep = process.argv.includes('--keep');
const work = mkdtempSync(join(tmpdir(), 'kiln-rehearsal-'));
const repo = join(work, 'repo');
const pnpm = ['-y', 'pnpm@12.4.2'];
const failures = [];
let registry;

const section = (title) => console.log(`\n== ${title}`);
const indent = (text, n = 4) => text.trimEnd().replace(/^/gm, ' '.repeat(n));

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...options });
  if (result.status !== 0) {
    const error = new Error(`${cmd} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
    error.output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    throw error;
  }
  return `${result.stdout ?? ''}${result.stderr ?? ''}`;
}

function step(label, fn) {
  try {
    const detail = fn();
    console.log(`  ok    ${label}${detail ? `\n${indent(String(detail), 8)}` : ''}`);
    return true;
  } catch (err) {
    console.log(`  FAIL  ${label}\n${indent(`${err.message}\n${(err.output ?? '').split('\n').slice(-40).join('\n')}`, 8)}`);
    failures.push(label);
    return false;
  }
}

async function asyncStep(label, fn) {
  try {
    const detail = await fn();
    console.log(`  ok    ${label}${detail ? `\n${indent(String(detail), 8)}` : ''}`);
    return true;
  } catch (err) {
    console.log(`  FAIL  ${label}\n${indent(`${err.message}\n${(err.output ?? '').split('\n').slice(-40).join('\n')}`, 8)}`);
    failures.push(label);
    return false;
  }
}

/** The publishable workspace packages of a checkout, with their manifests. */
function publicPackages(root) {
  const dirs = [];
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(join(root, group))) dirs.push(join(root, group, name));
  }
  dirs.push(join(root, 'native'), join(root, 'native', 'mpi'));
  return dirs
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
    .filter((p) => !p.manifest.private);
}

const versionsOf = (root) => Object.fromEntries(publicPackages(root).map((p) => [p.manifest.name, p.manifest.version]));

function versionTable(before, after) {
  return Object.keys(after)
    .map((name) => `${name.padEnd(22)} ${before[name].padEnd(8)} → ${after[name]}${before[name] === after[name] ? '' : '   (bumped)'}`)
    .join('\n');
}

/** Packages that depend (dependencies / optionalDependencies) on any of `names`, transitively. */
function dependentsClosure(root, names) {
  const packages = publicPackages(root);
  const out = new Set(names);
  let grew = true;
  while (grew) {
    grew = false;
    for (const { manifest } of packages) {
      if (out.has(manifest.name)) continue;
      const deps = { ...manifest.dependencies, ...manifest.optionalDependencies };
      if (Object.keys(deps).some((d) => out.has(d))) {
        out.add(manifest.name);
        grew = true;
      }
    }
  }
  return out;
}

async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function registryVersions(name) {
  const url = `${registry}${name.replace('/', '%2f')}`;
  // A loaded machine can make Verdaccio slow to accept a connection: retry before giving up.
  let res;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await fetch(url);
      break;
    } catch (err) {
      if (attempt === 5) throw new Error(`GET ${url}: ${err.cause?.message ?? err.message}`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
  if (res.status === 404) return [];
  if (!res.ok) throw new Error(`registry answered ${res.status} for ${name}`);
  return Object.keys((await res.json()).versions ?? {});
}

async function startVerdaccio() {
  const upstream = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
  const port = await freePort();
  registry = `http://127.0.0.1:${port}/`;
  const config = join(work, 'verdaccio.yaml');
  writeFileSync(
    config,
    [
      `storage: ${join(work, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${join(work, 'htpasswd')}`,
      '    max_users: 10',
      'uplinks:',
      '  upstream:',
      `    url: ${upstream}`,
      '    timeout: 120s',
      'packages:',
      "  '@kiln/*':",
      '    access: $all',
      '    publish: $authenticated',
      '    unpublish: $authenticated',
      "  '**':",
      '    access: $all',
      '    proxy: upstream',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  const bin = join(dirname(require.resolve('verdaccio/package.json')), 'bin', 'verdaccio');
  const child = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${registry}-/ping`)).ok) break;
    } catch {}
    if (child.exitCode !== null || Date.now() > deadline) throw Object.assign(new Error('Verdaccio did not start'), { output: log });
    await new Promise((r) => setTimeout(r, 250));
  }
  const user = { name: 'rehearsal', password: 'rehearsal-password', type: 'user', roles: [], date: new Date().toISOString() };
  const res = await fetch(`${registry}-/user/org.couchdb.user:${user.name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(user),
  });
  const { token } = await res.json();
  if (!token) throw new Error(`Verdaccio did not issue a token (HTTP ${res.status})`);
  return { child, token, upstream };
}

/** An npm user config that knows only the rehearsal registry. */
function consumerConfig(dir) {
  mkdirSync(dir, { recursive: true });
  const npmrc = join(dir, '.npmrc');
  writeFileSync(npmrc, `registry=${registry}\nfund=false\naudit=false\nupdate-notifier=false\n`);
  return ['--userconfig', npmrc, '--cache', join(work, 'npm-cache'), '--no-audit', '--no-fund', '--loglevel=error'];
}

const du = (path) => run('du', ['-sh', path]).split('\t')[0];

let verdaccio;
try {
  section(`clone of ${source} at ${run('git', ['-C', source, 'rev-parse', '--short', 'HEAD']).trim()} (committed state only)`);
  if (run('git', ['-C', source, 'status', '--porcelain']).trim()) console.log('  note: uncommitted changes in the source checkout are not part of the rehearsal');
  run('git', ['clone', '--quiet', source, repo]);
  // The addons are compiled by each consumer's install, not for publishing: skip them here.
  const env = { ...process.env, KILN_NATIVE_SKIP_BUILD: '1', KILN_SKIP_MPI: '1' };
  step('pnpm install --frozen-lockfile (clone)', () => void run('npx', [...pnpm, 'install', '--frozen-lockfile', '--prefer-offline'], { cwd: repo, env }));

  section('registry');
  verdaccio = await startVerdaccio();
  console.log(`  Verdaccio on ${registry} (storage ${join(work, 'storage')}; other scopes proxied to the configured npm registry)`);
  writeFileSync(join(repo, '.npmrc'), `registry=${registry}\n//${registry.replace(/^https?:\/\//, '')}:_authToken=${verdaccio.token}\n`);
  const git = ['-c', 'user.name=Kiln rehearsal', '-c', 'user.email=rehearsal@localhost'];
  // The token file is the maintainer's, never part of a commit.
  writeFileSync(join(repo, '.git', 'info', 'exclude'), '.npmrc\n', { flag: 'a' });

  section('first release: pnpm version-packages, then pnpm release');
  const before = versionsOf(repo);
  step('pnpm version-packages', () => void run('npx', [...pnpm, 'run', 'version-packages'], { cwd: repo, env }));
  const after = versionsOf(repo);
  console.log(indent(versionTable(before, after)));
  step('pnpm release', () =>
    run('npx', [...pnpm, 'run', 'release'], { cwd: repo, env })
      .split('\n')
      // changesets' own lines; its 404s are the registry saying a version is new
      .filter((l) => l.includes('🦋') && !/Received 404 for npm info/.test(l))
      .join('\n'),
  );
  await asyncStep('every public package is in the registry at its new version', async () => {
    const lines = [];
    for (const [name, version] of Object.entries(after)) {
      const versions = await registryVersions(name);
      if (!versions.includes(version)) throw new Error(`${name}@${version} is not in the registry (has ${versions.join(', ') || 'nothing'})`);
      lines.push(`${name}@${version}`);
    }
    return lines.join('\n');
  });

  section('installs from the registry alone');
  const lone = join(work, 'lone-moe-core');
  const npmArgs = consumerConfig(lone);
  writeFileSync(join(lone, 'package.json'), JSON.stringify({ name: 'consumer', version: '0.0.0', private: true, type: 'module' }));
  step(`npm install @kiln/moe-core@${after['@kiln/moe-core']} (nothing else configured)`, () => {
    run('npm', ['install', ...npmArgs, `@kiln/moe-core@${after['@kiln/moe-core']}`], { cwd: lone });
    return `node_modules: ${du(join(lone, 'node_modules'))}`;
  });
  const example = extractExamples(readFileSync(join(repo, 'packages/moe-core/README.md'), 'utf8')).find((b) => !b.fragment);
  await asyncStep(`@kiln/moe-core README example (line ${example?.line}) runs`, async () => {
    if (!example) throw new Error('packages/moe-core/README.md has no runnable example');
    const result = await runExample(example, { cwd: lone, name: 'readme-example' });
    if (result.status !== 0) throw Object.assign(new Error(`exit ${result.status}`), { output: result.stdout + result.stderr });
    return result.stdout.trim().split('\n').slice(-8).join('\n');
  });

  const global = join(work, 'global');
  const globalArgs = consumerConfig(join(work, 'global-config'));
  const kiln = join(global, 'bin', 'kiln');
  step(`npm install -g @kiln/trainer@${after['@kiln/trainer']}`, () => {
    run('npm', ['install', '-g', '--prefix', global, ...globalArgs, `@kiln/trainer@${after['@kiln/trainer']}`]);
    return `installed: ${du(join(global, 'lib', 'node_modules'))}`;
  });
  const runs = join(work, 'runs');
  mkdirSync(runs, { recursive: true });
  for (const command of [
    ['--help'],
    ['pointcloud', '--preset', 'tiny', '--quiet'],
    ['moe', 'train', '--preset', 'tiny', '--quiet'],
  ]) {
    step(`kiln ${command.join(' ')}`, () => run(kiln, command, { cwd: runs }).trim().split('\n').slice(-4).join('\n'));
  }

  section('second release: one changeset for @kiln/linco');
  run('git', ['-C', repo, ...git, 'add', '-A']);
  run('git', ['-C', repo, ...git, 'commit', '--quiet', '-m', 'Version packages']);
  writeFileSync(join(repo, '.changeset', 'rehearsal-second-release.md'), '---\n"@kiln/linco": patch\n---\n\nRehearsal: a patch release of one package.\n');
  const before2 = versionsOf(repo);
  step('pnpm version-packages', () => void run('npx', [...pnpm, 'run', 'version-packages'], { cwd: repo, env }));
  const after2 = versionsOf(repo);
  console.log(indent(versionTable(before2, after2)));
  const expected = dependentsClosure(repo, ['@kiln/linco']);
  step(`bumped exactly @kiln/linco and its dependents (${[...expected].join(', ')})`, () => {
    const bumped = Object.keys(after2).filter((n) => after2[n] !== before2[n]);
    const wrong = [...bumped.filter((n) => !expected.has(n)), ...[...expected].filter((n) => !bumped.includes(n))];
    if (wrong.length > 0) throw new Error(`bumped ${bumped.join(', ')}; expected ${[...expected].join(', ')}`);
  });
  step('pnpm release', () =>
    run('npx', [...pnpm, 'run', 'release'], { cwd: repo, env })
      .split('\n')
      // changesets' own lines; its 404s are the registry saying a version is new
      .filter((l) => l.includes('🦋') && !/Received 404 for npm info/.test(l))
      .join('\n'),
  );
  await asyncStep('only the bumped packages gained a version in the registry', async () => {
    const lines = [];
    for (const name of Object.keys(after2)) {
      const versions = await registryVersions(name);
      const want = expected.has(name) ? [after[name], after2[name]] : [after[name]];
      if (versions.sort().join() !== want.sort().join()) throw new Error(`${name} has ${versions.join(', ')}, expected ${want.join(', ')}`);
      lines.push(`${name.padEnd(22)} ${versions.join(', ')}`);
    }
    return lines.join('\n');
  });
} catch (err) {
  console.log(`\nrehearsal aborted: ${err.message}\n${indent(err.output ?? '')}`);
  failures.push(err.message);
} finally {
  verdaccio?.child.kill();
  if (keep) console.log(`\nwork folder kept: ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

if (failures.length > 0) {
  console.log(`\nrelease rehearsal failed:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  process.exit(1);
}
console.log('\nrelease rehearsal passed');

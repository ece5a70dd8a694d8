/**
 * The dependency direction of the workspace, checked from two sources that can each drift:
 * package.json dependencies and the import statements of each package's sources.
 *
 *   apps → {pointcloud-ssl, moe-core, linco} → gpu-kernels → tensor → native
 *
 * A package may depend only on packages of a strictly lower layer (domain packages never on
 * each other); tools may use any package but only by name; no relative import leaves the
 * package it is written in; `@tensorflow/*` is imported only inside @kiln/tensor.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Layer of each library package; higher layers may import lower ones only. */
export const LAYERS = {
  '@kiln/native': 0,
  '@kiln/native-mpi': 0,
  '@kiln/tensor': 1,
  '@kiln/gpu-kernels': 2,
  '@kiln/pointcloud-ssl': 3,
  '@kiln/moe-core': 3,
  '@kiln/linco': 3,
  '@kiln/trainer': 4,
  '@kiln/eval-server': 4,
};

/** Folders holding workspace packages, relative to the repository root. */
const PACKAGE_PARENTS = ['packages', 'apps', 'tools'];
const SINGLE_PACKAGES = ['native', 'native/mpi'];
const SOURCE_EXT = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', 'prebuilds', 'results', 'fixtures', '.turbo']);

/** Every workspace package: { name, dir, deps } with dir absolute. */
export function listPackages(root) {
  const dirs = [...SINGLE_PACKAGES.map((d) => path.join(root, d))];
  for (const parent of PACKAGE_PARENTS) {
    const abs = path.join(root, parent);
    for (const entry of safeReaddir(abs)) dirs.push(path.join(abs, entry));
  }
  const packages = [];
  for (const dir of dirs) {
    let manifest;
    try {
      manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    } catch {
      continue;
    }
    const deps = {
      ...manifest.dependencies,
      ...manifest.optionalDependencies,
      ...manifest.peerDependencies,
      ...manifest.devDependencies,
    };
    packages.push({ name: manifest.name, dir, deps: Object.keys(deps), scripts: manifest.scripts ?? {} });
  }
  return packages;
}

function safeReaddir(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function* sourceFiles(dir, nested = false) {
  for (const entry of safeReaddir(dir)) {
    if (SKIP_DIRS.has(entry) || entry.startsWith('.')) continue;
    const abs = path.join(dir, entry);
    const stat = statSync(abs);
    if (stat.isDirectory()) {
      // A folder with its own package.json is another package (native/mpi inside native).
      if (safeReaddir(abs).includes('package.json')) continue;
      yield* sourceFiles(abs, true);
    } else if (SOURCE_EXT.test(entry) && !entry.endsWith('.d.ts')) {
      yield abs;
    }
  }
  void nested;
}

/** Module specifiers of static imports, re-exports, dynamic imports and require calls. */
export function importSpecifiers(source) {
  const specs = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    // path.join(here, <up-dirs>/packages/…/x.js) style: a literal naming another package's code
    // (data files and READMEs that a tool regenerates are not imports).
    /['"]((?:\.\.\/)+(?:packages|apps|native|tools)\/[^'"]+\.[cm]?[jt]sx?)['"]/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) specs.push(m[1]);
  return specs;
}

/** The @scope/name (or name) a bare specifier refers to. */
function packageOf(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Whether `from` may depend on `to`. Tools may use any library package. */
export function allowed(from, to, isTool) {
  if (to === from) return true;
  if (!(to in LAYERS)) return true; // third-party
  if (isTool) return true;
  if (!(from in LAYERS)) return false;
  return LAYERS[to] < LAYERS[from];
}

/**
 * All violations under `root`, each a string naming file (or package.json), the offending
 * dependency and the rule broken.
 */
export function checkBoundaries(root) {
  const problems = [];
  const packages = listPackages(root);
  const names = new Set(packages.map((p) => p.name));
  for (const pkg of packages) {
    const isTool = path.relative(root, pkg.dir).startsWith('tools');
    const rel = (file) => path.relative(root, file);
    const manifest = rel(path.join(pkg.dir, 'package.json'));
    for (const dep of pkg.deps) {
      if (names.has(dep) && !allowed(pkg.name, dep, isTool)) {
        problems.push(`${manifest}: ${pkg.name} depends on ${dep}, against the direction ${direction()}`);
      }
    }
    for (const [script, command] of Object.entries(pkg.scripts)) {
      if (!isTool && /\.\.\/(?:\.\.\/)*tools\//.test(command)) {
        problems.push(`${manifest}: script "${script}" calls into tools/ (${command}); run it from the tool's own package`);
      }
    }
    // This checker's own test holds deliberate breaches as fixtures.
    const files = pkg.name === '@kiln/boundaries' ? [] : sourceFiles(pkg.dir);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const spec of importSpecifiers(text)) {
        if (spec.startsWith('.')) {
          const target = path.resolve(path.dirname(file), spec);
          const inside = path.relative(pkg.dir, target);
          const nested = packages.some((p) => p !== pkg && p.dir.startsWith(pkg.dir + path.sep) && target.startsWith(p.dir + path.sep));
          if (inside.startsWith('..') || path.isAbsolute(inside) || nested) {
            problems.push(`${rel(file)}: relative import '${spec}' leaves ${pkg.name}; import the package by name`);
          }
          continue;
        }
        if (spec.startsWith('node:')) continue;
        const to = packageOf(spec);
        if (to.startsWith('@tensorflow/') && pkg.name !== '@kiln/tensor') {
          problems.push(`${rel(file)}: imports '${spec}'; @tensorflow/* is imported only inside @kiln/tensor`);
          continue;
        }
        if (!names.has(to) || to === pkg.name) continue;
        if (!allowed(pkg.name, to, isTool)) {
          problems.push(`${rel(file)}: ${pkg.name} imports ${to}, against the direction ${direction()}`);
        } else if (!isTool && !pkg.deps.includes(to)) {
          problems.push(`${rel(file)}: imports ${to}, which is not in ${manifest} dependencies`);
        }
      }
    }
  }
  // A folder of scripts under tools/ without a package.json could only reach packages by path.
  for (const entry of safeReaddir(path.join(root, 'tools'))) {
    const dir = path.join(root, 'tools', entry);
    if (!statSync(dir).isDirectory() || packages.some((p) => p.dir === dir)) continue;
    if ([...sourceFiles(dir)].length > 0) problems.push(`tools/${entry}: scripts without a package.json; make it a workspace package that imports packages by name`);
  }
  return problems;
}

export function direction() {
  return 'apps → {pointcloud-ssl, moe-core, linco} → gpu-kernels → tensor → native';
}

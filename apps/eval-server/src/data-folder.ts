/**
 * Every file the server reads or writes lives under its data folder. Names from requests
 * are checked against a strict pattern and the resolved path must stay inside the folder,
 * so `..`, absolute paths, encoded slashes and NUL bytes are refused with a 400.
 */
import { mkdirSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class UnsafePathError extends Error {
  readonly statusCode = 400;
  override name = 'UnsafePathError';
}

export class DataFolder {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    mkdirSync(this.root, { recursive: true });
    mkdirSync(resolve(this.root, 'artifacts'), { recursive: true });
  }

  get databasePath(): string {
    return resolve(this.root, 'kiln-eval.db');
  }

  /** Checks one path component (a run id or an artifact name). */
  static checkName(name: string, what: string): string {
    if (!NAME_PATTERN.test(name) || name.includes('..')) {
      throw new UnsafePathError(`${what} ${JSON.stringify(name)} is not allowed: use 1-128 letters, digits, '.', '_' or '-', not starting with '.' and without '..'`);
    }
    return name;
  }

  /** The path of a file inside the folder, refusing anything that would leave it. */
  inside(...parts: string[]): string {
    const full = resolve(this.root, ...parts);
    const rel = relative(this.root, full);
    if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      throw new UnsafePathError(`path ${JSON.stringify(parts.join('/'))} leaves the data folder`);
    }
    return full;
  }

  artifactDir(runId: string): string {
    return this.inside('artifacts', DataFolder.checkName(runId, 'run id'));
  }

  artifactPath(runId: string, name: string): string {
    return this.inside('artifacts', DataFolder.checkName(runId, 'run id'), DataFolder.checkName(name, 'artifact name'));
  }
}

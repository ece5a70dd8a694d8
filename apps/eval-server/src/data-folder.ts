/**
 * Every file the server reads or writes lives under its data folder. Names from requests
 * are checked against a strict pattern and the resolved path must stay inside the folder,
 * so `..`, absolute paths, encoded slashes and NUL bytes are refused with a 400.
 *
 * Folders the server creates are 0700 and files 0600: runs, metrics and checkpoints are
 * readable by the server's user only.
 */
import { mkdirSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class UnsafePathError extends Error {
  readonly statusCode = 400;
  override name = 'UnsafePathError';
}

/** The data folder cannot be used (it is a file, or cannot be created); the message says why. */
export class DataFolderError extends Error {
  override name = 'DataFolderError';
}

export const FOLDER_MODE = 0o700;
export const FILE_MODE = 0o600;

function makeFolder(path: string, what: string): void {
  try {
    mkdirSync(path, { recursive: true, mode: FOLDER_MODE });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new DataFolderError(`${what} ${path} is a file, not a folder`);
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') throw new DataFolderError(`${what} ${path} cannot be created (${code}: no permission)`);
    throw new DataFolderError(`${what} ${path} cannot be created: ${(err as Error).message}`);
  }
  if (!statSync(path).isDirectory()) throw new DataFolderError(`${what} ${path} is a file, not a folder`);
}

export class DataFolder {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    makeFolder(this.root, 'data folder');
    makeFolder(resolve(this.root, 'artifacts'), 'data folder entry');
  }

  /** Creates the folder of a run's artifacts (0700) and returns it. */
  ensureArtifactDir(runId: string): string {
    const dir = this.artifactDir(runId);
    makeFolder(dir, 'artifact folder');
    return dir;
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

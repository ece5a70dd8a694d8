/** Reads a YAML or JSON config file; parse errors name the file and the line. */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UsageError } from './errors.js';

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.json') {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new UsageError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (ext === '.yaml' || ext === '.yml') {
    try {
      return parseYaml(text);
    } catch (err) {
      throw new UsageError(`config file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new UsageError(`config file ${path}: expected a .yaml, .yml or .json file`);
}

/**
 * The `kiln` dispatcher: finds the subcommand, parses and validates its flags and config,
 * runs it, and maps failures to exit codes (0 done, 1 failed, 2 bad usage, 130 interrupted).
 */
import { isConfigError } from '@kiln/tensor';
import { type CommandSpec, parseCommandLine, renderHelp } from './command.js';
import { EXIT, NotAvailableError, UsageError } from './errors.js';

export interface CommandGroup {
  name: string;
  summary: string;
  /** Subcommand run when the group is given alone (`kiln pointcloud`). */
  defaultCommand?: string;
}

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
}

export function topLevelHelp(commands: CommandSpec[], groups: CommandGroup[]): string {
  const lines = ['kiln — train and evaluate Kiln models from presets or config files', '', 'Usage: kiln <command> [subcommand] [options]', '', 'Commands:'];
  for (const c of commands) lines.push(`  ${c.path.join(' ').padEnd(22)} ${c.summary}`);
  for (const g of groups) {
    if (g.defaultCommand) lines.push(`  ${g.name.padEnd(22)} same as kiln ${g.name} ${g.defaultCommand}`);
  }
  lines.push('', 'Every command takes --help. Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted (checkpoint saved).');
  return lines.join('\n') + '\n';
}

function groupHelp(group: CommandGroup, commands: CommandSpec[]): string {
  const lines = [`kiln ${group.name} — ${group.summary}`, '', 'Subcommands:'];
  for (const c of commands.filter((c) => c.path[0] === group.name)) lines.push(`  ${c.path.join(' ').padEnd(22)} ${c.summary}`);
  if (group.defaultCommand) lines.push('', `kiln ${group.name} alone runs kiln ${group.name} ${group.defaultCommand}.`);
  return lines.join('\n') + '\n';
}

export async function runCli(argv: string[], io: Io, commands: CommandSpec[], groups: CommandGroup[]): Promise<number> {
  const usage = (message: string, hint = 'kiln --help'): number => {
    io.stderr.write(`kiln: ${message}\nSee '${hint}'.\n`);
    return EXIT.usage;
  };
  const [first, second] = argv;
  if (first === undefined) {
    io.stderr.write(topLevelHelp(commands, groups));
    return EXIT.usage;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    io.stdout.write(topLevelHelp(commands, groups));
    return EXIT.ok;
  }
  let spec = commands.find((c) => c.path.length === 1 && c.path[0] === first);
  let rest = argv.slice(1);
  if (!spec) {
    const group = groups.find((g) => g.name === first);
    if (!group) return usage(`unknown command '${first}'`);
    if (second === '--help' || second === '-h') {
      io.stdout.write(groupHelp(group, commands));
      return EXIT.ok;
    }
    const sub = second !== undefined && !second.startsWith('-') ? second : undefined;
    const name = sub ?? group.defaultCommand;
    if (name === undefined) {
      io.stderr.write(groupHelp(group, commands));
      return EXIT.usage;
    }
    spec = commands.find((c) => c.path.length === 2 && c.path[0] === first && c.path[1] === name);
    if (!spec) return usage(`unknown subcommand '${first} ${name}'`, `kiln ${first} --help`);
    rest = sub ? argv.slice(2) : argv.slice(1);
  }
  const hint = `kiln ${spec.path.join(' ')} --help`;
  try {
    const parsed = parseCommandLine(spec, rest, io.env);
    if (parsed.help) {
      io.stdout.write(renderHelp(spec));
      return EXIT.ok;
    }
    for (const warning of parsed.warnings) io.stderr.write(`warning: ${warning}\n`);
    return await spec.handler({ ...parsed.ctx, stdout: io.stdout, stderr: io.stderr });
  } catch (err) {
    if (err instanceof UsageError || isConfigError(err)) return usage((err as Error).message, hint);
    if (err instanceof NotAvailableError) {
      io.stderr.write(`kiln: ${err.message}\n`);
      return EXIT.failed;
    }
    // A system call that failed (disk full, a file removed underneath) is a condition, not a bug: its message, no stack.
    const sys = err as NodeJS.ErrnoException;
    const detail = typeof sys.code === 'string' && typeof sys.syscall === 'string' ? sys.message : (sys.stack ?? String(err));
    io.stderr.write(`kiln ${spec.path.join(' ')} failed: ${detail}\n`);
    return EXIT.failed;
  }
}

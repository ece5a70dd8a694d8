import type { CommandSpec } from '../cli/command.js';
import { unavailableCommand } from './unavailable.js';

export const lincoCommands: CommandSpec[] = [unavailableCommand(['linco', 'run'], 'compute the Legal Inconsistency Coefficient by group', '@kiln/linco')];

import type { CommandSpec } from '../cli/command.js';
import { unavailableCommand } from './unavailable.js';

export const moeCommands: CommandSpec[] = [
  unavailableCommand(['moe', 'train'], 'train a small MoE language model', '@kiln/moe-core'),
  unavailableCommand(['moe', 'estimate'], 'estimate memory and throughput of an MoE config', '@kiln/moe-core'),
];

import type { CommandSpec } from '../cli/command.js';
import type { CommandGroup } from '../cli/main.js';
import { backendsCommand } from './backends.js';
import { benchCommand } from './bench.js';
import { lincoCommands } from './linco.js';
import { moeCommands } from './moe.js';
import { moeEstimateCommands } from './moe-estimate.js';
import { pointcloudCommands } from './pointcloud.js';
import { regressCommand } from './regress.js';

export const commands: CommandSpec[] = [
  ...pointcloudCommands,
  ...moeCommands,
  ...moeEstimateCommands,
  ...lincoCommands,
  benchCommand,
  backendsCommand,
  regressCommand,
];

export const groups: CommandGroup[] = [
  { name: 'pointcloud', summary: 'CSP pre-training, SPD fine-tuning and mIoU evaluation on point clouds', defaultCommand: 'all' },
  { name: 'moe', summary: 'Mixture-of-Experts language-model training and memory/throughput estimates' },
  { name: 'linco', summary: 'the Legal Inconsistency Coefficient' },
];

import type { CommandSpec } from '../cli/command.js';
import { unavailableCommand } from './unavailable.js';

export const pointcloudCommands: CommandSpec[] = [
  unavailableCommand(['pointcloud', 'all'], 'CSP pre-training then SPD fine-tuning on synthetic scenes, printing mIoU', '@kiln/pointcloud-ssl'),
  unavailableCommand(['pointcloud', 'pretrain'], 'CSP self-supervised pre-training', '@kiln/pointcloud-ssl'),
  unavailableCommand(['pointcloud', 'finetune'], 'SPD fine-tuning for segmentation', '@kiln/pointcloud-ssl'),
  unavailableCommand(['pointcloud', 'eval'], 'mIoU per class of a checkpoint', '@kiln/pointcloud-ssl'),
];

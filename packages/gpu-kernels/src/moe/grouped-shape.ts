/** Shapes of the grouped GEMM's three products (kept apart so kernels can import them without cycles). */
export type GroupedMode = 'nn' | 'nt' | 'tn';
/**
 * `groupSizes`: the row counts on the host. Absent when they come as the `sizes` input
 * tensor (int32 [G], on the device), whose sum may be less than the rows: rows past it
 * belong to no group.
 */
export type GroupedAttrs = { groupSizes?: number[]; mode: GroupedMode };

/** Output shape; `groups` is G (the weights' first dimension in 'nn'/'nt'). */
export function groupedOutShape(xShape: readonly number[], wShape: readonly number[], groups: number, mode: GroupedMode): number[] {
  if (mode === 'tn') return [groups, xShape[1]!, wShape[1]!];
  return [xShape[0]!, mode === 'nn' ? wShape[2]! : wShape[1]!];
}

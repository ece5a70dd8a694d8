/** Shapes of the grouped GEMM's three products (kept apart so kernels can import them without cycles). */
export type GroupedMode = 'nn' | 'nt' | 'tn';
export type GroupedAttrs = { groupSizes: number[]; mode: GroupedMode };

export function groupedOutShape(xShape: readonly number[], wShape: readonly number[], sizes: number[], mode: GroupedMode): number[] {
  if (mode === 'tn') return [sizes.length, xShape[1]!, wShape[1]!];
  return [xShape[0]!, mode === 'nn' ? wShape[2]! : wShape[1]!];
}

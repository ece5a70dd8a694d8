export { RankGenerator, ParallelFolding, generateMaskedOrthogonalRankGroups } from './rank-generator.js';
export type { RankGeneratorOptions, ParallelFoldingOptions, ParallelDim } from './rank-generator.js';

export { topkRouting, topkRoutingWithScoreFunction, groupLimitedTopk, computeRoutingScoresForAuxLoss, scoreFunctionScores, tokensPerExpert, selectExperts, defaultTieOrder } from './routing.js';
export type { TopkRoutingOptions, RoutingResult } from './routing.js';
export { sinkhorn, sinkhornRouting } from './sinkhorn.js';
export type { SinkhornOptions, SinkhornRoutingOptions } from './sinkhorn.js';
export { updateExpertBias, ExpertBiasState } from './expert-bias.js';
export { applyInputJitter, drawInputJitter } from './jitter.js';
export { TopKRouter } from './router.js';
export type { RouterCollectives, TopKRouterOptions, RouterForwardOptions, RouterOutput, RoutingOutput, RouterLosses } from './router.js';
/** Megatron's name for `updateExpertBias`. */
export { updateExpertBias as getUpdatedExpertBias } from './expert-bias.js';

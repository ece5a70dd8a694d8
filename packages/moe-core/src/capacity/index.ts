export { expertCapacity, applyTokenDropping, padRoutingMap, padCountsToMultiple } from './capacity.js';
export type { TokenDroppingOptions } from './capacity.js';
export { expertCapacity as getCapacity, applyTokenDropping as applyRouterTokenDropping } from './capacity.js';

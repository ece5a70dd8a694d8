export { expertCapacity, applyTokenDropping, padRoutingMap, padCountsToMultiple } from './capacity.js';
export type { TokenDroppingOptions } from './capacity.js';

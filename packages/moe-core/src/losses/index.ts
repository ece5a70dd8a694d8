export { attachAuxLoss, setAuxLossScale, getAuxLossScale } from './auto-scaler.js';
export { switchLoadBalancingLoss, sequenceAuxLoss, globalAuxLoss, GlobalAuxLossTracker } from './load-balancing.js';
export type { TokenOrder } from './load-balancing.js';
export { zLoss } from './z-loss.js';
export { MoEMetricsTracker, getMoEMetricsTracker, setMoEMetricsTracker } from './metrics.js';
export type { MetricSummary } from './metrics.js';
export { switchLoadBalancingLoss as switchLoadBalancingLossFunc } from './load-balancing.js';
export { zLoss as zLossFunc } from './z-loss.js';
export { MoEAuxLossAutoScaler } from './auto-scaler.js';

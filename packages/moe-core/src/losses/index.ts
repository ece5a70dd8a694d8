export { attachAuxLoss, setAuxLossScale, getAuxLossScale } from './auto-scaler.js';
export { switchLoadBalancingLoss, sequenceAuxLoss, globalAuxLoss, GlobalAuxLossTracker } from './load-balancing.js';
export type { TokenOrder } from './load-balancing.js';
export { zLoss } from './z-loss.js';
export { MoEMetricsTracker, getMoEMetricsTracker, setMoEMetricsTracker } from './metrics.js';
export type { MetricSummary } from './metrics.js';

export * from './metrics.js';
export * from './evaluate.js';
export * from './voting.js';

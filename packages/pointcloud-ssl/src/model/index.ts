export * from './scan.js';
export * from './params.js';
export * from './structure.js';
export * from './mamba.js';
export * from './registry.js';
export * from './backbone.js';
export * from './features.js';

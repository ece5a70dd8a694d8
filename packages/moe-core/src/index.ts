// @kiln/moe-core public API. Each engineer appends their own export lines.
export * from './config.js';
export * from './router/index.js';
export * from './losses/index.js';
export * from './capacity/index.js';
export * from './quant/index.js';
export * from './parallel/index.js';

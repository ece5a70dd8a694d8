// @kiln/moe-core public API. Each engineer appends their own export lines.
export const MOE_CONFIG_VERSION = 1;
export * from './config.js';

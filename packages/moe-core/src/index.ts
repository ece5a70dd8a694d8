// @kiln/moe-core public API. Each engineer appends their own export lines.
export const MOE_CORE_VERSION = '0.1.0';

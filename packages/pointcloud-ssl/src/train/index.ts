export * from './config.js';
export * from './dataset.js';
export * from './heads.js';
export * from './losses.js';
export * from './pretrain.js';
export * from './finetune.js';
export * from './checkpoint.js';
export * from './state.js';

// Data and serialization (formats, generator, sampling, Pointcept-exact serialization).
export * from './data/point-cloud.js';

// Data and serialization (formats, generator, sampling, Pointcept-exact serialization).
export * from './data/point-cloud.js';
export * from './serialization/encode.js';
export * from './serialization/sort.js';
export * from './serialization/serialize.js';

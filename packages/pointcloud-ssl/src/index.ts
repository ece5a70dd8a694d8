// Data and serialization (formats, generator, sampling, Pointcept-exact serialization).
export * from './data/point-cloud.js';
export * from './serialization/encode.js';
export * from './serialization/sort.js';
export * from './serialization/serialize.js';
export * from './data/formats/text.js';
export * from './data/formats/lzf.js';
export * from './data/formats/ply.js';
export * from './data/formats/pcd.js';
export * from './data/formats/s3dis.js';
export * from './data/formats/hdf5.js';
export * from './data/formats/npy.js';
export * from './data/formats/pointcept.js';
export * from './data/formats/scannet.js';
export * from './data/formats/read.js';
export * from './data/datasets.js';
export * from './data/synthetic.js';
export * from './data/grid-sample.js';
export * from './data/transforms.js';
export * from './data/pipeline.js';
export * from './data/stream.js';
// Model, training and evaluation (CSP pre-training, SPD fine-tuning).
export * from './model/index.js';
export * from './train/index.js';
export * from './eval/index.js';

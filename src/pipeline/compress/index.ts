/** The compression stage's public face. */
export { createCompressor, resolveSettings, type Compressor, type CompressorOptions, type CompressorStats } from './compressor.js';
export { compressionFormatOfName, tagged, type CompressionFormat, type TaggedChunk } from './format.js';
export { withThreadsStarted } from './pool.js';

/**
 * Loads zstd-codec's WebAssembly build directly. Its own wrappers copy every result once more and
 * hide the streaming decoder we need; the raw binding gives both. Each load is a separate
 * instance with its own 16 MiB heap (the build cannot grow it), so one stream cannot exhaust
 * another's memory.
 */
import { createRequire } from 'node:module';

/** A byte vector living in the WebAssembly heap. */
export interface WasmVector {
  resize(size: number, fill: number): void;
}

/** The parts of zstd-codec's binding this project uses (the package ships no types). */
export interface ZstdWasm {
  VectorU8: new () => WasmVector;
  /** The vector's bytes as a view of the WebAssembly heap (valid while the vector keeps its size). */
  toTypedArrayView(vector: WasmVector): Uint8Array;
  ZstdCodec: new () => {
    compressBound(size: number): number;
    /** Returns the compressed size, negative on error. */
    compress(dest: WasmVector, src: WasmVector, level: number): number;
  };
  ZstdDecompressStreamBinding: new () => {
    begin(): boolean;
    /** Feeds input; `onOutput` receives decoded bytes in arrays of their own. False on corrupt data. */
    transform(input: Uint8Array, onOutput: (decoded: Uint8Array) => void): boolean;
    end(onOutput: (decoded: Uint8Array) => void): boolean;
    delete(): void;
  };
}

/** Largest window a frame may need for the decoder to fit in the fixed heap (measured). */
export const ZSTD_MAX_WINDOW = 8 * 1024 * 1024;

type WasmFactory = (module: object) => void;

const require = createRequire(import.meta.url);

/** A fresh WebAssembly instance of zstd. */
export function loadZstdWasm(): Promise<ZstdWasm> {
  const factory = require('zstd-codec/lib/zstd-codec-binding-wasm.js') as WasmFactory;
  return new Promise((resolve) => {
    const module: { onRuntimeInitialized?: () => void; then?: unknown } = {};
    module.onRuntimeInitialized = () => {
      // The module carries a `then` of its own: a promise resolved with it would adopt it and
      // never settle.
      delete module.then;
      resolve(module as unknown as ZstdWasm);
    };
    factory(module);
  });
}

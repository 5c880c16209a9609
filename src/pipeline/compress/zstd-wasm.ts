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

/** What the build's loader reads from and adds to the object it is given (Emscripten's Module). */
export interface WasmModuleHooks {
  onRuntimeInitialized?: () => void;
  onAbort?: (reason: unknown) => void;
  print?: (text: string) => void;
  printErr?: (text: string) => void;
}

/** zstd-codec's loader: fills `module` with the binding and calls its hooks. */
export type WasmFactory = (module: WasmModuleHooks) => void;

const require = createRequire(import.meta.url);

const zstdCodecFactory: WasmFactory = (module) => (require('zstd-codec/lib/zstd-codec-binding-wasm.js') as WasmFactory)(module);

const ignore = (): void => {};

/**
 * A fresh WebAssembly instance of zstd. An instance that aborts while loading rejects (it would
 * otherwise never settle). The build prints an abort's reason on standard output, where a bundle
 * may be streaming: its printing is turned off, and the reason reaches the caller as an error.
 */
export function loadZstdWasm(factory: WasmFactory = zstdCodecFactory): Promise<ZstdWasm> {
  return new Promise((resolve, reject) => {
    const module: WasmModuleHooks & { then?: unknown } = {
      print: ignore,
      printErr: ignore,
      onAbort: (reason) => reject(new Error(`zstd's WebAssembly failed to load: ${String(reason)}`)),
      onRuntimeInitialized: () => {
        // The module carries a `then` of its own: a promise resolved with it would adopt it and
        // never settle.
        delete module.then;
        resolve(module as unknown as ZstdWasm);
      },
    };
    factory(module);
  });
}

/** An error thrown out of the WebAssembly (an abort throws a plain string) as an Error. */
export function zstdFailure(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(`zstd failed: ${String(thrown)}`);
}

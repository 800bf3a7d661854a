import { brotliCompress, brotliDecompress, gunzip, gzip, type ZlibOptions } from 'node:zlib';

/** Compression algorithms, from node:zlib. */
export type CompressionAlgorithm = 'gzip' | 'brotli';

/** One algorithm's two directions. `decompress` never produces more than `maxOutputLength` bytes. */
export interface Compressor {
  compress(data: Buffer): Promise<Buffer>;
  decompress(data: Buffer, maxOutputLength: number): Promise<Buffer>;
}

type ZlibFn = (
  buf: Buffer,
  options: ZlibOptions,
  callback: (error: Error | null, result: Buffer) => void,
) => void;

function compressor(compress: ZlibFn, decompress: ZlibFn): Compressor {
  return {
    compress: (data) =>
      new Promise((resolve, reject) =>
        compress(data, {}, (error, out) => (error ? reject(error) : resolve(out))),
      ),
    // maxOutputLength: zlib stops and fails (ERR_BUFFER_TOO_LARGE) instead of inflating a bomb.
    decompress: (data, maxOutputLength) =>
      new Promise((resolve, reject) =>
        decompress(data, { maxOutputLength }, (error, out) => (error ? reject(error) : resolve(out))),
      ),
  };
}

/**
 * The compressors the envelope codec uses, by algorithm. Internal (exported for tests, which
 * check that every decompression is bounded).
 */
export const COMPRESSORS: Readonly<Record<CompressionAlgorithm, Compressor>> = {
  gzip: compressor(gzip as ZlibFn, gunzip as ZlibFn),
  brotli: compressor(brotliCompress as ZlibFn, brotliDecompress as ZlibFn),
};

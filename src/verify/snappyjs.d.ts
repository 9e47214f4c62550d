// snappyjs ships no types; these are the functions oci-promote (uncompress) and its tests (compress) call.
declare module 'snappyjs' {
  /** Decompresses a snappy block; throws, before allocating, when the declared length exceeds maxLength. */
  export function compress<T extends Uint8Array | ArrayBuffer>(uncompressed: T): T
  export function uncompress<T extends Uint8Array | ArrayBuffer>(compressed: T, maxLength?: number): T
}

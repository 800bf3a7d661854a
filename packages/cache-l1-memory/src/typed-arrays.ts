/** A typed array of length `n` holding a copy of `a` (zeros after it): growing a slot array. */
export function grown<A extends Int32Array | Uint8Array | Float64Array>(a: A, n: number): A {
  const b = new (a.constructor as new (length: number) => A)(n);
  b.set(a);
  return b;
}

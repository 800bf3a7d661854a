/**
 * The hill climber's shadow: an LRU of sampled key hashes with their weights, evicting the least
 * recently used hashes while the total weight is over the capacity given. The same decisions as a
 * `Map` re-inserted on every access (its insertion order is the LRU order), without the `delete` and
 * `set` per access: a hit is one lookup and a move in an intrusive list kept in typed arrays.
 * Under 1,024 entries every key is sampled, so this runs on every hit of a small cache.
 */
export class ShadowLru {
  /** Hash → node. */
  private readonly index = new Map<number, number>();
  /** Per node: the previous (more recent) and next (less recent) nodes; node 0 is the sentinel. */
  private prev: Int32Array;
  private next: Int32Array;
  private hashes: Int32Array;
  private weights: Float64Array;
  private freeHead = -1;
  private top = 1;
  /** Total weight of the hashes held. */
  weight = 0;

  constructor(initialNodes = 64) {
    const n = Math.max(2, initialNodes);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
    this.hashes = new Int32Array(n);
    this.weights = new Float64Array(n);
  }

  /** Number of hashes held. */
  get size(): number {
    return this.index.size;
  }

  /**
   * Records an access of `hash` with `weight` (its weight from now on), makes it the most recent,
   * then evicts the least recent hashes while the total weight is over `capacity`. Returns whether
   * the hash was held (a shadow hit).
   */
  access(hash: number, weight: number, capacity: number): boolean {
    let node = this.index.get(hash);
    const hit = node !== undefined;
    if (node !== undefined) {
      this.weight += weight - (this.weights[node] as number);
      this.weights[node] = weight;
      if (this.next[0] !== node) {
        this.unlink(node);
        this.pushFront(node);
      }
    } else {
      node = this.allocate();
      this.hashes[node] = hash;
      this.weights[node] = weight;
      this.index.set(hash, node);
      this.pushFront(node);
      this.weight += weight;
    }
    while (this.weight > capacity && this.index.size > 0) {
      const oldest = this.prev[0] as number;
      this.unlink(oldest);
      this.index.delete(this.hashes[oldest] as number);
      this.weight -= this.weights[oldest] as number;
      this.next[oldest] = this.freeHead;
      this.freeHead = oldest;
    }
    return hit;
  }

  /** The hashes held, most recent first (for tests). */
  hashesByRecency(): number[] {
    const out: number[] = [];
    for (let n = this.next[0] as number; n !== 0; n = this.next[n] as number)
      out.push(this.hashes[n] as number);
    return out;
  }

  /** Forgets every hash. */
  clear(): void {
    this.index.clear();
    this.prev[0] = 0;
    this.next[0] = 0;
    this.freeHead = -1;
    this.top = 1;
    this.weight = 0;
  }

  private allocate(): number {
    if (this.freeHead !== -1) {
      const node = this.freeHead;
      this.freeHead = this.next[node] as number;
      return node;
    }
    if (this.top === this.prev.length) this.grow();
    return this.top++;
  }

  private grow(): void {
    const n = this.prev.length * 2;
    const copy = <A extends Int32Array | Float64Array>(from: A, to: A): A => {
      to.set(from);
      return to;
    };
    this.prev = copy(this.prev, new Int32Array(n));
    this.next = copy(this.next, new Int32Array(n));
    this.hashes = copy(this.hashes, new Int32Array(n));
    this.weights = copy(this.weights, new Float64Array(n));
  }

  private unlink(node: number): void {
    const p = this.prev[node] as number;
    const n = this.next[node] as number;
    this.next[p] = n;
    this.prev[n] = p;
  }

  /** Links `node` right after the sentinel: the most recent. */
  private pushFront(node: number): void {
    const first = this.next[0] as number;
    this.prev[node] = 0;
    this.next[node] = first;
    this.prev[first] = node;
    this.next[0] = node;
  }
}

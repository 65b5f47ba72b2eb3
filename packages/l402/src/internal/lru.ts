/**
 * A size-bounded map that forgets what was used least recently, in two generations: a hit in the
 * current generation costs one `Map.get` and nothing else (no delete and re-insert, which a strict LRU
 * pays on every hit and which showed up as a fifth of the cost of a cached-credential check); a hit in
 * the previous generation promotes the entry. When the current generation fills half the capacity it
 * becomes the previous one and the old previous one is dropped whole. So at most `capacity` entries are
 * kept, and an entry used at least once per half-capacity insertions is never forgotten.
 */
export class Lru<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly half: number;

  constructor(readonly capacity: number) {
    this.half = Math.max(1, Math.floor(capacity / 2));
  }

  get(key: K): V | undefined {
    const hot = this.current.get(key);
    if (hot !== undefined) return hot;
    const cold = this.previous.get(key);
    if (cold !== undefined) {
      this.previous.delete(key);
      this.insert(key, cold);
    }
    return cold;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    this.previous.delete(key);
    if (this.current.has(key)) this.current.set(key, value);
    else this.insert(key, value);
  }

  delete(key: K): boolean {
    const a = this.current.delete(key);
    const b = this.previous.delete(key);
    return a || b;
  }

  /** Drops every entry for which `test` holds. */
  deleteWhere(test: (key: K, value: V) => boolean): void {
    for (const map of [this.current, this.previous]) {
      for (const [k, v] of map) if (test(k, v)) map.delete(k);
    }
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  private insert(key: K, value: V): void {
    if (this.current.size >= this.half) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }
}

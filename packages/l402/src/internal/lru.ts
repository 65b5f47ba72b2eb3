/**
 * A size-bounded map that forgets the least recently used entry first. Map keeps insertion order, so a
 * hit re-inserts its key at the end and eviction takes the first key: O(1) for both.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  /** Drops every entry for which `test` holds. */
  deleteWhere(test: (key: K, value: V) => boolean): void {
    for (const [k, v] of this.map) if (test(k, v)) this.map.delete(k);
  }

  get size(): number {
    return this.map.size;
  }
}

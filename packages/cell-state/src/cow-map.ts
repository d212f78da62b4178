/**
 * CowMap: the string-keyed map a replica keeps each kind of record in, snapshotted cheaply.
 * `freeze()` hands out the current chunks; the first change to a chunk after a freeze copies
 * that chunk only. Iteration order is stable: by chunk (a hash of the key), then insertion, as
 * a `Map` per chunk would give (a key set again keeps its place; one deleted and set again goes
 * last).
 *
 * A chunk holds its keys and values in two arrays, in insertion order, and a key's position in
 * an index. Almost every change after a freeze replaces the value of a key the chunk already
 * holds (a machine record rewritten by a commit, a task bucket copied), so the copy it costs is
 * the values array alone (a slice); the index and the keys stay shared with the frozen chunk
 * until a key is added or removed. (A chunk used to be a `Map`, copied entry by entry on the
 * first change after each freeze: the largest single cost of applying a simulated commit.)
 */

/** A read-only view of a map frozen into a snapshot. */
export interface FrozenMap<K, V> {
  readonly size: number;
  get(key: K): V | undefined;
  values(): IterableIterator<V>;
}

/** Chunks per CowMap: a change copies one chunk (size/CHUNKS entries), a freeze copies CHUNKS references. */
export const CHUNKS = 128;

/** Which chunk holds `key` (this hash fixes the iteration order: never change it). */
export function chunkOf(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
  return h & (CHUNKS - 1);
}

interface Chunk<K, V> {
  /** The freeze generation this chunk was made in: only then is it changed in place. */
  readonly generation: number;
  /** Position of each key in `keys` and `values`. */
  index: Map<K, number>;
  keys: K[];
  values: V[];
  /** `index` and `keys` are a frozen chunk's too: copied before a key is added or removed. */
  sharedIndex: boolean;
}

function emptyChunk<K, V>(generation: number): Chunk<K, V> {
  return { generation, index: new Map(), keys: [], values: [], sharedIndex: false };
}

function lookup<K, V>(chunk: Chunk<K, V> | undefined, key: K): V | undefined {
  if (chunk === undefined) return undefined;
  const at = chunk.index.get(key);
  return at === undefined ? undefined : chunk.values[at];
}

export class CowMap<K extends string, V> {
  private chunks: Chunk<K, V>[] = Array.from({ length: CHUNKS }, () => emptyChunk<K, V>(0));
  private generation = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    return lookup(this.chunks[chunkOf(key)], key);
  }

  set(key: K, value: V): void {
    const chunk = this.own(chunkOf(key));
    const at = chunk.index.get(key);
    if (at !== undefined) {
      chunk.values[at] = value;
      return;
    }
    this.ownIndex(chunk);
    chunk.index.set(key, chunk.keys.length);
    chunk.keys.push(key);
    chunk.values.push(value);
    this.count++;
  }

  delete(key: K): boolean {
    const i = chunkOf(key);
    const at = this.chunks[i]?.index.get(key);
    if (at === undefined) return false;
    const chunk = this.own(i);
    this.ownIndex(chunk);
    chunk.keys.splice(at, 1);
    chunk.values.splice(at, 1);
    chunk.index.delete(key);
    for (let j = at; j < chunk.keys.length; j++) chunk.index.set(chunk.keys[j] as K, j);
    this.count--;
    return true;
  }

  clear(): void {
    const generation = ++this.generation;
    this.chunks = Array.from({ length: CHUNKS }, () => emptyChunk<K, V>(generation));
    this.count = 0;
  }

  /** The current contents, never changed afterwards. */
  freeze(): FrozenMap<K, V> {
    this.generation++;
    const chunks = this.chunks.slice();
    const size = this.count;
    return {
      size,
      get: (key) => lookup(chunks[chunkOf(key)], key),
      values: function* () {
        for (const chunk of chunks) yield* chunk.values;
      },
    };
  }

  /** Chunk `i`, safe to change: a frozen one is replaced by a copy of its values that shares its index. */
  private own(i: number): Chunk<K, V> {
    const chunk = this.chunks[i] as Chunk<K, V>;
    if (chunk.generation === this.generation) return chunk;
    const copy: Chunk<K, V> = { generation: this.generation, index: chunk.index, keys: chunk.keys, values: chunk.values.slice(), sharedIndex: true };
    this.chunks[i] = copy;
    return copy;
  }

  /** Gives an owned chunk an index and keys of its own before a key is added or removed. */
  private ownIndex(chunk: Chunk<K, V>): void {
    if (!chunk.sharedIndex) return;
    chunk.index = new Map(chunk.index);
    chunk.keys = chunk.keys.slice();
    chunk.sharedIndex = false;
  }
}

import type { InvalidationCallOptions, WriteCallOptions } from './call-options.js';
import type {
  CacheResult,
  GetOptions,
  GetOrLoadOptions,
  Loader,
  LoadResult,
  SetManyItem,
  SetOptions,
} from './cache-options.js';
import { checkTags, INTERNAL_TAG_MARK, mergeTags } from './entry-tags.js';
import { InvalidKeyError } from './errors/invalid-key-error.js';
import type { MultiLevelCache } from './multi-level-cache.js';
import type { TagWriteOptions } from './tags.js';

/** Longest namespace name, in characters. */
export const MAX_NAMESPACE_LENGTH = 128;

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Where a namespace hands its implicit tags to the cache's writes (never set by applications:
 * the symbol is not exported).
 */
export const NAMESPACE_TAGS: unique symbol = Symbol('bgc.namespace-tags');

/** Options carrying a namespace's implicit tags. */
export interface NamespaceTagged {
  [NAMESPACE_TAGS]?: readonly string[];
}

/** Options of `set`: lifetime, tags, bus and level skips. */
export type SetCallOptions = SetOptions & TagWriteOptions & WriteCallOptions & NamespaceTagged;

/** One item of `setMany`, with its own tags. */
export type TaggedSetManyItem<T = unknown> = SetManyItem<T> & TagWriteOptions;

/** Options of a whole `setMany` batch. */
export type SetManyCallOptions = WriteCallOptions & NamespaceTagged;

/**
 * The tags of a write: the application's (checked) plus a namespace's implicit ones.
 * @throws {InvalidTagError} for an invalid tag.
 */
export function entryTags(
  options: TagWriteOptions & NamespaceTagged,
  namespaceTags: readonly string[] | undefined = options[NAMESPACE_TAGS],
): readonly string[] | undefined {
  const own = checkTags(options.tags);
  return namespaceTags === undefined ? own : mergeTags(own, namespaceTags);
}

/**
 * Checks a namespace name: a non-empty string of at most {@link MAX_NAMESPACE_LENGTH} characters,
 * without `:` (the separator: nest namespaces instead) or control characters.
 * @throws {InvalidKeyError} (`E_INVALID_KEY`) naming the problem.
 */
export function validateNamespaceName(name: unknown): string {
  if (typeof name !== 'string')
    throw new InvalidKeyError(String(name), `a namespace name must be a string, got ${typeof name}`);
  if (name.length === 0) throw new InvalidKeyError(name, 'the namespace name is empty');
  if (name.length > MAX_NAMESPACE_LENGTH)
    throw new InvalidKeyError(
      name,
      `a namespace name of ${name.length} characters is over the limit of ${MAX_NAMESPACE_LENGTH}`,
    );
  if (name.includes(':'))
    throw new InvalidKeyError(
      name,
      'a namespace name may not hold ":" (the separator); nest namespaces instead: cache.namespace("a").namespace("b")',
    );
  if (CONTROL_CHARS.test(name))
    throw new InvalidKeyError(name, 'the namespace name contains control characters; remove or encode them');
  return name;
}

/**
 * The cache's API over the keys of one namespace (`cache.namespace('users')`: keys `users:<key>`),
 * nestable (`ns.namespace('eu')`: `users:eu:<key>`). Every entry written through it carries one
 * implicit tag per namespace level, so {@link CacheNamespace.clear} is one tag invalidation: it
 * removes this namespace (and the ones nested in it) on every tier and instance, and nothing else.
 *
 * Results, options and errors are the cache's; keys in them are the namespace's own (unprefixed).
 */
export class CacheNamespace {
  /** The full key prefix, e.g. `users:eu:`. */
  readonly prefix: string;
  /** The implicit tags of this namespace's entries, outermost first. */
  private readonly tags: readonly string[];

  constructor(
    private readonly cache: MultiLevelCache,
    name: string,
    parent: CacheNamespace | undefined,
  ) {
    validateNamespaceName(name);
    this.prefix = `${parent?.prefix ?? ''}${name}:`;
    this.tags = [...(parent?.tags ?? []), `${INTERNAL_TAG_MARK}ns:${this.prefix}`];
  }

  /** A namespace nested in this one: keys `<prefix><name>:<key>`. */
  namespace(name: string): CacheNamespace {
    return new CacheNamespace(this.cache, name, this);
  }

  /** `cache.getSync` of the namespaced key. */
  getSync<T = unknown>(key: string, endpoint?: string): T | undefined {
    return this.cache.getSync<T>(this.prefix + key, endpoint);
  }

  /** `cache.get` of the namespaced key. */
  get<T = unknown>(key: string, options?: GetOptions): Promise<CacheResult<T>> {
    return this.cache.get<T>(this.prefix + key, options);
  }

  /** `cache.getMany` of the namespaced keys. */
  getMany<T = unknown>(keys: readonly string[], options?: GetOptions): Promise<CacheResult<T>[]> {
    return this.cache.getMany<T>(
      keys.map((k) => this.prefix + k),
      options,
    );
  }

  /** `cache.has` of the namespaced key. */
  has(key: string, options?: GetOptions): Promise<boolean> {
    return this.cache.has(this.prefix + key, options);
  }

  /** `cache.pull` of the namespaced key. */
  pull<T = unknown>(key: string, options?: GetOptions & WriteCallOptions): Promise<T | undefined> {
    return this.cache.pull<T>(this.prefix + key, options);
  }

  /** `cache.set` of the namespaced key; the entry carries the namespace's tags besides its own. */
  set<T>(
    key: string,
    value: T,
    options: SetOptions & TagWriteOptions & WriteCallOptions = {},
  ): Promise<void> {
    return this.cache.set(this.prefix + key, value, { ...options, [NAMESPACE_TAGS]: this.tags });
  }

  /** `cache.setMany` of the namespaced keys. */
  setMany<T>(items: readonly TaggedSetManyItem<T>[], options: WriteCallOptions = {}): Promise<void> {
    return this.cache.setMany(
      items.map((it) => ({ ...it, key: this.prefix + it.key })),
      { ...options, [NAMESPACE_TAGS]: this.tags },
    );
  }

  /** `cache.getOrLoad` of the namespaced key (the loader's `ctx.key` is the full key). */
  getOrLoad<T>(key: string, loader: Loader<T>, options: GetOrLoadOptions<T> = {}): Promise<LoadResult<T>> {
    const tagged: GetOrLoadOptions<T> & NamespaceTagged = { ...options, [NAMESPACE_TAGS]: this.tags };
    return this.cache.getOrLoad(this.prefix + key, loader, tagged);
  }

  /** `cache.delete` of the namespaced key. */
  delete(key: string, options?: WriteCallOptions): Promise<void> {
    return this.cache.delete(this.prefix + key, options);
  }

  /** `cache.deleteMany` of the namespaced keys. */
  deleteMany(keys: readonly string[], options?: WriteCallOptions): Promise<number> {
    return this.cache.deleteMany(
      keys.map((k) => this.prefix + k),
      options,
    );
  }

  /** `cache.expire` of the namespaced key. */
  expire(key: string, options?: WriteCallOptions): Promise<void> {
    return this.cache.expire(this.prefix + key, options);
  }

  /** `cache.expireMany` of the namespaced keys. */
  expireMany(keys: readonly string[], options?: WriteCallOptions): Promise<number> {
    return this.cache.expireMany(
      keys.map((k) => this.prefix + k),
      options,
    );
  }

  /** `cache.deleteByTag`: tags are global, not namespaced. */
  deleteByTag(tags: readonly string[], options?: InvalidationCallOptions): Promise<void> {
    return this.cache.deleteByTag(tags, options);
  }

  /** `cache.expireByTag`: tags are global, not namespaced. */
  expireByTag(tags: readonly string[], options?: InvalidationCallOptions): Promise<void> {
    return this.cache.expireByTag(tags, options);
  }

  /**
   * Removes every entry of this namespace (and of the namespaces nested in it), on every tier and
   * instance: one tag invalidation, whatever the number of keys. Other namespaces and the cache's
   * other keys are left alone.
   */
  async clear(options?: InvalidationCallOptions): Promise<void> {
    const cache = this.cache;
    await cache.invalidateTags([this.tags[this.tags.length - 1] as string], 'delete', options);
    if (cache.listening.clear) cache.tell('clear', { namespace: this.prefix });
  }
}

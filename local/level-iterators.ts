/**
 * dynalite 4 reads a Query or a Scan through a stream over a LevelDB iterator, and when the stream
 * ends it closes the iterator with `iterator.return()`, if there is one. abstract-level's iterators
 * (the LevelDB binding dynalite uses) have no `return`, only `close()`, and stay open after their
 * last item: every Query and Scan of the local table left its iterator open, held in the database's
 * open resources with a native LevelDB snapshot, until the process ended. The pipeline queries five
 * times per image, so a long `moderation serve` grew without bound (`npm run bench:soak`:
 * docs/performance.md, "Memory of a long run").
 *
 * This gives abstract-level's iterators the `return` dynalite calls (the async-iterator protocol's
 * name for "stop and release"), so each one is closed when its stream ends. Imported by the module
 * that starts dynalite, before the first query.
 */
import { createRequire } from 'node:module';

interface Closable {
  close(): Promise<void>;
  return?: () => Promise<IteratorReturnResult<undefined>>;
}

/** The abstract-level that dynalite's LevelDB (level → classic-level) is built on, not another copy. */
export function dynalitesAbstractLevel(): { AbstractIterator: { prototype: object }; AbstractLevel: { prototype: object } } {
  const fromHere = createRequire(import.meta.url);
  const fromDynalite = createRequire(fromHere.resolve('dynalite'));
  const fromLevel = createRequire(fromDynalite.resolve('level'));
  const fromClassicLevel = createRequire(fromLevel.resolve('classic-level'));
  return fromClassicLevel('abstract-level') as ReturnType<typeof dynalitesAbstractLevel>;
}

/** The prototype every abstract-level iterator (entries, keys, values) inherits `close` from. */
export function levelIteratorPrototype(): Closable {
  return Object.getPrototypeOf(dynalitesAbstractLevel().AbstractIterator.prototype) as Closable;
}

export function closeLevelIteratorsOnReturn(): void {
  const prototype = levelIteratorPrototype();
  if (typeof prototype.return === 'function') return; // abstract-level has one now, or we ran already
  Object.defineProperty(prototype, 'return', {
    configurable: true,
    writable: true,
    value: async function (this: Closable): Promise<IteratorReturnResult<undefined>> {
      await this.close();
      return { done: true, value: undefined };
    },
  });
}

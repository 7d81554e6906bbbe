// Callers waiting for something about an id (a port's intent item to
// arrive, its device to be plugged), each with its own timeout. The agent
// wakes them when a delta or a reconcile has what they wait for.

export class Waiters<T> {
  private readonly byId = new Map<string, Set<(v: T | null) => void>>();

  /** Resolves with what `wake` gives for `id`, or null after `timeoutMs`. */
  wait(id: string, timeoutMs: number): Promise<T | null> {
    return new Promise((resolve) => {
      const done = (v: T | null) => {
        clearTimeout(timer);
        this.byId.get(id)?.delete(done);
        resolve(v);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      let list = this.byId.get(id);
      if (!list) this.byId.set(id, (list = new Set()));
      list.add(done);
    });
  }

  /** Wakes every waiter whose id `have` has a value for. */
  wake(have: (id: string) => T | undefined): void {
    for (const [id, list] of this.byId) {
      const v = have(id);
      if (v === undefined) continue;
      this.byId.delete(id);
      for (const w of list) w(v);
    }
  }
}

// A read-write lock per key, in process. Holders of the shared side run together; the exclusive side runs alone.
// Waiters are served in arrival order, so a waiting exclusive holder is never starved by a stream of shared ones
// (shared requests arriving after it wait behind it).

interface Waiter {
  exclusive: boolean;
  wake: () => void;
}

interface KeyState {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

export class KeyedReadWriteLock {
  private readonly keys = new Map<string, KeyState>();

  /** Runs `fn` while holding `key` shared: alongside other shared holders, never during an exclusive one. */
  shared<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.hold(key, false, fn);
  }

  /** Runs `fn` while holding `key` alone. */
  exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.hold(key, true, fn);
  }

  /** Keys with holders or waiters (for tests and metrics: idle keys are dropped). */
  get size(): number {
    return this.keys.size;
  }

  private async hold<T>(key: string, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await this.acquire(key, exclusive);
    try {
      return await fn();
    } finally {
      this.release(key, exclusive);
    }
  }

  private acquire(key: string, exclusive: boolean): Promise<void> {
    let s = this.keys.get(key);
    if (!s) {
      s = { readers: 0, writer: false, queue: [] };
      this.keys.set(key, s);
    }
    if (s.queue.length === 0 && this.free(s, exclusive)) {
      this.take(s, exclusive);
      return Promise.resolve();
    }
    return new Promise((wake) => s.queue.push({ exclusive, wake }));
  }

  private release(key: string, exclusive: boolean): void {
    const s = this.keys.get(key)!;
    if (exclusive) s.writer = false;
    else s.readers--;
    while (s.queue.length > 0 && this.free(s, s.queue[0]!.exclusive)) {
      const next = s.queue.shift()!;
      this.take(s, next.exclusive);
      next.wake();
    }
    if (!s.writer && s.readers === 0 && s.queue.length === 0) this.keys.delete(key);
  }

  private free(s: KeyState, exclusive: boolean): boolean {
    return exclusive ? !s.writer && s.readers === 0 : !s.writer;
  }

  private take(s: KeyState, exclusive: boolean): void {
    if (exclusive) s.writer = true;
    else s.readers++;
  }
}

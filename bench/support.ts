// What every benchmark needs: numeric flags and percentiles.

/** `--name N` from the command line, or the default. */
export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** The p-th percentile of samples (in any order). */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const median = (xs: readonly number[]) => pct(xs, 50);

/**
 * Runs `op(i)` for i in [0, n) on `concurrency` lanes; rate and latency
 * percentiles. An answer at or above `failAt` (a status) stops the run.
 */
export async function timed(n: number, concurrency: number, op: (i: number) => Promise<number>, failAt = 500) {
  const lat: number[] = [];
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const s = performance.now();
        const status = await op(i);
        if (status >= failAt) throw new Error(`HTTP ${status}`);
        lat.push(performance.now() - s);
      }
    }),
  );
  return { rate: n / ((performance.now() - t0) / 1000), p50: pct(lat, 50), p99: pct(lat, 99) };
}

/** Waits for a new namespace's default service account (the controller-manager makes it a moment after the namespace). */
export async function defaultServiceAccount(core: { readNamespacedServiceAccount(a: { name: string; namespace: string }): Promise<unknown> }, namespace: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await core.readNamespacedServiceAccount({ name: "default", namespace });
      return;
    } catch {
      if (i > 100) throw new Error(`no default service account in namespace ${namespace}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

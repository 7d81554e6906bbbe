// Failpoints, as etcd's gofail has them: named places where a test can make
// a process stop and wait, to kill it exactly there. Off unless the
// process's SEAM_FAILPOINTS (a comma-separated list) names them; a name in
// that list makes the code path that reaches it wait until the process dies.
// Why: a crash test that raced the code it interrupts ("kill the agent during
// an ADD") stops being able to fail once the code gets fast enough.

const armed = new Set((process.env.SEAM_FAILPOINTS ?? "").split(",").filter(Boolean));

/** Waits forever if `name` is armed; returns at once otherwise. */
export function failpoint(name: string): Promise<void> {
  return armed.has(name) ? new Promise<void>(() => {}) : Promise.resolve();
}

// GET /healthz and /readyz, for whatever supervises the server (systemd,
// a load balancer, Kubernetes probes), without credentials as their
// Kubernetes namesakes are. /healthz: the process answers. /readyz: it can
// serve, that is its store answers and the southbound's compiled view is
// not behind the store's change log by more than a moment; 503 with the
// reason otherwise, so a balancer sends requests to a server that can do them.
import type { FastifyInstance } from "fastify";
import type { Model } from "../../core/service/model.ts";

/** How far behind the store the compiled view may be and still be ready (changes). */
export const READY_LAG = 1000;

export function registerHealth(app: FastifyInstance, model: Model, compiledRevision: () => number): void {
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    let revision: number;
    try {
      revision = await model.db.currentRevision();
    } catch (e) {
      return reply.code(503).send({ status: "unavailable", reason: `the store does not answer: ${(e as Error).message}` });
    }
    const compiled = compiledRevision();
    if (revision - compiled > READY_LAG) return reply.code(503).send({ status: "unavailable", reason: `the southbound is ${revision - compiled} changes behind the store`, revision, compiled });
    return { status: "ok", revision, compiled };
  });
}

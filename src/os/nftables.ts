// nftables transactions in this process, through libnftables (the library
// the `nft` tool is a front end of), called with koffi. Why: an `nft -f`
// process per change costs 5-35 ms on this machine (its start, and its
// fetch of the whole table before it can resolve a name), where the same
// transaction through the library is ~0.1 ms: the library keeps its cache
// between calls and fetches again only when the ruleset's generation moved.
// That was most of a CNI ADD's wait for its port's filters.
//
// Only for this process's own network namespace (the agent's); a namespace
// bound Exec still runs `nft` in it. Without the library or the binding the
// tool is used, said once. One context, one transaction at a time, each run
// on koffi's worker thread so the event loop is not held by the kernel.
import { createRequire } from "node:module";

interface Binding {
  run(text: string): Promise<{ rc: number; error: string }>;
}

let binding: Binding | null | undefined;
let why = "";

function load(): Binding | null {
  try {
    const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
    const lib = koffi.load("libnftables.so.1");
    const ctxNew = lib.func("void *nft_ctx_new(uint32_t flags)");
    const bufferError = lib.func("int nft_ctx_buffer_error(void *ctx)");
    const getError = lib.func("const char *nft_ctx_get_error_buffer(void *ctx)");
    const runCmd = lib.func("int nft_run_cmd_from_buffer(void *ctx, const char *buf)");
    const ctx = ctxNew(0);
    if (!ctx) throw new Error("nft_ctx_new failed");
    bufferError(ctx);
    let queue: Promise<unknown> = Promise.resolve();
    return {
      run(text) {
        const next = queue.then(
          () =>
            new Promise<{ rc: number; error: string }>((resolve, reject) => {
              runCmd.async(ctx, text, (err: unknown, rc: number) => {
                if (err) return reject(err);
                // the error buffer holds what this transaction said (it is reset by each call)
                resolve({ rc, error: rc === 0 ? "" : String(getError(ctx) ?? "") });
              });
            }),
        );
        queue = next.catch(() => undefined);
        return next;
      },
    };
  } catch (e) {
    why = (e as Error).message;
    return null;
  }
}

/** The in-process binding, or null (and why) where it cannot be had: callers then run `nft`. */
export function nftables(): { binding: Binding | null; why: string } {
  if (binding === undefined) binding = process.env.SEAM_NFT_TOOL ? null : load();
  return { binding, why: binding ? "" : process.env.SEAM_NFT_TOOL ? "SEAM_NFT_TOOL is set" : why };
}

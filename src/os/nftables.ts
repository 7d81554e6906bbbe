// nftables transactions in this process, through libnftables (the library
// the `nft` tool is a front end of), called with koffi. Why: an `nft -f`
// process costs 15-35 ms here whatever the change, and most of it is not
// work: when the tool closes its netlink socket after a commit, the kernel
// waits for the commit's clean-up, an RCU grace period (nf_tables'
// NETLINK_URELEASE handler flushes the destroy work; `strace -T` shows
// `close` taking 11-13 ms). A library context keeps its socket, so it never
// pays that; the same transaction at 200 ports took 3-10 ms against 29-37 ms
// with the tool, measured in one run (docs/cni.md).
//
// Only for this process's own network namespace (the agent's): the context's
// socket is made there. A namespace-bound Exec still runs `nft` in it. One
// context, one transaction at a time, each on koffi's worker thread: the
// commit and the library's fetch of the table after the last commit are a
// few milliseconds the agent's event loop spends on the next pods instead
// (20 ADDs in parallel at 200 ports, p99: 298 and 261 ms in two runs this
// way, 314 ms with the calls on the event loop, in the same session: close
// to this machine's noise, and not worse). Without
// the library the tool is used, and the agent says so at start.
import { createRequire } from "node:module";

export interface Nftables {
  /** one transaction (a script as `nft -f` reads it); what the library said when it refused it */
  run(text: string): Promise<{ ok: true } | { ok: false; error: string }>;
}

let binding: Nftables | null | undefined;
let why = "";

function load(): Nftables | null {
  try {
    const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
    const lib = koffi.load("libnftables.so.1");
    const ctxNew = lib.func("void *nft_ctx_new(uint32_t flags)");
    const bufferOutput = lib.func("int nft_ctx_buffer_output(void *ctx)");
    const bufferError = lib.func("int nft_ctx_buffer_error(void *ctx)");
    const getError = lib.func("const char *nft_ctx_get_error_buffer(void *ctx)");
    const runCmd = lib.func("int nft_run_cmd_from_buffer(void *ctx, const char *buf)");
    const ctx = ctxNew(0);
    if (!ctx) throw new Error("nft_ctx_new failed");
    // nothing the library says goes to the agent's own stdout/stderr: errors come back with the call
    bufferOutput(ctx);
    bufferError(ctx);
    let queue: Promise<unknown> = Promise.resolve();
    return {
      run(text) {
        const next = queue.then(
          () =>
            new Promise<{ ok: true } | { ok: false; error: string }>((resolve, reject) =>
              runCmd.async(ctx, text, (err: unknown, rc: number) => {
                if (err) return reject(err);
                // the error buffer holds what this transaction said (each call resets it)
                resolve(rc === 0 ? { ok: true } : { ok: false, error: String(getError(ctx) ?? "").trim() || "nftables refused the transaction" });
              }),
            ),
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
export function nftables(): { binding: Nftables | null; why: string } {
  if (binding === undefined) binding = process.env.SEAM_NFT_TOOL ? null : load();
  return { binding, why: binding ? "" : process.env.SEAM_NFT_TOOL ? "SEAM_NFT_TOOL is set" : why };
}

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
// socket is made there, on the main thread. A namespace-bound Exec still runs
// `nft` in it. Calls are synchronous, on the event loop: a transaction is a
// few milliseconds of kernel work that would serialise on the nftables commit
// lock anyway, and a worker thread competing with the agent's own (tried
// first) made 20 parallel CNI ADDs slower, not faster. Without the library
// the tool is used, and the agent says so at start.
import { createRequire } from "node:module";

export interface Nftables {
  /** one transaction (a script as `nft -f` reads it); what the library said when it refused it */
  run(text: string): { ok: true } | { ok: false; error: string };
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
    return {
      run(text) {
        if (runCmd(ctx, text) === 0) return { ok: true };
        // the error buffer holds what this transaction said (each call resets it)
        return { ok: false, error: String(getError(ctx) ?? "").trim() || "nftables refused the transaction" };
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

// The named network namespaces (`ip netns add NAME`): the bind mounts under
// /run/netns. Reading the directory costs no process.
import { readdirSync } from "node:fs";

export const NETNS_DIR = "/run/netns";

export function namedNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return []; // none made yet
  }
}

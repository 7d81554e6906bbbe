// Attachment records: what the CNI service writes before it creates anything
// for a container, and updates as it goes, so that a DEL or GC after a crash
// finds whatever the crash left behind. One small JSON file per (container,
// interface), written atomically (rename).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Attachment } from "./result.ts";

export interface AttachmentRecord {
  containerId: string;
  ifname: string;
  netns: string;
  network: string;
  portId?: string;
  attachment?: Attachment;
  /** an earlier ADD for this container got at least as far as writing this record */
  attempted?: boolean;
}

/** Records written by an agent before attachments had every address: one address and one gateway. */
function upgrade(r: AttachmentRecord & { attachment?: Attachment & { address?: string; gateway?: string | null } }): AttachmentRecord {
  const a = r.attachment;
  if (a && !a.addresses && a.address) r.attachment = { ...a, addresses: [a.address], gateways: a.gateway ? [a.gateway] : [] };
  return r;
}

export class AttachmentRecords {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "cni");
    mkdirSync(this.dir, { recursive: true });
  }

  private path(containerId: string, ifname: string): string {
    return join(this.dir, `${createHash("sha1").update(`${containerId}/${ifname}`).digest("hex")}.json`);
  }

  read(containerId: string, ifname: string): AttachmentRecord | null {
    const p = this.path(containerId, ifname);
    return existsSync(p) ? upgrade(JSON.parse(readFileSync(p, "utf8"))) : null;
  }

  write(r: AttachmentRecord): void {
    const p = this.path(r.containerId, r.ifname);
    writeFileSync(`${p}.tmp`, JSON.stringify(r));
    renameSync(`${p}.tmp`, p);
  }

  remove(containerId: string, ifname: string): void {
    rmSync(this.path(containerId, ifname), { force: true });
  }

  all(): AttachmentRecord[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => upgrade(JSON.parse(readFileSync(join(this.dir, f), "utf8"))));
  }
}

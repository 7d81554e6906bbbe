// `seam server --tls-cert/--tls-key`: the certificate and key read, checked
// before the server starts (a pair that does not match, or a certificate that
// has expired, is a clear error rather than a handshake failure for every
// client), and read again on SIGHUP so a renewed certificate needs no restart.
import { readFileSync } from "node:fs";
import type { Server } from "node:https";
import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsPair {
  readonly cert: string;
  readonly key: string;
  /** the certificate's subject and expiry, for the log */
  readonly summary: string;
}

export function readTls(files: TlsFiles, now = new Date()): TlsPair {
  const cert = readPem(files.certFile, "--tls-cert", "CERTIFICATE");
  const key = readPem(files.keyFile, "--tls-key", "PRIVATE KEY");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`--tls-cert ${files.certFile}: not a certificate (${(e as Error).message})`);
  }
  if (new Date(x509.validTo) < now) throw new Error(`--tls-cert ${files.certFile}: expired on ${x509.validTo}`);
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new Error(`--tls-key ${files.keyFile} does not go with --tls-cert ${files.certFile}: ${(e as Error).message}`);
  }
  return { cert, key, summary: `${x509.subject.replace(/\n/g, ", ")}${x509.subjectAltName ? ` (${x509.subjectAltName})` : ""}, valid until ${x509.validTo}` };
}

/** On SIGHUP, serve the files' new certificate to new connections; a bad pair is logged and the old one kept. */
export function reloadOnHangup(server: Server, files: TlsFiles, log: (line: string) => void): void {
  process.on("SIGHUP", () => {
    try {
      const pair = readTls(files);
      server.setSecureContext({ cert: pair.cert, key: pair.key });
      log(`SIGHUP: serving ${pair.summary}`);
    } catch (e) {
      log(`SIGHUP: kept the certificate in use: ${(e as Error).message}`);
    }
  });
}

function readPem(file: string, flag: string, label: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${flag} ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) throw new Error(`${flag} ${file} holds no PEM ${label.toLowerCase()}`);
  return text;
}

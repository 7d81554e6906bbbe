// Converters for request attributes, each returning the canonical value or
// throwing Neutron's "Invalid input for X. Reason: Y." error. Pure.
import { invalidInput, invalidOperation } from "../errors.ts";
import { canonicalAddress, parseCidr, cidrHasHostBits, formatCidr, normalizeCidr } from "../../net/address.ts";

export type Converter = (value: unknown, attr: string) => unknown;

const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

export const UUID_RE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;
export const MAC_RE = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/;

export const string =
  (max = 255): Converter =>
  (v, attr) => {
    if (typeof v !== "string") throw invalidInput(attr, `'${show(v)}' is not a valid string`);
    if (v.length > max) throw invalidInput(attr, `'${v}' exceeds maximum length of ${max}`);
    return v;
  };

export const nullableString =
  (max = 255): Converter =>
  (v, attr) => (v === null ? null : string(max)(v, attr));

export const boolean: Converter = (v, attr) => {
  if (typeof v === "boolean") return v;
  if (typeof v === "string" || typeof v === "number") {
    const s = String(v).toLowerCase();
    if (s === "true" || s === "1") return true;
    if (s === "false" || s === "0") return false;
  }
  throw invalidInput(attr, `'${show(v)}' cannot be converted to boolean`);
};

export const integer =
  (min = -Infinity, max = Infinity): Converter =>
  (v, attr) => {
    const n = typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n)) throw invalidInput(attr, `'${show(v)}' is not an integer`);
    if (n < min || n > max) throw invalidInput(attr, `'${n}' is not in range ${min} through ${max}`);
    return n;
  };

export const nullableInteger =
  (min?: number, max?: number): Converter =>
  (v, attr) => (v === null ? null : integer(min, max)(v, attr));

/** A security-group rule's port: Neutron's own wording, which clients and Tempest match on. */
export const nullablePort: Converter = (v, attr) => {
  if (v === null) return null;
  const n = typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw invalidOperation(`Invalid value for port ${show(v)}`);
  return n;
};

export const uuid: Converter = (v, attr) => {
  if (typeof v !== "string" || !UUID_RE.test(v)) throw invalidInput(attr, `'${show(v)}' is not a valid UUID`);
  return v.toLowerCase();
};

export const nullableUuid: Converter = (v, attr) => (v === null ? null : uuid(v, attr));

export const oneOf =
  (...values: readonly (string | null)[]): Converter =>
  (v, attr) => {
    if (!values.includes(v as string | null)) {
      throw invalidInput(attr, `'${show(v)}' is not in ${JSON.stringify(values.filter((x) => x !== null))}`);
    }
    return v;
  };

export const mac: Converter = (v, attr) => {
  if (typeof v !== "string" || !MAC_RE.test(v)) throw invalidInput(attr, `'${show(v)}' is not a valid MAC address`);
  const m = v.toLowerCase().replace(/-/g, ":");
  const first = parseInt(m.slice(0, 2), 16);
  // Multicast (and broadcast) addresses cannot be a port's address.
  if (first & 1) throw invalidInput(attr, `'${v}' is not a valid MAC address`);
  if (m === "00:00:00:00:00:00") throw invalidInput(attr, `'${v}' is not a valid MAC address`);
  return m;
};

export const ipAddress: Converter = (v, attr) => {
  const c = canonicalAddress(v);
  if (c === null) throw invalidInput(attr, `'${show(v)}' is not a valid IP address`);
  return c;
};

export const nullableIpAddress: Converter = (v, attr) => (v === null ? null : ipAddress(v, attr));

/** A network CIDR; host bits set is an error, as Neutron reports it. */
export const cidr: Converter = (v, attr) => {
  const c = parseCidr(v);
  if (!c) throw invalidInput(attr, `'${show(v)}' is not a valid IP subnet`);
  if (cidrHasHostBits(c)) {
    throw invalidInput(attr, `'${show(v)}' isn't a recommended CIDR, '${formatCidr(normalizeCidr(c))}' is recommended`);
  }
  return formatCidr(c);
};

/** An address or a prefix, as in allowed_address_pairs and remote_ip_prefix (host bits cleared). */
export const addressOrCidr: Converter = (v, attr) => {
  if (typeof v === "string" && !v.includes("/")) return ipAddress(v, attr);
  const c = parseCidr(v);
  if (!c) throw invalidInput(attr, `'${show(v)}' is not a valid IP subnet`);
  return formatCidr(normalizeCidr(c));
};

export const nullableAddressOrCidr: Converter = (v, attr) => (v === null ? null : addressOrCidr(v, attr));

export const dict: Converter = (v, attr) => {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw invalidInput(attr, `'${show(v)}' is not a dictionary`);
  return v;
};

export const nullableDict: Converter = (v, attr) => (v === null ? {} : dict(v, attr));

export const list =
  (item: Converter, unique = false): Converter =>
  (v, attr) => {
    if (!Array.isArray(v)) throw invalidInput(attr, `'${show(v)}' is not a list`);
    const out = v.map((x) => item(x, attr));
    if (unique) {
      const seen = new Set(out.map((x) => JSON.stringify(x)));
      if (seen.size !== out.length) throw invalidInput(attr, `Duplicate items in the list: '${v.join(", ")}'`);
    }
    return out;
  };

export const nullableList = (item: Converter, unique = false): Converter => (v, attr) =>
  v === null ? [] : list(item, unique)(v, attr);

/** An object with exactly the given keys, each converted. Unknown keys are refused. */
export const shape =
  (fields: Record<string, Converter>, required: readonly string[] = []): Converter =>
  (v, attr) => {
    const obj = dict(v, attr) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj)) {
      const conv = fields[key];
      if (!conv) throw invalidInput(attr, `Unrecognized attribute(s) '${key}'`);
      out[key] = conv(obj[key], `${attr}:${key}`);
    }
    for (const key of required) {
      if (!(key in out)) throw invalidInput(attr, `Required key '${key}' not specified`);
    }
    return out;
  };

export const tag: Converter = (v, attr) => {
  if (typeof v !== "string" || v.length === 0 || v.length > 60 || v.includes(",") || v.includes("/")) {
    throw invalidInput(attr, `'${show(v)}' is not a valid tag (1 to 60 characters, no comma or slash)`);
  }
  return v;
};

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** A DNS hostname label or FQDN, as the dns-integration extension accepts for `dns_name`. */
export const dnsName: Converter = (v, attr) => {
  const s = string(255)(v, attr) as string;
  if (s === "") return s;
  const labels = s.replace(/\.$/, "").split(".");
  if (!labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1]!)) {
    throw invalidInput(attr, `'${s}' not a valid PQDN or FQDN`);
  }
  return s.toLowerCase();
};

/** A DNS domain; stored with the trailing dot, as Neutron shows it. */
export const dnsDomain: Converter = (v, attr) => {
  const s = string(255)(v, attr) as string;
  if (s === "") return s;
  const labels = s.replace(/\.$/, "").split(".");
  if (!labels.every((l) => LABEL.test(l))) throw invalidInput(attr, `'${s}' is not a valid domain name`);
  return s.toLowerCase().endsWith(".") ? s.toLowerCase() : `${s.toLowerCase()}.`;
};

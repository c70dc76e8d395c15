// gRPC-Web calls from the page: protobuf encoding driven by the schema the
// control plane serves (read from the contract's own descriptors), the
// gRPC-Web framing, and errors as the API reports them (status, message,
// and the field violations of a google.rpc.BadRequest detail).

const utf8 = new TextEncoder();
const text = new TextDecoder();

let schema = null;

/** Loads the message shapes once. */
export async function loadSchema() {
  if (!schema) {
    const response = await fetch("schema.json");
    if (!response.ok) throw new Error(`cannot load the console schema (${response.status})`);
    schema = await response.json();
    // google.rpc types the error details use; not part of the contract.
    Object.assign(schema.messages, {
      "google.rpc.Status": [["code", 1, "int32", "", ""], ["message", 2, "string", "", ""],
        ["details", 3, "message", "r", "google.protobuf.Any"]],
      "google.protobuf.Any": [["type_url", 1, "string", "", ""], ["value", 2, "bytes", "", ""]],
      "google.rpc.BadRequest": [["field_violations", 1, "message", "r", "google.rpc.BadRequest.FieldViolation"]],
      "google.rpc.BadRequest.FieldViolation": [["field", 1, "string", "", ""], ["description", 2, "string", "", ""]],
    });
  }
  return schema;
}

/** The values an enum takes, by name. */
export function enumValues(name) {
  return schema.enums[name] || {};
}

// --- protobuf wire format ---------------------------------------------------

class Writer {
  constructor() { this.bytes = []; }
  varint(value) {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v > 127n) { this.bytes.push(Number(v & 127n) | 128); v >>= 7n; }
    this.bytes.push(Number(v));
  }
  tag(number, wire) { this.varint((number << 3) | wire); }
  chunk(data) { this.varint(data.length); for (const b of data) this.bytes.push(b); }
  result() { return new Uint8Array(this.bytes); }
}

const VARINT_TYPES = new Set(["bool", "int32", "int64", "uint32", "uint64", "enum"]);

function encodeValue(writer, number, kind, ref, value) {
  if (kind === "message") {
    writer.tag(number, 2);
    writer.chunk(encode(ref, value));
  } else if (kind === "string") {
    writer.tag(number, 2);
    writer.chunk(utf8.encode(String(value)));
  } else if (kind === "bytes") {
    writer.tag(number, 2);
    writer.chunk(value);
  } else if (kind === "enum") {
    const numeric = typeof value === "number" ? value : enumValues(ref)[value];
    if (numeric === undefined) throw new Error(`${value} is not a value of ${ref}`);
    writer.tag(number, 0);
    writer.varint(numeric);
  } else if (VARINT_TYPES.has(kind)) {
    writer.tag(number, 0);
    writer.varint(kind === "bool" ? (value ? 1 : 0) : value);
  } else {
    throw new Error(`cannot encode a ${kind}`);
  }
}

function isDefault(value) {
  return value === undefined || value === null || value === "" || value === 0 || value === false
    || (Array.isArray(value) && value.length === 0);
}

/** Encodes `value` (an object with the proto field names) as `type`. */
export function encode(type, value) {
  const fields = schema.messages[type];
  if (!fields) throw new Error(`unknown message ${type}`);
  const writer = new Writer();
  for (const [name, number, kind, flags, ref] of fields) {
    const field = value[name];
    if (flags === "o" ? field === undefined || field === null : isDefault(field)) continue;
    if (flags === "m") {
      for (const [key, entry] of Object.entries(field)) {
        encodeValue(writer, number, "message", ref, { key, value: entry });
      }
    } else if (flags === "r") {
      for (const item of field) encodeValue(writer, number, kind, ref, item);
    } else {
      encodeValue(writer, number, kind, ref, field);
    }
  }
  return writer.result();
}

class Reader {
  constructor(bytes) { this.bytes = bytes; this.at = 0; }
  done() { return this.at >= this.bytes.length; }
  varint() {
    let result = 0n, shift = 0n;
    for (;;) {
      if (this.at >= this.bytes.length) throw new Error("truncated message");
      const byte = this.bytes[this.at++];
      result |= BigInt(byte & 127) << shift;
      if (byte < 128) return result;
      shift += 7n;
    }
  }
  chunk() {
    const length = Number(this.varint());
    const start = this.at;
    this.at += length;
    if (this.at > this.bytes.length) throw new Error("truncated message");
    return this.bytes.subarray(start, this.at);
  }
  skip(wire) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.at += 8;
    else if (wire === 2) this.chunk();
    else if (wire === 5) this.at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function emptyOf(type) {
  const value = {};
  for (const [name, , kind, flags, ref] of schema.messages[type]) {
    if (flags === "m") value[name] = {};
    else if (flags === "r") value[name] = [];
    else if (flags === "o" || kind === "message") value[name] = null;
    else if (kind === "string") value[name] = "";
    else if (kind === "bool") value[name] = false;
    else if (kind === "enum") value[name] = enumName(ref, 0);
    else value[name] = 0;
  }
  return value;
}

function enumName(ref, number) {
  const values = enumValues(ref);
  return Object.keys(values).find((name) => values[name] === number) ?? number;
}

/** A 64-bit value as a number, or as text beyond what a number holds exactly. */
function safe(value) {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value) : value.toString();
}

/** The wire type a field of `kind` is sent with, unpacked. */
function wireOf(kind) {
  return VARINT_TYPES.has(kind) ? 0 : 2;
}

function decodeScalar(kind, ref, reader) {
  switch (kind) {
    case "string": return text.decode(reader.chunk());
    case "bytes": return reader.chunk().slice();
    case "message": return decode(ref, reader.chunk());
    case "bool": return reader.varint() !== 0n;
    case "enum": return enumName(ref, Number(BigInt.asIntN(32, reader.varint())));
    case "int32": return Number(BigInt.asIntN(32, reader.varint()));
    case "int64": return safe(BigInt.asIntN(64, reader.varint()));
    case "uint64": return safe(reader.varint());
    case "uint32": return Number(BigInt.asUintN(32, reader.varint()));
    default: throw new Error(`cannot decode a ${kind}`);
  }
}

/** Decodes `bytes` as `type`; absent fields take their defaults. */
export function decode(type, bytes) {
  const fields = schema.messages[type];
  if (!fields) throw new Error(`unknown message ${type}`);
  const value = emptyOf(type);
  const reader = new Reader(bytes);
  while (!reader.done()) {
    const tag = Number(reader.varint());
    const field = fields.find((f) => f[1] === tag >> 3);
    if (!field) { reader.skip(tag & 7); continue; }
    const [name, , kind, flags, ref] = field;
    const wire = tag & 7;
    const packed = flags === "r" && wire === 2 && VARINT_TYPES.has(kind);
    if (wire !== wireOf(kind) && !packed) { reader.skip(wire); continue; } // not what the schema says
    if (flags === "m") {
      const entry = decode(ref, reader.chunk());
      value[name][entry.key] = entry.value;
    } else if (flags === "r") {
      if (packed) {
        const items = new Reader(reader.chunk());
        while (!items.done()) value[name].push(decodeScalar(kind, ref, items));
      } else {
        value[name].push(decodeScalar(kind, ref, reader));
      }
    } else {
      value[name] = decodeScalar(kind, ref, reader);
    }
  }
  return value;
}

// --- gRPC-Web -------------------------------------------------------------------

/** A call that ended with a status other than OK. */
export class CallError extends Error {
  constructor(code, message, violations) {
    super(message || `call failed with status ${code}`);
    this.code = code;
    /** Field violations of a BadRequest detail: [{field, description}]. */
    this.violations = violations;
  }
}

export const UNAUTHENTICATED = 16;
export const PERMISSION_DENIED = 7;

function violationsOf(detailsBase64) {
  if (!detailsBase64) return [];
  try {
    const binary = atob(detailsBase64.replace(/-/g, "+").replace(/_/g, "/"));
    const status = decode("google.rpc.Status", Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    return status.details
      .filter((any) => any.type_url.endsWith("/google.rpc.BadRequest"))
      .flatMap((any) => decode("google.rpc.BadRequest", any.value).field_violations);
  } catch {
    return [];
  }
}

function statusFrom(headers) {
  const code = headers.get("grpc-status");
  if (code === null) return null;
  let message = headers.get("grpc-message") || "";
  try { message = decodeURIComponent(message); } catch { /* shown as sent */ }
  return { code: Number(code), message, violations: violationsOf(headers.get("grpc-status-details-bin")) };
}

function parseTrailers(bytes) {
  const headers = new Headers();
  for (const line of text.decode(bytes).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/**
 * Calls `service/method` with `request` (an object shaped like `input`)
 * and the bearer `token`; resolves with the decoded `output` message.
 */
export async function call(service, method, input, output, request, token) {
  const message = encode(input, request);
  const body = new Uint8Array(5 + message.length);
  new DataView(body.buffer).setUint32(1, message.length);
  body.set(message, 5);
  const response = await fetch(`/${service}/${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/grpc-web+proto",
      "x-grpc-web": "1",
      "authorization": `Bearer ${token}`,
    },
    body,
  });
  if (!response.ok) throw new CallError(14, `the server answered HTTP ${response.status}`, []);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let data = null;
  let status = statusFrom(response.headers);
  for (let at = 0; at < bytes.length;) {
    if (at + 5 > bytes.length) throw new CallError(13, "a truncated answer", []);
    const flags = bytes[at];
    const length = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    if (at + 5 + length > bytes.length) throw new CallError(13, "a truncated answer", []);
    if (flags & 0x01) throw new CallError(13, "a compressed answer, which the console does not read", []);
    const frame = bytes.subarray(at + 5, at + 5 + length);
    at += 5 + length;
    if (flags & 0x80) status = statusFrom(parseTrailers(frame)) ?? status;
    else data = frame;
  }
  if (!status) throw new CallError(13, "the answer ended without a status", []);
  if (status.code !== 0) throw new CallError(status.code, status.message, status.violations);
  return decode(output, data ?? new Uint8Array());
}

/**
 * safetensors weights in and out (huggingface/safetensors), in TypeScript.
 *
 *   const weights = await loadSafetensors('model.safetensors');         // Map<string, Tensor>
 *   const { tensors, metadata } = loadSafetensorsSync(bytes, { metadata: true });
 *   await saveSafetensors('out.safetensors', weights, { format: 'pt' });
 *
 * Format: 8 bytes N (u64, little-endian), N bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { string: string } }`
 * (JSON whitespace around it allowed: writers pad with spaces), then the data
 * buffer. Offsets are relative to the data buffer; data is little-endian, row-major.
 *
 * Loading validates like the reference reader, and more strictly where its
 * format notes say so (duplicate keys), throwing `SafetensorsError`:
 *   code 'ERR_SIMDFORMER_INVALID_SAFETENSORS': a malformed file (header length,
 *     UTF-8, JSON, header schema, offsets that do not tile the data buffer,
 *     byte sizes, trailing bytes); the message names the tensor and the rule.
 *   code 'ERR_SIMDFORMER_UNSUPPORTED_DTYPE': a well-formed file holding a
 *     dtype simdformer cannot represent.
 * A path that cannot be read throws Node's own error (ENOENT, EISDIR, ...).
 * A mapped file must not be truncated while its tensors are in use (their
 * pages would be gone: the process dies of SIGBUS, as with any mapping);
 * saving over it with saveSafetensors is safe (see replacement()).
 *
 * dtypes at load (lossless except the float narrowing, which is PyTorch's `.float()`):
 *   F32 → float32; F16, BF16, F64 → float32; BOOL → bool (any non-zero byte is true);
 *   I32, I16, I8, U16, U8 → int32; I64, U32 → int64.
 *   U64, C64 and the 4/6/8-bit floats → ERR_SIMDFORMER_UNSUPPORTED_DTYPE.
 * At save: float32 → F32, int32 → I32, int64 → I64, bool → BOOL.
 *
 * Tensors come back in a Map (so a tensor named `__proto__` is an ordinary
 * key), in the order of their data in the file. Nothing aliases a Uint8Array
 * you passed in, and no alignment of it is assumed. A path is mapped
 * copy-on-write where the platform allows (mapFile below): float32, int32 and
 * int64 tensors aligned to their element size (as writers lay them out) are
 * then views of the mapping, with no read and no copy; writing to them
 * changes this process's copy only. Other dtypes and misaligned tensors are
 * converted or copied, and where a file cannot be mapped it is read.
 * Metadata (`{ metadata: true }`) is a null-prototype string→string record,
 * empty when the file has none.
 *
 * Saving writes the reference writer's layout: tensors sorted by descending
 * dtype alignment then by name (UTF-8 byte order), `__metadata__` first in the
 * header, the header padded with spaces to a multiple of 8 bytes. Every
 * tensor's data is then aligned to its element size, and the bytes are the
 * ones `safetensors.torch.save_file` writes for the same tensors (and the
 * same metadata key order).
 *
 * Supported hosts are little-endian (x86-64, arm64), so typed arrays over
 * file bytes need no byte swapping.
 */
import { constants as bufferConstants } from 'buffer';
import * as fs from 'fs';
import { promisify } from 'util';
import { threadId } from 'worker_threads';
import { binding } from './binding';
import { invalidType, invalidValue, type ErrorCode, type SimdformerError } from './errors';
import { Tensor, type DType, type TensorData } from './tensor';

/** The reference reader's limit on N, the header length. */
const MAX_HEADER_LENGTH = 100_000_000;
/** serde_json's recursion limit. */
const MAX_JSON_DEPTH = 128;
/** Reads and writes are split into chunks below Node's 2 GiB limit per call. */
const IO_CHUNK = 1 << 30;

export class SafetensorsError extends Error implements SimdformerError {
  readonly code: ErrorCode;

  constructor(message: string, code: ErrorCode = 'ERR_SIMDFORMER_INVALID_SAFETENSORS') {
    super(message);
    this.name = 'SafetensorsError';
    this.code = code;
  }
}

// ---------------------------------------------------------------------------
// dtypes

/** Every dtype the reference knows, with its size in bits. */
const DTYPE_BITS = new Map<string, number>([
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8],
  ['F8_E5M2', 8], ['F8_E4M3', 8], ['F8_E8M0', 8], ['F8_E4M3FNUZ', 8], ['F8_E5M2FNUZ', 8],
  ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32],
  ['F32', 32], ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
]);

/**
 * Turns one tensor's little-endian bytes into our typed array. `raw` may be
 * modified and kept when `owned` (a fresh read buffer, or a private mapping
 * of the file); otherwise it is a view of the caller's memory and only read.
 */
type Decoder = (raw: Uint8Array, numel: number, owned: boolean) => TensorData;

type ElementArray = Float32Array | Int32Array | BigInt64Array | Int16Array | Uint16Array | Uint32Array;

/**
 * `raw` as `n` elements of `type`: a view of it when it is ours and aligned
 * to the element size (no copy), else a view of an aligned copy
 * (`new Uint8Array(view)` copies; a Buffer's `slice` would not).
 */
function elements<T extends ElementArray>(
  type: { new(buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number },
  raw: Uint8Array, n: number, owned: boolean,
): T {
  const bytes = owned && raw.byteOffset % type.BYTES_PER_ELEMENT === 0 ? raw : new Uint8Array(raw);
  return new type(bytes.buffer, bytes.byteOffset, n);
}

/** Bytes as 0 / 1, in a new Uint8Array. */
function toBoolBytes(raw: Uint8Array): Uint8Array {
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw[i] !== 0 ? 1 : 0;
  return out;
}

const DECODERS = new Map<string, Decoder>([
  ['F32', (raw, n, owned) => elements(Float32Array, raw, n, owned)],
  ['I32', (raw, n, owned) => elements(Int32Array, raw, n, owned)],
  ['I64', (raw, n, owned) => elements(BigInt64Array, raw, n, owned)],
  ['F16', (raw, n) => mapHalfWords(raw, n, halfToFloatBits)],
  ['BF16', (raw, n) => mapHalfWords(raw, n, (word) => word << 16)],
  ['F64', (raw, n) => doubleToFloat(raw, n)],
  ['BOOL', (raw) => toBoolBytes(raw)],
  ['U8', (raw, n) => Int32Array.from(raw.subarray(0, n))],
  ['I8', (raw, n) => Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, n))],
  ['I16', (raw, n, owned) => Int32Array.from(elements(Int16Array, raw, n, owned))],
  ['U16', (raw, n, owned) => Int32Array.from(elements(Uint16Array, raw, n, owned))],
  ['U32', (raw, n, owned) => {
    const source = elements(Uint32Array, raw, n, owned);
    const out = new BigInt64Array(n);
    const words = new Uint32Array(out.buffer);  // [low, high] pairs; high stays 0
    for (let i = 0; i < n; i++) words[2 * i] = source[i];
    return out;
  }],
]);

/** 16-bit words → float32 bit patterns through `convert`. */
function mapHalfWords(raw: Uint8Array, n: number, convert: (word: number) => number): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = convert(raw[2 * i] | (raw[2 * i + 1] << 8));
  return out;
}

/**
 * IEEE binary16 → binary32 bits, exact. Subnormals are renormalised; a NaN
 * keeps its payload and gets the quiet bit, as PyTorch's Half → float does.
 */
function halfToFloatBits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >> 10) & 0x1f;
  let mantissa = half & 0x3ff;
  if (exponent === 0x1f) return sign | 0x7f800000 | (mantissa === 0 ? 0 : 0x400000 | (mantissa << 13));
  if (exponent !== 0) return sign | ((exponent + 112) << 23) | (mantissa << 13);
  if (mantissa === 0) return sign;
  // value = mantissa · 2^-24: shift the leading one up to bit 10, lowering the exponent each step
  let floatExponent = 113;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    floatExponent--;
  }
  return sign | (floatExponent << 23) | ((mantissa & 0x3ff) << 13);
}

/**
 * float64 → float32 rounding to nearest even (a typed-array store). A NaN is
 * built from its bits, since a NaN read into a JS number may lose them: the
 * top 23 fraction bits with the quiet bit set, as x86's cvtsd2ss and PyTorch do.
 */
function doubleToFloat(raw: Uint8Array, n: number): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, 8 * n);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const low = view.getUint32(8 * i, true);
    const high = view.getUint32(8 * i + 4, true);
    if ((high & 0x7ff00000) === 0x7ff00000 && ((high & 0xfffff) | low) !== 0) {
      bits[i] = (high & 0x80000000) | 0x7fc00000 | ((high & 0xfffff) << 3) | (low >>> 29);
    } else {
      out[i] = view.getFloat64(8 * i, true);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// The header's JSON, parsed strictly (RFC 8259, as serde_json reads it) and
// with positions, so that errors can quote the file and duplicate keys are
// caught: JSON.parse silently keeps the last of them.

type JsonNode = { start: number; end: number } & (
  | { kind: 'object'; entries: Map<string, JsonNode> }
  | { kind: 'array'; items: JsonNode[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; text: string }
  | { kind: 'literal'; text: 'true' | 'false' | 'null' }
);

const NUMBER_PATTERN = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4_PATTERN = /[0-9a-fA-F]{4}/y;
const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class HeaderParser {
  private pos = 0;
  /** Keys from the root to the value being parsed: [tensor name or '__metadata__', ...]. */
  private readonly path: string[] = [];

  constructor(private readonly text: string, private readonly fail: (message: string) => never) {}

  parseDocument(): JsonNode {
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos < this.text.length) this.syntaxError('the end of the header after the JSON value');
    return value;
  }

  private parseValue(depth: number): JsonNode {
    if (depth > MAX_JSON_DEPTH) this.fail(`the header is not valid JSON: nested deeper than ${MAX_JSON_DEPTH} levels at character ${this.pos}`);
    this.skipWhitespace();
    const start = this.pos;
    const char = this.text[this.pos];
    if (char === '{') return this.parseObject(depth);
    if (char === '[') return this.parseArray(depth);
    if (char === '"') return { kind: 'string', value: this.parseString(), start, end: this.pos };
    for (const literal of ['true', 'false', 'null'] as const) {
      if (this.text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        return { kind: 'literal', text: literal, start, end: this.pos };
      }
    }
    NUMBER_PATTERN.lastIndex = this.pos;
    const number = NUMBER_PATTERN.exec(this.text);
    if (number === null) return this.syntaxError('a JSON value');
    this.pos += number[0].length;
    return { kind: 'number', text: number[0], start, end: this.pos };
  }

  private parseObject(depth: number): JsonNode {
    const start = this.pos++;
    const entries = new Map<string, JsonNode>();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return { kind: 'object', entries, start, end: this.pos };
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.syntaxError('a string key');
      const key = this.parseString();
      if (entries.has(key)) this.fail(this.duplicateKeyMessage(key));
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.syntaxError("':'");
      this.pos++;
      this.path.push(key);
      entries.set(key, this.parseValue(depth + 1));
      this.path.pop();
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === '}') return { kind: 'object', entries, start, end: this.pos };
      if (next !== ',') this.syntaxError("',' or '}'", -1);
    }
  }

  private parseArray(depth: number): JsonNode {
    const start = this.pos++;
    const items: JsonNode[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return { kind: 'array', items, start, end: this.pos };
    }
    for (;;) {
      items.push(this.parseValue(depth + 1));
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === ']') return { kind: 'array', items, start, end: this.pos };
      if (next !== ',') this.syntaxError("',' or ']'", -1);
    }
  }

  /** A string starting at the opening quote; escapes decoded, lone surrogates refused like serde_json. */
  private parseString(): string {
    const text = this.text;
    let result = '';
    let runStart = ++this.pos;
    for (;;) {
      const code = text.charCodeAt(this.pos);
      if (Number.isNaN(code)) this.syntaxError("'\"' closing the string");
      if (code < 0x20) this.syntaxError('an escaped control character');
      if (code === 0x22) {
        result += text.slice(runStart, this.pos++);
        return result;
      }
      if (code !== 0x5c) {
        this.pos++;
        continue;
      }
      result += text.slice(runStart, this.pos);
      this.pos++;
      const escape = text[this.pos];
      if (escape === 'u') {
        const unit = this.parseHex4();
        if (unit >= 0xdc00 && unit <= 0xdfff) this.syntaxError('no lone low surrogate', -6);
        if (unit >= 0xd800 && unit <= 0xdbff) {
          const low = text.startsWith('\\u', this.pos) ? (this.pos++, this.parseHex4()) : -1;
          if (low < 0xdc00 || low > 0xdfff) this.syntaxError('a low surrogate escape after a high surrogate');
          result += String.fromCharCode(unit, low);
        } else {
          result += String.fromCharCode(unit);
        }
      } else if (escape !== undefined && Object.hasOwn(SIMPLE_ESCAPES, escape)) {
        result += SIMPLE_ESCAPES[escape];
        this.pos++;
      } else {
        this.syntaxError('a valid escape after \\');
      }
      runStart = this.pos;
    }
  }

  /** Four hex digits after the `u` at this.pos. */
  private parseHex4(): number {
    HEX4_PATTERN.lastIndex = this.pos + 1;
    const digits = HEX4_PATTERN.exec(this.text);
    if (digits === null) this.syntaxError('four hex digits after \\u', 1);
    this.pos += 5;
    return parseInt(digits[0], 16);
  }

  private skipWhitespace(): void {
    for (;;) {
      const char = this.text[this.pos];
      if (char !== ' ' && char !== '\n' && char !== '\r' && char !== '\t') return;
      this.pos++;
    }
  }

  private syntaxError(expected: string, shift = 0): never {
    const at = this.pos + shift;
    const code = this.text.charCodeAt(at);
    const found = Number.isNaN(code) ? 'the end of the header'
      : code < 0x20 || code === 0x7f || code === 0xfeff ? `U+${code.toString(16).toUpperCase().padStart(4, '0')}`
        : `'${this.text[at]}'`;
    return this.fail(`the header is not valid JSON: expected ${expected} at character ${at} but found ${found}`);
  }

  private duplicateKeyMessage(key: string): string {
    if (this.path.length === 0) {
      return key === '__metadata__'
        ? 'the header has key __metadata__ twice (duplicate keys are not allowed)'
        : `the header names tensor '${key}' twice (duplicate keys are not allowed)`;
    }
    const owner = this.path[0] === '__metadata__' ? '__metadata__' : `the entry of tensor '${this.path[0]}'`;
    return `${owner} has key '${key}' twice (duplicate keys are not allowed)`;
  }
}

// ---------------------------------------------------------------------------
// Header schema and data layout

interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

interface Header {
  /** Sorted by data offsets. */
  entries: TensorEntry[];
  metadata: Record<string, string>;
}

/** Throws a SafetensorsError for this source; `code` defaults to ERR_SIMDFORMER_INVALID_SAFETENSORS. */
type Fail = (message: string, code?: ErrorCode) => never;

/** A node's source text for messages, shortened. */
function excerpt(text: string, node: JsonNode): string {
  const source = text.slice(node.start, node.end);
  return source.length <= 60 ? source : `${source.slice(0, 57)}...`;
}

/** A JSON integer as a safe non-negative number, or undefined. */
function readIndex(node: JsonNode): number | undefined {
  if (node.kind !== 'number' || !/^(0|[1-9][0-9]*)$/.test(node.text)) return undefined;
  const value = Number(node.text);
  return Number.isSafeInteger(value) ? value : undefined;
}

function readTensorEntry(name: string, node: JsonNode, text: string, fail: Fail): TensorEntry {
  const where = `tensor '${name}'`;
  if (node.kind !== 'object') {
    return fail(`expected an object with dtype, shape and data_offsets for ${where} but received ${excerpt(text, node)}`);
  }
  const field = (key: string): JsonNode => node.entries.get(key) ?? fail(`the entry of ${where} has no ${key}`);

  const dtype = field('dtype');
  if (dtype.kind !== 'string' || !DTYPE_BITS.has(dtype.value)) {
    fail(`expected a safetensors dtype (${[...DTYPE_BITS.keys()].join(', ')}) for the dtype of ${where} `
      + `but received ${excerpt(text, dtype)}`);
  }
  const shapeNode = field('shape');
  const shape = shapeNode.kind === 'array' ? shapeNode.items.map(readIndex) : [undefined];
  if (shape.includes(undefined)) {
    fail(`expected an array of non-negative integers for the shape of ${where} but received ${excerpt(text, shapeNode)}`);
  }
  const offsetsNode = field('data_offsets');
  const offsets = offsetsNode.kind === 'array' && offsetsNode.items.length === 2 ? offsetsNode.items.map(readIndex) : [undefined];
  if (offsets.includes(undefined)) {
    fail(`expected two non-negative integers no larger than 2^53 - 1 for the data_offsets of ${where} `
      + `but received ${excerpt(text, offsetsNode)}`);
  }
  return { name, dtype: (dtype as { value: string }).value, shape: shape as number[], begin: offsets[0]!, end: offsets[1]! };
}

function readMetadata(node: JsonNode, text: string, fail: Fail): Record<string, string> {
  const metadata: Record<string, string> = Object.create(null);
  if (node.kind === 'literal' && node.text === 'null') return metadata;
  if (node.kind !== 'object') return fail(`expected an object of strings for __metadata__ but received ${excerpt(text, node)}`);
  for (const [key, value] of node.entries) {
    if (value.kind !== 'string') fail(`expected a string for __metadata__ key '${key}' but received ${excerpt(text, value)}`);
    metadata[key] = (value as { value: string }).value;
  }
  return metadata;
}

/** The byte size of `shape` elements of `dtype`, checked against overflow and sub-byte remainders. */
function byteSize(entry: TensorEntry, fail: Fail): number {
  const bits = DTYPE_BITS.get(entry.dtype)!;
  let numel = 1;
  for (const size of entry.shape) {
    numel *= size;
    if (!Number.isSafeInteger(numel * bits)) {
      fail(`the shape [${entry.shape.join(', ')}] of tensor '${entry.name}' is too large to address (over 2^53 - 1 bits)`);
    }
  }
  if ((numel * bits) % 8 !== 0) {
    fail(`tensor '${entry.name}' has ${numel} elements of ${bits} bits, which is not a whole number of bytes`);
  }
  return (numel * bits) / 8;
}

/**
 * The reference rule: the tensors, sorted by offsets, must tile the data
 * buffer exactly, from byte 0 to its end, each with the byte size its shape
 * and dtype need.
 */
function checkLayout(entries: TensorEntry[], dataLength: number, fail: Fail): void {
  let cursor = 0;
  let previous: TensorEntry | undefined;
  for (const entry of entries) {
    const range = `data_offsets [${entry.begin}, ${entry.end}]`;
    if (entry.end < entry.begin) fail(`the ${range} of tensor '${entry.name}' end before they begin`);
    if (entry.begin > cursor) {
      fail(`tensor '${entry.name}' starts at byte ${entry.begin} of the data buffer but the tensors before it end `
        + `at byte ${cursor}: the bytes in between belong to no tensor (gaps are not allowed)`);
    }
    if (entry.begin < cursor) {
      fail(`the ${range} of tensor '${entry.name}' overlap those of tensor '${previous!.name}' `
        + `([${previous!.begin}, ${previous!.end}]) (overlaps are not allowed)`);
    }
    const needed = byteSize(entry, fail);
    if (entry.end - entry.begin !== needed) {
      fail(`tensor '${entry.name}' has ${entry.end - entry.begin} bytes (${range}) but shape [${entry.shape.join(', ')}] `
        + `of dtype ${entry.dtype} needs ${needed}`);
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor > dataLength) {
    fail(`tensor '${previous!.name}' ends at byte ${cursor} of the data buffer but the buffer has only ${dataLength} bytes`);
  }
  if (cursor < dataLength) {
    fail(`the data buffer has ${dataLength} bytes but its tensors end at byte ${cursor} `
      + '(trailing bytes after the last tensor are not allowed)');
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Checks the 8-byte prefix against the source size and returns N. Kept apart
 * from parseHeader so a file reader knows how much to read next.
 */
function readHeaderLength(prefix: Uint8Array, size: number, fail: Fail): number {
  if (size < 8) fail(`expected at least 8 bytes (the header length) but received ${size}`);
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_LENGTH)) fail(`the header length ${length} is over the limit of ${MAX_HEADER_LENGTH} bytes`);
  const headerLength = Number(length);
  if (8 + headerLength > size) {
    fail(`the header length ${headerLength} runs past the end of the data (8 + ${headerLength} > ${size} bytes)`);
  }
  return headerLength;
}

function parseHeader(headerBytes: Uint8Array, dataLength: number, fail: Fail): Header {
  let text: string;
  try {
    text = UTF8.decode(headerBytes);
  } catch {
    return fail('the header is not valid UTF-8');
  }
  const usual = parseUsualHeader(text);
  if (usual !== null) {
    checkLayout(usual.entries, dataLength, fail);
    return usual;
  }
  const root = new HeaderParser(text, fail).parseDocument();
  if (root.kind !== 'object') return fail(`expected a JSON object for the header but received ${excerpt(text, root)}`);

  let metadata: Record<string, string> = Object.create(null);
  const entries: TensorEntry[] = [];
  for (const [name, node] of root.entries) {
    if (name === '__metadata__') metadata = readMetadata(node, text, fail);
    else entries.push(readTensorEntry(name, node, text, fail));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);  // stable: ties keep header order
  checkLayout(entries, dataLength, fail);
  return { entries, metadata };
}

/** Integers as readIndex takes them: safe and non-negative (their text is checked by parseUsualHeader). */
function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** An array index key ('0', '1', ...): objects list those first, not in document order. */
const INDEX_KEY = /^(?:0|[1-9][0-9]{0,9})$/;
/** Without backslashes a string holds no quote: this finds exactly the strings, and the keys (a string, then ':'). */
const STRING = /"[^"]*"/g;
const KEY = /"[^"]*"[ \t\n\r]*:/g;
/** Between the strings, anything but JSON's structure, whitespace and digits (`null` removed first). */
const NOT_PLAIN = /[^ \t\n\r{}[\]:,0-9]/;

/**
 * The header of a file as writers make it, read by JSON.parse instead of
 * HeaderParser (interpreted JavaScript, a millisecond or more for a
 * transformer's header in a fresh process), or null: then HeaderParser reads
 * it and gives the error, if any. Taken only where JSON.parse provably reads
 * what HeaderParser would and every entry is valid:
 * - no backslash: strings hold no escapes (so no lone surrogates, which
 *   serde_json refuses and JSON.parse accepts) and no quotes;
 * - between the strings, only structure, whitespace, digits and `null`: every
 *   number is a plain non-negative integer (no sign, fraction or exponent;
 *   JSON.parse itself refuses leading zeros), read exactly if safe;
 * - as many keys in the text as in the parsed objects: no key repeats in an
 *   object (JSON.parse keeps the last);
 * - no array-index keys (objects list them first, where header order is
 *   kept) and nothing nested deeper than a tensor entry's shape.
 */
function parseUsualHeader(text: string): Header | null {
  if (text.includes('\\')) return null;
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return null;
  }
  if (NOT_PLAIN.test(text.replace(STRING, '').replaceAll('null', ''))) return null;
  if (typeof root !== 'object' || root === null || Array.isArray(root)) return null;
  let keys = 0;
  const metadata: Record<string, string> = Object.create(null);
  const entries: TensorEntry[] = [];
  for (const [name, value] of Object.entries(root)) {
    keys++;
    if (INDEX_KEY.test(name)) return null;
    if (typeof value !== 'object' || Array.isArray(value)) return null;
    if (name === '__metadata__') {
      if (value === null) continue;
      for (const [key, item] of Object.entries(value)) {
        keys++;
        if (INDEX_KEY.test(key) || typeof item !== 'string') return null;
        metadata[key] = item;
      }
      continue;
    }
    if (value === null) return null;
    const fields = Object.keys(value);
    keys += fields.length;
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (fields.length !== 3 || typeof dtype !== 'string' || !DTYPE_BITS.has(dtype)) return null;
    if (!Array.isArray(shape) || !shape.every(isIndex)) return null;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) return null;
    entries.push({ name, dtype, shape, begin: offsets[0], end: offsets[1] });
  }
  if ((text.match(KEY)?.length ?? 0) !== keys) return null;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);  // stable: ties keep header order
  return { entries, metadata };
}

function decodeTensor(entry: TensorEntry, raw: Uint8Array, owned: boolean, fail: Fail): Tensor {
  const decode = DECODERS.get(entry.dtype);
  if (decode === undefined) {
    fail(`tensor '${entry.name}' has dtype ${entry.dtype}, which simdformer does not support `
      + `(supported: ${[...DECODERS.keys()].join(', ')})`, 'ERR_SIMDFORMER_UNSUPPORTED_DTYPE');
  }
  const numel = entry.shape.reduce((product, size) => product * size, 1);
  return new Tensor(decode!(raw, numel, owned), entry.shape);
}

// ---------------------------------------------------------------------------
// Reading

export interface LoadOptions {
  /** Also return the header's `__metadata__`: the result is then `{ tensors, metadata }`. */
  metadata?: boolean;
}

export interface SafetensorsContents {
  tensors: Map<string, Tensor>;
  /** `__metadata__`, a null-prototype record; empty when the file has none. */
  metadata: Record<string, string>;
}

/** Errors start `Invalid safetensors file '<path>': ` (or `... data: `), `Cannot load ...` for an unsupported dtype. */
function failer(source: string | Uint8Array): Fail {
  const what = typeof source === 'string' ? `safetensors file '${source}'` : 'safetensors data';
  return (message, code = 'ERR_SIMDFORMER_INVALID_SAFETENSORS') => {
    const verb = code === 'ERR_SIMDFORMER_UNSUPPORTED_DTYPE' ? 'Cannot load' : 'Invalid';
    throw new SafetensorsError(`${verb} ${what}: ${message}`, code);
  };
}

function checkSource(source: unknown): string | Uint8Array {
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) {
    throw invalidType('pathOrBuffer', 'a file path string or a Uint8Array', source);
  }
  return source;
}

function checkLoadOptions(options: unknown): boolean {
  if (options === undefined) return false;
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'an object', options);
  const { metadata } = options as LoadOptions;
  if (metadata !== undefined && typeof metadata !== 'boolean') throw invalidType('options.metadata', 'a boolean', metadata);
  return metadata === true;
}

function result(header: Header, tensors: Map<string, Tensor>, withMetadata: boolean): Map<string, Tensor> | SafetensorsContents {
  return withMetadata ? { tensors, metadata: header.metadata } : tensors;
}

/** `owned`: the bytes are a private mapping of the file, so aligned tensors may be views of them. */
function loadFromBytes(bytes: Uint8Array, fail: Fail, owned = false): { header: Header; tensors: Map<string, Tensor> } {
  const headerLength = readHeaderLength(bytes, bytes.length, fail);
  const dataStart = 8 + headerLength;
  const header = parseHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, fail);
  const tensors = new Map<string, Tensor>();
  for (const entry of header.entries) {
    const raw = bytes.subarray(dataStart + entry.begin, dataStart + entry.end);
    tensors.set(entry.name, decodeTensor(entry, raw, owned, fail));
  }
  return { header, tensors };
}

// ---------------------------------------------------------------------------
// Mapping: a file's bytes without reading them

/**
 * Files that loadSafetensors mapped and whose tensors may still be alive,
 * `dev:ino` → number of mappings. Such a file must not be truncated: its
 * pages would vanish from under the tensors, and touching them would kill
 * the process (SIGBUS). saveSafetensors therefore replaces such a file by
 * renaming a new one over it instead of rewriting it in place.
 */
const liveMappings = new Map<string, number>();
const mappingCollected = new FinalizationRegistry<string>((key) => {
  const count = liveMappings.get(key)! - 1;
  if (count === 0) liveMappings.delete(key);
  else liveMappings.set(key, count);
});

function fileKey(stat: fs.BigIntStats): string {
  return `${stat.dev}:${stat.ino}`;
}

/**
 * The open file's bytes mapped copy-on-write (binding.mapFile: no read, no
 * copy; JavaScript may write to the tensors, the file never changes), or null
 * where that is not possible and the file must be read: not a regular file,
 * empty, over Node's buffer size limit, or mapping refused.
 */
function mapFile(fd: number, stat: fs.BigIntStats): Uint8Array | null {
  if (!stat.isFile() || stat.size === 0n || stat.size > BigInt(bufferConstants.MAX_LENGTH)) return null;
  const mapped = binding.mapFile(fd, Number(stat.size));
  if (mapped === null) return null;
  const key = fileKey(stat);
  liveMappings.set(key, (liveMappings.get(key) ?? 0) + 1);
  mappingCollected.register(mapped, key);
  return new Uint8Array(mapped);
}

function readFullySync(fd: number, target: Uint8Array, position: number, fail: Fail): void {
  for (let done = 0; done < target.length;) {
    const count = fs.readSync(fd, target, done, Math.min(IO_CHUNK, target.length - done), position + done);
    if (count === 0) fail(`the file ended at byte ${position + done} while reading it (was it changed meanwhile?)`);
    done += count;
  }
}

const openAsync = promisify(fs.open);
const readAsync = promisify(fs.read);

async function readFully(fd: number, target: Uint8Array, position: number, fail: Fail): Promise<void> {
  for (let done = 0; done < target.length;) {
    const { bytesRead } = await readAsync(fd, target, done, Math.min(IO_CHUNK, target.length - done), position + done);
    if (bytesRead === 0) fail(`the file ended at byte ${position + done} while reading it (was it changed meanwhile?)`);
    done += bytesRead;
  }
}

/**
 * Maps the file (zero copy: tensors aligned to their element size, which is
 * how writers lay them out, are views of the mapping; others are copied), or
 * where it cannot be mapped reads it piece by piece: prefix, header, then
 * each tensor straight into its own fresh buffer (no copy of the whole file,
 * no 2 GiB file limit). The checks and errors are the same either way.
 */
function loadFromFileSync(path: string, fail: Fail): { header: Header; tensors: Map<string, Tensor> } {
  const fd = fs.openSync(path, 'r');
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    const mapped = mapFile(fd, stat);
    if (mapped !== null) return loadFromBytes(mapped, fail, true);
    const size = Number(stat.size);
    const prefix = new Uint8Array(8);
    if (size >= 8) readFullySync(fd, prefix, 0, fail);
    const headerLength = readHeaderLength(prefix, size, fail);
    const headerBytes = new Uint8Array(headerLength);
    readFullySync(fd, headerBytes, 8, fail);
    const dataStart = 8 + headerLength;
    const header = parseHeader(headerBytes, size - dataStart, fail);
    const tensors = new Map<string, Tensor>();
    for (const entry of header.entries) {
      const raw = new Uint8Array(entry.end - entry.begin);
      readFullySync(fd, raw, dataStart + entry.begin, fail);
      tensors.set(entry.name, decodeTensor(entry, raw, true, fail));
    }
    return { header, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * loadFromFileSync with an asynchronous open and reads. fstat, mmap and close
 * of an open descriptor wait on no I/O, so they are synchronous: a mapped
 * file costs one round trip through libuv's thread pool instead of three
 * (in a fresh process, where the first one also starts the pool: 0.65 against
 * 1.7 ms with a FileHandle's open, stat and close).
 */
async function loadFromFile(path: string, fail: Fail): Promise<{ header: Header; tensors: Map<string, Tensor> }> {
  const fd = await openAsync(path, 'r');
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    const mapped = mapFile(fd, stat);
    if (mapped !== null) return loadFromBytes(mapped, fail, true);
    const size = Number(stat.size);
    const prefix = new Uint8Array(8);
    if (size >= 8) await readFully(fd, prefix, 0, fail);
    const headerLength = readHeaderLength(prefix, size, fail);
    const headerBytes = new Uint8Array(headerLength);
    await readFully(fd, headerBytes, 8, fail);
    const dataStart = 8 + headerLength;
    const header = parseHeader(headerBytes, size - dataStart, fail);
    const tensors = new Map<string, Tensor>();
    for (const entry of header.entries) {
      const raw = new Uint8Array(entry.end - entry.begin);
      await readFully(fd, raw, dataStart + entry.begin, fail);
      tensors.set(entry.name, decodeTensor(entry, raw, true, fail));
    }
    return { header, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

/** Loads a safetensors file (a path, read asynchronously) or its bytes. */
export async function loadSafetensors(pathOrBuffer: string | Uint8Array): Promise<Map<string, Tensor>>;
export async function loadSafetensors(pathOrBuffer: string | Uint8Array, options: { metadata: true }): Promise<SafetensorsContents>;
export async function loadSafetensors(pathOrBuffer: string | Uint8Array, options?: LoadOptions): Promise<Map<string, Tensor> | SafetensorsContents>;
export async function loadSafetensors(pathOrBuffer: string | Uint8Array, options?: LoadOptions): Promise<Map<string, Tensor> | SafetensorsContents> {
  const source = checkSource(pathOrBuffer);
  const withMetadata = checkLoadOptions(options);
  const fail = failer(source);
  const { header, tensors } = typeof source === 'string' ? await loadFromFile(source, fail) : loadFromBytes(source, fail);
  return result(header, tensors, withMetadata);
}

/** Loads a safetensors file (a path, read synchronously) or its bytes. */
export function loadSafetensorsSync(pathOrBuffer: string | Uint8Array): Map<string, Tensor>;
export function loadSafetensorsSync(pathOrBuffer: string | Uint8Array, options: { metadata: true }): SafetensorsContents;
export function loadSafetensorsSync(pathOrBuffer: string | Uint8Array, options?: LoadOptions): Map<string, Tensor> | SafetensorsContents;
export function loadSafetensorsSync(pathOrBuffer: string | Uint8Array, options?: LoadOptions): Map<string, Tensor> | SafetensorsContents {
  const source = checkSource(pathOrBuffer);
  const withMetadata = checkLoadOptions(options);
  const fail = failer(source);
  const { header, tensors } = typeof source === 'string' ? loadFromFileSync(source, fail) : loadFromBytes(source, fail);
  return result(header, tensors, withMetadata);
}

// ---------------------------------------------------------------------------
// Writing

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;
export type Metadata = Map<string, string> | Record<string, string>;

/** Our dtypes, with the reference's dtype order (descending alignment first when saving). */
const SAVE_DTYPES: Record<DType, { name: string; rank: number }> = {
  int64: { name: 'I64', rank: 3 },
  float32: { name: 'F32', rank: 2 },
  int32: { name: 'I32', rank: 1 },
  bool: { name: 'BOOL', rank: 0 },
};

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Entries of a Map or of a plain object's own enumerable string keys. */
function entriesOf(name: string, value: unknown, expected: string): [unknown, unknown][] {
  if (value instanceof Map) return [...value.entries()];
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)
    && !(value instanceof Tensor)) {
    return Object.entries(value);
  }
  throw invalidType(name, expected, value);
}

function checkString(name: string, value: unknown, what: string): string {
  if (typeof value !== 'string') throw invalidType(name, what, value);
  if (LONE_SURROGATE.test(value)) throw invalidValue(name, `${what} without lone surrogates (it must encode as UTF-8)`, value);
  return value;
}

function checkStateDict(stateDict: unknown): [string, Tensor][] {
  return entriesOf('stateDict', stateDict, 'a Map or an object of Tensors').map(([key, tensor]) => {
    const name = checkString('a key of stateDict', key, 'a string');
    if (name === '__metadata__') throw invalidValue('a key of stateDict', 'a tensor name other than __metadata__', name);
    if (!(tensor instanceof Tensor)) throw invalidType(`stateDict['${name}']`, 'a Tensor', tensor);
    return [name, tensor];
  });
}

function checkMetadata(metadata: unknown): [string, string][] | undefined {
  if (metadata === undefined) return undefined;
  return entriesOf('metadata', metadata, 'a Map or an object of strings').map(([key, value]) => {
    const name = checkString('a key of metadata', key, 'a string');
    return [name, checkString(`metadata['${name}']`, value, 'a string')];
  });
}

/** The header (with its length prefix) and each tensor's bytes, in file order. */
function prepare(stateDict: unknown, metadata: unknown): Uint8Array[] {
  const tensors = checkStateDict(stateDict).map(([name, tensor]) => ({ name, tensor, key: Buffer.from(name, 'utf8') }));
  const metadataEntries = checkMetadata(metadata);
  tensors.sort((a, b) => SAVE_DTYPES[b.tensor.dtype].rank - SAVE_DTYPES[a.tensor.dtype].rank || Buffer.compare(a.key, b.key));

  const members: string[] = [];
  if (metadataEntries !== undefined) {
    members.push(`"__metadata__":{${metadataEntries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const { name, tensor } of tensors) {
    const data = tensor.data;
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (tensor.dtype === 'bool' && bytes.some((byte) => byte > 1)) bytes = toBoolBytes(bytes);
    members.push(`${JSON.stringify(name)}:{"dtype":"${SAVE_DTYPES[tensor.dtype].name}",`
      + `"shape":[${tensor.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`);
    offset += bytes.length;
    chunks.push(bytes);
  }
  const json = new TextEncoder().encode(`{${members.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;  // data starts 8-byte aligned, as the reference writes
  const header = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerLength), true);
  header.set(json, 8);
  return [header, ...chunks];
}

/** The bytes of a safetensors file holding `stateDict` (and `metadata` as `__metadata__`). */
export function serializeSafetensors(stateDict: StateDict, metadata?: Metadata): Uint8Array {
  const chunks = prepare(stateDict, metadata);
  const out = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string') throw invalidType('path', 'a file path string', path);
  return path;
}

let replacements = 0;

/**
 * Where a save writes: `path` itself, or, when loadSafetensors has that file
 * mapped (liveMappings), a new file beside it, renamed over it once written:
 * the mapped tensors keep the old file's pages (it lives on, unnamed, until
 * they are collected), which truncating it in place would take from them.
 */
function replacement(path: string): { temporary: string; target: string; mode: number } | null {
  if (liveMappings.size === 0) return null;
  const stat = fs.statSync(path, { bigint: true, throwIfNoEntry: false });
  if (stat === undefined || !liveMappings.has(fileKey(stat))) return null;
  const target = fs.realpathSync(path);
  // Unique per process, thread and call; opened with 'wx', so never someone else's file.
  const temporary = `${target}.${process.pid}-${threadId}-${++replacements}.tmp`;
  return { temporary, target, mode: Number(stat.mode & 0o7777n) };
}

/** Writes `stateDict` to a safetensors file, synchronously (tensor by tensor, no copy of the whole file). */
export function saveSafetensorsSync(path: string, stateDict: StateDict, metadata?: Metadata): void {
  checkPath(path);
  const chunks = prepare(stateDict, metadata);
  const replace = replacement(path);
  const fd = fs.openSync(replace?.temporary ?? path, replace ? 'wx' : 'w');
  try {
    if (replace) fs.fchmodSync(fd, replace.mode);
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length;) done += fs.writeSync(fd, chunk, done, Math.min(IO_CHUNK, chunk.length - done));
    }
  } catch (error) {
    if (replace) fs.rmSync(replace.temporary, { force: true });
    throw error;
  } finally {
    fs.closeSync(fd);
  }
  if (replace) fs.renameSync(replace.temporary, replace.target);
}

/** Writes `stateDict` to a safetensors file. */
export async function saveSafetensors(path: string, stateDict: StateDict, metadata?: Metadata): Promise<void> {
  checkPath(path);
  const chunks = prepare(stateDict, metadata);
  const replace = replacement(path);
  const handle = await fs.promises.open(replace?.temporary ?? path, replace ? 'wx' : 'w');
  try {
    if (replace) await handle.chmod(replace.mode);
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length;) {
        done += (await handle.write(chunk, done, Math.min(IO_CHUNK, chunk.length - done))).bytesWritten;
      }
    }
  } catch (error) {
    if (replace) await fs.promises.rm(replace.temporary, { force: true });
    throw error;
  } finally {
    await handle.close();
  }
  if (replace) await fs.promises.rename(replace.temporary, replace.target);
}

// Structured JSON logs (winston) behind a redaction layer. The layer runs on every entry, whoever wrote it,
// because a reviewer cannot check every call site: passwords, tokens and Secret data must never reach stdout.
import winston from 'winston';
import type { Writable } from 'node:stream';

/** The part of winston's Logger the runtime and controllers use; a winston Logger satisfies it. */
export interface Logger {
  error(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
  child(meta: Record<string, unknown>): Logger;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export const REDACTED = '[REDACTED]';

/** Field names whose values are never logged, at any depth. */
const SENSITIVE_KEY = /password|passwd|token|secret|jwt|key|authorization|credential|cookie/i;

// Values masked wherever they appear, message strings included. Vault service tokens are `hvs.`/`s.`, batch
// tokens `hvb.`/`b.`, recovery tokens `hvr.`/`r.`; the length floor keeps "s.t." in prose untouched.
const VALUE_PATTERNS: readonly [RegExp, RegExp] = [
  /\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}/g,
  /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, // JWTs: header.payload.signature
];
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+):[^\s@/]+@/gi; // postgres://user:pass@host

// Cheap tests that every match of the patterns above passes (each needs these substrings), so that the
// regular expressions only run on text that might hold a secret: most log text holds none, and running all
// four on every string of every entry was most of what a log line cost.
const MAYBE_AUTH_SCHEME = /bearer|basic/i;
const mayHoldVaultToken = (s: string) => s.includes('s.') || s.includes('b.') || s.includes('r.');

/** Masks token-like substrings of free text. */
export function maskString(s: string): string {
  let out = s;
  if (MAYBE_AUTH_SCHEME.test(out)) out = out.replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`);
  if (out.includes('://') && out.includes('@')) out = out.replace(URL_PASSWORD, `$1:${REDACTED}@`);
  if (mayHoldVaultToken(out)) out = out.replace(VALUE_PATTERNS[0]!, REDACTED);
  if (out.includes('eyJ')) out = out.replace(VALUE_PATTERNS[1]!, REDACTED);
  return out;
}

const MAX_DEPTH = 8;

/**
 * Returns a copy of `value` safe to log: sensitive keys replaced, token-like strings masked, Errors reduced to
 * describeError. Never mutates its input (callers may pass live cache objects).
 */
export function redact(value: unknown, depth = 0, seen?: WeakSet<object>): unknown {
  if (typeof value === 'string') return maskString(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return describeError(value);
  if (value instanceof Date) return value.toISOString();
  seen ??= new WeakSet<object>();
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactEntry(k, v, depth + 1, seen);
  return out;
}

// Field names repeat from line to line: remember which are sensitive (bounded, in case keys are data).
const sensitiveKeys = new Map<string, boolean>();

function isSensitiveKey(key: string): boolean {
  let v = sensitiveKeys.get(key);
  if (v === undefined) {
    v = SENSITIVE_KEY.test(key);
    if (sensitiveKeys.size >= 2_000) sensitiveKeys.clear();
    sensitiveKeys.set(key, v);
  }
  return v;
}

function redactEntry(key: string, value: unknown, depth: number, seen: WeakSet<object> | undefined): unknown {
  if (isSensitiveKey(key) && value !== undefined && value !== null && value !== '') return REDACTED;
  // A Secret's payload is sensitive whatever its keys are called.
  if ((key === 'data' || key === 'stringData') && value !== null && typeof value === 'object') return REDACTED;
  return redact(value, depth, seen);
}

const RESERVED = new Set(['level', 'timestamp']);

/** A winston format applying `redact` to every field of every entry, the message included. */
export const redactFormat = winston.format((info) => {
  for (const k of Object.keys(info)) {
    if (RESERVED.has(k)) continue;
    const v = info[k];
    info[k] = k === 'message' ? (typeof v === 'string' ? maskString(v) : redact(v)) : redactEntry(k, v, 0, undefined);
  }
  return info;
});

export interface LoggerOptions {
  level?: LogLevel;
  /** Where JSON lines go; stdout by default. Tests pass a buffer. */
  stream?: Writable;
  defaultMeta?: Record<string, unknown>;
}

export function createLogger(opts: LoggerOptions = {}): winston.Logger {
  // A Stream transport on stdout rather than Console: Console goes through console.log in some set-ups, and
  // process.stdout writes are synchronous on Linux for files and pipes, so lines are not lost at exit.
  const transport = new winston.transports.Stream({ stream: opts.stream ?? process.stdout });
  return winston.createLogger({
    level: opts.level ?? 'info',
    defaultMeta: opts.defaultMeta,
    format: winston.format.combine(winston.format.timestamp(), redactFormat(), winston.format.json()),
    transports: [transport],
  });
}

/** A logger that drops everything; for tests and optional dependencies. */
export function nullLogger(): Logger {
  const l: Logger = { error: () => l, warn: () => l, info: () => l, debug: () => l, child: () => l };
  return l;
}

interface StatusLike {
  reason?: unknown;
  message?: unknown;
}

function parseStatus(body: unknown): StatusLike | undefined {
  if (typeof body === 'string') {
    try {
      return parseStatus(JSON.parse(body));
    } catch {
      return undefined;
    }
  }
  return body !== null && typeof body === 'object' ? (body as StatusLike) : undefined;
}

const MAX_DESCRIPTION = 1024;

/**
 * One safe line describing an error. An ApiException's own message embeds response headers and body, so for
 * HTTP errors only the status code and the Kubernetes Status reason/message are kept; the cause chain follows.
 */
export function describeError(err: unknown, depth = 0): string {
  let text: string;
  if (err === null || err === undefined) text = String(err);
  else if (typeof err !== 'object') text = maskString(String(err));
  else {
    const e = err as {
      name?: unknown;
      message?: unknown;
      code?: unknown;
      statusCode?: unknown;
      body?: unknown;
      cause?: unknown;
      safeMessage?: unknown;
    };
    const httpStatus =
      typeof e.statusCode === 'number' ? e.statusCode : typeof e.code === 'number' && 'body' in e ? e.code : undefined;
    if (typeof e.safeMessage === 'string') text = e.safeMessage;
    else if (httpStatus !== undefined) {
      const st = parseStatus(e.body);
      const parts = [`HTTP ${httpStatus}`];
      if (typeof st?.reason === 'string' && st.reason) parts.push(st.reason);
      if (typeof st?.message === 'string' && st.message) parts.push(st.message);
      text = parts.length === 1 ? parts[0]! : `${parts[0]} ${parts.slice(1).join(': ')}`;
    } else {
      const name = typeof e.name === 'string' && e.name !== 'Error' ? `${e.name}: ` : '';
      const code = typeof e.code === 'string' ? ` (${e.code})` : '';
      text = `${name}${typeof e.message === 'string' ? e.message : Object.prototype.toString.call(err)}${code}`;
    }
    text = maskString(text);
    if (e.cause !== undefined && depth < 3) text += `; cause: ${describeError(e.cause, depth + 1)}`;
  }
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION)}…` : text;
}

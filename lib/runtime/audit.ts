// The durable audit stream: every audit record the controllers make, as one JSON line on the operator's stdout
// under the fixed top-level key `audit` (`{"audit":{"action":…,"at":…,…}}`), then handed to each subscriber (the
// notifiers, which forward records to webhooks: the way to keep them beyond the operator's log retention).
//
// A record says who, what, when and which lease; it never holds a credential. The same redaction as every log
// line runs on it anyway (logging.ts redact), so a field that would carry a secret by mistake is masked here too.
import type { Writable } from 'node:stream';
import { redact } from './logging.ts';

/**
 * One audit record: `action` (a Reason or Event reason, e.g. SuccessfullyIssuedCredential), `at` (RFC 3339, when
 * the operator recorded it), `request` ("namespace/name") and whatever else the producer records (role, subjects,
 * requester, decision, leaseId, message…; see controllers/databaseaccessrequest/approval.ts auditFields).
 */
export interface AuditRecord {
  action: string;
  at: string;
  request?: string;
  [field: string]: unknown;
}

/** Gets each record after it is written; must not throw (a throw is caught and dropped). */
export type AuditSubscriber = (record: AuditRecord) => void;

/** What producers call: `ctx.audit.record(rec)`. */
export interface AuditRecorder {
  record(record: AuditRecord): void;
}

export interface AuditSinkOptions {
  /** Where the JSON lines go; stdout by default (synchronous for files and pipes on Linux, so none is lost at exit). */
  stream?: Writable;
}

export class AuditSink implements AuditRecorder {
  private readonly subscribers = new Set<AuditSubscriber>();
  private readonly stream: Writable;

  constructor(opts: AuditSinkOptions = {}) {
    this.stream = opts.stream ?? process.stdout;
  }

  /** Writes the record as one line `{"audit":{…}}`, then fans it out to the subscribers in subscription order. */
  record(record: AuditRecord): void {
    const clean = auditLine(record);
    this.stream.write(`${JSON.stringify({ audit: clean })}\n`);
    for (const s of this.subscribers) {
      try {
        s(clean);
      } catch {
        // A subscriber's bug must not cost the record, the other subscribers, or the reconcile that made it.
      }
    }
  }

  /** Adds a subscriber; returns the function that removes it. */
  subscribe(fn: AuditSubscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}

/**
 * The record as written: redacted like a log line, without a producer's own `audit: true` marker (the
 * top-level key says it), and with `action` and `at` first.
 */
export function auditLine(record: AuditRecord): AuditRecord {
  const { audit: _marker, action, at, ...rest } = record;
  return { action, at, ...(redact(rest) as Record<string, unknown>) };
}

/** Keeps records in memory (and fans them out like the real sink): for tests and tools. */
export class MemoryAuditSink extends AuditSink {
  readonly records: AuditRecord[] = [];
  constructor() {
    super({ stream: { write: () => true } as unknown as Writable });
    this.subscribe((r) => this.records.push(r));
  }
}

// `-f FILE` like kubectl: YAML or JSON files (several documents, or a List), "-" for stdin, or a directory
// (its .yaml, .yml and .json files). Only the kind, name and namespace of each object are used: the command
// acts on the request as it is in the cluster, never on the file's copy.
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DATABASE_ACCESS_REQUEST, ENGINE_GROUP } from '../../api/index.ts';
import { CommandError } from './errors.ts';

export interface Target {
  name: string;
  /** From the object; undefined when the file doesn't say. */
  namespace?: string;
  /** Where it was named, for messages. */
  source: string;
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

function expand(file: string): string[] {
  if (file === '-') return [file];
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new CommandError(`the path "${file}" does not exist`);
  }
  if (!stat.isDirectory()) return [file];
  return fs
    .readdirSync(file)
    .filter((f) => EXTENSIONS.has(path.extname(f)))
    .sort()
    .map((f) => path.join(file, f));
}

function objectsOf(doc: unknown): unknown[] {
  if (doc === null || doc === undefined) return [];
  const o = doc as { kind?: unknown; items?: unknown };
  if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items))
    return o.items.flatMap(objectsOf);
  return [doc];
}

export function targetsFromText(text: string, source: string): Target[] {
  const targets: Target[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0)
      throw new CommandError(`${source}: not valid YAML or JSON: ${doc.errors[0]!.message.split('\n')[0]}`);
    for (const obj of objectsOf(doc.toJS())) {
      const o = obj as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
      if (
        o.kind !== DATABASE_ACCESS_REQUEST.kind ||
        typeof o.apiVersion !== 'string' ||
        !o.apiVersion.startsWith(`${ENGINE_GROUP}/`)
      ) {
        throw new CommandError(
          `${source}: ${String(o.kind ?? 'an object without a kind')} is not a ${DATABASE_ACCESS_REQUEST.kind} (${ENGINE_GROUP})`,
        );
      }
      if (typeof o.metadata?.name !== 'string' || o.metadata.name === '')
        throw new CommandError(`${source}: a ${DATABASE_ACCESS_REQUEST.kind} without metadata.name`);
      targets.push({
        name: o.metadata.name,
        namespace: typeof o.metadata.namespace === 'string' && o.metadata.namespace ? o.metadata.namespace : undefined,
        source,
      });
    }
  }
  return targets;
}

export function readTargets(filenames: readonly string[], readStdin: () => string): Target[] {
  const targets: Target[] = [];
  for (const file of filenames.flatMap(expand)) {
    const text = file === '-' ? readStdin() : fs.readFileSync(file, 'utf8');
    targets.push(...targetsFromText(text, file === '-' ? 'stdin' : file));
  }
  if (targets.length === 0) throw new CommandError(`no ${DATABASE_ACCESS_REQUEST.kind} in ${filenames.join(', ')}`);
  return targets;
}

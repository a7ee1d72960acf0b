// Templated keys of a credential Secret: `spec.secretTemplate` of the role, overridden key by key by the
// request's, rendered with mustache over the credential and the database's address (the variables are the
// engine's: engines/<kind>.ts). Pure: no I/O, no clock.
//
// Delimiters are `<% %>`, never mustache's default `{{ }}`: Vault's own templates (creation statements, the
// connection URL) use `{{name}}`/`{{password}}`, and a manifest going through Helm would have its `{{ }}`
// eaten too. HTML escaping is off (`escape: String`); escaping per format is the template author's choice of
// variable (`urlPassword` inside a URI, `pgpassPassword` in a .pgpass line), each pre-escaped by the engine.
//
// A template is checked against the variables before anything is issued: an unknown variable, a partial, a
// delimiter change or a leftover `{{name}}` is an error reported in status, never an empty value in the Secret.
import crypto from 'node:crypto';
import Mustache from 'mustache';

export const TEMPLATE_TAGS: [string, string] = ['<%', '%>'];

/** Keys every credential Secret holds, whatever the template: the credential itself. */
export const CREDENTIAL_KEYS = ['username', 'password'] as const;

/** Variables that exist without a credential: the address ones. Unavailable ones say why. */
export interface AddressVariables {
  values: Record<string, string>;
  /** Variable → why it has no value (e.g. the role names no database AppBinding). */
  unavailable: Record<string, string>;
}

/** The whole view a template is rendered over: the address variables plus the credential's (an engine's). */
export function templateView(address: AddressVariables, credential: Record<string, string>): Record<string, string> {
  return { ...address.values, ...credential };
}

/** The merged templates: the role's, with the request's keys replacing the role's. */
export interface SecretTemplates {
  templates: Record<string, string>;
  /** Key → where its template comes from (for messages). */
  origin: Record<string, string>;
}

export function mergeTemplates(
  fromRole: Record<string, string> | undefined,
  roleName: string,
  fromRequest: Record<string, string> | undefined,
): SecretTemplates {
  const templates: Record<string, string> = {};
  const origin: Record<string, string> = {};
  for (const [k, v] of Object.entries(fromRole ?? {})) {
    templates[k] = v;
    origin[k] = `${roleName} spec.secretTemplate`;
  }
  for (const [k, v] of Object.entries(fromRequest ?? {})) {
    templates[k] = v;
    origin[k] = 'spec.secretTemplate';
  }
  return { templates, origin };
}

type Token = [type: string, value: string, start: number, end: number, children?: Token[], ...rest: unknown[]];

const VAULT_STYLE = /\{\{\s*[#^/&{>!]?\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}?\}\}/;

/**
 * Problems that would make a template render wrongly, in `origin key: what` form; empty when every template
 * is sound. Sections (`<%#v%>…<%/v%>`, `<%^v%>…<%/v%>`) may name a variable that has no value here (that is
 * what they are for); a plain `<%v%>` must name one that has.
 */
export function checkTemplates(
  t: SecretTemplates,
  address: AddressVariables,
  known: Readonly<Record<string, string>>,
): string[] {
  const problems: string[] = [];
  const KNOWN = new Set(Object.keys(known));
  // What a credential gives is always there; the address variables only when the address is known.
  const available = new Set<string>([
    ...Object.keys(address.values),
    ...[...KNOWN].filter((v) => !(v in address.values) && !(v in address.unavailable)),
  ]);
  for (const key of Object.keys(t.templates).sort()) {
    const where = `${t.origin[key]} key "${key}"`;
    if ((CREDENTIAL_KEYS as readonly string[]).includes(key)) {
      problems.push(`${where}: "${key}" always holds the credential itself and can't be templated; choose another key`);
      continue;
    }
    let tokens: Token[];
    try {
      tokens = Mustache.parse(t.templates[key]!, TEMPLATE_TAGS) as unknown as Token[];
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
      continue;
    }
    // Inside <%#v%>…<%/v%>, v is known to have a value.
    const walk = (list: Token[], guarded: ReadonlySet<string>) => {
      for (const tok of list) {
        const [type, value] = tok;
        switch (type) {
          case 'text': {
            const m = VAULT_STYLE.exec(value);
            if (m) problems.push(`${where}: "${m[0]}" uses {{ }}, which Leasehold leaves as text; write <%${m[1]}%>`);
            break;
          }
          case 'name':
          case '&':
            if (!KNOWN.has(value))
              problems.push(`${where}: unknown variable "${value}" (known: ${[...KNOWN].join(', ')})`);
            else if (!available.has(value) && !guarded.has(value))
              problems.push(`${where}: variable "${value}" has no value: ${address.unavailable[value] ?? 'unknown'}`);
            break;
          case '#':
          case '^':
            if (!KNOWN.has(value))
              problems.push(`${where}: unknown variable "${value}" in a section (known: ${[...KNOWN].join(', ')})`);
            walk(tok[4] ?? [], type === '#' ? new Set([...guarded, value]) : guarded);
            break;
          case '>':
            problems.push(`${where}: partials (<%>${value}%>) are not supported`);
            break;
          case '=':
            problems.push(`${where}: changing the delimiters (<%=${value}=%>) is not supported; templates use <% %>`);
            break;
          default: // '!' comments
            break;
        }
      }
    };
    walk(tokens, new Set());
  }
  return problems;
}

/** Renders every template (already checked) over the view; returns the Secret's string data, credential included. */
export function renderSecretData(t: SecretTemplates, view: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, tpl] of Object.entries(t.templates)) {
    out[key] = Mustache.render(tpl, view, {}, { tags: TEMPLATE_TAGS, escape: String });
  }
  out.username = view.username!;
  out.password = view.password!;
  return out;
}

/**
 * A fingerprint of what the templated keys are rendered from, apart from the credential: the templates and the
 * address. Kept on the Secret, so a changed template or address re-renders it without a new credential.
 */
export function layoutHash(t: SecretTemplates, address: AddressVariables): string {
  const sorted = (o: Record<string, unknown>) =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([sorted(t.templates), sorted(address.values)]))
    .digest('hex')
    .slice(0, 32);
}

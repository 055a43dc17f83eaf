import { StretcherError } from '../shared/errors.js';

/** What stdin asked for. */
export type DeployRequest =
  | { kind: 'deploy'; url: string; origin: 'consul' | 'serf' | 'serf query' | 'stdin' | 'the command line'; eventId?: string; eventName?: string }
  | { kind: 'nothing'; reason: string; origin: 'consul' | 'serf' }
  /** A Serf query (SERF_EVENT=query): answered on stdout, which the agent sends back to the asker. */
  | { kind: 'query'; name: string; payload: string };

/** Consul payloads are URLs; anything near this size is not one. Bounds memory on hostile input. */
export const MAX_EVENT_BYTES = 1024 * 1024;

/**
 * Turns a handler's stdin into a manifest URL. Three producers exist in the field: `consul watch -type
 * event` (a JSON array, newest last), a serf event handler (the raw payload, SERF_* set) and a person or
 * script piping a line.
 */
export function parseEvent(input: Buffer, env: NodeJS.ProcessEnv): DeployRequest {
  const text = input.toString('utf8');
  if (env.CONSUL_INDEX || text.trimStart().startsWith('[')) return parseConsul(text);
  if (env.SERF_EVENT !== undefined && env.SERF_EVENT !== '') return parseSerf(text, env);
  const url = firstLine(text);
  if (!url) throw new StretcherError('EVENT_INVALID', 'no manifest URL on stdin: expected a line such as s3://bucket/app/manifest.yml');
  return { kind: 'deploy', url, origin: 'stdin' };
}

function firstLine(text: string): string | undefined {
  return text
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .find((l) => l !== '');
}

function parseSerf(text: string, env: NodeJS.ProcessEnv): DeployRequest {
  const event = env.SERF_EVENT as string;
  if (event === 'query') return { kind: 'query', name: env.SERF_QUERY_NAME ?? '', payload: firstLine(text) ?? '' };
  // A catch-all handler also receives member-join/leave/... whose payload is a member list, not a URL.
  if (event !== 'user') return { kind: 'nothing', reason: `ignoring serf ${event} event`, origin: 'serf' };
  const name = env.SERF_USER_EVENT;
  const url = firstLine(text);
  if (!url) throw new StretcherError('EVENT_INVALID', `serf user event ${JSON.stringify(name ?? '')} has an empty payload: expected a manifest URL`);
  return { kind: 'deploy', url, origin: 'serf', ...(name ? { eventName: name } : {}) };
}

function parseConsul(text: string): DeployRequest {
  let events: unknown;
  try {
    events = JSON.parse(text);
  } catch (err) {
    throw new StretcherError('EVENT_INVALID', `invalid Consul event JSON on stdin: ${(err as Error).message}`);
  }
  if (!Array.isArray(events)) throw new StretcherError('EVENT_INVALID', 'invalid Consul event JSON on stdin: expected an array of events');
  if (events.length === 0) return { kind: 'nothing', reason: 'No Consul events found: nothing to do', origin: 'consul' };
  const last: unknown = events[events.length - 1];
  if (typeof last !== 'object' || last === null || Array.isArray(last)) {
    throw new StretcherError('EVENT_INVALID', 'invalid Consul event JSON on stdin: the last element is not an event object');
  }
  const field = (name: string): unknown => {
    // encoding/json matches keys case-insensitively, and Go stretcher relied on it.
    const key = Object.keys(last).find((k) => k.toLowerCase() === name);
    return key === undefined ? undefined : (last as Record<string, unknown>)[key];
  };
  const id = field('id');
  const name = field('name');
  const eventId = typeof id === 'string' && id !== '' ? id : undefined;
  const eventName = typeof name === 'string' && name !== '' ? name : undefined;
  const label = `Consul event${eventName ? ` ${JSON.stringify(eventName)}` : ''}${eventId ? ` (ID ${eventId})` : ''}`;
  const payload = field('payload');
  if (payload === null || payload === undefined || payload === '') throw new StretcherError('EVENT_INVALID', `${label} has no payload: expected a manifest URL`);
  if (typeof payload !== 'string') throw new StretcherError('EVENT_INVALID', `${label} has a payload that is not a base64 string`);
  const compact = payload.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw new StretcherError('EVENT_INVALID', `${label} has a payload that is not valid base64`);
  }
  const url = Buffer.from(compact, 'base64').toString('utf8').trim();
  if (!url) throw new StretcherError('EVENT_INVALID', `${label} has an empty payload: expected a manifest URL`);
  if (/[\r\n\0]/.test(url)) throw new StretcherError('EVENT_INVALID', `${label} payload is not a single URL (it contains a line break or NUL)`);
  return {
    kind: 'deploy',
    url,
    origin: 'consul',
    ...(eventId ? { eventId } : {}),
    ...(eventName ? { eventName } : {}),
  };
}

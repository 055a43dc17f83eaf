import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { StretcherError } from '../shared/errors.js';

/*
 * Serf is reached through its own CLI (`serf members`, `serf query`), not a msgpack RPC client of ours:
 * the CLI is on every host that runs an agent (Debian's serf package), speaks whatever RPC protocol that
 * agent speaks, handles -rpc-auth, and keeps us from carrying a msgpack codec and a streaming RPC
 * state machine. Its one weakness, that `serf query` waits out the whole timeout even once every node has
 * answered, is dealt with here: its text output streams each response as it arrives, so we stop the
 * command as soon as the answers we wait for are in.
 */

/** Where the agent's RPC listens, and its filters, as `serf members` takes them. */
export interface SerfTarget {
  rpcAddr: string;
  /** `key=regexp`, anchored, as Serf's own -tag. */
  tags: readonly string[];
}

export interface Member {
  name: string;
  addr: string;
  status: string;
  tags: Record<string, string>;
}

/** What came back from one query: who acknowledged it and each node's answer, as the handler printed it. */
export interface QueryResult {
  acks: Set<string>;
  answers: Map<string, string>;
}

export class SerfError extends StretcherError {
  override name = 'SerfError';
  constructor(message: string) {
    super('SERF_FAILED', message);
  }
}

const MEMBERS_TIMEOUT_MS = 15_000;

/** Alive members matching the tag filters, in node-name order. */
export async function aliveMembers(target: SerfTarget): Promise<Member[]> {
  return (await members(target, ['-status', 'alive'])).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every member matching the tag filters, whatever its status, in node-name order. */
export async function membersOf(target: SerfTarget): Promise<Member[]> {
  return (await members(target, [])).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The status Serf gives `name` now (alive, leaving, left, failed), or undefined when it is not a member. */
export async function memberStatus(rpcAddr: string, name: string): Promise<string | undefined> {
  const found = await members({ rpcAddr, tags: [] }, ['-name', escapeRegExp(name)]);
  return found.find((m) => m.name === name)?.status;
}

async function members(target: SerfTarget, extra: string[]): Promise<Member[]> {
  const args = ['members', '-format=json', `-rpc-addr=${target.rpcAddr}`, ...target.tags.flatMap((t) => ['-tag', t]), ...extra];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('serf', args, { timeout: MEMBERS_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, out, errOut) => {
      if (err) reject(new SerfError(`serf members at ${target.rpcAddr} failed: ${serfSaid(err, `${errOut}${out}`)}`));
      else resolve(out);
    });
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new SerfError(`serf members at ${target.rpcAddr} printed something that is not JSON: ${stdout.slice(0, 200)}`);
  }
  const list = (parsed as { members?: unknown }).members;
  if (!Array.isArray(list)) return [];
  return list.map((m: Record<string, unknown>) => ({
    name: String(m.name ?? ''),
    addr: String(m.addr ?? ''),
    status: String(m.status ?? ''),
    tags: typeof m.tags === 'object' && m.tags !== null ? (m.tags as Record<string, string>) : {},
  }));
}

export interface QueryOptions {
  rpcAddr: string;
  /** Only these nodes are asked (-node); the query is over once each has answered. */
  nodes: readonly string[];
  timeoutMs: number;
  /** Ends the query early (a node found dead); what came in so far is returned. */
  signal?: AbortSignal;
}

/**
 * `serf query NAME PAYLOAD` to the given nodes; resolves with their answers once every one has answered,
 * or when the query's timeout ends (then with whoever did). The timeout is the query's own: the agents
 * drop an answer that comes later.
 */
export function query(name: string, payload: string, opts: QueryOptions): Promise<QueryResult> {
  const args = ['query', `-rpc-addr=${opts.rpcAddr}`, `-timeout=${Math.max(1, Math.ceil(opts.timeoutMs))}ms`, ...opts.nodes.flatMap((n) => ['-node', n]), name, payload];
  const result: QueryResult = { acks: new Set(), answers: new Map() };
  const wanted = new Set(opts.nodes);
  return new Promise((resolve, reject) => {
    const child = spawn('serf', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    // What serf printed that is not an ack or a response: its error, when it fails (it prints them on stdout).
    let said = '';
    let finished = false;
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    const stop = (): void => {
      if (!finished && child.exitCode === null) child.kill('SIGTERM');
    };
    opts.signal?.addEventListener('abort', stop, { once: true });
    // Serf's own bound is the query timeout; this one only guards against an agent that never lets go.
    const guard = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs + 30_000);
    // A response is printed as "Response from 'NODE': PAYLOAD"; a payload of several lines (a handler's
    // stray stderr before its answer) runs on until the next line serf itself prints.
    let answering: string | undefined;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const ack = /^Ack from '(.*)'$/.exec(line);
      // Node names may hold "': ", so a response is matched against the names asked, longest first.
      const from = [...wanted].filter((n) => line.startsWith(`Response from '${n}': `)).sort((a, b) => b.length - a.length)[0];
      if (ack) {
        result.acks.add(ack[1] as string);
        answering = undefined;
      } else if (from !== undefined) {
        answering = from;
        result.answers.set(from, line.slice(`Response from '${from}': `.length));
        if ([...wanted].every((n) => result.answers.has(n))) stop();
      } else if (/^(Total Acks|Total Responses|Query '.*' dispatched|Response from ')/.test(line)) {
        answering = undefined;
      } else if (answering !== undefined) {
        result.answers.set(answering, `${result.answers.get(answering) ?? ''}\n${line}`);
      } else if (said.length < 4096) said += `${line} `;
    });
    child.once('error', (err) => {
      clearTimeout(guard);
      reject(new SerfError(`cannot run serf (install the serf package): ${err.message}`));
    });
    child.once('close', (code, sig) => {
      finished = true;
      clearTimeout(guard);
      opts.signal?.removeEventListener('abort', stop);
      if (code !== 0 && sig === null) return reject(new SerfError(`serf query ${name} at ${opts.rpcAddr} failed: ${`${stderr} ${said}`.trim().replace(/\s+/g, ' ') || `exit status ${code}`}`));
      resolve(result);
    });
  });
}

function serfSaid(err: Error, output: string): string {
  const said = output.trim().replace(/\s+/g, ' ');
  return said || err.message;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * What stretcher answers to Serf queries, and the budget it must fit in. An agent sends a query's answer in
 * one UDP message and drops it whole when it is over QueryResponseSizeLimit (1024 bytes by default, the
 * message's own fields included), so an answer is made to fit before it is printed: a long error is cut,
 * then checksums are shortened, then the last dests are left out and counted.
 */

/** Serf's default QueryResponseSizeLimit. */
export const SERF_RESPONSE_LIMIT = 1024;
/**
 * What serf's response message adds around the payload: its type byte, and the msgpack map of LTime, ID,
 * From (the node's name, added separately) and the payload's own header, rounded up.
 */
const MESSAGE_OVERHEAD = 64;

/** The payload bytes left for a node called `nodeName`. */
export function answerBudget(nodeName: string, limit = SERF_RESPONSE_LIMIT): number {
  return limit - MESSAGE_OVERHEAD - Buffer.byteLength(nodeName);
}

/** `stretcher-deploy`'s answer. */
export interface DeployAnswer {
  result: 'success' | 'failure';
  dest?: string;
  checksum?: string;
  release?: string;
  error?: string;
}

/** One dest's last deploy, as `stretcher-status` answers it. */
export interface DestStatus {
  dest: string;
  result: string;
  checksum?: string;
  release?: string;
  time: string;
}

/** `stretcher-status`'s answer; `truncated`: how many dests did not fit. */
export interface StatusAnswer {
  deploys: DestStatus[];
  truncated?: number;
}

const SHORT_CHECKSUM = 12;

/** One line of JSON within `budget` bytes: the error cut (with "..."), then the checksum shortened. */
export function encodeDeployAnswer(answer: DeployAnswer, budget: number): string {
  let text = JSON.stringify(answer);
  if (Buffer.byteLength(text) <= budget) return text;
  const shorter = { ...answer, ...(answer.checksum ? { checksum: answer.checksum.slice(0, SHORT_CHECKSUM) } : {}) };
  if (answer.error !== undefined) {
    const room = budget - Buffer.byteLength(JSON.stringify({ ...shorter, error: '' }));
    shorter.error = cut(answer.error, room);
  }
  text = JSON.stringify(shorter);
  // A dest or release name alone past the budget: only the verdict is left.
  return Buffer.byteLength(text) <= budget ? text : JSON.stringify({ result: answer.result });
}

/** Every dest if they fit; else short checksums; else as many dests as fit, and how many did not. */
export function encodeStatusAnswer(deploys: readonly DestStatus[], budget: number): string {
  const full = JSON.stringify({ deploys });
  if (Buffer.byteLength(full) <= budget) return full;
  const short = deploys.map((d) => ({ ...d, ...(d.checksum ? { checksum: d.checksum.slice(0, SHORT_CHECKSUM) } : {}) }));
  for (let n = short.length; n >= 0; n--) {
    const answer: StatusAnswer = { deploys: short.slice(0, n), ...(n < short.length ? { truncated: short.length - n } : {}) };
    const text = JSON.stringify(answer);
    if (Buffer.byteLength(text) <= budget) return text;
  }
  return JSON.stringify({ deploys: [], truncated: deploys.length });
}

/** `text` cut to at most `room` bytes of JSON-escaped text, ending in "...". */
function cut(text: string, room: number): string {
  if (room <= 3) return '';
  let s = text;
  while (s.length && Buffer.byteLength(JSON.stringify(`${s}...`)) - 2 > room) s = s.slice(0, Math.max(0, s.length - Math.max(1, Math.ceil(s.length / 8))));
  return s ? `${s}...` : '';
}

/** An answer a handler printed (possibly after stray lines): its last line of JSON, if any parses. */
export function parseAnswer<T>(payload: string): T | undefined {
  const lines = payload.split('\n').reverse();
  for (const line of lines) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      return JSON.parse(t) as T;
    } catch {}
  }
  return undefined;
}

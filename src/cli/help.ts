import { VERSION } from '../shared/version.js';
import type { CommandName, CommandTable } from './command.js';
import { usageError } from './exit.js';
import { FLAG_BY_KEY, type FlagKey, type Invocation } from './flags.js';

const WIDTH = 80;

/** `stretcher help [COMMAND]`, over the table of commands it is given. */
export async function helpCommand({ operands }: Invocation, commands: CommandTable): Promise<number> {
  const [name] = operands;
  if (name === undefined) {
    process.stdout.write(generalHelp(commands));
    return 0;
  }
  if (!(name in commands)) return usageError(`unknown command ${JSON.stringify(name)}; the commands are ${Object.keys(commands).join(', ')}`);
  process.stdout.write(commandHelp(commands, name as CommandName));
  return 0;
}

/** The general help: every command, and the flags of a deploy (Go stretcher's only mode). */
export function generalHelp(commands: CommandTable): string {
  const names = Object.keys(commands) as CommandName[];
  const rows: [string, string][] = [['echo URL | stretcher [flags]', 'deploy the manifest URL read from stdin'], ...names.map((c): [string, string] => [usageLine(commands, c), commands[c].summary])];
  return `stretcher ${VERSION}: a deployment agent for Linux servers,
a drop-in replacement for fujiwara/stretcher.

Usage:
${table(rows)}

As a handler:
  consul watch -type event -name deploy stretcher
  serf agent -event-handler "user:deploy=stretcher"

Flags of a deploy (one or two dashes; -flag VALUE or -flag=VALUE):
${flagTable(commands.deploy.flags)}

Durations: a bare number is seconds (30, 1.5), or a Go duration (500ms, 1m30s).
${wrap('Exit status: 0 on success; 1 when a deploy fails (0 under consul watch, which stops on failure); 130/143 when interrupted by SIGINT/SIGTERM (watch: 0); 2 on a usage error.', '')}
\`stretcher help COMMAND\` shows a command's flags. Docs: README.md.
`;
}

export function commandHelp(commands: CommandTable, name: CommandName): string {
  const c = commands[name];
  const flags = c.flags.length ? `\nFlags:\n${flagTable(c.flags, c.flagHelp)}\n` : '';
  return `Usage: ${usageLine(commands, name)}${c.flags.length > (c.required?.length ?? 0) ? ' [flags]' : ''}\n\n${wrap(c.details, '')}\n${flags}`;
}

/** `stretcher releases --dest PATH`: the command, its operands and the flags it cannot do without. */
function usageLine(commands: CommandTable, name: CommandName): string {
  const c = commands[name];
  const required = (c.required ?? []).map((k) => ` ${flagUsage(k)}`).join('');
  return `stretcher ${name}${c.operands ? ` ${c.operands}` : ''}${required}`;
}

function flagUsage(key: FlagKey): string {
  const spec = FLAG_BY_KEY.get(key);
  if (!spec) return '';
  const name = spec.names.find((n) => n.length > 1) ?? (spec.names[0] as string);
  return `--${name}${spec.valueName ? ` ${spec.valueName}` : ''}`;
}

function flagTable(keys: readonly FlagKey[], own: Partial<Record<FlagKey, string>> = {}): string {
  return keys
    .map((key) => {
      const spec = FLAG_BY_KEY.get(key);
      if (!spec) return '';
      const names = spec.names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(', ');
      return `  ${names}${spec.valueName ? ` ${spec.valueName}` : ''}\n${wrap(own[key] ?? spec.help, '      ')}`;
    })
    .filter(Boolean)
    .join('\n');
}

/** Two columns when they fit in the width, the description below the left one otherwise. */
function table(rows: [string, string][]): string {
  const left = Math.max(...rows.map(([l]) => l.length)) + 4;
  return rows.map(([l, r]) => (left + r.length <= WIDTH ? `  ${l.padEnd(left - 2)}${r}` : `  ${l}\n${wrap(r, '      ')}`)).join('\n');
}

function wrap(text: string, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && indent.length + line.length + 1 + word.length > WIDTH) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}

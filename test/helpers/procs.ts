import { readdirSync, readFileSync } from 'node:fs';

/**
 * Pids of the running processes (zombies excluded: some container inits reap orphans late) whose
 * command line contains `marker`: how a test tells that nothing a hook started outlived it.
 */
export function running(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (cmdline.includes(marker) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') found.push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

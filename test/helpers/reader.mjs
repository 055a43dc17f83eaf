// Reads <dest>/data in a tight loop until <stop> exists, and reports what it saw as JSON on stdout:
// a reader must never find the file missing, nor a file whose lines come from two versions.
import { existsSync, readFileSync } from 'node:fs';
const [dest, stop] = process.argv.slice(2);
const seen = new Set();
let reads = 0;
let missing = 0;
let mixed = 0;
while (!existsSync(stop)) {
  for (let i = 0; i < 50; i++) {
    reads++;
    let text;
    try {
      text = readFileSync(`${dest}/data`, 'utf8');
    } catch {
      missing++;
      continue;
    }
    const lines = new Set(text.trim().split('\n'));
    if (lines.size !== 1) mixed++;
    for (const l of lines) seen.add(l);
  }
}
process.stdout.write(JSON.stringify({ reads, missing, mixed, versions: seen.size }));

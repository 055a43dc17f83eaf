// Builds dist/stretcher_<version>_amd64.deb from dist/stretcher-linux-x64 (npm run build:deb) with
// dpkg-deb: the executable as /usr/bin/stretcher, the systemd units of examples/systemd (installed, never
// enabled: each names a manifest URL the operator must set first), /var/lib/stretcher made 0700 by
// postinst, a man page made from the help text, and a postrm that removes stretcher's state on purge.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXE = path.join(ROOT, 'dist', 'stretcher-linux-x64');
if (!existsSync(EXE)) throw new Error(`${path.relative(ROOT, EXE)} is missing: npm run build:exe first`);
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
// Debian's version syntax has no '-' in an upstream version without a revision: 1.0.0-rc.1 -> 1.0.0~rc.1.
const version = pkg.version.replace('-', '~');
const name = `stretcher_${version}_amd64`;
const tree = path.join(ROOT, 'build', 'deb', name);
const out = path.join(ROOT, 'dist', `${name}.deb`);

rmSync(path.join(ROOT, 'build', 'deb'), { recursive: true, force: true });
const dir = (rel, mode = 0o755) => {
  const p = path.join(tree, rel);
  mkdirSync(p, { recursive: true });
  chmodSync(p, mode);
  return p;
};
const file = (rel, content, mode = 0o644) => {
  const p = path.join(dir(path.dirname(rel)), path.basename(rel));
  writeFileSync(p, content);
  chmodSync(p, mode);
};

copyFileSync(EXE, path.join(dir('usr/bin'), 'stretcher'));
chmodSync(path.join(tree, 'usr/bin/stretcher'), 0o755);

// The examples run /usr/local/bin/stretcher, where the one-file install puts it; the package's is in /usr/bin.
for (const unit of readdirSync(path.join(ROOT, 'examples', 'systemd')).filter((n) => n.endsWith('.service'))) {
  const text = readFileSync(path.join(ROOT, 'examples', 'systemd', unit), 'utf8')
    .replaceAll('/usr/local/bin/stretcher', '/usr/bin/stretcher')
    .replace(/^# {2}sudo cp .*\n/m, '');
  file(`usr/lib/systemd/system/${unit}`, text);
}

file('usr/share/man/man1/stretcher.1.gz', gzipSync(manPage(), { level: 9 }));
file(
  'usr/share/doc/stretcher/copyright',
  `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: stretcher\nSource: ${pkg.repository.url}\n\nFiles: *\nLicense: ${pkg.license}\n Node.js and the bundled npm packages are under their own licenses (MIT, Apache-2.0, ISC, BSD).\n`,
);

const installedKiB = Math.ceil(du(tree) / 1024);
file(
  'DEBIAN/control',
  [
    'Package: stretcher',
    `Version: ${version}`,
    'Architecture: amd64',
    'Section: admin',
    'Priority: optional',
    'Depends: rsync',
    `Installed-Size: ${installedKiB}`,
    `Maintainer: stretcher developers (${pkg.repository.url})`,
    `Homepage: ${pkg.repository.url}`,
    `Description: ${pkg.description.split(':')[0]}`,
    ` ${pkg.description}.`,
    ' One self-contained executable with its own Node.js runtime.',
    '',
  ].join('\n'),
);
// Deploy records, handled event IDs and locks: root's alone. Made here rather than shipped in the
// archive, so that removing the package does not warn about a directory with state in it.
file('DEBIAN/postinst', '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  install -d -m 0700 -o root -g root /var/lib/stretcher\nfi\n', 0o755);
// Purge removes what stretcher itself wrote; deployed dests and units copied to /etc are the operator's.
file('DEBIAN/postrm', '#!/bin/sh\nset -e\nif [ "$1" = purge ]; then\n  rm -rf /var/lib/stretcher\nfi\n', 0o755);

rmSync(out, { force: true });
// gzip: the quickest to build of what every dpkg reads; xz makes a 25% smaller package in several times the time.
execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, out], { stdio: ['ignore', 'ignore', 'inherit'] });
rmSync(path.join(ROOT, 'build', 'deb'), { recursive: true, force: true });
process.stdout.write(`${path.relative(ROOT, out)}: ${(statSync(out).size / 1e6).toFixed(1)} MB\n`);

function du(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((n, e) => n + du(path.join(p, e)), 0);
}

/** The general help and each command's, as the program prints them, in a man page's sections. */
function manPage() {
  const help = (...args) => execFileSync(EXE, args, { encoding: 'utf8' });
  const general = help('--help');
  const commands = [...new Set([...general.matchAll(/^ {2}stretcher ([a-z]+) /gm)].map((m) => m[1]))];
  // Preformatted text: roff treats a leading . or ' as a request and \ as an escape.
  const roff = (text) =>
    text
      .replaceAll('\\', '\\e')
      .split('\n')
      .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
      .join('\n');
  const [summary = ''] = pkg.description.split(':');
  return [
    `.TH STRETCHER 1 "" "stretcher ${pkg.version}" "User Commands"`,
    '.SH NAME',
    `stretcher \\- ${summary}`,
    '.SH SYNOPSIS',
    '.B echo',
    '.I URL',
    '.B | stretcher',
    '[\\fIflags\\fR]',
    '.br',
    '.B stretcher',
    '\\fICOMMAND\\fR [\\fIoperands\\fR] [\\fIflags\\fR]',
    '.SH DESCRIPTION',
    '.nf',
    roff(general.trimEnd()),
    '.fi',
    '.SH COMMANDS',
    ...commands.flatMap((c) => [`.SS stretcher ${c}`, '.nf', roff(help('help', c).trimEnd()), '.fi']),
    '.SH FILES',
    '.TP',
    '.I /var/lib/stretcher',
    'deploy records, handled event IDs and locks (0700, root)',
    '.TP',
    '.I /usr/lib/systemd/system/stretcher-watch.service, stretcher-consul-watch.service',
    'example units, not enabled: copy one to /etc/systemd/system, set its manifest URL, enable it',
    '.SH SEE ALSO',
    '.BR rsync (1),',
    '.BR consul (1),',
    '.BR serf (1)',
    '',
  ].join('\n');
}

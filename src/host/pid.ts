/**
 * Whether a process still exists: debris (temp trees, locks) named after a live process is in use and
 * must be left alone. EPERM means it exists but belongs to someone else.
 */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

import { keyPath } from './validate.js';
import { type Expansion, HAS_PLACEHOLDER, PLACEHOLDER } from './template.js';

/** Where a template value changed the manifest's shape, and which actions could have done it. */
export interface StructureChange {
  path: (string | number)[];
  what: string;
  actions: number[];
}

/**
 * Go stretcher spliced template values into the YAML text, so a value with a newline or a quote could add
 * keys (a `commands.pre` that runs as root) to a manifest whose signature had been checked. Here the
 * manifest is parsed twice: as written, with each action a placeholder, and expanded. Everything but the
 * scalars that hold an action must come out the same: same keys, same list lengths, same literal values.
 * A value may only fill in its own scalar; otherwise this says where and which actions.
 */
export function structureChange(asWritten: unknown, expanded: unknown, path: (string | number)[] = []): StructureChange | undefined {
  if (typeof asWritten === 'string' && HAS_PLACEHOLDER.test(asWritten)) {
    if (expanded === null || typeof expanded !== 'object') return undefined;
    return { path, what: 'a value became a list or mapping', actions: actionsIn(asWritten) };
  }
  if (Array.isArray(asWritten)) {
    if (!Array.isArray(expanded)) return { path, what: 'a list became something else', actions: actionsIn(asWritten) };
    if (expanded.length !== asWritten.length) return { path, what: `a list of ${asWritten.length} became one of ${expanded.length}`, actions: actionsIn(asWritten) };
    for (const [i, item] of asWritten.entries()) {
      const change = structureChange(item, expanded[i], [...path, i]);
      if (change) return change;
    }
    return undefined;
  }
  if (asWritten !== null && typeof asWritten === 'object') {
    if (expanded === null || typeof expanded !== 'object' || Array.isArray(expanded)) return { path, what: 'a mapping became something else', actions: actionsIn(asWritten) };
    const keys = Object.keys(asWritten);
    const templatedKey = keys.find((k) => actionsIn(k).length > 0);
    if (templatedKey !== undefined) return { path, what: 'a key comes from a template', actions: actionsIn(templatedKey) };
    const added = Object.keys(expanded).find((k) => !(k in asWritten));
    if (added !== undefined) return { path: [...path, added], what: `key ${JSON.stringify(added)} was added`, actions: actionsIn(asWritten) };
    for (const key of keys) {
      if (!(key in expanded)) return { path: [...path, key], what: `key ${JSON.stringify(key)} was removed`, actions: actionsIn(asWritten) };
      const change = structureChange((asWritten as Record<string, unknown>)[key], (expanded as Record<string, unknown>)[key], [...path, key]);
      if (change) return change;
    }
    return undefined;
  }
  return Object.is(asWritten, expanded) ? undefined : { path, what: 'a value written in the manifest changed', actions: [] };
}

function actionsIn(value: unknown): number[] {
  const text = JSON.stringify(value) ?? '';
  return [...text.matchAll(PLACEHOLDER)].map((m) => Number(m[1]));
}

/** "the value of DEPLOY_ENV", for the actions that may have changed the structure (all, when none is known). */
export function culprits(change: StructureChange, expansion: Expansion): string {
  const indices = change.actions.length ? change.actions : expansion.actions.map((_, i) => i);
  const names = [...new Set(indices.flatMap((i) => expansion.actions[i]?.variables ?? []))];
  const where = keyPath(change.path) || 'the manifest';
  return `${names.length ? `the value of ${names.join(', ')}` : 'a template value'} would change the manifest's structure (${change.what}, at ${where}); a template value may only fill in the value it stands for`;
}

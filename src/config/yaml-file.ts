/**
 * Reads one YAML configuration file into plain data while keeping the source
 * positions, so every later problem can name its line and column.
 * Interpolation happens here, on scalar values only, before validation.
 */
import { readFile } from 'node:fs/promises';
import { type Document, isMap, isScalar, LineCounter, type Node, parseDocument, visit } from 'yaml';
import { interpolate } from './interpolate.ts';
import { type ConfigPath, type ConfigProblem, formatPath } from './problems.ts';

export interface YamlFile {
  /** The file name as shown in problems. */
  file: string;
  /** Plain data, after interpolation; undefined when the file could not be parsed. */
  data: unknown;
  problems: ConfigProblem[];
  /**
   * Where a key path sits in the source: the value's position, or the key's
   * when `key` is set, or the nearest enclosing node that exists.
   */
  locate(path: ConfigPath, options?: { key?: boolean }): { line?: number; column?: number };
}

export async function readYamlFile(path: string, shownAs: string, env: NodeJS.ProcessEnv): Promise<YamlFile> {
  return parseYaml(await readFile(path, 'utf8'), shownAs, env);
}

export function parseYaml(source: string, file: string, env: NodeJS.ProcessEnv): YamlFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const problems: ConfigProblem[] = [];

  for (const error of [...doc.errors, ...doc.warnings]) {
    problems.push({
      file,
      ...position(error.pos[0]),
      path: '',
      message: `YAML: ${error.message.split('\n')[0]}`,
    });
  }

  const locate: YamlFile['locate'] = (path, { key = false } = {}) => {
    for (let depth = path.length; depth >= 0; depth--) {
      const prefix = path.slice(0, depth);
      if (key && depth === path.length && depth > 0) {
        const parent = prefix.length > 1 ? doc.getIn(prefix.slice(0, -1), true) : doc.contents;
        const wanted = prefix[prefix.length - 1];
        const pair = isMap(parent)
          ? parent.items.find((item) => isScalar(item.key) && item.key.value === wanted)
          : undefined;
        const keyNode = pair?.key as Node | undefined;
        if (keyNode?.range) return position(keyNode.range[0]);
        continue;
      }
      const node = (depth === 0 ? doc.contents : doc.getIn(prefix, true)) as Node | null | undefined;
      if (node?.range) return position(node.range[0]);
    }
    return {};
  };

  if (doc.errors.length > 0) return { file, data: undefined, problems, locate };

  interpolateScalars(doc, env, (path, node, name) => {
    problems.push({
      file,
      ...(node.range ? position(node.range[0]) : {}),
      path: formatPath(path),
      message: `\${${name}} is not set and has no default (write \${${name}:-default} to give one)`,
    });
  });

  return { file, data: doc.toJS() ?? {}, problems, locate };
}

function interpolateScalars(
  doc: Document,
  env: NodeJS.ProcessEnv,
  onMissing: (path: ConfigPath, node: Node, name: string) => void,
): void {
  visit(doc, {
    Scalar(key, node, ancestry) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const { value, missing } = interpolate(node.value, env);
      const path = pathOf(ancestry, key);
      for (const name of missing) onMissing(path, node, name);
      node.value = value;
    },
  });
}

/** Turns yaml's visitor ancestry into a key path like `['clients', 0, 'client_secret']`. */
function pathOf(ancestry: readonly unknown[], key: number | 'key' | 'value' | null): ConfigPath {
  const path: Array<string | number> = [];
  for (let i = 1; i < ancestry.length; i++) {
    const node = ancestry[i] as { key?: { value?: unknown } };
    const parent = ancestry[i - 1] as { items?: unknown[] };
    if (node && typeof node === 'object' && 'key' in node && 'value' in node) {
      path.push(String(node.key?.value));
    } else if (Array.isArray(parent?.items) && !('key' in (parent as object))) {
      path.push(parent.items.indexOf(node));
    }
  }
  if (typeof key === 'number') path.push(key);
  return path;
}

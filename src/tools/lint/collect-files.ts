import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The files `token-broker lint PATH...` reads: a file named on the command line is read whatever its extension;
 * a directory is walked recursively for *.yaml and *.yml, in sorted order so the output is stable, skipping
 * node_modules, hidden directories and symbolic links (a link cycle cannot hang the walk). This is the linter's
 * only file-system code besides reading the files.
 */

const YAML_FILE = /\.ya?ml$/i;
const SKIPPED_DIRECTORIES: ReadonlySet<string> = new Set(['node_modules']);

/** A path given on the command line that does not exist or cannot be read. */
export class UnreadablePathError extends Error {
  constructor(
    readonly path: string,
    readonly code: string,
  ) {
    super(`cannot read ${path} (${code})`);
  }
}

async function walk(directory: string, into: string[]): Promise<void> {
  const entries = await readdir(directory, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.') && !SKIPPED_DIRECTORIES.has(entry.name)) await walk(path, into);
    } else if (entry.isFile() && YAML_FILE.test(entry.name)) {
      into.push(path);
    }
  }
}

/** The files to lint, each once, in command-line order (directories expanded in place). */
export async function collectYamlFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      throw new UnreadablePathError(path, (error as NodeJS.ErrnoException).code ?? 'unreadable');
    }
    if (info.isDirectory()) await walk(path, files);
    else files.push(path);
  }
  return [...new Set(files)];
}

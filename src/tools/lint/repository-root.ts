import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * The root of the git work tree holding `directory`: the nearest ancestor with a `.git` entry (a directory, or
 * the file of a linked worktree or submodule), or undefined outside any repository. Reads the file system only.
 */
export async function findRepositoryRoot(directory: string): Promise<string | undefined> {
  for (let current = directory; ; current = dirname(current)) {
    try {
      await stat(join(current, '.git'));
      return current;
    } catch {
      // not here: look one level up
    }
    if (dirname(current) === current) return undefined;
  }
}

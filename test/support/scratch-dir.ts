import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temporary directory for the files one suite writes. */
export interface ScratchDir {
  /** The directory, made on first use. */
  readonly path: string;
  /** The path of `parts` joined below the directory; nothing is created but the directory. */
  file(...parts: readonly string[]): string;
  /** Writes `name` (lines are joined with newlines, as written) and returns its path. */
  write(name: string, text: string | readonly string[]): Promise<string>;
}

/**
 * A scratch directory for the enclosing describe (or file), removed after its tests so a test that fails leaves
 * nothing behind. Made on first use, synchronously, rather than in a `before` hook: Node 20 does not wait for one
 * file-level async `before` hook before starting the next, so a hook of the test file could run first.
 */
export function useScratchDir(prefix: string): ScratchDir {
  let dir: string | undefined;
  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  const scratch: ScratchDir = {
    get path() {
      dir ??= mkdtempSync(join(tmpdir(), prefix));
      return dir;
    },
    file: (...parts) => join(scratch.path, ...parts),
    async write(name, text) {
      const path = scratch.file(name);
      await writeFile(path, typeof text === 'string' ? text : text.join('\n'), 'utf8');
      return path;
    },
  };
  return scratch;
}

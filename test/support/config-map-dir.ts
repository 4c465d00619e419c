import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A directory laid out as the kubelet mounts a ConfigMap: each generation in its own `..<timestamp>` directory,
 * `..data` a symlink to the current one, and every file a symlink through `..data`. `update` does what the kubelet
 * does on a change: writes the next generation, points `..data_tmp` at it and renames that over `..data` (one
 * atomic rename), then removes the old generation.
 */
export interface ConfigMapDir {
  readonly dir: string;
  /** The path the broker is given: `<dir>/<name>`, a symlink through `..data`. */
  readonly path: string;
  update(text: string): Promise<void>;
}

export async function createConfigMapDir(dir: string, name: string, text: string): Promise<ConfigMapDir> {
  await mkdir(dir, { recursive: true });
  let generation = 0;
  let current: string | undefined;
  async function writeGeneration(content: string): Promise<string> {
    generation += 1;
    const folder = `..2026_12_07_00_00_${String(generation).padStart(2, '0')}.${generation}`;
    await mkdir(join(dir, folder));
    await writeFile(join(dir, folder, name), content, 'utf8');
    return folder;
  }
  current = await writeGeneration(text);
  await symlink(current, join(dir, '..data'));
  await symlink(join('..data', name), join(dir, name));
  return {
    dir,
    path: join(dir, name),
    async update(next) {
      const previous = current;
      current = await writeGeneration(next);
      await symlink(current, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      if (previous !== undefined) await rm(join(dir, previous), { recursive: true, force: true });
    },
  };
}

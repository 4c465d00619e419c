import { isMap, isSeq } from 'yaml';
import type { ContainerView, ProjectedTokenView, TemplateView, VolumeView, WorkflowView, YamlPath } from './argo-model.js';

/**
 * Suggested fixes as structural edits of one YAML document. A plan says what changes (append to this list, set
 * this scalar, replace these characters of that scalar); suggest-fix.ts turns it into a text splice that leaves
 * every other byte alone, and checks the result against the same edits applied through yaml's Document API.
 */

export type StructuralEdit =
  /** Append an item to the existing sequence at `path`. */
  | { readonly op: 'append'; readonly path: YamlPath; readonly value: unknown }
  /** Add `key` to the mapping at `path` (the key is absent). */
  | { readonly op: 'add-key'; readonly path: YamlPath; readonly key: string; readonly value: unknown }
  /** Replace the whole string scalar at `path`. */
  | { readonly op: 'set-scalar'; readonly path: YamlPath; readonly value: string }
  /** Replace characters of the string scalar at `path` (positions in its parsed value, not overlapping). */
  | { readonly op: 'replace-in-scalar'; readonly path: YamlPath; readonly replacements: readonly ScalarReplacement[] }
  /** Remove item `index` of the sequence at `path` (and the key, when that empties a block sequence). */
  | { readonly op: 'remove-item'; readonly path: YamlPath; readonly index: number };

export interface ScalarReplacement {
  readonly index: number;
  readonly length: number;
  readonly text: string;
}

export interface FixPlan {
  readonly edits: readonly StructuralEdit[];
}

/** Names and paths of the projected token a fix adds: those of the README's workflow step example. */
export const SUGGESTED_VOLUME_NAME = 'broker-token';
export const SUGGESTED_MOUNT_PATH = '/var/run/secrets/token-broker';
export const SUGGESTED_TOKEN_FILE = 'token';
/** The shortest lifetime Kubernetes allows; the kubelet rewrites the file at 80 % of it. */
export const SUGGESTED_EXPIRATION_SECONDS = 600;

/** A projected service-account token a container has mounted: the file it appears as, and where it came from. */
export interface MountedToken {
  readonly file: string;
  readonly token: ProjectedTokenView;
  readonly volume: VolumeView;
}

function joinPath(directory: string, file: string): string {
  return `${directory.replace(/\/+$/, '')}/${file}`;
}

/** The volumes a template's containers may mount: the template's own, then the workflow's (template wins). */
export function availableVolumes(template: TemplateView, workflow: WorkflowView): VolumeView[] {
  const names = new Set(template.volumes.map((volume) => volume.name));
  return [...template.volumes, ...workflow.volumes.filter((volume) => !names.has(volume.name))];
}

/** Every projected service-account token file mounted in a container. */
export function mountedTokens(container: ContainerView, template: TemplateView, workflow: WorkflowView): MountedToken[] {
  const volumes = availableVolumes(template, workflow);
  const mounted: MountedToken[] = [];
  for (const mount of container.mounts) {
    const volume = volumes.find((candidate) => candidate.name === mount.name);
    for (const token of volume?.tokens ?? []) {
      if (mount.subPath === undefined) mounted.push({ file: joinPath(mount.mountPath, token.file), token, volume: volume as VolumeView });
      else if (mount.subPath === token.file) mounted.push({ file: mount.mountPath, token, volume: volume as VolumeView });
    }
  }
  return mounted;
}

/** True when a token's audience is the broker's. */
export function hasAudience(token: ProjectedTokenView, audience: string): boolean {
  return token.audience?.value === audience;
}

function sequenceOrAbsent(owner: unknown, key: string): 'sequence' | 'absent' | 'other' {
  if (!isMap(owner) || !owner.has(key)) return 'absent';
  return isSeq(owner.get(key, true)) ? 'sequence' : 'other';
}

function appendOrAdd(ownerPath: YamlPath, owner: unknown, key: string, item: unknown): StructuralEdit | undefined {
  switch (sequenceOrAbsent(owner, key)) {
    case 'sequence':
      return { op: 'append', path: [...ownerPath, key], value: item };
    case 'absent':
      return { op: 'add-key', path: ownerPath, key, value: [item] };
    case 'other':
      return undefined;
  }
}

function unusedName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n += 1) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/**
 * The token file a fix can tell the container to read, with the edits that make it exist: none when a token with
 * the broker audience is already mounted; a volumeMount when such a volume exists; otherwise a projected volume in
 * the template (README: template volumes are always added to the pod) and its mount. Undefined when the container
 * is not a template's main container or its lists are not plain sequences (no mechanical fix then).
 */
export function ensureProjectedToken(
  container: ContainerView,
  template: TemplateView,
  workflow: WorkflowView,
  audience: string,
): { readonly file: string; readonly edits: readonly StructuralEdit[] } | undefined {
  if (container.role !== 'main') return undefined;
  const present = mountedTokens(container, template, workflow).find((mounted) => hasAudience(mounted.token, audience));
  if (present !== undefined) return { file: present.file, edits: [] };

  const volumes = availableVolumes(template, workflow);
  const usable = volumes.find((volume) => volume.tokens.some((token) => hasAudience(token, audience)));
  const edits: StructuralEdit[] = [];
  let volumeName: string;
  let tokenFile: string;
  if (usable !== undefined) {
    volumeName = usable.name;
    tokenFile = usable.tokens.find((token) => hasAudience(token, audience))?.file ?? SUGGESTED_TOKEN_FILE;
  } else {
    volumeName = unusedName(SUGGESTED_VOLUME_NAME, new Set(volumes.map((volume) => volume.name)));
    tokenFile = SUGGESTED_TOKEN_FILE;
    const volume = {
      name: volumeName,
      projected: { sources: [{ serviceAccountToken: { audience, expirationSeconds: SUGGESTED_EXPIRATION_SECONDS, path: tokenFile } }] },
    };
    const edit = appendOrAdd(template.path, template.node, 'volumes', volume);
    if (edit === undefined) return undefined;
    edits.push(edit);
  }
  const mountPath = unusedName(SUGGESTED_MOUNT_PATH, new Set(container.mounts.map((mount) => mount.mountPath)));
  const mount = appendOrAdd(container.path, container.node, 'volumeMounts', { name: volumeName, mountPath, readOnly: true });
  if (mount === undefined) return undefined;
  edits.push(mount);
  return { file: joinPath(mountPath, tokenFile), edits };
}

import type { ContainerView, ScalarView } from './argo-model.js';
import { isPython, isShell, shellAssignments } from './script-text.js';

/** Views over the text a container runs: which scalar is shell, the variables it defines, its scalars joined. */

/** The scalar of a container that a shell runs: a script template's source, or the argument after `sh -c`. */
export function shellScript(container: ContainerView): ScalarView | undefined {
  if (container.source !== undefined) {
    const interpreter = container.command[0]?.value;
    return interpreter !== undefined && isShell(interpreter) ? container.source : undefined;
  }
  const words = [...container.command, ...container.args];
  const shellAt = words.findIndex((word) => isShell(word.value));
  if (shellAt < 0) return undefined;
  const flagAt = words.findIndex((word, index) => index > shellAt && /^-[a-z]*c[a-z]*$/.test(word.value));
  return flagAt < 0 ? undefined : words[flagAt + 1];
}

/** The language of a container's script: shell (sh -c, a shell script template) or Python (a python script template). */
export function scriptLanguage(container: ContainerView): 'shell' | 'python' | undefined {
  if (shellScript(container) !== undefined) return 'shell';
  const interpreter = container.command[0]?.value;
  return container.source !== undefined && interpreter !== undefined && isPython(interpreter) ? 'python' : undefined;
}

/** The command, args and source scalars of a container: the text it runs. */
export function runText(container: ContainerView): ScalarView[] {
  return [...container.command, ...container.args, ...(container.source === undefined ? [] : [container.source])];
}

/** Where a scalar sits in a container, for messages: the script source, the command, the args. */
export function describeScalar(container: ContainerView, scalar: ScalarView): string {
  const where = scalar === container.source ? 'the script source' : container.command.includes(scalar) ? 'the command' : 'the args';
  return container.role === 'main' ? where : `${where} of ${container.role} container "${container.name}"`;
}

/** True when two YAML paths are equal. */
export function samePath(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a.length === b.length && a.every((part, index) => part === b[index]);
}

/** Variables a path may be written through: the container's environment values and the script's plain assignments. */
export function variablesOf(container: ContainerView): Map<string, string> {
  const variables = new Map<string, string>();
  for (const variable of container.env) if (variable.value !== undefined) variables.set(variable.name, variable.value.value);
  const script = shellScript(container) ?? container.source;
  if (script !== undefined) for (const [name, value] of shellAssignments(script.value)) variables.set(name, value);
  return variables;
}

/** The scalars joined by newlines, so patterns can span arguments, with a way back to the scalar of an index. */
export function joinScalars(scalars: readonly ScalarView[]): { text: string; locate: (index: number) => { scalar: ScalarView; index: number } | undefined } {
  const starts: number[] = [];
  let text = '';
  for (const scalar of scalars) {
    starts.push(text.length);
    text += `${scalar.value}\n`;
  }
  const locate = (index: number): { scalar: ScalarView; index: number } | undefined => {
    for (let i = scalars.length - 1; i >= 0; i -= 1) {
      const start = starts[i] ?? 0;
      const scalar = scalars[i];
      if (scalar !== undefined && index >= start) return { scalar, index: index - start };
    }
    return undefined;
  };
  return { text, locate };
}

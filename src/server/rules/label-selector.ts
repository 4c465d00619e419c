/** A Kubernetes label selector, as in the API (metav1.LabelSelector). */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values?: readonly string[];
}

export type Labels = Readonly<Record<string, string>>;

/**
 * Evaluates a selector with the API server's semantics: every matchLabels pair and every expression must hold;
 * NotIn also matches when the key is absent; an empty selector matches everything. Returns the first failing
 * requirement in words, or undefined when the labels match. Pure.
 */
export function firstUnmatchedRequirement(selector: LabelSelector, labels: Labels): string | undefined {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    const actual = Object.hasOwn(labels, key) ? labels[key] : undefined;
    if (actual !== value) return `label ${key}=${value} required, found ${actual === undefined ? 'none' : `"${actual}"`}`;
  }
  for (const requirement of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, requirement.key);
    const actual = present ? labels[requirement.key] : undefined;
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        if (actual === undefined || !values.includes(actual)) return `label ${requirement.key} in (${values.join(', ')}) required`;
        break;
      case 'NotIn':
        if (actual !== undefined && values.includes(actual)) return `label ${requirement.key} notin (${values.join(', ')}) required`;
        break;
      case 'Exists':
        if (!present) return `label ${requirement.key} required`;
        break;
      case 'DoesNotExist':
        if (present) return `label ${requirement.key} must be absent`;
        break;
    }
  }
  return undefined;
}

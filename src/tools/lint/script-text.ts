import { GRANT_TYPE_TOKEN_EXCHANGE } from '../../server/protocol.js';

/**
 * What a step's command text does with tokens: whether it calls the broker, which files it reads a token from,
 * whether it keeps a token in a variable across a loop, and the shell quoting at a position (for replacing a
 * literal). Pure functions over strings; they read shell and the simple Python of script templates, and are
 * heuristics, not parsers: each says what it recognises.
 */

/** The token every pod gets by default; its audience is the API server's, never the broker's. */
export const DEFAULT_SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Interpreters whose script text the linter treats as shell. */
const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'ash', 'dash', 'zsh', 'ksh']);

/** `/bin/bash` -> bash; `python3` stays python3. */
export function interpreterName(command: string): string {
  return command.slice(command.lastIndexOf('/') + 1);
}

/** True when a command runs a POSIX-style shell, whose script the linter can read and fix. */
export function isShell(command: string): boolean {
  return SHELLS.has(interpreterName(command));
}

/** True when a command runs Python (python, python3, python3.12, with or without a path). */
export function isPython(command: string): boolean {
  return /^python(?:\d+(?:\.\d+)?)?$/.test(interpreterName(command));
}

/** A file a script reads a token from: `$(cat F)`, `$(< F)`, `` `cat F` ``, `subject_token@F`, `open("F")`. */
export interface TokenRead {
  /** The path as written (possibly `$TOKEN_FILE`). */
  readonly written: string;
  /** The path after resolving a `$VAR`, `${VAR}` or `$(VAR)` through the known variables. */
  readonly path: string;
  /** Where the written path starts in the text. */
  readonly index: number;
}

const READ_PATTERNS: readonly RegExp[] = [
  /\$\(\s*cat\s+(?:--\s+)?(["']?)([^\s'"()|;&<>]+)\1\s*\)/dg,
  /\$\(\s*<\s*(["']?)([^\s'"()|;&<>]+)\1\s*\)/dg,
  /`\s*cat\s+(["']?)([^\s'"`|;&<>]+)\1\s*`/dg,
  /\bsubject_token@(["']?)([^\s'"|;&<>]+)\1/dg,
  /\bopen\(\s*(["'])([^'"]+)\1/dg,
  /\bPath\(\s*(["'])([^'"]+)\1\s*\)\s*\.read_text/dg,
];

const VARIABLE_REFERENCE = /^(?:\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$([A-Za-z_][A-Za-z0-9_]*))$/;

/** `NAME=value` / `export NAME="value"` lines of a shell script: the variables a path may be written through. */
export function shellAssignments(script: string): Map<string, string> {
  const variables = new Map<string, string>();
  for (const match of script.matchAll(/^\s*(?:export\s+|readonly\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=(["']?)([^\s'"$`]+)\2\s*$/gm)) {
    variables.set(match[1] ?? '', match[3] ?? '');
  }
  return variables;
}

/** Every token-file read in `text`, with `$VAR` paths resolved through `variables` when they are known. */
export function findTokenReads(text: string, variables: ReadonlyMap<string, string>): TokenRead[] {
  const reads: TokenRead[] = [];
  for (const pattern of READ_PATTERNS) {
    for (const match of text.matchAll(pattern)) {
      const written = match[2] ?? '';
      // The `d` flag gives the path group's own position, whatever precedes it in the match.
      const index = match.indices?.[2]?.[0] ?? match.index;
      const reference = VARIABLE_REFERENCE.exec(written);
      const name = reference === null ? undefined : (reference[1] ?? reference[2] ?? reference[3]);
      const path = name === undefined ? written : (variables.get(name) ?? written);
      reads.push({ written, path, index });
    }
  }
  return reads.sort((a, b) => a.index - b.index);
}

/** A file that plausibly holds a service-account token (as opposed to any file a script reads). */
export function looksLikeTokenFile(path: string, projectedFiles: ReadonlySet<string>): boolean {
  if (projectedFiles.has(path)) return true;
  if (path.startsWith('/var/run/secrets/') || path.startsWith('/run/secrets/')) return true;
  return /token/i.test(path.slice(path.lastIndexOf('/') + 1));
}

/** `https://host/.../token`, `$BROKER/token`, `${URL}/token`, `{{inputs.parameters.broker}}/token`: a token endpoint. */
const TOKEN_ENDPOINT =
  /(?:https?:\/\/[^\s'"`()<>]+?|\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$\([A-Za-z_][A-Za-z0-9_]*\)|\$[A-Za-z_][A-Za-z0-9_]*|\{\{[^}]+\}\})\/token(?![\w./-])/g;
/** `Bearer $(cat F)`, `` Bearer `cat F` ``, or `printf 'Authorization: Bearer %s' "$(cat F)"` (token piped to curl -H @-). */
const BEARER_FROM_FILE = /Bearer\s+(?:\$\(\s*(?:cat\s|<)|`\s*cat\s|%s\b[^\n]*\$\(\s*(?:cat\s|<))/;

/** Where a text shows a call to the broker. */
export interface BrokerCall {
  readonly index: number;
  readonly length: number;
}

/** Trailing slashes and a trailing /token removed: the base the broker's paths hang off. */
export function brokerBaseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/token$/, '');
}

/**
 * The first place where `text` calls the broker: the broker URL (when known), or a token endpoint used with the
 * RFC 8693 grant or with `Authorization: Bearer $(cat FILE)` (the broker's one-header form).
 */
export function findBrokerCall(text: string, brokerUrl: string | undefined): BrokerCall | undefined {
  if (brokerUrl !== undefined) {
    const base = brokerBaseUrl(brokerUrl);
    const index = text.toLowerCase().indexOf(base.toLowerCase());
    if (base !== '' && index >= 0) return { index, length: base.length };
  }
  if (!text.includes(GRANT_TYPE_TOKEN_EXCHANGE) && !BEARER_FROM_FILE.test(text)) return undefined;
  const endpoint = TOKEN_ENDPOINT.exec(text);
  TOKEN_ENDPOINT.lastIndex = 0;
  return endpoint === null ? undefined : { index: endpoint.index, length: endpoint[0].length };
}

/** Where a logical command starts and ends in a script. */
export interface CommandLine {
  readonly start: number;
  readonly end: number;
}

/**
 * The logical commands of a script: physical lines joined where one ends with a backslash continuation or with a
 * pipe or `&&`/`||` (`printf ... "$(cat F)" |` then `curl -H @- URL` on the next line is one command).
 */
export function commandLines(text: string): CommandLine[] {
  const commands: CommandLine[] = [];
  let start = 0;
  let at = 0;
  while (at <= text.length) {
    const newline = text.indexOf('\n', at);
    const end = newline < 0 ? text.length : newline;
    if (newline >= 0 && /(?:\\|\||&&)$/.test(text.slice(at, end).trimEnd())) {
      at = newline + 1;
      continue;
    }
    commands.push({ start, end });
    if (newline < 0) break;
    start = at = newline + 1;
  }
  return commands;
}

/** True when a command names the broker: its URL (when known) or a token endpoint. */
export function namesBrokerEndpoint(command: string, brokerUrl: string | undefined): boolean {
  if (brokerUrl !== undefined && command.toLowerCase().includes(brokerBaseUrl(brokerUrl).toLowerCase())) return true;
  const found = TOKEN_ENDPOINT.test(command);
  TOKEN_ENDPOINT.lastIndex = 0;
  return found;
}

/**
 * Shell variables assigned a token read from a file (`SUBJECT=$(cat /var/run/.../token)`), with the file: a
 * command that sends `$SUBJECT` sends that file.
 */
export function tokenVariables(script: string, variables: ReadonlyMap<string, string>, isTokenFile: (path: string) => boolean): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of script.split('\n')) {
    const assignment = SHELL_ASSIGNMENT.exec(line);
    if (assignment === null) continue;
    const read = findTokenReads(assignment[3] ?? '', variables).find((candidate) => isTokenFile(candidate.path));
    if (read !== undefined) found.set(assignment[2] ?? '', read.path);
  }
  return found;
}

/** http(s) URLs in a text, with their positions. */
export function findUrls(text: string): { url: string; index: number }[] {
  return [...text.matchAll(/https?:\/\/[^\s'"`()<>{}]+/g)].map((match) => ({ url: match[0], index: match.index }));
}

/** True when `name` is used as a word in the text (`$NAME`, `${NAME}`, `$(NAME)`, `os.environ["NAME"]`). */
export function mentionsVariable(text: string, name: string): boolean {
  return new RegExp(`(?<![A-Za-z0-9_])${escapeRegExp(name)}(?![A-Za-z0-9_])`).test(text);
}

/** Shell references to a variable that a fix may replace: `$NAME`, `${NAME}`, and Kubernetes' `$(NAME)`. */
export function variableReferences(text: string, name: string): { index: number; length: number }[] {
  const pattern = new RegExp(`\\$\\{${escapeRegExp(name)}\\}|\\$\\(${escapeRegExp(name)}\\)|\\$${escapeRegExp(name)}(?![A-Za-z0-9_])`, 'g');
  return [...text.matchAll(pattern)].map((match) => ({ index: match.index, length: match[0].length }));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// --- the expiry trap --------------------------------------------------------------------------------------------

/** Shell functions of a script (`name() {` ... a line with only `}`), by name, with their bodies. */
export function shellFunctions(script: string): Map<string, string> {
  const functions = new Map<string, string>();
  const lines = script.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const start = /^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\))?\s*\{\s*$/.exec(lines[i] ?? '');
    if (start === null || !/\(\)|^\s*function\s/.test(lines[i] ?? '')) continue;
    const end = lines.findIndex((line, index) => index > i && /^\s*\}\s*$/.test(line));
    if (end < 0) continue;
    functions.set(start[1] ?? '', lines.slice(i + 1, end).join('\n'));
  }
  return functions;
}

/** A token kept in a variable and used after the script starts looping or sleeping. */
export interface ReadOnceTrap {
  readonly variable: string;
  /** Where the assignment starts in the script. */
  readonly index: number;
  /** 1-based line (within the script) of the loop or sleep after which the variable is still used. */
  readonly laterLine: number;
  readonly reason: 'loop' | 'sleep';
}

const SHELL_ASSIGNMENT = /^(\s*)(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+)?)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;
const PYTHON_ASSIGNMENT = /^()([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)\s*(.+)$/;
const LOOP_START = /^\s*(?:while|until|for)\b/;
const SLEEP = /(?:^|[\s;&|(])(?:time\.)?sleep\b/;
const SHELL_FUNCTION_START = /^\s*(?:function\s+)?[A-Za-z_][A-Za-z0-9_]*\s*\(\)\s*\{?\s*$|^\s*function\s+[A-Za-z_][A-Za-z0-9_]*\s*\{?\s*$/;

/**
 * Assignments of a token (read from a file, or obtained from the broker) to a variable outside any loop, after
 * which the script loops or sleeps and still uses the variable, without assigning it again. That is the expiry
 * trap: the value outlives the token. `isTokenSource` says whether an assignment's right-hand side yields a token.
 */
export function findReadOnceTraps(script: string, language: 'shell' | 'python', isTokenSource: (rhs: string) => boolean): ReadOnceTrap[] {
  const lines = script.split('\n');
  const offsets: number[] = [];
  let offset = 0;
  for (const line of lines) {
    offsets.push(offset);
    offset += line.length + 1;
  }
  const traps: ReadOnceTrap[] = [];
  // Loops and function bodies: an assignment inside one runs again with each iteration or call.
  let shellLoopDepth = 0;
  let shellFunctionDepth = 0;
  lines.forEach((line, lineIndex) => {
    const assignment = (language === 'shell' ? SHELL_ASSIGNMENT : PYTHON_ASSIGNMENT).exec(line);
    const atTop = language === 'shell' ? shellLoopDepth === 0 && shellFunctionDepth === 0 : assignment !== null;
    if (language === 'shell') {
      if (LOOP_START.test(line)) shellLoopDepth += 1;
      shellLoopDepth = Math.max(0, shellLoopDepth - (line.match(/(?:^|[\s;])done\b/g)?.length ?? 0));
      if (SHELL_FUNCTION_START.test(line)) shellFunctionDepth += 1;
      else if (/^\s*\}\s*$/.test(line)) shellFunctionDepth = Math.max(0, shellFunctionDepth - 1);
    }
    if (assignment === null || !atTop || LOOP_START.test(line)) return;
    const variable = assignment[2] ?? '';
    if (!isTokenSource(assignment[3] ?? '')) return;
    const later = lines.slice(lineIndex + 1);
    const turn = later.findIndex((text) => LOOP_START.test(text) || SLEEP.test(text));
    if (turn < 0) return;
    const use =
      language === 'shell'
        ? new RegExp(`\\$\\{?${escapeRegExp(variable)}(?![A-Za-z0-9_])`)
        : new RegExp(`(?<![A-Za-z0-9_.])${escapeRegExp(variable)}(?![A-Za-z0-9_])`);
    const reassigned = later.some((text) => {
      const again = (language === 'shell' ? SHELL_ASSIGNMENT : /^(\s*)()([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)/).exec(text);
      return again !== null && (language === 'shell' ? again[2] : again[3]) === variable;
    });
    if (reassigned || !later.slice(turn).some((text) => use.test(text))) return;
    const turnLine = later[turn] ?? '';
    traps.push({
      variable,
      index: (offsets[lineIndex] ?? 0) + (assignment[1] ?? '').length,
      laterLine: lineIndex + 2 + turn,
      reason: LOOP_START.test(turnLine) ? 'loop' : 'sleep',
    });
  });
  return traps;
}

// --- quoting, for replacing a literal with a command substitution ------------------------------------------------

export type QuoteContext = 'none' | 'single' | 'double';

/**
 * The shell quoting in force at `index`: inside '...', inside "...", or neither (a `$(...)` inside double quotes
 * opens a fresh context). Comments are skipped, so an apostrophe in a comment does not open a quote.
 */
export function quoteContextAt(script: string, index: number): QuoteContext {
  type Frame = { kind: 'none' | 'single' | 'double' | 'subst'; depth: number };
  const stack: Frame[] = [{ kind: 'none', depth: 0 }];
  for (let i = 0; i < index && i < script.length; i += 1) {
    const frame = stack[stack.length - 1] ?? { kind: 'none', depth: 0 };
    const char = script[i];
    if (frame.kind === 'single') {
      if (char === "'") stack.pop();
      continue;
    }
    if (char === '\\') {
      i += 1;
      continue;
    }
    if (frame.kind === 'double') {
      if (char === '"') stack.pop();
      else if (char === '$' && script[i + 1] === '(') {
        stack.push({ kind: 'subst', depth: 0 });
        i += 1;
      }
      continue;
    }
    // none or subst
    if (char === '#' && (i === 0 || /\s/.test(script[i - 1] ?? ''))) {
      const end = script.indexOf('\n', i);
      i = end < 0 ? script.length : end;
      continue;
    }
    if (char === "'") stack.push({ kind: 'single', depth: 0 });
    else if (char === '"') stack.push({ kind: 'double', depth: 0 });
    else if (char === '$' && script[i + 1] === '(') {
      stack.push({ kind: 'subst', depth: 0 });
      i += 1;
    } else if (frame.kind === 'subst' && char === '(') frame.depth += 1;
    else if (frame.kind === 'subst' && char === ')') {
      if (frame.depth === 0) stack.pop();
      else frame.depth -= 1;
    }
  }
  const top = stack[stack.length - 1]?.kind ?? 'none';
  return top === 'single' ? 'single' : top === 'double' ? 'double' : 'none';
}

/**
 * The broker exchange as a shell command that prints the access token (README: "Calling it from a workflow step").
 * It is substituted in place of the credential, inside the command that used it, so it cannot stop the step the
 * way the README's separate `|| exit 1` line does: `-sS --fail` at least writes curl's error ("returned error:
 * 403") to the step's log instead of failing silently, and never puts the broker's error body where the token goes
 * (which `--fail-with-body` would, inside `$(...)`).
 */
export function exchangeCommand(brokerUrl: string, tokenFile: string): string {
  return `curl -sS --fail -X POST ${brokerBaseUrl(brokerUrl)}/token -H "Authorization: Bearer $(cat ${tokenFile})" -H 'Accept: text/plain'`;
}

/** `command`'s output as a shell word, written to fit the quoting in force where it goes. */
export function commandSubstitution(command: string, context: QuoteContext): string {
  switch (context) {
    case 'double':
      return `$(${command})`;
    case 'single':
      // Close the single quotes, substitute inside double quotes, reopen: 'a '"$(cmd)"' b'.
      return `'"$(${command})"'`;
    case 'none':
      return `"$(${command})"`;
  }
}

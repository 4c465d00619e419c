import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { unifiedDiff } from '../../src/tools/lint/unified-diff.js';

const lines = (count: number, prefix = 'l'): string => Array.from({ length: count }, (_, i) => `${prefix}${i + 1}\n`).join('');

describe('unified diff', () => {
  it('is empty for equal texts', () => {
    assert.equal(unifiedDiff('a\nb\n', 'a\nb\n', 'f.yaml'), '');
  });

  it('shows a change with three lines of context, removal first', () => {
    const before = lines(10);
    const after = before.replace('l5\n', 'five\n');
    assert.equal(unifiedDiff(before, after, 'f.yaml'), '--- a/f.yaml\n+++ b/f.yaml\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+five\n l6\n l7\n l8\n');
  });

  it('numbers an insertion at the start and at the end', () => {
    assert.equal(unifiedDiff('a\n', 'new\na\n', 'f'), '--- a/f\n+++ b/f\n@@ -1 +1,2 @@\n+new\n a\n');
    assert.equal(unifiedDiff('', 'new\n', 'f'), '--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+new\n');
  });

  it('splits distant changes into hunks and merges close ones', () => {
    const before = lines(30);
    const far = before.replace('l3\n', 'x\n').replace('l27\n', 'y\n');
    assert.equal(
      unifiedDiff(before, far, 'f'),
      '--- a/f\n+++ b/f\n@@ -1,6 +1,6 @@\n l1\n l2\n-l3\n+x\n l4\n l5\n l6\n@@ -24,7 +24,7 @@\n l24\n l25\n l26\n-l27\n+y\n l28\n l29\n l30\n',
    );
    const near = before.replace('l3\n', 'x\n').replace('l9\n', 'y\n');
    assert.equal(unifiedDiff(before, near, 'f').match(/^@@/gm)?.length, 1);
  });

  it('marks a last line without a line break', () => {
    assert.equal(unifiedDiff('a\nb', 'a\nb\nc\n', 'f'), '--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n-b\n\\ No newline at end of file\n+b\n+c\n');
  });
});

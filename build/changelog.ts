// CHANGELOG.md (Keep a Changelog): the release moves what is under "## [Unreleased]" under a new
// "## [X.Y.Z] - YYYY-MM-DD" heading and leaves an empty Unreleased section on top.

const UNRELEASED = /^## \[Unreleased\][ \t]*$/m;
/** Entries written ahead of a merge carry this marker until someone edits them into their final form. */
export const PENDING_MARKER = '(pending:';

export function releaseChangelog(text: string, version: string, date: string): string {
  const heading = UNRELEASED.exec(text);
  if (!heading) throw new Error('CHANGELOG.md has no "## [Unreleased]" heading to release');
  const start = heading.index + heading[0].length;
  const next = text.slice(start).search(/^## /m);
  const end = next < 0 ? text.length : start + next;
  const body = text.slice(start, end).trim();
  if (!body) throw new Error('CHANGELOG.md: nothing under "## [Unreleased]"; write what this release changes first');
  const pending = body.split('\n').filter((line) => line.includes(PENDING_MARKER));
  if (pending.length > 0) {
    throw new Error(`CHANGELOG.md: ${pending.length} Unreleased entr${pending.length === 1 ? 'y is' : 'ies are'} still marked "${PENDING_MARKER} ...)"; edit or remove them first:\n${pending.join('\n')}`);
  }
  if (new RegExp(`^## \\[${version.replaceAll('.', '\\.')}\\]`, 'm').test(text)) throw new Error(`CHANGELOG.md already has a section for ${version}`);
  return `${text.slice(0, start)}\n\n## [${version}] - ${date}\n\n${body}\n\n${text.slice(end)}`.replace(/\n{3,}/g, '\n\n');
}

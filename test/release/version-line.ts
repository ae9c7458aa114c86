// The line `realip-webhook --version` prints, taken apart for tests that compare it with the
// other carriers of the version.

export interface ReportedBuild {
  version: string;
  revision: string;
  node: string;
}

/** "realip-webhook 0.1.0 (revision abc..., Node.js v24.21.0)\n" -> its parts; throws on anything else. */
export function parseVersionLine(stdout: string): ReportedBuild {
  const m = /^realip-webhook (\S+) \(revision (\S+), Node\.js (\S+)\)\n$/.exec(stdout);
  if (!m) throw new Error(`not a realip-webhook --version line: ${JSON.stringify(stdout)}`);
  return { version: m[1]!, revision: m[2]!, node: m[3]! };
}

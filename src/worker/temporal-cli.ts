/**
 * Finding the Temporal CLI that runs the local dev server: TEMPORAL_CLI_PATH, `temporal` on PATH, a previous
 * `go install`, or — where Go is present — building it once from the Go module proxy. Undefined means "let the
 * Temporal SDK download it", which is what a user with internet gets.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* not here */ }
  }
  return undefined;
}

function goBinDir(go: string): string | undefined {
  try {
    const gobin = execFileSync(go, ['env', 'GOBIN'], { encoding: 'utf8' }).trim();
    if (gobin) return gobin;
    const gopath = execFileSync(go, ['env', 'GOPATH'], { encoding: 'utf8' }).trim().split(path.delimiter)[0];
    return gopath ? path.join(gopath, 'bin') : undefined;
  } catch {
    return undefined;
  }
}

export function findTemporalCli(opts: { explicit?: string; build?: boolean; log?: (line: string) => void } = {}): string | undefined {
  if (opts.explicit) {
    if (!fs.existsSync(opts.explicit)) throw new Error(`TEMPORAL_CLI_PATH ${opts.explicit} does not exist`);
    return opts.explicit;
  }
  const found = onPath('temporal');
  if (found) return found;
  const go = onPath('go') ?? (fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) return undefined;
  const bin = goBinDir(go);
  const built = bin && path.join(bin, 'temporal');
  if (built && fs.existsSync(built)) return built;
  if (opts.build === false) return undefined;
  opts.log?.(`building the Temporal CLI once with go install ${TEMPORAL_CLI_MODULE} (a few minutes)…`);
  const r = spawnSync(go, ['install', TEMPORAL_CLI_MODULE], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !built || !fs.existsSync(built)) {
    opts.log?.('go install of the Temporal CLI failed; falling back to the Temporal SDK download');
    return undefined;
  }
  return built;
}

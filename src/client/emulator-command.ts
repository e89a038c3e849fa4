/** `cxsync emulator`: the Graph emulator on its own, for pointing a separately run worker at it. */
import path from 'node:path';
import { dataDir, emulatorCaFile, type Env } from '../config';
import { startGraphEmulator } from '../emulator';

export async function runEmulator(env: Env, say: (line: string) => void): Promise<void> {
  const emulator = await startGraphEmulator({ port: env.CXSYNC_EMULATOR_PORT, dataDir: path.join(dataDir(env), 'emulator') });
  say(`Graph emulator listening: ${emulator.graphBaseUrl}`);
  say(`token endpoint: ${emulator.authorityHost}/${emulator.tenantId}/oauth2/v2.0/token`);
  say(`certificate to trust (GRAPH_CA_FILE): ${emulatorCaFile(env)}`);
  say(`admin API: ${emulator.origin}/admin/mailboxes — Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await emulator.close();
}

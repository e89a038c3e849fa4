/** `npm run build` step: writes dist/workflow-bundle.js so production workers (and the Docker image) skip bundling. */
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') });
  const out = path.join(__dirname, '..', 'workflow-bundle.js');
  fs.writeFileSync(out, code);
  console.log(`wrote ${out} (${code.length} bytes)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// A good ES module handler (.mjs): echoes the event with its instance's identity.
import { randomUUID } from 'node:crypto';

const BOOT = randomUUID();

export const handler = async (event, context) => ({
  echo: event, pid: process.pid, boot: BOOT, uid: process.getuid(), module: 'esm',
  requestId: context.awsRequestId, functionName: context.functionName,
});

'use strict';
// A good CommonJS handler: echoes the event with its instance's identity.
const crypto = require('node:crypto');

const BOOT = crypto.randomUUID();

exports.handler = async (event, context) => {
  if (event.attack === 'tcp') {
    const net = require('node:net');
    await new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: event.port }, resolve);
      socket.on('error', reject);
    });
    return { connected: true };
  }
  if (event.attack === 'throw') throw new TypeError('thrown on purpose');
  return {
    echo: event, pid: process.pid, boot: BOOT, uid: process.getuid(), module: 'commonjs',
    requestId: context.awsRequestId, functionName: context.functionName,
    remaining: context.getRemainingTimeInMillis(),
  };
};
